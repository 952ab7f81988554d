//! The audit trail: one event per API call and pipeline event, hash-chained per tenant so that
//! an edited, inserted or deleted event breaks the chain ([`verify_chain`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{AuditStore, StoreError};

/// The hash a tenant's first event chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub tenant: String,
    /// Position in the tenant's chain, from 1.
    pub seq: u64,
    pub time: DateTime<Utc>,
    /// Who: an API key id, or `system` for pipeline events.
    pub actor: String,
    /// What, e.g. `export.create`, `export.download`, `export.completed`.
    pub action: String,
    /// On what, e.g. an export id.
    pub target: String,
    pub request_id: String,
    /// `success`, `denied`, `failed`, ...
    pub outcome: String,
    /// The previous event's hash (GENESIS for the first).
    pub prev_hash: String,
    /// SHA-256 over the previous hash and this event's fields.
    pub hash: String,
}

/// What a caller says happened; the chain fields are filled in by [`append`].
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub tenant: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub request_id: &'a str,
    pub outcome: &'a str,
}

/// The hash of an event: over every field but `hash`, each length-prefixed so that no two
/// different events share an input.
pub fn event_hash(e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    let time = e.time.to_rfc3339_opts(SecondsFormat::Micros, true);
    let seq = e.seq.to_string();
    for field in [&e.prev_hash, &e.tenant, &seq, &time, &e.actor, &e.action, &e.target, &e.request_id, &e.outcome] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Append an event to the tenant's chain (a conditional write on the next `seq`, retried when
/// another writer took it).
pub async fn append(store: &dyn AuditStore, entry: AuditEntry<'_>) -> Result<AuditEvent, StoreError> {
    for _ in 0..50 {
        let last = store.last_audit(entry.tenant).await?;
        let (seq, prev_hash) = match &last {
            Some(l) => (l.seq + 1, l.hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        // Microsecond precision: what the store keeps, so the hash can be recomputed.
        let now = Utc::now();
        let time = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let mut ev = AuditEvent {
            tenant: entry.tenant.to_string(),
            seq,
            time,
            actor: entry.actor.to_string(),
            action: entry.action.to_string(),
            target: entry.target.to_string(),
            request_id: entry.request_id.to_string(),
            outcome: entry.outcome.to_string(),
            prev_hash,
            hash: String::new(),
        };
        ev.hash = event_hash(&ev);
        match store.append_audit(&ev).await {
            Ok(()) => return Ok(ev),
            Err(StoreError::Precondition) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend("audit chain contention".into()))
}

/// Checks a chain event by event, in order from its start, so a long chain is verified page
/// by page in bounded memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: String,
    next_seq: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { prev: GENESIS.to_string(), next_seq: 1 }
    }
}

impl ChainVerifier {
    /// Take the next event: `Err` says why it does not fit (edited, or a gap where an event
    /// was deleted or inserted).
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), &'static str> {
        if e.seq != self.next_seq {
            return Err("a gap in the sequence: an event was deleted");
        }
        if e.prev_hash != self.prev {
            return Err("the event does not chain to the one before it");
        }
        if event_hash(e) != e.hash {
            return Err("the event's content does not match its hash: it was edited");
        }
        self.prev = e.hash.clone();
        self.next_seq += 1;
        Ok(())
    }

    /// Events checked so far.
    pub fn count(&self) -> u64 {
        self.next_seq - 1
    }

    /// The hash of the last event checked.
    pub fn head(&self) -> &str {
        &self.prev
    }
}

/// Check a chain read in order from its start: `Err(seq)` names the first event that does not
/// fit (edited, or a gap where an event was deleted).
pub fn verify_chain(events: &[AuditEvent]) -> Result<(), u64> {
    let mut v = ChainVerifier::default();
    for e in events {
        v.push(e).map_err(|_| e.seq)?;
    }
    Ok(())
}
