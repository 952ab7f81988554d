//! BlobStore: staging parts, finished files and datasets. A folder on the embedded default,
//! S3 on AWS. Keys are `/`-separated, relative, and always start with a tenant-scoped prefix
//! built by [`keys`].

pub mod conformance;
pub mod folder;
pub mod signed_url;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    #[error("blob not found: {0}")]
    NotFound(String),
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
    #[error("blob store error: {0}")]
    Backend(String),
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        BlobError::Backend(e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// A local file with an object's bytes: the object itself where the store is a folder, or a
/// temporary copy (deleted on drop) where it is remote.
#[derive(Debug)]
pub struct LocalFile {
    pub path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl LocalFile {
    pub fn borrowed(path: PathBuf) -> Self {
        Self { path, _temp: None }
    }
    pub fn temporary(temp: tempfile::TempPath) -> Self {
        Self { path: temp.to_path_buf(), _temp: Some(temp) }
    }
}

/// A piece of a composed object: literal bytes, or an object from `skip` bytes on.
#[derive(Debug, Clone)]
pub enum Piece {
    Bytes(Bytes),
    Object { key: String, skip: u64 },
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Write an object whole (atomically: readers see the old object or the new one).
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), BlobError>;
    /// Store a local file as an object; the file is consumed (moved where possible).
    async fn put_file(&self, key: &str, file: &Path) -> Result<u64, BlobError>;
    async fn get_bytes(&self, key: &str) -> Result<Bytes, BlobError>;
    /// The object as a local file, for readers that need random access (Parquet).
    async fn local_file(&self, key: &str) -> Result<LocalFile, BlobError>;
    /// Size of an object, `None` if there is none.
    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError>;
    /// Objects under a prefix, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, BlobError>;
    /// Delete an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Delete every object under a prefix; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError>;
    /// A URL that GETs the object, as an attachment named `filename`, until it expires.
    async fn presign_get(&self, key: &str, filename: &str, content_type: &str, expires_in: Duration) -> Result<String, BlobError>;
    /// Copy an object to another key of the store (inside the store where it can: no bytes
    /// pass through this process on S3). A missing source is [`BlobError::NotFound`].
    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError>;
    /// The S3 bucket holding the objects, when the store is one: services that read the
    /// objects there themselves (a Transfer Family connector) are given `/bucket/key`.
    fn s3_bucket(&self) -> Option<&str> {
        None
    }
}

/// True for a relative key made of non-empty segments, none of them `.` or `..`, with no
/// backslash or NUL: a key that cannot climb out of its prefix.
pub fn is_safe_relative_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && !key.contains(['\\', '\0'])
        && key.trim_end_matches('/').split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Where things live in the blob store. Every key starts with the tenant.
pub mod keys {
    /// The tenant's datasets.
    pub fn dataset(tenant: &str, path: &str) -> String {
        format!("tenants/{tenant}/datasets/{path}")
    }
    /// Working files of one export run (chunk manifest, parts); deleted when it ends.
    pub fn staging(tenant: &str, export_id: &str) -> String {
        format!("tenants/{tenant}/staging/{export_id}/")
    }
    pub fn manifest(tenant: &str, export_id: &str) -> String {
        format!("{}manifest.json", staging(tenant, export_id))
    }
    /// The chunk list a Distributed Map reads.
    pub fn chunk_items(tenant: &str, export_id: &str) -> String {
        format!("{}chunks.json", staging(tenant, export_id))
    }
    pub fn part(tenant: &str, export_id: &str, index: u32) -> String {
        format!("{}part-{index:06}", staging(tenant, export_id))
    }
    /// An export's delivered files.
    pub fn results(tenant: &str, export_id: &str) -> String {
        format!("tenants/{tenant}/exports/{export_id}/")
    }
    pub fn result_file(tenant: &str, export_id: &str, name: &str) -> String {
        format!("{}{name}", results(tenant, export_id))
    }
    /// A file as packaged for delivery (archived, encrypted, or the manifest): kept apart from
    /// the encoded files so that no name can collide.
    pub fn packaged_file(tenant: &str, export_id: &str, name: &str) -> String {
        format!("{}packaged/{name}", results(tenant, export_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_climb_are_unsafe() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a\0"] {
            assert!(!is_safe_relative_key(bad), "{bad:?}");
        }
        for good in ["a", "a/b.parquet", "folder/", "2026-10/part-0.csv"] {
            assert!(is_safe_relative_key(good), "{good:?}");
        }
    }
}
