//! `GET /v1/audit` (the tenant's audit trail, filtered and paged, in chain order) and
//! `GET /v1/audit/verify` (recompute the hash chain: an edited or deleted event is named).

use base64::Engine;
use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use super::{Problem, Response, authorize, json_response, page_params, query};
use crate::audit::{AuditEvent, ChainVerifier};
use crate::model::{Permission, ValidationErrors};
use crate::services::Services;

/// Events read from the store per call while filtering or verifying.
const BATCH: usize = 500;
/// Events a filtered listing looks through for one page, at most.
const SCAN_LIMIT: usize = 20_000;

fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("audit:{seq}"))
}

fn decode_cursor(c: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("audit:")?.parse().ok()
}

struct Filters {
    action: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Filters {
    fn keep(&self, e: &AuditEvent) -> bool {
        // `action` matches exactly, or a prefix ending in `.` or `*` (`export.*`).
        let action_ok = self.action.as_deref().is_none_or(|a| match a.strip_suffix('*') {
            Some(prefix) => e.action.starts_with(prefix),
            None => e.action == a,
        });
        action_ok
            && self.actor.as_deref().is_none_or(|a| e.actor == a)
            && self.target.as_deref().is_none_or(|t| e.target == t)
            && self.outcome.as_deref().is_none_or(|o| e.outcome == o)
            && self.since.is_none_or(|t| e.time >= t)
            && self.until.is_none_or(|t| e.time < t)
    }
}

pub async fn list(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let q = query(req, &["action", "actor", "target", "outcome", "since", "until", "limit", "cursor"])?;
    let mut errs = ValidationErrors::new();
    let (limit, cursor) = page_params(&q, &mut errs);
    let mut time = |name: &str| {
        q.get(name).and_then(|v| match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errs.push(format!("/query/{name}"), v.as_str(), "an RFC 3339 timestamp with offset, e.g. 2026-10-01T00:00:00Z");
                None
            }
        })
    };
    let (since, until) = (time("since"), time("until"));
    let after = match cursor.as_deref() {
        None => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| super::invalid_cursor(Some(c)))?,
    };
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    let f = Filters {
        action: q.get("action").cloned(),
        actor: q.get("actor").cloned(),
        target: q.get("target").cloned(),
        outcome: q.get("outcome").cloned(),
        since,
        until,
    };
    let mut items = Vec::new();
    let mut last_seq = after;
    let mut scanned = 0usize;
    let mut exhausted = false;
    while items.len() < limit && scanned < SCAN_LIMIT {
        let batch = svc.store.list_audit(&principal.tenant, last_seq, BATCH).await.map_err(Problem::internal)?;
        if batch.is_empty() {
            exhausted = true;
            break;
        }
        for e in batch {
            scanned += 1;
            last_seq = e.seq;
            if f.keep(&e) {
                items.push(e);
                if items.len() == limit {
                    break;
                }
            }
        }
    }
    // More may follow unless the chain ran out; a page cut short by the scan limit says so
    // through its cursor, and the caller continues from there.
    let next_cursor = if exhausted { None } else { Some(encode_cursor(last_seq)) };
    Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
}

/// An earlier head of the chain, kept outside the service by whoever verifies it (the `head` of
/// an earlier verify): the chain must still hold that event, with that hash. This finds what the
/// chain alone cannot: events deleted from its end.
struct Anchor {
    seq: u64,
    hash: String,
}

fn anchor_of(q: &std::collections::HashMap<String, String>) -> Result<Option<Anchor>, Problem> {
    let mut errs = ValidationErrors::new();
    let seq = q.get("seq").map(|v| (v, v.parse::<u64>().ok().filter(|n| *n >= 1)));
    let hash = q.get("hash").map(|v| (v, (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())));
    if let Some((v, None)) = &seq {
        errs.push("/query/seq", v.as_str(), "a position in the chain, from 1 (the `head.seq` of an earlier verify)");
    }
    if let Some((v, None)) = &hash {
        errs.push("/query/hash", v.as_str(), "64 hexadecimal digits (the `head.hash` of an earlier verify)");
    }
    match (&seq, &hash) {
        (Some(_), None) => errs.push("/query/hash", "", "the hash of the event at `seq`, given with it"),
        (None, Some(_)) => errs.push("/query/seq", "", "the position of the event `hash` names, given with it"),
        _ => {}
    }
    if !errs.is_empty() {
        return Err(super::invalid_query(errs));
    }
    Ok(match (seq, hash) {
        (Some((_, Some(seq))), Some((_, Some(hash)))) => Some(Anchor { seq, hash }),
        _ => None,
    })
}

pub async fn verify(svc: &Services, req: &Request) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Admin).await?;
    let anchor = anchor_of(&query(req, &["seq", "hash"])?)?;
    let mut v = ChainVerifier::default();
    let mut after = 0;
    let mut anchor_found = false;
    let invalid = |v: &ChainVerifier, seq: u64, found: u64, reason: &str| {
        json_response(
            StatusCode::OK,
            &json!({"valid": false, "events_checked": v.count(), "first_invalid": {"seq": seq, "found_seq": found, "reason": reason}}),
        )
    };
    loop {
        let batch = svc.store.list_audit(&principal.tenant, after, BATCH).await.map_err(Problem::internal)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if let Err(reason) = v.push(e) {
                return Ok(invalid(&v, v.count() + 1, e.seq, reason));
            }
            if let Some(a) = &anchor
                && a.seq == e.seq
            {
                if a.hash != e.hash {
                    return Ok(invalid(&v, e.seq, e.seq, "the event at the anchor's position has another hash: the chain was rewritten"));
                }
                anchor_found = true;
            }
            after = e.seq;
        }
    }
    if let Some(a) = &anchor
        && !anchor_found
    {
        let reason =
            format!("the chain ends at event {}, before the anchor's event {}: events were deleted from its end", v.count(), a.seq);
        return Ok(invalid(&v, v.count() + 1, v.count() + 1, &reason));
    }
    let mut body = json!({"valid": true, "events_checked": v.count(), "head": {"seq": v.count(), "hash": v.head()}});
    if let Some(a) = anchor {
        body["anchor"] = json!({"seq": a.seq, "hash": a.hash, "found": true});
    }
    Ok(json_response(StatusCode::OK, &body))
}
