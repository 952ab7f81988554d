//! `/v1/credentials`: secrets for destinations, given once, stored sealed, never returned.
//! A credential is shown by its id, name, type and description only.

use http::StatusCode;
use lambda_http::Request;
use serde_json::{Value, json};

use super::exports::audit_event;
use super::{Problem, Response, authorize, json_body, json_response, path_id, records};
use crate::model::credential::{CREDENTIAL_TYPES, CredentialSecret, credential_id};
use crate::model::{Permission, ValidationErrors};
use crate::secrets::{self, CredentialDoc};
use crate::services::Services;
use crate::store::{Record, RecordKind};

const NOUN: &str = "credential";

/// What the API shows of a credential: never the secret, sealed or not.
pub fn view(r: &Record) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "type": r.doc.get("type"),
        "description": r.doc.get("description"),
        "created_at": r.created_at,
    })
}

fn parse_secret(body: &Value, errs: &mut ValidationErrors) -> Option<CredentialSecret> {
    let Some(raw) = body.get("secret") else {
        errs.push("/secret", Value::Null, format!("an object with `type` (one of {CREDENTIAL_TYPES}) and its fields"));
        return None;
    };
    match serde_path_to_error::deserialize::<_, CredentialSecret>(raw) {
        Ok(s) => match s.validate() {
            Ok(()) => Some(s),
            Err(e) => {
                errs.extend(e);
                None
            }
        },
        Err(e) => {
            // Never echo what was given: it may be a secret.
            let path = e.path().to_string();
            let pointer = if path == "." { "/secret".to_string() } else { format!("/secret/{}", path.replace('.', "/")) };
            let kind = raw.get("type").and_then(Value::as_str).unwrap_or_default();
            errs.push(
                pointer,
                Value::Null,
                format!("a secret of type `{kind}` ({CREDENTIAL_TYPES}): {}", strip_values(&e.inner().to_string())),
            );
            None
        }
    }
}

/// Serde's message without the value it quotes from the input (`invalid type: string "..."`,
/// `invalid value: integer `...``): field and variant names stay.
fn strip_values(msg: &str) -> String {
    if msg.starts_with("invalid") {
        match msg.find(", expected") {
            Some(i) => format!("a value of the wrong type or out of range{}", &msg[i..]),
            None => "a value of the wrong type or out of range".to_string(),
        }
    } else {
        msg.to_string()
    }
}

pub async fn create(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let body = json_body(svc, req)?;
    let mut errs = ValidationErrors::new();
    if let Some(obj) = body.as_object() {
        for k in obj.keys().filter(|k| !["name", "description", "secret"].contains(&k.as_str())) {
            errs.push(format!("/{k}"), Value::Null, "one of the fields name, description, secret");
        }
    }
    let name = records::check_name(&body, &mut errs);
    let description = body.get("description").and_then(Value::as_str).map(str::to_string);
    if description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errs.push("/description", Value::Null, "at most 500 characters");
    }
    let secret = parse_secret(&body, &mut errs);
    let Some(secret) = secret.filter(|_| errs.is_empty()) else {
        audit_event(svc, &principal, "credential.create", "-", request_id, "rejected").await;
        return Err(Problem::validation(errs));
    };
    let id = credential_id();
    let sealed = secrets::seal(svc.keys.as_ref(), &principal.tenant, &id, &secret).await.map_err(Problem::internal)?;
    let doc = CredentialDoc { kind: secret.kind().to_string(), description, sealed };
    records::create_and_answer(svc, &principal, RecordKind::Credential, id, name, &doc, NOUN, "/v1/credentials", view, request_id).await
}

pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    records::list(svc, req, &principal, RecordKind::Credential, view).await
}

pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let r = records::load(svc, &principal, RecordKind::Credential, &path_id(req), NOUN).await?;
    Ok(json_response(StatusCode::OK, &view(&r)))
}

pub async fn delete(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    records::delete(svc, &principal, RecordKind::Credential, &path_id(req), request_id, NOUN).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_their_quoted_values() {
        assert_eq!(
            strip_values("invalid type: string \"hunter2\", expected u64"),
            "a value of the wrong type or out of range, expected u64"
        );
        assert_eq!(
            strip_values("invalid type: integer `12345678`, expected a string"),
            "a value of the wrong type or out of range, expected a string"
        );
        assert_eq!(strip_values("missing field `password`"), "missing field `password`");
    }
}
