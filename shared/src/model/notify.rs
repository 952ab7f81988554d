//! Notifications: a signed webhook and/or an email when an export completes, fails or partly
//! fails. Set per export (`notifications`) or per tenant (settings); the export's own wins.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ValidationErrors;
use super::credential::is_credential_id;
use crate::deliver::net_guard::{self, AllowList};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Completed,
    Partial,
    Failed,
}

impl NotifyOn {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Completed => "completed",
            NotifyOn::Partial => "partial",
            NotifyOn::Failed => "failed",
        }
    }
}

fn default_on() -> Vec<NotifyOn> {
    vec![NotifyOn::Completed, NotifyOn::Partial, NotifyOn::Failed]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSpec {
    /// Which outcomes notify (default: all three).
    #[serde(default = "default_on")]
    pub on: Vec<NotifyOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookNotification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailNotification>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotification {
    pub url: String,
    /// A `webhook_secret` credential: the notification is signed like webhook deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailNotification {
    pub to: Vec<String>,
}

/// One notification of an export's run, as the export records it: claimed while one caller
/// sends it, done once it was sent or failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationMark {
    /// `webhook:<message id>` or `email:<message id>`.
    pub key: String,
    /// Set while a caller sends it: until then no other caller does. A claim left by a caller
    /// that stopped may be taken over after this time. Absent: done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A plausible single email address: no header-breaking characters, one `@`.
pub fn is_plain_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else { return false };
    a.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && a.chars().all(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')'))
}

/// An absolute http(s) URL without user info, at most 2,048 characters.
pub fn is_http_url(u: &str) -> bool {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    u.len() <= 2048
        && rest.is_some_and(|r| {
            let authority = r.split(['/', '?', '#']).next().unwrap_or_default();
            !authority.is_empty() && !authority.contains('@')
        })
        && !u.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl NotificationSpec {
    /// The outbound policy at create time, as for webhook destinations: a webhook URL whose host
    /// is an IP literal in a forbidden class (loopback, private, link-local, ...) is refused
    /// unless the tenant's `allow` list names it. Names are checked again where they resolve,
    /// when the notification is sent.
    pub fn check_outbound(&self, at: &str, allow: &AllowList, errs: &mut ValidationErrors) {
        if let Some(w) = &self.webhook
            && let Ok(u) = reqwest::Url::parse(&w.url)
            && let Err(g) = net_guard::check_url(allow, &u)
        {
            errs.push(format!("{at}/webhook/url"), net_guard::redact_url(&u), format!("a URL the outbound policy allows: {g}"));
        }
    }

    pub fn validate(&self, at: &str, errs: &mut ValidationErrors) {
        if self.on.is_empty() {
            errs.push(format!("{at}/on"), Value::Array(vec![]), "one or more of completed, partial, failed");
        }
        if self.webhook.is_none() && self.email.is_none() {
            errs.push(at.to_string(), Value::Null, "a `webhook` or an `email` (or both)");
        }
        if let Some(w) = &self.webhook {
            if !is_http_url(&w.url) {
                errs.push(format!("{at}/webhook/url"), w.url.as_str(), "an http or https URL without user info, at most 2,048 characters");
            }
            if let Some(c) = &w.secret_credential
                && !is_credential_id(c)
            {
                errs.push(format!("{at}/webhook/secret_credential"), c.as_str(), "a credential id (`cred_...`) of type webhook_secret");
            }
        }
        if let Some(e) = &self.email {
            if e.to.is_empty() || e.to.len() > 20 {
                errs.push(format!("{at}/email/to"), e.to.len(), "1 to 20 addresses");
            }
            for (i, a) in e.to.iter().enumerate() {
                if !is_plain_address(a) {
                    errs.push(format!("{at}/email/to/{i}"), a.as_str(), "one email address such as ops@example.com");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_urls() {
        assert!(is_plain_address("ops@example.com"));
        for bad in ["ops@example.com\r\nBcc: x@y.z", "a@b", "no-at", "a@b@c.d", "Ops <ops@example.com>"] {
            assert!(!is_plain_address(bad), "{bad:?}");
        }
        assert!(is_http_url("https://hooks.example.com/egress?x=1"));
        for bad in ["ftp://x", "https://user:pw@x.com/", "https:///path", "https://x.com/a b"] {
            assert!(!is_http_url(bad), "{bad:?}");
        }
    }

    #[test]
    fn forbidden_literal_addresses_are_refused_unless_allowed() {
        let spec: NotificationSpec =
            serde_json::from_value(serde_json::json!({"webhook": {"url": "http://127.0.0.1:9000/hook?token=t"}})).unwrap();
        let mut errs = ValidationErrors::new();
        spec.check_outbound("/notifications", &AllowList::empty(), &mut errs);
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].pointer, "/notifications/webhook/url");
        assert!(errs.0[0].allowed.contains("loopback"), "{}", errs.0[0].allowed);
        assert!(!errs.0[0].value.to_string().contains("token=t"), "the query is not echoed");
        let mut errs = ValidationErrors::new();
        spec.check_outbound("/notifications", &AllowList::new(["127.0.0.1:9000"]).unwrap(), &mut errs);
        assert!(errs.is_empty(), "{errs}");
    }
}
