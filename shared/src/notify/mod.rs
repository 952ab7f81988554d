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
//! id: `webhook:<id>` or `email:<id>`) and logged, without secrets.
//!
//! Once per run and channel: RecordFailure may run twice for one failure (a chunk's failure and
//! the run's), and any stage may be retried. Before sending, a caller claims the channel on the
//! export with a conditional write; a second caller finds the claim and sends nothing. Once
//! sent (or failed for good) the claim becomes a done mark. A claim whose caller stopped is
//! taken over after [`CLAIM_FOR`] by the next call, with the same ids, so a receiver can drop
//! the copy if the first one did get out.

pub mod event;
pub mod send;

use std::time::Duration;

use chrono::Utc;

use crate::deliver::DeliverError;
use crate::deliver::net_guard::AllowList;
use crate::kms::KeyService;
use crate::model::Export;
use crate::model::notify::{NotificationMark, NotificationSpec};
use crate::store::{JobStore, UpdateError, update_export};

pub use event::Outcome;

/// Longest time all notifications of one export may take together (the recording stages have
/// a time limit of 60 s).
pub const BUDGET: Duration = Duration::from_secs(40);
/// How long a claim to send a notification holds: past it, the caller is taken to have stopped.
pub const CLAIM_FOR: Duration = Duration::from_secs(120);

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
/// once per run; see the module documentation. Returns what this call attempted (empty when
/// nothing applies, or another call has sent or is sending them).
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
    let wanted: Vec<Channel> = [(Channel::Webhook, spec.webhook.is_some()), (Channel::Email, spec.email.is_some())]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
        .collect();
    let claimed = claim(store, export, &message_id, &wanted).await;
    if claimed.is_empty() {
        return Vec::new();
    }

    let webhook = async {
        let cfg = spec.webhook.as_ref().filter(|_| claimed.contains(&Channel::Webhook))?;
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
        let cfg = spec.email.as_ref().filter(|_| claimed.contains(&Channel::Email))?;
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

/// Claim the channels no other caller has claimed or done (a claim past its time is taken
/// over), in one conditional write; returns the channels this caller is to send. A store that
/// cannot be written to claims nothing: the stage's retry (or the next call) sends them.
async fn claim(store: &dyn JobStore, export: &Export, message_id: &str, wanted: &[Channel]) -> Vec<Channel> {
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(CLAIM_FOR).unwrap_or_default();
    let mut claimed = Vec::new();
    let res = update_export(store, &export.tenant, &export.id, |e| {
        claimed.clear();
        for &c in wanted {
            let key = c.key(message_id);
            match e.notified.iter_mut().find(|m| m.key == key) {
                None => e.notified.push(NotificationMark { key, sending_until: Some(until) }),
                Some(m) if m.sending_until.is_some_and(|t| t <= now) => m.sending_until = Some(until),
                Some(_) => continue,
            }
            claimed.push(c);
        }
        if claimed.is_empty() { Err(()) } else { Ok(()) }
    })
    .await;
    match res {
        Ok(_) => claimed,
        Err(UpdateError::Refused(())) | Err(UpdateError::NotFound) => Vec::new(),
        Err(UpdateError::Store(e)) => {
            tracing::warn!(export_id = export.id, tenant = export.tenant, error = %e, "notifications not sent now: they could not be claimed");
            Vec::new()
        }
    }
}

/// Turn this caller's claims into done marks.
async fn mark_done(store: &dyn JobStore, export: &Export, done: &[Notified]) {
    if done.is_empty() {
        return;
    }
    let keys: Vec<String> = done.iter().map(|n| n.channel.key(&n.message_id)).collect();
    let res = update_export(store, &export.tenant, &export.id, |e| {
        for k in &keys {
            match e.notified.iter_mut().find(|m| &m.key == k) {
                Some(m) => m.sending_until = None,
                None => e.notified.push(NotificationMark { key: k.clone(), sending_until: None }),
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

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::model::{ExportSpec, ExportStatus};
    use crate::store::ExportStore;
    use crate::store::sqlite::SqliteStore;

    async fn finished(store: &SqliteStore) -> Export {
        let spec = ExportSpec::from_json(&serde_json::json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"})).unwrap();
        let mut e = Export::new(crate::model::ids::export_id(), "acme".into(), "key".into(), spec, Utc::now());
        e.status = ExportStatus::Failed;
        store.create_export(&e).await.unwrap();
        store.get_export("acme", &e.id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_channel_is_claimed_by_one_caller_and_done_once() {
        let store = SqliteStore::in_memory().unwrap();
        let e = finished(&store).await;
        let both = [Channel::Webhook, Channel::Email];
        assert_eq!(claim(&store, &e, "m-1", &both).await, both);
        // A second caller (the run's RecordFailure after the chunk's) finds the claims.
        assert!(claim(&store, &e, "m-1", &both).await.is_empty());
        let done = Notified { channel: Channel::Webhook, message_id: "m-1".into(), attempts: 1, result: Ok(()) };
        mark_done(&store, &e, &[done]).await;
        let stored = store.get_export("acme", &e.id).await.unwrap().unwrap();
        assert_eq!(stored.notified[0], NotificationMark { key: "webhook:m-1".into(), sending_until: None });
        assert!(stored.notified[1].sending_until.is_some_and(|t| t > Utc::now()), "{:?}", stored.notified);
        assert!(claim(&store, &e, "m-1", &[Channel::Webhook]).await.is_empty(), "done: never again");
        // Another run's event is another id.
        assert_eq!(claim(&store, &e, "m-2", &[Channel::Webhook]).await, [Channel::Webhook]);
    }

    #[tokio::test]
    async fn a_claim_whose_caller_stopped_is_taken_over_after_its_time() {
        let store = SqliteStore::in_memory().unwrap();
        let e = finished(&store).await;
        assert_eq!(claim(&store, &e, "m-1", &[Channel::Email]).await, [Channel::Email]);
        update_export(&store, "acme", &e.id, |x| {
            x.notified[0].sending_until = Some(Utc::now() - chrono::Duration::seconds(1));
            Ok::<(), ()>(())
        })
        .await
        .unwrap();
        assert_eq!(claim(&store, &e, "m-1", &[Channel::Email]).await, [Channel::Email]);
        assert!(claim(&store, &e, "m-1", &[Channel::Email]).await.is_empty());
    }
}
