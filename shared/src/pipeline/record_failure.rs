//! RecordFailure: the run failed for good. Mark the export failed with a stable code and a
//! message, audit, send the export's notifications ([`crate::notify`]), clean up. Input as
//! Step Functions' Catch hands it over (`Error`, `Cause`).
//!
//! Idempotent: a retry that finds the export already finished sends only the notifications an
//! earlier attempt (of this stage or of RecordReceipt) did not get to.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ErrorName, StageContext, StageError, append_due_audit};
use crate::blob::keys;
use crate::model::{DueAudit, ExportError, ExportStatus};
use crate::notify;
use crate::store::{UpdateError, update_export};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureInfo {
    /// The error name, e.g. `Egress.Invalid`.
    #[serde(rename = "Error")]
    pub error: String,
    /// The message.
    #[serde(rename = "Cause")]
    pub cause: String,
}

/// The export's status after the call: `failed`, or what stopped the run instead (`paused`,
/// `cancelled`, `deleted`, ...). The state machine ends without error when the run stopped
/// on request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFailureOutput {
    pub tenant: String,
    pub export_id: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFailureInput {
    pub tenant: String,
    pub export_id: String,
    pub error: FailureInfo,
}

impl RecordFailureInput {
    pub fn from_stage_error(tenant: &str, export_id: &str, e: &StageError) -> Self {
        Self {
            tenant: tenant.to_string(),
            export_id: export_id.to_string(),
            error: FailureInfo { error: e.name.as_str().to_string(), cause: e.message.clone() },
        }
    }
}

/// Export error code for an error name from a state machine.
fn code_of(name: &str) -> String {
    let parsed: Option<ErrorName> = serde_json::from_value(serde_json::Value::String(name.to_string())).ok();
    match parsed {
        Some(n) => n.export_code().to_string(),
        None if name == "States.Timeout" => "TIMEOUT".into(),
        None if name == "Egress.Interrupted" => "INTERRUPTED".into(),
        None => "INTERNAL_ERROR".into(),
    }
}

/// Failures worth a `POST /v1/exports/{id}/retry`: the run's finished chunks are kept for it.
pub fn is_retryable_code(code: &str) -> bool {
    matches!(code, "TRANSIENT_FAILURE" | "INTERRUPTED" | "TIMEOUT")
}

pub async fn record_failure(ctx: &StageContext, input: RecordFailureInput) -> Result<RecordFailureOutput, StageError> {
    let RecordFailureInput { tenant, export_id, error } = input;
    let code = code_of(&error.error);
    let res = update_export(ctx.store.as_ref(), &tenant, &export_id, |e| {
        if e.status.is_terminal() || e.status == ExportStatus::Paused {
            return Err(e.status);
        }
        e.status = ExportStatus::Failed;
        e.error = Some(ExportError { code: code.clone(), message: error.cause.clone() });
        e.finished_at = Some(Utc::now());
        // Appended once this write has landed (see `append_due_audit`).
        e.audit_due = Some(DueAudit { action: "export.failed".into(), outcome: "failed".into() });
        Ok(())
    })
    .await;
    let status = match res {
        Ok(export) => {
            append_due_audit(ctx, &export).await?;
            tracing::warn!(export_id, tenant, code, cause = %error.cause, "export failed");
            notify::export_finished(ctx.store.as_ref(), ctx.keys.as_ref(), &export).await;
            // A transient failure may be retried: keep its chunks. Otherwise clean up.
            if !is_retryable_code(&code) {
                ctx.blobs.delete_prefix(&keys::staging(&tenant, &export_id)).await?;
            }
            ExportStatus::Failed.as_str().to_string()
        }
        // Already finished (an earlier attempt, or RecordReceipt, recorded it: only its audit
        // event and notifications may be left), cancelled or paused: nothing to record.
        Err(UpdateError::Refused(s)) => {
            if s.is_terminal()
                && let Some(export) = ctx.store.get_export(&tenant, &export_id).await?
            {
                append_due_audit(ctx, &export).await?;
                if notify::Outcome::of(s).is_some() {
                    notify::export_finished(ctx.store.as_ref(), ctx.keys.as_ref(), &export).await;
                }
            }
            s.as_str().to_string()
        }
        Err(UpdateError::NotFound) => "deleted".to_string(),
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };
    Ok(RecordFailureOutput { tenant, export_id, status })
}
