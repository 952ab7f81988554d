//! The fire function on AWS: what an EventBridge Scheduler schedule invokes.
//!
//! - `{"tenant", "schedule_id", "scheduled_time"}` (the input each egress schedule's
//!   EventBridge schedules carry, `scheduled_time` filled in by EventBridge): one tick of that
//!   schedule ([`Scheduler::tick_schedule`]), the same code as the in-process scheduler's, so
//!   overlap, missed-run, timeout and pause policies and the run ids are the same on both.
//!   Then the one-time schedules of coming daylight-saving gaps are renewed; a schedule that no
//!   longer exists has its triggers removed.
//! - `{"sweep": true}` (one EventBridge schedule every few minutes): a tick of every schedule,
//!   which follows runs in progress (timeouts, a queued fire waiting for the run before it) and
//!   catches a fire whose trigger did not arrive.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Clock, Scheduler, load_spec};
use crate::services::Services;
use crate::store::RecordKind;

/// The fire function's input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FireEvent {
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// RFC 3339; EventBridge's `<aws.scheduler.scheduled-time>`.
    #[serde(default)]
    pub scheduled_time: Option<String>,
    #[serde(default)]
    pub sweep: bool,
}

/// Handle one invocation; the answer is what the tick did. An error makes the invocation fail,
/// so that EventBridge tries it again (its retry policy).
pub async fn handle(services: Arc<Services>, clock: Arc<dyn Clock>, event: Value) -> Result<Value, String> {
    let event: FireEvent = serde_json::from_value(event).map_err(|e| format!("the fire event does not parse: {e}"))?;
    let scheduler = Scheduler::new(services.clone(), clock);
    if event.sweep {
        let r = scheduler.tick().await.map_err(|e| e.to_string())?;
        return Ok(report(&r));
    }
    let (Some(tenant), Some(id)) = (event.tenant.as_deref(), event.schedule_id.as_deref()) else {
        return Err("the fire event needs `tenant` and `schedule_id`, or `sweep: true`".into());
    };
    let scheduled = match event.scheduled_time.as_deref() {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t).map_err(|e| format!("scheduled_time `{t}` is not an RFC 3339 time: {e}"))?.with_timezone(&Utc),
        ),
    };
    let r = scheduler.tick_schedule(tenant, id, scheduled).await.map_err(|e| e.to_string())?;
    match services.store.get_record(RecordKind::Schedule, tenant, id).await.map_err(|e| e.to_string())? {
        Some(rec) => {
            let (spec, _) = load_spec(&rec)?;
            if let Err(e) = services.triggers.renew(tenant, id, &spec).await {
                tracing::warn!(schedule_id = id, error = %e, "renewing the daylight-saving gap triggers failed");
            }
        }
        None => {
            tracing::info!(schedule_id = id, "the schedule is gone; removing its triggers");
            services.triggers.remove(tenant, id).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(report(&r))
}

fn report(r: &super::TickReport) -> Value {
    json!({"schedules": r.schedules, "started": r.started, "skipped": r.skipped, "queued": r.queued, "timed_out": r.timed_out})
}
