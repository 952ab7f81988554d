//! Test support: start the real `egress` binary on a free loopback port, talk HTTP to it, and
//! check exported files with an independent reader (Python: csv/json modules and DuckDB).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_egress");

/// The `egress` binary the server tests start: `EGRESS_TEST_BIN` when set (a build kept apart
/// from a target folder others write to), else the one cargo built for these tests.
pub fn bin() -> String {
    std::env::var("EGRESS_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A running `egress serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: String,
    pub data_dir: PathBuf,
    pub dataset_root: PathBuf,
}

use crate::ports::free_port;

impl Server {
    pub fn start(data_dir: &Path, dataset_root: &Path, extra: &[&str]) -> Server {
        Self::start_on(data_dir, dataset_root, &format!("127.0.0.1:{}", free_port()), extra)
    }

    pub fn start_on(data_dir: &Path, dataset_root: &Path, addr: &str, extra: &[&str]) -> Server {
        Self::start_with_env(data_dir, dataset_root, addr, extra, &[])
    }

    /// [`Server::start_on`] with extra environment variables (e.g. the email sender's settings).
    pub fn start_with_env(data_dir: &Path, dataset_root: &Path, addr: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(["--data-dir", data_dir.to_str().unwrap(), "--addr", addr, "serve", "--dataset-root", dataset_root.to_str().unwrap()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("start egress serve");
        let s = Server {
            child,
            base: format!("http://{addr}"),
            addr: addr.to_string(),
            data_dir: data_dir.into(),
            dataset_root: dataset_root.into(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = s.try_request("GET", "/v1/health", None, &[], None)
                && r.status == 200
            {
                return s;
            }
            assert!(Instant::now() < deadline, "egress serve did not become healthy on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An API key made with the real CLI (`egress keys create`).
    pub fn key(&self, tenant: &str, permissions: &str) -> String {
        let out = Command::new(bin())
            .args(["--data-dir", self.data_dir.to_str().unwrap(), "keys", "create", "--tenant", tenant, "--permissions", permissions])
            .output()
            .expect("run egress keys create");
        assert!(out.status.success(), "keys create failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Resp> {
        http(&self.addr, method, path, token, headers, body)
    }

    pub fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let headers: &[(&str, &str)] = if body.is_some() { &[("content-type", "application/json")] } else { &[] };
        self.try_request(method, path, token, headers, bytes.as_deref()).expect("HTTP request")
    }

    /// Create an export and wait until it ends; returns the final export.
    pub fn export(&self, token: &str, spec: &Value) -> Value {
        let r = self.req("POST", "/v1/exports", Some(token), Some(spec));
        assert_eq!(r.status, 202, "create: {}", r.text());
        let location = r.header("location").expect("Location").to_string();
        self.wait(token, &location)
    }

    pub fn wait(&self, token: &str, location: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // The answer waits for the export's end, up to 5 s.
            let r = self.req("GET", &format!("{location}?wait_seconds=5"), Some(token), None);
            assert_eq!(r.status, 200, "get: {}", r.text());
            let e = r.json();
            if matches!(e["status"].as_str(), Some("completed" | "partial" | "failed" | "cancelled")) {
                return e;
            }
            assert!(Instant::now() < deadline, "export did not finish: {e}");
            // Paused: answered at once.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Download an export's file through the 302 and the signed URL; returns the bytes.
    pub fn download(&self, token: &str, id: &str) -> Vec<u8> {
        self.download_path(token, &format!("/v1/exports/{id}/download"))
    }

    /// Download one named file of an export.
    pub fn download_file(&self, token: &str, id: &str, name: &str) -> Vec<u8> {
        self.download_path(token, &format!("/v1/exports/{id}/download?file={name}"))
    }

    fn download_path(&self, token: &str, route: &str) -> Vec<u8> {
        let r = self.req("GET", route, Some(token), None);
        assert_eq!(r.status, 302, "download: {}", r.text());
        let url = r.header("location").unwrap().to_string();
        let path = url.strip_prefix(&self.base).expect("signed URL on this host");
        let f = self.req("GET", path, None, None);
        assert_eq!(f.status, 200, "signed URL: {}", f.text());
        f.body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The problem's `code`, after checking the response is problem+json.
    pub fn problem_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text());
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A plain HTTP/1.1 request over a TCP socket (`Connection: close`), so the tests speak to the
/// server exactly as any client would.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.map_or(0, <[u8]>::len)));
    s.write_all(head.as_bytes())?;
    // A server may answer before it has read the whole body (413) and close the connection:
    // the write then fails, and the answer it sent is read all the same.
    let closed_early = |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset);
    if let Some(b) = body
        && let Err(e) = s.write_all(b)
        && !closed_early(&e)
    {
        return Err(e);
    }
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw)
        && !(closed_early(&e) && raw.windows(4).any(|w| w == b"\r\n\r\n"))
    {
        return Err(e);
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("bad status"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Ok(Resp { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

/// The Python that has the independent readers (set up by infra/testbed/python.sh). The full
/// test command always sets it; a missing reader is a failure, never a skip.
pub fn python() -> PathBuf {
    let p = std::env::var("EGRESS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")));
    assert!(p.exists(), "the test readers need Python with duckdb at {} (run infra/testbed/python.sh)", p.display());
    p
}

/// Check an exported file against its source with tests/readers/check_export.py.
pub fn check_export(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_export.py");
    let out = Command::new(python()).arg(script).args(args).output().expect("run check_export.py");
    assert!(
        out.status.success(),
        "independent reader rejected the export:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A synthetic transactions dataset of `rows` rows in `dir`: files of 10,000 rows in row groups
/// of 2,500, so that small data still makes several files and chunks.
pub fn write_dataset(dir: &Path, rows: u64) -> Vec<PathBuf> {
    egress::synthetic::transactions::write_parquet_with(dir, rows, 10_000, 2_500, |_| {}).expect("write dataset")
}

/// A running `egress` over a synthetic transactions dataset of `rows` rows (under its dataset
/// root), read in chunks of `chunk_rows` so that even small data is exported in several parts,
/// and an admin key of tenant `acme`.
pub struct Fixture {
    pub server: Server,
    pub dataset: PathBuf,
    pub token: String,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(rows: u64, chunk_rows: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dataset = dir.path().join("datasets/transactions");
        write_dataset(&dataset, rows);
        let server = Server::start(&dir.path().join("data"), &dir.path().join("datasets"), &["--chunk-rows", &chunk_rows.to_string()]);
        let token = server.key("acme", "exports:admin");
        Fixture { server, dataset, token, dir }
    }

    /// The dataset's files, as a glob the readers take.
    pub fn source(&self) -> String {
        format!("{}/*.parquet", self.dataset.display())
    }

    /// Write `bytes` to `name` in the fixture's folder; returns the path.
    pub fn save(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }
}

/// A spec over the fixture's dataset, with the fields of `extra` added.
pub fn dataset_spec(f: &Fixture, extra: Value) -> Value {
    let mut spec = serde_json::json!({"source": {"type": "dataset", "local_path": f.dataset.to_str().unwrap()}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}
