//! GET /v1/health: is the service up and its store reachable. No authentication.

use http::StatusCode;
use serde_json::json;

use super::{Code, Problem, Response, json_response};
use crate::services::Services;

pub async fn health(svc: &Services) -> Result<Response, Problem> {
    match svc.store.get_api_key("health-check").await {
        Ok(_) => Ok(json_response(StatusCode::OK, &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            Err(Problem::new(Code::ServiceUnavailable, "the job store is unreachable"))
        }
    }
}
