//! Identifiers: time-ordered (UUID v7) with a type prefix, so an id says what it names.

use rand::RngCore;

/// A new export id, `exp_` + 32 hex digits of a UUID v7 (sorts by creation time).
pub fn export_id() -> String {
    format!("exp_{}", uuid::Uuid::now_v7().simple())
}

/// A new request id for logs and audit events.
pub fn request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

/// `n` random bytes from the operating system's generator, hex encoded.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// True when `id` looks like an export id; anything else cannot name an export.
pub fn is_export_id(id: &str) -> bool {
    id.len() == 36 && id.starts_with("exp_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
}
