//! `/v1/schedules`: an export request that runs on a cron expression in a time zone. Create
//! and get show the next five fire times (in the zone and in UTC) and what is surprising about
//! the expression (days some months lack, daylight-saving changes); `pause`, `resume`, `run`
//! (now, out of band) steer it; `runs` lists what each fire did.

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde_json::{Value, json};

use super::exports::{audit_event, check_spec};
use super::{Code, Problem, Response, authorize, json_body, json_response, page_params, path_id, query, records};
use crate::model::schedule::{ScheduleSpec, Trigger, schedule_id};
use crate::model::{Permission, Principal, ValidationErrors};
use crate::scheduler::runs::{self, RunRequest};
use crate::scheduler::{load_spec, next_runs};
use crate::services::Services;
use crate::store::{Record, RecordKind, StoreError, UpdateError, update_record};

const NOUN: &str = "schedule";

/// A schedule as the API shows it; with `next_runs` and `warnings` when `detail`.
fn view(r: &Record, detail: bool) -> Value {
    let mut v = json!({"id": r.id, "name": r.name});
    if let Some(doc) = r.doc.as_object() {
        for (k, x) in doc.iter().filter(|(k, _)| k.as_str() != "created_by") {
            v[k] = x.clone();
        }
    }
    v["created_at"] = json!(r.created_at);
    v["updated_at"] = json!(r.updated_at);
    if detail && let Ok((spec, _)) = load_spec(r) {
        let now = Utc::now();
        v["next_runs"] = Value::Array(if spec.paused { Vec::new() } else { next_runs(&spec, now, 5) });
        v["warnings"] = json!(crate::schedule::warnings(&spec.cron, spec.zone, now));
    }
    v
}

fn list_view(r: &Record) -> Value {
    view(r, false)
}

/// Read and check a schedule request, its export body included (through the export route's
/// own checks, a template resolved, with the window of the next fire applied, without creating
/// anything).
async fn check(svc: &Services, principal: &Principal, body: &Value) -> Result<(String, ScheduleSpec), Problem> {
    let mut errs = ValidationErrors::new();
    let name = records::check_name(body, &mut errs);
    let spec = match ScheduleSpec::from_json(body) {
        Ok(s) => Some(s),
        Err(e) => {
            errs.extend(e);
            None
        }
    };
    let Some(spec) = spec.filter(|_| errs.is_empty()) else { return Err(Problem::validation(errs)) };
    let at = crate::schedule::next_fires(&spec.cron, spec.zone, Utc::now(), 1).first().map_or_else(Utc::now, |f| f.at);
    let sample = runs::run_window(&spec, at, None);
    // A body naming a template is checked as the template's spec with its parameters, as a run
    // will send it.
    let checked = match super::templates::resolve_export_body(svc, &principal.tenant, &spec.export_body(sample.as_ref())).await {
        Ok((body, _)) => check_spec(svc, &principal.tenant, &body).await.map(|_| ()),
        Err(p) => Err(p),
    };
    if let Err(mut p) = checked {
        if let Some(e) = p.errors.as_mut() {
            for fe in &mut e.0 {
                fe.pointer = format!("/export{}", fe.pointer);
            }
            p.detail = format!("{} field(s) are not valid: {e}", e.0.len());
        }
        return Err(p);
    }
    Ok((name, spec))
}

fn doc_of(spec: &ScheduleSpec, created_by: &str) -> Value {
    let mut doc = spec.to_doc();
    doc["created_by"] = created_by.into();
    doc
}

pub async fn create(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Schedule).await?;
    let body = json_body(svc, req)?;
    let (name, spec) = match check(svc, &principal, &body).await {
        Ok(x) => x,
        Err(p) => {
            audit_event(svc, &principal, "schedule.create", "-", request_id, "rejected").await;
            return Err(p);
        }
    };
    let id = schedule_id();
    let record = records::new_record(RecordKind::Schedule, &principal, id.clone(), name, doc_of(&spec, &principal.key_id));
    records::create(svc, &record, NOUN).await?;
    let set_up = match svc.store.create_record(&runs::new_state(&principal.tenant, &id)).await {
        Ok(()) | Err(StoreError::AlreadyExists) => svc.triggers.put(&principal.tenant, &id, &spec).await.map_err(|e| {
            Problem::new(Code::ServiceUnavailable, format!("the scheduling service did not take the schedule, so it was not created: {e}"))
        }),
        Err(e) => Err(Problem::internal(e)),
    };
    if let Err(p) = set_up {
        let state = crate::model::schedule::state_id(&principal.tenant, &id);
        let _ = svc.store.delete_record(RecordKind::ScheduleState, crate::model::schedule::STATE_SCOPE, &state).await;
        let _ = svc.store.delete_record(RecordKind::Schedule, &principal.tenant, &id).await;
        audit_event(svc, &principal, "schedule.create", &id, request_id, "failure").await;
        return Err(p);
    }
    audit_event(svc, &principal, "schedule.create", &id, request_id, "success").await;
    records::created(&view(&record, true), format!("/v1/schedules/{id}"))
}

pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    records::list(svc, req, &principal, RecordKind::Schedule, list_view).await
}

pub async fn get(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let r = records::load(svc, &principal, RecordKind::Schedule, &path_id(req), NOUN).await?;
    Ok(json_response(StatusCode::OK, &view(&r, true)))
}

/// Change a schedule's document with `change`, as one conditional write.
async fn update(
    svc: &Services,
    principal: &Principal,
    id: &str,
    change: impl FnMut(&mut Record) -> Result<(), Problem>,
) -> Result<Record, Problem> {
    match update_record(svc.store.as_ref(), RecordKind::Schedule, &principal.tenant, id, change).await {
        Ok(r) => Ok(r),
        Err(UpdateError::NotFound) => Err(Problem::new(Code::NotFound, format!("no {NOUN} `{id}`"))),
        Err(UpdateError::Refused(p)) => Err(p),
        Err(UpdateError::Store(e)) => Err(Problem::internal(e)),
    }
}

pub async fn put(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Schedule).await?;
    let id = path_id(req);
    let existing = records::load(svc, &principal, RecordKind::Schedule, &id, NOUN).await?;
    let mut body = json_body(svc, req)?;
    if let Some(obj) = body.as_object_mut() {
        obj.entry("name").or_insert_with(|| existing.name.clone().into());
    }
    let (name, spec) = match check(svc, &principal, &body).await {
        Ok(x) => x,
        Err(p) => {
            audit_event(svc, &principal, "schedule.update", &id, request_id, "rejected").await;
            return Err(p);
        }
    };
    if name != existing.name {
        let errs = ValidationErrors::single("/name", name, format!("the schedule's name, `{}` (a name cannot change)", existing.name));
        return Err(Problem::validation(errs));
    }
    let doc = doc_of(&spec, &principal.key_id);
    let saved = update(svc, &principal, &id, |r| {
        r.doc = doc.clone();
        Ok(())
    })
    .await?;
    sync_triggers(svc, &principal, &saved, "schedule.update", request_id).await?;
    audit_event(svc, &principal, "schedule.update", &id, request_id, "success").await;
    Ok(json_response(StatusCode::OK, &view(&saved, true)))
}

pub async fn delete(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Schedule).await?;
    let id = path_id(req);
    let resp = records::delete(svc, &principal, RecordKind::Schedule, &id, request_id, NOUN).await?;
    let state = crate::model::schedule::state_id(&principal.tenant, &id);
    svc.store.delete_record(RecordKind::ScheduleState, crate::model::schedule::STATE_SCOPE, &state).await.map_err(Problem::internal)?;
    // The schedule is gone whatever happens here: a trigger left behind finds no schedule when
    // it fires and removes itself.
    if let Err(e) = svc.triggers.remove(&principal.tenant, &id).await {
        tracing::warn!(schedule_id = %id, error = %e, "removing the schedule's triggers failed");
    }
    Ok(resp)
}

/// Bring the schedule's triggers in line with its saved record. When the scheduling service
/// does not take it, the change stays saved and the answer says to send it again (every
/// change here can be repeated).
async fn sync_triggers(svc: &Services, principal: &Principal, saved: &Record, action: &str, request_id: &str) -> Result<(), Problem> {
    let (spec, _) = load_spec(saved).map_err(Problem::internal)?;
    if let Err(e) = svc.triggers.put(&principal.tenant, &saved.id, &spec).await {
        audit_event(svc, principal, action, &saved.id, request_id, "failure").await;
        let detail = format!("the change is saved, but the scheduling service did not take it: {e}; send the same request again");
        return Err(Problem::new(Code::ServiceUnavailable, detail));
    }
    Ok(())
}

/// `pause` or `resume`. Pausing leaves a run in progress to finish; resuming starts from the
/// time of resuming (the paused time's fires never run).
pub async fn set_paused(svc: &Services, req: &Request, request_id: &str, paused: bool) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Schedule).await?;
    let id = path_id(req);
    let action = if paused { "schedule.pause" } else { "schedule.resume" };
    let saved = update(svc, &principal, &id, |r| {
        r.doc["paused"] = paused.into();
        Ok(())
    })
    .await?;
    if !paused {
        runs::update_state(svc, &principal.tenant, &id, |st| st.reset = true).await.map_err(Problem::internal)?;
    }
    sync_triggers(svc, &principal, &saved, action, request_id).await?;
    audit_event(svc, &principal, action, &id, request_id, "success").await;
    Ok(json_response(StatusCode::OK, &view(&saved, true)))
}

/// Run the schedule now, out of band: a run of its own (whatever the overlap policy and even
/// when paused), with the window of a fire at this instant.
pub async fn run_now(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Schedule).await?;
    let id = path_id(req);
    let rec = records::load(svc, &principal, RecordKind::Schedule, &id, NOUN).await?;
    let (spec, actor) = load_spec(&rec).map_err(Problem::internal)?;
    let state = runs::load_state(svc, &principal.tenant, &id).await.map_err(Problem::internal)?;
    let now = Utc::now();
    let request = RunRequest {
        tenant: &principal.tenant,
        schedule_id: &id,
        spec: &spec,
        actor: &actor,
        fire_key: format!("{id}/manual/{}", uuid::Uuid::now_v7().simple()),
        at: now,
        trigger: Trigger::Manual,
        now,
        watermark: state.and_then(|s| s.watermark),
    };
    let run = runs::start_run(svc, request).await.map_err(Problem::internal)?;
    let outcome = if run.status == "rejected" { "rejected" } else { "success" };
    audit_event(svc, &principal, "schedule.run", &id, request_id, outcome).await;
    Ok(json_response(StatusCode::ACCEPTED, &serde_json::to_value(&run).map_err(Problem::internal)?))
}

pub async fn list_runs(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::View).await?;
    let id = path_id(req);
    records::load(svc, &principal, RecordKind::Schedule, &id, NOUN).await?;
    let q = query(req, &["limit", "cursor"])?;
    let mut errs = ValidationErrors::new();
    let (limit, cursor) = page_params(&q, &mut errs);
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    let page = runs::list(svc, &principal.tenant, &id, limit, cursor.as_deref()).await.map_err(|e| match e {
        StoreError::InvalidCursor => super::invalid_cursor(cursor.as_deref()),
        other => Problem::internal(other),
    })?;
    Ok(json_response(StatusCode::OK, &json!({"items": page.items, "next_cursor": page.next_cursor})))
}
