//! SFTP delivery against a real SFTP server (asyncssh, tests/servers/sftp_server.py) on
//! loopback: key and password auth, the host key pin, directories, replacement, and the faults
//! (server killed mid-upload and restarted, refused auth, a file never visible under its final
//! name until complete). Fingerprints are checked against `ssh-keygen -lf`.

use crate::delivery;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use delivery::{PyServer, fingerprint_of, free_port, random_file, server_script, sha256_file, tree};
use egress::deliver::sftp::{SftpAuth, SftpConfig, SftpTimeouts, deliver};
use egress::deliver::{DeliverError, OutgoingFile};
use serde_json::{Value, json};

const USER: &str = "acme";
const PASSWORD: &str = "correct horse battery staple";

/// A directory served by the SFTP server, with its host key, a client key and the event log.
struct Fixture {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<PyServer>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let key = dir.path().join("client_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "egress-test", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen is needed (openssh-client)");
        assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        Fixture { dir, port: free_port(), server: None }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }

    fn host_key(&self) -> PathBuf {
        self.dir.path().join("host_key")
    }

    fn start(&mut self, extra: &[&str]) {
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--root".into(),
            self.root().display().to_string(),
            "--host-key".into(),
            self.host_key().display().to_string(),
            "--user".into(),
            USER.into(),
            "--password".into(),
            PASSWORD.into(),
            "--authorized-key".into(),
            self.dir.path().join("client_key.pub").display().to_string(),
            "--log".into(),
            self.log().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.server = Some(PyServer::start(&support::python(), &server_script("sftp_server.py"), self.port, &args));
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
    }

    /// The host key's fingerprint as OpenSSH prints it.
    fn fingerprint(&self) -> String {
        fingerprint_of(&self.host_key())
    }

    fn config(&self, directory: &str) -> SftpConfig {
        serde_json::from_value(json!({
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "directory": directory,
            "host_key": self.fingerprint(),
            "credential": "cred_test"
        }))
        .unwrap()
    }

    fn key_auth(&self) -> SftpAuth {
        SftpAuth::PrivateKey { openssh_pem: std::fs::read_to_string(self.dir.path().join("client_key")).unwrap(), passphrase: None }
    }

    fn file(&self, name: &str, size: u64, seed: u64) -> OutgoingFile {
        let local = self.dir.path().join(format!("local-{seed}-{name}"));
        random_file(&local, name, size, seed, "application/octet-stream")
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn timeouts() -> SftpTimeouts {
    SftpTimeouts { connect: Duration::from_secs(10), request: Duration::from_secs(20) }
}

fn assert_permanent(r: &Result<egress::deliver::Evidence, DeliverError>, needle: &str) -> String {
    match r {
        Err(e @ DeliverError::Permanent { .. }) => {
            let m = e.to_string();
            assert!(m.contains(needle), "expected {needle:?} in: {m}");
            m
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_auth_creates_nested_directories_and_delivers_exact_bytes() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    let files = vec![fx.file("big.bin", 3 * 1024 * 1024 + 17, 1), fx.file("small.csv", 1000, 2), fx.file("empty.txt", 0, 3)];

    let ev = deliver(&fx.config("in/2026/11"), &fx.key_auth(), &files, timeouts()).await.expect("delivered");

    assert_eq!(ev.location, format!("sftp://127.0.0.1:{}/in/2026/11/", fx.port));
    assert_eq!(ev.details["host_key_fingerprint"], json!(fx.fingerprint()));
    assert_eq!(ev.details["host_key_algorithm"], json!("ssh-ed25519"));
    assert!(ev.details["server_banner"].as_str().unwrap().starts_with("SSH-2.0-AsyncSSH"), "{:?}", ev.details);
    assert_eq!(tree(&fx.root()), ["in/2026/11/big.bin", "in/2026/11/empty.txt", "in/2026/11/small.csv"]);
    for (f, e) in files.iter().zip(&ev.files) {
        let on_server = fx.root().join("in/2026/11").join(&f.remote_name);
        assert_eq!(sha256_file(&on_server), f.sha256, "{}", f.remote_name);
        assert_eq!(e["remote_path"], json!(format!("/in/2026/11/{}", f.remote_name)));
        assert_eq!(e["size"], json!(f.size));
        assert_eq!(e["sha256"], json!(f.sha256));
    }
    // The final names only ever came from an atomic rename of a complete temporary file.
    let events = fx.events();
    assert!(events.iter().any(|e| e["op"] == "auth" && e["method"] == "publickey" && e["ok"] == true));
    for f in &files {
        let final_path = format!("/in/2026/11/{}", f.remote_name);
        assert!(!events.iter().any(|e| e["op"] == "open" && e["path"] == json!(final_path)), "{final_path} was opened");
        let renames: Vec<&Value> = events.iter().filter(|e| e["op"] == "posix_rename" && e["new"] == json!(final_path)).collect();
        assert_eq!(renames.len(), 1, "{events:?}");
        let closed = events.iter().find(|e| e["op"] == "close" && e["path"] == renames[0]["old"]).expect("temporary file closed");
        assert_eq!(closed["written"], json!(f.size));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_replaces_an_existing_file_atomically() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    std::fs::create_dir(fx.root().join("out")).unwrap();
    let auth = SftpAuth::Password(PASSWORD.into());
    let first = fx.file("report.csv", 200_000, 10);
    deliver(&fx.config("/out"), &auth, std::slice::from_ref(&first), timeouts()).await.expect("first delivery");
    let second = fx.file("report.csv", 150_000, 11);
    let ev = deliver(&fx.config("/out/"), &auth, std::slice::from_ref(&second), timeouts()).await.expect("second delivery");

    assert_eq!(ev.location, format!("sftp://127.0.0.1:{}/out/", fx.port));
    assert_eq!(tree(&fx.root()), ["out/report.csv"]);
    assert_eq!(sha256_file(&fx.root().join("out/report.csv")), second.sha256);
    assert!(fx.events().iter().any(|e| e["op"] == "auth" && e["method"] == "password" && e["ok"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pinned_host_key_is_refused_before_login() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    let mut cfg = fx.config("in");
    let other = fx.dir.path().join("client_key.pub");
    cfg.host_key = fingerprint_of(&other);
    let files = [fx.file("a.bin", 10_000, 4)];

    let r = deliver(&cfg, &SftpAuth::Password(PASSWORD.into()), &files, timeouts()).await;

    let m = assert_permanent(&r, "host key mismatch");
    assert!(m.contains(&cfg.host_key) && m.contains(&fx.fingerprint()), "both fingerprints named: {m}");
    assert!(!m.contains(PASSWORD));
    assert!(fx.events().iter().all(|e| e["op"] != "auth"), "credentials were offered to an unpinned server: {:?}", fx.events());
    assert!(tree(&fx.root()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_auth_is_permanent_and_never_shows_the_secret() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    let files = [fx.file("a.bin", 10_000, 5)];
    let wrong = "hunter2-not-the-password";

    let started = Instant::now();
    let r = deliver(&fx.config("."), &SftpAuth::Password(wrong.into()), &files, timeouts()).await;
    let m = assert_permanent(&r, "refused password authentication");
    assert!(!m.contains(wrong), "{m}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed at once");

    // A key the server does not know.
    let other = fx.dir.path().join("other_key");
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).output().unwrap();
    assert!(out.status.success());
    let pem = std::fs::read_to_string(&other).unwrap();
    let r = deliver(&fx.config("."), &SftpAuth::PrivateKey { openssh_pem: pem.clone(), passphrase: None }, &files, timeouts()).await;
    let m = assert_permanent(&r, "refused public key authentication");
    assert!(!m.contains("PRIVATE KEY") && !m.contains(pem.lines().nth(1).unwrap()), "{m}");

    // Not a key at all.
    let r = deliver(
        &fx.config("."),
        &SftpAuth::PrivateKey { openssh_pem: "garbage".into(), passphrase: Some("pp".into()) },
        &files,
        timeouts(),
    )
    .await;
    assert_permanent(&r, "could not be read");
    assert!(tree(&fx.root()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_directory_without_create_is_permanent() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    let mut cfg = fx.config("nowhere/deep");
    cfg.create_directories = false;
    let r = deliver(&cfg, &fx.key_auth(), &[fx.file("a.bin", 100, 6)], timeouts()).await;
    assert_permanent(&r, "does not exist");
    assert!(!fx.root().join("nowhere").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_transient() {
    let fx = Fixture::new();
    // No server started on this port; the pin is any well-formed fingerprint.
    let mut cfg: SftpConfig = serde_json::from_value(json!({
        "host": "127.0.0.1", "port": fx.port, "username": USER,
        "host_key": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "credential": "cred_test"
    }))
    .unwrap();
    let r = deliver(&cfg, &SftpAuth::Password(PASSWORD.into()), &[fx.file("a.bin", 10, 7)], timeouts()).await;
    assert!(matches!(&r, Err(DeliverError::Transient { .. })), "{r:?}");
    cfg.host = "bad host".into();
    let r = deliver(&cfg, &SftpAuth::Password(PASSWORD.into()), &[], timeouts()).await;
    assert_permanent(&r, "/host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_upload_then_resumed_after_restart() {
    let mut fx = Fixture::new();
    const SIZE: u64 = 50 * 1024 * 1024;
    const SLOW_AFTER: u64 = 16 * 1024 * 1024;
    fx.start(&["--slow-after", &SLOW_AFTER.to_string()]);
    let file = fx.file("big.bin", SIZE, 8);
    let cfg = fx.config("drop");
    let final_path = fx.root().join("drop/big.bin");

    // A watcher: the final name must never exist with fewer bytes than the whole file.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, final_path) = (stop.clone(), final_path.clone());
        std::thread::spawn(move || {
            let mut partial_seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(m) = std::fs::metadata(&final_path)
                    && m.len() != SIZE
                {
                    partial_seen.push(m.len());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            partial_seen
        })
    };

    let attempt = {
        let (cfg, auth, file) = (cfg.clone(), fx.key_auth(), file.clone());
        tokio::spawn(async move { deliver(&cfg, &auth, &[file], timeouts()).await })
    };
    // Wait until the temporary file holds more than the fast part, then kill the server.
    let part = |root: &Path| -> Option<PathBuf> {
        std::fs::read_dir(root.join("drop"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".egress-part"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(p) = part(&fx.root())
            && std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > SLOW_AFTER
        {
            break;
        }
        assert!(Instant::now() < deadline, "the upload did not pass {SLOW_AFTER} bytes within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fx.kill();
    let first = tokio::time::timeout(Duration::from_secs(60), attempt).await.expect("attempt ended").unwrap();
    assert!(matches!(&first, Err(DeliverError::Transient { .. })), "a killed server is transient: {first:?}");
    let part_path = part(&fx.root()).expect("the temporary file stays");
    let left = std::fs::metadata(&part_path).unwrap().len();
    assert!(left > SLOW_AFTER && left < SIZE, "temporary file holds {left} bytes");
    assert!(!final_path.exists(), "no final file after a broken upload");

    // Same directory, port and host key: the second attempt resumes.
    let events_before = fx.events().len();
    fx.start(&[]);
    let ev = tokio::time::timeout(Duration::from_secs(120), deliver(&cfg, &fx.key_auth(), std::slice::from_ref(&file), timeouts()))
        .await
        .expect("second attempt within 120 s")
        .expect("second attempt delivers");
    stop.store(true, Ordering::Relaxed);
    let partial_seen = watcher.join().unwrap();
    assert!(partial_seen.is_empty(), "the final name showed partial sizes: {partial_seen:?}");

    assert_eq!(sha256_file(&final_path), file.sha256);
    let resumed_from = ev.files[0]["resumed_from"].as_u64().unwrap();
    assert!(resumed_from > 0 && resumed_from <= left, "resumed from {resumed_from}, {left} bytes were there");
    let second: Vec<Value> = fx.events().split_off(events_before);
    let closed = second.iter().find(|e| e["op"] == "close" && e["path"].as_str().unwrap().ends_with(".egress-part")).expect("close event");
    let written = closed["written"].as_u64().unwrap();
    assert_eq!(written, SIZE - resumed_from, "the server received only the rest");
    assert_eq!(closed["min_offset"].as_u64().unwrap(), resumed_from);
    assert!(written < SIZE - SLOW_AFTER / 2, "resumed, not restarted: {written} bytes sent again");
    assert_eq!(tree(&fx.root()), ["drop/big.bin"], "no temporary file left");
}

/// Throughput on loopback against the asyncssh server: `cargo test -p egress-functions --test
/// sftp_delivery -- --ignored --nocapture`. Prints MB/s and the peak RSS of the test process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_200_mb() {
    let mut fx = Fixture::new();
    fx.start(&[]);
    let size: u64 = std::env::var("EGRESS_SFTP_BENCH_MB").ok().and_then(|s| s.parse().ok()).unwrap_or(200) * 1024 * 1024;
    let file = fx.file("bench.bin", size, 9);
    let started = Instant::now();
    deliver(&fx.config("bench"), &fx.key_auth(), std::slice::from_ref(&file), timeouts()).await.expect("delivered");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sftp upload: {} MB in {secs:.2} s = {:.1} MB/s; peak RSS {} MB",
        size / 1_000_000,
        size as f64 / 1e6 / secs,
        delivery::peak_rss().unwrap_or(0) / 1_000_000
    );
    assert_eq!(sha256_file(&fx.root().join("bench/bench.bin")), file.sha256);
}
