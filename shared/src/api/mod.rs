//! The REST API v1: route functions from `lambda_http::Request` to a response. Each Lambda runs
//! one of them; the local host runs all of them behind [`route`], which does what API Gateway
//! does (match the path, fill in path and query parameters).

pub mod audit;
pub mod call_audit;
pub mod control;
pub mod credentials;
pub mod download;
pub mod exports;
pub mod health;
pub mod lineage;
pub mod problem;
pub mod recipient_keys;
pub mod records;
pub mod schedules;
pub mod settings;
pub mod templates;

use std::collections::HashMap;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

use crate::auth::{self, AuthError};
use crate::model::{Permission, Principal};
use crate::services::Services;
pub use problem::{Code, Problem};

pub type Response = http::Response<Body>;

/// Every route of the API: one Lambda function each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    CreateExport,
    ListExports,
    GetExport,
    DeleteExport,
    DownloadExport,
    PauseExport,
    ResumeExport,
    CancelExport,
    RetryExport,
    RedeliverExport,
    GetLineage,
    CreateCredential,
    ListCredentials,
    GetCredential,
    DeleteCredential,
    CreateRecipientKey,
    ListRecipientKeys,
    GetRecipientKey,
    DeleteRecipientKey,
    CreateSchedule,
    ListSchedules,
    GetSchedule,
    PutSchedule,
    DeleteSchedule,
    PauseSchedule,
    ResumeSchedule,
    RunSchedule,
    ListScheduleRuns,
    GetSettings,
    PutSettings,
    CreateTemplate,
    ListTemplates,
    GetTemplate,
    PutTemplate,
    DeleteTemplate,
    ListAudit,
    VerifyAudit,
    Health,
}

impl Route {
    pub const ALL: [Route; 38] = [
        Route::CreateExport,
        Route::ListExports,
        Route::GetExport,
        Route::DeleteExport,
        Route::DownloadExport,
        Route::PauseExport,
        Route::ResumeExport,
        Route::CancelExport,
        Route::RetryExport,
        Route::RedeliverExport,
        Route::GetLineage,
        Route::CreateCredential,
        Route::ListCredentials,
        Route::GetCredential,
        Route::DeleteCredential,
        Route::CreateRecipientKey,
        Route::ListRecipientKeys,
        Route::GetRecipientKey,
        Route::DeleteRecipientKey,
        Route::CreateSchedule,
        Route::ListSchedules,
        Route::GetSchedule,
        Route::PutSchedule,
        Route::DeleteSchedule,
        Route::PauseSchedule,
        Route::ResumeSchedule,
        Route::RunSchedule,
        Route::ListScheduleRuns,
        Route::GetSettings,
        Route::PutSettings,
        Route::CreateTemplate,
        Route::ListTemplates,
        Route::GetTemplate,
        Route::PutTemplate,
        Route::DeleteTemplate,
        Route::ListAudit,
        Route::VerifyAudit,
        Route::Health,
    ];

    /// The function's name: binary `api_<name>`, handler, log field.
    pub fn name(self) -> &'static str {
        match self {
            Route::CreateExport => "create_export",
            Route::ListExports => "list_exports",
            Route::GetExport => "get_export",
            Route::DeleteExport => "delete_export",
            Route::DownloadExport => "download_export",
            Route::PauseExport => "pause_export",
            Route::ResumeExport => "resume_export",
            Route::CancelExport => "cancel_export",
            Route::RetryExport => "retry_export",
            Route::RedeliverExport => "redeliver_export",
            Route::GetLineage => "get_lineage",
            Route::CreateCredential => "create_credential",
            Route::ListCredentials => "list_credentials",
            Route::GetCredential => "get_credential",
            Route::DeleteCredential => "delete_credential",
            Route::CreateRecipientKey => "create_recipient_key",
            Route::ListRecipientKeys => "list_recipient_keys",
            Route::GetRecipientKey => "get_recipient_key",
            Route::DeleteRecipientKey => "delete_recipient_key",
            Route::CreateSchedule => "create_schedule",
            Route::ListSchedules => "list_schedules",
            Route::GetSchedule => "get_schedule",
            Route::PutSchedule => "put_schedule",
            Route::DeleteSchedule => "delete_schedule",
            Route::PauseSchedule => "pause_schedule",
            Route::ResumeSchedule => "resume_schedule",
            Route::RunSchedule => "run_schedule",
            Route::ListScheduleRuns => "list_schedule_runs",
            Route::GetSettings => "get_settings",
            Route::PutSettings => "put_settings",
            Route::CreateTemplate => "create_template",
            Route::ListTemplates => "list_templates",
            Route::GetTemplate => "get_template",
            Route::PutTemplate => "put_template",
            Route::DeleteTemplate => "delete_template",
            Route::ListAudit => "list_audit",
            Route::VerifyAudit => "verify_audit",
            Route::Health => "health",
        }
    }

    pub fn method_and_path(self) -> (Method, &'static str) {
        match self {
            Route::CreateExport => (Method::POST, "/v1/exports"),
            Route::ListExports => (Method::GET, "/v1/exports"),
            Route::GetExport => (Method::GET, "/v1/exports/{id}"),
            Route::DeleteExport => (Method::DELETE, "/v1/exports/{id}"),
            Route::DownloadExport => (Method::GET, "/v1/exports/{id}/download"),
            Route::PauseExport => (Method::POST, "/v1/exports/{id}/pause"),
            Route::ResumeExport => (Method::POST, "/v1/exports/{id}/resume"),
            Route::CancelExport => (Method::POST, "/v1/exports/{id}/cancel"),
            Route::RetryExport => (Method::POST, "/v1/exports/{id}/retry"),
            Route::RedeliverExport => (Method::POST, "/v1/exports/{id}/deliveries/{n}/retry"),
            Route::GetLineage => (Method::GET, "/v1/exports/{id}/lineage"),
            Route::CreateCredential => (Method::POST, "/v1/credentials"),
            Route::ListCredentials => (Method::GET, "/v1/credentials"),
            Route::GetCredential => (Method::GET, "/v1/credentials/{id}"),
            Route::DeleteCredential => (Method::DELETE, "/v1/credentials/{id}"),
            Route::CreateRecipientKey => (Method::POST, "/v1/recipient-keys"),
            Route::ListRecipientKeys => (Method::GET, "/v1/recipient-keys"),
            Route::GetRecipientKey => (Method::GET, "/v1/recipient-keys/{id}"),
            Route::DeleteRecipientKey => (Method::DELETE, "/v1/recipient-keys/{id}"),
            Route::CreateSchedule => (Method::POST, "/v1/schedules"),
            Route::ListSchedules => (Method::GET, "/v1/schedules"),
            Route::GetSchedule => (Method::GET, "/v1/schedules/{id}"),
            Route::PutSchedule => (Method::PUT, "/v1/schedules/{id}"),
            Route::DeleteSchedule => (Method::DELETE, "/v1/schedules/{id}"),
            Route::PauseSchedule => (Method::POST, "/v1/schedules/{id}/pause"),
            Route::ResumeSchedule => (Method::POST, "/v1/schedules/{id}/resume"),
            Route::RunSchedule => (Method::POST, "/v1/schedules/{id}/run"),
            Route::ListScheduleRuns => (Method::GET, "/v1/schedules/{id}/runs"),
            Route::GetSettings => (Method::GET, "/v1/settings"),
            Route::PutSettings => (Method::PUT, "/v1/settings"),
            Route::CreateTemplate => (Method::POST, "/v1/templates"),
            Route::ListTemplates => (Method::GET, "/v1/templates"),
            Route::GetTemplate => (Method::GET, "/v1/templates/{id}"),
            Route::PutTemplate => (Method::PUT, "/v1/templates/{id}"),
            Route::DeleteTemplate => (Method::DELETE, "/v1/templates/{id}"),
            Route::ListAudit => (Method::GET, "/v1/audit"),
            Route::VerifyAudit => (Method::GET, "/v1/audit/verify"),
            Route::Health => (Method::GET, "/v1/health"),
        }
    }

    /// Run the route function.
    pub async fn call(self, svc: &Services, req: Request) -> Response {
        let instance = req.uri().path().to_string();
        let request_id = request_id(&req);
        let (result, caller) = CALLER
            .scope(std::cell::RefCell::new(None), async {
                let result = self.dispatch(svc, &req, &request_id).await;
                (result, CALLER.with(|c| c.borrow_mut().take()))
            })
            .await;
        let mut resp = result.unwrap_or_else(|p| p.into_response(&instance, &request_id));
        call_audit::record(svc, self, &req, caller.as_ref(), resp.status(), &request_id).await;
        if let Ok(v) = http::HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }

    async fn dispatch(self, svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
        match self {
            Route::CreateExport => exports::create(svc, req, request_id).await,
            Route::ListExports => exports::list(svc, req).await,
            Route::GetExport => exports::get(svc, req).await,
            Route::DeleteExport => exports::delete(svc, req, request_id).await,
            Route::DownloadExport => download::download(svc, req, request_id).await,
            Route::PauseExport => control::control(svc, req, request_id, control::Action::Pause).await,
            Route::ResumeExport => control::control(svc, req, request_id, control::Action::Resume).await,
            Route::CancelExport => control::control(svc, req, request_id, control::Action::Cancel).await,
            Route::RetryExport => control::control(svc, req, request_id, control::Action::Retry).await,
            Route::RedeliverExport => control::redeliver(svc, req, request_id).await,
            Route::GetLineage => lineage::lineage(svc, req).await,
            Route::CreateCredential => credentials::create(svc, req, request_id).await,
            Route::ListCredentials => credentials::list(svc, req).await,
            Route::GetCredential => credentials::get(svc, req).await,
            Route::DeleteCredential => credentials::delete(svc, req, request_id).await,
            Route::CreateRecipientKey => recipient_keys::create(svc, req, request_id).await,
            Route::ListRecipientKeys => recipient_keys::list(svc, req).await,
            Route::GetRecipientKey => recipient_keys::get(svc, req).await,
            Route::DeleteRecipientKey => recipient_keys::delete(svc, req, request_id).await,
            Route::CreateSchedule => schedules::create(svc, req, request_id).await,
            Route::ListSchedules => schedules::list(svc, req).await,
            Route::GetSchedule => schedules::get(svc, req).await,
            Route::PutSchedule => schedules::put(svc, req, request_id).await,
            Route::DeleteSchedule => schedules::delete(svc, req, request_id).await,
            Route::PauseSchedule => schedules::set_paused(svc, req, request_id, true).await,
            Route::ResumeSchedule => schedules::set_paused(svc, req, request_id, false).await,
            Route::RunSchedule => schedules::run_now(svc, req, request_id).await,
            Route::ListScheduleRuns => schedules::list_runs(svc, req).await,
            Route::GetSettings => settings::get(svc, req).await,
            Route::PutSettings => settings::put(svc, req, request_id).await,
            Route::CreateTemplate => templates::create(svc, req, request_id).await,
            Route::ListTemplates => templates::list(svc, req).await,
            Route::GetTemplate => templates::get(svc, req).await,
            Route::PutTemplate => templates::put(svc, req, request_id).await,
            Route::DeleteTemplate => templates::delete(svc, req, request_id).await,
            Route::ListAudit => audit::list(svc, req).await,
            Route::VerifyAudit => audit::verify(svc, req).await,
            Route::Health => health::health(svc).await,
        }
    }
}

tokio::task_local! {
    /// The caller a request authenticated as ([`authorize`]), for the call's audit event, so that
    /// the key is not looked up twice.
    static CALLER: std::cell::RefCell<Option<Principal>>;
}

/// What the router found for a method and path.
pub enum Matched {
    Route(Route, HashMap<String, String>),
    MethodNotAllowed,
    NotFound,
}

/// Match a request line to a route, as API Gateway's resource tree does.
pub fn route(method: &Method, path: &str) -> Matched {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut path_matched = false;
    for r in Route::ALL {
        let (m, pattern) = r.method_and_path();
        let pat: Vec<&str> = pattern.split('/').skip(1).collect();
        if pat.len() != segs.len() {
            continue;
        }
        let mut params = HashMap::new();
        let ok = pat.iter().zip(&segs).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.insert(name.to_string(), percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned());
                !s.is_empty()
            } else {
                p == s
            }
        });
        if ok {
            if m == *method {
                return Matched::Route(r, params);
            }
            path_matched = true;
        }
    }
    if path_matched { Matched::MethodNotAllowed } else { Matched::NotFound }
}

/// The request id: API Gateway's, a caller's `x-request-id`, or a new one.
pub fn request_id(req: &Request) -> String {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) = req.request_context_ref()
        && let Some(id) = &c.request_id
    {
        return id.clone();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(crate::model::ids::request_id)
}

/// Authenticate, apply the rate limit, and check one permission.
pub async fn authorize(svc: &Services, req: &Request, permission: Permission) -> Result<Principal, Problem> {
    let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let principal = match auth::authenticate(svc.store.as_ref(), header).await {
        Ok(p) => p,
        Err(AuthError::Store(e)) => return Err(Problem::internal(e)),
        Err(e) => return Err(Problem::new(Code::Unauthorized, e.to_string()).with_header("www-authenticate", "Bearer")),
    };
    // Outside a routed call (no scope) there is no call to audit.
    let _ = CALLER.try_with(|c| *c.borrow_mut() = Some(principal.clone()));
    if let Some((rate, burst)) = svc.settings.rate_limit
        && let Err(wait) = svc.limiter.check(&principal.key_id, rate, burst)
    {
        return Err(Problem::new(Code::RateLimited, format!("more than {rate} requests per second; retry in {wait} s"))
            .with_header("retry-after", wait.to_string()));
    }
    if !principal.can(permission) {
        return Err(Problem::new(Code::Forbidden, format!("this API key lacks the permission {}", permission.as_str())));
    }
    Ok(principal)
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .expect("valid response parts")
}

/// The `{id}` path parameter.
pub fn path_id(req: &Request) -> String {
    path_param(req, "id")
}

/// A path parameter by name (empty when the route has none of that name).
pub fn path_param(req: &Request, name: &str) -> String {
    req.path_parameters().first(name).unwrap_or_default().to_string()
}

/// Query parameters, rejecting any the route does not know.
pub fn query(req: &Request, allowed: &[&str]) -> Result<HashMap<String, String>, Problem> {
    let q = req.query_string_parameters();
    let mut out = HashMap::new();
    let mut errs = crate::model::ValidationErrors::new();
    for (k, v) in q.iter() {
        if !allowed.contains(&k) {
            errs.push(format!("/query/{k}"), v, format!("one of the parameters {}", allowed.join(", ")));
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        let mut p = Problem::new(Code::InvalidParameter, "unknown query parameters");
        p.errors = Some(errs);
        Err(p)
    }
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The request body as JSON: at most `max_body_bytes`, a JSON content type when one is given.
pub fn json_body(svc: &Services, req: &Request) -> Result<Value, Problem> {
    let raw = body_bytes(req);
    if raw.len() > svc.settings.max_body_bytes {
        return Err(Problem::new(
            Code::PayloadTooLarge,
            format!("the body has {} bytes; at most {} are accepted", raw.len(), svc.settings.max_body_bytes),
        ));
    }
    if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !ct.to_ascii_lowercase().contains("json")
    {
        return Err(Problem::new(Code::UnsupportedMediaType, format!("Content-Type `{ct}` is not JSON; send application/json")));
    }
    serde_json::from_slice(raw).map_err(|e| Problem::new(Code::BadRequest, format!("the body is not valid JSON: {e}")))
}

/// `limit` (1 to 100, default 20) and `cursor` of a listing.
pub fn page_params(q: &HashMap<String, String>, errs: &mut crate::model::ValidationErrors) -> (usize, Option<String>) {
    let limit = match q.get("limit") {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                errs.push("/query/limit", s.as_str(), "an integer from 1 to 100");
                20
            }
        },
    };
    (limit, q.get("cursor").cloned())
}

/// 400 listing every bad query parameter.
pub fn invalid_query(errs: crate::model::ValidationErrors) -> Problem {
    let mut p = Problem::new(Code::InvalidParameter, format!("query parameters are not valid: {errs}"));
    p.errors = Some(errs);
    p
}

/// 400 for a cursor this listing did not hand out.
pub fn invalid_cursor(cursor: Option<&str>) -> Problem {
    let mut p = Problem::new(Code::InvalidParameter, "the cursor is not valid");
    p.errors = Some(crate::model::ValidationErrors::single(
        "/query/cursor",
        cursor.unwrap_or_default(),
        "a cursor returned as `next_cursor` by this listing",
    ));
    p
}
