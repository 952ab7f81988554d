//! Records: a tenant's named configuration objects (credentials, recipient keys, settings,
//! templates, schedules), each a JSON document with a kind, an id, a name unique per tenant and
//! kind, and a version for conditional writes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Page, StoreError};

/// What a record is. The string is part of the stored key: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Credential,
    RecipientKey,
    /// The tenant's settings: one record with the id `settings`.
    Settings,
    Template,
    /// An earlier version of a template, kept under the scope `<tenant>~<template id>` and named
    /// `v` and its number (ten digits, so they sort), so a template record stays small however
    /// often it changes.
    TemplateVersion,
    Schedule,
    /// One run of a schedule, kept under the scope `<tenant>~<schedule id>` and named by its
    /// fire key (so one fire has one run).
    ScheduleRun,
    /// A scheduler's progress through one schedule's fires, kept under one scope for all
    /// tenants ([`crate::model::schedule::STATE_SCOPE`]).
    ScheduleState,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Credential => "credential",
            RecordKind::RecipientKey => "recipient_key",
            RecordKind::Settings => "settings",
            RecordKind::Template => "template",
            RecordKind::TemplateVersion => "template_version",
            RecordKind::Schedule => "schedule",
            RecordKind::ScheduleRun => "schedule_run",
            RecordKind::ScheduleState => "schedule_state",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: RecordKind,
    pub tenant: String,
    pub id: String,
    /// Unique per tenant and kind; fixed when the record is created.
    pub name: String,
    /// 1 when created, one more on every replacement.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The record's body, as JSON.
    pub doc: serde_json::Value,
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Insert a record (version 1). `AlreadyExists` if its id or its name is taken.
    async fn create_record(&self, record: &Record) -> Result<(), StoreError>;
    async fn get_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<Option<Record>, StoreError>;
    async fn get_record_by_name(&self, kind: RecordKind, tenant: &str, name: &str) -> Result<Option<Record>, StoreError>;
    /// Newest first (ids are time-ordered), `limit` at most, after the page `cursor`.
    async fn list_records(&self, kind: RecordKind, tenant: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Record>, StoreError>;
    /// Replace the record if its stored version is still `record.version`; returns it with the
    /// next version. `Precondition` if another write came first, `NotFound` if it is gone. The
    /// name cannot change.
    async fn put_record_if_version(&self, record: &Record) -> Result<Record, StoreError>;
    /// Remove a record (and free its name). `false` if there was none.
    async fn delete_record(&self, kind: RecordKind, tenant: &str, id: &str) -> Result<bool, StoreError>;
}

/// Read, change and conditionally write a record, retrying when another writer came first.
pub async fn update_record<E>(
    store: &dyn RecordStore,
    kind: RecordKind,
    tenant: &str,
    id: &str,
    mut change: impl FnMut(&mut Record) -> Result<(), E>,
) -> Result<Record, super::UpdateError<E>> {
    use super::UpdateError;
    for _ in 0..50 {
        let Some(mut r) = store.get_record(kind, tenant, id).await.map_err(UpdateError::Store)? else {
            return Err(UpdateError::NotFound);
        };
        change(&mut r).map_err(UpdateError::Refused)?;
        r.updated_at = Utc::now();
        match store.put_record_if_version(&r).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Precondition) => continue,
            Err(StoreError::NotFound) => return Err(UpdateError::NotFound),
            Err(e) => return Err(UpdateError::Store(e)),
        }
    }
    Err(super::UpdateError::Store(StoreError::Backend("too much contention on one record".into())))
}
