//! The two channels: a signed webhook POST (through the outbound policy, with the tenant's
//! allowed hosts) and a plain-text email, each retried a few times on transient failures with
//! the destinations' backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::deliver::dispatch;
use crate::deliver::email::{self, EmailTransport, Notice};
use crate::deliver::net_guard::AllowList;
use crate::deliver::signing::WebhookSecret;
use crate::deliver::webhook::{self, SignedPost};
use crate::deliver::{DeliverError, Evidence};
use crate::kms::KeyService;
use crate::model::credential::CredentialSecret;
use crate::model::destination::RetryPolicy;
use crate::model::notify::{EmailNotification, WebhookNotification};
use crate::secrets::{SecretError, load_credential};
use crate::store::RecordStore;

/// Attempts and waits of a webhook notification: short, it runs inside a stage with a time limit.
pub const WEBHOOK_RETRY: RetryPolicy = RetryPolicy { max_attempts: 3, initial_delay_secs: 1.0, max_delay_secs: 5.0 };
/// Longest wait for a webhook receiver to make progress.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts and waits of an email notification.
pub const EMAIL_RETRY: RetryPolicy = RetryPolicy { max_attempts: 2, initial_delay_secs: 1.0, max_delay_secs: 5.0 };
/// Longest time for one email to be handed over.
pub const EMAIL_TIMEOUT: Duration = Duration::from_secs(15);

/// Run `attempt` until it succeeds, fails permanently, or `policy.max_attempts` are used up.
/// Returns the outcome and the attempts made.
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> (Result<T, DeliverError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DeliverError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Err(DeliverError::Transient { retry_after, .. }) if attempts < policy.max_attempts => {
                let wait = policy.delay(attempts, retry_after, rand::rng().random::<f64>());
                tokio::time::sleep(wait).await;
            }
            other => return (other, attempts),
        }
    }
}

/// The signing secret of a webhook notification, opened only for the send.
pub async fn webhook_secret(store: &dyn RecordStore, keys: &dyn KeyService, tenant: &str, id: &str) -> Result<WebhookSecret, DeliverError> {
    match load_credential(store, keys, tenant, id).await {
        Ok(CredentialSecret::WebhookSecret { secret }) => {
            WebhookSecret::parse(&secret).map_err(|e| DeliverError::permanent(format!("the credential `{id}`: {e}")))
        }
        Ok(other) => Err(DeliverError::permanent(format!(
            "the credential `{id}` is of type {}; a notification webhook needs webhook_secret",
            other.kind()
        ))),
        Err(SecretError::NotFound(_)) => Err(DeliverError::permanent(format!("the credential `{id}` does not exist (deleted?)"))),
        Err(SecretError::Corrupt(_)) => Err(DeliverError::permanent(format!("the credential `{id}` could not be opened"))),
        Err(e) => Err(DeliverError::transient(format!("the credential `{id}` could not be read now: {e}"))),
    }
}

/// POST the event, signed when there is a secret, with `webhook-id` = `message_id` on every
/// attempt. Evidence: the receiver's status and answer digest.
pub async fn webhook(
    cfg: &WebhookNotification,
    secret: Option<&WebhookSecret>,
    allow: &AllowList,
    message_id: &str,
    event: &Value,
) -> (Result<Evidence, DeliverError>, u32) {
    let headers = BTreeMap::new();
    let post = SignedPost { what: "notification", url: &cfg.url, message_id, headers: &headers, timeout: WEBHOOK_TIMEOUT };
    let (res, attempts) = with_retries(&WEBHOOK_RETRY, || webhook::post_signed_json(&post, event, secret, allow)).await;
    let res = res.map(|receipt| Evidence { location: String::new(), files: Vec::new(), details: receipt.to_map() });
    (res, attempts)
}

/// Send the email with the service's sender (`EGRESS_EMAIL_FROM` and SMTP or SES).
pub async fn email(cfg: &EmailNotification, subject: String, text: String, message_id: &str) -> (Result<Evidence, DeliverError>, u32) {
    let mut sender = match dispatch::email_sender().await {
        Ok(s) => s,
        Err(e) => return (Err(e), 0),
    };
    sender.timeout = EMAIL_TIMEOUT;
    if let EmailTransport::Smtp(s) = &mut sender.transport {
        s.timeout = EMAIL_TIMEOUT;
    }
    let notice = Notice { to: cfg.to.clone(), subject, text, message_id: message_id.to_string() };
    with_retries(&EMAIL_RETRY, || email::send_notice(&notice, &sender)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notification policy's attempts, without its waits.
    const NO_WAIT: RetryPolicy = RetryPolicy { initial_delay_secs: 0.0, max_delay_secs: 0.0, ..WEBHOOK_RETRY };

    #[tokio::test]
    async fn transient_failures_are_retried_up_to_the_limit_and_permanent_ones_not() {
        let mut calls = 0;
        let (res, attempts) = with_retries(&NO_WAIT, || {
            calls += 1;
            async { Err::<(), _>(DeliverError::transient("503")) }
        })
        .await;
        assert!(res.unwrap_err().is_transient());
        assert_eq!((attempts, calls), (3, 3));

        let mut calls = 0;
        let (res, attempts) = with_retries(&NO_WAIT, || {
            calls += 1;
            async { Err::<(), _>(DeliverError::permanent("404")) }
        })
        .await;
        assert!(!res.unwrap_err().is_transient());
        assert_eq!((attempts, calls), (1, 1));

        let mut calls = 0;
        let (res, attempts) = with_retries(&NO_WAIT, || {
            calls += 1;
            let n = calls;
            async move { if n < 2 { Err(DeliverError::transient("reset")) } else { Ok(n) } }
        })
        .await;
        assert_eq!((res.unwrap(), attempts), (2, 2));
    }
}
