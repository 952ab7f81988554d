//! What the routes over a tenant's records (credentials, recipient keys) share: names, the
//! listing, loading by id, deleting.

use chrono::Utc;
use http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

use super::exports::audit_event;
use super::{Code, Problem, Response, json_response, page_params, query};
use crate::model::{Principal, ValidationErrors};
use crate::services::Services;
use crate::store::{Record, RecordKind, StoreError};

/// Check a record's `name`: 1 to 100 characters, letters, digits, `.`, `_`, `-` and spaces.
pub fn check_name(body: &Value, errs: &mut ValidationErrors) -> String {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    let ok = (1..=100).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '))
        && name.trim() == name;
    if !ok {
        errs.push("/name", body.get("name").cloned().unwrap_or(Value::Null), "1 to 100 letters, digits, `.`, `_`, `-` or inner spaces");
    }
    name.to_string()
}

/// A new record of the caller's tenant, version 1.
pub fn new_record(kind: RecordKind, principal: &Principal, id: String, name: String, doc: Value) -> Record {
    let now = Utc::now();
    Record { kind, tenant: principal.tenant.clone(), id, name, version: 1, created_at: now, updated_at: now, doc }
}

/// Store a new record: 409 when the name is taken.
pub async fn create(svc: &Services, record: &Record, noun: &str) -> Result<(), Problem> {
    match svc.store.create_record(record).await {
        Ok(()) => Ok(()),
        Err(StoreError::AlreadyExists) => Err(Problem::new(Code::Conflict, format!("a {noun} named `{}` exists already", record.name))),
        Err(e) => Err(Problem::internal(e)),
    }
}

/// A record of the caller's tenant by id, or 404 (another tenant's is not found either).
pub async fn load(svc: &Services, principal: &Principal, kind: RecordKind, id: &str, noun: &str) -> Result<Record, Problem> {
    svc.store
        .get_record(kind, &principal.tenant, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::new(Code::NotFound, format!("no {noun} `{id}`")))
}

/// `GET` a listing: newest first, `limit` and `cursor`, each record as `view` shows it.
pub async fn list(
    svc: &Services,
    req: &Request,
    principal: &Principal,
    kind: RecordKind,
    view: fn(&Record) -> Value,
) -> Result<Response, Problem> {
    let q = query(req, &["limit", "cursor"])?;
    let mut errs = ValidationErrors::new();
    let (limit, cursor) = page_params(&q, &mut errs);
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    let page = svc.store.list_records(kind, &principal.tenant, limit, cursor.as_deref()).await.map_err(|e| match e {
        StoreError::InvalidCursor => super::invalid_cursor(cursor.as_deref()),
        other => Problem::internal(other),
    })?;
    let items: Vec<Value> = page.items.iter().map(view).collect();
    Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": page.next_cursor})))
}

/// `DELETE` a record: 204, or 404. A credential or a recipient key that schedules or
/// templates name is 409, naming them: each of their runs would fail without it.
pub async fn delete(
    svc: &Services,
    principal: &Principal,
    kind: RecordKind,
    id: &str,
    request_id: &str,
    noun: &str,
) -> Result<Response, Problem> {
    let action = format!("{}.delete", kind.as_str());
    if matches!(kind, RecordKind::Credential | RecordKind::RecipientKey) {
        let users = users_of(svc, &principal.tenant, id).await?;
        if !users.is_empty() {
            audit_event(svc, principal, &action, id, request_id, "rejected").await;
            let detail = format!("the {noun} `{id}` is used by {}: change or delete them first", users.join(", "));
            return Err(Problem::new(Code::Conflict, detail));
        }
    }
    if !svc.store.delete_record(kind, &principal.tenant, id).await.map_err(Problem::internal)? {
        return Err(Problem::new(Code::NotFound, format!("no {noun} `{id}`")));
    }
    audit_event(svc, principal, &action, id, request_id, "success").await;
    Ok(http::Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("valid response parts"))
}

/// The tenant's schedules and templates (their current versions) whose definition names `id`.
async fn users_of(svc: &Services, tenant: &str, id: &str) -> Result<Vec<String>, Problem> {
    let mut users = Vec::new();
    for (kind, noun) in [(RecordKind::Schedule, "schedule"), (RecordKind::Template, "template")] {
        let mut cursor: Option<String> = None;
        loop {
            let page = svc.store.list_records(kind, tenant, 100, cursor.as_deref()).await.map_err(Problem::internal)?;
            for r in &page.items {
                let definition = if kind == RecordKind::Template { r.doc.get("current").unwrap_or(&r.doc) } else { &r.doc };
                if names(definition, id) {
                    users.push(format!("{noun} `{}` ({})", r.id, r.name));
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(users)
}

/// Whether any string in `v` is `id`.
fn names(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id,
        Value::Array(a) => a.iter().any(|x| names(x, id)),
        Value::Object(o) => o.values().any(|x| names(x, id)),
        _ => false,
    }
}

/// 201 with the record and its Location.
pub fn created(body: &Value, location: String) -> Result<Response, Problem> {
    let mut resp = json_response(StatusCode::CREATED, body);
    resp.headers_mut().insert(http::header::LOCATION, http::HeaderValue::from_str(&location).map_err(Problem::internal)?);
    Ok(resp)
}

/// Store a new record of the caller's tenant made from `doc`, audit `<kind>.create`, and answer
/// 201 with the record as `view` shows it and its Location `<collection>/<id>`; 409 when the
/// name is taken.
#[allow(clippy::too_many_arguments)]
pub async fn create_and_answer(
    svc: &Services,
    principal: &Principal,
    kind: RecordKind,
    id: String,
    name: String,
    doc: &impl serde::Serialize,
    noun: &str,
    collection: &str,
    view: fn(&Record) -> Value,
    request_id: &str,
) -> Result<Response, Problem> {
    let record = new_record(kind, principal, id.clone(), name, serde_json::to_value(doc).map_err(Problem::internal)?);
    create(svc, &record, noun).await?;
    audit_event(svc, principal, &format!("{}.create", kind.as_str()), &id, request_id, "success").await;
    created(&view(&record), format!("{collection}/{id}"))
}
