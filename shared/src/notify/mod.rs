//! Export notifications: when a run ends `completed`, `partial` or `failed`, a signed webhook
//! and/or a short email, as the export's `notifications` say, else the tenant's default
//! (`notifications` in its settings). The export's own setting replaces the default whole.
//!
//! - Webhook: the JSON event of [`event`] POSTed with the Standard Webhooks headers of webhook
//!   deliveries ([`crate::deliver::signing`]): `webhook-id` is the event's `id`, derived from the
//!   export, its run and the event type, so a stage that runs again sends the same id;
//!   `webhook-signature` when `secret_credential` names a `webhook_secret`. It goes through the
//!   outbound policy with the tenant's `allowed_hosts`, and transient failures (timeouts, 408,
//!   429, 5xx) are retried a few times.
//! - Email: a plain-text summary from the service's sender, with a `Message-ID` derived the
//!   same way, checked like email deliveries (no header injection).
//!
//! A notification never changes the export's outcome. Each channel's result is audited as
//! `export.notification.sent` or `export.notification.failed` (target: the export; request
//! id: `webhook:<id>` or `email:<id>`) and logged, without secrets. Once a channel is done
//! (sent, or failed for good) the export records it, and a retried RecordReceipt or
//! RecordFailure does not send it again; if the stage stops between sending and recording, the
//! same ids let the receiver drop the copy.

pub mod event;
pub mod send;

use std::time::Duration;

use crate::deliver::DeliverError;
use crate::deliver::net_guard::AllowList;
use crate::kms::KeyService;
use crate::model::Export;
use crate::model::notify::NotificationSpec;
use crate::store::{JobStore, UpdateError, update_export};

pub use event::Outcome;

/// Longest time all notifications of one export may take together (the recording stages have
/// a time limit of 60 s).
pub const BUDGET: Duration = Duration::from_secs(40);

/// A way a notification goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Webhook,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        }
    }

    /// What the export records once this channel is done, and the audit event's request id.
    pub fn key(self, message_id: &str) -> String {
        format!("{}:{message_id}", self.as_str())
    }
}

/// What happened to one notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notified {
    pub channel: Channel,
    /// The event's id (`webhook-id`; the email's Message-ID before its `@`).
    pub message_id: String,
    pub attempts: u32,
    /// `Err` with the reason (never a secret) when it was not sent.
    pub result: Result<(), String>,
}

/// Which notifications apply to an export: its own, else the tenant's default.
pub fn applicable<'a>(export: &'a Export, tenant_default: Option<&'a NotificationSpec>) -> Option<&'a NotificationSpec> {
    export.spec.notifications.as_ref().or(tenant_default)
}

/// Send the notifications of a finished export (stored, with its final status), each channel
/// at most once per run; see the module documentation. Returns what was attempted now (empty
/// when nothing applies or everything was already done).
pub async fn export_finished(store: &dyn JobStore, keys: &dyn KeyService, export: &Export) -> Vec<Notified> {
    let Some(outcome) = Outcome::of(export.status) else { return Vec::new() };
    let (export_id, tenant) = (export.id.as_str(), export.tenant.as_str());
    let (spec, allow) = match crate::api::settings::load(store, tenant).await {
        Ok((settings, _)) => {
            let allow =
                AllowList::new(&settings.allowed_hosts).map_err(|e| DeliverError::permanent(format!("the tenant's allowed_hosts: {e}")));
            (applicable(export, settings.notifications.as_ref()).cloned(), allow)
        }
        Err(e) => {
            if export.spec.notifications.is_none() {
                tracing::warn!(export_id, tenant, error = %e, "the tenant's settings could not be read: its default notifications were not sent");
            }
            let allow = Err(DeliverError::transient(format!("the tenant's settings could not be read: {e}")));
            (export.spec.notifications.clone(), allow)
        }
    };
    let Some(spec) = spec else { return Vec::new() };
    if !spec.on.contains(&outcome.on()) {
        return Vec::new();
    }
    let message_id = event::message_id(export, outcome);
    let pending = |c: Channel| !export.notified.contains(&c.key(&message_id));

    let webhook = async {
        let cfg = spec.webhook.as_ref().filter(|_| pending(Channel::Webhook))?;
        let secret = match &cfg.secret_credential {
            Some(id) => match send::webhook_secret(store, keys, tenant, id).await {
                Ok(s) => Some(s),
                Err(e) => return Some((Err(e), 0)),
            },
            None => None,
        };
        let allow = match &allow {
            Ok(a) => a,
            Err(e) => return Some((Err(e.clone()), 0)),
        };
        Some(send::webhook(cfg, secret.as_ref(), allow, &message_id, &event::event(export, outcome)).await)
    };
    let email = async {
        let cfg = spec.email.as_ref().filter(|_| pending(Channel::Email))?;
        Some(send::email(cfg, event::email_subject(export, outcome), event::email_text(export, outcome), &message_id).await)
    };
    let within = |r: Result<Option<_>, _>| match r {
        Ok(r) => r,
        Err(_) => Some((Err(DeliverError::transient(format!("not done within {} s", BUDGET.as_secs()))), 0)),
    };
    let (w, m) = tokio::join!(tokio::time::timeout(BUDGET, webhook), tokio::time::timeout(BUDGET, email));

    let mut done = Vec::new();
    for (channel, r) in [(Channel::Webhook, within(w)), (Channel::Email, within(m))] {
        let Some((res, attempts)) = r else { continue };
        let key = channel.key(&message_id);
        let (action, outcome_word) = match &res {
            Ok(_) => ("export.notification.sent", "success"),
            Err(_) => ("export.notification.failed", "failed"),
        };
        match &res {
            Ok(ev) => {
                tracing::info!(export_id, tenant, channel = channel.as_str(), message_id, attempts, details = %serde_json::Value::Object(ev.details.clone()), "notification sent")
            }
            Err(e) => {
                tracing::warn!(export_id, tenant, channel = channel.as_str(), message_id, attempts, error = %e, "notification failed")
            }
        }
        let entry =
            crate::audit::AuditEntry { tenant, actor: "system", action, target: export_id, request_id: &key, outcome: outcome_word };
        if let Err(e) = crate::audit::append(store, entry).await {
            tracing::warn!(export_id, tenant, error = %e, "audit append failed");
        }
        done.push(Notified { channel, message_id: message_id.clone(), attempts, result: res.map(|_| ()).map_err(|e| e.to_string()) });
    }
    mark_done(store, export, &done).await;
    done
}

/// Record on the export that these notifications are done.
async fn mark_done(store: &dyn JobStore, export: &Export, done: &[Notified]) {
    if done.is_empty() {
        return;
    }
    let keys: Vec<String> = done.iter().map(|n| n.channel.key(&n.message_id)).collect();
    let res = update_export(store, &export.tenant, &export.id, |e| {
        for k in &keys {
            if !e.notified.contains(k) {
                e.notified.push(k.clone());
            }
        }
        Ok::<(), ()>(())
    })
    .await;
    match res {
        Ok(_) | Err(UpdateError::NotFound) => {}
        Err(e) => tracing::warn!(export_id = export.id, tenant = export.tenant, error = %e, "notifications done but not recorded"),
    }
}
