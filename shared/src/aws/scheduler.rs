//! Schedules on Amazon EventBridge Scheduler ([`EventBridgeTriggers`]). An egress schedule
//! `sch_x` becomes, in one schedule group:
//! - `sch_x-0`, `sch_x-1`, ...: its `cron(...)` translation
//!   ([`crate::schedule::eventbridge::translate`]; two when the expression restricts both day
//!   fields) with `ScheduleExpressionTimezone` set to its zone;
//! - `sch_x-gap-20270328T0100`, ...: a one-time `at(...)` schedule (in UTC, deleted by
//!   EventBridge once it ran) for each fire in the coming [`GAP_HORIZON_DAYS`] whose wall time
//!   falls in a spring-forward gap, which EventBridge would skip; each fire renews them.
//!
//! All are `DISABLED` while the schedule is paused and all invoke the fire function with
//! [`FireEvent`](crate::scheduler::fire::FireEvent): the tenant, the schedule and
//! `<aws.scheduler.scheduled-time>`, which EventBridge fills in with the nominal fire time.

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError;
use aws_sdk_scheduler::operation::update_schedule::UpdateScheduleError;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target};
use chrono::{DateTime, Duration, Utc};

use super::sdk_error;
use crate::model::schedule::ScheduleSpec;
use crate::schedule::eventbridge::{gap_fires, translate};
use crate::scheduler::triggers::{TriggerError, Triggers};

/// How far ahead the one-time schedules of gap fires are kept.
pub const GAP_HORIZON_DAYS: i64 = 400;

/// Where the schedules live and what they invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeSettings {
    /// `EGRESS_SCHEDULE_GROUP`: the schedule group.
    pub group: String,
    /// `EGRESS_SCHEDULE_TARGET_ARN`: the fire function.
    pub target_arn: String,
    /// `EGRESS_SCHEDULE_ROLE_ARN`: the role EventBridge Scheduler takes to invoke it.
    pub role_arn: String,
}

impl EventBridgeSettings {
    /// The settings through `lookup`; `None` when none of the three is set, an error naming
    /// the missing ones when only some are.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        const NAMES: [&str; 3] = ["EGRESS_SCHEDULE_GROUP", "EGRESS_SCHEDULE_TARGET_ARN", "EGRESS_SCHEDULE_ROLE_ARN"];
        let [group, target_arn, role_arn] = NAMES.map(|n| lookup(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()));
        match (group, target_arn, role_arn) {
            (None, None, None) => Ok(None),
            (Some(group), Some(target_arn), Some(role_arn)) => Ok(Some(Self { group, target_arn, role_arn })),
            (group, target_arn, role_arn) => {
                let set = [group.is_some(), target_arn.is_some(), role_arn.is_some()];
                let missing: Vec<&str> = NAMES.iter().zip(set).filter(|(_, is_set)| !is_set).map(|(n, _)| *n).collect();
                Err(format!("{} must be set together with the other EGRESS_SCHEDULE_* variables", missing.join(" and ")))
            }
        }
    }
}

pub struct EventBridgeTriggers {
    client: Client,
    settings: EventBridgeSettings,
}

/// One EventBridge schedule as egress wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub expression: String,
    pub timezone: String,
    /// Deleted by EventBridge after it ran (the one-time schedules).
    pub one_time: bool,
}

/// The EventBridge schedules of egress schedule `id` with `spec`, from `now`.
pub fn wanted(id: &str, spec: &ScheduleSpec, now: DateTime<Utc>) -> Vec<Wanted> {
    let eb = translate(&spec.cron, spec.zone);
    let mut out: Vec<Wanted> = eb
        .expressions
        .into_iter()
        .enumerate()
        .map(|(i, expression)| Wanted { name: format!("{id}-{i}"), expression, timezone: eb.timezone.clone(), one_time: false })
        .collect();
    for g in gap_fires(&spec.cron, spec.zone, now, Duration::days(GAP_HORIZON_DAYS)) {
        out.push(Wanted {
            name: format!("{id}-gap-{}", g.fire.at.format("%Y%m%dT%H%M")),
            expression: g.at_expression,
            timezone: g.at_timezone.to_string(),
            one_time: true,
        });
    }
    out
}

fn backend<E, R>(what: &str, name: &str, e: aws_sdk_scheduler::error::SdkError<E, R>) -> TriggerError
where
    E: aws_sdk_scheduler::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    TriggerError(format!("EventBridge Scheduler {what} of `{name}`: {}", sdk_error(&e)))
}

impl EventBridgeTriggers {
    pub fn new(client: Client, settings: EventBridgeSettings) -> Self {
        Self { client, settings }
    }

    /// The names of the EventBridge schedules of egress schedule `id`.
    pub async fn names(&self, id: &str) -> Result<Vec<String>, TriggerError> {
        let prefix = format!("{id}-");
        let mut names = Vec::new();
        let mut pages = self.client.list_schedules().group_name(&self.settings.group).name_prefix(&prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend("ListSchedules", &prefix, e))?;
            // The prefix filter is applied here too: an emulator may ignore it.
            names.extend(page.schedules.into_iter().filter_map(|s| s.name).filter(|n| n.starts_with(&prefix)));
        }
        Ok(names)
    }

    fn target(&self, tenant: &str, id: &str) -> Result<Target, TriggerError> {
        let input = serde_json::json!({
            "tenant": tenant,
            "schedule_id": id,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        });
        Target::builder()
            .arn(&self.settings.target_arn)
            .role_arn(&self.settings.role_arn)
            .input(input.to_string())
            // A failed invocation is tried again for up to an hour; the fire function counts
            // the fire as on time however late it comes (it knows the scheduled time).
            .retry_policy(RetryPolicy::builder().maximum_retry_attempts(10).maximum_event_age_in_seconds(3600).build())
            .build()
            .map_err(|e| TriggerError(format!("EventBridge Scheduler target: {e}")))
    }

    /// Create or update one schedule.
    async fn upsert(&self, tenant: &str, id: &str, w: &Wanted, state: ScheduleState) -> Result<(), TriggerError> {
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| TriggerError(format!("EventBridge Scheduler time window: {e}")))?;
        let description = format!("egress schedule {id} of tenant {tenant}");
        let updated = self
            .client
            .update_schedule()
            .group_name(&self.settings.group)
            .name(&w.name)
            .description(&description)
            .schedule_expression(&w.expression)
            .schedule_expression_timezone(&w.timezone)
            .state(state.clone())
            .flexible_time_window(window.clone())
            .target(self.target(tenant, id)?)
            .set_action_after_completion(w.one_time.then_some(ActionAfterCompletion::Delete))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(UpdateScheduleError::ResourceNotFoundException(_))) => self
                .client
                .create_schedule()
                .group_name(&self.settings.group)
                .name(&w.name)
                .description(description)
                .schedule_expression(&w.expression)
                .schedule_expression_timezone(&w.timezone)
                .state(state)
                .flexible_time_window(window)
                .target(self.target(tenant, id)?)
                .set_action_after_completion(w.one_time.then_some(ActionAfterCompletion::Delete))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| backend("CreateSchedule", &w.name, e)),
            Err(e) => Err(backend("UpdateSchedule", &w.name, e)),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), TriggerError> {
        match self.client.delete_schedule().group_name(&self.settings.group).name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(DeleteScheduleError::ResourceNotFoundException(_))) => Ok(()),
            Err(e) => Err(backend("DeleteSchedule", name, e)),
        }
    }

    /// Make the schedules of `id` those of `spec` as of `now`: each wanted one created or
    /// updated, any other of its schedules deleted.
    pub async fn put_at(&self, tenant: &str, id: &str, spec: &ScheduleSpec, now: DateTime<Utc>) -> Result<(), TriggerError> {
        let wanted = wanted(id, spec, now);
        let state = if spec.paused { ScheduleState::Disabled } else { ScheduleState::Enabled };
        for w in &wanted {
            self.upsert(tenant, id, w, state.clone()).await?;
        }
        for name in self.names(id).await? {
            if !wanted.iter().any(|w| w.name == name) {
                self.delete(&name).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Triggers for EventBridgeTriggers {
    async fn put(&self, tenant: &str, id: &str, spec: &ScheduleSpec) -> Result<(), TriggerError> {
        self.put_at(tenant, id, spec, Utc::now()).await
    }

    async fn remove(&self, _tenant: &str, id: &str) -> Result<(), TriggerError> {
        for name in self.names(id).await? {
            self.delete(&name).await?;
        }
        Ok(())
    }

    /// Create the one-time schedules of gap fires that came within the horizon, and nothing
    /// else: a pause or an edit racing with a fire stays as the API left it.
    async fn renew(&self, tenant: &str, id: &str, spec: &ScheduleSpec) -> Result<(), TriggerError> {
        if spec.paused {
            return Ok(());
        }
        let have = self.names(id).await?;
        for w in wanted(id, spec, Utc::now()).iter().filter(|w| w.one_time && !have.contains(&w.name)) {
            self.upsert(tenant, id, w, ScheduleState::Enabled).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(cron: &str, zone: &str) -> ScheduleSpec {
        ScheduleSpec::from_json(&serde_json::json!({
            "name": "s", "cron": cron, "timezone": zone,
            "export": {"source": {"type": "dataset", "path": "tx"}, "format": "csv"},
        }))
        .unwrap()
    }

    #[test]
    fn wanted_schedules_name_the_cron_translations_and_the_gap_fires() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").unwrap().with_timezone(&Utc);
        let w = wanted("sch_1", &spec("30 2 1,15 * MON", "Europe/Vienna"), now);
        let names: Vec<&str> = w.iter().map(|w| w.name.as_str()).collect();
        // 2027-03-29 is a Monday and not in a gap; 2027-03-28 02:30 is a Sunday: no fire.
        assert_eq!(names, ["sch_1-0", "sch_1-1"]);
        assert_eq!(w[0].expression, "cron(30 2 1,15 * ? *)");
        assert_eq!(w[1].expression, "cron(30 2 ? * MON *)");
        assert!(w.iter().all(|w| w.timezone == "Europe/Vienna" && !w.one_time));

        let w = wanted("sch_2", &spec("30 2 * * *", "Europe/Vienna"), now);
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].name, "sch_2-gap-20270328T0100");
        assert_eq!(w[1].expression, "at(2027-03-28T01:00:00)");
        assert_eq!(w[1].timezone, "UTC");
        assert!(w[1].one_time);
        assert!(w.iter().all(|w| w.name.len() <= 64));
    }

    #[test]
    fn settings_are_all_or_none() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            move |k: &str| map.get(k).map(|v| v.to_string())
        };
        assert_eq!(EventBridgeSettings::from_lookup(lookup(&[])), Ok(None));
        let err = EventBridgeSettings::from_lookup(lookup(&[("EGRESS_SCHEDULE_GROUP", "g")])).unwrap_err();
        assert!(err.contains("EGRESS_SCHEDULE_TARGET_ARN and EGRESS_SCHEDULE_ROLE_ARN"), "{err}");
        let all = EventBridgeSettings::from_lookup(lookup(&[
            ("EGRESS_SCHEDULE_GROUP", "g"),
            ("EGRESS_SCHEDULE_TARGET_ARN", "arn:t"),
            ("EGRESS_SCHEDULE_ROLE_ARN", "arn:r"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(all, EventBridgeSettings { group: "g".into(), target_arn: "arn:t".into(), role_arn: "arn:r".into() });
    }
}
