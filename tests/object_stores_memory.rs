//! The memory bar of the object-store destinations: each delivers a 1 GiB file with this
//! process's peak resident set under 300 MB, because files are read in bounded parts and never
//! held whole. A test binary of its own with one test, so that no other test shares the
//! process whose peak is measured (VmHWM, reset before each delivery).

#[path = "support/moto.rs"]
mod moto;
#[path = "support/object_stores.rs"]
mod object_stores;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/mod.rs"]
mod support;

use std::future::Future;
use std::time::Duration;

use egress::deliver::azure_blob::{self, AzureBlobConfig, AzureCredential, Container};
use egress::deliver::endpoints::Endpoints;
use egress::deliver::gcs::{self, GcsConfig};
use egress::deliver::s3::{self, S3Config};
use egress::deliver::{DeliverError, Evidence};
use egress::model::validation::from_json;
use object_stores::{AZURITE_ACCOUNT, AZURITE_KEY, Azurite, GcsEmulator, azure_head, outgoing, peak_rss, reset_peak_rss};
use serde_json::json;

const GIB: u64 = 1024 * 1024 * 1024;
const RSS_BAR: u64 = 300 * 1000 * 1000;

/// Deliver with a deadline and return the evidence and the peak RSS while delivering.
fn measured<F: Future<Output = Result<Evidence, DeliverError>>>(rt: &tokio::runtime::Runtime, what: &str, f: F) -> Evidence {
    reset_peak_rss();
    let result = rt.block_on(async { tokio::time::timeout(Duration::from_secs(900), f).await });
    let peak = peak_rss();
    let ev =
        result.unwrap_or_else(|_| panic!("{what}: the delivery took more than 15 minutes")).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    eprintln!("{what}: peak RSS {} MB", peak / 1_000_000);
    assert!(peak < RSS_BAR, "{what}: the peak RSS was {} MB, over the 300 MB bar", peak / 1_000_000);
    ev
}

#[test]
fn every_object_store_delivers_1_gib_under_300_mb_peak_rss() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = outgoing(dir.path(), "export.bin", GIB, 42, "application/octet-stream");
    let files = std::slice::from_ref(&file);
    let no_settings = || Endpoints::from_lookup(|_| None).unwrap();

    {
        let moto = moto::Moto::start();
        let s3c = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&moto.config()).force_path_style(true).build());
        rt.block_on(s3c.create_bucket().bucket("big").send()).expect("create bucket");
        let mut endpoints = no_settings().with_aws(moto.config());
        endpoints.s3_force_path_style = true;
        let cfg: S3Config = from_json(&json!({"bucket": "big"})).unwrap();
        let ev = measured(&rt, "S3", s3::deliver(&cfg, None, &endpoints, "exp_big", files));
        let head = rt.block_on(s3c.head_object().bucket("big").key("export.bin").send()).expect("HeadObject");
        assert_eq!(head.content_length(), Some(GIB as i64));
        assert!(ev.files[0]["etag"].as_str().unwrap().trim_matches('"').ends_with("-64"), "{:?}", ev.files[0]);
    }
    {
        let azurite = Azurite::start();
        let mut endpoints = no_settings();
        endpoints.azure_blob_base = Some(azurite.endpoint());
        let key = AzureCredential::shared_key(AZURITE_KEY).unwrap();
        rt.block_on(Container::new(&endpoints, AZURITE_ACCOUNT, "big", &key).unwrap().create()).expect("create container");
        let cfg: AzureBlobConfig = from_json(&json!({"account": AZURITE_ACCOUNT, "container": "big", "credential": "cred_az"})).unwrap();
        measured(&rt, "Azure Blob", azure_blob::deliver(&cfg, &key, &endpoints, files));
        let (status, headers) = azure_head(&azurite, "big", "export.bin");
        assert_eq!(status, 200);
        assert_eq!(headers["content-length"], json!(GIB.to_string()));
        assert_eq!(headers["x-ms-meta-sha256"], json!(file.sha256));
    }
    {
        let gcs = GcsEmulator::start();
        gcs.create_bucket("big");
        let mut endpoints = no_settings();
        endpoints.gcs_base = gcs.base();
        let cfg: GcsConfig = from_json(&json!({"bucket": "big"})).unwrap();
        measured(&rt, "GCS", gcs::deliver(&cfg, None, &endpoints, files));
        let meta = gcs.get_metadata("big", "export.bin");
        assert_eq!(meta["size"], json!(GIB.to_string()));
    }
}
