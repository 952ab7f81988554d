//! Schedules on AWS: the schedule routes keep EventBridge Scheduler (on moto server) in step
//! with each egress schedule, and the fire function that EventBridge invokes starts the run.
//! - Create: one EventBridge schedule per translated `cron(...)` expression, in the schedule's
//!   zone, invoking the fire function with the tenant, the schedule and EventBridge's
//!   `<aws.scheduler.scheduled-time>`; a one-time `at(...)` schedule (in UTC, deleted after it
//!   ran) for the coming fire in a spring-forward gap, which EventBridge would skip.
//! - Change, pause (`DISABLED`), resume (`ENABLED`) and delete (nothing left).
//! - The fire function, given the input EventBridge sends, starts one run for the fire, counted
//!   on time even when the invocation comes late (a retry) under `missed: skip`; a repeated
//!   invocation starts nothing more; a trigger whose schedule is gone removes itself.
//! - When the scheduling service refuses, a new schedule is not created (503, nothing stored).

use crate::moto;

use std::sync::Arc;

use aws_sdk_scheduler::types::ScheduleState;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use chrono_tz::Europe::Vienna;
use egress::aws::AwsSettings;
use egress::aws::scheduler::EventBridgeSettings;
use egress::config::Settings;
use egress::local::client::Client;
use egress::scheduler::{Clock, ManualClock};
use egress::services::Services;
use http::{Method, StatusCode};
use serde_json::{Value, json};

const GROUP: &str = "egress-test";
const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:egress-schedule-fire";
const ROLE: &str = "arn:aws:iam::123456789012:role/egress-scheduler";

struct Env {
    _moto: moto::Moto,
    _work: tempfile::TempDir,
    services: Arc<Services>,
    scheduler: aws_sdk_scheduler::Client,
    token: String,
}

async fn setup(schedules: Option<EventBridgeSettings>) -> Env {
    let moto = tokio::task::spawn_blocking(moto::Moto::start).await.unwrap();
    let cfg = moto.config();
    egress::aws::dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&cfg), "egress").await.unwrap();
    egress::aws::s3_client(&cfg, true).create_bucket().bucket("egress-data").send().await.unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&cfg);
    scheduler.create_schedule_group().name(GROUP).send().await.unwrap();
    let aws = AwsSettings {
        table: "egress".into(),
        bucket: "egress-data".into(),
        kms_key_id: None,
        hash_key_id: None,
        state_machine_arn: None,
        s3_force_path_style: true,
        endpoint_url: None,
        schedules,
    };
    let adapters = egress::aws::services(&aws, &cfg).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(work.path().into());
    settings.rate_limit = None;
    // Runs go through the export state machine in the local runner; everything else is on moto.
    let services = Arc::new(moto::with_local_runs(&adapters, settings).0);
    let k = egress::auth::generate("acme", [egress::model::Permission::Admin].into(), "eventbridge");
    services.store.put_api_key(&k.record).await.unwrap();
    Env { _moto: moto, _work: work, services, scheduler, token: k.token }
}

fn settings() -> EventBridgeSettings {
    EventBridgeSettings { group: GROUP.into(), target_arn: TARGET.into(), role_arn: ROLE.into() }
}

/// The EventBridge schedules in the group, by name.
async fn schedules(c: &aws_sdk_scheduler::Client) -> Vec<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    let list = c.list_schedules().group_name(GROUP).send().await.unwrap();
    let mut out = Vec::new();
    for s in list.schedules {
        out.push(c.get_schedule().group_name(GROUP).name(s.name.unwrap()).send().await.unwrap());
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn names(s: &[aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput]) -> Vec<String> {
    s.iter().map(|s| s.name.clone().unwrap()).collect()
}

fn export_body() -> Value {
    json!({"source": {"type": "inline", "rows": [{"id": 1, "amount": "10.50"}, {"id": 2, "amount": "3.25"}]}, "format": "csv"})
}

/// The input EventBridge sends: the target's input with its context attribute filled in.
fn fired_input(target_input: &str, scheduled: DateTime<Utc>) -> Value {
    let filled = target_input.replace("<aws.scheduler.scheduled-time>", &scheduled.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    serde_json::from_str(&filled).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_kept_in_eventbridge_and_its_fires_start_runs() {
    let env = setup(Some(settings())).await;
    let client = Client { services: &env.services, token: env.token.clone() };

    // 02:30 on the 1st and on Sundays, in Vienna: two EventBridge expressions (EventBridge
    // takes one day field at a time), and the coming last Sunday of March falls in the
    // spring-forward gap (02:00 to 03:00), which EventBridge would skip.
    let body = json!({"name": "weekly", "cron": "30 2 1 * SUN", "timezone": "Europe/Vienna", "missed": "skip", "export": export_body()});
    let (status, _, created) = client.call(Method::POST, "/v1/schedules", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let s = schedules(&env.scheduler).await;
    assert_eq!(s.len(), 3, "{:?}", names(&s));
    let (cron0, cron1, gap) = (&s[0], &s[1], &s[2]);
    assert_eq!(cron0.name.as_deref(), Some(format!("{id}-0").as_str()));
    assert_eq!(cron0.schedule_expression.as_deref(), Some("cron(30 2 1 * ? *)"));
    assert_eq!(cron1.name.as_deref(), Some(format!("{id}-1").as_str()));
    assert_eq!(cron1.schedule_expression.as_deref(), Some("cron(30 2 ? * SUN *)"));
    for c in [cron0, cron1] {
        assert_eq!(c.schedule_expression_timezone.as_deref(), Some("Europe/Vienna"));
        assert_eq!(c.state, Some(ScheduleState::Enabled));
        assert_eq!(c.action_after_completion, None);
    }
    for x in &s {
        let t = x.target.as_ref().unwrap();
        assert_eq!((t.arn.as_str(), t.role_arn.as_str()), (TARGET, ROLE));
        let input: Value = serde_json::from_str(t.input.as_deref().unwrap()).unwrap();
        assert_eq!(input, json!({"tenant": "acme", "schedule_id": id, "scheduled_time": "<aws.scheduler.scheduled-time>"}));
        assert_eq!(x.flexible_time_window.as_ref().unwrap().mode.as_str(), "OFF");
    }
    // The gap fire: a one-time schedule at 03:00 Vienna (the gap's end, 01:00 UTC) on the last
    // Sunday of March, in UTC, deleted by EventBridge once it ran.
    let gap_name = gap.name.clone().unwrap();
    assert!(gap_name.starts_with(&format!("{id}-gap-")), "{gap_name}");
    assert_eq!(gap.schedule_expression_timezone.as_deref(), Some("UTC"));
    assert_eq!(gap.action_after_completion.as_ref().map(|a| a.as_str()), Some("DELETE"));
    let at = gap.schedule_expression.as_deref().unwrap();
    let instant = chrono::NaiveDateTime::parse_from_str(at.trim_start_matches("at(").trim_end_matches(')'), "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .and_utc();
    let local = instant.with_timezone(&Vienna);
    assert!(instant > Utc::now() && instant < Utc::now() + Duration::days(400), "{at}");
    assert_eq!((local.month(), local.weekday(), local.hour(), local.minute()), (3, Weekday::Sun, 3, 0), "{at} is {local}");
    assert!(local.day() >= 25, "{local} is not the last Sunday of March");

    // A change of expression replaces the schedules: one expression, no gap fire.
    let body = json!({"cron": "0 6 2 * *", "timezone": "Europe/Vienna", "missed": "skip", "export": export_body()});
    let (status, _, changed) = client.call(Method::PUT, &format!("/v1/schedules/{id}"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let s = schedules(&env.scheduler).await;
    assert_eq!(names(&s), [format!("{id}-0")]);
    assert_eq!(s[0].schedule_expression.as_deref(), Some("cron(0 6 2 * ? *)"));

    // Pause and resume map to the schedule's state.
    let (status, _, _) = client.call(Method::POST, &format!("/v1/schedules/{id}/pause"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schedules(&env.scheduler).await[0].state, Some(ScheduleState::Disabled));
    let (status, _, _) = client.call(Method::POST, &format!("/v1/schedules/{id}/resume"), None).await;
    assert_eq!(status, StatusCode::OK);
    let s = schedules(&env.scheduler).await;
    assert_eq!(s[0].state, Some(ScheduleState::Enabled));

    // EventBridge fires the 2 December 06:00 Vienna (05:00 UTC); the invocation comes ten
    // minutes late (a retry). Under `missed: skip` it still counts as on time: EventBridge said
    // which fire it is.
    let target_input = s[0].target.as_ref().unwrap().input.clone().unwrap();
    let (_, _, got) = client.call(Method::GET, &format!("/v1/schedules/{id}"), None).await;
    let next: DateTime<Utc> = got["next_runs"][0]["utc"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.with_timezone(&Vienna).format("%d %H:%M").to_string(), "02 06:00", "{got}");
    let clock = Arc::new(ManualClock::new(next + Duration::minutes(10)));
    let fire = || egress::scheduler::fire::handle(env.services.clone(), clock.clone() as Arc<dyn Clock>, fired_input(&target_input, next));
    let report = fire().await.unwrap();
    assert_eq!(report["started"], 1, "{report}");
    let (_, _, runs) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs"), None).await;
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{runs}");
    assert_eq!(items[0]["trigger"], "schedule", "{runs}");
    assert_eq!(items[0]["scheduled_for"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), next, "{runs}");
    let export_id = items[0]["export_id"].as_str().unwrap().to_string();
    let (status, _, export) = client.call(Method::GET, &format!("/v1/exports/{export_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["schedule"]["id"].as_str(), Some(id.as_str()), "{export}");
    assert_eq!(export["schedule"]["nominal_time"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), next, "{export}");

    // EventBridge delivers at least once: the same invocation again starts nothing more.
    let report = fire().await.unwrap();
    assert_eq!(report["started"], 0, "{report}");
    let (_, _, runs) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs"), None).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1, "{runs}");

    // The sweep ticks every schedule.
    let report = egress::scheduler::fire::handle(env.services.clone(), clock.clone(), json!({"sweep": true})).await.unwrap();
    assert_eq!(report["schedules"], 1, "{report}");

    // A malformed event is refused, naming what it needs.
    let err = egress::scheduler::fire::handle(env.services.clone(), clock.clone(), json!({"tenant": "acme"})).await.unwrap_err();
    assert!(err.contains("schedule_id"), "{err}");
    let err = egress::scheduler::fire::handle(env.services.clone(), clock.clone(), json!({"bogus": 1})).await.unwrap_err();
    assert!(err.contains("bogus"), "{err}");

    // Delete removes every EventBridge schedule of it.
    let (status, _, _) = client.call(Method::DELETE, &format!("/v1/schedules/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(schedules(&env.scheduler).await.is_empty());

    // A trigger left behind (say, a delete that could not reach EventBridge) removes itself
    // when it fires and finds no schedule.
    env.services.triggers.put("acme", &id, &egress::model::schedule::ScheduleSpec::from_json(&body).unwrap()).await.unwrap();
    assert_eq!(names(&schedules(&env.scheduler).await), [format!("{id}-0")]);
    let report = fire().await.unwrap();
    assert_eq!(report["started"], 0, "{report}");
    assert!(schedules(&env.scheduler).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_the_scheduling_service_refuses_is_not_created() {
    // A function not given the schedule group: the trigger cannot be made.
    let env = setup(None).await;
    let client = Client { services: &env.services, token: env.token.clone() };
    let body = json!({"name": "nightly", "cron": "daily", "timezone": "UTC", "export": export_body()});
    let (status, _, problem) = client.call(Method::POST, "/v1/schedules", Some(&body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["code"], "SERVICE_UNAVAILABLE", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("EGRESS_SCHEDULE_GROUP"), "{problem}");
    let (_, _, list) = client.call(Method::GET, "/v1/schedules", None).await;
    assert_eq!(list["items"], json!([]), "{list}");
    // The name is free again.
    let (_, _, audit) = client.call(Method::GET, "/v1/audit?action=schedule.create", None).await;
    let outcomes: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["failure"], "{audit}");
}
