//! The embedded default BlobStore: a folder. Writes go to a temporary file in the same folder
//! tree and are renamed into place, so a reader never sees half a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobError, BlobStore, LocalFile, ObjectMeta, is_safe_relative_key, signed_url};

pub struct FolderBlobStore {
    root: PathBuf,
    /// Base URL of the local host that serves signed URLs, e.g. `http://127.0.0.1:8080`.
    public_url: String,
    signing_key: Vec<u8>,
}

impl FolderBlobStore {
    pub fn new(root: PathBuf, public_url: String, signing_key: Vec<u8>) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root.join(".tmp"))?;
        Ok(Self { root, public_url: public_url.trim_end_matches('/').to_string(), signing_key })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn signing_key(&self) -> &[u8] {
        &self.signing_key
    }

    /// The file of a key, refusing keys that could leave the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !is_safe_relative_key(key) || key.starts_with(".tmp") {
            return Err(BlobError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join(".tmp").join(crate::model::ids::random_hex(16))
    }
}

fn not_found(key: &str, e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound { BlobError::NotFound(key.to_string()) } else { e.into() }
}

fn list_files(dir: &Path, root: &Path, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            list_files(&path, root, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).map_err(std::io::Error::other)?;
            let key = rel.to_string_lossy().replace('\\', "/");
            out.push(ObjectMeta { key, size: entry.metadata()?.len() });
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for FolderBlobStore {
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        let dest = self.path_of(key)?;
        let tmp = self.temp_path();
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&tmp, &data)?;
            std::fs::rename(&tmp, &dest)?;
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<u64, BlobError> {
        let dest = self.path_of(key)?;
        let src = file.to_path_buf();
        let tmp = self.temp_path();
        tokio::task::spawn_blocking(move || -> Result<u64, BlobError> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let size = std::fs::metadata(&src)?.len();
            // A rename is free on the same file system; otherwise copy then rename.
            if std::fs::rename(&src, &dest).is_err() {
                std::fs::copy(&src, &tmp)?;
                std::fs::rename(&tmp, &dest)?;
                let _ = std::fs::remove_file(&src);
            }
            Ok(size)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        let src = self.path_of(from)?;
        let dest = self.path_of(to)?;
        let tmp = self.temp_path();
        let key = from.to_string();
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&src, &tmp).map_err(|e| not_found(&key, e))?;
            std::fs::rename(&tmp, &dest)?;
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }

    async fn get_bytes(&self, key: &str) -> Result<Bytes, BlobError> {
        let path = self.path_of(key)?;
        tokio::fs::read(&path).await.map(Bytes::from).map_err(|e| not_found(key, e))
    }

    async fn local_file(&self, key: &str) -> Result<LocalFile, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(LocalFile::borrowed(path)),
            Ok(_) => Err(BlobError::NotFound(key.to_string())),
            Err(e) => Err(not_found(key, e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, BlobError> {
        // List the deepest folder the prefix names, then filter by the prefix itself.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !dir_part.is_empty() && !is_safe_relative_key(dir_part) {
            return Err(BlobError::InvalidKey(prefix.to_string()));
        }
        let root = self.root.clone();
        let dir = root.join(dir_part);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || -> Result<Vec<ObjectMeta>, BlobError> {
            let mut out = Vec::new();
            list_files(&dir, &root, &mut out)?;
            out.retain(|m| m.key.starts_with(&prefix) && !m.key.starts_with(".tmp/"));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        let objects = self.list(prefix).await?;
        for o in &objects {
            self.delete(&o.key).await?;
        }
        // Remove a folder the prefix names, if it is now empty.
        if prefix.ends_with('/')
            && let Ok(dir) = self.path_of(prefix.trim_end_matches('/'))
        {
            let _ = tokio::fs::remove_dir(&dir).await;
        }
        Ok(objects.len() as u64)
    }

    async fn presign_get(&self, key: &str, filename: &str, content_type: &str, expires_in: Duration) -> Result<String, BlobError> {
        self.path_of(key)?;
        let expires = chrono::Utc::now().timestamp() + expires_in.as_secs() as i64;
        Ok(format!("{}{}", self.public_url, signed_url::sign(&self.signing_key, key, expires, filename, content_type)))
    }
}
