//! [`RecordStore`] on DynamoDB: a record item and a name-claim item per record, written and
//! deleted together in one transaction so that a name is taken exactly while its record exists.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use base64::Engine;
use chrono::{DateTime, Utc};

use super::dynamodb::{DynamoStore, Item, backend, build_err, get_n, get_s, is_conditional, key, n, s, sdk, tenant_pk};
use crate::store::{Page, Record, RecordKind, RecordStore, StoreError};

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    doc: serde_json::Value,
}

fn prefix(kind: RecordKind) -> String {
    format!("REC#{}#", kind.as_str())
}

fn record_key(kind: RecordKind, tenant: &str, id: &str) -> Item {
    key(tenant_pk(tenant), format!("{}{id}", prefix(kind)))
}

fn name_key(kind: RecordKind, tenant: &str, name: &str) -> Item {
    key(tenant_pk(tenant), format!("RECNAME#{}#{name}", kind.as_str()))
}

fn record_item(r: &Record, version: u64) -> Result<Item, StoreError> {
    let mut item = record_key(r.kind, &r.tenant, &r.id);
    let doc = Stored { created_at: r.created_at, updated_at: r.updated_at, doc: r.doc.clone() };
    item.insert("doc".into(), s(serde_json::to_string(&doc).map_err(|e| backend(e.to_string()))?));
    item.insert("name".into(), s(&r.name));
    item.insert("version".into(), n(version));
    Ok(item)
}

fn record_of(kind: RecordKind, tenant: &str, item: &Item) -> Result<Record, StoreError> {
    let sk = get_s(item, "sk")?;
    let id = sk.strip_prefix(&prefix(kind)).ok_or_else(|| backend(format!("not a {} record: {sk}", kind.as_str())))?;
    let stored: Stored = serde_json::from_str(get_s(item, "doc")?).map_err(|e| backend(format!("stored record does not parse: {e}")))?;
    Ok(Record {
        kind,
        tenant: tenant.to_string(),
        id: id.to_string(),
        name: get_s(item, "name")?.to_string(),
        version: get_n(item, "version")?,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        doc: stored.doc,
    })
}

fn cancelled<R>(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> bool {
    matches!(
        e.as_service_error(),
        Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(_))
    )
}

#[async_trait]
impl RecordStore for DynamoStore {
    async fn create_record(&self, record: &Record) -> Result<(), StoreError> {
        let put_record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record_item(record, 1)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let mut claim = name_key(record.kind, &record.tenant, &record.name);
        claim.insert("id".into(), s(&record.id));
        let put_claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let r = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_record).build())
            .transact_items(TransactWriteItem::builder().put(put_claim).build())
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if cancelled(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn get_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<Option<Record>, StoreError> {
        self.get_item(record_key(kind, tenant, id)).await?.map(|i| record_of(kind, tenant, &i)).transpose()
    }

    async fn get_record_by_name(&self, kind: RecordKind, tenant: &str, name: &str) -> Result<Option<Record>, StoreError> {
        let Some(claim) = self.get_item(name_key(kind, tenant, name)).await? else {
            return Ok(None);
        };
        self.get_record(kind, tenant, get_s(&claim, "id")?).await
    }

    async fn list_records(&self, kind: RecordKind, tenant: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Record>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut start = match cursor {
            Some(c) => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| StoreError::InvalidCursor)?;
                let id = String::from_utf8(raw).map_err(|_| StoreError::InvalidCursor)?;
                Some(record_key(kind, tenant, &id))
            }
            None => None,
        };
        let mut items = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(tenant_pk(tenant)))
                .expression_attribute_values(":prefix", s(prefix(kind)))
                .consistent_read(true)
                .scan_index_forward(false)
                .limit((limit + 1 - items.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            for item in out.items.unwrap_or_default() {
                items.push(record_of(kind, tenant, &item)?);
            }
            if items.len() > limit {
                items.truncate(limit);
                let next = items.last().map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&r.id));
                return Ok(Page { items, next_cursor: next });
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(Page { items, next_cursor: None }),
            }
        }
    }

    async fn put_record_if_version(&self, record: &Record) -> Result<Record, StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record, record.version + 1)?))
            .condition_expression("version = :v AND #name = :name")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":v", n(record.version))
            .expression_attribute_values(":name", s(&record.name))
            .send()
            .await;
        match r {
            Ok(_) => Ok(Record { version: record.version + 1, ..record.clone() }),
            Err(e) if is_conditional(&e) => match self.get_record(record.kind, &record.tenant, &record.id).await? {
                Some(_) => Err(StoreError::Precondition),
                None => Err(StoreError::NotFound),
            },
            Err(e) => Err(sdk(e)),
        }
    }

    async fn delete_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<bool, StoreError> {
        for _ in 0..50 {
            let Some(current) = self.get_record(kind, tenant, id).await? else {
                return Ok(false);
            };
            let del_record = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(record_key(kind, tenant, id)))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(current.version))
                .build()
                .map_err(build_err)?;
            let del_claim = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(name_key(kind, tenant, &current.name)))
                .condition_expression("id = :id")
                .expression_attribute_values(":id", AttributeValue::S(id.to_string()))
                .build()
                .map_err(build_err)?;
            let r = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(del_record).build())
                .transact_items(TransactWriteItem::builder().delete(del_claim).build())
                .send()
                .await;
            match r {
                Ok(_) => return Ok(true),
                // Changed or deleted meanwhile: look again.
                Err(e) if cancelled(&e) => continue,
                Err(e) => return Err(sdk(e)),
            }
        }
        Err(backend("too much contention on one record"))
    }
}
