//! Email destination: one message to the configured recipients, with the files attached when
//! they are small enough, else download links. Sent through SMTP (local host) or Amazon SES
//! (on AWS); the sender address is a setting of the service, never a tenant's choice.
//! [`send_notice`] sends a short text without files the same way (export notifications).
//!
//! Headers cannot be injected: every address and the subject are refused at create time (and
//! again before sending) when they hold CR, LF or NUL, and the message is built with lettre's
//! builder, which encodes header values.

mod message;
mod transport;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

pub use transport::{EmailTransport, SesSettings, SmtpSecurity, SmtpSettings};

/// Largest `max_attachment_bytes` (most providers refuse messages much above 25 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// Default `max_attachment_bytes`.
pub const DEFAULT_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Recipients per list, and in all (SES sends to at most 50 per message).
pub const MAX_RECIPIENTS: usize = 50;
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 20_000;

/// Recipients and wording: the `email` destination of an export spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients (1 to 50 addresses: `a@example.com` or `Name <a@example.com>`).
    pub to: Vec<String>,
    /// Copy recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Blind copy recipients (never in the message's headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    /// Subject line, at most 200 characters (templates are expanded before it gets here).
    pub subject: String,
    /// Text shown above the list of files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Attach the files, or send download links (default `auto`).
    #[serde(default)]
    pub attach: AttachPolicy,
    /// Largest total size of attachments (default 10 MiB, at most 25 MiB).
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
}

fn default_max_attachment_bytes() -> u64 {
    DEFAULT_ATTACHMENT_BYTES
}

/// Whether files travel inside the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachPolicy {
    /// Attach when the files together fit `max_attachment_bytes`, else links.
    #[default]
    Auto,
    /// Always attach; files too large fail the delivery.
    Always,
    /// Never attach; always links.
    Link,
}

/// How one delivery carries its files, decided by [`EmailConfig::attachment_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentMode {
    /// The files are attachments.
    Attached,
    /// The message holds download links (the caller supplies them in [`EmailMessage::links`]).
    Links,
}

impl AttachmentMode {
    fn as_str(self) -> &'static str {
        match self {
            AttachmentMode::Attached => "attached",
            AttachmentMode::Links => "link",
        }
    }
}

impl EmailConfig {
    /// Create-time checks; every problem is pushed to `errs` under `pointer_prefix` (the JSON
    /// pointer of this destination, e.g. `/destinations/1`).
    pub fn validate(&self, pointer_prefix: &str, errs: &mut ValidationErrors) {
        let p = |field: &str| format!("{pointer_prefix}/{field}");
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            errs.push(p("to"), json!(self.to), "1 to 50 addresses");
        }
        for (field, list) in [("cc", &self.cc), ("bcc", &self.bcc)] {
            if list.len() > MAX_RECIPIENTS {
                errs.push(p(field), list.len(), "at most 50 addresses");
            }
        }
        let total = self.to.len() + self.cc.len() + self.bcc.len();
        if total > MAX_RECIPIENTS && self.to.len() <= MAX_RECIPIENTS {
            errs.push(p("to"), total, "at most 50 recipients in `to`, `cc` and `bcc` together");
        }
        for (field, list) in [("to", &self.to), ("cc", &self.cc), ("bcc", &self.bcc)] {
            for (i, address) in list.iter().enumerate() {
                if has_line_break(address) {
                    errs.push(format!("{}/{i}", p(field)), address.as_str(), "an address without CR, LF or NUL (header injection)");
                } else if address.parse::<lettre::message::Mailbox>().is_err() {
                    errs.push(format!("{}/{i}", p(field)), address.as_str(), "an email address: `a@example.com` or `Name <a@example.com>`");
                }
            }
        }
        if has_line_break(&self.subject) {
            errs.push(p("subject"), self.subject.as_str(), "a subject without CR, LF or NUL (header injection)");
        } else if self.subject.trim().is_empty() || self.subject.chars().count() > MAX_SUBJECT_CHARS {
            errs.push(p("subject"), self.subject.as_str(), "1 to 200 characters, not blank");
        }
        if let Some(body) = &self.body
            && (body.contains('\0') || body.chars().count() > MAX_BODY_CHARS)
        {
            errs.push(p("body"), body.as_str(), "text of at most 20,000 characters without NUL");
        }
        if self.max_attachment_bytes == 0 || self.max_attachment_bytes > MAX_ATTACHMENT_BYTES {
            errs.push(p("max_attachment_bytes"), self.max_attachment_bytes, format!("bytes from 1 to {MAX_ATTACHMENT_BYTES} (25 MiB)"));
        }
    }

    /// Attach or link `files`? `Permanent` when `attach` is `always` and they are too large.
    pub fn attachment_mode(&self, files: &[OutgoingFile]) -> Result<AttachmentMode, DeliverError> {
        let total: u64 = files.iter().map(|f| f.size).sum();
        let fits = total <= self.max_attachment_bytes;
        match self.attach {
            AttachPolicy::Link => Ok(AttachmentMode::Links),
            AttachPolicy::Auto if fits => Ok(AttachmentMode::Attached),
            AttachPolicy::Auto => Ok(AttachmentMode::Links),
            AttachPolicy::Always if fits => Ok(AttachmentMode::Attached),
            AttachPolicy::Always => Err(DeliverError::permanent(format!(
                "email: the files total {total} bytes, over max_attachment_bytes {} (attach is `always`; use `auto` to send links instead)",
                self.max_attachment_bytes
            ))),
        }
    }
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n', '\0'])
}

/// A download link for one file, made by the caller (a signed URL) when the files go as links.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadLink {
    /// The file's `remote_name`.
    pub name: String,
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for DownloadLink {
    // A signed URL's query is a bearer credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.url.split_once('?') {
            Some((base, _)) => format!("{base}?<redacted>"),
            None => self.url.clone(),
        };
        f.debug_struct("DownloadLink").field("name", &self.name).field("url", &shown).field("expires_at", &self.expires_at).finish()
    }
}

/// What one message carries.
#[derive(Debug, Clone, Default)]
pub struct EmailMessage {
    pub files: Vec<OutgoingFile>,
    /// One link per file, needed when [`EmailConfig::attachment_mode`] says `Links`.
    pub links: Vec<DownloadLink>,
}

/// The sending side: a setting of the service (`EGRESS_EMAIL_FROM` and the transport).
#[derive(Debug, Clone)]
pub struct EmailSender {
    /// The `From` address.
    pub from: String,
    pub transport: EmailTransport,
    /// Time limit of the whole send.
    pub timeout: Duration,
}

/// Build the message and send it. Evidence: the Message-ID header set here, the SMTP reply or
/// the SES message id, the number of recipients, and per file whether it was attached or
/// linked (never the link itself: a signed URL is a credential).
pub async fn deliver(cfg: &EmailConfig, message: &EmailMessage, sender: &EmailSender) -> Result<Evidence, DeliverError> {
    let mut errs = ValidationErrors::new();
    cfg.validate("", &mut errs);
    if !errs.is_empty() {
        return Err(DeliverError::permanent(format!("invalid email destination: {errs}")));
    }
    let mode = cfg.attachment_mode(&message.files)?;
    let built = message::build(cfg, message, mode, &sender.from).await?;
    let message_id = built.message_id;
    // The message moves into the transport: an attachment is held once, encoded.
    let sent = tokio::time::timeout(sender.timeout, transport::send(&sender.transport, built.message, cfg, &sender.from))
        .await
        .map_err(|_| DeliverError::transient(format!("email: not sent within {} s", sender.timeout.as_secs_f64())))??;

    let mut details = Map::new();
    details.insert("message_id".into(), json!(message_id));
    details.insert("recipients".into(), json!(cfg.to.len() + cfg.cc.len() + cfg.bcc.len()));
    details.insert("transport".into(), json!(sent.transport));
    for (k, v) in sent.details {
        details.insert(k, v);
    }
    let files = message
        .files
        .iter()
        .map(|f| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(f.remote_name.clone()));
            m.insert("size".into(), json!(f.size));
            m.insert("sha256".into(), json!(f.sha256));
            m.insert("mode".into(), json!(mode.as_str()));
            m
        })
        .collect();
    Ok(Evidence { location: format!("mailto:{}", cfg.to.join(",")), files, details })
}

/// A short plain-text message with no files (export notifications), from the service's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Recipients, each a plain address or `Name <address>`.
    pub to: Vec<String>,
    /// Subject line: at most 200 characters, no CR, LF or NUL.
    pub subject: String,
    pub text: String,
    /// The `Message-ID` without angle brackets and domain (letters, digits, `_`, `-`, `.`):
    /// the same notice sent twice carries the same id, so mail systems can drop the copy.
    pub message_id: String,
}

/// Send a [`Notice`], checked like a destination's message (header injection, addresses,
/// subject length). Evidence as [`deliver`]'s, without files.
pub async fn send_notice(notice: &Notice, sender: &EmailSender) -> Result<Evidence, DeliverError> {
    let cfg = EmailConfig {
        to: notice.to.clone(),
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: notice.subject.clone(),
        body: Some(notice.text.clone()),
        attach: AttachPolicy::Link,
        max_attachment_bytes: DEFAULT_ATTACHMENT_BYTES,
    };
    let mut errs = ValidationErrors::new();
    cfg.validate("", &mut errs);
    if !errs.is_empty() {
        return Err(DeliverError::permanent(format!("invalid email notice: {errs}")));
    }
    let built = message::build_notice(&cfg, &notice.message_id, &sender.from)?;
    let message_id = built.message_id;
    let sent = tokio::time::timeout(sender.timeout, transport::send(&sender.transport, built.message, &cfg, &sender.from))
        .await
        .map_err(|_| DeliverError::transient(format!("email: not sent within {} s", sender.timeout.as_secs_f64())))??;
    let mut details = Map::new();
    details.insert("message_id".into(), json!(message_id));
    details.insert("recipients".into(), json!(cfg.to.len()));
    details.insert("transport".into(), json!(sent.transport));
    details.extend(sent.details);
    Ok(Evidence { location: format!("mailto:{}", cfg.to.join(",")), files: Vec::new(), details })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validation::from_json;

    fn config() -> EmailConfig {
        from_json(&json!({"to": ["ops@example.com", "Ana <ana@example.org>"], "subject": "Export ready"})).unwrap()
    }

    fn file(size: u64) -> OutgoingFile {
        OutgoingFile {
            remote_name: "a.csv".into(),
            path: "/nonexistent".into(),
            size,
            sha256: "00".repeat(32),
            content_type: "text/csv".into(),
        }
    }

    #[test]
    fn defaults_apply_and_validate() {
        let c = config();
        assert_eq!((c.attach, c.max_attachment_bytes), (AttachPolicy::Auto, 10 * 1024 * 1024));
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/1", &mut errs);
        assert!(errs.is_empty(), "{errs}");
    }

    #[test]
    fn header_injection_is_refused_naming_field_and_value() {
        let mut c = config();
        c.subject = "hi\r\nBcc: victim@example.com".into();
        c.cc = vec!["a@example.com\nBcc: x@example.com".into()];
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/1", &mut errs);
        assert_eq!(errs.0.len(), 2, "{errs}");
        assert_eq!(errs.0[0].pointer, "/destinations/1/cc/0");
        assert_eq!(errs.0[1].pointer, "/destinations/1/subject");
        assert_eq!(errs.0[1].value, json!("hi\r\nBcc: victim@example.com"));
        assert!(errs.0[1].allowed.contains("header injection"));
    }

    #[test]
    fn bad_addresses_and_limits_are_refused() {
        let mut c = config();
        c.to = vec!["not an address".into()];
        c.bcc = (0..51).map(|i| format!("u{i}@example.com")).collect();
        c.max_attachment_bytes = 26 * 1024 * 1024;
        c.subject = "x".repeat(201);
        let mut errs = ValidationErrors::new();
        c.validate("", &mut errs);
        let pointers: Vec<&str> = errs.0.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/to/0") && pointers.contains(&"/bcc") && pointers.contains(&"/subject"), "{pointers:?}");
        assert!(pointers.contains(&"/max_attachment_bytes"), "{pointers:?}");
        c.to.clear();
        let mut errs = ValidationErrors::new();
        c.validate("", &mut errs);
        assert_eq!(errs.0[0].pointer, "/to");
    }

    #[test]
    fn attachment_mode_follows_policy_and_size() {
        let mut c = config();
        c.max_attachment_bytes = 100;
        assert_eq!(c.attachment_mode(&[file(60), file(40)]).unwrap(), AttachmentMode::Attached);
        assert_eq!(c.attachment_mode(&[file(60), file(41)]).unwrap(), AttachmentMode::Links);
        c.attach = AttachPolicy::Link;
        assert_eq!(c.attachment_mode(&[file(1)]).unwrap(), AttachmentMode::Links);
        c.attach = AttachPolicy::Always;
        let err = c.attachment_mode(&[file(101)]).unwrap_err();
        assert!(!err.is_transient() && err.to_string().contains("101 bytes") && err.to_string().contains("100"), "{err}");
    }

    #[test]
    fn link_debug_hides_the_signature() {
        let l = DownloadLink { name: "a".into(), url: "https://x/a?X-Amz-Signature=secret".into(), expires_at: chrono::Utc::now() };
        let d = format!("{l:?}");
        assert!(!d.contains("secret") && d.contains("https://x/a?<redacted>"), "{d}");
    }
}
