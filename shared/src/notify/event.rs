//! What a notification says: the JSON event a webhook receives and the text of the email, both
//! made from the stored export only, so that a retried stage sends the same event again.
//!
//! The event (`Content-Type: application/json`):
//!
//! ```json
//! {"type": "export.completed", "id": "exp_...-run-1-export-completed",
//!  "timestamp": "2026-11-01T00:00:09Z", "export_id": "exp_...", "tenant": "acme",
//!  "name": "flagged October", "status": "completed", "run": 1,
//!  "created_at": "...", "started_at": "...", "finished_at": "...",
//!  "rows": 12000, "bytes": 345678, "expires_at": "...",
//!  "files": [{"name", "size", "rows", "sha256", "content_type"}],
//!  "deliveries": [{"index", "type", "status", "location", "attempts", "delivered_at", "error"}],
//!  "error": {"code", "message"},
//!  "links": {"self": "/v1/exports/exp_...", "download": "/v1/exports/exp_.../download"}}
//! ```
//!
//! `type` is `export.completed`, `export.partial` or `export.failed`; `id` is also the
//! `webhook-id`. `files`, `bytes` and `expires_at` are there when the run produced files,
//! `deliveries` when it reached the destinations, `error` when it failed: the export's error,
//! or `DELIVERY_FAILED` when every destination failed. No credential and no signed download URL
//! is ever part of it (a delivery's `location` is the destination's address without query).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::model::notify::NotifyOn;
use crate::model::{Export, ExportStatus};

/// Error code of a run whose every destination failed (the export itself has no error then).
pub const DELIVERY_FAILED: &str = "DELIVERY_FAILED";
/// Longest export name quoted in a subject, in characters.
const SUBJECT_NAME_CHARS: usize = 100;
/// Longest error message quoted in an email, in characters.
const EMAIL_ERROR_CHARS: usize = 2_000;

/// How a run ended, for the outcomes that notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Partial,
    Failed,
}

impl Outcome {
    /// The outcome of a finished export; `None` while it runs, and when it was cancelled.
    pub fn of(status: ExportStatus) -> Option<Outcome> {
        match status {
            ExportStatus::Completed => Some(Outcome::Completed),
            ExportStatus::Partial => Some(Outcome::Partial),
            ExportStatus::Failed => Some(Outcome::Failed),
            _ => None,
        }
    }

    /// The event's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            Outcome::Completed => "export.completed",
            Outcome::Partial => "export.partial",
            Outcome::Failed => "export.failed",
        }
    }

    /// The `on` value that selects it.
    pub fn on(self) -> NotifyOn {
        match self {
            Outcome::Completed => NotifyOn::Completed,
            Outcome::Partial => NotifyOn::Partial,
            Outcome::Failed => NotifyOn::Failed,
        }
    }
}

/// The notification's id: the export, its run and the event type
/// (`exp_...-run-1-export-completed`). The same on every retry of a stage, so a receiver can
/// drop duplicates; another run (after `retry`) is another event with another id.
pub fn message_id(export: &Export, outcome: Outcome) -> String {
    format!("{}-run-{}-{}", export.id, export.run, outcome.event_type().replace('.', "-"))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// When the run ended (when it was last written, for a record that lacks it).
fn finished_at(export: &Export) -> DateTime<Utc> {
    export.finished_at.unwrap_or(export.updated_at)
}

/// The error a failed run reports: the export's own, else every destination failed.
fn error(export: &Export, outcome: Outcome) -> Option<(String, String)> {
    if outcome != Outcome::Failed {
        return None;
    }
    if let Some(e) = &export.error {
        return Some((e.code.clone(), e.message.clone()));
    }
    let n = export.result.as_ref().map_or(0, |r| r.deliveries.len());
    Some((DELIVERY_FAILED.to_string(), format!("all {n} destinations failed")))
}

/// The JSON event (see the module documentation).
pub fn event(export: &Export, outcome: Outcome) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(outcome.event_type()));
    m.insert("id".into(), json!(message_id(export, outcome)));
    m.insert("timestamp".into(), json!(time(finished_at(export))));
    m.insert("export_id".into(), json!(export.id));
    m.insert("tenant".into(), json!(export.tenant));
    m.insert("name".into(), json!(export.name));
    m.insert("status".into(), json!(export.status.as_str()));
    m.insert("run".into(), json!(export.run));
    m.insert("created_at".into(), json!(time(export.created_at)));
    if let Some(t) = export.started_at {
        m.insert("started_at".into(), json!(time(t)));
    }
    m.insert("finished_at".into(), json!(time(finished_at(export))));
    m.insert("rows".into(), json!(export.result.as_ref().map_or(export.progress.rows, |r| r.rows)));
    if let Some(r) = &export.result {
        m.insert("bytes".into(), json!(r.bytes));
        m.insert("expires_at".into(), json!(time(r.expires_at)));
        let files: Vec<Value> = r
            .files
            .iter()
            .map(|f| json!({"name": f.name, "size": f.size, "rows": f.rows, "sha256": f.sha256, "content_type": f.content_type}))
            .collect();
        m.insert("files".into(), Value::Array(files));
        let deliveries: Vec<Value> = r
            .deliveries
            .iter()
            .map(|d| {
                let mut o = Map::new();
                o.insert("index".into(), json!(d.index));
                o.insert("type".into(), json!(d.kind));
                o.insert("status".into(), json!(d.status));
                if let Some(l) = &d.location {
                    o.insert("location".into(), json!(l));
                }
                o.insert("attempts".into(), json!(d.attempts));
                o.insert("delivered_at".into(), json!(time(d.delivered_at)));
                if let Some(e) = &d.error {
                    o.insert("error".into(), json!(e));
                }
                Value::Object(o)
            })
            .collect();
        m.insert("deliveries".into(), Value::Array(deliveries));
    }
    if let Some((code, message)) = error(export, outcome) {
        m.insert("error".into(), json!({"code": code, "message": message}));
    }
    m.insert(
        "links".into(),
        json!({"self": format!("/v1/exports/{}", export.id), "download": format!("/v1/exports/{}/download", export.id)}),
    );
    Value::Object(m)
}

/// Text on one line: control characters (CR, LF, tabs, NUL) as spaces, at most `max`
/// characters (then `...`).
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.trim();
    if flat.chars().count() > max { format!("{}...", flat.chars().take(max).collect::<String>()) } else { flat.to_string() }
}

/// The email's subject: the export's name and the outcome.
pub fn email_subject(export: &Export, outcome: Outcome) -> String {
    let name = one_line(&export.name, SUBJECT_NAME_CHARS);
    match outcome {
        Outcome::Completed => format!("Export \"{name}\" completed"),
        Outcome::Partial => format!("Export \"{name}\" partly delivered"),
        Outcome::Failed => format!("Export \"{name}\" failed"),
    }
}

/// The email's text: the export, its outcome, files with SHA-256, each destination, the error.
pub fn email_text(export: &Export, outcome: Outcome) -> String {
    let mut t = String::new();
    let said = match outcome {
        Outcome::Completed => "completed",
        Outcome::Partial => "completed, but not every destination received it",
        Outcome::Failed => "failed",
    };
    let _ = writeln!(t, "The export \"{}\" ({}) {said}.\n", one_line(&export.name, 200), export.id);
    let _ = writeln!(t, "Status:   {}", export.status.as_str());
    let _ = writeln!(t, "Tenant:   {}", export.tenant);
    let _ = writeln!(t, "Finished: {}", finished_at(export).to_rfc3339_opts(SecondsFormat::Secs, true));
    let _ = writeln!(t, "Rows:     {}", export.result.as_ref().map_or(export.progress.rows, |r| r.rows));
    if let Some(r) = &export.result {
        let _ = writeln!(t, "Expires:  {}", r.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true));
        if !r.files.is_empty() {
            t.push_str("\nFiles:\n");
            for f in &r.files {
                let _ = writeln!(t, "- {} ({} bytes, {} rows)\n  SHA-256 {}", one_line(&f.name, 200), f.size, f.rows, f.sha256);
            }
        }
        if !r.deliveries.is_empty() {
            t.push_str("\nDestinations:\n");
            for d in &r.deliveries {
                let _ = write!(t, "- {} {}: {}", d.index, d.kind, d.status);
                if let Some(e) = &d.error {
                    let _ = write!(t, " ({})", one_line(e, EMAIL_ERROR_CHARS));
                }
                t.push('\n');
            }
        }
    }
    if let Some((code, message)) = error(export, outcome) {
        let _ = writeln!(t, "\nError: {code}\n{}", one_line(&message, EMAIL_ERROR_CHARS));
    }
    let _ = writeln!(t, "\nDetails: GET /v1/exports/{}", export.id);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivery, ExportError, ExportResult, ExportSpec, ResultFile};

    fn export(status: ExportStatus) -> Export {
        let spec: ExportSpec = crate::model::validation::from_json(&json!({
            "name": "flagged\r\nBcc: x@example.com October",
            "source": {"type": "inline", "rows": [{"a": 1}]},
            "format": "csv"
        }))
        .unwrap();
        let t = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut e = Export::new("exp_0192f3a1b2c37d4e8f90a1b2c3d4e5f6".into(), "acme".into(), "key_1".into(), spec, t);
        e.status = status;
        e.finished_at = Some(t + chrono::Duration::seconds(9));
        e
    }

    fn result(deliveries: &[&str]) -> ExportResult {
        let t = DateTime::parse_from_rfc3339("2026-11-01T00:00:08Z").unwrap().with_timezone(&Utc);
        ExportResult {
            files: vec![ResultFile {
                name: "a.csv".into(),
                size: 10,
                rows: 2,
                sha256: "ab".repeat(32),
                content_type: "text/csv".into(),
                key: "tenants/acme/exports/x/a.csv".into(),
                source_sha256: None,
            }],
            deliveries: deliveries
                .iter()
                .enumerate()
                .map(|(i, s)| Delivery {
                    index: i as u32,
                    kind: "webhook".into(),
                    status: s.to_string(),
                    location: Some("https://hooks.example.com/in".into()),
                    files: vec![],
                    delivered_at: t,
                    started_at: None,
                    attempts: 1,
                    error: (*s == "failed").then(|| "webhook url https://hooks.example.com/in answered 404".into()),
                    evidence: Some(json!({"details": {"webhook_id": "w"}})),
                })
                .collect(),
            rows: 2,
            bytes: 10,
            expires_at: t + chrono::Duration::days(7),
        }
    }

    #[test]
    fn the_id_names_export_run_and_type() {
        let mut e = export(ExportStatus::Completed);
        assert_eq!(message_id(&e, Outcome::Completed), "exp_0192f3a1b2c37d4e8f90a1b2c3d4e5f6-run-1-export-completed");
        e.run = 2;
        assert_eq!(message_id(&e, Outcome::Failed), "exp_0192f3a1b2c37d4e8f90a1b2c3d4e5f6-run-2-export-failed");
    }

    #[test]
    fn a_completed_event_lists_files_and_deliveries_without_evidence() {
        let mut e = export(ExportStatus::Completed);
        e.result = Some(result(&["delivered"]));
        let v = event(&e, Outcome::Completed);
        assert_eq!(v["type"], "export.completed");
        assert_eq!(v["timestamp"], "2026-11-01T00:00:09.000000Z");
        assert_eq!(v["rows"], 2);
        assert_eq!(v["files"][0], json!({"name": "a.csv", "size": 10, "rows": 2, "sha256": "ab".repeat(32), "content_type": "text/csv"}));
        assert_eq!(v["deliveries"][0]["status"], "delivered");
        assert!(v["deliveries"][0].get("evidence").is_none() && v.get("error").is_none(), "{v}");
        assert!(!v.to_string().contains("tenants/acme"), "no blob key: {v}");
        // The same export gives the same event.
        assert_eq!(v, event(&e, Outcome::Completed));
    }

    #[test]
    fn failed_events_carry_the_error() {
        let mut e = export(ExportStatus::Failed);
        e.error = Some(ExportError { code: "INVALID_SOURCE_DATA".into(), message: "row 3: \"1,5\"".into() });
        let v = event(&e, Outcome::Failed);
        assert_eq!(v["error"], json!({"code": "INVALID_SOURCE_DATA", "message": "row 3: \"1,5\""}));
        assert!(v.get("files").is_none());
        let mut e = export(ExportStatus::Failed);
        e.result = Some(result(&["failed", "failed"]));
        assert_eq!(event(&e, Outcome::Failed)["error"]["code"], DELIVERY_FAILED);
        assert!(email_text(&e, Outcome::Failed).contains("DELIVERY_FAILED"));
    }

    #[test]
    fn the_subject_is_one_line_naming_export_and_outcome() {
        let mut e = export(ExportStatus::Partial);
        e.result = Some(result(&["delivered", "failed"]));
        let s = email_subject(&e, Outcome::Partial);
        assert_eq!(s, "Export \"flagged  Bcc: x@example.com October\" partly delivered");
        e.name = "n".repeat(300);
        assert_eq!(email_subject(&e, Outcome::Completed).chars().count(), 100 + 3 + "Export \"\" completed".len());
        let text = email_text(&e, Outcome::Partial);
        assert!(text.contains("- 1 webhook: failed (webhook url https://hooks.example.com/in answered 404)"), "{text}");
        assert!(text.contains(&format!("SHA-256 {}", "ab".repeat(32))), "{text}");
    }
}
