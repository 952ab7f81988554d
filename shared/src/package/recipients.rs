//! Registered recipient keys as the packager needs them: parsed and checked from what the
//! tenant registered (`POST /v1/recipient-keys`), by id, for one kind of encryption.

use base64::Engine;
use serde_json::{Value, json};

use super::age::{self as age_pkg, AgeRecipient};
use super::openpgp::{self, RecipientKey};
use crate::model::recipient_key::{RecipientKeyDoc, RecipientKeyKind};
use crate::store::{RecordKind, RecordStore};

/// A recipient key, parsed and checked (an OpenPGP key is unexpired and can encrypt).
#[derive(Debug, Clone)]
pub enum ParsedKey {
    OpenPgp(Box<RecipientKey>),
    Age(AgeRecipient),
}

/// Parse a key of `kind` from the bytes it was given as. The error says why, never quoting
/// more than a recipient's worth of the input.
pub fn parse(kind: RecipientKeyKind, bytes: &[u8]) -> Result<ParsedKey, String> {
    match kind {
        RecipientKeyKind::OpenPgp => openpgp::parse_public_key(bytes).map(|k| ParsedKey::OpenPgp(Box::new(k))).map_err(|e| e.to_string()),
        RecipientKeyKind::Age => {
            let text = std::str::from_utf8(bytes).map_err(|_| "an age recipient is text (`age1...`)".to_string())?;
            age_pkg::parse_recipient(text).map(ParsedKey::Age).map_err(|e| e.to_string())
        }
    }
}

/// What a key is, for people: fingerprint, user ids, algorithm and expiry of an OpenPGP key;
/// the recipient itself for age.
pub fn describe(key: &ParsedKey) -> Value {
    match key {
        ParsedKey::OpenPgp(k) => serde_json::to_value(k.info()).unwrap_or(Value::Null),
        ParsedKey::Age(r) => json!({"recipient": r.as_str()}),
    }
}

/// Why registered keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no recipient key `{0}` is registered for this tenant")]
    NotFound(String),
    #[error("the recipient key `{id}` is an {actual} key, not {wanted}")]
    WrongKind { id: String, actual: &'static str, wanted: &'static str },
    #[error("the recipient key `{id}` cannot be used: {why}")]
    Unusable { id: String, why: String },
    #[error("the recipient keys could not be read: {0}")]
    Store(String),
}

/// The tenant's keys `ids`, each of `kind`, parsed and checked now; errors are per key, in
/// order (the index is the key's position in `ids`).
pub async fn load(
    store: &dyn RecordStore,
    tenant: &str,
    kind: RecipientKeyKind,
    ids: &[String],
) -> Result<Vec<ParsedKey>, Vec<(usize, LoadError)>> {
    let mut keys = Vec::new();
    let mut errs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match load_one(store, tenant, kind, id).await {
            Ok(k) => keys.push(k),
            Err(e) => errs.push((i, e)),
        }
    }
    if errs.is_empty() { Ok(keys) } else { Err(errs) }
}

async fn load_one(store: &dyn RecordStore, tenant: &str, kind: RecipientKeyKind, id: &str) -> Result<ParsedKey, LoadError> {
    let rec = store
        .get_record(RecordKind::RecipientKey, tenant, id)
        .await
        .map_err(|e| LoadError::Store(e.to_string()))?
        .ok_or_else(|| LoadError::NotFound(id.to_string()))?;
    let doc: RecipientKeyDoc = serde_json::from_value(rec.doc)
        .map_err(|e| LoadError::Unusable { id: id.to_string(), why: format!("the stored key does not parse: {e}") })?;
    if doc.kind != kind {
        return Err(LoadError::WrongKind { id: id.to_string(), actual: doc.kind.as_str(), wanted: kind.as_str() });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&doc.key_base64)
        .map_err(|e| LoadError::Unusable { id: id.to_string(), why: format!("the stored key is not base64: {e}") })?;
    parse(kind, &bytes).map_err(|why| LoadError::Unusable { id: id.to_string(), why })
}
