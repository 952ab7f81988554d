//! Email delivery against a real SMTP server (aiosmtpd, tests/servers/smtp_server.py, storing a
//! Maildir) and against SES in moto; every delivered message is read back with Python's
//! `email` package (tests/readers/read_email.py): recipients, subject, attachments' SHA-256.

use crate::delivery;
use crate::moto;
use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use delivery::{PyServer, free_port, random_file, server_script};
use egress::deliver::email::{
    DownloadLink, EmailConfig, EmailMessage, EmailSender, EmailTransport, SesSettings, SmtpSecurity, SmtpSettings, deliver,
};
use egress::deliver::{DeliverError, Evidence, OutgoingFile};
use egress::model::validation::{ValidationErrors, from_json};
use serde_json::{Value, json};

const FROM: &str = "exports@egress.test";

fn start_smtp(maildir: &Path, extra: &[&str]) -> PyServer {
    let port = free_port();
    let mut args: Vec<String> = vec!["--port".into(), port.to_string(), "--maildir".into(), maildir.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    PyServer::start(&support::python(), &server_script("smtp_server.py"), port, &args)
}

fn smtp(port: u16) -> EmailSender {
    EmailSender {
        from: FROM.into(),
        transport: EmailTransport::Smtp(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            login: None,
            root_certificate_pem: None,
            timeout: Duration::from_secs(20),
        }),
        timeout: Duration::from_secs(60),
    }
}

fn config(extra: Value) -> EmailConfig {
    let mut v = json!({
        "to": ["ops@example.com", "Ana Analyst <ana@example.org>"],
        "cc": ["audit@example.com"],
        "bcc": ["archive@example.net"],
        "subject": "Export prêt: März numbers"
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    from_json(&v).unwrap()
}

/// Every message in the Maildir (or one raw file), as read by Python's `email` package.
fn read_mail(arg: &str, path: &Path) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/read_email.py");
    let out = Command::new(support::python()).arg(script).arg(arg).arg(path).output().expect("run read_email.py");
    assert!(out.status.success(), "read_email.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn files(dir: &Path) -> Vec<OutgoingFile> {
    vec![
        random_file(&dir.join("a"), "transactions.csv", 120_000, 1, "text/csv"),
        random_file(&dir.join("b"), "transactions.parquet", 300_001, 2, "application/vnd.apache.parquet"),
    ]
}

fn assert_permanent(r: &Result<Evidence, DeliverError>, needle: &str) -> String {
    match r {
        Err(e @ DeliverError::Permanent { .. }) => {
            let m = e.to_string();
            assert!(m.contains(needle), "expected {needle:?} in: {m}");
            m
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// The attachments of a read message must be exactly `files`, by name, type and SHA-256.
fn assert_attachments(msg: &Value, files: &[OutgoingFile]) {
    let atts = msg["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), files.len(), "{msg}");
    for (a, f) in atts.iter().zip(files) {
        assert_eq!(a["filename"], json!(f.remote_name));
        assert_eq!(a["content_type"], json!(f.content_type));
        assert_eq!(a["size"], json!(f.size));
        assert_eq!(a["sha256"], json!(f.sha256), "attachment {} bytes differ", f.remote_name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_attachments_to_every_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let server = start_smtp(&maildir, &[]);
    let files = files(dir.path());
    let cfg = config(json!({"body": "Monthly numbers attached."}));

    let ev = deliver(&cfg, &EmailMessage { files: files.clone(), links: vec![] }, &smtp(server.port)).await.expect("sent");

    let mail = read_mail("--maildir", &maildir);
    assert_eq!(mail.len(), 1);
    let m = &mail[0];
    let h = &m["headers"];
    assert_eq!(h["subject"], json!("Export prêt: März numbers"));
    assert_eq!(h["from"], json!(FROM));
    assert_eq!(h["to"], json!("ops@example.com, Ana Analyst <ana@example.org>"));
    assert_eq!(h["cc"], json!("audit@example.com"));
    assert!(h.get("bcc").is_none(), "Bcc must not travel in the headers: {h}");
    let rcpt = h["x-rcptto"].as_str().unwrap();
    for a in ["ops@example.com", "ana@example.org", "audit@example.com", "archive@example.net"] {
        assert!(rcpt.contains(a), "{a} not in the envelope: {rcpt}");
    }
    assert_eq!(h["message-id"], ev.details["message_id"]);
    assert!(ev.details["message_id"].as_str().unwrap().ends_with("@egress.test>"));
    assert!(ev.details["smtp_response"].as_str().unwrap().starts_with("250"), "{:?}", ev.details);
    assert_eq!(ev.details["recipients"], json!(4));
    assert_eq!(ev.location, "mailto:ops@example.com,Ana Analyst <ana@example.org>");
    assert_attachments(m, &files);
    let text = m["text"].as_str().unwrap();
    assert!(text.starts_with("Monthly numbers attached."), "{text}");
    for f in &files {
        assert!(text.contains(&f.sha256) && text.contains(&format!("{} ({} bytes)", f.remote_name, f.size)), "{text}");
    }
    for (e, f) in ev.files.iter().zip(&files) {
        assert_eq!(
            (e["name"].as_str(), e["sha256"].as_str(), e["mode"].as_str()),
            (Some(&*f.remote_name), Some(&*f.sha256), Some("attached"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_for_attachment_goes_as_links() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let server = start_smtp(&maildir, &[]);
    let files = files(dir.path());
    let cfg = config(json!({"max_attachment_bytes": 400_000}));
    let expires = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().to_utc();
    let links = files
        .iter()
        .map(|f| DownloadLink {
            name: f.remote_name.clone(),
            url: format!("https://dl.example.com/{}?X-Amz-Signature=s3cr3t-{}", f.remote_name, f.size),
            expires_at: expires,
        })
        .collect();

    let ev = deliver(&cfg, &EmailMessage { files: files.clone(), links }, &smtp(server.port)).await.expect("sent");

    let mail = read_mail("--maildir", &maildir);
    let m = &mail[0];
    assert_eq!(m["attachments"], json!([]));
    let text = m["text"].as_str().unwrap();
    for f in &files {
        assert!(text.contains(&format!("https://dl.example.com/{}?X-Amz-Signature=s3cr3t-{}", f.remote_name, f.size)), "{text}");
        assert!(text.contains(&f.sha256));
    }
    assert!(text.contains("valid until 2026-12-01 10:00 UTC"), "{text}");
    assert!(ev.files.iter().all(|e| e["mode"] == "link"));
    let receipt = format!("{:?} {:?}", ev.details, ev.files);
    assert!(!receipt.contains("s3cr3t"), "a signed URL reached the evidence: {receipt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_attach_too_large_fails_without_sending() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let server = start_smtp(&maildir, &[]);
    let cfg = config(json!({"attach": "always", "max_attachment_bytes": 400_000}));
    let r = deliver(&cfg, &EmailMessage { files: files(dir.path()), links: vec![] }, &smtp(server.port)).await;
    let m = assert_permanent(&r, "420001 bytes");
    assert!(m.contains("400000"), "{m}");
    assert!(read_mail("--maildir", &maildir).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_injection_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let server = start_smtp(&maildir, &[]);
    let attempts = [
        ("/subject", config(json!({"subject": "Report\r\nBcc: victim@evil.example"}))),
        ("/to/1", config(json!({"to": ["ops@example.com", "x@example.com\nBcc: victim@evil.example"]}))),
        ("/cc/0", config(json!({"cc": ["a@example.com\r\nX-Injected: 1"]}))),
        ("/bcc/0", config(json!({"bcc": ["a@example.com\0"]}))),
    ];
    for (pointer, cfg) in attempts {
        let mut errs = ValidationErrors::new();
        cfg.validate("", &mut errs);
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].pointer, pointer);
        assert!(errs.0[0].allowed.contains("header injection"), "{errs}");
        let r = deliver(&cfg, &EmailMessage { files: vec![], links: vec![] }, &smtp(server.port)).await;
        assert_permanent(&r, pointer);
    }
    assert!(read_mail("--maildir", &maildir).is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_are_classified_by_reply_code() {
    let dir = tempfile::tempdir().unwrap();
    let msg = EmailMessage { files: files(dir.path()), links: vec![] };

    let refusing = start_smtp(&dir.path().join("m1"), &["--reject", "550 5.7.1 Relaying denied"]);
    let r = deliver(&config(json!({})), &msg, &smtp(refusing.port)).await;
    assert_permanent(&r, "Relaying denied");

    let busy = start_smtp(&dir.path().join("m2"), &["--reject", "451 4.3.0 Try again later"]);
    let r = deliver(&config(json!({})), &msg, &smtp(busy.port)).await;
    match &r {
        Err(e @ DeliverError::Transient { .. }) => assert!(e.to_string().contains("Try again later"), "{e}"),
        other => panic!("451 is transient: {other:?}"),
    }

    // Nothing listening: a connection error, transient.
    let r = deliver(&config(json!({})), &msg, &smtp(free_port())).await;
    assert!(matches!(&r, Err(DeliverError::Transient { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_login_over_starttls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let tls_dir = dir.path().join("tls");
    let server = start_smtp(&maildir, &["--auth", "relay-user:relay-secret-pw", "--tls-dir", tls_dir.to_str().unwrap()]);
    let ca = std::fs::read_to_string(tls_dir.join("ca.pem")).unwrap();
    let sender = |password: &str| EmailSender {
        from: FROM.into(),
        transport: EmailTransport::Smtp(SmtpSettings {
            host: "127.0.0.1".into(),
            port: server.port,
            security: SmtpSecurity::Starttls,
            login: Some(("relay-user".into(), password.into())),
            root_certificate_pem: Some(ca.clone()),
            timeout: Duration::from_secs(20),
        }),
        timeout: Duration::from_secs(60),
    };
    let files = files(dir.path());
    let msg = EmailMessage { files: files.clone(), links: vec![] };

    let ev = deliver(&config(json!({})), &msg, &sender("relay-secret-pw")).await.expect("sent over STARTTLS");
    assert!(ev.details["smtp_response"].as_str().unwrap().starts_with("250"));
    let mail = read_mail("--maildir", &maildir);
    assert_eq!(mail.len(), 1);
    assert_attachments(&mail[0], &files);

    let wrong = "wrong-pw-never-logged";
    let r = deliver(&config(json!({})), &msg, &sender(wrong)).await;
    let m = assert_permanent(&r, "535");
    assert!(!m.contains(wrong), "{m}");
    let debug = format!("{:?}", sender(wrong));
    assert!(!debug.contains(wrong) && debug.contains("<redacted>"), "{debug}");

    // Without the private CA the relay's certificate is not trusted.
    let mut untrusting = sender("relay-secret-pw");
    if let EmailTransport::Smtp(s) = &mut untrusting.transport {
        s.root_certificate_pem = None;
    }
    assert!(deliver(&config(json!({})), &msg, &untrusting).await.is_err());
    assert_eq!(read_mail("--maildir", &maildir).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_sends_the_raw_message_through_moto() {
    let dir = tempfile::tempdir().unwrap();
    let moto = moto::Moto::start();
    let verify = format!(
        "import boto3; boto3.client('ses', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', \
         aws_secret_access_key='testing').verify_email_identity(EmailAddress='{FROM}')",
        moto.endpoint
    );
    let out = Command::new(moto::python()).args(["-c", &verify]).output().expect("run boto3");
    assert!(out.status.success(), "verify identity: {}", String::from_utf8_lossy(&out.stderr));
    let sender = |from: &str| EmailSender {
        from: from.into(),
        transport: EmailTransport::Ses(Box::new(SesSettings { config: moto.config(), configuration_set: None })),
        timeout: Duration::from_secs(60),
    };
    let files = files(dir.path());
    let cfg = config(json!({"to": ["ops@example.com"], "cc": [], "bcc": ["archive@example.net"]}));

    let ev = deliver(&cfg, &EmailMessage { files: files.clone(), links: vec![] }, &sender(FROM)).await.expect("sent through SES");
    let ses_id = ev.details["ses_message_id"].as_str().expect("SES message id").to_string();
    assert_eq!(ev.details["transport"], json!("ses"));

    let r = moto.get("/moto-api/data.json").unwrap();
    assert_eq!(r.status, 200);
    let data: Value = serde_json::from_slice(&r.body).unwrap();
    let raws = data["ses"]["RawMessage"].as_array().expect("ses.RawMessage in moto's data");
    assert_eq!(raws.len(), 1, "{raws:?}");
    let raw = &raws[0];
    assert_eq!(raw["id"], json!(ses_id));
    let destinations = raw["destinations"].to_string();
    assert!(destinations.contains("archive@example.net"), "bcc in the envelope: {destinations}");
    let raw_path = dir.path().join("raw.eml");
    std::fs::write(&raw_path, raw["raw_data"].as_str().unwrap()).unwrap();
    let mail = read_mail("--raw", &raw_path);
    assert_eq!(mail[0]["headers"]["subject"], json!("Export prêt: März numbers"));
    assert_eq!(mail[0]["headers"]["message-id"], ev.details["message_id"]);
    assert!(mail[0]["headers"].get("bcc").is_none());
    assert_attachments(&mail[0], &files);

    // An unverified sender: SES refuses the message, permanently.
    let r = deliver(&cfg, &EmailMessage { files, links: vec![] }, &sender("someone@unverified.test")).await;
    assert_permanent(&r, "MessageRejected");
}
