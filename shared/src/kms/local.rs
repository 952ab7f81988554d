//! The local KeyService: a 256-bit master key in `<data-dir>/keys/master.key` (mode 0600),
//! created on first use. Data keys are wrapped with AES-256-GCM, the encryption context being
//! the associated data, so a key unwrapped under another context fails.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::{DataKey, EncryptionContext, KeyError, KeyService};

pub struct LocalKeyService {
    master: [u8; 32],
}

impl LocalKeyService {
    /// Load the master key from `path`, creating it if it does not exist.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let io = |e: std::io::Error| KeyError::Backend(format!("{}: {e}", path.display()));
        match std::fs::read(path) {
            Ok(bytes) => {
                let master: [u8; 32] =
                    bytes.as_slice().try_into().map_err(|_| KeyError::Backend(format!("{}: not a 32-byte key", path.display())))?;
                Ok(Self { master })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let mut master = [0u8; 32];
                rand::rng().fill_bytes(&mut master);
                write_private(path, &master).map_err(io)?;
                // Two processes may race to create it: whoever wrote last wins, read it back.
                let bytes = std::fs::read(path).map_err(io)?;
                let master: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Backend("master key changed size".into()))?;
                Ok(Self { master })
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn from_bytes(master: [u8; 32]) -> Self {
        Self { master }
    }

    /// A key for one purpose (e.g. signing download URLs), derived from the master key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.master).expect("any key length");
        m.update(b"egress/derive/v1/");
        m.update(purpose.as_bytes());
        m.finalize().into_bytes().into()
    }

    fn aad(context: &EncryptionContext) -> Vec<u8> {
        serde_json::to_vec(context).unwrap_or_default()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => f.write_all(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl KeyService for LocalKeyService {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let mut plaintext = [0u8; 32];
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut plaintext);
        rand::rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&self.master).map_err(|e| KeyError::Backend(e.to_string()))?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &Self::aad(context) })
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend(sealed);
        Ok(DataKey { plaintext, ciphertext })
    }

    async fn decrypt_data_key(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<[u8; 32], KeyError> {
        if ciphertext.len() < 12 {
            return Err(KeyError::Decrypt);
        }
        let cipher = Aes256Gcm::new_from_slice(&self.master).map_err(|e| KeyError::Backend(e.to_string()))?;
        let plain = cipher
            .decrypt(Nonce::from_slice(&ciphertext[..12]), Payload { msg: &ciphertext[12..], aad: &Self::aad(context) })
            .map_err(|_| KeyError::Decrypt)?;
        plain.as_slice().try_into().map_err(|_| KeyError::Decrypt)
    }

    async fn tenant_secret(&self, tenant: &str, purpose: &str) -> Result<[u8; 32], KeyError> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.master).expect("any key length");
        m.update(&super::secret_message(tenant, purpose));
        Ok(m.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn data_key_round_trips_only_under_its_context() {
        let dir = tempfile::tempdir().unwrap();
        let ks = LocalKeyService::open(&dir.path().join("k/master.key")).unwrap();
        let ctx: EncryptionContext = [("tenant".to_string(), "a".to_string())].into();
        let dk = ks.generate_data_key(&ctx).await.unwrap();
        assert_eq!(ks.decrypt_data_key(&dk.ciphertext, &ctx).await.unwrap(), dk.plaintext);
        let other: EncryptionContext = [("tenant".to_string(), "b".to_string())].into();
        assert!(matches!(ks.decrypt_data_key(&dk.ciphertext, &other).await, Err(KeyError::Decrypt)));
        // Reopening reads the same master key.
        let again = LocalKeyService::open(&dir.path().join("k/master.key")).unwrap();
        assert_eq!(again.decrypt_data_key(&dk.ciphertext, &ctx).await.unwrap(), dk.plaintext);
        assert_eq!(ks.derive("urls"), again.derive("urls"));
        assert_ne!(ks.derive("urls"), ks.derive("other"));
    }

    #[tokio::test]
    async fn tenant_secrets_are_stable_and_differ_by_tenant_purpose_and_master() {
        let dir = tempfile::tempdir().unwrap();
        let ks = LocalKeyService::open(&dir.path().join("master.key")).unwrap();
        let a = ks.tenant_secret("a", "salt").await.unwrap();
        assert_eq!(a, LocalKeyService::open(&dir.path().join("master.key")).unwrap().tenant_secret("a", "salt").await.unwrap());
        assert_ne!(a, ks.tenant_secret("b", "salt").await.unwrap());
        assert_ne!(a, ks.tenant_secret("a", "other").await.unwrap());
        assert_ne!(a, LocalKeyService::from_bytes([7; 32]).tenant_secret("a", "salt").await.unwrap());
        // Length prefixes: moving a character between purpose and tenant changes the secret.
        assert_ne!(ks.tenant_secret("ab", "c").await.unwrap(), ks.tenant_secret("b", "ca").await.unwrap());
        // Not the URL-signing key derivation either.
        assert_ne!(a, ks.derive("salt"));
    }
}
