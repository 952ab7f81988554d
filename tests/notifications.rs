//! Export notifications through the whole service: the real `egress serve` with a real SMTP
//! server (aiosmtpd, tests/servers/smtp_server.py, read back with Python's `email` package) and
//! a webhook receiver that checks Standard Webhooks signatures with its own HMAC. A completed
//! export sends a signed `export.completed` event and an email; a failing export sends
//! `export.failed` with its error code through the tenant's default; a receiver answering 500
//! is retried, audited as failed, and leaves the export completed.

use crate::delivery;
use crate::support;
use crate::webhook_receiver;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use delivery::{PyServer, free_port, server_script};
use serde_json::{Value, json};
use support::Server;
use webhook_receiver::{Receiver, Reply, base64};

const KEY: [u8; 32] = *b"egress-notification-webhook-key!";
const FROM: &str = "exports@egress.test";

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: Server,
    token: String,
    maildir: PathBuf,
    _smtp: PyServer,
    _dir: tempfile::TempDir,
}

/// `egress serve` sending email through a fresh SMTP server, and an admin key of tenant `acme`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp_port = free_port();
    let args: Vec<String> = vec!["--port".into(), smtp_port.to_string(), "--maildir".into(), maildir.display().to_string()];
    let smtp = PyServer::start(&support::python(), &server_script("smtp_server.py"), smtp_port, &args);
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let port = smtp_port.to_string();
    let env = [
        ("EGRESS_EMAIL_FROM", FROM),
        ("EGRESS_SMTP_HOST", "127.0.0.1"),
        ("EGRESS_SMTP_PORT", port.as_str()),
        ("EGRESS_SMTP_SECURITY", "none"),
    ];
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with_env(&dir.path().join("data"), &datasets, &addr, &[], &env);
    let token = server.key("acme", "exports:admin");
    Fixture { rt: tokio::runtime::Runtime::new().unwrap(), server, token, maildir, _smtp: smtp, _dir: dir }
}

impl Fixture {
    fn receiver(&self, key: Option<&[u8]>, script: Vec<Reply>) -> Receiver {
        self.rt.block_on(Receiver::start(key, script))
    }

    /// Replace the tenant's settings: the receiver's address allowed, and a default.
    fn settings(&self, rx: &Receiver, notifications: Option<Value>) {
        let mut body = json!({"allowed_hosts": [rx.addr.to_string()]});
        if let Some(n) = notifications {
            body["notifications"] = n;
        }
        let r = self.server.req("PUT", "/v1/settings", Some(&self.token), Some(&body));
        assert_eq!(r.status, 200, "{}", r.text());
    }

    fn webhook_credential(&self) -> String {
        let body = json!({"name": "notify", "secret": {"type": "webhook_secret", "secret": format!("whsec_{}", base64(&KEY))}});
        let r = self.server.req("POST", "/v1/credentials", Some(&self.token), Some(&body));
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// The export's audit events with this action.
    fn audit(&self, export_id: &str, action: &str) -> Vec<Value> {
        let r = self.server.req("GET", &format!("/v1/audit?target={export_id}&action={action}&limit=100"), Some(&self.token), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    }

    /// Wait (at most 60 s) until the export has `n` audit events with this action.
    fn wait_audit(&self, export_id: &str, action: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events = self.audit(export_id, action);
            if events.len() >= n {
                return events;
            }
            assert!(Instant::now() < deadline, "{n} `{action}` events expected for {export_id}, got {events:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn mail(&self) -> Vec<Value> {
        read_mail(&self.maildir)
    }
}

/// Every message in the Maildir, as read by Python's `email` package.
fn read_mail(maildir: &Path) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/read_email.py");
    let out = Command::new(support::python()).arg(script).arg("--maildir").arg(maildir).output().expect("run read_email.py");
    assert!(out.status.success(), "read_email.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn micros(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc).timestamp_micros()
}

fn inline(rows: usize) -> Value {
    let rows: Vec<Value> = (0..rows).map(|i| json!({"id": i, "memo": format!("row {i}")})).collect();
    json!({"source": {"type": "inline", "rows": rows}, "format": "csv"})
}

/// An inline export whose cast fails on its third row (`"1,5"` is no decimal).
fn failing() -> Value {
    let rows: Vec<Value> = ["12.50", "7", "1,5"].iter().enumerate().map(|(i, a)| json!({"id": i, "amount_text": a})).collect();
    json!({
        "name": "amounts",
        "source": {"type": "inline", "rows": rows},
        "fields": [{"name": "id", "from": "id"}, {"name": "amount", "from": "amount_text", "cast": {"to": "decimal(18,2)"}}],
        "format": "csv"
    })
}

#[test]
fn a_completed_export_sends_a_signed_event_and_an_email() {
    let f = fixture();
    let rx = f.receiver(Some(&KEY), vec![]);
    f.settings(&rx, None);
    let cred = f.webhook_credential();
    let mut spec = inline(3);
    spec["name"] = json!("Flagged October");
    spec["notifications"] = json!({
        "webhook": {"url": rx.url("/notify?token=n-123"), "secret_credential": cred},
        "email": {"to": ["ops@example.com", "ana@example.org"]}
    });
    let export = f.server.export(&f.token, &spec);
    assert_eq!(export["status"], "completed", "{export}");
    let id = export["id"].as_str().unwrap();
    let message_id = format!("{id}-run-1-export-completed");

    let sent = f.wait_audit(id, "export.notification.sent", 2);
    let mut request_ids: Vec<&str> = sent.iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    request_ids.sort();
    assert_eq!(request_ids, [format!("email:{message_id}"), format!("webhook:{message_id}")]);
    assert!(sent.iter().all(|e| e["outcome"] == "success" && e["actor"] == "system"), "{sent:?}");
    assert!(f.audit(id, "export.notification.failed").is_empty());

    // The webhook: one signed POST with the event.
    let requests = rx.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/notify?token=n-123"));
    assert_eq!(r.signature_valid, Some(true), "signed with the stored secret");
    assert_eq!(r.header("webhook-id"), Some(message_id.as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let event: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(event["type"], "export.completed", "{event}");
    assert_eq!(event["id"], json!(message_id));
    assert_eq!((event["export_id"].as_str(), event["tenant"].as_str()), (Some(id), Some("acme")));
    assert_eq!(
        (event["name"].as_str(), event["status"].as_str(), event["run"].as_u64()),
        (Some("Flagged October"), Some("completed"), Some(1))
    );
    assert_eq!(event["rows"], 3);
    assert_eq!(micros(&event["finished_at"]), micros(&export["finished_at"]));
    assert_eq!(micros(&event["created_at"]), micros(&export["created_at"]));
    let file = &export["result"]["files"][0];
    assert_eq!(
        event["files"],
        json!([{"name": file["name"], "size": file["size"], "rows": 3, "sha256": file["sha256"], "content_type": file["content_type"]}])
    );
    assert_eq!(event["deliveries"][0]["type"], "download");
    assert_eq!(event["deliveries"][0]["status"], "delivered");
    assert!(event.get("error").is_none(), "{event}");
    let text = String::from_utf8_lossy(&r.body);
    for secret_or_link in [base64(&KEY).as_str(), "whsec_", "sig=", "/v1/files/", "tenants/acme"] {
        assert!(!text.contains(secret_or_link), "{secret_or_link:?} in the event: {text}");
    }

    // The email, read from the SMTP server's Maildir.
    let mail = f.mail();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let h = &mail[0]["headers"];
    assert_eq!(h["subject"], "Export \"Flagged October\" completed");
    assert_eq!(h["from"], FROM);
    assert_eq!(h["to"], "ops@example.com, ana@example.org");
    assert_eq!(h["message-id"], json!(format!("<{message_id}@egress.test>")));
    let body = mail[0]["text"].as_str().unwrap();
    assert!(body.contains(id) && body.contains(file["sha256"].as_str().unwrap()), "{body}");
    assert!(body.contains("Status:   completed") && body.contains("- 0 download: delivered"), "{body}");
    assert!(mail[0]["attachments"].as_array().unwrap().is_empty());

    // The export does not show what it recorded about its notifications.
    let again = f.server.req("GET", &format!("/v1/exports/{id}"), Some(&f.token), None).json();
    assert!(again.get("notified").is_none(), "{again}");
    assert_eq!(again["status"], "completed");
}

#[test]
fn a_failed_export_notifies_through_the_tenant_default_with_its_error_code() {
    let f = fixture();
    let rx = f.receiver(None, vec![]);
    f.settings(&rx, Some(json!({"on": ["failed"], "webhook": {"url": rx.url("/failures")}, "email": {"to": ["oncall@example.com"]}})));

    // Completed: the default only notifies failures.
    let ok = f.server.export(&f.token, &inline(2));
    assert_eq!(ok["status"], "completed", "{ok}");

    let export = f.server.export(&f.token, &failing());
    assert_eq!(export["status"], "failed", "{export}");
    assert_eq!(export["error"]["code"], "INVALID_SOURCE_DATA", "{export}");
    let id = export["id"].as_str().unwrap();
    let message_id = format!("{id}-run-1-export-failed");
    f.wait_audit(id, "export.notification.sent", 2);

    // RecordFailure runs twice for a failed chunk (the chunk's Catch and the run's): one event.
    let requests = rx.requests();
    assert_eq!(requests.len(), 1, "only the failure notifies, once: {requests:?}");
    let r = &requests[0];
    assert_eq!(r.path, "/failures");
    assert_eq!(r.header("webhook-id"), Some(message_id.as_str()));
    assert!(r.header("webhook-timestamp").is_some());
    assert_eq!(r.header("webhook-signature"), None, "no secret, no signature");
    let event: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((event["type"].as_str(), event["status"].as_str()), (Some("export.failed"), Some("failed")), "{event}");
    assert_eq!(event["error"]["code"], "INVALID_SOURCE_DATA");
    assert_eq!(event["error"]["message"], export["error"]["message"]);
    assert!(event["error"]["message"].as_str().unwrap().contains("\"1,5\""), "{event}");
    assert!(event.get("files").is_none(), "a failed run has no files: {event}");

    let mail = f.mail();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["headers"]["subject"], "Export \"amounts\" failed");
    assert_eq!(mail[0]["headers"]["to"], "oncall@example.com");
    let body = mail[0]["text"].as_str().unwrap();
    assert!(body.contains("Error: INVALID_SOURCE_DATA") && body.contains(id), "{body}");
    assert!(f.audit(ok["id"].as_str().unwrap(), "export.notification.*").is_empty());
}

#[test]
fn a_receiver_answering_500_is_retried_audited_and_leaves_the_export_completed() {
    let f = fixture();
    let rx = f.receiver(Some(&KEY), (0..5).map(|_| Reply::status(500, "down for maintenance")).collect());
    // The tenant's default emails; the export's own notifications replace it.
    f.settings(&rx, Some(json!({"email": {"to": ["default@example.com"]}})));

    // A forbidden address is refused when the export is created, naming the field.
    let mut spec = inline(1);
    spec["notifications"] = json!({"webhook": {"url": "http://169.254.169.254/latest/meta-data/"}});
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&spec));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["pointer"], "/notifications/webhook/url", "{}", r.text());

    spec["notifications"] = json!({"webhook": {"url": rx.url("/hook")}});
    let export = f.server.export(&f.token, &spec);
    assert_eq!(export["status"], "completed", "{export}");
    let id = export["id"].as_str().unwrap();
    let failed = f.wait_audit(id, "export.notification.failed", 1);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "failed");
    assert_eq!(failed[0]["request_id"], json!(format!("webhook:{id}-run-1-export-completed")));
    assert!(f.audit(id, "export.notification.sent").is_empty());

    let requests = rx.requests();
    assert_eq!(requests.len(), 3, "three attempts: {requests:?}");
    assert!(requests.iter().all(|r| r.header("webhook-id") == requests[0].header("webhook-id")), "one id on every attempt");
    assert!(requests.iter().all(|r| r.header("webhook-signature").is_none()), "unsigned without a secret");

    let again = f.server.req("GET", &format!("/v1/exports/{id}"), Some(&f.token), None).json();
    assert_eq!(again["status"], "completed", "{again}");
    assert!(again.get("error").is_none(), "{again}");
    assert!(f.mail().is_empty(), "the tenant's default is not used when the export has its own");
}
