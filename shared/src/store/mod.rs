//! JobStore: where exports, chunk records, idempotency records, API keys, audit events and
//! records (credentials, recipient keys, settings, templates, schedules) live.
//! One small trait per capability and a union trait; SQLite (embedded default) implements it
//! here, DynamoDB next to it. Every state change is a conditional write (see
//! [`update_export`]), so two writers never both win.

pub mod conformance;
pub mod records;
#[cfg(feature = "local")]
pub mod sqlite;
#[cfg(feature = "local")]
mod sqlite_records;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::model::{ApiKeyRecord, ChunkRecord, Export, ExportStatus, FormatKind, Progress};
pub use records::{Record, RecordKind, RecordStore, update_record};

/// What can go wrong in a store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// A page cursor this store did not hand out.
    #[error("invalid page cursor")]
    InvalidCursor,
    /// A conditional write lost: someone else wrote first.
    #[error("precondition failed: the item changed since it was read")]
    Precondition,
    #[error("store backend error: {0}")]
    Backend(String),
}

/// Filters and page of `GET /v1/exports`.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    pub status: Option<ExportStatus>,
    pub format: Option<FormatKind>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// 1 to 100.
    pub limit: usize,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Insert a new export; `AlreadyExists` if the id is taken.
    async fn create_export(&self, export: &Export) -> Result<(), StoreError>;
    async fn get_export(&self, tenant: &str, id: &str) -> Result<Option<Export>, StoreError>;
    /// Newest first.
    async fn list_exports(&self, tenant: &str, q: &ExportQuery) -> Result<Page<Export>, StoreError>;
    /// Replace the export if its stored version is still `export.version`; returns it with the
    /// new version. `Precondition` if another write came first, `NotFound` if it is gone.
    async fn put_export_if_version(&self, export: &Export) -> Result<Export, StoreError>;
    /// Remove the export and its chunk records. `false` if there was none.
    async fn delete_export(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
    /// Record a finished chunk once. The first record adds its rows to the export's progress;
    /// a repeat changes nothing. Returns the progress after the call and whether this call
    /// was the first.
    async fn record_chunk(&self, tenant: &str, export_id: &str, chunk: &ChunkRecord) -> Result<(Progress, bool), StoreError>;
    /// Chunk records in index order.
    async fn list_chunks(&self, tenant: &str, export_id: &str) -> Result<Vec<ChunkRecord>, StoreError>;
    /// Woken each time this process writes an export or records a chunk, for a reader waiting
    /// on either (see [`Armed`]); `None` when the store cannot tell (another process may write
    /// it), and the reader polls.
    fn write_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
    /// Exports in `pending` or `running`, across tenants: what a restarted host must resume.
    async fn list_active_exports(&self) -> Result<Vec<(String, String)>, StoreError>;
}

/// A wait for the next write a store signals ([`ExportStore::write_signal`]), armed before the
/// reader looks at the store: a write between the look and the wait still ends the wait.
pub struct Armed<'a>(Option<std::pin::Pin<Box<tokio::sync::futures::Notified<'a>>>>);

impl<'a> Armed<'a> {
    pub fn new(signal: Option<&'a tokio::sync::Notify>) -> Self {
        Self(signal.map(|n| {
            let mut waiting = Box::pin(n.notified());
            waiting.as_mut().enable();
            waiting
        }))
    }

    /// Until the next signalled write or `limit`, whichever comes first; the whole `limit`
    /// when the store signals nothing.
    pub async fn wait(self, limit: std::time::Duration) {
        match self.0 {
            Some(waiting) => {
                let _ = tokio::time::timeout(limit, waiting).await;
            }
            None => tokio::time::sleep(limit).await,
        }
    }
}

/// A stored answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// What `idempotency_begin` found.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyBegin {
    /// This request owns the key now.
    Started,
    /// The first request with this key is still being processed.
    InFlight,
    /// The key was used with a different request body.
    Mismatch,
    /// The key was used with this body and finished: replay its response.
    Done(StoredResponse),
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claim `key` for a request whose body hashes to `request_hash`. Records older than
    /// `ttl_secs` are forgotten; an in-flight claim older than `stale_secs` is taken over.
    async fn idempotency_begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        ttl_secs: i64,
        stale_secs: i64,
    ) -> Result<IdempotencyBegin, StoreError>;
    async fn idempotency_complete(&self, tenant: &str, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Give the key up (the request failed before it did anything).
    async fn idempotency_abandon(&self, tenant: &str, key: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn put_api_key(&self, rec: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The newest event of a tenant's chain.
    async fn last_audit(&self, tenant: &str) -> Result<Option<AuditEvent>, StoreError>;
    /// Append `event` if its `seq` is the next one of the tenant's chain; `Precondition` if
    /// another append took that place.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Events in chain order from `after_seq` (exclusive).
    async fn list_audit(&self, tenant: &str, after_seq: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Everything the service keeps.
pub trait JobStore: ExportStore + IdempotencyStore + ApiKeyStore + AuditStore + RecordStore {}
impl<T: ExportStore + IdempotencyStore + ApiKeyStore + AuditStore + RecordStore> JobStore for T {}

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error("export not found")]
    NotFound,
    /// The closure refused (e.g. the transition is not allowed from the current status).
    #[error("update refused")]
    Refused(E),
    #[error(transparent)]
    Store(StoreError),
}

/// Read, change and conditionally write an export, retrying when another writer came first.
/// The closure sees the latest stored export each time and may refuse.
pub async fn update_export<E>(
    store: &dyn ExportStore,
    tenant: &str,
    id: &str,
    mut change: impl FnMut(&mut Export) -> Result<(), E>,
) -> Result<Export, UpdateError<E>> {
    for _ in 0..50 {
        let Some(mut export) = store.get_export(tenant, id).await.map_err(UpdateError::Store)? else {
            return Err(UpdateError::NotFound);
        };
        change(&mut export).map_err(UpdateError::Refused)?;
        export.updated_at = Utc::now();
        match store.put_export_if_version(&export).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Precondition) => continue,
            Err(StoreError::NotFound) => return Err(UpdateError::NotFound),
            Err(e) => return Err(UpdateError::Store(e)),
        }
    }
    Err(UpdateError::Store(StoreError::Backend("too much contention on one export".into())))
}
