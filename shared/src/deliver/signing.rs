//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), for webhook deliveries and
//! notifications.
//!
//! Each signed request carries three headers:
//! - `webhook-id`: the message id, the same on every retry of one message (receivers dedupe on it);
//! - `webhook-timestamp`: Unix seconds when this attempt was signed;
//! - `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed
//!   with the bytes of the secret (the base64 after `whsec_`).
//!
//! A receiver recomputes the HMAC over the raw body bytes, compares in constant time, and refuses
//! timestamps outside a tolerance window (five minutes is usual) so captured requests cannot be
//! replayed later: [`verify`] does exactly that.
//!
//! File bodies are streamed, so [`Signer`] takes the body in pieces: read the file once to sign
//! and again to send, with bounded memory.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header names of a signed request.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The usual tolerance between a signature's timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;
const GENERATED_KEY_BYTES: usize = 32;

/// A webhook signing secret (the key bytes). Its Debug output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a secret string is not a Standard Webhooks secret. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret is `whsec_` followed by base64; the value given is not base64")]
    NotBase64,
    #[error("a webhook secret holds {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes; the value given holds {0}")]
    Length(usize),
}

impl WebhookSecret {
    /// Parse `whsec_<base64>` (the prefix may be left out, as the reference libraries allow).
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.trim().strip_prefix(SECRET_PREFIX).unwrap_or(s.trim());
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(WebhookSecret { key })
    }

    /// The secret in its `whsec_<base64>` form, to store it or show it to the tenant once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }
}

/// A new random secret, `whsec_` + base64 of 32 bytes from the operating system's generator.
pub fn generate_secret() -> String {
    let mut key = vec![0u8; GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    WebhookSecret { key }.expose()
}

/// A signature computed over a body given in pieces.
pub struct Signer {
    mac: HmacSha256,
}

impl Signer {
    /// Start the signature of message `id` at `timestamp` (Unix seconds).
    pub fn new(secret: &WebhookSecret, id: &str, timestamp: i64) -> Self {
        let mut mac = secret.mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        Signer { mac }
    }

    /// Feed the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        self.mac.update(piece);
    }

    /// The `webhook-signature` header value: `v1,<base64>`.
    pub fn finish(self) -> String {
        format!("v1,{}", B64.encode(self.mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` value of a body held in memory.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut s = Signer::new(secret, id, timestamp);
    s.update(body);
    s.finish()
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} seconds away from now, more than the tolerance")]
    OutsideTolerance(i64),
    #[error("no v1 signature in webhook-signature matches")]
    NoMatch,
}

/// Check a signed request as a receiver would: `timestamp` within `tolerance_secs` of `now`
/// (Unix seconds), and one of the space-separated `v1,<base64>` signatures in
/// `signature_header` equal (in constant time) to the HMAC of `{id}.{timestamp}.{body}`.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.saturating_sub(ts);
    if skew.unsigned_abs() > tolerance_secs {
        return Err(VerifyError::OutsideTolerance(skew));
    }
    let mut expected = secret.mac();
    expected.update(format!("{id}.{ts}.").as_bytes());
    expected.update(body);
    for part in signature_header.split(' ') {
        let Some(b64) = part.strip_prefix("v1,") else { continue };
        let Ok(given) = B64.decode(b64) else { continue };
        // `verify_slice` compares in constant time.
        if expected.clone().verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference vector of the Standard Webhooks libraries ("sign function works").
    const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const REF_TS: i64 = 1614265330;
    const REF_BODY: &str = r#"{"test": 2432232314}"#;
    const REF_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn reference_vector() {
        let secret = WebhookSecret::parse(REF_SECRET).unwrap();
        assert_eq!(sign(&secret, REF_ID, REF_TS, REF_BODY.as_bytes()), REF_SIGNATURE);
    }

    #[test]
    fn incremental_signature_equals_whole_body_signature() {
        let secret = WebhookSecret::parse(REF_SECRET).unwrap();
        let mut s = Signer::new(&secret, REF_ID, REF_TS);
        for piece in REF_BODY.as_bytes().chunks(3) {
            s.update(piece);
        }
        assert_eq!(s.finish(), REF_SIGNATURE);
    }

    #[test]
    fn verify_accepts_the_reference_and_any_of_several_signatures() {
        let secret = WebhookSecret::parse(REF_SECRET).unwrap();
        let ts = REF_TS.to_string();
        verify(&secret, REF_ID, &ts, REF_SIGNATURE, REF_BODY.as_bytes(), REF_TS + 10, 300).unwrap();
        let several = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc {REF_SIGNATURE}");
        verify(&secret, REF_ID, &ts, &several, REF_BODY.as_bytes(), REF_TS, 300).unwrap();
    }

    #[test]
    fn verify_refuses_tampering_and_stale_timestamps() {
        let secret = WebhookSecret::parse(REF_SECRET).unwrap();
        let ts = REF_TS.to_string();
        let body = REF_BODY.as_bytes();
        assert_eq!(verify(&secret, REF_ID, &ts, REF_SIGNATURE, b"{\"test\": 1}", REF_TS, 300), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, "msg_other", &ts, REF_SIGNATURE, body, REF_TS, 300), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, REF_ID, &ts, "v1,", body, REF_TS, 300), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, REF_ID, &ts, &REF_SIGNATURE[..8], body, REF_TS, 300), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, REF_ID, "hello", REF_SIGNATURE, body, REF_TS, 300), Err(VerifyError::BadTimestamp));
        assert_eq!(verify(&secret, REF_ID, &ts, REF_SIGNATURE, body, REF_TS + 301, 300), Err(VerifyError::OutsideTolerance(301)));
        assert_eq!(verify(&secret, REF_ID, &ts, REF_SIGNATURE, body, REF_TS - 301, 300), Err(VerifyError::OutsideTolerance(-301)));
        let other = WebhookSecret::parse(&generate_secret()).unwrap();
        assert_eq!(verify(&other, REF_ID, &ts, REF_SIGNATURE, body, REF_TS, 300), Err(VerifyError::NoMatch));
    }

    #[test]
    fn secrets_parse_with_or_without_prefix_and_hide_in_debug() {
        let a = WebhookSecret::parse(REF_SECRET).unwrap();
        let b = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.expose(), REF_SECRET);
        assert_eq!(format!("{a:?}"), "WebhookSecret(<redacted>)");
        assert_eq!(WebhookSecret::parse("whsec_not base64!"), Err(SecretError::NotBase64));
        assert_eq!(WebhookSecret::parse("whsec_AAAA"), Err(SecretError::Length(3)));
    }

    #[test]
    fn generated_secrets_are_random_and_parse() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&a).unwrap().expose(), a);
    }
}
