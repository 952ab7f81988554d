//! The KeyService on KMS: data keys from GenerateDataKey (AES-256) under one KMS key, bound to
//! their encryption context; Decrypt refuses a ciphertext under another context. Tenant secrets
//! are GenerateMac (HMAC-SHA-256) of a fixed message under a second key, of spec HMAC_256: the
//! secret never leaves memory and needs no storage.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, MacAlgorithmSpec};

use super::sdk_error;
use crate::kms::{DataKey, EncryptionContext, KeyError, KeyService};

pub struct KmsKeyService {
    client: Client,
    key_id: String,
    mac_key_id: Option<String>,
}

impl KmsKeyService {
    /// Data keys under `key_id` (a key id, key ARN, alias name or alias ARN).
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into(), mac_key_id: None }
    }

    /// Tenant secrets from `mac_key_id`, a KMS key of spec HMAC_256 with usage
    /// GENERATE_VERIFY_MAC (without one, asking for a tenant secret is an error that says so).
    pub fn with_mac_key(mut self, mac_key_id: Option<String>) -> Self {
        self.mac_key_id = mac_key_id;
        self
    }
}

fn backend<E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_kms::error::SdkError<E, R>,
) -> KeyError {
    KeyError::Backend(sdk_error(&e))
}

fn key_of(plaintext: Option<Blob>) -> Option<[u8; 32]> {
    plaintext.and_then(|b| <[u8; 32]>::try_from(b.as_ref()).ok())
}

#[async_trait]
impl KeyService for KmsKeyService {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(backend)?;
        let plaintext = key_of(out.plaintext).ok_or_else(|| KeyError::Backend("GenerateDataKey returned no 32-byte key".into()))?;
        let ciphertext =
            out.ciphertext_blob.map(Blob::into_inner).ok_or_else(|| KeyError::Backend("GenerateDataKey returned no ciphertext".into()))?;
        Ok(DataKey { plaintext, ciphertext })
    }

    async fn decrypt_data_key(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<[u8; 32], KeyError> {
        let r = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await;
        match r {
            Ok(out) => key_of(out.plaintext).ok_or(KeyError::Decrypt),
            Err(e) => match e.as_service_error() {
                Some(DecryptError::InvalidCiphertextException(_) | DecryptError::IncorrectKeyException(_)) => Err(KeyError::Decrypt),
                _ => Err(backend(e)),
            },
        }
    }

    async fn tenant_secret(&self, tenant: &str, purpose: &str) -> Result<[u8; 32], KeyError> {
        let key = self.mac_key_id.as_deref().ok_or_else(|| {
            KeyError::NotConfigured("EGRESS_HASH_KEY_ID is not set: hashed fields need a KMS key of spec HMAC_256".into())
        })?;
        let out = self
            .client
            .generate_mac()
            .key_id(key)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(crate::kms::secret_message(tenant, purpose)))
            .send()
            .await
            .map_err(backend)?;
        key_of(out.mac).ok_or_else(|| KeyError::Backend("GenerateMac returned no 32-byte MAC".into()))
    }
}
