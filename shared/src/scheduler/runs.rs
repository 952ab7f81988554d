//! A schedule's runs: starting one (its window, its export with the id the fire determines,
//! its record), following its export until it ends, and cancelling one that took too long.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::exports::start_export;
use crate::api::{Code, Problem};
use crate::audit::{self, AuditEntry};
use crate::blob::keys;
use crate::model::schedule::{
    STATE_SCOPE, ScheduleRef, ScheduleRun, ScheduleSpec, ScheduleState, Trigger, WindowRule, run_export_id, run_id, runs_scope, state_id,
};
use crate::model::{Export, ExportStatus, ids};
use crate::schedule::TimeWindow;
use crate::services::Services;
use crate::store::{Page, Record, RecordKind, StoreError, UpdateError, update_export, update_record};

/// Who the audit trail names for what the scheduler does.
pub const SCHEDULER_ACTOR: &str = "scheduler";

/// A run to start: which fire, when it was due, why.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    pub tenant: &'a str,
    pub schedule_id: &'a str,
    pub spec: &'a ScheduleSpec,
    /// The API key the schedule's exports are created by.
    pub actor: &'a str,
    pub fire_key: String,
    /// When the fire was due; the window is relative to it.
    pub at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Now, on the scheduler's clock.
    pub now: DateTime<Utc>,
    /// The high-water mark of the last successful run (`since_last_success`).
    pub watermark: Option<DateTime<Utc>>,
}

fn problem_text(p: &Problem) -> String {
    match &p.errors {
        Some(e) => format!("{}: {e}", p.code.as_str()),
        None => format!("{}: {}", p.code.as_str(), p.detail),
    }
}

/// The window of a run due at `at`.
pub fn run_window(spec: &ScheduleSpec, at: DateTime<Utc>, watermark: Option<DateTime<Utc>>) -> Option<TimeWindow> {
    let w = spec.window.as_ref()?;
    match &w.rule {
        WindowRule::Calendar(win) => win.resolve(at, spec.zone).ok(),
        WindowRule::SinceLastSuccess { initial } => Some(TimeWindow { start: watermark.unwrap_or(*initial), end: at }),
    }
}

/// Start a run: create its export (a fire's export id is fixed, so a second scheduler's create
/// of the same fire fails and it takes the first one's), then its record (named by the fire
/// key: one record per fire). Returns the run as stored.
pub async fn start_run(svc: &Services, req: RunRequest<'_>) -> Result<ScheduleRun, StoreError> {
    let window = run_window(req.spec, req.at, req.watermark);
    let mut run = new_run(&req, "pending");
    run.window = window;
    if window.is_some_and(|w| w.start >= w.end) {
        run.status = "skipped".into();
        run.finished_at = Some(req.now);
        run.error = Some("nothing to export: the window is empty (the last successful run reached this fire's time)".into());
    } else {
        let body = req.spec.export_body(window.as_ref());
        let export_id = run_export_id(req.tenant, &req.fire_key);
        let origin = ScheduleRef { id: req.schedule_id.to_string(), fire_key: req.fire_key.clone(), nominal_time: req.at };
        match start_export(svc, req.tenant, req.actor, &body, export_id.clone(), Some(origin), &ids::request_id()).await {
            Ok(e) => {
                run.export_id = Some(e.id);
                run.status = e.status.as_str().into();
            }
            Err(p) if p.code == Code::Conflict => {
                // Another scheduler fired this already.
                run.export_id = Some(export_id);
            }
            Err(p) => {
                run.status = "rejected".into();
                run.finished_at = Some(req.now);
                run.error = Some(problem_text(&p));
            }
        }
    }
    save_new_run(svc, req.tenant, &run).await
}

/// Record a run that was not started: an earlier run of the schedule was still going.
pub async fn skip_run(svc: &Services, req: RunRequest<'_>, why: &str) -> Result<ScheduleRun, StoreError> {
    let mut run = new_run(&req, "skipped");
    run.finished_at = Some(req.now);
    run.error = Some(why.to_string());
    save_new_run(svc, req.tenant, &run).await
}

/// The record of the run a request starts, in `status`, before anything happened to it.
fn new_run(req: &RunRequest<'_>, status: &str) -> ScheduleRun {
    ScheduleRun {
        id: run_id(&req.fire_key, req.at),
        schedule_id: req.schedule_id.to_string(),
        fire_key: req.fire_key.clone(),
        scheduled_for: req.at,
        trigger: req.trigger,
        export_id: None,
        status: status.into(),
        started_at: req.now,
        finished_at: None,
        window: None,
        rows: None,
        bytes: None,
        destinations: Vec::new(),
        error: None,
        watermark: None,
    }
}

async fn save_new_run(svc: &Services, tenant: &str, run: &ScheduleRun) -> Result<ScheduleRun, StoreError> {
    let scope = runs_scope(tenant, &run.schedule_id);
    let doc = serde_json::to_value(run).map_err(|e| StoreError::Backend(e.to_string()))?;
    let now = Utc::now();
    let record = Record {
        kind: RecordKind::ScheduleRun,
        tenant: scope.clone(),
        id: run.id.clone(),
        name: run.fire_key.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
        doc,
    };
    match svc.store.create_record(&record).await {
        Ok(()) => {
            let target = format!("{}/{}", run.schedule_id, run.id);
            let entry = AuditEntry {
                tenant,
                actor: SCHEDULER_ACTOR,
                action: "schedule.fire",
                target: &target,
                request_id: &ids::request_id(),
                outcome: if run.status == "rejected" { "rejected" } else { "success" },
            };
            if let Err(e) = audit::append(svc.store.as_ref(), entry).await {
                tracing::warn!(error = %e, "audit append failed");
            }
            tracing::info!(tenant, schedule_id = %run.schedule_id, fire_key = %run.fire_key, status = %run.status, "schedule fired");
            Ok(run.clone())
        }
        Err(StoreError::AlreadyExists) => {
            // The fire's record exists: this fire was dealt with.
            let existing = svc.store.get_record_by_name(RecordKind::ScheduleRun, &scope, &run.fire_key).await?;
            existing.map(|r| from_record(&r)).transpose()?.ok_or(StoreError::AlreadyExists)
        }
        Err(e) => Err(e),
    }
}

pub fn from_record(r: &Record) -> Result<ScheduleRun, StoreError> {
    serde_json::from_value(r.doc.clone()).map_err(|e| StoreError::Backend(format!("stored run does not parse: {e}")))
}

/// A page of a schedule's runs, newest first.
pub async fn list(
    svc: &Services,
    tenant: &str,
    schedule_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<ScheduleRun>, StoreError> {
    let page = svc.store.list_records(RecordKind::ScheduleRun, &runs_scope(tenant, schedule_id), limit, cursor).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for r in &page.items {
        items.push(refresh(svc, tenant, from_record(r)?).await?);
    }
    Ok(Page { items, next_cursor: page.next_cursor })
}

/// What a run shows of its export: status, and once it ended, rows, bytes, where the files
/// went, why it failed, and (when it completed) its watermark.
fn apply_export(run: &mut ScheduleRun, e: &Export) {
    run.status = e.status.as_str().into();
    run.rows = Some(e.result.as_ref().map_or(e.progress.rows, |r| r.rows));
    if !e.status.is_terminal() {
        return;
    }
    run.finished_at = e.finished_at.or(Some(e.updated_at));
    if let Some(r) = &e.result {
        run.bytes = Some(r.bytes);
        run.destinations = r
            .deliveries
            .iter()
            .map(|d| {
                d.location
                    .clone()
                    .unwrap_or_else(|| format!("{}: {}", d.kind, d.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")))
            })
            .collect();
        let failed: Vec<String> =
            r.deliveries.iter().filter_map(|d| d.error.as_ref().map(|m| format!("destination {} ({}): {m}", d.index, d.kind))).collect();
        if !failed.is_empty() {
            run.error = Some(failed.join("; "));
        }
    }
    if let Some(err) = &e.error {
        run.error = Some(format!("{}: {}", err.code, err.message));
    }
    if e.status == ExportStatus::Completed {
        run.watermark = run.window.map(|w| w.end);
    }
}

/// Bring an active run up to date with its export, storing the change.
pub async fn refresh(svc: &Services, tenant: &str, mut run: ScheduleRun) -> Result<ScheduleRun, StoreError> {
    if !run.is_active() {
        return Ok(run);
    }
    let Some(export_id) = run.export_id.clone() else { return Ok(run) };
    let before = run.clone();
    match svc.store.get_export(tenant, &export_id).await? {
        Some(e) => apply_export(&mut run, &e),
        None => {
            run.status = "cancelled".into();
            run.error = Some(format!("the export {export_id} was deleted"));
        }
    }
    if run != before {
        save(svc, tenant, &run).await?;
    }
    Ok(run)
}

/// Cancel a run's export because it ran longer than `timeout_secs`.
pub async fn time_out(
    svc: &Services,
    tenant: &str,
    mut run: ScheduleRun,
    timeout_secs: u64,
    now: DateTime<Utc>,
) -> Result<ScheduleRun, StoreError> {
    if let Some(id) = run.export_id.clone() {
        let res = update_export(svc.store.as_ref(), tenant, &id, |e| {
            if !e.status.is_terminal() {
                e.status = ExportStatus::Cancelled;
                e.finished_at = Some(Utc::now());
            }
            Ok::<(), ()>(())
        })
        .await;
        let export = match res {
            Ok(e) => Some(e),
            Err(UpdateError::NotFound) => None,
            Err(UpdateError::Store(e)) => return Err(e),
            Err(UpdateError::Refused(())) => None,
        };
        if let Some(e) = &export {
            svc.orchestrator.stop(tenant, &id, e.run).await.map_err(|e| StoreError::Backend(e.to_string()))?;
            svc.blobs.delete_prefix(&keys::staging(tenant, &id)).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        }
    }
    run.status = "timed_out".into();
    run.finished_at = Some(now);
    run.error = Some(format!("TIMEOUT: the run took longer than timeout_secs = {timeout_secs} and was cancelled"));
    save(svc, tenant, &run).await?;
    Ok(run)
}

async fn save(svc: &Services, tenant: &str, run: &ScheduleRun) -> Result<(), StoreError> {
    let doc = serde_json::to_value(run).map_err(|e| StoreError::Backend(e.to_string()))?;
    match update_record(svc.store.as_ref(), RecordKind::ScheduleRun, &runs_scope(tenant, &run.schedule_id), &run.id, |r| {
        r.doc = doc.clone();
        Ok::<(), ()>(())
    })
    .await
    {
        Ok(_) | Err(UpdateError::NotFound) | Err(UpdateError::Refused(())) => Ok(()),
        Err(UpdateError::Store(e)) => Err(e),
    }
}

/// A schedule's state record, made when the schedule is created.
pub fn new_state(tenant: &str, schedule_id: &str) -> Record {
    let state = ScheduleState {
        tenant: tenant.to_string(),
        schedule_id: schedule_id.to_string(),
        cursor: None,
        reset: false,
        queued: None,
        watermark: None,
    };
    let id = state_id(tenant, schedule_id);
    let now = Utc::now();
    Record {
        kind: RecordKind::ScheduleState,
        tenant: STATE_SCOPE.into(),
        id: id.clone(),
        name: id,
        version: 1,
        created_at: now,
        updated_at: now,
        doc: serde_json::to_value(state).unwrap_or(Value::Null),
    }
}

pub async fn load_state(svc: &Services, tenant: &str, schedule_id: &str) -> Result<Option<ScheduleState>, StoreError> {
    let rec = svc.store.get_record(RecordKind::ScheduleState, STATE_SCOPE, &state_id(tenant, schedule_id)).await?;
    rec.map(|r| serde_json::from_value(r.doc).map_err(|e| StoreError::Backend(format!("stored schedule state does not parse: {e}"))))
        .transpose()
}

/// Change a schedule's state (a conditional write, retried on a lost race).
pub async fn update_state(
    svc: &Services,
    tenant: &str,
    schedule_id: &str,
    mut change: impl FnMut(&mut ScheduleState),
) -> Result<(), StoreError> {
    let res = update_record(svc.store.as_ref(), RecordKind::ScheduleState, STATE_SCOPE, &state_id(tenant, schedule_id), |r| {
        let mut st: ScheduleState = serde_json::from_value(r.doc.clone()).map_err(|e| e.to_string())?;
        change(&mut st);
        r.doc = serde_json::to_value(&st).map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })
    .await;
    match res {
        Ok(_) | Err(UpdateError::NotFound) => Ok(()),
        Err(UpdateError::Refused(m)) => Err(StoreError::Backend(format!("stored schedule state does not parse: {m}"))),
        Err(UpdateError::Store(e)) => Err(e),
    }
}
