//! Signed download URLs of the local host: `/v1/files/{key}?expires=..&filename=..&sig=..`,
//! where `sig` is HMAC-SHA256 over the key, expiry, file name and content type. On AWS the
//! same role is played by S3 presigned URLs.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Characters left as they are in a URL component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// As COMPONENT, but `/` kept, for the key in the path.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

pub const FILES_PREFIX: &str = "/v1/files/";

fn mac(secret: &[u8], key: &str, expires: i64, filename: &str, content_type: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for part in [key, &expires.to_string(), filename, content_type] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
    m
}

/// The path and query of a signed URL (to be put after the host's base URL).
pub fn sign(secret: &[u8], key: &str, expires: i64, filename: &str, content_type: &str) -> String {
    let sig = hex::encode(mac(secret, key, expires, filename, content_type).finalize().into_bytes());
    format!(
        "{FILES_PREFIX}{}?expires={expires}&filename={}&type={}&sig={sig}",
        utf8_percent_encode(key, PATH),
        utf8_percent_encode(filename, COMPONENT),
        utf8_percent_encode(content_type, COMPONENT),
    )
}

/// What a verified URL grants.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    pub key: String,
    pub filename: String,
    pub content_type: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or malformed parameters, or a signature that does not match.
    BadSignature,
    Expired,
}

/// Check a signed URL's path and query at time `now` (Unix seconds). The signature is compared
/// in constant time.
pub fn verify(secret: &[u8], path: &str, query: &str, now: i64) -> Result<Grant, Refusal> {
    let raw_key = path.strip_prefix(FILES_PREFIX).ok_or(Refusal::BadSignature)?;
    let key = percent_decode_str(raw_key).decode_utf8().map_err(|_| Refusal::BadSignature)?.into_owned();
    let (mut expires, mut filename, mut content_type, mut sig) = (None, None, None, None);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode_str(v).decode_utf8().map_err(|_| Refusal::BadSignature)?.into_owned();
        match k {
            "expires" => expires = v.parse::<i64>().ok(),
            "filename" => filename = Some(v),
            "type" => content_type = Some(v),
            "sig" => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(expires), Some(filename), Some(content_type), Some(sig)) = (expires, filename, content_type, sig) else {
        return Err(Refusal::BadSignature);
    };
    mac(secret, &key, expires, &filename, &content_type).verify_slice(&sig).map_err(|_| Refusal::BadSignature)?;
    if now >= expires {
        return Err(Refusal::Expired);
    }
    Ok(Grant { key, filename, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn split(url: &str) -> (&str, &str) {
        url.split_once('?').unwrap()
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let url = sign(SECRET, "tenants/t/exports/e/a b.csv", 1000, "a b.csv", "text/csv; charset=utf-8");
        let (p, q) = split(&url);
        let g = verify(SECRET, p, q, 999).unwrap();
        assert_eq!(g.key, "tenants/t/exports/e/a b.csv");
        assert_eq!(g.content_type, "text/csv; charset=utf-8");
        assert_eq!(verify(SECRET, p, q, 1000), Err(Refusal::Expired));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let url = sign(SECRET, "tenants/t/exports/e/x.csv", 1000, "x.csv", "text/csv");
        let (p, q) = split(&url);
        assert_eq!(verify(SECRET, "/v1/files/tenants/u/exports/e/x.csv", q, 0), Err(Refusal::BadSignature));
        assert_eq!(verify(SECRET, p, &q.replace("expires=1000", "expires=2000"), 0), Err(Refusal::BadSignature));
        assert_eq!(verify(b"another secret", p, q, 0), Err(Refusal::BadSignature));
        assert_eq!(verify(SECRET, p, "expires=1000", 0), Err(Refusal::BadSignature));
    }
}
