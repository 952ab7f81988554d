//! `/v1/recipient-keys`: the public keys a tenant's exports are encrypted to (OpenPGP keys,
//! armored or binary, and age recipients). A key is checked when it is registered (one key,
//! self-signed, unexpired, able to encrypt) and again each time an export uses it.

use base64::Engine;
use http::StatusCode;
use lambda_http::Request;
use serde_json::{Value, json};

use super::exports::audit_event;
use super::{Problem, Response, authorize, json_body, json_response, path_id, records};
use crate::model::recipient_key::{RecipientKeyDoc, RecipientKeyKind, recipient_key_id};
use crate::model::{Permission, ValidationErrors};
use crate::package::recipients;
use crate::services::Services;
use crate::store::{Record, RecordKind};

const NOUN: &str = "recipient key";
const FIELDS: [&str; 5] = ["name", "type", "key", "key_base64", "description"];

/// What the API shows of a recipient key: what it is, not its bytes.
pub fn view(r: &Record) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "type": r.doc.get("type"),
        "description": r.doc.get("description"),
        "details": r.doc.get("details"),
        "created_at": r.created_at,
    })
}

/// The key's bytes: `key` (armored text or an `age1...` recipient) or `key_base64` (a binary
/// OpenPGP key), exactly one.
fn key_bytes(body: &Value, errs: &mut ValidationErrors) -> Option<Vec<u8>> {
    match (body.get("key"), body.get("key_base64")) {
        (Some(Value::String(k)), None) if !k.trim().is_empty() => Some(k.as_bytes().to_vec()),
        (None, Some(Value::String(b))) => match base64::engine::general_purpose::STANDARD.decode(b.trim()) {
            Ok(bytes) if !bytes.is_empty() => Some(bytes),
            _ => {
                errs.push("/key_base64", Value::Null, "a binary OpenPGP public key in standard base64");
                None
            }
        },
        (Some(_), Some(_)) => {
            errs.push("/key_base64", Value::Null, "either `key` or `key_base64`, not both");
            None
        }
        (_, b) => {
            let at = if b.is_some() { "/key_base64" } else { "/key" };
            errs.push(
                at,
                Value::Null,
                "the public key: `key` with an armored OpenPGP key (-----BEGIN PGP PUBLIC KEY BLOCK-----) or an age recipient (age1...), or `key_base64` with a binary OpenPGP key",
            );
            None
        }
    }
}

pub async fn create(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let body = json_body(svc, req)?;
    let mut errs = ValidationErrors::new();
    if let Some(obj) = body.as_object() {
        for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            errs.push(format!("/{k}"), Value::Null, format!("one of the fields {}", FIELDS.join(", ")));
        }
    }
    let name = records::check_name(&body, &mut errs);
    let description = body.get("description").and_then(Value::as_str).map(str::to_string);
    if description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errs.push("/description", Value::Null, "at most 500 characters");
    }
    let kind = match serde_json::from_value::<RecipientKeyKind>(body.get("type").cloned().unwrap_or(Value::Null)) {
        Ok(k) => Some(k),
        Err(_) => {
            errs.push("/type", body.get("type").cloned().unwrap_or(Value::Null), "openpgp or age");
            None
        }
    };
    let bytes = key_bytes(&body, &mut errs);
    let parsed = match (kind, &bytes) {
        (Some(kind), Some(bytes)) => match recipients::parse(kind, bytes) {
            Ok(p) => Some((kind, p)),
            Err(why) => {
                let at = if body.get("key_base64").is_some() { "/key_base64" } else { "/key" };
                errs.push(at, Value::Null, format!("a usable {} public key: {why}", kind.as_str()));
                None
            }
        },
        _ => None,
    };
    let (Some((kind, parsed)), Some(bytes)) = (parsed.filter(|_| errs.is_empty()), bytes) else {
        audit_event(svc, &principal, "recipient_key.create", "-", request_id, "rejected").await;
        return Err(Problem::validation(errs));
    };
    let id = recipient_key_id();
    let doc = RecipientKeyDoc {
        kind,
        key_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        description,
        details: recipients::describe(&parsed),
    };
    records::create_and_answer(svc, &principal, RecordKind::RecipientKey, id, name, &doc, NOUN, "/v1/recipient-keys", view, request_id)
        .await
}

pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    records::list(svc, req, &principal, RecordKind::RecipientKey, view).await
}

pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let r = records::load(svc, &principal, RecordKind::RecipientKey, &path_id(req), NOUN).await?;
    Ok(json_response(StatusCode::OK, &view(&r)))
}

pub async fn delete(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    records::delete(svc, &principal, RecordKind::RecipientKey, &path_id(req), request_id, NOUN).await
}
