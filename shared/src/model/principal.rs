//! Who is calling: a principal with a tenant and permissions, from an API key.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "exports:generate")]
    Generate,
    #[serde(rename = "exports:view")]
    View,
    #[serde(rename = "exports:download")]
    Download,
    #[serde(rename = "exports:delete")]
    Delete,
    #[serde(rename = "exports:schedule")]
    Schedule,
    /// Every permission.
    #[serde(rename = "exports:admin")]
    Admin,
}

pub const PERMISSIONS: &str = "exports:generate, exports:view, exports:download, exports:delete, exports:schedule, exports:admin";

impl Permission {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "exports:generate" => Self::Generate,
            "exports:view" => Self::View,
            "exports:download" => Self::Download,
            "exports:delete" => Self::Delete,
            "exports:schedule" => Self::Schedule,
            "exports:admin" => Self::Admin,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generate => "exports:generate",
            Self::View => "exports:view",
            Self::Download => "exports:download",
            Self::Delete => "exports:delete",
            Self::Schedule => "exports:schedule",
            Self::Admin => "exports:admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub key_id: String,
    pub permissions: BTreeSet<Permission>,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p) || self.permissions.contains(&Permission::Admin)
    }
}

/// A stored API key: the secret only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub tenant: String,
    pub permissions: BTreeSet<Permission>,
    /// Hex SHA-256 of the secret part of the key.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub description: String,
}

/// A tenant name: 1 to 64 of `a-z 0-9 - _`.
pub fn is_valid_tenant(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
