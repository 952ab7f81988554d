//! Where an export's files go: a destination (download link, S3, GCS, Azure Blob, SFTP,
//! webhook, email) with its own config, how the delivered files are named, and how failed
//! attempts are retried.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ValidationErrors;
use crate::deliver::azure_blob::AzureBlobConfig;
use crate::deliver::email::EmailConfig;
use crate::deliver::gcs::GcsConfig;
use crate::deliver::s3::S3Config;
use crate::deliver::sftp::SftpConfig;
use crate::deliver::webhook::WebhookConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    /// A signed, expiring download link (`GET /v1/exports/{id}/download`).
    Download,
    S3(S3Config),
    Gcs(GcsConfig),
    AzureBlob(AzureBlobConfig),
    Sftp(SftpConfig),
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

pub const DESTINATION_TYPES: &str = "download, s3, gcs, azure_blob, sftp, webhook, email";

impl Destination {
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Download => "download",
            Destination::S3(_) => "s3",
            Destination::Gcs(_) => "gcs",
            Destination::AzureBlob(_) => "azure_blob",
            Destination::Sftp(_) => "sftp",
            Destination::Webhook(_) => "webhook",
            Destination::Email(_) => "email",
        }
    }
}

/// Retries of one destination: exponential backoff with full jitter between attempts, or the
/// remote's `Retry-After` when it says (capped at `max_delay_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 to 10; default 5).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The first wait's upper bound, in seconds (default 2).
    #[serde(default = "default_initial")]
    pub initial_delay_secs: f64,
    /// No wait is longer (default 120).
    #[serde(default = "default_max")]
    pub max_delay_secs: f64,
}

fn default_attempts() -> u32 {
    5
}
fn default_initial() -> f64 {
    2.0
}
fn default_max() -> f64 {
    120.0
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: default_attempts(), initial_delay_secs: default_initial(), max_delay_secs: default_max() }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): full jitter over the exponential bound,
    /// or the remote's own `retry_after`, never above `max_delay_secs`.
    pub fn delay(&self, attempt: u32, retry_after: Option<std::time::Duration>, jitter: f64) -> std::time::Duration {
        let secs = match retry_after {
            Some(d) => d.as_secs_f64(),
            None => {
                let bound = self.initial_delay_secs * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
                bound.min(self.max_delay_secs) * jitter.clamp(0.0, 1.0)
            }
        };
        std::time::Duration::from_secs_f64(secs.clamp(0.0, self.max_delay_secs))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationSpec {
    #[serde(flatten)]
    pub target: Destination,
    /// How the delivered files are named: a template with `{export_id}`, `{tenant}`,
    /// `{format}`, `{date}`, `{time}`, `{name}` (the file's own name), `{stem}` and `{ext}`
    /// ([`crate::deliver::filename`]). Default: the file's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The zone `{date}` and `{time}` are in (IANA, default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

impl DestinationSpec {
    pub fn download() -> Self {
        Self { target: Destination::Download, filename: None, timezone: None, retry: None }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry.unwrap_or_default()
    }

    /// Create-time checks of destination `i`.
    pub fn validate(&self, i: usize, errs: &mut ValidationErrors) {
        let at = format!("/destinations/{i}");
        match &self.target {
            Destination::Download => {}
            Destination::S3(c) => errs.extend(c.validate(&at).err().unwrap_or_default()),
            Destination::Gcs(c) => errs.extend(c.validate(&at).err().unwrap_or_default()),
            Destination::AzureBlob(c) => errs.extend(c.validate(&at).err().unwrap_or_default()),
            Destination::Sftp(c) => c.validate(&at, errs),
            Destination::Webhook(c) => c.validate(&at, errs),
            Destination::Email(c) => c.validate(&at, errs),
        }
        if let Some(t) = &self.filename
            && let Err(why) = crate::deliver::filename::check_template(t)
        {
            errs.push(format!("{at}/filename"), t.as_str(), why);
        }
        if let Some(z) = &self.timezone
            && z.parse::<chrono_tz::Tz>().is_err()
        {
            errs.push(format!("{at}/timezone"), z.as_str(), "an IANA time zone such as Europe/Vienna");
        }
        if let Some(r) = &self.retry {
            if !(1..=10).contains(&r.max_attempts) {
                errs.push(format!("{at}/retry/max_attempts"), r.max_attempts, "1 to 10");
            }
            if !(0.0..=600.0).contains(&r.initial_delay_secs) {
                errs.push(format!("{at}/retry/initial_delay_secs"), Value::from(r.initial_delay_secs), "0 to 600 seconds");
            }
            if !(0.0..=3600.0).contains(&r.max_delay_secs) {
                errs.push(format!("{at}/retry/max_delay_secs"), Value::from(r.max_delay_secs), "0 to 3600 seconds");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn destinations_parse_with_their_common_fields() {
        let d: DestinationSpec = serde_json::from_value(json!({
            "type": "sftp", "host": "sftp.example.com", "username": "u", "host_key": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "credential": "cred_0123", "filename": "{date}-{name}", "retry": {"max_attempts": 3}
        }))
        .unwrap();
        assert_eq!(d.target.kind(), "sftp");
        assert_eq!(d.filename.as_deref(), Some("{date}-{name}"));
        assert_eq!(d.retry_policy().max_attempts, 3);
        assert!(serde_json::from_value::<DestinationSpec>(json!({"type": "sftp", "host": "h", "bogus": 1})).is_err());
        let back = serde_json::to_value(&d).unwrap();
        assert_eq!(back["type"], "sftp");
        assert_eq!(serde_json::to_value(DestinationSpec::download()).unwrap(), json!({"type": "download"}));
    }

    #[test]
    fn backoff_is_bounded_and_follows_retry_after() {
        let p = RetryPolicy { max_attempts: 5, initial_delay_secs: 1.0, max_delay_secs: 10.0 };
        assert_eq!(p.delay(1, None, 1.0).as_secs_f64(), 1.0);
        assert_eq!(p.delay(3, None, 1.0).as_secs_f64(), 4.0);
        assert_eq!(p.delay(9, None, 1.0).as_secs_f64(), 10.0);
        assert_eq!(p.delay(3, None, 0.0).as_secs_f64(), 0.0);
        assert_eq!(p.delay(1, Some(std::time::Duration::from_secs(7)), 0.1).as_secs_f64(), 7.0);
        assert_eq!(p.delay(1, Some(std::time::Duration::from_secs(70)), 0.1).as_secs_f64(), 10.0);
    }
}
