//! What the sample events in `events/` name: their API key, its tenant and their export.
#![allow(dead_code)]

use egress::local::LocalHost;
use egress::model::{ApiKeyRecord, Permission};

pub const KEY_ID: &str = "0123456789abcdef";
pub const SECRET: &str = "sample-secret-of-the-sample-events";
pub const EXPORT_ID: &str = "exp_0192f0c0a0b07c3d8e9f00112233aabb";

/// Store the events' API key (tenant `acme`, every permission) in the host.
pub async fn store_key(host: &LocalHost) {
    host.store_api_key(&ApiKeyRecord {
        key_id: KEY_ID.into(),
        tenant: "acme".into(),
        permissions: [Permission::Admin].into(),
        secret_sha256: egress::auth::secret_hash(SECRET),
        created_at: chrono::Utc::now(),
        revoked: false,
        description: "sample events".into(),
    })
    .await
    .unwrap();
}
