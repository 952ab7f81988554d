//! Sealed secrets: envelope encryption of credentials. Each secret gets a fresh data key from
//! the [`KeyService`] (KMS on AWS, the local key file on the embedded default), bound to an
//! encryption context naming the tenant and the credential, and is encrypted with AES-256-GCM.
//! Only the sealed form is stored; opening needs the key service and the same context, so a
//! sealed secret copied to another tenant or credential does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::kms::{EncryptionContext, KeyError, KeyService};
use crate::model::credential::CredentialSecret;
use crate::store::{RecordKind, RecordStore, StoreError};

/// What is stored: the data key as the key service encrypted it, a nonce and the ciphertext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// base64
    pub data_key: String,
    /// base64, 12 bytes
    pub nonce: String,
    /// base64: AES-256-GCM of the secret's JSON, with the context as associated data.
    pub ciphertext: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no credential `{0}`")]
    NotFound(String),
    #[error("the credential `{0}` could not be opened (changed, or sealed for another tenant)")]
    Corrupt(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn context(tenant: &str, credential_id: &str) -> EncryptionContext {
    [("purpose", "credential"), ("tenant", tenant), ("credential", credential_id)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn aad(ctx: &EncryptionContext) -> Vec<u8> {
    serde_json::to_vec(ctx).unwrap_or_default()
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Seal a secret for one tenant's credential.
pub async fn seal(keys: &dyn KeyService, tenant: &str, credential_id: &str, secret: &CredentialSecret) -> Result<Sealed, SecretError> {
    let ctx = context(tenant, credential_id);
    let dk = keys.generate_data_key(&ctx).await?;
    let cipher = Aes256Gcm::new_from_slice(&dk.plaintext).map_err(|e| KeyError::Backend(e.to_string()))?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let plain = serde_json::to_vec(secret).map_err(|e| KeyError::Backend(e.to_string()))?;
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad(&ctx) })
        .map_err(|_| KeyError::Backend("sealing failed".into()))?;
    Ok(Sealed { data_key: B64.encode(&dk.ciphertext), nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext) })
}

/// Open a sealed secret of one tenant's credential.
pub async fn open(keys: &dyn KeyService, tenant: &str, credential_id: &str, sealed: &Sealed) -> Result<CredentialSecret, SecretError> {
    let corrupt = || SecretError::Corrupt(credential_id.to_string());
    let ctx = context(tenant, credential_id);
    let data_key = B64.decode(&sealed.data_key).map_err(|_| corrupt())?;
    let key = match keys.decrypt_data_key(&data_key, &ctx).await {
        Ok(k) => k,
        Err(KeyError::Decrypt) => return Err(corrupt()),
        Err(e) => return Err(e.into()),
    };
    let nonce = B64.decode(&sealed.nonce).map_err(|_| corrupt())?;
    if nonce.len() != 12 {
        return Err(corrupt());
    }
    let ct = B64.decode(&sealed.ciphertext).map_err(|_| corrupt())?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| KeyError::Backend(e.to_string()))?;
    let plain = cipher.decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad(&ctx) }).map_err(|_| corrupt())?;
    serde_json::from_slice(&plain).map_err(|_| corrupt())
}

/// The stored document of a credential record: its type, a description, the sealed secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialDoc {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub sealed: Sealed,
}

/// Load and open a tenant's credential by id.
pub async fn load_credential(
    store: &dyn RecordStore,
    keys: &dyn KeyService,
    tenant: &str,
    credential_id: &str,
) -> Result<CredentialSecret, SecretError> {
    let rec = store
        .get_record(RecordKind::Credential, tenant, credential_id)
        .await?
        .ok_or_else(|| SecretError::NotFound(credential_id.to_string()))?;
    let doc: CredentialDoc = serde_json::from_value(rec.doc).map_err(|_| SecretError::Corrupt(credential_id.to_string()))?;
    open(keys, tenant, credential_id, &doc.sealed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::local::LocalKeyService;

    #[tokio::test]
    async fn sealed_secrets_open_only_for_their_tenant_and_credential() {
        let keys = LocalKeyService::from_bytes([7; 32]);
        let secret = CredentialSecret::Password { password: "correct horse battery staple".into() };
        let sealed = seal(&keys, "t1", "cred_a", &secret).await.unwrap();
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("horse"), "the stored form holds no plaintext");
        assert_eq!(open(&keys, "t1", "cred_a", &sealed).await.unwrap(), secret);
        assert!(matches!(open(&keys, "t2", "cred_a", &sealed).await, Err(SecretError::Corrupt(_))));
        assert!(matches!(open(&keys, "t1", "cred_b", &sealed).await, Err(SecretError::Corrupt(_))));
        let mut tampered = sealed.clone();
        let mut ct = B64.decode(&tampered.ciphertext).unwrap();
        ct[0] ^= 1;
        tampered.ciphertext = B64.encode(ct);
        assert!(matches!(open(&keys, "t1", "cred_a", &tampered).await, Err(SecretError::Corrupt(_))));
    }
}
