//! The in-process scheduler of `egress serve`: on each tick, for every schedule, it follows
//! the runs still going (cancelling one past its timeout), works out which fires came due
//! since the last tick, and starts at most one run.
//!
//! - Everything it knows is in the store: per schedule a state record (the instant up to
//!   which fires are dealt with, a queued fire, the incremental watermark) and one record per
//!   run. A restarted scheduler carries on where the last one stopped.
//! - A fire's export id derives from tenant, schedule and fire ([`run_export_id`]), and the
//!   export store's create is conditional, so two schedulers on one store make one export per
//!   fire; the run record, named by the fire key, is created once too.
//! - Missed fires (the scheduler was not running): with `missed: run_once` only the latest
//!   runs, once; with `skip` none do. A fire up to [`Scheduler::grace`] late is on time.
//! - Overlap: `skip` records the fire as skipped, `queue_one` keeps the latest fire waiting
//!   until the running one ends, `concurrent` starts it beside.
//! - A paused schedule fires nothing (its runs in progress finish); on resume it starts from
//!   the time of resuming.
//!
//! [`run_export_id`]: crate::model::schedule::run_export_id

pub mod clock;
pub mod fire;
pub mod runs;
pub mod triggers;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub use clock::{Clock, ManualClock, SystemClock};
use runs::RunRequest;
pub use triggers::{InProcessTriggers, TriggerError, Triggers};

use crate::model::schedule::{Missed, Overlap, QueuedFire, STATE_SCOPE, ScheduleRun, ScheduleSpec, ScheduleState, Trigger};
use crate::schedule::{fire_key, fires};
use crate::services::Services;
use crate::store::{Record, RecordKind, StoreError};

/// A schedule as stored: its definition and the API key its exports are created by.
pub fn load_spec(rec: &Record) -> Result<(ScheduleSpec, String), String> {
    let mut doc = rec.doc.clone();
    let actor = doc.as_object_mut().and_then(|o| o.remove("created_by")).and_then(|v| v.as_str().map(str::to_string));
    let spec = ScheduleSpec::from_json(&doc).map_err(|e| e.to_string())?;
    Ok((spec, actor.unwrap_or_else(|| runs::SCHEDULER_ACTOR.to_string())))
}

/// What one tick did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub schedules: usize,
    /// Runs started (exports created by this scheduler or found created by another).
    pub started: usize,
    pub skipped: usize,
    pub queued: usize,
    pub timed_out: usize,
}

pub struct Scheduler {
    services: Arc<Services>,
    clock: Arc<dyn Clock>,
    /// How late a fire may be and still count as on time (not missed).
    pub grace: Duration,
}

impl Scheduler {
    pub fn new(services: Arc<Services>, clock: Arc<dyn Clock>) -> Self {
        Self { services, clock, grace: Duration::seconds(60) }
    }

    /// Tick every `every` until the task is dropped. A failing tick is logged; the next one
    /// tries again.
    pub async fn run(self, every: std::time::Duration) {
        loop {
            match self.tick().await {
                Ok(r) if r.started + r.skipped + r.timed_out > 0 => tracing::info!(?r, "scheduler tick"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One pass over every schedule.
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.services.store.list_records(RecordKind::ScheduleState, STATE_SCOPE, 100, cursor.as_deref()).await?;
            for rec in &page.items {
                report.schedules += 1;
                let state: ScheduleState = match serde_json::from_value(rec.doc.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(id = %rec.id, error = %e, "schedule state does not parse");
                        continue;
                    }
                };
                if let Err(e) = self.tick_one(state, None, &mut report).await {
                    tracing::warn!(id = %rec.id, error = %e, "schedule tick failed");
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(report),
            }
        }
    }

    /// One pass over one schedule, for a trigger of its own (EventBridge Scheduler on AWS).
    /// The fire due at `scheduled` counts as on time however late the trigger comes (a
    /// retried invocation). A schedule without state (deleted) does nothing.
    pub async fn tick_schedule(&self, tenant: &str, schedule_id: &str, scheduled: Option<DateTime<Utc>>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let id = crate::model::schedule::state_id(tenant, schedule_id);
        let Some(rec) = self.services.store.get_record(RecordKind::ScheduleState, STATE_SCOPE, &id).await? else {
            return Ok(report);
        };
        let state: ScheduleState =
            serde_json::from_value(rec.doc).map_err(|e| StoreError::Backend(format!("schedule state {id} does not parse: {e}")))?;
        report.schedules = 1;
        self.tick_one(state, scheduled, &mut report).await?;
        Ok(report)
    }

    async fn tick_one(&self, state: ScheduleState, scheduled: Option<DateTime<Utc>>, report: &mut TickReport) -> Result<(), StoreError> {
        let svc = self.services.as_ref();
        let (tenant, sid) = (state.tenant.as_str(), state.schedule_id.as_str());
        let Some(rec) = svc.store.get_record(RecordKind::Schedule, tenant, sid).await? else {
            // The schedule is gone (deleted between its record and its state).
            svc.store.delete_record(RecordKind::ScheduleState, STATE_SCOPE, &crate::model::schedule::state_id(tenant, sid)).await?;
            return Ok(());
        };
        let (spec, actor) = load_spec(&rec).map_err(|e| StoreError::Backend(format!("stored schedule {sid} does not parse: {e}")))?;
        let now = self.clock.now();

        // The runs still going: up to date, and cancelled when past their timeout.
        let mut watermark = state.watermark;
        let mut active: Vec<ScheduleRun> = Vec::new();
        let recent = svc.store.list_records(RecordKind::ScheduleRun, &crate::model::schedule::runs_scope(tenant, sid), 100, None).await?;
        for r in &recent.items {
            let run = runs::from_record(r)?;
            let mut run = runs::refresh(svc, tenant, run).await?;
            if run.is_active()
                && let Some(t) = spec.timeout_secs
                && now - run.started_at > Duration::seconds(t as i64)
            {
                run = runs::time_out(svc, tenant, run, t, now).await?;
                report.timed_out += 1;
            }
            if let Some(w) = run.watermark {
                watermark = Some(watermark.map_or(w, |m: DateTime<Utc>| m.max(w)));
            }
            if run.is_active() {
                active.push(run);
            }
        }

        // The fire due now, if any: the latest since the cursor.
        let start = match (state.reset, scheduled) {
            // Resumed since the last tick: from now, or from the fire a trigger names (a trigger
            // of its own fires only while the schedule is enabled, so that fire came after the
            // resume, even if the trigger arrives late).
            (true, Some(s)) => (s - Duration::seconds(1)).min(now),
            (true, None) => now,
            (false, _) => state.cursor.unwrap_or_else(|| rec.created_at.min(now)),
        };
        let due = if spec.paused { None } else { fires(&spec.cron, spec.zone, start).take_while(|f| f.at <= now).last() };
        let due = due.and_then(|f| {
            let on_time = now - f.at <= self.grace || scheduled == Some(f.at);
            match (on_time, spec.missed) {
                (true, _) => Some((f, Trigger::Schedule)),
                (false, Missed::RunOnce) => Some((f, Trigger::CatchUp)),
                (false, Missed::Skip) => None,
            }
        });

        let request = |fire_key: String, at: DateTime<Utc>, trigger: Trigger, watermark: Option<DateTime<Utc>>| RunRequest {
            tenant,
            schedule_id: sid,
            spec: &spec,
            actor: &actor,
            fire_key,
            at,
            trigger,
            now,
            watermark,
        };
        let mut queued = state.queued.clone();
        if !spec.paused
            && active.is_empty()
            && let Some(q) = queued.take()
        {
            let run = runs::start_run(svc, request(q.fire_key, q.at, Trigger::Queued, watermark)).await?;
            report.started += 1;
            if run.is_active() {
                active.push(run);
            }
        }
        if let Some((fire, trigger)) = due {
            let key = fire_key(sid, &fire);
            if active.is_empty() || spec.overlap == Overlap::Concurrent {
                runs::start_run(svc, request(key, fire.at, trigger, watermark)).await?;
                report.started += 1;
            } else if spec.overlap == Overlap::QueueOne {
                queued = Some(QueuedFire { fire_key: key, at: fire.at });
                report.queued += 1;
            } else {
                let ids: Vec<&str> = active.iter().filter_map(|r| r.export_id.as_deref()).collect();
                let why = format!("an earlier run is still going (export {}); overlap is skip", ids.join(", "));
                runs::skip_run(svc, request(key, fire.at, trigger, watermark), &why).await?;
                report.skipped += 1;
            }
        }

        runs::update_state(svc, tenant, sid, |st| {
            st.cursor = Some(st.cursor.map_or(now, |c| c.max(now)));
            st.reset = false;
            st.queued = queued.clone();
            if let Some(w) = watermark {
                st.watermark = Some(st.watermark.map_or(w, |m| m.max(w)));
            }
        })
        .await
    }
}

/// The next `n` fire times of a schedule after `after`, each in the zone and in UTC.
pub fn next_runs(spec: &ScheduleSpec, after: DateTime<Utc>, n: usize) -> Vec<Value> {
    crate::schedule::next_fires(&spec.cron, spec.zone, after, n)
        .iter()
        .map(|f| {
            serde_json::json!({
                "local": f.local().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                "utc": f.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            })
        })
        .collect()
}
