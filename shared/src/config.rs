//! Settings shared by the hosts: limits and tuning knobs with their defaults.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Rows per chunk for row formats (a Parquet chunk is whole row groups, so about this).
    pub chunk_rows: u64,
    /// Rows per chunk when sorting (a chunk is sorted in memory).
    pub sort_chunk_rows: u64,
    /// Chunks extracted at once.
    pub max_concurrency: usize,
    /// Folders under which `local_path` datasets may be read; none allows none.
    pub dataset_roots: Vec<PathBuf>,
    /// Scratch space for parts before they are stored.
    pub work_dir: PathBuf,
    /// Lifetime of a signed download URL.
    pub download_url_ttl: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Requests per second per API key, and the burst allowed (`None`: no limit).
    pub rate_limit: Option<(f64, f64)>,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl_secs: i64,
    /// An in-flight idempotent request older than this is taken to have died.
    pub idempotency_stale_secs: i64,
    /// Runs a host restart may interrupt before the export is failed.
    pub max_attempts: u32,
}

impl Settings {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            chunk_rows: 262_144,
            sort_chunk_rows: 250_000,
            max_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            dataset_roots: Vec::new(),
            work_dir,
            download_url_ttl: Duration::from_secs(15 * 60),
            max_body_bytes: 6 * 1024 * 1024,
            rate_limit: Some((50.0, 100.0)),
            idempotency_ttl_secs: 24 * 3600,
            idempotency_stale_secs: 60,
            max_attempts: 3,
        }
    }
}
