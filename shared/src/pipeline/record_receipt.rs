//! RecordReceipt: the export is done. Record its files and delivery receipts, audit, send the
//! export's notifications ([`crate::notify`]), clean up the staging area and any file not
//! delivered (the encoded files that packaging replaced).
//!
//! Idempotent: when an earlier attempt already recorded these files (it stopped before its
//! end), a retry finds the export finished with them, keeps it, and only does what may be left
//! (notifications not yet sent, the clean-up).

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ErrorName, ExportRef, StageContext, StageError, append_due_audit};
use crate::blob::keys;
use crate::model::{Delivery, DueAudit, Export, ExportResult, ExportStatus, ResultFile, Step};
use crate::notify;
use crate::store::{UpdateError, update_export};

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

pub async fn record_receipt(ctx: &StageContext, input: RecordReceiptInput) -> Result<ExportRef, StageError> {
    let RecordReceiptInput { tenant, export_id, files, deliveries } = input;
    let now = Utc::now();
    let res = update_export(ctx.store.as_ref(), &tenant, &export_id, |e| {
        if !ExportStatus::ACTIVE.contains(&e.status) {
            return Err(e.status);
        }
        // A redelivery replaces its destination's receipt and keeps the others and the expiry.
        let (deliveries, expires_at) = match (e.redelivery.take(), &e.result) {
            (Some(_), Some(r)) => (merge_receipts(&r.deliveries, &deliveries), r.expires_at),
            _ => (deliveries.clone(), now + chrono::Duration::seconds(e.spec.expires_in_secs() as i64)),
        };
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
        // Appended once this write has landed (see `append_due_audit`).
        let (action, outcome) = match e.status {
            ExportStatus::Completed => ("export.completed", "success"),
            ExportStatus::Failed => ("export.failed", "failed"),
            _ => ("export.partial", "partial"),
        };
        e.audit_due = Some(DueAudit { action: action.into(), outcome: outcome.into() });
        Ok(())
    })
    .await;
    let export = match res {
        Ok(e) => {
            append_due_audit(ctx, &e).await?;
            tracing::info!(export_id, tenant, status = e.status.as_str(), "export finished");
            e
        }
        Err(UpdateError::Refused(s)) => match ctx.store.get_export(&tenant, &export_id).await? {
            Some(e) if recorded_with(&e, &files) => {
                append_due_audit(ctx, &e).await?;
                e
            }
            _ => {
                // Cancelled or deleted meanwhile: the files must not outlive the export.
                let _ = ctx.blobs.delete_prefix(&keys::results(&tenant, &export_id)).await;
                return Err(StageError::new(ErrorName::Cancelled, format!("the export is {}", s.as_str())));
            }
        },
        Err(UpdateError::NotFound) => {
            let _ = ctx.blobs.delete_prefix(&keys::results(&tenant, &export_id)).await;
            return Err(StageError::new(ErrorName::NotFound, "the export no longer exists"));
        }
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };
    ctx.blobs.delete_prefix(&keys::staging(&tenant, &export_id)).await?;
    // Only the recorded files stay: packaging replaced the encoded ones (clear text when they
    // were encrypted) with its own.
    for o in ctx.blobs.list(&keys::results(&tenant, &export_id)).await? {
        if !files.iter().any(|f| f.key == o.key) {
            ctx.blobs.delete(&o.key).await?;
        }
    }
    notify::export_finished(ctx.store.as_ref(), ctx.keys.as_ref(), &export).await;
    Ok(ExportRef { tenant, export_id })
}

/// Whether an earlier attempt of this stage finished the export with these files.
fn recorded_with(e: &Export, files: &[ResultFile]) -> bool {
    matches!(e.status, ExportStatus::Completed | ExportStatus::Partial | ExportStatus::Failed)
        && e.progress.step == Step::Done
        && e.result.as_ref().is_some_and(|r| r.files == files)
}

/// The receipts after a redelivery: each new one replaces the receipt of its destination.
fn merge_receipts(old: &[Delivery], new: &[Delivery]) -> Vec<Delivery> {
    let mut all = old.to_vec();
    for d in new {
        match all.iter_mut().find(|o| o.index == d.index) {
            Some(o) => *o = d.clone(),
            None => all.push(d.clone()),
        }
    }
    all.sort_by_key(|d| d.index);
    all
}
