//! `GET/PUT /v1/settings`: the tenant's settings (allowed hosts, default notifications).

use http::StatusCode;
use lambda_http::Request;
use serde_json::{Value, json};

use super::exports::audit_event;
use super::{Code, Problem, Response, authorize, json_body, json_response};
use crate::model::settings::TenantSettings;
use crate::model::{Permission, ValidationErrors};
use crate::services::Services;
use crate::store::{Record, RecordKind, RecordStore, StoreError};

/// The id and name of the one settings record of a tenant.
const ID: &str = "settings";

/// The tenant's settings (defaults when none were set).
pub async fn load(store: &dyn RecordStore, tenant: &str) -> Result<(TenantSettings, Option<Record>), StoreError> {
    match store.get_record(RecordKind::Settings, tenant, ID).await? {
        Some(r) => {
            let s = serde_json::from_value(r.doc.clone()).map_err(|e| StoreError::Backend(format!("stored settings do not parse: {e}")))?;
            Ok((s, Some(r)))
        }
        None => Ok((TenantSettings::default(), None)),
    }
}

fn view(s: &TenantSettings, version: u64) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["version"] = json!(version);
    v
}

pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let (s, rec) = load(svc.store.as_ref(), &principal.tenant).await.map_err(Problem::internal)?;
    Ok(json_response(StatusCode::OK, &view(&s, rec.map_or(0, |r| r.version))))
}

/// Replace the settings. With `"version"` in the body, only if the stored settings are still
/// that version (409 otherwise), so two editors never overwrite each other unknowingly.
pub async fn put(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let mut body = json_body(svc, req)?;
    let expected = body.as_object_mut().and_then(|o| o.remove("version"));
    let settings: TenantSettings = serde_path_to_error::deserialize(&body).map_err(|e| {
        Problem::validation(ValidationErrors::single(
            format!("/{}", e.path().to_string().replace('.', "/")).replace("//", "/"),
            Value::Null,
            format!("the settings fields allowed_hosts and notifications: {}", e.inner()),
        ))
    })?;
    settings.validate().map_err(Problem::validation)?;
    let expected = match expected {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Problem::validation(ValidationErrors::single("/version", v.clone(), "the version a GET returned (an integer)"))
        })?),
    };
    let doc = serde_json::to_value(&settings).map_err(Problem::internal)?;
    let (_, current) = load(svc.store.as_ref(), &principal.tenant).await.map_err(Problem::internal)?;
    let conflict = || Problem::new(Code::Conflict, "the settings changed since they were read; GET them again");
    let saved = match current {
        None => {
            if expected.is_some_and(|v| v != 0) {
                return Err(conflict());
            }
            let rec = super::records::new_record(RecordKind::Settings, &principal, ID.into(), ID.into(), doc);
            match svc.store.create_record(&rec).await {
                Ok(()) => rec,
                Err(StoreError::AlreadyExists) => return Err(conflict()),
                Err(e) => return Err(Problem::internal(e)),
            }
        }
        Some(mut rec) => {
            if expected.is_some_and(|v| v != rec.version) {
                return Err(conflict());
            }
            rec.doc = doc;
            rec.updated_at = chrono::Utc::now();
            match svc.store.put_record_if_version(&rec).await {
                Ok(r) => r,
                Err(StoreError::Precondition | StoreError::NotFound) => return Err(conflict()),
                Err(e) => return Err(Problem::internal(e)),
            }
        }
    };
    audit_event(svc, &principal, "settings.update", ID, request_id, "success").await;
    Ok(json_response(StatusCode::OK, &view(&settings, saved.version)))
}
