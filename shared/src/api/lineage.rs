//! `GET /v1/exports/{id}/lineage`: where an export's rows came from and where its files went,
//! for auditors: source, spec (and its hash), filters, the code version that ran it, rows,
//! checksums, delivery receipts, and the audit events about it.

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use super::{Problem, Response, authorize, json_response, path_id};
use crate::model::{ExportSpec, Permission};
use crate::services::Services;

/// The SHA-256 of a spec's canonical JSON (keys sorted, no spaces): the same spec gives the
/// same hash on every host, and the manifest delivered beside the files carries the same one.
pub fn spec_hash(spec: &ExportSpec) -> String {
    crate::package::manifest::spec_sha256(&serde_json::to_value(spec).unwrap_or_default())
}

/// The version of egress that runs this code.
pub fn code_version() -> &'static str {
    concat!("egress ", env!("CARGO_PKG_VERSION"))
}

/// Audit events about one export read per call.
const BATCH: usize = 1000;

pub async fn lineage(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let export = super::exports::load(svc, &principal, &path_id(req)).await?;
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let batch = svc.store.list_audit(&principal.tenant, after, BATCH).await.map_err(Problem::internal)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.into_iter().filter(|e| e.target == export.id));
    }
    let spec = serde_json::to_value(&export.spec).map_err(Problem::internal)?;
    let files = export.result.as_ref().map(|r| {
        r.files
            .iter()
            .map(|f| json!({"name": f.name, "size": f.size, "rows": f.rows, "sha256": f.sha256, "content_type": f.content_type}))
            .collect::<Vec<_>>()
    });
    let body = json!({
        "export_id": export.id,
        "tenant": export.tenant,
        "status": export.status,
        "created_by": export.created_by,
        "created_at": export.created_at,
        "started_at": export.started_at,
        "finished_at": export.finished_at,
        "runs": export.run,
        "code_version": code_version(),
        "spec_hash": spec_hash(&export.spec),
        "template": export.template,
        "source": spec.get("source"),
        "filters": spec.get("filters"),
        "time_range": spec.get("time_range"),
        "columns": spec.get("columns"),
        "spec": spec,
        "rows": export.result.as_ref().map(|r| r.rows),
        "files": files,
        "deliveries": export.result.as_ref().map(|r| &r.deliveries),
        "audit": events,
    });
    Ok(json_response(StatusCode::OK, &body))
}
