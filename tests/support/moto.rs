//! Test support for the AWS adapters: a moto server (the AWS emulator) as a child process on a
//! free loopback port, killed on drop, and an SDK configuration that talks to it with fake
//! credentials. The venv comes from `bash infra/testbed/moto.sh`; without it the tests fail.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};

/// A running `python -m moto.server`.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    /// The server's stderr (its request log and any traceback), printed if a test panics.
    log: tempfile::NamedTempFile,
}

/// The Python of the moto venv: `EGRESS_MOTO_PYTHON`, else `<repo>/.venv-moto/bin/python`.
pub fn python() -> PathBuf {
    let p = std::env::var("EGRESS_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-moto/bin/python")));
    assert!(p.exists(), "the AWS adapter tests need moto at {}: run `bash infra/testbed/moto.sh` first", p.display());
    p
}

use crate::ports::free_port;

/// Services whose store, blobs, keys and triggers are `adapters`' (the AWS adapters on moto)
/// and whose runs go through the export state machine in the local runner.
pub fn with_local_runs(
    adapters: &egress::services::Services,
    settings: egress::config::Settings,
) -> (egress::services::Services, std::sync::Arc<egress::orchestrate::local::LocalOrchestrator>) {
    let settings = std::sync::Arc::new(settings);
    let ctx = egress::pipeline::StageContext {
        store: adapters.store.clone(),
        blobs: adapters.blobs.clone(),
        keys: adapters.keys.clone(),
        settings: settings.clone(),
    };
    let orchestrator = egress::orchestrate::local::LocalOrchestrator::new(ctx).unwrap();
    let services = egress::services::Services {
        store: adapters.store.clone(),
        blobs: adapters.blobs.clone(),
        keys: adapters.keys.clone(),
        orchestrator: orchestrator.clone(),
        triggers: adapters.triggers.clone(),
        settings,
        limiter: egress::services::RateLimiter::default(),
    };
    (services, orchestrator)
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            // S3 objects and parts stay in memory: by default moto spools every part over 5 MB
            // to a temporary file, so a 1 GiB upload would need gigabytes of free disk.
            .env("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", (4u64 << 30).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("moto log file"))
            .spawn()
            .expect("start moto.server");
        let mut moto = Moto { child, port, endpoint: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto.server exited at start ({status}); check the venv with `bash infra/testbed/moto.sh`");
            }
            if let Ok(r) = moto.get("/moto-api/")
                && r.status < 500
            {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto.server did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SDK configuration for this server: fake credentials and us-east-1, set here rather than
    /// read from the process environment.
    pub fn config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "moto-test")))
            .endpoint_url(&self.endpoint)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build()
    }

    /// A plain GET of a path on this server.
    pub fn get(&self, path_and_query: &str) -> std::io::Result<HttpResponse> {
        http_get(&format!("127.0.0.1:{}", self.port), path_and_query)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read(self.log.path()).unwrap_or_default();
            let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(8000)..]).into_owned();
            eprintln!("--- the last of moto.server's log (port {}) ---\n{tail}", self.port);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET (`Connection: close`) over a TCP socket, as any client would send it.
pub fn http_get(addr: &str, path_and_query: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("bad status"))?;
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Ok(HttpResponse { status, headers, body: raw[split + 4..].to_vec() })
}
