//! [`RecordStore`] on SQLite: one `records` table, the name unique per tenant and kind by a
//! UNIQUE constraint, replacements conditional on the version.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::records::{Record, RecordKind, RecordStore};
use super::sqlite::{SqliteStore, backend};
use super::{Page, StoreError};

/// What is stored in `doc`: everything but the key columns.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    doc: serde_json::Value,
}

fn row_to_record(kind: RecordKind, tenant: &str, id: String, name: String, version: i64, doc: &str) -> Result<Record, StoreError> {
    let s: Stored = serde_json::from_str(doc).map_err(backend)?;
    Ok(Record {
        kind,
        tenant: tenant.to_string(),
        id,
        name,
        version: version as u64,
        created_at: s.created_at,
        updated_at: s.updated_at,
        doc: s.doc,
    })
}

fn stored(r: &Record) -> Result<String, StoreError> {
    serde_json::to_string(&Stored { created_at: r.created_at, updated_at: r.updated_at, doc: r.doc.clone() }).map_err(backend)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(super) fn encode_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

pub(super) fn decode_cursor(c: &str) -> Result<String, StoreError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| StoreError::InvalidCursor)?;
    String::from_utf8(raw).map_err(|_| StoreError::InvalidCursor)
}

const SELECT: &str = "SELECT id, name, version, doc FROM records";

#[async_trait]
impl RecordStore for SqliteStore {
    async fn create_record(&self, record: &Record) -> Result<(), StoreError> {
        let r = record.clone();
        self.with(move |c| {
            let res = c.execute(
                "INSERT INTO records (kind, tenant, id, name, version, doc) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                params![r.kind.as_str(), r.tenant, r.id, r.name, stored(&r)?],
            );
            match res {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn get_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.with(move |c| {
            let row = c
                .query_row(&format!("{SELECT} WHERE kind = ?1 AND tenant = ?2 AND id = ?3"), params![kind.as_str(), tenant, id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
                })
                .optional()
                .map_err(backend)?;
            row.map(|(id, name, v, doc)| row_to_record(kind, &tenant, id, name, v, &doc)).transpose()
        })
        .await
    }

    async fn get_record_by_name(&self, kind: RecordKind, tenant: &str, name: &str) -> Result<Option<Record>, StoreError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.with(move |c| {
            let row = c
                .query_row(&format!("{SELECT} WHERE kind = ?1 AND tenant = ?2 AND name = ?3"), params![kind.as_str(), tenant, name], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
                })
                .optional()
                .map_err(backend)?;
            row.map(|(id, name, v, doc)| row_to_record(kind, &tenant, id, name, v, &doc)).transpose()
        })
        .await
    }

    async fn list_records(&self, kind: RecordKind, tenant: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Record>, StoreError> {
        let tenant = tenant.to_string();
        let before = cursor.map(decode_cursor).transpose()?;
        let limit = limit.clamp(1, 1000);
        self.with(move |c| {
            let mut stmt = c
                .prepare(&format!("{SELECT} WHERE kind = ?1 AND tenant = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![kind.as_str(), tenant, before, (limit + 1) as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
                })
                .map_err(backend)?;
            let mut items = Vec::new();
            for row in rows {
                let (id, name, v, doc) = row.map_err(backend)?;
                items.push(row_to_record(kind, &tenant, id, name, v, &doc)?);
            }
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|r| encode_cursor(&r.id))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn put_record_if_version(&self, record: &Record) -> Result<Record, StoreError> {
        let r = record.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE records SET version = version + 1, doc = ?1 WHERE kind = ?2 AND tenant = ?3 AND id = ?4 AND version = ?5 AND name = ?6",
                    params![stored(&r)?, r.kind.as_str(), r.tenant, r.id, r.version as i64, r.name],
                )
                .map_err(backend)?;
            if n == 1 {
                return Ok(Record { version: r.version + 1, ..r });
            }
            let exists: Option<i64> = c
                .query_row("SELECT version FROM records WHERE kind = ?1 AND tenant = ?2 AND id = ?3", params![r.kind.as_str(), r.tenant, r.id], |x| {
                    x.get(0)
                })
                .optional()
                .map_err(backend)?;
            Err(if exists.is_some() { StoreError::Precondition } else { StoreError::NotFound })
        })
        .await
    }

    async fn delete_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.with(move |c| {
            let n = c
                .execute("DELETE FROM records WHERE kind = ?1 AND tenant = ?2 AND id = ?3", params![kind.as_str(), tenant, id])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }
}
