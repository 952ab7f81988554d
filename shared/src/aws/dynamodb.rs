//! The JobStore on DynamoDB: one table, the same semantics as [`crate::store::sqlite`].
//!
//! # Key design
//!
//! The table has string keys `pk` (hash) and `sk` (range), two global secondary indexes with
//! projection ALL, `gsi1` (`gsi1pk`, `gsi1sk`) and `gsi2` (`gsi2pk`, `gsi2sk`), pay per
//! request, and the TTL attribute `ttl` (epoch seconds). Every key names the tenant, except an
//! API key's, which is looked up before the tenant is known.
//!
//! | item         | `pk`              | `sk`                              | other attributes |
//! |--------------|-------------------|-----------------------------------|------------------|
//! | export       | `T#<tenant>`      | `EXPORT#<id>`                     | `doc` (the export as JSON; above 32 KB zlib-compressed in `docz` instead), `version`, `tenant`, `id`, `status`, `format`, `created_us`, gsi keys |
//! | chunk record | `T#<tenant>`      | `EXPORT#<id>#CHUNK#<index:06>`    | `doc`, `index` |
//! | idempotency  | `T#<tenant>`      | `IDEM#<key>`                      | `request_hash`, `state` (`in_flight`/`done`), `response`, `created_us`, `ttl` |
//! | audit event  | `T#<tenant>`      | `AUDIT#<seq:020>`                 | `doc` |
//! | API key      | `APIKEY#<key_id>` | `APIKEY`                          | `tenant`, `doc` |
//! | record       | `T#<tenant>`      | `REC#<kind>#<id>`                 | `name`, `version`, `doc` ([`super::dynamodb_records`]) |
//! | record name  | `T#<tenant>`      | `RECNAME#<kind>#<name>`           | `id`: claims the name, written in one transaction with the record |
//!
//! Indexes (only exports carry their keys):
//! - `gsi1`: a tenant's exports by time. `gsi1pk = T#<tenant>#EXPORTS`,
//!   `gsi1sk = <created_us:020>#<id>`; read newest first, `created_after/before` as a key range,
//!   a status or format as a filter (pages are filled across filtered-out items).
//! - `gsi2`: sparse, active exports only (`pending`, `running`; a write to any other status
//!   removes the attributes). `gsi2pk = ACTIVE#<status>`, `gsi2sk = T#<tenant>#<created_us:020>#<id>`:
//!   `list_active_exports` reads its two partitions across tenants, and a tenant's listing
//!   filtered on `pending` or `running` reads its own range of one of them.
//!
//! Every state change is conditional: `create_export` on `attribute_not_exists`, a replacement
//! on the stored `version`, a chunk record on `attribute_not_exists` in one transaction with the
//! version-conditioned export write that adds its rows, an audit event on its `seq` not being
//! taken. Page cursors are base64 of the JSON of the next page's exclusive start key together
//! with the index it belongs to; a cursor that is not one of this tenant's is `InvalidCursor`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{sdk_error, sdk_message};
use crate::audit::AuditEvent;
use crate::model::{ApiKeyRecord, ChunkRecord, Export, ExportStatus, Progress};
use crate::store::{
    ApiKeyStore, AuditStore, ExportQuery, ExportStore, IdempotencyBegin, IdempotencyStore, Page, StoreError, StoredResponse,
};

pub(super) type Item = HashMap<String, AttributeValue>;

/// DynamoDB-backed [`crate::store::JobStore`].
#[derive(Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
}

const GSI1: &str = "gsi1";
const GSI2: &str = "gsi2";
/// Sorts after every character of a `<created_us:020>#<id>` suffix.
const HIGH: &str = "~";

pub(super) fn backend(msg: impl Into<String>) -> StoreError {
    StoreError::Backend(msg.into())
}

pub(super) fn sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError::Backend(sdk_error(&e))
}

pub(super) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(sdk_message(&e))
}

/// True when the call failed on its ConditionExpression.
pub(super) fn is_conditional<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(backend(format!("stored item has no string attribute `{name}`"))),
    }
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| backend(format!("stored attribute `{name}` is not a number: {v}"))),
        _ => Err(backend(format!("stored item has no number attribute `{name}`"))),
    }
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| backend(e.to_string()))
}

fn from_doc<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(get_s(item, "doc")?).map_err(|e| backend(format!("stored document does not parse: {e}")))
}

pub(super) fn tenant_pk(tenant: &str) -> String {
    format!("T#{tenant}")
}

fn export_sk(id: &str) -> String {
    format!("EXPORT#{id}")
}

fn chunk_prefix(id: &str) -> String {
    format!("EXPORT#{id}#CHUNK#")
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time as a sortable key part: 20 digits (times before 1970 sort as 1970).
fn time_key(us: i64) -> String {
    format!("{:020}", us.max(0))
}

fn gsi1_pk(tenant: &str) -> String {
    format!("T#{tenant}#EXPORTS")
}

fn gsi2_pk(status: ExportStatus) -> String {
    format!("ACTIVE#{}", status.as_str())
}

fn gsi2_tenant_prefix(tenant: &str) -> String {
    format!("T#{tenant}#")
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// The export's item: its document and the attributes that keys and filters need.
fn export_item(e: &Export) -> Result<Item, StoreError> {
    let created = micros(e.created_at);
    let mut item = key(tenant_pk(&e.tenant), export_sk(&e.id));
    let doc = to_doc(e)?;
    if doc.len() <= COMPRESS_ABOVE {
        item.insert("doc".into(), s(doc));
    } else {
        item.insert("docz".into(), AttributeValue::B(Blob::new(compress(doc.as_bytes())?)));
    }
    item.insert("version".into(), n(e.version));
    item.insert("tenant".into(), s(&e.tenant));
    item.insert("id".into(), s(&e.id));
    item.insert("status".into(), s(e.status.as_str()));
    item.insert("format".into(), s(e.spec.format.kind().as_str()));
    item.insert("created_us".into(), n(created));
    item.insert("gsi1pk".into(), s(gsi1_pk(&e.tenant)));
    item.insert("gsi1sk".into(), s(format!("{}#{}", time_key(created), e.id)));
    if ExportStatus::ACTIVE.contains(&e.status) {
        item.insert("gsi2pk".into(), s(gsi2_pk(e.status)));
        item.insert("gsi2sk".into(), s(format!("{}{}#{}", gsi2_tenant_prefix(&e.tenant), time_key(created), e.id)));
    }
    Ok(item)
}

/// Export documents longer than this (an inline source's rows) are stored zlib-compressed in
/// the binary attribute `docz`: a DynamoDB item holds at most 400 KB.
const COMPRESS_ABOVE: usize = 32 * 1024;

fn compress(data: &[u8]) -> Result<Vec<u8>, StoreError> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).and_then(|()| z.finish()).map_err(|e| backend(e.to_string()))
}

/// The export of an item; the `version` attribute is the truth.
fn export_of(item: &Item) -> Result<Export, StoreError> {
    let mut e: Export = match item.get("docz") {
        Some(AttributeValue::B(z)) => serde_json::from_reader(flate2::read::ZlibDecoder::new(z.as_ref()))
            .map_err(|e| backend(format!("stored compressed document does not parse: {e}")))?,
        _ => from_doc(item)?,
    };
    e.version = get_n(item, "version")?;
    Ok(e)
}

/// An opaque page cursor: the index and the exclusive start key of the next page.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    i: String,
    k: HashMap<String, String>,
}

const CURSOR_KEYS: [&str; 4] = ["pk", "sk", "idx_pk", "idx_sk"];

fn encode_cursor(index: &str, item: &Item) -> Result<String, StoreError> {
    let mut k = HashMap::new();
    let (idx_pk, idx_sk) = (format!("{index}pk"), format!("{index}sk"));
    for (name, stored) in [("pk", "pk"), ("sk", "sk"), ("idx_pk", idx_pk.as_str()), ("idx_sk", idx_sk.as_str())] {
        k.insert(name.to_string(), get_s(item, stored)?.to_string());
    }
    let json = serde_json::to_vec(&Cursor { i: index.to_string(), k }).map_err(|e| backend(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// The exclusive start key of a cursor, if it was handed out for this index, partition and
/// tenant.
fn decode_cursor(cursor: &str, index: &str, tenant: &str, index_pk: &str) -> Result<Item, StoreError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&raw).map_err(|_| StoreError::InvalidCursor)?;
    let get = |name: &str| c.k.get(name).ok_or(StoreError::InvalidCursor);
    let ok = c.i == index
        && c.k.len() == CURSOR_KEYS.len()
        && get("pk")? == &tenant_pk(tenant)
        && get("sk")?.starts_with("EXPORT#")
        && get("idx_pk")? == index_pk
        && (index != GSI2 || get("idx_sk")?.starts_with(&gsi2_tenant_prefix(tenant)));
    if !ok {
        return Err(StoreError::InvalidCursor);
    }
    let mut key = Item::new();
    key.insert("pk".into(), s(get("pk")?));
    key.insert("sk".into(), s(get("sk")?));
    key.insert(format!("{index}pk"), s(get("idx_pk")?));
    key.insert(format!("{index}sk"), s(get("idx_sk")?));
    Ok(key)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub(super) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await.map_err(sdk)?;
        Ok(out.item)
    }

    /// Every item of a query, following its pages.
    async fn query_all(&self, pk: String, sk_prefix: String, forward: bool, limit: Option<usize>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(&sk_prefix))
                .consistent_read(true)
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            if let Some(l) = limit {
                q = q.limit((l - items.len()).clamp(1, 1000) as i32);
            }
            let out = q.send().await.map_err(sdk)?;
            items.extend(out.items.unwrap_or_default());
            if limit.is_some_and(|l| items.len() >= l) {
                items.truncate(limit.unwrap_or(usize::MAX));
                return Ok(items);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Delete items by key, 25 a batch, retrying what DynamoDB left unprocessed.
    async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for batch in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| backend(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..10u32 {
                let out = self.client.batch_write_item().request_items(&self.table, requests.clone()).send().await.map_err(sdk)?;
                requests = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 9 {
                    return Err(backend("DynamoDB left deletes unprocessed after 10 attempts"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
            }
        }
        Ok(())
    }
}

/// The table [`DynamoStore`] expects, as the SAM template declares it. For tests and local
/// set-ups; waits until the table is active.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attr = |n: &str| AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build();
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let gsi = |name: &str| -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash).map_err(build_err)?)
            .key_schema(key(&format!("{name}sk"), KeyType::Range).map_err(build_err)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(build_err)
    };
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash).map_err(build_err)?)
        .key_schema(key("sk", KeyType::Range).map_err(build_err)?)
        .global_secondary_indexes(gsi(GSI1)?)
        .global_secondary_indexes(gsi(GSI2)?);
    for a in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        create = create.attribute_definitions(attr(a).map_err(build_err)?);
    }
    create.send().await.map_err(sdk)?;
    for _ in 0..600 {
        let out = client.describe_table().table_name(name).send().await.map_err(sdk)?;
        let status = out.table.and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build().map_err(build_err)?)
        .send()
        .await
        .map_err(sdk)?;
    Ok(())
}

#[async_trait]
impl ExportStore for DynamoStore {
    async fn create_export(&self, export: &Export) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(export_item(export)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn get_export(&self, tenant: &str, id: &str) -> Result<Option<Export>, StoreError> {
        self.get_item(key(tenant_pk(tenant), export_sk(id))).await?.map(|i| export_of(&i)).transpose()
    }

    async fn list_exports(&self, tenant: &str, q: &ExportQuery) -> Result<Page<Export>, StoreError> {
        let limit = q.limit.clamp(1, 100);
        // The time range as a key range: created_us > after and < before, newest first.
        let lo = q.created_after.map_or_else(|| time_key(0), |t| time_key(micros(t).saturating_add(1)));
        let hi = match q.created_before {
            Some(t) if micros(t) <= 0 => return Ok(Page { items: Vec::new(), next_cursor: None }),
            Some(t) => format!("{}#{HIGH}", time_key(micros(t) - 1)),
            None => HIGH.to_string(),
        };
        if lo > hi {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let (index, index_pk, sk_lo, sk_hi) = match q.status {
            Some(st) if ExportStatus::ACTIVE.contains(&st) => {
                let prefix = gsi2_tenant_prefix(tenant);
                (GSI2, gsi2_pk(st), format!("{prefix}{lo}"), format!("{prefix}{hi}"))
            }
            _ => (GSI1, gsi1_pk(tenant), lo, hi),
        };
        let mut start = q.cursor.as_deref().map(|c| decode_cursor(c, index, tenant, &index_pk)).transpose()?;
        let mut filters = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":pk".to_string(), s(&index_pk)), (":lo".to_string(), s(sk_lo)), (":hi".to_string(), s(sk_hi))]);
        if let (Some(st), GSI1) = (q.status, index) {
            filters.push("#status = :status");
            names.insert("#status".to_string(), "status".to_string());
            values.insert(":status".into(), s(st.as_str()));
        }
        if let Some(f) = q.format {
            filters.push("#format = :format");
            names.insert("#format".to_string(), "format".to_string());
            values.insert(":format".into(), s(f.as_str()));
        }
        // Read until the page and one more item are found (so a next page is known to exist),
        // or the range ends.
        let mut found: Vec<Item> = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("{index}pk = :pk AND {index}sk BETWEEN :lo AND :hi"))
                .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit((limit + 1 - found.len()).max(if filters.is_empty() { 1 } else { 100 }) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| {
                    // DynamoDB refuses a start key outside the key condition.
                    if e.as_service_error().and_then(|s| s.code()) == Some("ValidationException") && q.cursor.is_some() {
                        StoreError::InvalidCursor
                    } else {
                        sdk(e)
                    }
                })?;
            found.extend(out.items.unwrap_or_default());
            if found.len() > limit {
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let next_cursor = if found.len() > limit { Some(encode_cursor(index, &found[limit - 1])?) } else { None };
        found.truncate(limit);
        let items = found.iter().map(export_of).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn put_export_if_version(&self, export: &Export) -> Result<Export, StoreError> {
        let mut e = export.clone();
        let expected = e.version;
        e.version += 1;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(export_item(&e)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        match r {
            Ok(_) => Ok(e),
            Err(err) if is_conditional(&err) => {
                if self.get_item(key(tenant_pk(&e.tenant), export_sk(&e.id))).await?.is_some() {
                    Err(StoreError::Precondition)
                } else {
                    Err(StoreError::NotFound)
                }
            }
            Err(err) => Err(sdk(err)),
        }
    }

    async fn delete_export(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), export_sk(id))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk)?;
        let existed = out.attributes.is_some_and(|a| !a.is_empty());
        let chunks = self.query_all(tenant_pk(tenant), chunk_prefix(id), true, None).await?;
        let keys = chunks
            .iter()
            .map(|c| Ok(key(get_s(c, "pk")?.to_string(), get_s(c, "sk")?.to_string())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.delete_keys(keys).await?;
        Ok(existed)
    }

    async fn record_chunk(&self, tenant: &str, export_id: &str, chunk: &ChunkRecord) -> Result<(Progress, bool), StoreError> {
        let chunk_key = key(tenant_pk(tenant), format!("{}{:06}", chunk_prefix(export_id), chunk.index));
        let mut chunk_item = chunk_key.clone();
        chunk_item.insert("doc".into(), s(to_doc(chunk)?));
        chunk_item.insert("index".into(), n(chunk.index));
        for _ in 0..50 {
            let Some(mut export) = self.get_export(tenant, export_id).await? else {
                return Err(StoreError::NotFound);
            };
            // Cheap check first: a repeat needs no transaction.
            if self.get_item(chunk_key.clone()).await?.is_some() {
                return Ok((export.progress, false));
            }
            let expected = export.version;
            export.count_chunk(chunk.rows);
            let put_chunk = Put::builder()
                .table_name(&self.table)
                .set_item(Some(chunk_item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err)?;
            let put_export = Put::builder()
                .table_name(&self.table)
                .set_item(Some(export_item(&export)?))
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected))
                .build()
                .map_err(build_err)?;
            let r = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_chunk).build())
                .transact_items(TransactWriteItem::builder().put(put_export).build())
                .send()
                .await;
            match r {
                Ok(_) => return Ok((export.progress, true)),
                Err(e) => {
                    let reasons: Vec<Option<String>> = match e.as_service_error() {
                        Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                            c,
                        )) => c.cancellation_reasons().iter().map(|r| r.code().map(str::to_string)).collect(),
                        _ => return Err(sdk(e)),
                    };
                    let failed = |i: usize| reasons.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed");
                    if failed(0) {
                        // Another call recorded this chunk first: report the progress after it.
                        let export = self.get_export(tenant, export_id).await?.ok_or(StoreError::NotFound)?;
                        return Ok((export.progress, false));
                    }
                    if !failed(1) {
                        // Cancelled for another reason (a conflicting transaction): retry.
                        tracing::debug!(error = %sdk_message(&e), "record_chunk transaction cancelled; retrying");
                    }
                    // The export changed since it was read: read it again.
                }
            }
        }
        Err(backend("too much contention on one export"))
    }

    async fn list_chunks(&self, tenant: &str, export_id: &str) -> Result<Vec<ChunkRecord>, StoreError> {
        let items = self.query_all(tenant_pk(tenant), chunk_prefix(export_id), true, None).await?;
        let mut chunks = items.iter().map(from_doc::<ChunkRecord>).collect::<Result<Vec<_>, _>>()?;
        chunks.sort_by_key(|c| c.index);
        Ok(chunks)
    }

    async fn list_active_exports(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut found: Vec<(i64, String, String)> = Vec::new();
        for status in ExportStatus::ACTIVE {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI2)
                    .key_condition_expression("gsi2pk = :pk")
                    .expression_attribute_values(":pk", s(gsi2_pk(*status)))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(sdk)?;
                for item in out.items.unwrap_or_default() {
                    found.push((get_n(&item, "created_us")?, get_s(&item, "tenant")?.to_string(), get_s(&item, "id")?.to_string()));
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, t, id)| (t, id)).collect())
    }
}

fn idem_key(tenant: &str, key: &str) -> Item {
    self::key(tenant_pk(tenant), format!("IDEM#{key}"))
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn idempotency_begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        ttl_secs: i64,
        stale_secs: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        for _ in 0..10 {
            let now = Utc::now();
            let now_us = now.timestamp_micros();
            let mut item = idem_key(tenant, key);
            item.insert("request_hash".into(), s(request_hash));
            item.insert("state".into(), s("in_flight"));
            item.insert("created_us".into(), n(now_us));
            item.insert("ttl".into(), n(now.timestamp().saturating_add(ttl_secs.max(0))));
            // Claim the key if nobody holds it, its record expired, or its claim went stale.
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR created_us < :expired OR (#state = :in_flight AND created_us < :stale)")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":expired", n(now_us.saturating_sub(ttl_secs.saturating_mul(1_000_000))))
                .expression_attribute_values(":stale", n(now_us.saturating_sub(stale_secs.saturating_mul(1_000_000))))
                .expression_attribute_values(":in_flight", s("in_flight"))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(IdempotencyBegin::Started),
                Err(e) if is_conditional(&e) => {}
                Err(e) => return Err(sdk(e)),
            }
            // Someone holds the key: say what they hold. Gone meanwhile (abandoned): try again.
            let Some(stored) = self.get_item(idem_key(tenant, key)).await? else { continue };
            return Ok(if get_s(&stored, "request_hash")? != request_hash {
                IdempotencyBegin::Mismatch
            } else if get_s(&stored, "state")? == "in_flight" {
                IdempotencyBegin::InFlight
            } else {
                let response = get_s(&stored, "response").unwrap_or("null");
                IdempotencyBegin::Done(serde_json::from_str(response).map_err(|e| backend(format!("stored response does not parse: {e}")))?)
            });
        }
        Err(backend("idempotency key changed hands too often"))
    }

    async fn idempotency_complete(&self, tenant: &str, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(idem_key(tenant, key)))
            .update_expression("SET #state = :done, #response = :response")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":response", s(to_doc(response)?))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // No claim to complete: nothing to do (as an UPDATE of no row).
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn idempotency_abandon(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idem_key(tenant, key)))
            .condition_expression("#state = :in_flight")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_flight", s("in_flight"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }
}

fn api_key_key(key_id: &str) -> Item {
    key(format!("APIKEY#{key_id}"), "APIKEY".into())
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn put_api_key(&self, rec: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut item = api_key_key(&rec.key_id);
        item.insert("tenant".into(), s(&rec.tenant));
        item.insert("doc".into(), s(to_doc(rec)?));
        // Insert, or replace a key of the same tenant; a key id of another tenant is left alone.
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR tenant = :tenant")
            .expression_attribute_values(":tenant", s(&rec.tenant))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_item(api_key_key(key_id)).await?.map(|i| from_doc(&i)).transpose()
    }
}

fn audit_sk(seq: u64) -> String {
    format!("AUDIT#{seq:020}")
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn last_audit(&self, tenant: &str) -> Result<Option<AuditEvent>, StoreError> {
        let items = self.query_all(tenant_pk(tenant), "AUDIT#".into(), false, Some(1)).await?;
        items.first().map(from_doc).transpose()
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut item = key(tenant_pk(&event.tenant), audit_sk(event.seq));
        item.insert("doc".into(), s(to_doc(event)?));
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Err(StoreError::Precondition),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn list_audit(&self, tenant: &str, after_seq: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        if limit == 0 || after_seq == u64::MAX {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(tenant_pk(tenant)))
                .expression_attribute_values(":lo", s(audit_sk(after_seq + 1)))
                .expression_attribute_values(":hi", s(format!("AUDIT#{HIGH}")))
                .consistent_read(true)
                .limit((limit - events.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            for item in out.items.unwrap_or_default() {
                events.push(from_doc::<AuditEvent>(&item)?);
            }
            if events.len() >= limit {
                events.truncate(limit);
                return Ok(events);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(events),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), s(*v))).collect()
    }

    #[test]
    fn cursors_belong_to_their_tenant_and_index() {
        let it = item(&[("pk", "T#a"), ("sk", "EXPORT#exp_1"), ("gsi1pk", "T#a#EXPORTS"), ("gsi1sk", "00000000000000000001#exp_1")]);
        let c = encode_cursor(GSI1, &it).unwrap();
        let key = decode_cursor(&c, GSI1, "a", &gsi1_pk("a")).unwrap();
        assert_eq!(key, it);
        assert!(matches!(decode_cursor(&c, GSI1, "b", &gsi1_pk("b")), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode_cursor(&c, GSI2, "a", &gsi2_pk(ExportStatus::Pending)), Err(StoreError::InvalidCursor)));
        for bad in ["", "not-a-cursor", "e30", "MTIzNDU2Nzg5MDoxMjM"] {
            assert!(matches!(decode_cursor(bad, GSI1, "a", &gsi1_pk("a")), Err(StoreError::InvalidCursor)), "{bad}");
        }
    }

    #[test]
    fn items_without_their_attributes_are_errors_not_panics() {
        assert!(matches!(export_of(&item(&[("doc", "{}")])), Err(StoreError::Backend(_))));
        assert!(matches!(export_of(&item(&[("pk", "T#a")])), Err(StoreError::Backend(_))));
        let mut bad_version = item(&[("doc", "{}")]);
        bad_version.insert("version".into(), n("x"));
        assert!(matches!(get_n::<u64>(&bad_version, "version"), Err(StoreError::Backend(_))));
    }
}
