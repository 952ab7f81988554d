//! API keys: `egk_<key id>_<secret>`. Shown once when created; stored as the key id and the
//! SHA-256 of the secret (the secret is 256 random bits, so a plain hash is enough); compared
//! in constant time.

use std::collections::BTreeSet;

use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::ids::random_hex;
use crate::model::{ApiKeyRecord, Permission, Principal};
use crate::store::{ApiKeyStore, StoreError};

pub const TOKEN_PREFIX: &str = "egk_";

/// A key just made: the token to hand over (once) and the record to store.
pub struct NewApiKey {
    pub token: String,
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey").field("token", &"<redacted>").field("record", &self.record).finish()
    }
}

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn generate(tenant: &str, permissions: BTreeSet<Permission>, description: &str) -> NewApiKey {
    let key_id = random_hex(8);
    let secret = random_hex(32);
    NewApiKey {
        token: format!("{TOKEN_PREFIX}{key_id}_{secret}"),
        record: ApiKeyRecord {
            key_id,
            tenant: tenant.to_string(),
            permissions,
            secret_sha256: secret_hash(&secret),
            created_at: Utc::now(),
            revoked: false,
            description: description.to_string(),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send `Authorization: Bearer <API key>`")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The principal behind an `Authorization` header value.
pub async fn authenticate(store: &dyn ApiKeyStore, authorization: Option<&str>) -> Result<Principal, AuthError> {
    let header = authorization.ok_or(AuthError::Missing)?.trim();
    let token = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err(AuthError::Invalid),
    };
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(AuthError::Invalid)?;
    let (key_id, secret) = rest.split_once('_').ok_or(AuthError::Invalid)?;
    if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Invalid);
    }
    let rec = store.get_api_key(key_id).await?.ok_or(AuthError::Invalid)?;
    let presented = secret_hash(secret);
    let ok: bool = presented.as_bytes().ct_eq(rec.secret_sha256.as_bytes()).into();
    if !ok || rec.revoked {
        return Err(AuthError::Invalid);
    }
    Ok(Principal { tenant: rec.tenant, key_id: rec.key_id, permissions: rec.permissions })
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn a_key_authenticates_and_a_changed_one_does_not() {
        let store = SqliteStore::in_memory().unwrap();
        let k = generate("acme", [Permission::View].into(), "test");
        store.put_api_key(&k.record).await.unwrap();
        let p = authenticate(&store, Some(&format!("Bearer {}", k.token))).await.unwrap();
        assert_eq!(p.tenant, "acme");
        assert!(p.can(Permission::View) && !p.can(Permission::Generate));
        let mut bad = k.token.clone();
        bad.pop();
        bad.push('x');
        assert!(matches!(authenticate(&store, Some(&format!("Bearer {bad}"))).await, Err(AuthError::Invalid)));
        assert!(matches!(authenticate(&store, None).await, Err(AuthError::Missing)));
        assert!(matches!(authenticate(&store, Some(&format!("Basic {}", k.token))).await, Err(AuthError::Invalid)));
    }
}
