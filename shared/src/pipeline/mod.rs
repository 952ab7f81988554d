//! The pipeline stages of one export run: plan, extract_chunk, encode, encrypt, deliver,
//! record_receipt (and record_failure). Each is a plain async function from a small serde input to a serde output,
//! idempotent, so that Step Functions (one Lambda per stage) or the local orchestrator can call
//! it, retry it, and resume a run from its first unfinished chunk.

pub mod deliver;
pub mod encode;
pub mod encrypt;
pub mod extract_chunk;
pub mod plan;
pub mod record_failure;
pub mod record_receipt;
pub mod split;
pub mod stage;

pub use stage::Stage;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::blob::{BlobError, BlobStore, keys};
use crate::config::Settings;
use crate::model::{Export, ExportStatus};
use crate::source::{ChunkSource, SourceError};
use crate::store::{JobStore, StoreError, UpdateError};

/// What every stage needs.
#[derive(Clone)]
pub struct StageContext {
    pub store: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Tenant secrets (the salt of hashed fields).
    pub keys: Arc<dyn crate::kms::KeyService>,
    pub settings: Arc<Settings>,
}

/// The error names state machines match on (`Retry.ErrorEquals`, `Catch.ErrorEquals`). They
/// are part of the contract: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorName {
    /// Worth retrying: storage or network trouble.
    #[serde(rename = "Egress.Transient")]
    Transient,
    /// Worth retrying later: a rate limit.
    #[serde(rename = "Egress.Throttled")]
    Throttled,
    /// Never worth retrying: the request or the data is wrong.
    #[serde(rename = "Egress.Invalid")]
    Invalid,
    /// The export is gone (deleted while running).
    #[serde(rename = "Egress.NotFound")]
    NotFound,
    /// The export was cancelled: stop quietly.
    #[serde(rename = "Egress.Cancelled")]
    Cancelled,
    /// The export was paused: stop, keep what is done.
    #[serde(rename = "Egress.Paused")]
    Paused,
    /// A bug: not retried.
    #[serde(rename = "Egress.Internal")]
    Internal,
}

impl ErrorName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "Egress.Transient",
            Self::Throttled => "Egress.Throttled",
            Self::Invalid => "Egress.Invalid",
            Self::NotFound => "Egress.NotFound",
            Self::Cancelled => "Egress.Cancelled",
            Self::Paused => "Egress.Paused",
            Self::Internal => "Egress.Internal",
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Transient | Self::Throttled)
    }

    /// The export error code a failure with this name is recorded with.
    pub fn export_code(self) -> &'static str {
        match self {
            Self::Transient | Self::Throttled => "TRANSIENT_FAILURE",
            Self::Invalid => "INVALID_SOURCE_DATA",
            Self::NotFound => "EXPORT_NOT_FOUND",
            Self::Cancelled => "CANCELLED",
            Self::Paused => "PAUSED",
            Self::Internal => "INTERNAL_ERROR",
        }
    }
}

/// A stage's failure: a stable name and a message for people (never a secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", name.as_str())]
pub struct StageError {
    pub name: ErrorName,
    pub message: String,
}

impl StageError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }
    pub fn transient(m: impl Into<String>) -> Self {
        Self::new(ErrorName::Transient, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorName::Invalid, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorName::Internal, m)
    }
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => StageError::new(ErrorName::NotFound, "the export no longer exists"),
            other => StageError::transient(other.to_string()),
        }
    }
}

impl From<BlobError> for StageError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::InvalidKey(k) => StageError::internal(format!("invalid blob key {k}")),
            other => StageError::transient(other.to_string()),
        }
    }
}

impl From<SourceError> for StageError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Invalid(v) => StageError::invalid(v.to_string()),
            SourceError::Data(m) => StageError::invalid(m),
            SourceError::Storage(m) => StageError::transient(m),
        }
    }
}

impl From<arrow::error::ArrowError> for StageError {
    fn from(e: arrow::error::ArrowError) -> Self {
        match e {
            arrow::error::ArrowError::IoError(m, _) => StageError::transient(m),
            other => StageError::invalid(other.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for StageError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        StageError::internal(format!("parquet: {e}"))
    }
}

impl From<crate::format::FormatError> for StageError {
    fn from(e: crate::format::FormatError) -> Self {
        use crate::format::FormatError;
        match e {
            FormatError::Invalid(m) => StageError::invalid(m),
            FormatError::Arrow(e) => e.into(),
            FormatError::Io(e) => e.into(),
            FormatError::Internal(m) => StageError::internal(m),
        }
    }
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        StageError::transient(e.to_string())
    }
}

impl From<tokio::task::JoinError> for StageError {
    fn from(e: tokio::task::JoinError) -> Self {
        StageError::internal(format!("worker task failed: {e}"))
    }
}

/// Names one export: the input of plan and encode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRef {
    pub tenant: String,
    pub export_id: String,
}

/// The plan a run follows, kept in the blob store so that a retried or resumed run uses the
/// same chunks (and a Distributed Map can read it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkManifest {
    pub chunks: Vec<ChunkSource>,
    /// Output column names, in order.
    pub columns: Vec<String>,
    /// Chunks write sorted runs to merge instead of encoded parts.
    pub sorted: bool,
}

impl ChunkManifest {
    pub async fn load(blobs: &dyn BlobStore, tenant: &str, export_id: &str) -> Result<Option<Self>, StageError> {
        match blobs.get_bytes(&keys::manifest(tenant, export_id)).await {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| StageError::internal(format!("bad chunk manifest: {e}")))?)),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The tenant's salt for hashed fields, when the spec hashes any (derived again on each use:
/// it is never stored, logged or returned).
pub async fn field_hash_key(ctx: &StageContext, tenant: &str, spec: &crate::model::ExportSpec) -> Result<Option<[u8; 32]>, StageError> {
    if !spec.fields.iter().any(crate::model::fields::FieldSpec::hashes) {
        return Ok(None);
    }
    match ctx.keys.tenant_secret(tenant, crate::kms::FIELD_HASH_SALT).await {
        Ok(k) => Ok(Some(k)),
        Err(crate::kms::KeyError::NotConfigured(m)) => Err(StageError::invalid(m)),
        Err(e) => Err(StageError::transient(format!("the hash salt could not be derived: {e}"))),
    }
}

/// Load an export and check it may still be worked on: cancelled and paused exports stop the
/// stage with the matching error name.
pub async fn load_active(ctx: &StageContext, tenant: &str, export_id: &str) -> Result<Export, StageError> {
    let export = ctx
        .store
        .get_export(tenant, export_id)
        .await?
        .ok_or_else(|| StageError::new(ErrorName::NotFound, "the export no longer exists"))?;
    match export.status {
        ExportStatus::Pending | ExportStatus::Running => Ok(export),
        ExportStatus::Paused => Err(StageError::new(ErrorName::Paused, "the export is paused")),
        ExportStatus::Cancelled => Err(StageError::new(ErrorName::Cancelled, "the export was cancelled")),
        other => Err(StageError::new(ErrorName::Cancelled, format!("the export is already {}", other.as_str()))),
    }
}

/// Append the audit event the write that ended the run left due ([`Export::audit_due`]), then
/// clear it. A failed append is a transient error: the stage is retried (or RecordFailure
/// runs), and finds the event still due. Stopped between the append and the clearing, a
/// retry appends it again: an event may be in the chain twice, never missing.
pub async fn append_due_audit(ctx: &StageContext, export: &Export) -> Result<(), StageError> {
    let Some(due) = &export.audit_due else { return Ok(()) };
    let (tenant, id) = (export.tenant.as_str(), export.id.as_str());
    let entry =
        crate::audit::AuditEntry { tenant, actor: "system", action: &due.action, target: id, request_id: id, outcome: &due.outcome };
    crate::audit::append(ctx.store.as_ref(), entry)
        .await
        .map_err(|e| StageError::transient(format!("appending `{}` to the audit trail: {e}", due.action)))?;
    let cleared = crate::store::update_export(ctx.store.as_ref(), tenant, id, |e| {
        if e.audit_due.as_ref() != Some(due) {
            return Err(());
        }
        e.audit_due = None;
        Ok(())
    })
    .await;
    match cleared {
        Ok(_) | Err(UpdateError::Refused(())) | Err(UpdateError::NotFound) => Ok(()),
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}

/// Write a pipeline event to the audit trail. Audit failures are logged, never fatal to a
/// run that has already done its work.
pub async fn audit(ctx: &StageContext, tenant: &str, export_id: &str, action: &str, outcome: &str) {
    let entry = crate::audit::AuditEntry { tenant, actor: "system", action, target: export_id, request_id: export_id, outcome };
    if let Err(e) = crate::audit::append(ctx.store.as_ref(), entry).await {
        tracing::warn!(export_id, tenant, error = %e, "audit append failed");
    }
}
