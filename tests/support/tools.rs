//! The real tools recipients use, run from tests: GnuPG with a home of its own, and a runner
//! with a deadline whose output goes to files (a chatty tool cannot block on a full pipe). A
//! missing tool fails the test: the test bed installs gpg, age and 7z (infra/testbed/apt.sh).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Run a tool to completion (at most two minutes), its output captured in files so that a
/// chatty tool cannot block on a full pipe.
pub fn run(cmd: &mut Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e} (the test bed installs gpg, age and 7z: infra/testbed/apt.sh)"));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took more than {TOOL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: std::fs::read(out_path).unwrap(), stderr: std::fs::read(err_path).unwrap() }
}

pub fn ok(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{what} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A GnuPG home of its own; its agent is stopped when it is dropped.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

/// What `gpg --with-colons --list-keys` says about a key.
#[derive(Debug)]
pub struct Listed {
    pub fingerprint: String,
    pub key_id: String,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub user_ids: Vec<String>,
    pub encryption_fingerprint: Option<String>,
}

impl Gpg {
    pub fn new() -> Self {
        let home = tempfile::Builder::new().prefix("gpg-").tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args(["--batch", "--no-tty", "--yes"]);
        c
    }

    pub fn gpg(&self, args: &[&str]) -> Output {
        ok(self.cmd().args(args))
    }

    /// Make a key without a passphrase; returns its fingerprint.
    pub fn make_key(&self, uid: &str, algo: &str, usage: &str, expire: &str, faked_time: Option<&str>) -> String {
        let mut c = self.cmd();
        if let Some(t) = faked_time {
            c.arg(format!("--faked-system-time={t}"));
        }
        ok(c.args(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, algo, usage, expire]));
        self.list(uid).fingerprint
    }

    /// Add an encryption subkey, as `gpg --quick-add-key` does.
    pub fn add_encryption_subkey(&self, fingerprint: &str, algo: &str, expire: &str) {
        self.gpg(&["--passphrase", "", "--pinentry-mode", "loopback", "--quick-add-key", fingerprint, algo, "encr", expire]);
    }

    /// An RSA 3072 key the way banks make them: a signing primary key and an encryption subkey.
    pub fn make_rsa_key(&self, uid: &str, expire: &str) -> String {
        let fpr = self.make_key(uid, "rsa3072", "sign", expire, None);
        self.add_encryption_subkey(&fpr, "rsa3072", expire);
        fpr
    }

    pub fn list(&self, uid: &str) -> Listed {
        let out = self.gpg(&["--with-colons", "--fixed-list-mode", "--list-keys", &format!("={uid}")]);
        let text = String::from_utf8(out.stdout).unwrap();
        let time = |s: &str| (!s.is_empty()).then(|| Utc.timestamp_opt(s.parse().unwrap(), 0).unwrap());
        let mut listed: Option<Listed> = None;
        let mut in_encryption_sub = false;
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f[0] {
                "pub" => {
                    listed = Some(Listed {
                        fingerprint: String::new(),
                        key_id: f[4].to_string(),
                        created: time(f[5]).unwrap(),
                        expires: time(f[6]),
                        user_ids: Vec::new(),
                        encryption_fingerprint: None,
                    })
                }
                "fpr" => {
                    let l = listed.as_mut().unwrap();
                    if l.fingerprint.is_empty() {
                        l.fingerprint = f[9].to_string();
                    } else if in_encryption_sub {
                        l.encryption_fingerprint = Some(f[9].to_string());
                    }
                }
                "uid" => listed.as_mut().unwrap().user_ids.push(f[9].to_string()),
                "sub" => in_encryption_sub = f[11].contains('e') && f[1] != "e" && f[1] != "r",
                _ => {}
            }
        }
        listed.expect("gpg listed the key")
    }

    pub fn export(&self, fingerprint: &str, armor: bool) -> Vec<u8> {
        let mut args = vec![];
        if armor {
            args.push("--armor");
        }
        args.extend(["--export", fingerprint]);
        let out = self.gpg(&args);
        assert!(!out.stdout.is_empty(), "gpg exported nothing for {fingerprint}");
        out.stdout
    }

    pub fn decrypt(&self, file: &Path) -> Vec<u8> {
        let out = file.with_extension("decrypted");
        self.gpg(&["--output", out.to_str().unwrap(), "--decrypt", file.to_str().unwrap()]);
        std::fs::read(out).unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = run(Command::new("gpgconf").env("GNUPGHOME", self.home.path()).args(["--kill", "gpg-agent"]));
    }
}
