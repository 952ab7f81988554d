//! Test support for the destination tests: the Python test servers in tests/servers/ as child
//! processes (loopback, their PID kept, killed on drop), and files to deliver.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use egress::deliver::OutgoingFile;
use sha2::{Digest, Sha256};

pub use crate::ports::free_port;

/// `tests/servers/<name>`.
pub fn server_script(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/servers")).join(name)
}

/// A Python test server that prints `ready` once it listens.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    /// Start `python script args...` and wait (at most 30 s) for its `ready` line.
    pub fn start(python: &Path, script: &Path, port: u16, args: &[String]) -> PyServer {
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PyServer { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => break,
                Ok(_) => continue,
                Err(_) => {
                    let status = server.child.try_wait().ok().flatten();
                    panic!("{} did not print `ready` within 30 s (exit status: {status:?})", script.display());
                }
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL the server and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Write `size` pseudo-random bytes (xorshift, from `seed`) to `path` in 1 MiB pieces; returns
/// the file to deliver under `remote_name`.
pub fn random_file(path: &Path, remote_name: &str, size: u64, seed: u64, content_type: &str) -> OutgoingFile {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut state = seed | 1;
    let mut left = size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    OutgoingFile {
        remote_name: remote_name.to_string(),
        path: path.to_path_buf(),
        size,
        sha256: hex::encode(hasher.finalize()),
        content_type: content_type.to_string(),
    }
}

/// Hex SHA-256 of a file, read in pieces.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

/// The process's peak resident set size in bytes (`VmHWM`), where /proc has it.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A host key's fingerprint as OpenSSH prints it (`SHA256:...`).
pub fn fingerprint_of(key: &std::path::Path) -> String {
    let out = std::process::Command::new("ssh-keygen").arg("-lf").arg(key).output().expect("run ssh-keygen -lf");
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).expect("fingerprint field").to_string()
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
