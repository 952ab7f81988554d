//! The embedded default JobStore: one SQLite file in WAL mode. Exports are kept as JSON
//! documents beside the columns that queries filter on; every state change is an
//! `UPDATE ... WHERE version = ?`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::*;
use crate::audit::AuditEvent;
use crate::model::{ApiKeyRecord, ChunkRecord, Export, Progress};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS exports (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    status      TEXT NOT NULL,
    format      TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS exports_by_time ON exports (tenant, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS exports_by_status ON exports (status);
CREATE TABLE IF NOT EXISTS chunks (
    tenant     TEXT NOT NULL,
    export_id  TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant, export_id, idx)
);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    state         TEXT NOT NULL,
    response      TEXT,
    created_us    INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id  TEXT PRIMARY KEY,
    tenant  TEXT NOT NULL,
    doc     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    kind     TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    id       TEXT NOT NULL,
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (kind, tenant, id),
    UNIQUE (kind, tenant, name)
);
CREATE TABLE IF NOT EXISTS audit_events (
    tenant  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
);
"#;

/// SQLite-backed [`JobStore`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Woken when this process writes an export or records a chunk.
    written: Arc<tokio::sync::Notify>,
}

pub(super) fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl SqliteStore {
    /// Open (or create) the database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), written: Arc::default() })
    }

    /// Run `f` on the connection off the async threads (a busy database may make it wait).
    pub(super) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Backend("sqlite connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn from_doc<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(backend)
}

fn encode_cursor(created_us: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_us}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (t, id) = s.split_once(':')?;
    Some((t.parse().ok()?, id.to_string()))
}

#[async_trait]
impl ExportStore for SqliteStore {
    async fn create_export(&self, export: &Export) -> Result<(), StoreError> {
        let e = export.clone();
        self.with(move |c| {
            let doc = to_doc(&e)?;
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO exports (tenant, id, status, format, created_us, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![e.tenant, e.id, e.status.as_str(), e.spec.format.kind().as_str(), micros(e.created_at), e.version as i64, doc],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::AlreadyExists) } else { Ok(()) }
        })
        .await
    }

    async fn get_export(&self, tenant: &str, id: &str) -> Result<Option<Export>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.with(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM exports WHERE tenant = ?1 AND id = ?2", params![tenant, id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| from_doc(&d)).transpose()
        })
        .await
    }

    async fn list_exports(&self, tenant: &str, q: &ExportQuery) -> Result<Page<Export>, StoreError> {
        let tenant = tenant.to_string();
        let q = q.clone();
        self.with(move |c| {
            let mut sql = String::from("SELECT doc, created_us, id FROM exports WHERE tenant = ?");
            let mut args: Vec<rusqlite::types::Value> = vec![tenant.into()];
            if let Some(s) = q.status {
                sql.push_str(" AND status = ?");
                args.push(s.as_str().to_string().into());
            }
            if let Some(f) = q.format {
                sql.push_str(" AND format = ?");
                args.push(f.as_str().to_string().into());
            }
            if let Some(t) = q.created_after {
                sql.push_str(" AND created_us > ?");
                args.push(micros(t).into());
            }
            if let Some(t) = q.created_before {
                sql.push_str(" AND created_us < ?");
                args.push(micros(t).into());
            }
            if let Some(cur) = &q.cursor {
                let (t, id) = decode_cursor(cur).ok_or(StoreError::InvalidCursor)?;
                sql.push_str(" AND (created_us < ? OR (created_us = ? AND id < ?))");
                args.push(t.into());
                args.push(t.into());
                args.push(id.into());
            }
            let limit = q.limit.clamp(1, 100);
            sql.push_str(" ORDER BY created_us DESC, id DESC LIMIT ?");
            args.push(((limit + 1) as i64).into());
            let mut stmt = c.prepare(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))
                .map_err(backend)?;
            let mut items = Vec::new();
            let mut last = None;
            let mut more = false;
            for row in rows {
                let (doc, t, id) = row.map_err(backend)?;
                if items.len() == limit {
                    // The query asked for one row more than a page: it exists, so does a next page.
                    more = true;
                    break;
                }
                items.push(from_doc::<Export>(&doc)?);
                last = Some((t, id));
            }
            let next_cursor = if more { last.map(|(t, id)| encode_cursor(t, &id)) } else { None };
            Ok((items, next_cursor))
        })
        .await
        .map(|(items, next_cursor)| Page { items, next_cursor })
    }

    async fn put_export_if_version(&self, export: &Export) -> Result<Export, StoreError> {
        let mut e = export.clone();
        let put = self
            .with(move |c| {
                let expected = e.version;
                e.version += 1;
                let doc = to_doc(&e)?;
                let n = c
                    .execute(
                        "UPDATE exports SET status = ?1, version = ?2, doc = ?3 WHERE tenant = ?4 AND id = ?5 AND version = ?6",
                        params![e.status.as_str(), e.version as i64, doc, e.tenant, e.id, expected as i64],
                    )
                    .map_err(backend)?;
                if n == 1 {
                    return Ok(e);
                }
                let exists: Option<i64> = c
                    .query_row("SELECT 1 FROM exports WHERE tenant = ?1 AND id = ?2", params![e.tenant, e.id], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                Err(if exists.is_some() { StoreError::Precondition } else { StoreError::NotFound })
            })
            .await;
        if put.is_ok() {
            self.written.notify_waiters();
        }
        put
    }

    async fn delete_export(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let deleted = self
            .with(move |c| {
                let tx = c.transaction().map_err(backend)?;
                tx.execute("DELETE FROM chunks WHERE tenant = ?1 AND export_id = ?2", params![tenant, id]).map_err(backend)?;
                let n = tx.execute("DELETE FROM exports WHERE tenant = ?1 AND id = ?2", params![tenant, id]).map_err(backend)?;
                tx.commit().map_err(backend)?;
                Ok(n > 0)
            })
            .await;
        self.written.notify_waiters();
        deleted
    }

    async fn record_chunk(&self, tenant: &str, export_id: &str, chunk: &ChunkRecord) -> Result<(Progress, bool), StoreError> {
        let (tenant, export_id, chunk) = (tenant.to_string(), export_id.to_string(), chunk.clone());
        let recorded = self
            .with(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
                let doc: Option<String> = tx
                    .query_row("SELECT doc FROM exports WHERE tenant = ?1 AND id = ?2", params![tenant, export_id], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                let mut export: Export = from_doc(&doc.ok_or(StoreError::NotFound)?)?;
                let inserted = tx
                    .execute(
                        "INSERT OR IGNORE INTO chunks (tenant, export_id, idx, doc) VALUES (?1, ?2, ?3, ?4)",
                        params![tenant, export_id, chunk.index, to_doc(&chunk)?],
                    )
                    .map_err(backend)?
                    == 1;
                if inserted {
                    export.count_chunk(chunk.rows);
                    tx.execute(
                        "UPDATE exports SET version = ?1, doc = ?2 WHERE tenant = ?3 AND id = ?4",
                        params![export.version as i64, to_doc(&export)?, tenant, export_id],
                    )
                    .map_err(backend)?;
                }
                tx.commit().map_err(backend)?;
                Ok((export.progress, inserted))
            })
            .await;
        if matches!(recorded, Ok((_, true))) {
            self.written.notify_waiters();
        }
        recorded
    }

    fn write_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.written.clone())
    }

    async fn list_chunks(&self, tenant: &str, export_id: &str) -> Result<Vec<ChunkRecord>, StoreError> {
        let (tenant, export_id) = (tenant.to_string(), export_id.to_string());
        self.with(move |c| {
            let mut stmt = c.prepare("SELECT doc FROM chunks WHERE tenant = ?1 AND export_id = ?2 ORDER BY idx").map_err(backend)?;
            let rows = stmt.query_map(params![tenant, export_id], |r| r.get::<_, String>(0)).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(|d| from_doc(&d))).collect()
        })
        .await
    }

    async fn list_active_exports(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT tenant, id FROM exports WHERE status IN ('pending', 'running') ORDER BY created_us").map_err(backend)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect()
        })
        .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn idempotency_begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        ttl_secs: i64,
        stale_secs: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        let (tenant, key, hash) = (tenant.to_string(), key.to_string(), request_hash.to_string());
        self.with(move |c| {
            let now = Utc::now().timestamp_micros();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            tx.execute(
                "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 AND (created_us < ?3 OR (state = 'in_flight' AND created_us < ?4))",
                params![tenant, key, now - ttl_secs * 1_000_000, now - stale_secs * 1_000_000],
            )
            .map_err(backend)?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO idempotency (tenant, key, request_hash, state, created_us) VALUES (?1, ?2, ?3, 'in_flight', ?4)",
                    params![tenant, key, hash, now],
                )
                .map_err(backend)?
                == 1;
            let outcome = if inserted {
                IdempotencyBegin::Started
            } else {
                let (stored_hash, state, response): (String, String, Option<String>) = tx
                    .query_row(
                        "SELECT request_hash, state, response FROM idempotency WHERE tenant = ?1 AND key = ?2",
                        params![tenant, key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(backend)?;
                if stored_hash != hash {
                    IdempotencyBegin::Mismatch
                } else if state == "in_flight" {
                    IdempotencyBegin::InFlight
                } else {
                    IdempotencyBegin::Done(from_doc(response.as_deref().unwrap_or("null"))?)
                }
            };
            tx.commit().map_err(backend)?;
            Ok(outcome)
        })
        .await
    }

    async fn idempotency_complete(&self, tenant: &str, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let (tenant, key, doc) = (tenant.to_string(), key.to_string(), to_doc(response)?);
        self.with(move |c| {
            c.execute("UPDATE idempotency SET state = 'done', response = ?1 WHERE tenant = ?2 AND key = ?3", params![doc, tenant, key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn idempotency_abandon(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.with(move |c| {
            c.execute("DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 AND state = 'in_flight'", params![tenant, key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn put_api_key(&self, rec: &ApiKeyRecord) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_keys (key_id, tenant, doc) VALUES (?1, ?2, ?3) ON CONFLICT (key_id) DO UPDATE SET doc = excluded.doc WHERE api_keys.tenant = excluded.tenant",
                params![rec.key_id, rec.tenant, to_doc(&rec)?],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_id = key_id.to_string();
        self.with(move |c| {
            let doc: Option<String> =
                c.query_row("SELECT doc FROM api_keys WHERE key_id = ?1", params![key_id], |r| r.get(0)).optional().map_err(backend)?;
            doc.map(|d| from_doc(&d)).transpose()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn last_audit(&self, tenant: &str) -> Result<Option<AuditEvent>, StoreError> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM audit_events WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1", params![tenant], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| from_doc(&d)).transpose()
        })
        .await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let ev = event.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO audit_events (tenant, seq, doc) VALUES (?1, ?2, ?3)",
                    params![ev.tenant, ev.seq as i64, to_doc(&ev)?],
                )
                .map_err(backend)?;
            if n == 1 { Ok(()) } else { Err(StoreError::Precondition) }
        })
        .await
    }

    async fn list_audit(&self, tenant: &str, after_seq: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let mut stmt =
                c.prepare("SELECT doc FROM audit_events WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3").map_err(backend)?;
            let rows = stmt.query_map(params![tenant, after_seq as i64, limit as i64], |r| r.get::<_, String>(0)).map_err(backend)?;
            rows.map(|r| r.map_err(backend).and_then(|d| from_doc(&d))).collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::model::{ChunkRecord, Export, ExportSpec};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recorded_chunk_wakes_a_reader_waiting_for_one() {
        let store = SqliteStore::in_memory().unwrap();
        let spec = ExportSpec::from_json(&serde_json::json!({"source": {"type": "inline", "rows": []}, "format": "csv"})).unwrap();
        let e = Export::new(crate::model::ids::export_id(), "t".into(), "key".into(), spec, Utc::now());
        store.create_export(&e).await.unwrap();
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let signal = store.write_signal().expect("the local store signals its writes");
                Armed::new(Some(&signal)).wait(Duration::from_secs(600)).await;
                started.elapsed()
            })
        };
        // Recorded until the reader wakes: a record before it waits would not wake it.
        let mut index = 0;
        while !waiting.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let c = ChunkRecord { index, rows: 1, bytes: 1, part_key: format!("p{index}") };
            store.record_chunk("t", &e.id, &c).await.unwrap();
            index += 1;
            assert!(index < 1_000, "the reader was not woken");
        }
        assert!(waiting.await.unwrap() < Duration::from_secs(60), "woken by the record, not by its limit");
    }
}
