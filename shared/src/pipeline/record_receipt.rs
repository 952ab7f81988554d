//! RecordReceipt: the export is done. Record its files and delivery receipts, clean up the
//! staging area and any file not delivered (the encoded files that packaging replaced), audit.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ErrorName, ExportRef, StageContext, StageError, audit};
use crate::blob::keys;
use crate::model::{Delivery, ExportResult, ExportStatus, ResultFile, Step};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordReceiptInput {
    pub tenant: String,
    pub export_id: String,
    pub files: Vec<ResultFile>,
    /// The Deliver Map's receipts, one per destination.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}
use crate::store::{UpdateError, update_export};

pub async fn record_receipt(ctx: &StageContext, input: RecordReceiptInput) -> Result<ExportRef, StageError> {
    let RecordReceiptInput { tenant, export_id, files, deliveries } = input;
    let now = Utc::now();
    let res = update_export(ctx.store.as_ref(), &tenant, &export_id, |e| {
        if !ExportStatus::ACTIVE.contains(&e.status) {
            return Err(e.status);
        }
        let expires_at = now + chrono::Duration::seconds(e.spec.expires_in_secs() as i64);
        // A destination that failed makes the export `partial` (`failed` when none delivered).
        let failed = deliveries.iter().filter(|d| d.status != "delivered").count();
        e.status = match failed {
            0 => ExportStatus::Completed,
            n if n == deliveries.len() => ExportStatus::Failed,
            _ => ExportStatus::Partial,
        };
        e.result = Some(ExportResult {
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.size).sum(),
            files: files.clone(),
            deliveries: deliveries.clone(),
            expires_at,
        });
        e.progress.rows = files.iter().map(|f| f.rows).sum();
        e.progress.step = Step::Done;
        e.progress.step_description = match failed {
            0 => "completed".into(),
            n => format!("{n} of {} destinations failed", deliveries.len()),
        };
        e.progress.recompute_percent();
        e.finished_at = Some(now);
        Ok(())
    })
    .await;
    match res {
        Ok(_) => {}
        Err(UpdateError::Refused(s)) => {
            // Cancelled or deleted meanwhile: the files must not outlive the export.
            let _ = ctx.blobs.delete_prefix(&keys::results(&tenant, &export_id)).await;
            return Err(StageError::new(ErrorName::Cancelled, format!("the export is {}", s.as_str())));
        }
        Err(UpdateError::NotFound) => {
            let _ = ctx.blobs.delete_prefix(&keys::results(&tenant, &export_id)).await;
            return Err(StageError::new(ErrorName::NotFound, "the export no longer exists"));
        }
        Err(UpdateError::Store(e)) => return Err(e.into()),
    }
    ctx.blobs.delete_prefix(&keys::staging(&tenant, &export_id)).await?;
    // Only the recorded files stay: packaging replaced the encoded ones (clear text when they
    // were encrypted) with its own.
    for o in ctx.blobs.list(&keys::results(&tenant, &export_id)).await? {
        if !files.iter().any(|f| f.key == o.key) {
            ctx.blobs.delete(&o.key).await?;
        }
    }
    let failed = deliveries.iter().filter(|d| d.status != "delivered").count();
    let (action, outcome) = match failed {
        0 => ("export.completed", "success"),
        n if n == deliveries.len() => ("export.failed", "failed"),
        _ => ("export.partial", "partial"),
    };
    audit(ctx, &tenant, &export_id, action, outcome).await;
    tracing::info!(export_id, tenant, failed, "export finished");
    Ok(ExportRef { tenant, export_id })
}
