//! GET /v1/exports/{id}/download: a 302 to a signed URL that expires (S3 presigned on AWS, the
//! local host's signed `/v1/files/...` on the embedded default).

use std::time::Duration;

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use super::exports::load;
use super::{Code, Problem, Response, authorize, json_response, path_id, query};
use crate::audit::{self, AuditEntry};
use crate::model::{ExportStatus, Permission};
use crate::services::Services;

pub async fn download(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Download).await?;
    let q = query(req, &["file", "expires_in"])?;
    let export = load(svc, &principal, &path_id(req)).await?;
    let result = match (&export.status, &export.result) {
        (ExportStatus::Completed | ExportStatus::Partial, Some(r)) => r,
        (status, _) => {
            return Err(Problem::new(
                Code::ExportNotReady,
                format!("the export is {}; files are there once it is completed", status.as_str()),
            ));
        }
    };
    let now = Utc::now();
    if result.expires_at <= now {
        return Err(Problem::new(Code::ExportExpired, format!("the files expired at {}", result.expires_at.to_rfc3339())));
    }
    let file = match q.get("file") {
        None => result.files.first(),
        Some(name) => result.files.iter().find(|f| &f.name == name),
    }
    .ok_or_else(|| {
        let names: Vec<&str> = result.files.iter().map(|f| f.name.as_str()).collect();
        Problem::new(
            Code::InvalidParameter,
            format!("no file `{}`; the export has: {}", q.get("file").cloned().unwrap_or_default(), names.join(", ")),
        )
    })?;
    let mut ttl = svc.settings.download_url_ttl;
    if let Some(s) = q.get("expires_in") {
        match s.parse::<u64>() {
            Ok(n) if (1..=86_400).contains(&n) => ttl = Duration::from_secs(n),
            _ => return Err(Problem::new(Code::InvalidParameter, format!("expires_in `{s}`: an integer from 1 to 86400 seconds"))),
        }
    }
    // A link never outlives the file.
    let left = (result.expires_at - now).num_seconds().max(1) as u64;
    let ttl = ttl.min(Duration::from_secs(left));
    let url = svc.blobs.presign_get(&file.key, &file.name, &file.content_type, ttl).await.map_err(Problem::internal)?;
    let entry = AuditEntry {
        tenant: &principal.tenant,
        actor: &principal.key_id,
        action: "export.download",
        target: &export.id,
        request_id,
        outcome: "success",
    };
    if let Err(e) = audit::append(svc.store.as_ref(), entry).await {
        tracing::warn!(error = %e, "audit append failed");
    }
    let expires_at = now + chrono::Duration::seconds(ttl.as_secs() as i64);
    let mut resp = json_response(
        StatusCode::FOUND,
        &json!({ "url": url, "expires_at": expires_at, "file": file.name, "size": file.size, "sha256": file.sha256 }),
    );
    resp.headers_mut().insert(http::header::LOCATION, http::HeaderValue::from_str(&url).map_err(Problem::internal)?);
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    Ok(resp)
}
