//! A tenant's registered recipient keys (`rk_...`): the public keys exports are encrypted to.
//! Public, so they may be shown; the key's own bytes are kept as they were given.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a recipient key, as in JSON: `openpgp` or `age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientKeyKind {
    #[serde(rename = "openpgp")]
    OpenPgp,
    #[serde(rename = "age")]
    Age,
}

impl RecipientKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKeyKind::OpenPgp => "openpgp",
            RecipientKeyKind::Age => "age",
        }
    }
}

/// What is stored for one recipient key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipientKeyDoc {
    #[serde(rename = "type")]
    pub kind: RecipientKeyKind,
    /// The key's bytes as given (an armored or binary OpenPGP key, an `age1...` recipient),
    /// base64.
    pub key_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the key is when it was registered: fingerprint, user ids, algorithm, expiry (see
    /// [`crate::package::recipients::describe`]).
    pub details: Value,
}

/// A new recipient key id: `rk_` + 32 hex digits of a UUID v7.
pub fn recipient_key_id() -> String {
    format!("rk_{}", uuid::Uuid::now_v7().simple())
}
