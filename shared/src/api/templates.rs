//! `/v1/templates`: named, versioned export specs with declared parameters
//! ([`crate::model::template`]), and the resolver that turns an export body naming a template
//! into a plain export body ([`resolve_export_body`]).

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde_json::{Map, Value, json};

use super::exports::audit_event;
use super::{Code, Problem, Response, authorize, json_body, json_response, page_params, path_id, query, records};
use crate::model::spec::FORMAT_KINDS;
use crate::model::template::{self, TemplateDoc, TemplateInput, TemplateRef, TemplateVersion};
use crate::model::{FormatKind, Permission, Principal, ValidationErrors};
use crate::services::Services;
use crate::store::{Record, RecordKind, StoreError};

const NOUN: &str = "template";

/// The fields an export body that names a template may have.
const TEMPLATE_BODY_FIELDS: &str = "template, template_version, parameters, time_range";

/// The stored document of a template record.
fn doc(r: &Record) -> Result<TemplateDoc, Problem> {
    serde_json::from_value(r.doc.clone()).map_err(|e| Problem::internal(format!("stored template `{}` does not parse: {e}", r.id)))
}

/// What the API shows of one version of a template.
fn view(r: &Record, v: &TemplateVersion) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "version": v.version,
        "latest_version": r.version,
        "description": v.description,
        "parameters": v.parameters,
        "spec": v.spec,
        "format": v.format,
        "source": v.source,
        "created_at": r.created_at,
        "updated_at": v.created_at,
        "updated_by": v.created_by,
        "links": {"self": format!("/v1/templates/{}", r.id)},
    })
}

fn current_view(r: &Record) -> Value {
    match doc(r) {
        Ok(d) => view(r, &d.current),
        Err(_) => json!({"id": r.id, "name": r.name, "version": r.version}),
    }
}

/// A template of the tenant by id (`tpl_...`) or by name.
async fn find(svc: &Services, tenant: &str, id_or_name: &str) -> Result<Option<Record>, Problem> {
    let found = if template::is_template_id(id_or_name) {
        svc.store.get_record(RecordKind::Template, tenant, id_or_name).await
    } else {
        svc.store.get_record_by_name(RecordKind::Template, tenant, id_or_name).await
    };
    found.map_err(Problem::internal)
}

async fn load(svc: &Services, principal: &Principal, id_or_name: &str) -> Result<Record, Problem> {
    find(svc, &principal.tenant, id_or_name).await?.ok_or_else(|| Problem::new(Code::NotFound, format!("no template `{id_or_name}`")))
}

/// Parse and check a create or replace body: the input and what checking found.
fn parse(body: &Value) -> Result<(TemplateInput, template::TemplateSummary), ValidationErrors> {
    let input: TemplateInput = crate::model::validation::from_json(body)?;
    let mut errs = ValidationErrors::new();
    if input.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errs.push("/description", Value::Null, "at most 500 characters");
    }
    match template::check(&input.parameters, &input.spec) {
        Ok(summary) => errs.into_result().map(|()| (input, summary)),
        Err(e) => {
            errs.extend(e);
            Err(errs)
        }
    }
}

fn new_version(input: TemplateInput, summary: template::TemplateSummary, version: u64, principal: &Principal) -> TemplateVersion {
    TemplateVersion {
        version,
        description: input.description,
        parameters: input.parameters,
        spec: input.spec,
        format: summary.format,
        source: summary.source,
        created_at: Utc::now(),
        created_by: principal.key_id.clone(),
    }
}

pub async fn create(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let body = json_body(svc, req)?;
    let mut errs = ValidationErrors::new();
    let name = records::check_name(&body, &mut errs);
    if template::is_template_id(&name) {
        errs.push("/name", name.as_str(), "a name that is not in the form of a template id (`tpl_` and 32 hex digits)");
    }
    if body.get("version").is_some() {
        errs.push("/version", body["version"].clone(), "no version on create (a new template is version 1)");
    }
    let parsed = parse(&body);
    let (input, summary) = match parsed {
        Ok(p) if errs.is_empty() => p,
        other => {
            if let Err(e) = other {
                errs.extend(e);
            }
            audit_event(svc, &principal, "template.create", "-", request_id, "rejected").await;
            return Err(Problem::validation(errs));
        }
    };
    let id = template::template_id();
    let doc = TemplateDoc { current: new_version(input, summary, 1, &principal), history: Vec::new() };
    let record =
        records::new_record(RecordKind::Template, &principal, id.clone(), name, serde_json::to_value(&doc).map_err(Problem::internal)?);
    records::create(svc, &record, NOUN).await?;
    audit_event(svc, &principal, "template.create", &id, request_id, "success").await;
    records::created(&view(&record, &doc.current), format!("/v1/templates/{id}"))
}

/// Replace a template's spec, parameters and description: a new version, the old ones kept.
/// With `"version"` in the body, only if the template is still that version (409 otherwise).
pub async fn put(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let mut rec = load(svc, &principal, &path_id(req)).await?;
    let body = json_body(svc, req)?;
    let mut errs = ValidationErrors::new();
    if let Some(given) = body.get("name")
        && given.as_str() != Some(rec.name.as_str())
    {
        errs.push("/name", given.clone(), format!("the template's name `{}` (a name cannot change)", rec.name));
    }
    if let Some(v) = body.get("version")
        && !(v.is_u64() || v.is_null())
    {
        errs.push("/version", v.clone(), "the version a GET returned (an integer)");
    }
    let (input, summary) = match parse(&body) {
        Ok(p) if errs.is_empty() => p,
        other => {
            if let Err(e) = other {
                errs.extend(e);
            }
            audit_event(svc, &principal, "template.update", &rec.id, request_id, "rejected").await;
            return Err(Problem::validation(errs));
        }
    };
    let conflict = |current: u64| {
        Problem::new(Code::Conflict, format!("the template changed since it was read (it is at version {current}); GET it again"))
    };
    if let Some(expected) = input.version
        && expected != rec.version
    {
        return Err(conflict(rec.version));
    }
    let mut d = doc(&rec)?;
    let next = new_version(input, summary, rec.version + 1, &principal);
    // The outgoing version becomes a record of its own first: writing it again (a retry, or a
    // writer that then loses the race below) writes the same content.
    keep_version(svc, &rec, &d.current).await?;
    d.current = next;
    rec.doc = serde_json::to_value(&d).map_err(Problem::internal)?;
    rec.updated_at = Utc::now();
    let saved = match svc.store.put_record_if_version(&rec).await {
        Ok(r) => r,
        Err(StoreError::Precondition) => return Err(conflict(rec.version + 1)),
        Err(StoreError::NotFound) => return Err(Problem::new(Code::NotFound, format!("no template `{}`", rec.id))),
        Err(e) => return Err(Problem::internal(e)),
    };
    audit_event(svc, &principal, "template.update", &saved.id, request_id, "success").await;
    Ok(json_response(StatusCode::OK, &view(&saved, &d.current)))
}

pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let q = query(req, &["version"])?;
    let rec = load(svc, &principal, &path_id(req)).await?;
    let d = doc(&rec)?;
    let Some(asked) = q.get("version") else { return Ok(json_response(StatusCode::OK, &view(&rec, &d.current))) };
    let Some(n) = asked.parse::<u64>().ok().filter(|n| *n >= 1) else {
        return Err(super::invalid_query(ValidationErrors::single(
            "/query/version",
            asked.as_str(),
            format!("a version of this template, 1 to {}", rec.version),
        )));
    };
    let v = version_of(svc, &rec, &d, n)
        .await?
        .ok_or_else(|| Problem::new(Code::NotFound, format!("template `{}` has no version {n} (it has 1 to {})", rec.id, rec.version)))?;
    Ok(json_response(StatusCode::OK, &view(&rec, &v)))
}

/// The scope of a template's earlier versions.
fn versions_scope(rec: &Record) -> String {
    format!("{}~{}", rec.tenant, rec.id)
}

fn version_record_id(n: u64) -> String {
    format!("v{n:010}")
}

/// Keep `v` of the template `rec` as a record of its own.
async fn keep_version(svc: &Services, rec: &Record, v: &TemplateVersion) -> Result<(), Problem> {
    let id = version_record_id(v.version);
    let doc = serde_json::to_value(v).map_err(Problem::internal)?;
    let now = Utc::now();
    let r = Record {
        kind: RecordKind::TemplateVersion,
        tenant: versions_scope(rec),
        id: id.clone(),
        name: id,
        version: 1,
        created_at: now,
        updated_at: now,
        doc,
    };
    match svc.store.create_record(&r).await {
        Ok(()) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(e) => Err(Problem::internal(e)),
    }
}

/// Version `n` of a template: the current one, one kept in the record by earlier releases, or
/// a version record.
async fn version_of(svc: &Services, rec: &Record, d: &TemplateDoc, n: u64) -> Result<Option<TemplateVersion>, Problem> {
    if let Some(v) = d.version(n) {
        return Ok(Some(v.clone()));
    }
    if n >= rec.version {
        return Ok(None);
    }
    let Some(r) =
        svc.store.get_record(RecordKind::TemplateVersion, &versions_scope(rec), &version_record_id(n)).await.map_err(Problem::internal)?
    else {
        return Ok(None);
    };
    serde_json::from_value(r.doc)
        .map(Some)
        .map_err(|e| Problem::internal(format!("stored version {n} of `{}` does not parse: {e}", rec.id)))
}

pub async fn delete(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let rec = load(svc, &principal, &path_id(req)).await?;
    let resp = records::delete(svc, &principal, RecordKind::Template, &rec.id, request_id, NOUN).await?;
    // Its earlier versions go with it. Exports made from them keep their own copy of the spec.
    let scope = versions_scope(&rec);
    loop {
        let page = svc.store.list_records(RecordKind::TemplateVersion, &scope, 100, None).await.map_err(Problem::internal)?;
        if page.items.is_empty() {
            break;
        }
        for r in &page.items {
            svc.store.delete_record(RecordKind::TemplateVersion, &scope, &r.id).await.map_err(Problem::internal)?;
        }
    }
    Ok(resp)
}

/// The listing's filters.
struct ListFilter {
    format: Option<FormatKind>,
    source: Option<String>,
    name: Option<String>,
}

impl ListFilter {
    fn keeps(&self, r: &Record) -> bool {
        let Ok(d) = doc(r) else { return false };
        self.format.is_none_or(|f| d.current.format == f.as_str())
            && self.source.as_ref().is_none_or(|s| d.current.source == *s)
            && self.name.as_ref().is_none_or(|n| r.name.to_lowercase().contains(n.as_str()))
    }
}

/// `GET /v1/templates`: newest first; `format` (the output format), `source` (the source
/// type), `name` (a part of the name, any case), `limit`, `cursor`.
pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let q = query(req, &["format", "source", "name", "limit", "cursor"])?;
    let mut errs = ValidationErrors::new();
    let format = q.get("format").and_then(|s| {
        let parsed = FormatKind::parse(s);
        if parsed.is_none() {
            errs.push("/query/format", s.as_str(), format!("one of {FORMAT_KINDS}"));
        }
        parsed
    });
    let source = q.get("source").cloned();
    if let Some(s) = &source
        && !["inline", "dataset"].contains(&s.as_str())
    {
        errs.push("/query/source", s.as_str(), "one of inline, dataset");
    }
    let (limit, cursor) = page_params(&q, &mut errs);
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    let filter = ListFilter { format, source, name: q.get("name").map(|n| n.to_lowercase()) };
    // Read store pages of just the size still missing: every record read is either kept or
    // passed over, so the store's cursor after the last page read is exactly where the next
    // page of this listing begins.
    let mut items = Vec::new();
    let mut next = cursor.clone();
    loop {
        let page = svc.store.list_records(RecordKind::Template, &principal.tenant, limit - items.len(), next.as_deref()).await.map_err(
            |e| match e {
                StoreError::InvalidCursor => super::invalid_cursor(cursor.as_deref()),
                other => Problem::internal(other),
            },
        )?;
        items.extend(page.items.iter().filter(|r| filter.keeps(r)).map(current_view));
        next = page.next_cursor;
        if items.len() >= limit || next.is_none() {
            break;
        }
    }
    Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next})))
}

/// The plain export body for a body that names a template, and the template it came from;
/// any other body as it is. The body names the template by id or name in `template`, may pin
/// `template_version` (the newest otherwise) and gives `parameters`; a `time_range` beside them
/// (a schedule's window) replaces the template's. Errors point into that body: `/template`,
/// `/template_version`, `/parameters/<name>`.
pub async fn resolve_export_body(svc: &Services, tenant: &str, body: &Value) -> Result<(Value, Option<TemplateRef>), Problem> {
    let Some(obj) = body.as_object().filter(|o| o.contains_key("template")) else { return Ok((body.clone(), None)) };
    let mut errs = ValidationErrors::new();
    for k in obj.keys().filter(|k| !["template", "template_version", "parameters", "time_range"].contains(&k.as_str())) {
        errs.push(
            format!("/{}", crate::model::validation::pointer_token(k)),
            obj[k].clone(),
            format!("one of the fields {TEMPLATE_BODY_FIELDS} (the rest of the export is the template's spec)"),
        );
    }
    let reference = obj["template"].as_str().unwrap_or_default();
    if reference.is_empty() {
        errs.push("/template", obj["template"].clone(), "the id (`tpl_...`) or name of a template of this tenant");
    }
    let pinned = match obj.get("template_version") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|n| *n >= 1) {
            Some(n) => Some(n),
            None => {
                errs.push("/template_version", v.clone(), "a version of the template (an integer from 1)");
                None
            }
        },
    };
    let empty = Map::new();
    let parameters = match obj.get("parameters") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => {
            errs.push("/parameters", other.clone(), "an object of parameter names and values");
            &empty
        }
    };
    errs.into_result().map_err(Problem::validation)?;
    let Some(rec) = find(svc, tenant, reference).await? else {
        return Err(Problem::validation(ValidationErrors::single(
            "/template",
            reference,
            "the id (`tpl_...`) or name of a template of this tenant (POST /v1/templates)",
        )));
    };
    let d = doc(&rec)?;
    let version = match pinned {
        None => d.current.clone(),
        Some(n) => version_of(svc, &rec, &d, n).await?.ok_or_else(|| {
            Problem::validation(ValidationErrors::single(
                "/template_version",
                n,
                format!("a version of `{}`: 1 to {}", rec.name, rec.version),
            ))
        })?,
    };
    let (mut rendered, used) = template::render(&version, parameters).map_err(Problem::validation)?;
    // A time range given beside the template (a schedule's window) replaces the template's.
    if let (Some(tr), Some(spec)) = (obj.get("time_range"), rendered.as_object_mut()) {
        spec.insert("time_range".into(), tr.clone());
    }
    Ok((rendered, Some(TemplateRef { id: rec.id.clone(), name: rec.name.clone(), version: version.version, parameters: used })))
}
