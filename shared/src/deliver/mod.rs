//! Destinations: where finished files go, one module each. Every destination has a config
//! (validated when the export is created), a delivery function, and evidence for the receipt.
//! The Deliver stage resolves credentials, names the files, calls the destination and retries
//! what is transient ([`DeliverError::Transient`]) with backoff; a permanent error fails the
//! destination at once with the destination's own message.

pub mod azure_blob;
pub mod dispatch;
pub mod email;
pub mod endpoints;
pub mod filename;
pub mod gcs;
pub mod http_status;
pub mod net_guard;
pub mod s3;
pub mod sftp;
pub mod signing;
pub mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

/// One file to deliver: its bytes are in a local file (streamed from there, never read whole).
#[derive(Debug, Clone)]
pub struct OutgoingFile {
    /// The name the recipient sees (after the filename template; checked: no path parts).
    pub remote_name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Hex SHA-256 of the bytes delivered.
    pub sha256: String,
    pub content_type: String,
}

/// Why a delivery attempt failed, and whether another attempt may succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliverError {
    /// Timeouts, connection resets, 5xx, 429: worth another attempt, after `retry_after` when
    /// the remote said so.
    #[error("{message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// Auth refused, 4xx, host key mismatch, a forbidden address: another attempt would fail
    /// the same way.
    #[error("{message}")]
    Permanent { message: String },
}

impl DeliverError {
    pub fn transient(message: impl Into<String>) -> Self {
        DeliverError::Transient { message: message.into(), retry_after: None }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliverError::Permanent { message: message.into() }
    }
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliverError::Transient { .. })
    }
}

/// What the remote side said about a delivery: where the files are and its own proof (S3 ETag
/// and version id, SFTP host key fingerprint, HTTP status and response digest, message id).
/// Never holds a secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// Where the files went: `s3://bucket/prefix/`, `sftp://host:22/in/`, a URL without query.
    pub location: String,
    /// Per file, in the order given: the remote path and the remote's evidence.
    pub files: Vec<Map<String, Value>>,
    /// Evidence about the whole delivery (host key fingerprint, message id, ...).
    pub details: Map<String, Value>,
}
