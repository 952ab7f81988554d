//! Deliver: hand the files to one destination and return its receipt. The state machine maps
//! this stage over the export's destinations. Transient failures (timeouts, 5xx, 429, resets)
//! are retried here, with the destination's backoff and full jitter (or the remote's
//! `Retry-After`); a permanent failure (auth refused, 4xx, host key mismatch) ends the
//! destination at once. A failed destination is a receipt with `status: failed`, not an error:
//! the other destinations go on and the export ends `partial`.

use chrono::Utc;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::mark;
use super::{StageContext, StageError, load_active};
use crate::deliver::dispatch::{self, AttemptContext};
use crate::deliver::filename::{self, NameContext};
use crate::deliver::{DeliverError, Evidence, OutgoingFile};
use crate::model::destination::Destination;
use crate::model::{DeliveredFile, Delivery, ResultFile, Step};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverInput {
    pub tenant: String,
    pub export_id: String,
    /// The destination's position among the export's destinations.
    pub index: u32,
    /// The destination, as the plan listed it (its type; the config is read from the export).
    pub destination: Value,
    pub files: Vec<ResultFile>,
}

/// How long download links sent by webhooks and emails stay valid.
const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

pub async fn deliver(ctx: &StageContext, input: DeliverInput) -> Result<Delivery, StageError> {
    let DeliverInput { tenant, export_id, index, files, .. } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    mark(ctx, &tenant, &export_id, Step::Deliver, "delivering".into(), None).await?;
    let Some(dest) = export.spec.destinations.get(index as usize) else {
        return Err(StageError::invalid(format!("the export has no destination {index}")));
    };
    let started = Utc::now();
    // The files as local files (a temporary copy where the blob store is remote), named for
    // the recipient. The download link and a Transfer Family connector keep them where they
    // are: they only check they exist.
    let needs_local = match &dest.target {
        Destination::Download => false,
        Destination::Sftp(c) => c.transfer_connector.is_none(),
        _ => true,
    };
    let zone: chrono_tz::Tz = dest.timezone.as_deref().and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC);
    let names = NameContext { export_id: &export_id, tenant: &tenant, format: export.spec.format.kind().as_str(), time: started, zone };
    let mut locals = Vec::new();
    let mut outgoing = Vec::new();
    for f in &files {
        let remote_name = filename::render(dest.filename.as_deref(), &f.name, &names).map_err(StageError::invalid)?;
        let path = if needs_local {
            let local = ctx.blobs.local_file(&f.key).await?;
            let path = local.path.clone();
            locals.push(local);
            path
        } else if ctx.blobs.head(&f.key).await?.is_none() {
            return Err(StageError::internal(format!("the file {} is missing", f.name)));
        } else {
            std::path::PathBuf::new()
        };
        outgoing.push(OutgoingFile { remote_name, path, size: f.size, sha256: f.sha256.clone(), content_type: f.content_type.clone() });
    }
    let blob_keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
    let cx = AttemptContext {
        store: ctx.store.as_ref(),
        keys: ctx.keys.as_ref(),
        blobs: ctx.blobs.as_ref(),
        tenant: &tenant,
        export_id: &export_id,
        blob_keys: &blob_keys,
        link_ttl: LINK_TTL,
    };
    let policy = dest.retry_policy();
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match dispatch::attempt(&cx, &dest.target, &outgoing).await {
            Ok(evidence) => break Ok(evidence),
            Err(DeliverError::Transient { message, retry_after }) if attempts < policy.max_attempts => {
                let wait = policy.delay(attempts, retry_after, rand::rng().random::<f64>());
                tracing::warn!(export_id, index, attempts, wait_ms = wait.as_millis() as u64, error = %message, "delivery attempt failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => break Err(e),
        }
    };
    drop(locals);
    let kind = dest.target.kind().to_string();
    let delivered = |e: Option<&Evidence>| -> Vec<DeliveredFile> {
        files
            .iter()
            .zip(&outgoing)
            .map(|(f, o)| DeliveredFile {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                remote_name: e.map(|_| o.remote_name.clone()),
            })
            .collect()
    };
    let receipt = match outcome {
        Ok(ev) => {
            let location = match &dest.target {
                Destination::Download => Some(format!("/v1/exports/{export_id}/download")),
                _ => Some(ev.location.clone()).filter(|l| !l.is_empty()),
            };
            Delivery {
                index,
                kind,
                status: "delivered".into(),
                location,
                files: delivered(Some(&ev)),
                delivered_at: Utc::now(),
                started_at: Some(started),
                attempts,
                error: None,
                evidence: Some(json!({"files": ev.files, "details": ev.details})),
            }
        }
        Err(e) => {
            tracing::warn!(export_id, index, attempts, error = %e, "delivery failed");
            Delivery {
                index,
                kind,
                status: "failed".into(),
                location: None,
                files: delivered(None),
                delivered_at: Utc::now(),
                started_at: Some(started),
                attempts,
                error: Some(e.to_string()),
                evidence: None,
            }
        }
    };
    let outcome = if receipt.status == "delivered" { "success" } else { "failed" };
    super::audit(ctx, &tenant, &export_id, &format!("export.delivery.{}", receipt.kind), outcome).await;
    Ok(receipt)
}
