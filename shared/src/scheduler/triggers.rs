//! What makes a schedule fire. The API tells its [`Triggers`] each time a schedule is created,
//! changed, paused, resumed or deleted:
//! - on the embedded default ([`InProcessTriggers`]) nothing needs doing: the in-process
//!   [`Scheduler`](super::Scheduler) reads every schedule from the store on each tick;
//! - on AWS ([`crate::aws::scheduler::EventBridgeTriggers`]) each egress schedule is one or
//!   more EventBridge Scheduler schedules (its `cron(...)` translation, in its zone, `DISABLED`
//!   while paused) plus a one-time `at(...)` schedule for each coming fire in a spring-forward
//!   gap. They invoke the fire function, which runs the same tick for that one schedule
//!   ([`Scheduler::tick_schedule`](super::Scheduler::tick_schedule)).

use async_trait::async_trait;

use crate::model::schedule::ScheduleSpec;

#[async_trait]
pub trait Triggers: Send + Sync {
    /// Make the triggers of schedule `id` of `tenant` fire as `spec` says (or not at all
    /// while it is paused). Called again with the same spec, it changes nothing.
    async fn put(&self, tenant: &str, id: &str, spec: &ScheduleSpec) -> Result<(), TriggerError>;

    /// Remove every trigger of schedule `id`. Removing what is already gone is not an error.
    async fn remove(&self, tenant: &str, id: &str) -> Result<(), TriggerError>;

    /// After a fire: add the triggers that time has brought within reach (the one-time
    /// triggers of coming daylight-saving gaps), leaving the others as they are.
    async fn renew(&self, _tenant: &str, _id: &str, _spec: &ScheduleSpec) -> Result<(), TriggerError> {
        Ok(())
    }
}

/// The scheduling service refused or could not be reached; the message is its own, without
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(pub String);

/// The embedded default's triggers: the in-process scheduler polls the store, so there is
/// nothing to keep in step.
pub struct InProcessTriggers;

#[async_trait]
impl Triggers for InProcessTriggers {
    async fn put(&self, _tenant: &str, _id: &str, _spec: &ScheduleSpec) -> Result<(), TriggerError> {
        Ok(())
    }

    async fn remove(&self, _tenant: &str, _id: &str) -> Result<(), TriggerError> {
        Ok(())
    }
}
