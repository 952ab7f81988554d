//! The embedded default: every adapter on one machine, in one data folder.
//!
//! ```text
//! <data-dir>/egress.db         SQLite (WAL): exports, chunks, idempotency, API keys, audit
//! <data-dir>/blobs/            the blob store: datasets, staging parts, finished files
//! <data-dir>/keys/master.key   the local key service's master key (0600)
//! <data-dir>/work/             scratch space for parts being written
//! ```

pub mod bench;
pub mod bench_package;
pub mod client;
pub mod demo;
pub mod host;

use std::path::PathBuf;
use std::sync::Arc;

use crate::blob::folder::FolderBlobStore;
use crate::config::Settings;
use crate::kms::local::LocalKeyService;
use crate::orchestrate::local::LocalOrchestrator;
use crate::pipeline::StageContext;
use crate::services::{RateLimiter, Services};
use crate::store::sqlite::SqliteStore;

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub data_dir: PathBuf,
    /// The base URL signed download links point at (the host's address).
    pub public_url: String,
    /// Folders `local_path` datasets may be read from.
    pub dataset_roots: Vec<PathBuf>,
}

/// The adapters of the embedded default, wired.
pub struct LocalHost {
    pub services: Arc<Services>,
    pub orchestrator: Arc<LocalOrchestrator>,
    pub blobs: Arc<FolderBlobStore>,
    pub store: Arc<SqliteStore>,
    pub options: LocalOptions,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the data folder {path}: {message}")]
pub struct OpenError {
    pub path: PathBuf,
    pub message: String,
}

impl LocalHost {
    /// Store an API key record (the CLI's `keys create`, the demo and the benchmark).
    pub async fn store_api_key(&self, rec: &crate::model::ApiKeyRecord) -> Result<(), String> {
        use crate::store::ApiKeyStore;
        self.store.put_api_key(rec).await.map_err(|e| e.to_string())
    }

    pub fn open(options: LocalOptions) -> Result<Self, OpenError> {
        Self::open_with(options, |_| {})
    }

    /// Open with settings adjusted by `tune` (tests use smaller chunks).
    pub fn open_with(options: LocalOptions, tune: impl FnOnce(&mut Settings)) -> Result<Self, OpenError> {
        let dir = options.data_dir.clone();
        let err = |m: String| OpenError { path: dir.clone(), message: m };
        for sub in ["blobs", "keys", "work"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| err(e.to_string()))?;
        }
        let keys = LocalKeyService::open(&dir.join("keys/master.key")).map_err(|e| err(e.to_string()))?;
        let store = Arc::new(SqliteStore::open(&dir.join("egress.db")).map_err(|e| err(e.to_string()))?);
        let blobs = Arc::new(
            FolderBlobStore::new(dir.join("blobs"), options.public_url.clone(), keys.derive("download-urls").to_vec())
                .map_err(|e| err(e.to_string()))?,
        );
        let mut settings = Settings::new(dir.join("work"));
        settings.dataset_roots = options.dataset_roots.clone();
        tune(&mut settings);
        let settings = Arc::new(settings);
        let keys: Arc<dyn crate::kms::KeyService> = Arc::new(keys);
        let ctx = StageContext { store: store.clone(), blobs: blobs.clone(), keys: keys.clone(), settings: settings.clone() };
        let orchestrator = LocalOrchestrator::new(ctx).map_err(|e| err(e.to_string()))?;
        let services = Arc::new(Services {
            store: store.clone(),
            blobs: blobs.clone(),
            keys,
            orchestrator: orchestrator.clone(),
            triggers: Arc::new(crate::scheduler::InProcessTriggers),
            settings,
            limiter: RateLimiter::default(),
        });
        Ok(Self { services, orchestrator, blobs, store, options })
    }
}
