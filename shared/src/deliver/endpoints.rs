//! What the object-store destinations (S3, Google Cloud Storage, Azure Blob) share: where the
//! services are ([`Endpoints`], operator settings, never tenant input), the rule that turns a
//! prefix and a file name into an object name ([`object_key`]), the checks of the config
//! fields they have in common, and reading the local file in bounded pieces, checked against
//! the SHA-256 the caller gave before anything is committed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{DeliverError, OutgoingFile};

/// The longest object name S3, GCS and Azure Blob all accept, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Connect timeout of every destination client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit of one request (one part or block, at most a few MiB), as a whole.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The default Google Cloud Storage JSON API.
pub const GCS_DEFAULT_BASE: &str = "https://storage.googleapis.com";
/// The default Google OAuth token endpoint.
pub const GCS_DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Where the object-store services are. The defaults are the public clouds; emulators and
/// private endpoints are set by the operator through the environment.
#[derive(Clone, Default)]
pub struct Endpoints {
    /// The service's own AWS configuration (credentials, region, `AWS_ENDPOINT_URL`): the
    /// identity that assumes a destination's role, or writes when no keys are given. `None`:
    /// loaded the SDK's usual way at delivery.
    pub aws: Option<aws_config::SdkConfig>,
    /// `EGRESS_S3_FORCE_PATH_STYLE=1`: path-style S3 addressing (emulators).
    pub s3_force_path_style: bool,
    /// `EGRESS_GCS_ENDPOINT`: the GCS JSON API base URL (default [`GCS_DEFAULT_BASE`]).
    pub gcs_base: String,
    /// `EGRESS_GCS_TOKEN_URI`: where service-account JWTs are exchanged for access tokens
    /// (default [`GCS_DEFAULT_TOKEN_URI`]). A key's own `token_uri` is not followed, so a key
    /// cannot make the service post to an address of its choosing.
    pub gcs_token_uri: String,
    /// `EGRESS_AZURE_BLOB_ENDPOINT`: the Blob service base URL, `{account}` replaced by the
    /// account name (e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite). `None`:
    /// `https://{account}.blob.core.windows.net`.
    pub azure_blob_base: Option<String>,
    /// `EGRESS_TRANSFER_ENDPOINT`: the AWS Transfer Family API (an emulator). `None`: the
    /// SDK's own (`AWS_ENDPOINT_URL`, or the region's endpoint).
    pub transfer_endpoint: Option<String>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("aws", &self.aws.as_ref().map(|_| "<sdk config>"))
            .field("s3_force_path_style", &self.s3_force_path_style)
            .field("gcs_base", &self.gcs_base)
            .field("gcs_token_uri", &self.gcs_token_uri)
            .field("azure_blob_base", &self.azure_blob_base)
            .field("transfer_endpoint", &self.transfer_endpoint)
            .finish()
    }
}

impl Endpoints {
    /// Read the settings from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the settings through `lookup` (the environment, or a map in tests). A malformed
    /// value is an error naming the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let url = |name: &str, default: Option<&str>| -> Result<Option<String>, String> {
            match get(name) {
                Some(v) => check_base_url(&v.replace("{account}", "account"))
                    .map(|_| Some(v.trim_end_matches('/').to_string()))
                    .map_err(|why| format!("{name} `{v}`: {why}")),
                None => Ok(default.map(str::to_string)),
            }
        };
        let s3_force_path_style = match get("EGRESS_S3_FORCE_PATH_STYLE").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => return Err(format!("EGRESS_S3_FORCE_PATH_STYLE must be 1 or 0, not `{other}`")),
        };
        Ok(Self {
            aws: None,
            s3_force_path_style,
            gcs_base: url("EGRESS_GCS_ENDPOINT", Some(GCS_DEFAULT_BASE))?.unwrap_or_default(),
            gcs_token_uri: url("EGRESS_GCS_TOKEN_URI", Some(GCS_DEFAULT_TOKEN_URI))?.unwrap_or_default(),
            azure_blob_base: url("EGRESS_AZURE_BLOB_ENDPOINT", None)?,
            transfer_endpoint: url("EGRESS_TRANSFER_ENDPOINT", None)?,
        })
    }

    /// These settings with the service's own AWS configuration.
    pub fn with_aws(mut self, config: aws_config::SdkConfig) -> Self {
        self.aws = Some(config);
        self
    }

    /// The Blob service base URL of `account`, without trailing `/`.
    pub fn azure_blob_base_for(&self, account: &str) -> String {
        match &self.azure_blob_base {
            Some(base) => base.replace("{account}", account),
            None => format!("https://{account}.blob.core.windows.net"),
        }
    }
}

fn check_base_url(v: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(v).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must have no query, fragment or user".into());
    }
    Ok(())
}

/// The HTTP client of the reqwest-based destinations: bounded connect and request times, and
/// no redirects (a 308 is GCS's "resume incomplete"; a redirect could lead anywhere).
pub(crate) fn http_client() -> Result<reqwest::Client, DeliverError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliverError::permanent(format!("the HTTP client could not be built: {}", super::http_status::error_chain(&e))))
}

/// The object name of `remote_name` under `prefix`: `prefix/remote_name` (one `/` between
/// them), or the name alone. Refused: a leading `/`, a `..` or `.` segment, empty segments,
/// control characters, a name over [`MAX_KEY_BYTES`] bytes.
pub fn object_key(prefix: Option<&str>, remote_name: &str) -> Result<String, DeliverError> {
    if let Err(why) = check_name(remote_name) {
        return Err(DeliverError::permanent(format!("the file name {remote_name:?} cannot be an object name: {why}")));
    }
    let key = match prefix.map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => {
            if let Err(why) = check_prefix(p) {
                return Err(DeliverError::permanent(format!("the prefix {p:?} {why}")));
            }
            format!("{p}/{remote_name}")
        }
        None => remote_name.to_string(),
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(DeliverError::permanent(format!("the object name {key:?} is longer than {MAX_KEY_BYTES} bytes")));
    }
    Ok(key)
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("it is empty, `.` or `..`");
    }
    if name.contains('/') {
        return Err("it contains `/`");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    Ok(())
}

/// Checks an object-name prefix; the error says what is allowed.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    const ALLOWED: &str =
        "must be a relative path: no leading `/`, no `.`, `..` or empty segments, no control characters, at most 900 bytes";
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    let bad = prefix.starts_with('/')
        || prefix.len() > 900
        || prefix.chars().any(char::is_control)
        || body.is_empty()
        || body.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad { Err(ALLOWED.to_string()) } else { Ok(()) }
}

pub use crate::model::credential::{CREDENTIAL_ID_ALLOWED, is_credential_id};

/// True when `s` is a dotted-quad IPv4 address (bucket names must not look like one).
pub(crate) fn looks_like_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Read `len` bytes at `offset` of a file (blocking).
pub(crate) fn read_range(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Read `len` bytes at `offset` of the file, off the runtime's threads.
pub(crate) async fn read_chunk(file: &OutgoingFile, offset: u64, len: usize) -> Result<Vec<u8>, DeliverError> {
    let path = file.path.clone();
    tokio::task::spawn_blocking(move || read_range(&path, offset, len))
        .await
        .map_err(|e| DeliverError::permanent(format!("reading the file {}: {e}", file.remote_name)))?
        .map_err(|e| local_error(file, e))
}

/// Read `len` bytes at `offset` off the runtime's threads, feed them to the whole file's hash
/// (callers read in file order), and, when asked, return the piece's own SHA-256 too.
pub(crate) async fn read_hashed(
    file: &OutgoingFile,
    offset: u64,
    len: usize,
    whole: Arc<Mutex<Sha256>>,
    piece_digest: bool,
) -> Result<(Vec<u8>, Option<[u8; 32]>), DeliverError> {
    let path = file.path.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let data = read_range(&path, offset, len)?;
        let digest = piece_digest.then(|| Sha256::digest(&data).into());
        whole.lock().unwrap_or_else(|p| p.into_inner()).update(&data);
        Ok((data, digest))
    })
    .await
    .map_err(|e| DeliverError::permanent(format!("reading the file {}: {e}", file.remote_name)))?
    .map_err(|e| local_error(file, e))
}

/// The SHA-256 of everything fed to `whole`, once no read holds it any more.
pub(crate) fn finish_hash(whole: Arc<Mutex<Sha256>>) -> [u8; 32] {
    match Arc::try_unwrap(whole) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()).finalize().into(),
        Err(shared) => shared.lock().unwrap_or_else(|p| p.into_inner()).clone().finalize().into(),
    }
}

/// The local file's size, checked against the size the caller gave.
pub(crate) async fn local_size(file: &OutgoingFile) -> Result<u64, DeliverError> {
    let size = tokio::fs::metadata(&file.path).await.map_err(|e| local_error(file, e))?.len();
    if size != file.size {
        return Err(DeliverError::permanent(format!("the file {} has {size} bytes, not the {} expected", file.remote_name, file.size)));
    }
    Ok(size)
}

/// A failure to read the local file: permanent (the file is the pipeline's own; another
/// attempt reads the same file).
pub(crate) fn local_error(file: &OutgoingFile, e: std::io::Error) -> DeliverError {
    DeliverError::permanent(format!("reading the file {}: {e}", file.remote_name))
}

/// Compare the SHA-256 of the bytes sent with the one the caller gave; a difference stops the
/// delivery before the object is committed.
pub(crate) fn check_digest(file: &OutgoingFile, digest: &[u8; 32]) -> Result<(), DeliverError> {
    let got = hex::encode(digest);
    if got.eq_ignore_ascii_case(&file.sha256) {
        Ok(())
    } else {
        Err(DeliverError::permanent(format!(
            "the file {} changed: its SHA-256 is {got}, not the {} expected; nothing was committed",
            file.remote_name, file.sha256
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_join_prefix_and_name_with_one_slash() {
        assert_eq!(object_key(Some("in/daily"), "a.csv").unwrap(), "in/daily/a.csv");
        assert_eq!(object_key(Some("in/daily/"), "a.csv").unwrap(), "in/daily/a.csv");
        assert_eq!(object_key(None, "a.csv").unwrap(), "a.csv");
        assert_eq!(object_key(Some(""), "a b..csv").unwrap(), "a b..csv");
    }

    #[test]
    fn keys_refuse_escapes_and_control_characters() {
        for (prefix, name) in [
            (Some("/abs"), "a.csv"),
            (Some("in/../out"), "a.csv"),
            (Some("in//x"), "a.csv"),
            (Some("in/./x"), "a.csv"),
            (None, ".."),
            (None, "a/b.csv"),
            (None, "a\nb.csv"),
            (Some("in\u{7f}"), "a.csv"),
            (None, ""),
        ] {
            let e = object_key(prefix, name).unwrap_err();
            assert!(!e.is_transient(), "{prefix:?} {name:?}");
        }
        assert!(object_key(None, &"x".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn credential_ids() {
        assert!(is_credential_id("cred_01HZX-abc_9"));
        assert!(!is_credential_id("cred_"));
        assert!(!is_credential_id("key_abc"));
        assert!(!is_credential_id("cred_a b"));
    }

    #[test]
    fn settings_from_the_environment() {
        let vars: HashMap<&str, &str> = [
            ("EGRESS_GCS_ENDPOINT", "http://127.0.0.1:9023/"),
            ("EGRESS_AZURE_BLOB_ENDPOINT", "http://127.0.0.1:10000/{account}"),
            ("EGRESS_S3_FORCE_PATH_STYLE", "1"),
            ("EGRESS_TRANSFER_ENDPOINT", "http://127.0.0.1:5001/"),
        ]
        .into();
        let e = Endpoints::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(e.gcs_base, "http://127.0.0.1:9023");
        assert_eq!(e.gcs_token_uri, GCS_DEFAULT_TOKEN_URI);
        assert_eq!(e.azure_blob_base_for("devstoreaccount1"), "http://127.0.0.1:10000/devstoreaccount1");
        assert!(e.s3_force_path_style);
        assert_eq!(e.transfer_endpoint.as_deref(), Some("http://127.0.0.1:5001"));

        let defaults = Endpoints::from_lookup(|_| None).unwrap();
        assert_eq!(defaults.gcs_base, GCS_DEFAULT_BASE);
        assert_eq!(defaults.azure_blob_base_for("acct"), "https://acct.blob.core.windows.net");

        let bad = Endpoints::from_lookup(|k| (k == "EGRESS_GCS_ENDPOINT").then(|| "ftp://x".to_string())).unwrap_err();
        assert!(bad.contains("EGRESS_GCS_ENDPOINT"), "{bad}");
    }
}
