//! Errors as `application/problem+json` (RFC 9457), each with a stable `code`.

use http::StatusCode;
use lambda_http::Body;
use serde_json::{Value, json};

use crate::model::ValidationErrors;

/// Stable error codes and their HTTP statuses. Documented in the README; never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidParameter,
    ValidationError,
    InvalidFormat,
    Unauthorized,
    Forbidden,
    NotFound,
    ExportNotFound,
    MethodNotAllowed,
    Conflict,
    InvalidState,
    NotRetryable,
    IdempotencyKeyReused,
    ExportNotReady,
    ExportExpired,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    SignatureInvalid,
    UrlExpired,
    InternalError,
    ServiceUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::InvalidParameter => "INVALID_PARAMETER",
            Code::ValidationError => "VALIDATION_ERROR",
            Code::InvalidFormat => "INVALID_FORMAT",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::ExportNotFound => "EXPORT_NOT_FOUND",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::Conflict => "CONFLICT",
            Code::InvalidState => "INVALID_STATE",
            Code::NotRetryable => "NOT_RETRYABLE",
            Code::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Code::ExportNotReady => "EXPORT_NOT_READY",
            Code::ExportExpired => "EXPORT_EXPIRED",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Code::RateLimited => "RATE_LIMITED",
            Code::SignatureInvalid => "SIGNATURE_INVALID",
            Code::UrlExpired => "URL_EXPIRED",
            Code::InternalError => "INTERNAL_ERROR",
            Code::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest | Code::InvalidParameter => StatusCode::BAD_REQUEST,
            Code::ValidationError | Code::InvalidFormat | Code::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden | Code::SignatureInvalid | Code::UrlExpired => StatusCode::FORBIDDEN,
            Code::NotFound | Code::ExportNotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict | Code::InvalidState | Code::NotRetryable | Code::ExportNotReady => StatusCode::CONFLICT,
            Code::ExportExpired => StatusCode::GONE,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Code::BadRequest => "The request could not be read",
            Code::InvalidParameter => "A query parameter is not valid",
            Code::ValidationError => "The request is not valid",
            Code::InvalidFormat => "The format is not supported",
            Code::Unauthorized => "Authentication is required",
            Code::Forbidden => "The API key may not do this",
            Code::NotFound => "No such resource",
            Code::ExportNotFound => "No such export",
            Code::MethodNotAllowed => "Method not allowed here",
            Code::Conflict => "The request conflicts with the resource's state",
            Code::InvalidState => "The export's status does not allow this",
            Code::NotRetryable => "The export failed for a reason a retry would not fix",
            Code::IdempotencyKeyReused => "The idempotency key was used with another request",
            Code::ExportNotReady => "The export has no files yet",
            Code::ExportExpired => "The export's files have expired",
            Code::PayloadTooLarge => "The request body is too large",
            Code::UnsupportedMediaType => "The request body must be JSON",
            Code::RateLimited => "Too many requests",
            Code::SignatureInvalid => "The download link is not valid",
            Code::UrlExpired => "The download link has expired",
            Code::InternalError => "Internal error",
            Code::ServiceUnavailable => "The service is unavailable",
        }
    }
}

/// One problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub detail: String,
    pub errors: Option<ValidationErrors>,
    pub headers: Vec<(&'static str, String)>,
}

impl Problem {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: None, headers: Vec::new() }
    }

    /// A 422 listing every bad field; INVALID_FORMAT when the format itself is what is wrong.
    pub fn validation(errors: ValidationErrors) -> Self {
        let only_format = !errors.0.is_empty() && errors.0.iter().all(|e| e.pointer == "/format" || e.pointer == "/format/type");
        let code = if only_format { Code::InvalidFormat } else { Code::ValidationError };
        let detail = format!("{} field(s) are not valid: {errors}", errors.0.len());
        Self { code, detail, errors: Some(errors), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        // The cause goes to the log, not to the caller.
        tracing::error!(error = %e, "internal error");
        Self::new(Code::InternalError, "An internal error occurred; it has been logged.")
    }

    pub fn to_json(&self, instance: &str, request_id: &str) -> Value {
        let mut v = json!({
            "type": format!("urn:egress:problem:{}", self.code.as_str().to_ascii_lowercase()),
            "title": self.code.title(),
            "status": self.code.status().as_u16(),
            "code": self.code.as_str(),
            "detail": self.detail,
            "instance": instance,
            "request_id": request_id,
        });
        if let Some(errs) = &self.errors {
            v["errors"] = serde_json::to_value(errs).unwrap_or(Value::Null);
        }
        v
    }

    pub fn into_response(self, instance: &str, request_id: &str) -> http::Response<Body> {
        let body = self.to_json(instance, request_id).to_string();
        let mut b = http::Response::builder()
            .status(self.code.status())
            .header(http::header::CONTENT_TYPE, "application/problem+json")
            .header("x-request-id", request_id);
        for (k, v) in &self.headers {
            b = b.header(*k, v);
        }
        b.body(Body::Text(body)).expect("valid response parts")
    }
}
