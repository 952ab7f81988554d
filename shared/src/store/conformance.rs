//! The JobStore conformance suite: every implementation runs it (SQLite always; DynamoDB
//! against its emulator). Each check names the behaviour the API relies on.

use chrono::{Duration, Utc};
use serde_json::json;

use super::*;
use crate::audit::{self, AuditEntry, verify_chain};
use crate::model::{ApiKeyRecord, ChunkRecord, Export, ExportSpec, ExportStatus, Permission};

fn export(tenant: &str, format: &str, minutes_ago: i64) -> Export {
    let spec = ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": []}, "format": format})).expect("valid spec");
    Export::new(crate::model::ids::export_id(), tenant.into(), "key".into(), spec, Utc::now() - Duration::minutes(minutes_ago))
}

/// Run every check against a store that starts empty.
pub async fn run_all(store: &dyn JobStore) {
    exports_are_scoped_by_tenant(store).await;
    create_refuses_a_taken_id(store).await;
    writes_are_conditional_on_the_version(store).await;
    listing_filters_and_pages_newest_first(store).await;
    chunks_count_once(store).await;
    idempotency_claims(store).await;
    api_keys_round_trip(store).await;
    audit_chain_appends_in_order(store).await;
    records_have_unique_names_and_conditional_writes(store).await;
    schedule_runs_and_states_have_scopes_of_their_own(store).await;
}

async fn exports_are_scoped_by_tenant(store: &dyn JobStore) {
    let e = export("t-scope", "csv", 0);
    store.create_export(&e).await.unwrap();
    assert_eq!(store.get_export("t-scope", &e.id).await.unwrap().unwrap().id, e.id);
    assert!(store.get_export("t-other", &e.id).await.unwrap().is_none(), "another tenant must not read it");
    assert!(!store.delete_export("t-other", &e.id).await.unwrap(), "another tenant must not delete it");
    assert!(store.delete_export("t-scope", &e.id).await.unwrap());
    assert!(store.get_export("t-scope", &e.id).await.unwrap().is_none());
}

async fn create_refuses_a_taken_id(store: &dyn JobStore) {
    let e = export("t-create", "csv", 0);
    store.create_export(&e).await.unwrap();
    assert!(matches!(store.create_export(&e).await, Err(StoreError::AlreadyExists)));
}

async fn writes_are_conditional_on_the_version(store: &dyn JobStore) {
    let e = export("t-cas", "csv", 0);
    store.create_export(&e).await.unwrap();
    let mut a = store.get_export("t-cas", &e.id).await.unwrap().unwrap();
    let mut b = a.clone();
    a.status = ExportStatus::Running;
    let saved = store.put_export_if_version(&a).await.unwrap();
    assert_eq!(saved.version, a.version + 1);
    b.status = ExportStatus::Cancelled;
    assert!(matches!(store.put_export_if_version(&b).await, Err(StoreError::Precondition)), "a stale write must lose");
    let mut gone = export("t-cas", "csv", 0);
    gone.id = crate::model::ids::export_id();
    assert!(matches!(store.put_export_if_version(&gone).await, Err(StoreError::NotFound)));
    // update_export retries on a lost race and applies the change to the latest version.
    let r = update_export(store, "t-cas", &e.id, |x| {
        x.progress.rows += 1;
        Ok::<(), ()>(())
    })
    .await
    .unwrap();
    assert_eq!(r.status, ExportStatus::Running);
    assert_eq!(r.progress.rows, 1);
}

async fn listing_filters_and_pages_newest_first(store: &dyn JobStore) {
    let mut ids = Vec::new();
    for (i, f) in ["csv", "json", "csv", "jsonl", "csv"].iter().enumerate() {
        let e = export("t-list", f, 10 - i as i64);
        store.create_export(&e).await.unwrap();
        ids.push(e.id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut q = ExportQuery { limit: 2, ..Default::default() };
    loop {
        let page = store.list_exports("t-list", &q).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let csv = store.list_exports("t-list", &ExportQuery { limit: 100, format: Some(FormatKind::Csv), ..Default::default() }).await.unwrap();
    assert_eq!(csv.items.len(), 3);
    let recent = store
        .list_exports("t-list", &ExportQuery { limit: 100, created_after: Some(Utc::now() - Duration::seconds(450)), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(recent.items.len(), 2);
    let pending =
        store.list_exports("t-list", &ExportQuery { limit: 100, status: Some(ExportStatus::Pending), ..Default::default() }).await.unwrap();
    assert_eq!(pending.items.len(), 5);
    assert!(store.list_exports("t-nobody", &ExportQuery { limit: 100, ..Default::default() }).await.unwrap().items.is_empty());
    let bad = ExportQuery { limit: 10, cursor: Some("not-a-cursor".into()), ..Default::default() };
    assert!(matches!(store.list_exports("t-list", &bad).await, Err(StoreError::InvalidCursor)), "a foreign cursor is refused as such");
}

async fn chunks_count_once(store: &dyn JobStore) {
    let mut e = export("t-chunks", "csv", 0);
    e.progress.chunks_total = 2;
    store.create_export(&e).await.unwrap();
    let c = ChunkRecord { index: 1, rows: 10, bytes: 100, part_key: "p1".into() };
    let (p, first) = store.record_chunk("t-chunks", &e.id, &c).await.unwrap();
    assert!(first);
    assert_eq!((p.chunks_done, p.rows), (1, 10));
    let (p, first) = store.record_chunk("t-chunks", &e.id, &c).await.unwrap();
    assert!(!first, "a retried chunk must not count twice");
    assert_eq!((p.chunks_done, p.rows), (1, 10));
    store.record_chunk("t-chunks", &e.id, &ChunkRecord { index: 0, rows: 5, bytes: 50, part_key: "p0".into() }).await.unwrap();
    let chunks = store.list_chunks("t-chunks", &e.id).await.unwrap();
    assert_eq!(chunks.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1]);
    assert!(store.list_active_exports().await.unwrap().contains(&("t-chunks".to_string(), e.id.clone())));
}

async fn idempotency_claims(store: &dyn JobStore) {
    assert_eq!(store.idempotency_begin("t-idem", "k", "h1", 3600, 60).await.unwrap(), IdempotencyBegin::Started);
    assert_eq!(store.idempotency_begin("t-idem", "k", "h1", 3600, 60).await.unwrap(), IdempotencyBegin::InFlight);
    assert_eq!(store.idempotency_begin("t-idem", "k", "h2", 3600, 60).await.unwrap(), IdempotencyBegin::Mismatch);
    assert_eq!(store.idempotency_begin("t-other", "k", "h2", 3600, 60).await.unwrap(), IdempotencyBegin::Started, "keys are per tenant");
    let resp = StoredResponse { status: 202, body: "{}".into(), location: Some("/v1/exports/x".into()) };
    store.idempotency_complete("t-idem", "k", &resp).await.unwrap();
    assert_eq!(store.idempotency_begin("t-idem", "k", "h1", 3600, 60).await.unwrap(), IdempotencyBegin::Done(resp));
    // An abandoned claim frees the key; a stale in-flight claim is taken over.
    store.idempotency_begin("t-idem", "k2", "h", 3600, 60).await.unwrap();
    store.idempotency_abandon("t-idem", "k2").await.unwrap();
    assert_eq!(store.idempotency_begin("t-idem", "k2", "h", 3600, 60).await.unwrap(), IdempotencyBegin::Started);
    assert_eq!(store.idempotency_begin("t-idem", "k2", "h", 3600, -1).await.unwrap(), IdempotencyBegin::Started);
}

async fn api_keys_round_trip(store: &dyn JobStore) {
    let rec = ApiKeyRecord {
        key_id: "00112233aabbccdd".into(),
        tenant: "t-keys".into(),
        permissions: [Permission::View, Permission::Download].into(),
        secret_sha256: "ab".repeat(32),
        created_at: Utc::now(),
        revoked: false,
        description: "conformance".into(),
    };
    store.put_api_key(&rec).await.unwrap();
    assert_eq!(store.get_api_key(&rec.key_id).await.unwrap().unwrap(), rec);
    assert!(store.get_api_key("ffffffffffffffff").await.unwrap().is_none());
}

async fn audit_chain_appends_in_order(store: &dyn JobStore) {
    for i in 0..5 {
        let target = format!("exp_{i}");
        let entry =
            AuditEntry { tenant: "t-audit", actor: "key", action: "export.create", target: &target, request_id: "req", outcome: "success" };
        audit::append(store, entry).await.unwrap();
    }
    let events = store.list_audit("t-audit", 0, 100).await.unwrap();
    assert_eq!(events.len(), 5);
    verify_chain(&events).unwrap();
    let mut edited = events.clone();
    edited[2].target = "exp_forged".into();
    assert_eq!(verify_chain(&edited), Err(3), "an edited event breaks the chain");
    let mut deleted = events.clone();
    deleted.remove(1);
    assert_eq!(verify_chain(&deleted), Err(3), "a deleted event breaks the chain");
    let dup = events[4].clone();
    assert!(matches!(store.append_audit(&dup).await, Err(StoreError::Precondition)), "a seq is taken once");
}

#[cfg(all(test, feature = "local"))]
mod tests {
    #[tokio::test]
    async fn sqlite_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap();
        super::run_all(&store).await;
    }
}

fn record(tenant: &str, id: &str, name: &str) -> Record {
    let now = Utc::now();
    Record {
        kind: RecordKind::Template,
        tenant: tenant.into(),
        id: id.into(),
        name: name.into(),
        version: 1,
        created_at: now,
        updated_at: now,
        doc: json!({"n": name}),
    }
}

async fn records_have_unique_names_and_conditional_writes(store: &dyn JobStore) {
    let t = "t-records";
    let a = record(t, "tpl_0001", "monthly");
    store.create_record(&a).await.unwrap();
    assert!(matches!(store.create_record(&a).await, Err(StoreError::AlreadyExists)), "the id is taken");
    assert!(matches!(store.create_record(&record(t, "tpl_0002", "monthly")).await, Err(StoreError::AlreadyExists)), "the name is taken");
    // Another kind and another tenant have names of their own.
    store.create_record(&Record { kind: RecordKind::Schedule, ..record(t, "tpl_0002", "monthly") }).await.unwrap();
    store.create_record(&record("t-records-other", "tpl_0002", "monthly")).await.unwrap();
    assert!(store.get_record(RecordKind::Template, "t-records-other", "tpl_0001").await.unwrap().is_none());

    let by_name = store.get_record_by_name(RecordKind::Template, t, "monthly").await.unwrap().unwrap();
    assert_eq!((by_name.id.as_str(), by_name.version, &by_name.doc), ("tpl_0001", 1, &json!({"n": "monthly"})));

    let mut changed = by_name.clone();
    changed.doc = json!({"n": "changed"});
    let saved = store.put_record_if_version(&changed).await.unwrap();
    assert_eq!(saved.version, 2);
    assert!(matches!(store.put_record_if_version(&changed).await, Err(StoreError::Precondition)), "a stale version loses");
    let renamed = Record { name: "other".into(), ..saved.clone() };
    assert!(store.put_record_if_version(&renamed).await.is_err(), "the name cannot change");
    assert_eq!(store.get_record(RecordKind::Template, t, "tpl_0001").await.unwrap().unwrap().doc, json!({"n": "changed"}));

    for i in 3..8 {
        store.create_record(&record(t, &format!("tpl_{i:04}"), &format!("n{i}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_records(RecordKind::Template, t, 2, cursor.as_deref()).await.unwrap();
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["tpl_0007", "tpl_0006", "tpl_0005", "tpl_0004", "tpl_0003", "tpl_0001"], "newest first, every record once");

    assert!(store.delete_record(RecordKind::Template, t, "tpl_0001").await.unwrap());
    assert!(!store.delete_record(RecordKind::Template, t, "tpl_0001").await.unwrap());
    assert!(store.get_record_by_name(RecordKind::Template, t, "monthly").await.unwrap().is_none());
    store.create_record(&record(t, "tpl_0009", "monthly")).await.expect("a deleted record's name is free again");
    assert!(matches!(store.put_record_if_version(&saved).await, Err(StoreError::NotFound)), "gone");
}

/// What the scheduler keeps: runs under `<tenant>~<schedule id>` named by their fire key (a
/// second record of one fire is refused), states of every tenant under one scope.
async fn schedule_runs_and_states_have_scopes_of_their_own(store: &dyn JobStore) {
    let scope = "t-sched~sch_1";
    let run = |id: &str, key: &str| Record { kind: RecordKind::ScheduleRun, ..record(scope, id, key) };
    store.create_record(&run("run_20260101T060000Z_a", "sch_1/2026-01-01T06:00[Europe/Vienna]")).await.unwrap();
    store.create_record(&run("run_20260102T060000Z_b", "sch_1/2026-01-02T06:00[Europe/Vienna]")).await.unwrap();
    let again = store.create_record(&run("run_20260101T060000Z_c", "sch_1/2026-01-01T06:00[Europe/Vienna]")).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "one record per fire");
    let page = store.list_records(RecordKind::ScheduleRun, scope, 10, None).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["run_20260102T060000Z_b", "run_20260101T060000Z_a"], "newest first");
    assert!(store.list_records(RecordKind::ScheduleRun, "t-sched~sch_2", 10, None).await.unwrap().items.is_empty());
    let found = store.get_record_by_name(RecordKind::ScheduleRun, scope, "sch_1/2026-01-02T06:00[Europe/Vienna]").await.unwrap();
    assert_eq!(found.unwrap().id, "run_20260102T060000Z_b");

    let state = |id: &str| Record { kind: RecordKind::ScheduleState, ..record("~schedules", id, id) };
    store.create_record(&state("t-sched~sch_1")).await.unwrap();
    store.create_record(&state("t-sched-b~sch_9")).await.unwrap();
    let all = store.list_records(RecordKind::ScheduleState, "~schedules", 10, None).await.unwrap();
    let mut ids: Vec<&str> = all.items.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["t-sched-b~sch_9", "t-sched~sch_1"]);
}
