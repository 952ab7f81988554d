//! SFTP destination: files are uploaded over SSH to a directory on the recipient's server.
//!
//! The server is identified by a pinned host key fingerprint (no trust on first use). Each file
//! is streamed to a temporary name in the target directory and renamed to its final name only
//! once complete, so a reader polling the directory never sees a partial file under the final
//! name. A broken upload is resumed on the next attempt from what the server already holds.
//!
//! On AWS a destination may name a Transfer Family SFTP connector (`transfer_connector`): the
//! connector then sends the files from the data bucket, holds the login, and trusts the
//! server's host keys ([`transfer`]). Without one, this module's direct client connects
//! itself (local host, and any host that can reach the server).

mod connect;
mod fingerprint;
pub mod transfer;
mod upload;

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

/// Where and as whom to upload: the `sftp` destination of an export spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpConfig {
    /// Server host name or IP address.
    pub host: String,
    /// SSH port (default 22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Login name on the server.
    pub username: String,
    /// Target directory: absolute, or relative to the login directory (default `.`).
    #[serde(default = "default_directory")]
    pub directory: String,
    /// Pinned host key: the OpenSSH `SHA256:...` fingerprint of the server's host key, as
    /// `ssh-keygen -lf` prints it. A server presenting another key is refused.
    pub host_key: String,
    /// Id of the stored credential (`cred_...`) holding the password or private key. Required
    /// for the direct client; left out with `transfer_connector` (the connector's own secret
    /// holds the login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Create the target directory and its parents when missing (default true). A Transfer
    /// Family connector cannot: with one, the directory must exist.
    #[serde(default = "default_true")]
    pub create_directories: bool,
    /// Id of an AWS Transfer Family SFTP connector (`c-` and 17 hex digits) to send the files
    /// through (AWS deployment only). Its URL must name `host` and `port`, and one of its
    /// trusted host keys must have the `host_key` fingerprint; `directory` must be absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_connector: Option<String>,
}

fn default_port() -> u16 {
    22
}

fn default_directory() -> String {
    ".".to_string()
}

fn default_true() -> bool {
    true
}

const MAX_HOST_LEN: usize = 253;
const MAX_USERNAME_LEN: usize = 255;
const MAX_DIRECTORY_LEN: usize = 1024;

impl SftpConfig {
    /// Create-time checks; every problem is pushed to `errs` under `pointer_prefix` (the JSON
    /// pointer of this destination, e.g. `/destinations/0`).
    pub fn validate(&self, pointer_prefix: &str, errs: &mut ValidationErrors) {
        let p = |field: &str| format!("{pointer_prefix}/{field}");
        if !is_host(&self.host) {
            errs.push(
                p("host"),
                self.host.as_str(),
                "a host name (letters, digits, `-`, `_`, dots; at most 253 characters) or an IP address",
            );
        }
        if self.port == 0 {
            errs.push(p("port"), self.port, "a port from 1 to 65535");
        }
        if self.username.is_empty() || self.username.len() > MAX_USERNAME_LEN || self.username.chars().any(char::is_control) {
            errs.push(p("username"), self.username.as_str(), "1 to 255 bytes without control characters");
        }
        if !is_directory(&self.directory) {
            errs.push(
                p("directory"),
                self.directory.as_str(),
                "a directory path (absolute, or relative to the login directory) of at most 1024 bytes, without `..` segments or control characters",
            );
        }
        if parse_fingerprint(&self.host_key).is_none() {
            errs.push(
                p("host_key"),
                self.host_key.as_str(),
                "the server's host key fingerprint as `ssh-keygen -lf` prints it: `SHA256:` and 43 base64 characters",
            );
        }
        match (&self.transfer_connector, &self.credential) {
            (None, None) => errs.push(
                p("credential"),
                Value::Null,
                "the id of a stored credential (`cred_...`) with the password or private key: required without `transfer_connector`",
            ),
            (None, Some(c)) if !crate::model::credential::is_credential_id(c) => {
                errs.push(p("credential"), c.as_str(), "the id of a stored credential: `cred_` and 1 to 64 letters, digits, `_` or `-`")
            }
            (None, Some(_)) => {}
            (Some(connector), credential) => {
                if !transfer::is_connector_id(connector) {
                    errs.push(
                        p("transfer_connector"),
                        connector.as_str(),
                        "a Transfer Family connector id: `c-` and 17 lowercase hex digits, e.g. `c-0123456789abcdef0`",
                    );
                }
                if let Some(c) = credential {
                    errs.push(
                        p("credential"),
                        c.as_str(),
                        "no credential with `transfer_connector`: the connector's own secret (its UserSecretId) holds the login",
                    );
                }
                if !self.directory.starts_with('/') {
                    errs.push(
                        p("directory"),
                        self.directory.as_str(),
                        "an absolute directory path (`/...`) with `transfer_connector`: the connector moves files by absolute path",
                    );
                }
            }
        }
    }

    /// `sftp://host:port` for messages and receipts (IPv6 addresses in brackets).
    fn target(&self) -> String {
        if self.host.contains(':') {
            format!("sftp://[{}]:{}", self.host, self.port)
        } else {
            format!("sftp://{}:{}", self.host, self.port)
        }
    }
}

fn is_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && host.len() <= MAX_HOST_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_directory(dir: &str) -> bool {
    !dir.is_empty() && dir.len() <= MAX_DIRECTORY_LEN && !dir.chars().any(char::is_control) && !dir.split('/').any(|seg| seg == "..")
}

/// The 32 bytes of a `SHA256:<base64>` fingerprint (unpadded, as OpenSSH prints it; trailing
/// `=` padding is tolerated).
pub(crate) fn parse_fingerprint(pin: &str) -> Option<[u8; 32]> {
    let b64 = pin.trim().strip_prefix("SHA256:")?.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).ok()?;
    bytes.try_into().ok()
}

/// How to log in; resolved by the caller from the stored credential.
#[derive(Clone)]
pub enum SftpAuth {
    /// Password authentication.
    Password(String),
    /// Public key authentication with an OpenSSH (or PEM) private key.
    PrivateKey {
        /// The private key file's text (`-----BEGIN OPENSSH PRIVATE KEY-----...`).
        openssh_pem: String,
        /// Passphrase of an encrypted key.
        passphrase: Option<String>,
    },
}

impl std::fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SftpAuth::Password(_) => f.write_str("Password(<redacted>)"),
            SftpAuth::PrivateKey { passphrase, .. } => f
                .debug_struct("PrivateKey")
                .field("openssh_pem", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl SftpAuth {
    fn method(&self) -> &'static str {
        match self {
            SftpAuth::Password(_) => "password",
            SftpAuth::PrivateKey { .. } => "public key",
        }
    }
}

/// Time limits of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SftpTimeouts {
    /// TCP connect plus the SSH handshake.
    pub connect: Duration,
    /// Each authentication step and each SFTP request (a write waiting longer for its
    /// acknowledgement fails the attempt as transient).
    pub request: Duration,
}

impl Default for SftpTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(30), request: Duration::from_secs(60) }
    }
}

/// Upload `files` to the configured directory: connect, check the host key against the pin,
/// authenticate, create the directory when allowed, then per file upload to a temporary name
/// (resuming a previous attempt's temporary file), sync, rename to the final name and check
/// its size. Errors say whether another attempt may succeed; none contains a secret.
pub async fn deliver(cfg: &SftpConfig, auth: &SftpAuth, files: &[OutgoingFile], timeouts: SftpTimeouts) -> Result<Evidence, DeliverError> {
    let mut errs = ValidationErrors::new();
    cfg.validate("", &mut errs);
    if !errs.is_empty() {
        return Err(DeliverError::permanent(format!("invalid SFTP destination: {errs}")));
    }
    let target = cfg.target();
    let session = connect::open(cfg, auth, timeouts, &target).await?;
    let result = upload_all(&session, cfg, files, &target).await;
    session.close().await;
    let (directory, evidence) = result?;

    let mut details = Map::new();
    details.insert("host_key_fingerprint".into(), json!(session.host_key.fingerprint));
    details.insert("host_key_algorithm".into(), json!(session.host_key.algorithm));
    if let Some(banner) = &session.banner {
        details.insert("server_banner".into(), json!(banner));
    }
    let location = format!("{target}{}/", directory.trim_end_matches('/'));
    Ok(Evidence { location, files: evidence, details })
}

async fn upload_all(
    session: &connect::Session,
    cfg: &SftpConfig,
    files: &[OutgoingFile],
    target: &str,
) -> Result<(String, Vec<Map<String, Value>>), DeliverError> {
    let directory = upload::prepare_directory(session, &cfg.directory, cfg.create_directories, target).await?;
    let mut evidence = Vec::with_capacity(files.len());
    for file in files {
        evidence.push(upload::upload_file(session, &directory, file, target).await?);
    }
    Ok((directory, evidence))
}

/// Classify an SFTP request's failure: refusals of the request itself are permanent, broken
/// sessions and timeouts transient.
fn sftp_error(target: &str, what: &str, err: russh_sftp::client::error::Error) -> DeliverError {
    use russh_sftp::client::error::Error;
    use russh_sftp::protocol::StatusCode;
    let message = format!("{target}: {what}: {err}");
    match &err {
        Error::Status(s) => match s.status_code {
            StatusCode::PermissionDenied | StatusCode::NoSuchFile | StatusCode::OpUnsupported | StatusCode::BadMessage => {
                DeliverError::permanent(message)
            }
            _ => DeliverError::transient(message),
        },
        Error::Limited(_) => DeliverError::permanent(message),
        Error::IO(_) | Error::Timeout | Error::UnexpectedPacket | Error::UnexpectedBehavior(_) => DeliverError::transient(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SftpConfig {
        serde_json::from_value(json!({
            "host": "sftp.example.com",
            "username": "acme",
            "host_key": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "credential": "cred_0193a1b2c3"
        }))
        .unwrap()
    }

    #[test]
    fn defaults_apply() {
        let c = config();
        assert_eq!((c.port, c.directory.as_str(), c.create_directories), (22, ".", true));
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/0", &mut errs);
        assert!(errs.is_empty(), "{errs}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(config()).unwrap();
        v["password"] = json!("x");
        let err = crate::model::validation::from_json::<SftpConfig>(&v).unwrap_err();
        assert_eq!(err.0[0].pointer, "/password");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut c = config();
        c.host = "bad host".into();
        c.port = 0;
        c.username = "a\nb".into();
        c.directory = "in/../etc".into();
        c.host_key = "MD5:aa:bb".into();
        c.credential = Some("secret".into());
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/2", &mut errs);
        let pointers: Vec<&str> = errs.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/destinations/2/host",
                "/destinations/2/port",
                "/destinations/2/username",
                "/destinations/2/directory",
                "/destinations/2/host_key",
                "/destinations/2/credential"
            ]
        );
        assert_eq!(errs.0[3].value, json!("in/../etc"));
    }

    #[test]
    fn a_connector_replaces_the_credential_and_needs_an_absolute_directory() {
        let mut c = config();
        c.credential = None;
        c.transfer_connector = Some("c-0123456789abcdef0".into());
        c.directory = "/in/daily".into();
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/0", &mut errs);
        assert!(errs.is_empty(), "{errs}");

        c.transfer_connector = Some("c-123".into());
        c.credential = Some("cred_x".into());
        c.directory = "in".into();
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/0", &mut errs);
        let pointers: Vec<&str> = errs.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/destinations/0/transfer_connector", "/destinations/0/credential", "/destinations/0/directory"]);
        assert_eq!(errs.0[0].value, json!("c-123"));

        c.transfer_connector = None;
        c.credential = None;
        c.directory = ".".into();
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/0", &mut errs);
        assert_eq!((errs.0.len(), errs.0[0].pointer.as_str(), &errs.0[0].value), (1, "/destinations/0/credential", &Value::Null));
    }

    #[test]
    fn hosts_and_directories() {
        for ok in ["10.0.0.1", "::1", "sftp.example.com", "a-b_c.example.", "localhost"] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in ["", "-a.com", "a..b", "a b", "a/b", "host:22"] {
            assert!(!is_host(bad), "{bad}");
        }
        for ok in [".", "/", "in", "/srv/in/", "a/./b", "..x/y"] {
            assert!(is_directory(ok), "{ok}");
        }
        for bad in ["", "..", "a/..", "../a", "a\0b", "a\rb"] {
            assert!(!is_directory(bad), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_parse_as_openssh_prints_them() {
        assert!(parse_fingerprint("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU").is_some());
        assert!(parse_fingerprint("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").is_some());
        assert!(parse_fingerprint("SHA256:47DEQpj8HBSa").is_none());
        assert!(parse_fingerprint("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU").is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let p = format!("{:?}", SftpAuth::Password("hunter2".into()));
        let k = format!("{:?}", SftpAuth::PrivateKey { openssh_pem: "-----BEGIN KEY".into(), passphrase: Some("pass-phrase".into()) });
        assert!(!p.contains("hunter2") && !k.contains("BEGIN") && !k.contains("pass-phrase"), "{p} {k}");
        assert!(k.contains("<redacted>"));
    }
}
