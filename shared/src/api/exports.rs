//! POST/GET/DELETE /v1/exports: create (idempotent), list, get, delete.

use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Code, Problem, Response, authorize, json_response, path_id, query};
use crate::audit::{self, AuditEntry};
use crate::blob::keys;
use crate::format::xml;
use crate::model::export::EXPORT_STATUSES;
use crate::model::schedule::ScheduleRef;
use crate::model::spec::FORMAT_KINDS;
use crate::model::{Export, ExportSpec, ExportStatus, FormatKind, Permission, Principal, ValidationErrors, ids};
use crate::services::Services;
use crate::source::{self, SourceContext, SourceError};
use crate::store::{ExportQuery, IdempotencyBegin, RecordKind, StoreError, StoredResponse, UpdateError, update_export};
use crate::transform::RowPipeline;

/// An export of the caller's tenant, or 404 (another tenant's export is not found, never
/// forbidden: its existence is not disclosed).
pub async fn load(svc: &Services, principal: &Principal, id: &str) -> Result<Export, Problem> {
    let not_found = || Problem::new(Code::ExportNotFound, format!("no export `{id}`"));
    if !ids::is_export_id(id) {
        return Err(not_found());
    }
    svc.store.get_export(&principal.tenant, id).await.map_err(Problem::internal)?.ok_or_else(not_found)
}

pub(crate) async fn audit_event(svc: &Services, p: &Principal, action: &str, target: &str, request_id: &str, outcome: &str) {
    let entry = AuditEntry { tenant: &p.tenant, actor: &p.key_id, action, target, request_id, outcome };
    if let Err(e) = audit::append(svc.store.as_ref(), entry).await {
        tracing::warn!(error = %e, action, "audit append failed");
    }
}

/// Parse and check a spec, against the source's schema too.
pub(crate) async fn check_spec(svc: &Services, tenant: &str, body: &Value) -> Result<ExportSpec, Problem> {
    let spec = ExportSpec::from_json(body).map_err(Problem::validation)?;
    spec.validate().map_err(Problem::validation)?;
    let ctx = SourceContext { blobs: svc.blobs.as_ref(), dataset_roots: &svc.settings.dataset_roots, tenant };
    let schema = match source::schema(ctx, &spec).await {
        Ok(s) => s,
        Err(SourceError::Invalid(e)) => return Err(Problem::validation(e)),
        Err(SourceError::Data(m)) => {
            return Err(Problem::validation(ValidationErrors::single("/source", Value::Null, format!("a readable dataset: {m}"))));
        }
        Err(SourceError::Storage(m)) => {
            return Err(Problem::new(Code::ServiceUnavailable, format!("the dataset could not be read now: {m}")));
        }
    };
    let mut errs = ValidationErrors::new();
    let allow = crate::deliver::dispatch::allow_list(svc.store.as_ref(), tenant)
        .await
        .map_err(|e| Problem::new(Code::ServiceUnavailable, format!("the tenant's settings could not be read now: {e}")))?;
    spec.check_outbound(&allow, &mut errs);
    check_encryption(svc, tenant, &spec, &mut errs).await?;
    check_transfer_connectors(svc, &spec, &mut errs);
    match RowPipeline::build(&schema, &spec) {
        Ok(pipeline) => check_xml(ctx, &spec, &pipeline.output_schema, &mut errs).await?,
        Err(e) => errs.extend(e),
    }
    if spec.source.kind == crate::model::SourceKind::Inline
        && let Err(e) = source::inline::check(&spec.source, &schema)
    {
        errs.extend(e);
    }
    errs.into_result().map_err(Problem::validation)?;
    Ok(spec)
}

/// A Transfer Family connector sends files from S3: on a service that keeps them in a local
/// folder, an SFTP destination naming one is refused now rather than failing at delivery.
fn check_transfer_connectors(svc: &Services, spec: &ExportSpec, errs: &mut ValidationErrors) {
    if svc.blobs.s3_bucket().is_some() {
        return;
    }
    for (i, d) in spec.destinations.iter().enumerate() {
        if let crate::model::destination::Destination::Sftp(c) = &d.target
            && let Some(id) = &c.transfer_connector
        {
            errs.push(
                format!("/destinations/{i}/transfer_connector"),
                id.as_str(),
                "no connector on this service: a Transfer Family connector sends files from S3 (the AWS deployment), and this \
                 service keeps them in a local folder; leave transfer_connector out to connect directly",
            );
        }
    }
}

/// The recipient keys or the password an export's encryption names: registered for this
/// tenant, of the right kind, and usable now (an OpenPGP key unexpired and able to encrypt).
async fn check_encryption(svc: &Services, tenant: &str, spec: &ExportSpec, errs: &mut ValidationErrors) -> Result<(), Problem> {
    use crate::model::packaging::EncryptionSpec;
    use crate::model::recipient_key::RecipientKeyKind;
    use crate::package::recipients::{self, LoadError};
    let (kind, ids) = match &spec.encryption {
        None => return Ok(()),
        Some(EncryptionSpec::OpenPgp { recipients, .. }) => (RecipientKeyKind::OpenPgp, recipients),
        Some(EncryptionSpec::Age { recipients, .. }) => (RecipientKeyKind::Age, recipients),
        Some(EncryptionSpec::ZipAes { password_credential }) => {
            let rec = svc.store.get_record(RecordKind::Credential, tenant, password_credential).await.map_err(Problem::internal)?;
            let kind = rec.as_ref().and_then(|r| r.doc.get("type").and_then(Value::as_str).map(str::to_string));
            if kind.as_deref() != Some("password") {
                let why = match kind {
                    None => "a stored credential of this tenant (POST /v1/credentials) of type password".to_string(),
                    Some(k) => format!("a credential of type password, not {k}"),
                };
                errs.push("/encryption/password_credential", password_credential.as_str(), why);
            }
            return Ok(());
        }
    };
    if let Err(failed) = recipients::load(svc.store.as_ref(), tenant, kind, ids).await {
        for (i, e) in failed {
            if let LoadError::Store(m) = &e {
                return Err(Problem::new(Code::ServiceUnavailable, format!("the recipient keys could not be read now: {m}")));
            }
            let why = match e {
                LoadError::NotFound(_) => {
                    format!("the id of an {} key registered for this tenant (POST /v1/recipient-keys)", kind.as_str())
                }
                other => format!("a usable {} recipient key: {other}", kind.as_str()),
            };
            errs.push(format!("/encryption/recipients/{i}"), ids[i].as_str(), why);
        }
    }
    Ok(())
}

/// An XML export's schema: it must be readable, and the mapping must fit it and the columns.
async fn check_xml(
    ctx: SourceContext<'_>,
    spec: &ExportSpec,
    columns: &arrow::datatypes::Schema,
    errs: &mut ValidationErrors,
) -> Result<(), Problem> {
    let o = &spec.format.0;
    let Some(src) = &o.xsd else { return Ok(()) };
    let bundle = match xml::load_bundle(ctx, src).await {
        Ok(b) => b,
        Err(xml::BundleError::Invalid(e)) => {
            errs.extend(e);
            return Ok(());
        }
        Err(xml::BundleError::Storage(m)) => {
            return Err(Problem::new(Code::ServiceUnavailable, format!("the schema could not be read now: {m}")));
        }
    };
    if o.xml_mapping.is_some() {
        let sort: Vec<String> = spec.sort.iter().map(|k| k.column.clone()).collect();
        if let Err(e) = xml::prepare(o, bundle, columns, &sort) {
            errs.extend(e);
        }
    } else if let Err(e) = xml::xsd::SchemaSet::load(&bundle) {
        errs.push("/format/xsd", Value::Null, format!("an XML Schema this service reads: {e}"));
    }
    Ok(())
}

/// The idempotency key header: 1 to 255 visible ASCII characters (quotes, as the IETF draft
/// writes keys, are taken off).
fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("idempotency-key") else { return Ok(None) };
    let s = v.to_str().unwrap_or("").trim().trim_matches('"');
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(Code::BadRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(Some(s.to_string()))
}

fn stored_to_response(s: &StoredResponse) -> Response {
    let mut b = http::Response::builder()
        .status(s.status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("idempotent-replayed", "true");
    if let Some(l) = &s.location {
        b = b.header(http::header::LOCATION, l);
    }
    b.body(Body::Text(s.body.clone())).expect("valid response parts")
}

pub async fn create(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Generate).await?;
    let body = super::json_body(svc, req)?;
    let key = idempotency_key(req)?;
    if let Some(key) = &key {
        // The hash covers the parsed body, so formatting differences are the same request.
        let hash = hex::encode(Sha256::digest(body.to_string().as_bytes()));
        let begin = svc
            .store
            .idempotency_begin(&principal.tenant, key, &hash, svc.settings.idempotency_ttl_secs, svc.settings.idempotency_stale_secs)
            .await
            .map_err(Problem::internal)?;
        match begin {
            IdempotencyBegin::Started => {}
            IdempotencyBegin::InFlight => {
                return Err(Problem::new(Code::Conflict, "a request with this Idempotency-Key is still being processed; retry later")
                    .with_header("retry-after", "1"));
            }
            IdempotencyBegin::Mismatch => {
                return Err(Problem::new(Code::IdempotencyKeyReused, "this Idempotency-Key was used with a different request body"));
            }
            IdempotencyBegin::Done(stored) => return Ok(stored_to_response(&stored)),
        }
    }
    let outcome = create_inner(svc, &principal, &body, request_id).await;
    if let Some(key) = &key {
        let stored = match &outcome {
            Ok((resp, location)) => Some(StoredResponse { status: 202, body: resp.to_string(), location: Some(location.clone()) }),
            // Validation failures are answered the same way each time: remember them too.
            Err(p) if p.code.status().is_client_error() => Some(StoredResponse {
                status: p.code.status().as_u16(),
                body: p.to_json(req.uri().path(), request_id).to_string(),
                location: None,
            }),
            Err(_) => None,
        };
        match stored {
            Some(s) => svc.store.idempotency_complete(&principal.tenant, key, &s).await.map_err(Problem::internal)?,
            None => svc.store.idempotency_abandon(&principal.tenant, key).await.map_err(Problem::internal)?,
        }
    }
    let (body, location) = outcome?;
    let mut resp = json_response(StatusCode::ACCEPTED, &body);
    resp.headers_mut().insert(http::header::LOCATION, http::HeaderValue::from_str(&location).map_err(Problem::internal)?);
    Ok(resp)
}

async fn create_inner(svc: &Services, principal: &Principal, body: &Value, request_id: &str) -> Result<(Value, String), Problem> {
    let export = start_export(svc, &principal.tenant, &principal.key_id, body, ids::export_id(), None, request_id).await?;
    let location = format!("/v1/exports/{}", export.id);
    Ok((export.to_api_json(), location))
}

/// Check an export request (the body of `POST /v1/exports`) and start it as export `id` of
/// `tenant`, created by `actor`: what the route and the scheduler both do. A second start
/// with the same id is a 409 `CONFLICT` and changes nothing.
pub async fn start_export(
    svc: &Services,
    tenant: &str,
    actor: &str,
    body: &Value,
    id: String,
    schedule: Option<ScheduleRef>,
    request_id: &str,
) -> Result<Export, Problem> {
    let audit = |target: String, outcome: &'static str| async move {
        let entry = AuditEntry { tenant, actor, action: "export.create", target: &target, request_id, outcome };
        if let Err(e) = audit::append(svc.store.as_ref(), entry).await {
            tracing::warn!(error = %e, "audit append failed");
        }
    };
    // A body naming a template becomes the template's spec with its parameters first.
    let checked = match super::templates::resolve_export_body(svc, tenant, body).await {
        Ok((body, template)) => check_spec(svc, tenant, &body).await.map(|spec| (spec, template)),
        Err(p) => Err(p),
    };
    let (spec, template) = match checked {
        Ok(s) => s,
        Err(p) => {
            audit("-".into(), "rejected").await;
            return Err(p);
        }
    };
    let mut export = Export::new(id, tenant.to_string(), actor.to_string(), spec, Utc::now());
    export.template = template;
    export.schedule = schedule;
    match svc.store.create_export(&export).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(Problem::new(Code::Conflict, format!("the export `{}` exists already", export.id))),
        Err(e) => return Err(Problem::internal(e)),
    }
    audit(export.id.clone(), "success").await;
    svc.orchestrator.start(&export.tenant, &export.id, export.run).await.map_err(Problem::internal)?;
    tracing::info!(export_id = %export.id, tenant = %export.tenant, "export created");
    Ok(export)
}

fn parse_time(q: &std::collections::HashMap<String, String>, name: &str, errs: &mut ValidationErrors) -> Option<DateTime<Utc>> {
    let v = q.get(name)?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errs.push(format!("/query/{name}"), v.as_str(), "an RFC 3339 timestamp with offset, e.g. 2026-10-01T00:00:00Z");
            None
        }
    }
}

pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let q = query(req, &["status", "format", "created_after", "created_before", "limit", "cursor"])?;
    let mut errs = ValidationErrors::new();
    let status = q.get("status").and_then(|s| {
        let parsed = ExportStatus::parse(s);
        if parsed.is_none() {
            errs.push("/query/status", s.as_str(), format!("one of {EXPORT_STATUSES}"));
        }
        parsed
    });
    let format = q.get("format").and_then(|s| {
        let parsed = FormatKind::parse(s);
        if parsed.is_none() {
            errs.push("/query/format", s.as_str(), format!("one of {FORMAT_KINDS}"));
        }
        parsed
    });
    let created_after = parse_time(&q, "created_after", &mut errs);
    let created_before = parse_time(&q, "created_before", &mut errs);
    let (limit, cursor) = super::page_params(&q, &mut errs);
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    let page = svc
        .store
        .list_exports(&principal.tenant, &ExportQuery { status, format, created_after, created_before, limit, cursor })
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => super::invalid_cursor(q.get("cursor").map(String::as_str)),
            other => Problem::internal(other),
        })?;
    let items: Vec<Value> = page.items.iter().map(Export::to_api_json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "items": items, "next_cursor": page.next_cursor })))
}

/// The longest `wait_seconds` of `GET /v1/exports/{id}`: well inside API Gateway's 29 s.
pub const MAX_WAIT_SECONDS: u64 = 20;

/// How often a wait looks at a store that does not signal its writes.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET /v1/exports/{id}`; with `?wait_seconds=N` the answer waits until the export is no
/// longer pending or running (finished, or paused) or N seconds have passed, whichever comes
/// first: a client learns of the end at once, without polling.
pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let q = query(req, &["wait_seconds"])?;
    let wait = match q.get("wait_seconds") {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n <= MAX_WAIT_SECONDS => n,
            _ => {
                let allowed = format!("an integer from 0 to {MAX_WAIT_SECONDS}");
                let mut p = Problem::new(Code::InvalidParameter, format!("wait_seconds `{s}`: {allowed}"));
                let mut errs = ValidationErrors::new();
                errs.push("/query/wait_seconds", s.as_str(), allowed);
                p.errors = Some(errs);
                return Err(p);
            }
        },
    };
    let id = super::path_id(req);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let signal = svc.store.write_signal();
    loop {
        let armed = crate::store::Armed::new(signal.as_deref());
        let export = load(svc, &principal, &id).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !ExportStatus::ACTIVE.contains(&export.status) || left.is_zero() {
            return Ok(json_response(StatusCode::OK, &export.to_api_json()));
        }
        armed.wait(left.min(WAIT_POLL)).await;
    }
}

pub async fn delete(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Delete).await?;
    let id = path_id(req);
    let export = load(svc, &principal, &id).await?;
    if !export.status.is_terminal() {
        // Cancel first (a conditional write), so no stage starts new work; then wait for the
        // run to stop writing before its files are removed.
        let res = update_export(svc.store.as_ref(), &principal.tenant, &id, |e| {
            if !e.status.is_terminal() {
                e.status = ExportStatus::Cancelled;
                e.finished_at = Some(Utc::now());
            }
            Ok::<(), ()>(())
        })
        .await;
        match res {
            Ok(_) | Err(UpdateError::NotFound) => {}
            Err(e) => return Err(Problem::internal(format!("{e}"))),
        }
        svc.orchestrator.stop(&principal.tenant, &id, export.run).await.map_err(Problem::internal)?;
    }
    svc.blobs.delete_prefix(&keys::staging(&principal.tenant, &id)).await.map_err(Problem::internal)?;
    svc.blobs.delete_prefix(&keys::results(&principal.tenant, &id)).await.map_err(Problem::internal)?;
    svc.store.delete_export(&principal.tenant, &id).await.map_err(Problem::internal)?;
    audit_event(svc, &principal, "export.delete", &id, request_id, "success").await;
    Ok(http::Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).expect("valid response parts"))
}
