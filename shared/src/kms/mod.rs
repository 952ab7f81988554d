//! KeyService: data keys for envelope encryption, keys for signing, and per-tenant secrets
//! (the salt of hashed fields). KMS on AWS
//! (GenerateDataKey / Decrypt with an encryption context); a key file in the data folder on the
//! embedded default.

pub mod local;

use std::collections::BTreeMap;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The ciphertext is not ours, was changed, or the context differs.
    #[error("the data key could not be decrypted with this context")]
    Decrypt,
    #[error("key service error: {0}")]
    Backend(String),
    /// The service lacks a key this operation needs (a setting to fix, not worth retrying).
    #[error("{0}")]
    NotConfigured(String),
}

/// A fresh data key: use `plaintext`, store `ciphertext`.
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("plaintext", &"<redacted>").field("ciphertext_len", &self.ciphertext.len()).finish()
    }
}

/// Encryption context: bound to the key, needed again to decrypt it (e.g. tenant and purpose).
pub type EncryptionContext = BTreeMap<String, String>;

#[async_trait]
pub trait KeyService: Send + Sync {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError>;
    async fn decrypt_data_key(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<[u8; 32], KeyError>;
    /// A 32-byte secret for `purpose` and `tenant`: the same on every call, on every host,
    /// different for another tenant or purpose, and not computable without the service's key.
    /// Never stored or logged by the caller: derived again when needed.
    async fn tenant_secret(&self, tenant: &str, purpose: &str) -> Result<[u8; 32], KeyError>;
}

/// The purpose of the salt of hashed fields (`mask: {"type": "hash"}`).
pub const FIELD_HASH_SALT: &str = "field-hash-salt";

/// The message a tenant secret is derived from: purpose and tenant, each prefixed with its
/// length so that no two pairs give the same bytes.
pub fn secret_message(tenant: &str, purpose: &str) -> Vec<u8> {
    let mut m = b"egress/tenant-secret/v1/".to_vec();
    for part in [purpose, tenant] {
        m.extend((part.len() as u32).to_be_bytes());
        m.extend(part.as_bytes());
    }
    m
}
