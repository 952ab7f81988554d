//! A schedule: an export request that runs on a cron expression in a time zone, with the time
//! window each run exports, and what happens when runs overlap, are missed or take too long.
//!
//! A schedule is kept as a record ([`crate::store::RecordKind::Schedule`]) whose document is
//! the request as checked here; each run is a record of its own ([`ScheduleRun`]), and the
//! scheduler's progress through the fires another ([`ScheduleState`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ValidationErrors;
use crate::schedule::{CronExpr, TimeWindow, Window};

/// What to do with a fire while an earlier run of the schedule is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Do not run it (the run is recorded as `skipped`).
    #[default]
    Skip,
    /// Run it when the earlier run ends; a later fire replaces a fire already waiting.
    QueueOne,
    /// Run it beside the earlier one.
    Concurrent,
}

pub const OVERLAPS: &str = "skip, queue_one, concurrent";

/// What to do with fires that passed while no scheduler was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Run the latest missed fire once, now.
    #[default]
    RunOnce,
    /// Run none of them.
    Skip,
}

pub const MISSEDS: &str = "run_once, skip";

/// Which rows a run exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowRule {
    /// A window on the zone's calendar, relative to the fire.
    Calendar(Window),
    /// From the previous successful run's high-water mark (at first `initial`) up to the fire.
    SinceLastSuccess { initial: DateTime<Utc> },
}

/// A schedule's window and the timestamp column it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleWindow {
    pub rule: WindowRule,
    pub column: String,
}

pub const WINDOW_TYPES: &str = "previous_day, previous_week, previous_month, month_to_date, last_n_hours (with n), last_n_days (with n), \
     since_last_success (with initial, an RFC 3339 timestamp)";

const CALENDAR_TYPES: [&str; 6] = ["previous_day", "previous_week", "previous_month", "month_to_date", "last_n_hours", "last_n_days"];

/// The longest run a timeout may allow: 30 days.
pub const MAX_TIMEOUT_SECS: u64 = 30 * 24 * 3600;

/// A checked schedule definition (everything but its name).
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub cron: CronExpr,
    pub cron_text: String,
    pub zone: Tz,
    /// The body a client would send to `POST /v1/exports`.
    pub export: Value,
    pub window: Option<ScheduleWindow>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub timeout_secs: Option<u64>,
    pub paused: bool,
    pub description: Option<String>,
}

const FIELDS: [&str; 10] = ["name", "description", "cron", "timezone", "export", "window", "overlap", "missed", "timeout_secs", "paused"];

fn enum_field<T: serde::de::DeserializeOwned + Default>(body: &Value, field: &str, allowed: &str, errs: &mut ValidationErrors) -> T {
    match body.get(field) {
        None | Some(Value::Null) => T::default(),
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|_| {
            errs.push(format!("/{field}"), v.clone(), format!("one of {allowed}"));
            T::default()
        }),
    }
}

impl ScheduleSpec {
    /// Read and check a schedule request (`POST` or `PUT /v1/schedules`), collecting every
    /// bad field. The export body itself is checked by the export route's checks, later.
    pub fn from_json(body: &Value) -> Result<ScheduleSpec, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let Some(obj) = body.as_object() else {
            return Err(ValidationErrors::single("", body.clone(), "a JSON object with cron, timezone and export"));
        };
        for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            errs.push(format!("/{k}"), obj[k].clone(), format!("one of the fields {}", FIELDS.join(", ")));
        }
        let cron_text = obj.get("cron").and_then(Value::as_str).unwrap_or_default().trim().to_string();
        let cron = match CronExpr::parse(&cron_text) {
            Ok(c) => Some(c),
            Err(e) => {
                let value = obj.get("cron").cloned().unwrap_or(Value::Null);
                let allowed = if obj.get("cron").is_some_and(Value::is_string) {
                    format!("a five-field cron expression or a preset (hourly, daily, weekly, monthly): {e}")
                } else {
                    "a five-field cron expression (minute hour day-of-month month day-of-week) or a preset (hourly, daily, weekly, monthly)"
                        .to_string()
                };
                errs.push("/cron", value, allowed);
                None
            }
        };
        let zone = match obj.get("timezone").and_then(Value::as_str).map(|s| s.parse::<Tz>()) {
            Some(Ok(z)) => Some(z),
            _ => {
                errs.push(
                    "/timezone",
                    obj.get("timezone").cloned().unwrap_or(Value::Null),
                    "an IANA time zone name, e.g. Europe/Vienna, America/New_York or UTC",
                );
                None
            }
        };
        let export = match obj.get("export") {
            Some(v @ Value::Object(_)) => v.clone(),
            other => {
                errs.push("/export", other.cloned().unwrap_or(Value::Null), "an object: the body of POST /v1/exports each run sends");
                Value::Null
            }
        };
        let overlap: Overlap = enum_field(body, "overlap", OVERLAPS, &mut errs);
        let missed: Missed = enum_field(body, "missed", MISSEDS, &mut errs);
        let timeout_secs = match obj.get("timeout_secs") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().filter(|n| (1..=MAX_TIMEOUT_SECS).contains(n)) {
                Some(n) => Some(n),
                None => {
                    errs.push("/timeout_secs", v.clone(), format!("an integer from 1 to {MAX_TIMEOUT_SECS} (seconds)"));
                    None
                }
            },
        };
        let paused = match obj.get("paused") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                errs.push("/paused", v.clone(), "true or false");
                false
            }
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= 500 => Some(s.clone()),
            Some(v) => {
                errs.push("/description", v.clone(), "a string of at most 500 characters");
                None
            }
        };
        let window = obj.get("window").filter(|v| !v.is_null()).and_then(|w| parse_window(w, &export, &mut errs));
        if matches!(window, Some(ScheduleWindow { rule: WindowRule::SinceLastSuccess { .. }, .. })) && overlap == Overlap::Concurrent {
            errs.push(
                "/overlap",
                "concurrent",
                "skip or queue_one: a since_last_success window starts where the previous run ended, so runs cannot overlap",
            );
        }
        errs.into_result()?;
        Ok(ScheduleSpec {
            cron: cron.expect("checked"),
            cron_text,
            zone: zone.expect("checked"),
            export,
            window,
            overlap,
            missed,
            timeout_secs,
            paused,
            description,
        })
    }

    /// The stored document: the request as checked, without the name.
    pub fn to_doc(&self) -> Value {
        let mut doc = json!({
            "cron": self.cron_text,
            "timezone": self.zone.name(),
            "export": self.export,
            "overlap": self.overlap,
            "missed": self.missed,
            "paused": self.paused,
        });
        if let Some(w) = &self.window {
            doc["window"] = w.to_json();
        }
        if let Some(t) = self.timeout_secs {
            doc["timeout_secs"] = t.into();
        }
        if let Some(d) = &self.description {
            doc["description"] = d.as_str().into();
        }
        doc
    }

    /// The export request of a run whose window is `window`: the schedule's body with its
    /// `time_range` set to the window (the column from the window, or the body's own).
    pub fn export_body(&self, window: Option<&TimeWindow>) -> Value {
        let mut body = self.export.clone();
        if let (Some(w), Some(sw)) = (window, &self.window)
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert(
                "time_range".into(),
                json!({
                    "column": sw.column,
                    "from": w.start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    "to": w.end.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                }),
            );
        }
        body
    }
}

fn parse_window(w: &Value, export: &Value, errs: &mut ValidationErrors) -> Option<ScheduleWindow> {
    let Some(obj) = w.as_object() else {
        errs.push("/window", w.clone(), format!("an object with `type`, one of {WINDOW_TYPES}"));
        return None;
    };
    let body_column = export.get("time_range").and_then(|t| t.get("column")).and_then(Value::as_str);
    let column = match obj.get("column") {
        None | Some(Value::Null) => body_column.map(str::to_string),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v) => {
            errs.push("/window/column", v.clone(), "the name of a timestamp or date column of the source");
            return None;
        }
    };
    let rule = if obj.get("type").and_then(Value::as_str) == Some("since_last_success") {
        for k in obj.keys().filter(|k| !["type", "column", "initial"].contains(&k.as_str())) {
            errs.push(format!("/window/{k}"), obj[k].clone(), "one of the fields type, column, initial");
        }
        match obj.get("initial").and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
            Some(t) => WindowRule::SinceLastSuccess { initial: t.with_timezone(&Utc) },
            None => {
                errs.push(
                    "/window/initial",
                    obj.get("initial").cloned().unwrap_or(Value::Null),
                    "an RFC 3339 timestamp with offset where the first run starts, e.g. 2026-01-01T00:00:00Z",
                );
                return None;
            }
        }
    } else {
        let mut calendar = w.clone();
        if let Some(o) = calendar.as_object_mut() {
            o.remove("column");
        }
        match serde_json::from_value::<Window>(calendar) {
            Ok(win) => WindowRule::Calendar(win),
            Err(e) => {
                let (pointer, value) = match obj.get("type") {
                    Some(Value::String(t)) if CALENDAR_TYPES.contains(&t.as_str()) => ("/window".to_string(), w.clone()),
                    other => ("/window/type".to_string(), other.cloned().unwrap_or(Value::Null)),
                };
                errs.push(pointer, value, format!("a window of type {WINDOW_TYPES} ({e})"));
                return None;
            }
        }
    };
    let Some(column) = column else {
        errs.push(
            "/window/column",
            Value::Null,
            "the timestamp column the window applies to: set window.column, or export.time_range.column",
        );
        return None;
    };
    Some(ScheduleWindow { rule, column })
}

impl ScheduleWindow {
    pub fn to_json(&self) -> Value {
        let mut v = match &self.rule {
            WindowRule::Calendar(w) => serde_json::to_value(w).unwrap_or(Value::Null),
            WindowRule::SinceLastSuccess { initial } => json!({
                "type": "since_last_success",
                "initial": initial.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            }),
        };
        v["column"] = self.column.as_str().into();
        v
    }
}

/// Where a scheduled export came from: recorded on the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRef {
    pub id: String,
    /// The run's key: schedule id and nominal wall time in the zone ([`crate::schedule::fire_key`]),
    /// or a `manual` key for a run started by hand.
    pub fire_key: String,
    /// When the fire was due.
    pub nominal_time: DateTime<Utc>,
}

/// How a run came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A fire, on time.
    Schedule,
    /// The latest fire missed while no scheduler ran, run late once.
    CatchUp,
    /// A fire that waited for an earlier run to end (`overlap: queue_one`).
    Queued,
    /// `POST /v1/schedules/{id}/run`.
    Manual,
}

/// One run of a schedule, as `GET /v1/schedules/{id}/runs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRun {
    pub id: String,
    pub schedule_id: String,
    pub fire_key: String,
    /// When the fire was due.
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    /// The export the run created; none when the run was skipped or its request was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
    /// An export status, or `skipped` (an earlier run was still going), `timed_out` (cancelled
    /// after `timeout_secs`), `rejected` (the export request was refused).
    pub status: String,
    /// When the scheduler started it, on the scheduler's clock.
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Where the files went: one location per delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The end of the rows a successful `since_last_success` run covered: the next run starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<DateTime<Utc>>,
}

impl ScheduleRun {
    /// Still going: the export may change.
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "running" | "paused")
    }
}

/// A fire waiting for an earlier run to end (`overlap: queue_one`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedFire {
    pub fire_key: String,
    pub at: DateTime<Utc>,
}

/// How far the scheduler got with one schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub tenant: String,
    pub schedule_id: String,
    /// Every fire at or before this instant is dealt with; `None` until a scheduler first sees
    /// the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// Set on resume: the next tick starts from its own now, so the paused time's fires never run.
    #[serde(default)]
    pub reset: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedFire>,
    /// The high-water mark of the last successful `since_last_success` run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<DateTime<Utc>>,
}

/// The record scope every schedule's state is kept under (no tenant can be called this), so
/// that a scheduler finds all of them.
pub const STATE_SCOPE: &str = "~schedules";

/// The record id of a schedule's state.
pub fn state_id(tenant: &str, schedule_id: &str) -> String {
    format!("{tenant}~{schedule_id}")
}

/// The record scope a schedule's runs are kept under.
pub fn runs_scope(tenant: &str, schedule_id: &str) -> String {
    format!("{tenant}~{schedule_id}")
}

/// A new schedule id: `sch_` + a UUID v7 (time-ordered).
pub fn schedule_id() -> String {
    format!("sch_{}", uuid::Uuid::now_v7().simple())
}

/// The export id of a fire: the same for every scheduler that fires it, so a second create
/// of the export fails and one fire makes one export.
pub fn run_export_id(tenant: &str, fire_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{tenant}\n{fire_key}").as_bytes());
    format!("exp_{}", &hex::encode(digest)[..32])
}

/// A run's record id: sorts by when the fire was due, newest last.
pub fn run_id(fire_key: &str, at: DateTime<Utc>) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(fire_key.as_bytes()));
    format!("run_{}_{}", at.format("%Y%m%dT%H%M%SZ"), &digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(body: Value) -> Vec<String> {
        ScheduleSpec::from_json(&body).unwrap_err().0.into_iter().map(|e| e.pointer).collect()
    }

    #[test]
    fn reads_a_schedule() {
        let s = ScheduleSpec::from_json(&json!({
            "name": "m", "cron": "0 6 2 * *", "timezone": "Europe/Vienna",
            "export": {"source": {}, "format": "csv", "time_range": {"column": "t"}},
            "window": {"type": "previous_month"}, "overlap": "queue_one", "timeout_secs": 600
        }))
        .unwrap();
        assert_eq!(s.window.as_ref().unwrap().column, "t");
        assert_eq!(s.overlap, Overlap::QueueOne);
        assert_eq!(s.missed, Missed::RunOnce);
        let doc = s.to_doc();
        assert_eq!(doc["window"], json!({"type": "previous_month", "column": "t"}));
        let again = ScheduleSpec::from_json(&doc).unwrap();
        assert_eq!(again.window, s.window);
    }

    #[test]
    fn every_bad_field_is_named() {
        let got = pointers(json!({"cron": "61 * * * *", "timezone": "Mars/Base", "export": 1, "overlap": "x", "missed": 2, "extra": 1}));
        assert_eq!(got, ["/extra", "/cron", "/timezone", "/export", "/overlap", "/missed"]);
        let got = pointers(json!({"cron": "daily", "timezone": "UTC", "export": {}, "window": {"type": "previous_day"}}));
        assert_eq!(got, ["/window/column"]);
        let got = pointers(json!({"cron": "daily", "timezone": "UTC", "export": {}, "window": {"type": "yesterday", "column": "t"}}));
        assert_eq!(got, ["/window/type"]);
        let got =
            pointers(json!({"cron": "daily", "timezone": "UTC", "export": {}, "window": {"type": "last_n_days", "n": 0, "column": "t"}}));
        assert_eq!(got, ["/window"]);
        let got = pointers(json!({"cron": "daily", "timezone": "UTC", "export": {},
            "window": {"type": "since_last_success", "column": "t", "initial": "yesterday"}}));
        assert_eq!(got, ["/window/initial"]);
        let got = pointers(json!({"cron": "daily", "timezone": "UTC", "export": {}, "overlap": "concurrent",
            "window": {"type": "since_last_success", "column": "t", "initial": "2026-01-01T00:00:00Z"}}));
        assert_eq!(got, ["/overlap"]);
    }

    #[test]
    fn run_ids_are_deterministic() {
        let a = run_export_id("acme", "sch_1/2026-03-29T02:30[Europe/Vienna]");
        assert_eq!(a, run_export_id("acme", "sch_1/2026-03-29T02:30[Europe/Vienna]"));
        assert_ne!(a, run_export_id("other", "sch_1/2026-03-29T02:30[Europe/Vienna]"));
        assert!(crate::model::ids::is_export_id(&a));
    }
}
