//! Audit events for the API calls the routes do not audit themselves: every read (`GET`: an
//! export, its files, lineage, credentials' names, keys, settings, the audit trail itself) and
//! every call refused for a missing permission. Writes audit their own outcome where they
//! happen. A call without a valid API key has no tenant, so it has no chain to go in.

use http::{Method, StatusCode};
use lambda_http::Request;

use super::{Route, path_id};
use crate::audit::{self, AuditEntry};
use crate::model::Principal;
use crate::services::Services;

/// The action a route's call is audited as: `get_export` → `export.get`, `list_exports` →
/// `exports.list`, `verify_audit` → `audit.verify`.
pub fn action(route: Route) -> String {
    match route.name().split_once('_') {
        Some((verb, noun)) => format!("{noun}.{verb}"),
        None => route.name().to_string(),
    }
}

/// How a call ended, for the audit trail.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "success",
        401 | 403 => "denied",
        400..=499 => "rejected",
        _ => "error",
    }
}

/// Record the call when it is a read, or a refusal for a missing permission; health checks are
/// not recorded.
/// `caller` is whom the call authenticated as, if it did.
pub async fn record(svc: &Services, route: Route, req: &Request, caller: Option<&Principal>, status: StatusCode, request_id: &str) {
    let (method, _) = route.method_and_path();
    let is_read = method == Method::GET && route != Route::Health;
    if !is_read && status != StatusCode::FORBIDDEN {
        return;
    }
    let Some(principal) = caller else { return };
    let id = path_id(req);
    let target = if id.is_empty() { "-" } else { id.as_str() };
    let action = action(route);
    let entry =
        AuditEntry { tenant: &principal.tenant, actor: &principal.key_id, action: &action, target, request_id, outcome: outcome(status) };
    if let Err(e) = audit::append(svc.store.as_ref(), entry).await {
        tracing::warn!(error = %e, action, "audit append failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_noun_then_verb() {
        assert_eq!(action(Route::GetExport), "export.get");
        assert_eq!(action(Route::ListExports), "exports.list");
        assert_eq!(action(Route::DownloadExport), "export.download");
        assert_eq!(action(Route::VerifyAudit), "audit.verify");
        assert_eq!(action(Route::ListRecipientKeys), "recipient_keys.list");
        assert_eq!(outcome(StatusCode::FOUND), "success");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "denied");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "rejected");
        assert_eq!(outcome(StatusCode::SERVICE_UNAVAILABLE), "error");
    }
}
