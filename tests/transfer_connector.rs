//! SFTP delivery through a Transfer Family connector, end to end on loopback: the files sit in
//! S3 (moto), the Transfer API is tests/support/transfer_emulator.py (moto cannot run
//! StartFileTransfer), which reads them from moto and writes them with asyncssh to a real SFTP
//! server (tests/servers/sftp_server.py). Checked on the server's disk: the exact bytes under
//! the final names, never a write under a final name, no temporary file left; and the refusals:
//! a connector trusting other host keys, a failed transfer, a local service.

use crate::delivery;
use crate::moto;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use delivery::{PyServer, fingerprint_of, free_port, server_script, sha256_file, tree};
use egress::aws::s3::S3BlobStore;
use egress::blob::BlobStore;
use egress::deliver::sftp::SftpConfig;
use egress::deliver::sftp::transfer::{self, PART_SUFFIX, TransferRun, TransferWait};
use egress::deliver::{DeliverError, Evidence, OutgoingFile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const USER: &str = "acme";
const PASSWORD: &str = "connector secret";
const BUCKET: &str = "egress-data";
/// Trusts the server's host key (and one other).
const GOOD: &str = "c-0123456789abcdef0";
/// Trusts another key only.
const WRONG_KEYS: &str = "c-0123456789abcdef1";
/// An AS2 connector.
const AS2: &str = "c-0123456789abcdef2";

/// moto with the data bucket, an SFTP server, and the Transfer emulator with three connectors.
struct Fixture {
    dir: tempfile::TempDir,
    moto: moto::Moto,
    sftp: Option<PyServer>,
    sftp_port: u16,
    _transfer: PyServer,
    transfer_endpoint: String,
    blobs: S3BlobStore,
}

fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "egress-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen is needed (openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string()
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/in/daily")).unwrap();
        // The server's host key, made here so that the connectors can trust its public half.
        let host_pub = keygen(&dir.path().join("host_key"));
        let other_pub = keygen(&dir.path().join("other_key"));
        let fx_sftp_port = free_port();
        let url = format!("sftp://127.0.0.1:{fx_sftp_port}");
        let config = json!({"connectors": {
            GOOD: {"url": url, "trusted_host_keys": [other_pub, format!("[127.0.0.1]:{fx_sftp_port} {host_pub}")], "user": USER, "password": PASSWORD},
            WRONG_KEYS: {"url": url, "trusted_host_keys": [other_pub], "user": USER, "password": PASSWORD},
            AS2: {"url": "https://as2.example.com", "as2": true, "user": USER},
        }});
        std::fs::write(dir.path().join("connectors.json"), config.to_string()).unwrap();

        let moto = moto::Moto::start();
        let s3 = egress::aws::s3_client(&moto.config(), true);
        s3.create_bucket().bucket(BUCKET).send().await.expect("create the data bucket");
        let transfer_port = free_port();
        let transfer = PyServer::start(
            &support::python(),
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/transfer_emulator.py")),
            transfer_port,
            &[
                "--port".into(),
                transfer_port.to_string(),
                "--config".into(),
                dir.path().join("connectors.json").display().to_string(),
                "--s3-endpoint".into(),
                moto.endpoint.clone(),
                "--log".into(),
                dir.path().join("transfer.jsonl").display().to_string(),
                // Moves land late, so the listing is asked again until they show.
                "--move-delay".into(),
                "0.3".into(),
            ],
        );
        let mut fx = Fixture {
            blobs: S3BlobStore::new(s3, BUCKET, None),
            dir,
            moto,
            sftp: None,
            sftp_port: fx_sftp_port,
            _transfer: transfer,
            transfer_endpoint: format!("http://127.0.0.1:{transfer_port}"),
        };
        fx.start_sftp();
        fx
    }

    fn start_sftp(&mut self) {
        let d = self.dir.path();
        let args: Vec<String> = [
            "--port",
            &self.sftp_port.to_string(),
            "--root",
            &d.join("root").display().to_string(),
            "--host-key",
            &d.join("host_key").display().to_string(),
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--log",
            &d.join("sftp.jsonl").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.sftp = Some(PyServer::start(&support::python(), &server_script("sftp_server.py"), self.sftp_port, &args));
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(&self.dir.path().join("host_key"))
    }

    fn config(&self, connector: &str, directory: &str) -> SftpConfig {
        serde_json::from_value(json!({
            "host": "127.0.0.1",
            "port": self.sftp_port,
            "username": USER,
            "directory": directory,
            "host_key": self.fingerprint(),
            "transfer_connector": connector,
        }))
        .unwrap()
    }

    /// Store `size` bytes (from `seed`) as the export's file `name`; the file to deliver as
    /// `remote_name`, and its blob key.
    async fn stored(&self, name: &str, remote_name: &str, size: usize, seed: u8) -> (OutgoingFile, String) {
        let data: Vec<u8> = (0..size).map(|i| (i as u64 * 2654435761 + seed as u64) as u8).collect();
        let key = format!("tenants/t1/exports/exp_conn/{name}");
        self.blobs.put_bytes(&key, Bytes::from(data.clone())).await.unwrap();
        let file = OutgoingFile {
            remote_name: remote_name.to_string(),
            path: PathBuf::new(),
            size: size as u64,
            sha256: hex::encode(Sha256::digest(&data)),
            content_type: "text/csv".into(),
        };
        (file, key)
    }

    async fn deliver(&self, cfg: &SftpConfig, files: &[OutgoingFile], keys: &[String]) -> Result<Evidence, DeliverError> {
        let client = transfer::client(&self.moto.config(), Some(&self.transfer_endpoint));
        let run = TransferRun {
            client: &client,
            blobs: &self.blobs,
            staging: "tenants/t1/staging/exp_conn/transfer/a1/".into(),
            wait: TransferWait {
                first_poll: Duration::from_millis(50),
                max_poll: Duration::from_millis(400),
                transfer_limit: Duration::from_secs(60),
                listing_limit: Duration::from_secs(30),
            },
        };
        tokio::time::timeout(Duration::from_secs(120), transfer::deliver(cfg, &run, files, keys)).await.expect("delivery within 2 minutes")
    }

    fn events(&self, log: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    async fn staging_left(&self) -> Vec<String> {
        self.blobs.list("tenants/t1/staging/").await.unwrap().into_iter().map(|m| m.key).collect()
    }
}

fn permanent(r: Result<Evidence, DeliverError>) -> String {
    match r {
        Err(e @ DeliverError::Permanent { .. }) => e.to_string(),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_through_the_connector_under_temporary_names_then_moves() {
    let fx = Fixture::new().await;
    // Twelve files: two StartFileTransfer calls (ten files a call at most), one of 3 MiB, one empty.
    let mut files = Vec::new();
    let mut keys = Vec::new();
    for i in 0..12 {
        let size = match i {
            0 => 3 * 1024 * 1024 + 5,
            1 => 0,
            n => 1000 + n,
        };
        let (f, k) = fx.stored(&format!("part-{i}.csv"), &format!("2026-11-report {i}.csv"), size, i as u8).await;
        files.push(f);
        keys.push(k);
    }

    let ev = fx.deliver(&fx.config(GOOD, "/in/daily/"), &files, &keys).await.expect("delivered");

    // On the server's disk: exactly the final names, with the exact bytes.
    let on_disk = tree(&fx.root());
    let mut expected: Vec<String> = files.iter().map(|f| format!("in/daily/{}", f.remote_name)).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "no temporary file is left");
    for f in &files {
        assert_eq!(sha256_file(&fx.root().join("in/daily").join(&f.remote_name)), f.sha256, "{}", f.remote_name);
    }
    // The server never had a final name opened for writing: every byte went to a temporary
    // name, renamed once complete.
    let sftp_events = fx.events("sftp.jsonl");
    let opened: Vec<&str> = sftp_events.iter().filter(|e| e["op"] == "open").map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(opened.len(), 12, "{sftp_events:?}");
    assert!(opened.iter().all(|p| p.ends_with(PART_SUFFIX)), "{opened:?}");
    let renames = sftp_events.iter().filter(|e| e["op"] == "posix_rename").count();
    assert_eq!(renames, 12, "{sftp_events:?}");

    // The receipt: connector, transfers, paths, sizes, digests, and the host key that matched.
    let d = &ev.details;
    assert_eq!(d["transfer_connector"], GOOD);
    assert_eq!(d["host_key_fingerprint"], json!(fx.fingerprint()));
    assert_eq!(d["host_key_algorithm"], "ssh-ed25519");
    let transfer_ids = d["transfer_ids"].as_array().unwrap();
    assert_eq!(transfer_ids.len(), 2);
    assert_eq!(ev.location, format!("sftp://127.0.0.1:{}/in/daily/", fx.sftp_port));
    for (i, (f, e)) in files.iter().zip(&ev.files).enumerate() {
        assert_eq!(e["remote_path"], json!(format!("/in/daily/{}", f.remote_name)));
        assert_eq!((e["size"].clone(), e["remote_size"].clone()), (json!(f.size), json!(f.size)));
        assert_eq!(e["sha256"], json!(f.sha256));
        assert_eq!(e["transfer_id"], transfer_ids[i / 10]);
        assert!(e["move_id"].as_str().is_some_and(|m| !m.is_empty()), "{e:?}");
    }
    // What the connector was asked: S3 paths of the staged copies, the destination directory.
    let started: Vec<Value> = fx.events("transfer.jsonl").into_iter().filter(|e| e["op"] == "StartFileTransfer").collect();
    assert_eq!(started.len(), 2);
    assert_eq!(started[0]["remote_directory"], "/in/daily");
    let first = started[0]["paths"][0].as_str().unwrap();
    assert!(first.starts_with(&format!("/{BUCKET}/tenants/t1/staging/exp_conn/transfer/a1/")) && first.ends_with(PART_SUFFIX), "{first}");
    assert!(fx.staging_left().await.is_empty(), "the staged copies and listings are deleted");

    // Delivered again (a redelivery): the same names are replaced whole.
    let ev2 = fx.deliver(&fx.config(GOOD, "/in/daily"), &files[..2], &keys[..2]).await.expect("redelivered");
    assert_eq!(ev2.files.len(), 2);
    assert_eq!(tree(&fx.root()), expected);
    assert_eq!(sha256_file(&fx.root().join("in/daily").join(&files[0].remote_name)), files[0].sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_trusts_other_host_keys_is_refused_before_sending() {
    let fx = Fixture::new().await;
    let (f, k) = fx.stored("a.csv", "a.csv", 100, 1).await;
    let other = fingerprint_of(&fx.dir.path().join("other_key"));

    let m = permanent(fx.deliver(&fx.config(WRONG_KEYS, "/in/daily"), std::slice::from_ref(&f), std::slice::from_ref(&k)).await);
    assert!(m.contains("host key mismatch") && m.contains(WRONG_KEYS), "{m}");
    assert!(m.contains(&other) && m.contains(&fx.fingerprint()), "names both fingerprints: {m}");

    let m = permanent(fx.deliver(&fx.config(AS2, "/in/daily"), std::slice::from_ref(&f), std::slice::from_ref(&k)).await);
    assert!(m.contains("not an SFTP connector"), "{m}");

    let m = permanent(fx.deliver(&fx.config("c-00000000000000000", "/in"), std::slice::from_ref(&f), std::slice::from_ref(&k)).await);
    assert!(m.contains("ResourceNotFoundException"), "{m}");

    let mut elsewhere = fx.config(GOOD, "/in/daily");
    elsewhere.port += 1;
    let m = permanent(fx.deliver(&elsewhere, std::slice::from_ref(&f), std::slice::from_ref(&k)).await);
    assert!(m.contains(&format!("sftp://127.0.0.1:{}", fx.sftp_port)) && m.contains("set host and port"), "{m}");

    let started = fx.events("transfer.jsonl").into_iter().filter(|e| e["op"] != "DescribeConnector").count();
    assert_eq!(started, 0, "nothing was sent");
    assert!(tree(&fx.root()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transfer_is_the_delivery_error() {
    let mut fx = Fixture::new().await;
    let (f, k) = fx.stored("a.csv", "a.csv", 100, 1).await;
    let files = std::slice::from_ref(&f);
    let keys = std::slice::from_ref(&k);

    // The remote directory does not exist (a connector cannot create it): permanent.
    let m = permanent(fx.deliver(&fx.config(GOOD, "/missing/dir"), files, keys).await);
    assert!(m.contains("REMOTE_PATH_NOT_FOUND") && m.contains("could not send") && m.contains(GOOD), "{m}");
    assert!(fx.staging_left().await.is_empty(), "staged copies are deleted after a failure too");

    // The server is down: the connector cannot connect, worth another attempt.
    if let Some(mut s) = fx.sftp.take() {
        s.kill();
    }
    match fx.deliver(&fx.config(GOOD, "/in/daily"), files, keys).await {
        Err(e @ DeliverError::Transient { .. }) => assert!(e.to_string().contains("CONNECTION_ERROR"), "{e}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
    // Back up: the next attempt delivers.
    fx.start_sftp();
    fx.deliver(&fx.config(GOOD, "/in/daily"), files, keys).await.expect("delivered after the server came back");
    assert_eq!(tree(&fx.root()), ["in/daily/a.csv"]);
}

#[test]
fn the_local_service_refuses_a_connector_at_create_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::Server::start(&data, dir.path(), &[]);
    let token = server.key("t1", "exports:generate,exports:view");
    let sftp = |extra: Value| {
        let mut d = json!({"type": "sftp", "host": "sftp.example.com", "username": USER, "directory": "/in",
                           "host_key": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"});
        d.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": {"type": "csv"}, "destinations": [d]})
    };
    let errors = |spec: &Value| -> Vec<(String, Value)> {
        let r = server.req("POST", "/v1/exports", Some(&token), Some(spec));
        assert_eq!(r.status, 422, "{}", r.text());
        r.json()["errors"].as_array().unwrap().iter().map(|e| (e["pointer"].as_str().unwrap().to_string(), e["value"].clone())).collect()
    };

    let e = errors(&sftp(json!({"transfer_connector": GOOD})));
    assert_eq!(e, [("/destinations/0/transfer_connector".to_string(), json!(GOOD))]);
    let e = errors(&sftp(json!({"transfer_connector": "c-XYZ", "credential": "cred_x", "directory": "in"})));
    let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["/destinations/0/transfer_connector", "/destinations/0/credential", "/destinations/0/directory"]);
    let e = errors(&sftp(json!({})));
    assert_eq!(e, [("/destinations/0/credential".to_string(), Value::Null)]);
}
