//! Delivery to a Google Cloud Storage bucket through the JSON API: a resumable upload per file,
//! sent in [`CHUNK_SIZE`] chunks read from the file one at a time. The object exists only once
//! the last chunk lands, and the last chunk is sent only after the file's SHA-256 matched: a
//! failed delivery leaves no object behind. A service account authenticates with a JWT signed
//! with its key (RS256) and exchanged for an access token; without a key no `Authorization` is
//! sent (emulators only).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use reqwest::{Client, StatusCode, Url};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::sha2::Sha256 as RsaSha256;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{self, CREDENTIAL_ID_ALLOWED, Endpoints, check_digest, local_size, object_key, read_chunk};
use super::http_status::{error_from_reqwest, error_from_response, error_from_status, quote_body};
use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

/// The size of each chunk of a resumable upload: 8 MiB, a multiple of 256 KiB as GCS requires.
pub const CHUNK_SIZE: u64 = 8 * 1024 * 1024;
/// The OAuth scope of the access token: objects read and written, nothing else.
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// How long the signed JWT is valid.
const JWT_LIFETIME_SECS: i64 = 3600;
/// Answers in a row that take no new bytes before a chunk is given up.
const MAX_STALLS: u32 = 3;

/// A Google Cloud Storage destination, as the export spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// The bucket (GCS bucket-name rules).
    pub bucket: String,
    /// Folder of the files in the bucket (`in/daily`): relative, no `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A stored service-account key (`cred_...`). Required against Google; an emulator
    /// takes requests without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl GcsConfig {
    /// Check every field; errors point at `{at}/field`.
    pub fn validate(&self, at: &str) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(why) = check_bucket_name(&self.bucket) {
            errors.push(format!("{at}/bucket"), self.bucket.as_str(), why);
        }
        if let Some(p) = &self.prefix {
            if let Err(why) = endpoints::check_prefix(p) {
                errors.push(format!("{at}/prefix"), p.as_str(), why);
            } else if p.starts_with(".well-known/acme-challenge") {
                errors.push(format!("{at}/prefix"), p.as_str(), "a prefix outside `.well-known/acme-challenge/` (GCS refuses those names)");
            }
        }
        if let Some(c) = &self.credential
            && !endpoints::is_credential_id(c)
        {
            errors.push(format!("{at}/credential"), c.as_str(), CREDENTIAL_ID_ALLOWED);
        }
        errors.into_result()
    }

    /// Where the files go: `gs://bucket/prefix/`.
    pub fn location(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
            Some(p) => format!("gs://{}/{p}/", self.bucket),
            None => format!("gs://{}/", self.bucket),
        }
    }
}

/// Checks a GCS bucket name; the error says what is allowed.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    const ALLOWED: &str = "3 to 63 lowercase letters, digits, `-`, `_` or `.` (up to 222 with dots, each dot-separated part at most 63), starting and ending with a letter or digit, not an IP address, not starting with `goog`, not containing `google`";
    let max = if name.contains('.') { 222 } else { 63 };
    let ok = (3..=max).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.split('.').all(|p| !p.is_empty() && p.len() <= 63)
        && !endpoints::looks_like_ipv4(name)
        && !name.starts_with("goog")
        && !name.contains("google")
        && !name.contains("g00gle");
    if ok { Ok(()) } else { Err(ALLOWED.to_string()) }
}

/// A service account's key, from the JSON file Google issues. Only what signing needs is kept;
/// the key never appears in errors or `Debug`.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    key: RsaPrivateKey,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
}

impl ServiceAccountKey {
    /// Read a service-account key file (`"type": "service_account"`, `client_email`,
    /// `private_key` as a PKCS#8 PEM). The error names what is missing, never the key.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let f: KeyFile = serde_json::from_str(json)
            .map_err(|e| format!("not a service-account key file: bad JSON at line {}, column {}", e.line(), e.column()))?;
        if f.kind.as_deref() != Some("service_account") {
            return Err("not a service-account key file: `type` must be `service_account`".into());
        }
        let client_email = f.client_email.filter(|e| e.contains('@')).ok_or("the key file has no `client_email`")?;
        let pem = f.private_key.ok_or("the key file has no `private_key`")?;
        let key = parse_pem_key(&pem)?;
        Ok(Self { client_email, private_key_id: f.private_key_id, key })
    }

    /// A signed JWT asking for an access token of [`SCOPE`] at `token_uri`, issued at `now`
    /// (seconds since the epoch), valid one hour.
    pub fn assertion(&self, token_uri: &str, now: i64) -> Result<String, DeliverError> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = self.claims(token_uri, now);
        let signing_input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let signer = SigningKey::<RsaSha256>::new(self.key.clone());
        let signature = signer
            .try_sign_with_rng(&mut SystemRng, signing_input.as_bytes())
            .map_err(|_| DeliverError::permanent("the service-account key could not sign the token request"))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature.to_bytes())))
    }

    /// The JWT claims of [`Self::assertion`].
    pub fn claims(&self, token_uri: &str, now: i64) -> Value {
        json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": token_uri,
            "iat": now,
            "exp": now + JWT_LIFETIME_SECS,
        })
    }
}

impl ServiceAccountKey {
    /// The key's public half, to check signatures (tests, diagnostics).
    pub fn public_key(&self) -> rsa::RsaPublicKey {
        self.key.to_public_key()
    }
}

/// Decode a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`).
fn parse_pem_key(pem: &str) -> Result<RsaPrivateKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let pem = pem.trim();
    let (label, body) = ["PRIVATE KEY", "RSA PRIVATE KEY"]
        .iter()
        .find_map(|l| {
            let begin = format!("-----BEGIN {l}-----");
            let end = format!("-----END {l}-----");
            pem.strip_prefix(&begin).and_then(|r| r.strip_suffix(&end)).map(|b| (*l, b))
        })
        .ok_or("the `private_key` is not a PEM private key")?;
    let der = B64
        .decode(body.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .map_err(|_| "the `private_key` PEM is not valid base64".to_string())?;
    let key = if label == "PRIVATE KEY" { RsaPrivateKey::from_pkcs8_der(&der).ok() } else { RsaPrivateKey::from_pkcs1_der(&der).ok() };
    key.ok_or_else(|| "the `private_key` is not an RSA private key".to_string())
}

/// The operating system's generator through rand 0.9, for rsa's rand_core 0.6 traits (the
/// signature is computed with blinding).
struct SystemRng;

impl rsa::rand_core::RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rng())
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rng())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for SystemRng {}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// Exchange the key's signed JWT for an access token at `token_uri`.
pub async fn access_token(client: &Client, key: &ServiceAccountKey, token_uri: &str) -> Result<String, DeliverError> {
    let assertion = key.assertion(token_uri, chrono::Utc::now().timestamp())?;
    let what = "GCS token exchange";
    let response = client
        .post(token_uri)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)]))
        .send()
        .await
        .map_err(|e| error_from_reqwest(what, e))?;
    if !response.status().is_success() {
        return Err(error_from_response(what, response).await);
    }
    let body = response.bytes().await.map_err(|e| error_from_reqwest(what, e))?;
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|_| DeliverError::permanent(format!("{what}: the answer has no `access_token`")))?;
    Ok(answer.access_token)
}

/// Deliver `files` to the bucket of `cfg`, authenticated with `key` (the stored credential
/// `cfg.credential` resolved), or without authentication when `None` (emulators).
pub async fn deliver(
    cfg: &GcsConfig,
    key: Option<&ServiceAccountKey>,
    endpoints: &Endpoints,
    files: &[OutgoingFile],
) -> Result<Evidence, DeliverError> {
    cfg.validate("").map_err(|e| DeliverError::permanent(format!("the GCS destination is not valid: {e}")))?;
    let names: Vec<String> = files.iter().map(|f| object_key(cfg.prefix.as_deref(), &f.remote_name)).collect::<Result<_, _>>()?;
    let base = Url::parse(&endpoints.gcs_base).map_err(|e| DeliverError::permanent(format!("EGRESS_GCS_ENDPOINT: {e}")))?;
    let client = endpoints::http_client()?;
    let token = match key {
        Some(k) => Some(access_token(&client, k, &endpoints.gcs_token_uri).await?),
        None => None,
    };
    let dest = Destination { client, base, bucket: &cfg.bucket, token };
    let mut details = Map::new();
    details.insert("bucket".into(), json!(cfg.bucket));
    if let Some(k) = key {
        details.insert("service_account".into(), json!(k.client_email));
    }
    let mut evidence = Evidence { location: cfg.location(), files: Vec::with_capacity(files.len()), details };
    for (file, name) in files.iter().zip(&names) {
        evidence.files.push(dest.upload(file, name).await?);
    }
    Ok(evidence)
}

struct Destination<'a> {
    client: Client,
    base: Url,
    bucket: &'a str,
    token: Option<String>,
}

impl Destination<'_> {
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn upload(&self, file: &OutgoingFile, name: &str) -> Result<Map<String, Value>, DeliverError> {
        let size = local_size(file).await?;
        let session = self.start_session(file, name, size).await?;
        let object = match self.send_chunks(file, name, size, &session).await {
            Ok(o) => o,
            Err(e) => {
                // Best effort: an abandoned session expires by itself after a week.
                let _ = self.authorize(self.client.delete(session)).send().await;
                return Err(e);
            }
        };
        let field = |k: &str| object.get(k).cloned().unwrap_or(Value::Null);
        let mut ev = Map::new();
        ev.insert("name".into(), json!(name));
        ev.insert("generation".into(), field("generation"));
        ev.insert("md5Hash".into(), field("md5Hash"));
        ev.insert("crc32c".into(), field("crc32c"));
        ev.insert("etag".into(), field("etag"));
        ev.insert("size".into(), json!(size));
        ev.insert("sha256".into(), json!(file.sha256));
        Ok(ev)
    }

    /// Start a resumable upload; returns the session URI (on the API's own origin).
    async fn start_session(&self, file: &OutgoingFile, name: &str, size: u64) -> Result<Url, DeliverError> {
        let what = format!("GCS start upload of gs://{}/{name}", self.bucket);
        let mut url = self.url(&["upload", "storage", "v1", "b", self.bucket, "o"]);
        url.query_pairs_mut().append_pair("uploadType", "resumable").append_pair("name", name);
        let meta = json!({"name": name, "contentType": file.content_type, "metadata": {"sha256": file.sha256}});
        let response = self
            .authorize(self.client.post(url))
            .header("X-Upload-Content-Type", &file.content_type)
            .header("X-Upload-Content-Length", size)
            .json(&meta)
            .send()
            .await
            .map_err(|e| error_from_reqwest(&what, e))?;
        if !response.status().is_success() {
            return Err(error_from_response(&what, response).await);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DeliverError::transient(format!("{what}: the answer has no session URI")))?;
        let session = self.base.join(location).map_err(|_| DeliverError::permanent(format!("{what}: the session URI is not a URL")))?;
        if session.origin() != self.base.origin() {
            return Err(DeliverError::permanent(format!("{what}: the session URI is on another host")));
        }
        Ok(session)
    }

    /// Send the file in chunks, resuming from what GCS says it holds; returns the object.
    async fn send_chunks(&self, file: &OutgoingFile, name: &str, size: u64, session: &Url) -> Result<Map<String, Value>, DeliverError> {
        let what = format!("GCS upload of gs://{}/{name}", self.bucket);
        let mut hasher = Sha256::new();
        let mut hashed = 0u64;
        let mut verified = false;
        let mut offset = 0u64;
        let mut stalls = 0;
        loop {
            let len = CHUNK_SIZE.min(size - offset);
            let data = read_chunk(file, offset, len as usize).await?;
            // Hash only bytes not hashed yet (a chunk GCS kept in part is sent again).
            if offset + len > hashed {
                hasher.update(&data[(hashed - offset) as usize..]);
                hashed = offset + len;
            }
            if hashed == size && !verified {
                check_digest(file, &hasher.clone().finalize().into())?;
                verified = true;
            }
            let range = if size == 0 { "bytes */0".to_string() } else { format!("bytes {offset}-{}/{size}", offset + len - 1) };
            let response = self
                .authorize(self.client.put(session.clone()))
                .header(reqwest::header::CONTENT_RANGE, range)
                .body(data)
                .send()
                .await
                .map_err(|e| error_from_reqwest(&what, e))?;
            let status = response.status();
            if status == StatusCode::OK || status == StatusCode::CREATED {
                let body = response.bytes().await.map_err(|e| error_from_reqwest(&what, e))?;
                if offset + len != size {
                    return Err(DeliverError::permanent(format!("{what}: GCS ended the upload at byte {}", offset + len)));
                }
                return serde_json::from_slice::<Map<String, Value>>(&body)
                    .map_err(|_| DeliverError::permanent(format!("{what}: the answer is not an object resource: {}", quote_body(&body))));
            }
            if status.as_u16() != 308 {
                return Err(error_from_response(&what, response).await);
            }
            let kept = persisted(response.headers())
                .ok_or_else(|| error_from_status(&what, status, response.headers(), b"unreadable Range header"))?;
            if kept > offset + len {
                return Err(DeliverError::permanent(format!("{what}: GCS holds {kept} bytes, more than were sent")));
            }
            stalls = if kept > offset { 0 } else { stalls + 1 };
            if stalls >= MAX_STALLS {
                return Err(DeliverError::transient(format!("{what}: GCS took no bytes of the chunk at {offset} {MAX_STALLS} times")));
            }
            offset = kept;
        }
    }
}

/// The number of bytes a 308 says GCS holds: `Range: bytes=0-N` is N+1, no Range is 0.
fn persisted(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    match headers.get(reqwest::header::RANGE) {
        None => Some(0),
        Some(v) => {
            let last: u64 = v.to_str().ok()?.trim().strip_prefix("bytes=0-")?.parse().ok()?;
            Some(last + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::signature::Verifier;

    use super::*;
    use crate::model::validation::from_json;

    fn test_key_json() -> String {
        let key = RsaPrivateKey::new(&mut SystemRng, 1024).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let body = B64.encode(der.as_bytes());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        json!({
            "type": "service_account", "project_id": "p", "private_key_id": "kid-1", "private_key": pem,
            "client_email": "egress@p.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"
        })
        .to_string()
    }

    #[test]
    fn the_jwt_is_rs256_with_the_storage_claims() {
        let json = test_key_json();
        let key = ServiceAccountKey::from_json(&json).unwrap();
        let jwt = key.assertion("https://oauth2.googleapis.com/token", 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"}));
        let claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({
                "iss": "egress@p.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/devstorage.read_write",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000, "exp": 1_700_003_600
            })
        );
        let signature = Signature::try_from(B64URL.decode(parts[2]).unwrap().as_slice()).unwrap();
        let verifier = VerifyingKey::<RsaSha256>::new(key.public_key());
        verifier.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).unwrap();
        assert!(verifier.verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &signature).is_err());
    }

    #[test]
    fn the_key_never_shows_in_debug_or_errors() {
        let json = test_key_json();
        let key = ServiceAccountKey::from_json(&json).unwrap();
        let d = format!("{key:?}");
        assert!(d.contains("egress@p.iam") && !d.contains("BEGIN") && d.contains("<redacted>"), "{d}");
        let broken = json.replace("MII", "!!!");
        let e = ServiceAccountKey::from_json(&broken).unwrap_err();
        assert!(!e.contains("!!!"), "{e}");
        let e = ServiceAccountKey::from_json(r#"{"type": "authorized_user", "private_key": "secret"}"#).unwrap_err();
        assert!(e.contains("service_account") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn config_fields_are_checked() {
        let cfg: GcsConfig = from_json(&json!({"bucket": "exports_2024.example", "prefix": "in", "credential": "cred_gcs1"})).unwrap();
        cfg.validate("/d").unwrap();
        assert_eq!(cfg.location(), "gs://exports_2024.example/in/");
        let cfg: GcsConfig = from_json(&json!({"bucket": "google-drop", "prefix": "../x", "credential": "key"})).unwrap();
        let err = cfg.validate("/d").unwrap_err();
        let pointers: Vec<&str> = err.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/d/bucket", "/d/prefix", "/d/credential"]);
        assert!(from_json::<GcsConfig>(&json!({"bucket": "abc", "project": "p"})).is_err());
    }

    #[test]
    fn a_308_range_says_what_gcs_holds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(persisted(&h), Some(0));
        h.insert(reqwest::header::RANGE, "bytes=0-8388607".parse().unwrap());
        assert_eq!(persisted(&h), Some(CHUNK_SIZE));
        h.insert(reqwest::header::RANGE, "bytes=5-9".parse().unwrap());
        assert_eq!(persisted(&h), None);
    }
}
