//! Test support for the object-store destinations: Azurite and the GCS emulator as child
//! processes on free loopback ports (killed on drop), an OAuth token endpoint that checks
//! service-account JWTs, the independent Python helpers (object_stores.py), and test files of
//! pseudo-random bytes. A missing tool fails the test that needs it.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use egress::deliver::OutgoingFile;
use sha2::{Digest, Sha256};

/// The well-known Azurite development account and its key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/object_stores.py");

pub use crate::ports::free_port;

/// A child server process, killed on drop.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
}

impl ServerProcess {
    /// Start `cmd` (already told to listen on `port`) and wait up to 30 s until the port
    /// accepts connections; a child that exits first fails the test.
    pub fn start(name: &'static str, mut cmd: Command, port: u16) -> ServerProcess {
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut server = ServerProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{name} exited at start ({status})");
            }
            if TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_millis(200)).is_ok() {
                return server;
            }
            assert!(Instant::now() < deadline, "{name} did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `azurite-blob`: `EGRESS_AZURITE`, else the one `infra/testbed/azurite.sh` installs.
pub fn azurite_bin() -> PathBuf {
    let p = std::env::var("EGRESS_AZURITE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/azurite/node_modules/.bin/azurite-blob")));
    assert!(p.exists(), "the Azure Blob tests need Azurite at {} (run infra/testbed/azurite.sh, or set EGRESS_AZURITE)", p.display());
    p
}

/// A running Azurite Blob service with its data in a temporary folder.
pub struct Azurite {
    pub server: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(azurite_bin());
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"]).arg(dir.path()).args([
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ]);
        Azurite { server: ServerProcess::start("azurite-blob", cmd, port), _dir: dir }
    }

    /// The base URL of the development account (what `EGRESS_AZURE_BLOB_ENDPOINT` would be).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.server.port)
    }
}

/// A running GCS emulator (in memory, no authentication).
pub struct GcsEmulator {
    pub server: ServerProcess,
}

impl GcsEmulator {
    pub fn start() -> GcsEmulator {
        let port = free_port();
        let mut cmd = Command::new(crate::support::python());
        cmd.args(["-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", &port.to_string(), "--in-memory"]);
        GcsEmulator { server: ServerProcess::start("gcp-storage-emulator", cmd, port) }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// Create a bucket through the JSON API.
    pub fn create_bucket(&self, name: &str) {
        let body = format!("{{\"name\": \"{name}\"}}");
        let r = crate::support::http(
            &self.addr(),
            "POST",
            "/storage/v1/b?project=egress-test",
            None,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
        .expect("create bucket");
        assert!(r.status == 200, "create bucket: {} {}", r.status, r.text());
    }

    /// An object's bytes (`alt=media`), or the status when it is not there.
    pub fn get_media(&self, bucket: &str, name: &str) -> Result<Vec<u8>, u16> {
        let path = format!("/storage/v1/b/{bucket}/o/{}?alt=media", encode_component(name));
        let r = crate::support::http(&self.addr(), "GET", &path, None, &[], None).expect("GET object");
        if r.status == 200 { Ok(r.body) } else { Err(r.status) }
    }

    /// An object's metadata resource.
    pub fn get_metadata(&self, bucket: &str, name: &str) -> serde_json::Value {
        let path = format!("/storage/v1/b/{bucket}/o/{}", encode_component(name));
        let r = crate::support::http(&self.addr(), "GET", &path, None, &[], None).expect("GET metadata");
        assert_eq!(r.status, 200, "metadata: {}", r.text());
        r.json()
    }
}

/// Percent-encode everything but unreserved characters (a path segment or query value).
pub fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Run the Python helper; fails the test when it fails. Returns stdout.
pub fn helper(args: &[&str]) -> String {
    let out = Command::new(crate::support::python()).arg(HELPER).args(args).output().expect("run object_stores.py");
    assert!(out.status.success(), "object_stores.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A blob read back by the Python helper (its own SharedKey signature).
pub struct AzureBlobRead {
    pub status: u16,
    pub headers: serde_json::Value,
    pub body: Vec<u8>,
}

pub fn azure_get(azurite: &Azurite, container: &str, blob: &str) -> AzureBlobRead {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    let line = helper(&["azure-get", &azurite.endpoint(), AZURITE_ACCOUNT, AZURITE_KEY, container, blob, out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("helper JSON");
    AzureBlobRead { status: v["status"].as_u64().unwrap() as u16, headers: v["headers"].clone(), body: std::fs::read(&out).unwrap() }
}

/// A blob's status and headers (HEAD, signed by the Python helper).
pub fn azure_head(azurite: &Azurite, container: &str, blob: &str) -> (u16, serde_json::Value) {
    let line = helper(&["azure-head", &azurite.endpoint(), AZURITE_ACCOUNT, AZURITE_KEY, container, blob]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("helper JSON");
    (v["status"].as_u64().unwrap() as u16, v["headers"].clone())
}

/// An OAuth token endpoint that checks service-account JWTs (see object_stores.py), with a
/// new service-account key whose public half it trusts.
pub struct TokenServer {
    pub server: ServerProcess,
    pub token_uri: String,
    pub key_json: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start() -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let token_uri = format!("http://127.0.0.1:{port}/token");
        helper(&["service-account", dir.path().to_str().unwrap(), &token_uri]);
        let log = dir.path().join("verdicts.jsonl");
        let mut cmd = Command::new(crate::support::python());
        cmd.arg(HELPER).args(["token-server", &port.to_string()]).arg(dir.path().join("public.pem")).arg(&token_uri).arg(&log);
        let server = ServerProcess::start("token server", cmd, port);
        let key_json = std::fs::read_to_string(dir.path().join("key.json")).unwrap();
        TokenServer { server, token_uri, key_json, log, _dir: dir }
    }

    /// The verdicts on every token request so far (`ok`, or why the JWT was refused).
    pub fn verdicts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Write `size` pseudo-random bytes (from `seed`) to `path`, streamed; returns their hex SHA-256.
pub fn write_random_file(path: &Path, size: u64, seed: u64) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        hasher.update(&buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    hex::encode(hasher.finalize())
}

/// A file of `size` pseudo-random bytes in `dir`, ready to deliver as `name`.
pub fn outgoing(dir: &Path, name: &str, size: u64, seed: u64, content_type: &str) -> OutgoingFile {
    let path = dir.join(format!("local-{seed}-{size}"));
    let sha256 = write_random_file(&path, size, seed);
    OutgoingFile { remote_name: name.to_string(), path, size, sha256, content_type: content_type.to_string() }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// This process's peak resident set since the last [`reset_peak_rss`], in bytes (VmHWM).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Reset the peak resident set to the current one (Linux: `5` to /proc/self/clear_refs).
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS through /proc/self/clear_refs");
}

/// Standard base64 with padding (RFC 4648), to compare with checksums S3 reports.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The SHA-256 digests of the `part_size` parts of a file, concatenated (S3's composite
/// checksum is the SHA-256 of this).
pub fn part_digests(path: &Path, part_size: usize) -> Vec<u8> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; part_size];
    loop {
        let mut filled = 0;
        while filled < part_size {
            let n = f.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return out;
        }
        out.extend_from_slice(&Sha256::digest(&buf[..filled]));
        if filled < part_size {
            return out;
        }
    }
}
