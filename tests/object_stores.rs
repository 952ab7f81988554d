//! The object-store destinations against real emulators, each started per test on a loopback
//! port: S3 on moto, Azure Blob on Azurite (which checks SharedKey and SAS signatures), GCS on
//! its emulator. Files are read back with an independent client (the AWS SDK, Python's own
//! SharedKey signer, the GCS JSON API) and compared by SHA-256; failures must leave nothing
//! behind and say whether another attempt may help.

use crate::moto;
use crate::object_store_emulators as object_stores;

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, ChecksumMode, ServerSideEncryption, StorageClass, VersioningConfiguration};
use egress::deliver::azure_blob::{self, AzureBlobConfig, AzureCredential, Container};
use egress::deliver::endpoints::Endpoints;
use egress::deliver::gcs::{self, GcsConfig, ServiceAccountKey};
use egress::deliver::s3::{self, AwsKeys, S3Config};
use egress::deliver::{DeliverError, OutgoingFile};
use egress::model::validation::from_json;
use object_stores::{
    AZURITE_ACCOUNT, AZURITE_KEY, Azurite, GcsEmulator, TokenServer, azure_get, base64, helper, outgoing, part_digests, sha256_hex,
};
use serde_json::{Value, json};
use sha2::Digest;

const MIB: u64 = 1024 * 1024;

/// Run a test body with a deadline, so a hung emulator fails the test instead of the run.
async fn bounded<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("the test took more than {secs} s"));
}

fn no_settings() -> Endpoints {
    Endpoints::from_lookup(|_| None).unwrap()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    object_stores::free_port()
}

fn assert_permanent(r: Result<egress::deliver::Evidence, DeliverError>, needle: &str) -> String {
    match r {
        Err(DeliverError::Permanent { message }) => {
            assert!(message.contains(needle), "expected `{needle}` in: {message}");
            message
        }
        other => panic!("expected a permanent error with `{needle}`, got {other:?}"),
    }
}

fn assert_transient(r: Result<egress::deliver::Evidence, DeliverError>) -> String {
    match r {
        Err(DeliverError::Transient { message, .. }) => message,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

/// The same file under another name and a SHA-256 that does not match its bytes.
fn with_wrong_sha(f: &OutgoingFile, name: &str) -> OutgoingFile {
    OutgoingFile { remote_name: name.into(), sha256: "0".repeat(64), ..f.clone() }
}

// ---------------------------------------------------------------- S3 on moto

fn moto_endpoints(moto: &moto::Moto) -> Endpoints {
    let mut e = no_settings().with_aws(moto.config());
    e.s3_force_path_style = true;
    e
}

fn moto_s3(moto: &moto::Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&moto.config()).force_path_style(true).build())
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, versioned: bool) {
    s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
    if versioned {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
            .send()
            .await
            .expect("enable versioning");
    }
}

async fn s3_sha256(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let out = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
    let body = out.body.collect().await.expect("read object").into_bytes();
    sha256_hex(&body)
}

async fn s3_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.expect("list objects");
    out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_small_and_multipart_files_arrive_whole_with_sse_s3() {
    bounded(240, async {
        let moto = moto::Moto::start();
        let s3c = moto_s3(&moto);
        create_bucket(&s3c, "partner-drop", true).await;
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "report.csv", 1000, 1, "text/csv");
        let big = outgoing(dir.path(), "big.parquet", 40 * MIB, 2, "application/vnd.apache.parquet");
        let cfg: S3Config = from_json(&json!({"bucket": "partner-drop", "prefix": "in/daily", "sse": "AES256"})).unwrap();
        cfg.validate("").unwrap();

        let ev = s3::deliver(&cfg, None, &moto_endpoints(&moto), "exp_0001", &[small.clone(), big.clone()]).await.expect("deliver");

        assert_eq!(ev.location, "s3://partner-drop/in/daily/");
        assert_eq!(ev.files.len(), 2);
        for (f, e) in [&small, &big].into_iter().zip(&ev.files) {
            let key = format!("in/daily/{}", f.remote_name);
            assert_eq!(e["key"], json!(key));
            assert_eq!(e["size"], json!(f.size));
            assert_eq!(e["sha256"], json!(f.sha256));
            assert_eq!(s3_sha256(&s3c, "partner-drop", &key).await, f.sha256, "{key}: the bytes differ");
            let head = s3c.head_object().bucket("partner-drop").key(&key).send().await.expect("HeadObject");
            assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256), "{key}");
            assert_eq!(e["etag"], json!(head.e_tag().unwrap()), "{key}");
            assert!(head.version_id().is_some(), "{key}: no version id on a versioned bucket");
            assert_eq!(e["version_id"], json!(head.version_id().unwrap()), "{key}");
            assert_eq!(e["server_side_encryption"], json!("AES256"));
            assert_eq!(head.content_type(), Some(f.content_type.as_str()));
            assert_eq!(head.metadata().and_then(|m| m.get("sha256")), Some(&f.sha256));
        }
        // S3 kept the SHA-256 checksums sent: the whole file's for the single PUT, the parts'
        // (composite, of three parts) for the multipart upload.
        let checksum = |key: &'static str| {
            let s3c = s3c.clone();
            async move {
                let head = s3c.head_object().bucket("partner-drop").key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
                head.checksum_sha256().map(str::to_string)
            }
        };
        let small_digest: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&small.sha256[2 * i..2 * i + 2], 16).unwrap()).collect();
        assert_eq!(checksum("in/daily/report.csv").await, Some(base64(&small_digest)));
        // (S3 writes the composite one `<base64>-3`; moto leaves the part count out.)
        let composite = base64(&sha2::Sha256::digest(part_digests(&big.path, 16 * MIB as usize)));
        assert_eq!(checksum("in/daily/big.parquet").await.as_deref().map(|c| c.trim_end_matches("-3")), Some(composite.as_str()));
        // 40 MiB in 16 MiB parts: a multipart ETag of three parts; the small one in one PUT.
        assert!(ev.files[1]["etag"].as_str().unwrap().trim_matches('"').ends_with("-3"), "{}", ev.files[1]["etag"]);
        assert!(!ev.files[0]["etag"].as_str().unwrap().contains('-'));
        assert_eq!(s3_keys(&s3c, "partner-drop").await, ["in/daily/big.parquet", "in/daily/report.csv"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_assumed_role_with_sse_kms_storage_class_and_acl() {
    bounded(240, async {
        let moto = moto::Moto::start();
        let s3c = moto_s3(&moto);
        create_bucket(&s3c, "other-account-bucket", false).await;
        let kms = aws_sdk_kms::Client::new(&moto.config());
        let key_id = kms.create_key().send().await.expect("create key").key_metadata.unwrap().key_id;
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "a.json", 5000, 3, "application/json");
        let big = outgoing(dir.path(), "b.json", 20 * MIB, 4, "application/json");
        let cfg: S3Config = from_json(&json!({
            "bucket": "other-account-bucket", "region": "us-east-1",
            "role_arn": "arn:aws:iam::210987654321:role/partner-writer", "external_id": "acme-7",
            "sse": "aws:kms", "kms_key_id": key_id, "credential": "cred_aws1",
            "storage_class": "STANDARD_IA", "acl": "bucket-owner-full-control"
        }))
        .unwrap();
        cfg.validate("").unwrap();
        let keys = AwsKeys { access_key_id: "AKIAIOSFODNN7EXAMPLE".into(), secret_access_key: "stored-secret".into(), session_token: None };
        let export_id = "exp_0190aaaabbbbccccddddeeeeffff0000";

        let ev = s3::deliver(&cfg, Some(&keys), &moto_endpoints(&moto), export_id, &[small.clone(), big.clone()]).await.expect("deliver");

        let assumed = ev.details["assumed_role"].as_str().expect("assumed role in the evidence");
        assert!(assumed.contains(&format!("assumed-role/partner-writer/egress-{export_id}")), "{assumed}");
        assert_eq!(ev.location, "s3://other-account-bucket/");
        for f in [&small, &big] {
            assert_eq!(s3_sha256(&s3c, "other-account-bucket", &f.remote_name).await, f.sha256);
            let head = s3c.head_object().bucket("other-account-bucket").key(&f.remote_name).send().await.unwrap();
            assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms), "{}", f.remote_name);
            assert!(head.ssekms_key_id().unwrap_or_default().contains(&key_id), "{:?}", head.ssekms_key_id());
            assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa), "{}", f.remote_name);
        }
        let debug = format!("{ev:?}{keys:?}");
        assert!(!debug.contains("stored-secret"), "{debug}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failures_are_classified_and_leave_nothing_behind() {
    bounded(240, async {
        let moto = moto::Moto::start();
        let s3c = moto_s3(&moto);
        create_bucket(&s3c, "drop", false).await;
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "a.csv", 100, 5, "text/csv");
        let big = outgoing(dir.path(), "b.csv", 20 * MIB, 6, "text/csv");
        let endpoints = moto_endpoints(&moto);

        // GIVEN a bucket that does not exist THEN the service's own code, permanently.
        let missing: S3Config = from_json(&json!({"bucket": "no-such-bucket"})).unwrap();
        let msg = assert_permanent(s3::deliver(&missing, None, &endpoints, "exp_1", std::slice::from_ref(&small)).await, "NoSuchBucket");
        assert!(msg.contains("404"), "{msg}");

        // GIVEN files whose bytes do not match their SHA-256 THEN nothing is committed: no
        // object, and the multipart upload is aborted.
        let cfg: S3Config = from_json(&json!({"bucket": "drop"})).unwrap();
        for f in [with_wrong_sha(&small, "small.csv"), with_wrong_sha(&big, "big.csv")] {
            assert_permanent(s3::deliver(&cfg, None, &endpoints, "exp_1", &[f]).await, "changed");
        }
        assert!(s3_keys(&s3c, "drop").await.is_empty());
        let uploads = s3c.list_multipart_uploads().bucket("drop").send().await.unwrap();
        assert!(uploads.uploads().is_empty(), "an upload was left open: {:?}", uploads.uploads());

        // GIVEN a size that is not the file's THEN permanent, before any request.
        let short = OutgoingFile { size: 99, ..small.clone() };
        assert_permanent(s3::deliver(&cfg, None, &endpoints, "exp_1", &[short]).await, "99");

        // GIVEN an endpoint nobody answers on THEN transient.
        let mut down =
            no_settings().with_aws(moto.config().to_builder().endpoint_url(format!("http://127.0.0.1:{}", closed_port())).build());
        down.s3_force_path_style = true;
        assert_transient(s3::deliver(&cfg, None, &down, "exp_1", std::slice::from_ref(&small)).await);
    })
    .await;
}

// ---------------------------------------------------------------- Azure Blob on Azurite

fn azurite_endpoints(azurite: &Azurite) -> Endpoints {
    let mut e = no_settings();
    e.azure_blob_base = Some(azurite.endpoint());
    e
}

async fn create_container(endpoints: &Endpoints, name: &str) {
    let key = AzureCredential::shared_key(AZURITE_KEY).unwrap();
    Container::new(endpoints, AZURITE_ACCOUNT, name, &key).unwrap().create().await.expect("create container (signed)");
}

fn check_blob(azurite: &Azurite, container: &str, blob: &str, f: &OutgoingFile, ev: &serde_json::Map<String, Value>) {
    let read = azure_get(azurite, container, blob);
    assert_eq!(read.status, 200, "{blob}: {}", String::from_utf8_lossy(&read.body));
    assert_eq!(sha256_hex(&read.body), f.sha256, "{blob}: the bytes differ");
    assert_eq!(read.headers["etag"], ev["etag"], "{blob}");
    assert_eq!(read.headers["x-ms-meta-sha256"], json!(f.sha256), "{blob}");
    assert_eq!(read.headers["content-type"], json!(f.content_type), "{blob}");
    assert_eq!(ev["blob"], json!(blob));
    assert_eq!(ev["size"], json!(f.size));
    assert!(ev["request_id"].is_string() && ev["last_modified"].is_string(), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_small_and_block_files_arrive_whole_with_shared_key() {
    bounded(240, async {
        let azurite = Azurite::start();
        let endpoints = azurite_endpoints(&azurite);
        create_container(&endpoints, "drop").await;
        let dir = tempfile::tempdir().unwrap();
        // A name with a space and non-ASCII letters: the signature covers the encoded path.
        let small = outgoing(dir.path(), "monthly report é.csv", 1000, 7, "text/csv");
        let big = outgoing(dir.path(), "big.bin", 20 * MIB, 8, "application/octet-stream");
        let cfg: AzureBlobConfig =
            from_json(&json!({"account": AZURITE_ACCOUNT, "container": "drop", "prefix": "in/daily", "credential": "cred_az1"})).unwrap();
        let key = AzureCredential::shared_key(AZURITE_KEY).unwrap();

        let ev = azure_blob::deliver(&cfg, &key, &endpoints, &[small.clone(), big.clone()]).await.expect("deliver");

        assert_eq!(ev.location, format!("{}/drop/in/daily/", azurite.endpoint()));
        check_blob(&azurite, "drop", "in/daily/monthly report é.csv", &small, &ev.files[0]);
        check_blob(&azurite, "drop", "in/daily/big.bin", &big, &ev.files[1]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sas_token_delivers() {
    bounded(240, async {
        let azurite = Azurite::start();
        let endpoints = azurite_endpoints(&azurite);
        create_container(&endpoints, "sas-drop").await;
        let sas = helper(&["azure-sas", AZURITE_ACCOUNT, AZURITE_KEY]);
        let cred = AzureCredential::sas(sas.trim()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "s.csv", 10, 9, "text/csv");
        let big = outgoing(dir.path(), "b.csv", 10 * MIB, 10, "text/csv");
        let cfg: AzureBlobConfig =
            from_json(&json!({"account": AZURITE_ACCOUNT, "container": "sas-drop", "credential": "cred_sas"})).unwrap();

        let ev = azure_blob::deliver(&cfg, &cred, &endpoints, &[small.clone(), big.clone()]).await.expect("deliver with SAS");

        check_blob(&azurite, "sas-drop", "s.csv", &small, &ev.files[0]);
        check_blob(&azurite, "sas-drop", "b.csv", &big, &ev.files[1]);

        // A SAS whose signature was tampered with is refused, and the token is not in the error.
        let bad = AzureCredential::sas(&sas.trim().replace("sig=", "sig=AAAA")).unwrap();
        let msg = assert_permanent(azure_blob::deliver(&cfg, &bad, &endpoints, std::slice::from_ref(&small)).await, "403");
        assert!(!msg.contains("sig="), "{msg}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_failures_are_classified_and_leave_no_blob() {
    bounded(240, async {
        let azurite = Azurite::start();
        let endpoints = azurite_endpoints(&azurite);
        create_container(&endpoints, "drop").await;
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "a.csv", 100, 11, "text/csv");
        let big = outgoing(dir.path(), "b.csv", 20 * MIB, 12, "text/csv");
        let cfg: AzureBlobConfig = from_json(&json!({"account": AZURITE_ACCOUNT, "container": "drop", "credential": "cred_az1"})).unwrap();
        let key = AzureCredential::shared_key(AZURITE_KEY).unwrap();

        // GIVEN a wrong account key THEN 403, permanently.
        let wrong = AzureCredential::shared_key(&AZURITE_KEY.replace("Eby8", "Xby8")).unwrap();
        assert_permanent(azure_blob::deliver(&cfg, &wrong, &endpoints, std::slice::from_ref(&small)).await, "403");

        // GIVEN a file whose bytes do not match its SHA-256 THEN the block list is never
        // committed: the blob does not exist.
        for f in [with_wrong_sha(&small, "small.csv"), with_wrong_sha(&big, "big.csv")] {
            assert_permanent(azure_blob::deliver(&cfg, &key, &endpoints, std::slice::from_ref(&f)).await, "changed");
            assert_eq!(azure_get(&azurite, "drop", &f.remote_name).status, 404, "{}", f.remote_name);
        }

        // GIVEN a container that does not exist THEN 404, permanently.
        let missing: AzureBlobConfig =
            from_json(&json!({"account": AZURITE_ACCOUNT, "container": "nowhere", "credential": "cred_az1"})).unwrap();
        assert_permanent(azure_blob::deliver(&missing, &key, &endpoints, std::slice::from_ref(&small)).await, "404");

        // GIVEN an endpoint nobody answers on THEN transient.
        let mut down = no_settings();
        down.azure_blob_base = Some(format!("http://127.0.0.1:{}/{{account}}", closed_port()));
        assert_transient(azure_blob::deliver(&cfg, &key, &down, std::slice::from_ref(&small)).await);
    })
    .await;
}

// ---------------------------------------------------------------- GCS on its emulator

fn gcs_endpoints(gcs: &GcsEmulator) -> Endpoints {
    let mut e = no_settings();
    e.gcs_base = gcs.base();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_small_and_resumable_files_arrive_whole() {
    bounded(240, async {
        let gcs = GcsEmulator::start();
        gcs.create_bucket("exports");
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "report 1.csv", 1000, 13, "text/csv");
        let big = outgoing(dir.path(), "big.bin", 20 * MIB, 14, "application/octet-stream");
        let empty = outgoing(dir.path(), "empty.csv", 0, 15, "text/csv");
        let cfg: GcsConfig = from_json(&json!({"bucket": "exports", "prefix": "in/daily"})).unwrap();

        let ev = gcs::deliver(&cfg, None, &gcs_endpoints(&gcs), &[small.clone(), big.clone(), empty.clone()]).await.expect("deliver");

        assert_eq!(ev.location, "gs://exports/in/daily/");
        for (f, e) in [&small, &big, &empty].into_iter().zip(&ev.files) {
            let name = format!("in/daily/{}", f.remote_name);
            assert_eq!(e["name"], json!(name));
            let bytes = gcs.get_media("exports", &name).unwrap_or_else(|s| panic!("{name}: HTTP {s}"));
            assert_eq!(sha256_hex(&bytes), f.sha256, "{name}: the bytes differ");
            let meta = gcs.get_metadata("exports", &name);
            assert_eq!(e["generation"], meta["generation"], "{name}");
            assert_eq!(e["md5Hash"], meta["md5Hash"], "{name}");
            assert_eq!(e["crc32c"], meta["crc32c"], "{name}");
            assert_eq!(meta["size"].as_str(), Some(f.size.to_string().as_str()), "{name}");
            assert_eq!(meta["contentType"], json!(f.content_type));
            assert_eq!(meta["metadata"]["sha256"], json!(f.sha256));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_service_account_signs_a_jwt_the_token_endpoint_accepts() {
    bounded(240, async {
        let gcs = GcsEmulator::start();
        gcs.create_bucket("signed");
        let tokens = TokenServer::start();
        let mut endpoints = gcs_endpoints(&gcs);
        endpoints.gcs_token_uri = tokens.token_uri.clone();
        let key = ServiceAccountKey::from_json(&tokens.key_json).expect("key file");
        assert!(!format!("{key:?}").contains("PRIVATE KEY"));
        let dir = tempfile::tempdir().unwrap();
        let f = outgoing(dir.path(), "a.csv", 3000, 16, "text/csv");
        let cfg: GcsConfig = from_json(&json!({"bucket": "signed", "credential": "cred_gcs1"})).unwrap();

        let ev = gcs::deliver(&cfg, Some(&key), &endpoints, std::slice::from_ref(&f)).await.expect("deliver");

        assert_eq!(tokens.verdicts(), ["ok"]);
        assert_eq!(ev.details["service_account"], json!("egress-writer@egress-test.iam.gserviceaccount.com"));
        assert_eq!(sha256_hex(&gcs.get_media("signed", "a.csv").unwrap()), f.sha256);

        // GIVEN a key the token endpoint does not trust THEN its refusal, permanently.
        let other_dir = tempfile::tempdir().unwrap();
        helper(&["service-account", other_dir.path().to_str().unwrap(), &tokens.token_uri]);
        let other = ServiceAccountKey::from_json(&std::fs::read_to_string(other_dir.path().join("key.json")).unwrap()).unwrap();
        assert_permanent(gcs::deliver(&cfg, Some(&other), &endpoints, std::slice::from_ref(&f)).await, "invalid_grant");
        assert_eq!(tokens.verdicts(), ["ok", "bad signature"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_failures_are_classified_and_leave_no_object() {
    bounded(240, async {
        let gcs = GcsEmulator::start();
        gcs.create_bucket("exports");
        let endpoints = gcs_endpoints(&gcs);
        let dir = tempfile::tempdir().unwrap();
        let small = outgoing(dir.path(), "a.csv", 100, 17, "text/csv");
        let big = outgoing(dir.path(), "b.csv", 20 * MIB, 18, "text/csv");
        let cfg: GcsConfig = from_json(&json!({"bucket": "exports"})).unwrap();

        // GIVEN a file whose bytes do not match its SHA-256 THEN the last chunk is never sent:
        // no object.
        for f in [with_wrong_sha(&small, "small.csv"), with_wrong_sha(&big, "big.csv")] {
            assert_permanent(gcs::deliver(&cfg, None, &endpoints, std::slice::from_ref(&f)).await, "changed");
            assert_eq!(gcs.get_media("exports", &f.remote_name), Err(404), "{}", f.remote_name);
        }

        // GIVEN a bucket that does not exist THEN 404, permanently.
        let missing: GcsConfig = from_json(&json!({"bucket": "no-such-bucket"})).unwrap();
        assert_permanent(gcs::deliver(&missing, None, &endpoints, std::slice::from_ref(&small)).await, "404");

        // GIVEN an endpoint nobody answers on THEN transient.
        let mut down = no_settings();
        down.gcs_base = format!("http://127.0.0.1:{}", closed_port());
        assert_transient(gcs::deliver(&cfg, None, &down, std::slice::from_ref(&small)).await);
    })
    .await;
}
