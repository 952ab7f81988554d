//! Webhook destination: an HTTP POST per file (`mode: "file"`, the bytes streamed from the local
//! file) or one JSON document with download links (`mode: "link"`), signed with Standard
//! Webhooks headers ([`super::signing`]) and sent through the outbound policy
//! ([`super::net_guard`]). A 2xx answer is the receipt.
//!
//! Every request carries `webhook-id` (the same on every retry of one message, so a receiver can
//! drop duplicates), `webhook-timestamp` and, with a secret, `webhook-signature`. File requests
//! also carry `egress-export-id`, `egress-file-name` (percent-encoded UTF-8) and
//! `egress-file-sha256`, with `Content-Type` and `Content-Length` of the file.
//!
//! Outcomes: 2xx is a receipt (status and the SHA-256 of at most 64 KiB of the answer);
//! 408, 429, 5xx, timeouts and connection errors are transient (with `Retry-After` when given);
//! other answers, and anything the outbound policy refuses, are permanent.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::net_guard::{self, AllowList, ClientOptions, GuardError, Redirects};
use super::signing::{self, Signer, WebhookSecret};
use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::{ValidationErrors, pointer_token};

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;
/// Default and largest `timeout_secs`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// How much of an answer is read (and digested for the receipt).
pub const RESPONSE_DIGEST_LIMIT: usize = 64 * 1024;
/// At most this many extra headers, each value at most this long.
pub const MAX_EXTRA_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_LEN: usize = 1024;

/// Header names a webhook config may not set: the HTTP framing, and the names this module sets.
const DENIED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
];
const DENIED_HEADER_PREFIXES: &[&str] = &["webhook-", "egress-", "proxy-"];

const CHUNK: usize = 64 * 1024;
/// Characters percent-encoded in `egress-file-name` (besides everything outside ASCII).
const FILE_NAME_SET: &AsciiSet = &CONTROLS.add(b'%');

/// Where a webhook destination posts, and how. Part of an export's `destinations`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver: an absolute `http` or `https` URL without `user:password@`, at most 2,048
    /// characters.
    pub url: String,
    /// `link` (default): one JSON document with a download link per file. `file`: one POST per
    /// file with its bytes as the body.
    #[serde(default)]
    pub mode: WebhookMode,
    /// Id of the stored credential (`cred_...`) holding the `whsec_...` signing secret. Without
    /// it requests carry `webhook-id` and `webhook-timestamp` but no signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_credential: Option<String>,
    /// Longest wait, in seconds, for the receiver to make progress (connect, accept the next
    /// piece of the body, answer): 1 to 300, default 30.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Extra request headers (e.g. `Authorization`). Not allowed: `Host`, `Content-*`,
    /// `Transfer-Encoding`, connection headers, `webhook-*`, `egress-*`, `proxy-*`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values (Authorization) and the URL's query may hold tokens.
        let url = Url::parse(&self.url).map(|u| net_guard::redact_url(&u)).unwrap_or_else(|_| "<unparsable>".into());
        let headers: BTreeMap<&str, &str> = self.headers.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("WebhookConfig")
            .field("url", &url)
            .field("mode", &self.mode)
            .field("secret_credential", &self.secret_credential)
            .field("timeout_secs", &self.timeout_secs)
            .field("headers", &headers)
            .finish()
    }
}

/// What a webhook sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    /// One JSON document listing the files with download links.
    #[default]
    Link,
    /// One POST per file, the file's bytes as the body.
    File,
}

impl WebhookMode {
    fn as_str(self) -> &'static str {
        match self {
            WebhookMode::Link => "link",
            WebhookMode::File => "file",
        }
    }
}

impl WebhookConfig {
    /// The outbound policy at create time: a URL whose host is an IP literal in a forbidden
    /// class is refused unless the tenant's `allow` list names it. Names are checked again where
    /// they resolve, at delivery.
    pub fn check_policy(&self, pointer_prefix: &str, allow: &AllowList, errs: &mut ValidationErrors) {
        if let Ok(u) = Url::parse(&self.url)
            && let Err(g) = net_guard::check_url(allow, &u)
        {
            errs.push(format!("{pointer_prefix}/url"), net_guard::redact_url(&u), format!("a URL the outbound policy allows: {g}"));
        }
    }

    /// Every static check, errors under `pointer_prefix` (e.g. `/destinations/0`): the URL
    /// (scheme, no user info, length), the credential id, the timeout, the extra headers. The
    /// outbound policy needs the tenant's allowed hosts: [`WebhookConfig::check_policy`].
    pub fn validate(&self, pointer_prefix: &str, errs: &mut ValidationErrors) {
        let p = |field: &str| format!("{pointer_prefix}/{field}");
        if self.url.len() > MAX_URL_LEN {
            errs.push(p("url"), self.url.as_str(), format!("a URL of at most {MAX_URL_LEN} characters"));
        } else {
            match Url::parse(&self.url) {
                Err(e) => errs.push(p("url"), self.url.as_str(), format!("an absolute http or https URL ({e})")),
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    errs.push(p("url"), self.url.as_str(), "an http or https URL");
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => errs.push(
                    p("url"),
                    net_guard::redact_url(&u),
                    "a URL without user:password@ (send credentials in `headers`, e.g. Authorization)",
                ),
                Ok(_) => {}
            }
        }
        if let Some(c) = &self.secret_credential
            && !is_credential_id(c)
        {
            errs.push(p("secret_credential"), c.as_str(), "a credential id: cred_ followed by 1 to 64 letters, digits, _ or -");
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            errs.push(p("timeout_secs"), self.timeout_secs, format!("seconds from 1 to {MAX_TIMEOUT_SECS}"));
        }
        if self.headers.len() > MAX_EXTRA_HEADERS {
            errs.push(p("headers"), self.headers.len(), format!("at most {MAX_EXTRA_HEADERS} headers"));
        }
        let mut seen = std::collections::HashSet::new();
        for (name, value) in &self.headers {
            let hp = format!("{pointer_prefix}/headers/{}", pointer_token(name));
            if let Err(allowed) = check_header_name(name) {
                errs.push(hp.clone(), name.as_str(), allowed);
            } else if !seen.insert(name.to_ascii_lowercase()) {
                errs.push(hp.clone(), name.as_str(), "each header name once (names are case-insensitive)");
            }
            if let Err(allowed) = check_header_value(value) {
                // The value may be a token: say what is wrong without echoing it.
                errs.push(hp, "<redacted>", allowed);
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.clamp(1, MAX_TIMEOUT_SECS))
    }
}

fn is_credential_id(s: &str) -> bool {
    s.strip_prefix("cred_")
        .is_some_and(|rest| (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

fn check_header_name(name: &str) -> Result<HeaderName, String> {
    let allowed = "a header name (letters, digits and !#$%&'*+-.^_`|~, at most 64), not Host, Content-*, Transfer-Encoding, \
                   Connection, Keep-Alive, Upgrade, TE, Trailer, Expect, webhook-*, egress-* or proxy-*";
    let lower = name.to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 64
        || DENIED_HEADERS.contains(&lower.as_str())
        || lower.starts_with("content-")
        || DENIED_HEADER_PREFIXES.iter().any(|pre| lower.starts_with(pre))
    {
        return Err(allowed.to_string());
    }
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| allowed.to_string())
}

fn check_header_value(value: &str) -> Result<HeaderValue, String> {
    let allowed = format!("a header value of at most {MAX_HEADER_VALUE_LEN} visible ASCII characters, spaces or tabs (no CR or LF)");
    if value.len() > MAX_HEADER_VALUE_LEN || !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err(allowed);
    }
    let mut v = HeaderValue::from_str(value).map_err(|_| allowed)?;
    v.set_sensitive(true);
    Ok(v)
}

/// One file in a link-mode notice.
#[derive(Clone, PartialEq, Serialize)]
pub struct FileLink {
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Download URL (signed; a bearer capability until it expires).
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for FileLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = Url::parse(&self.url).map(|u| net_guard::redact_url(&u)).unwrap_or_else(|_| "<unparsable>".into());
        f.debug_struct("FileLink")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("sha256", &self.sha256)
            .field("url", &url)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a webhook delivery sends; it must match the config's mode.
#[derive(Debug, Clone)]
pub enum WebhookPayload {
    /// `mode: "file"`: each file's bytes, streamed from its local path.
    Files { export_id: String, files: Vec<OutgoingFile> },
    /// `mode: "link"`: one document `{"type": "export.delivered", "export_id", "tenant",
    /// "files": [{"name", "size", "sha256", "url", "expires_at"}]}`.
    Links { export_id: String, tenant: String, files: Vec<FileLink> },
}

/// The receiver's answer to one request: the proof kept in the receipt. Holds no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReceipt {
    pub status: u16,
    /// Hex SHA-256 of the answer's first `response_bytes` bytes (at most 64 KiB).
    pub response_sha256: String,
    pub response_bytes: u64,
    /// False when the answer was longer than 64 KiB, or stopped arriving, and was cut.
    pub response_complete: bool,
    pub webhook_id: String,
    /// Where the answer came from when a redirect was followed (without query).
    pub final_url: Option<String>,
}

impl HttpReceipt {
    /// The receipt as JSON fields for [`Evidence`].
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("status".into(), json!(self.status));
        m.insert("response_sha256".into(), json!(self.response_sha256));
        m.insert("response_bytes".into(), json!(self.response_bytes));
        m.insert("response_complete".into(), json!(self.response_complete));
        m.insert("webhook_id".into(), json!(self.webhook_id));
        if let Some(u) = &self.final_url {
            m.insert("final_url".into(), json!(u));
        }
        m
    }
}

/// Deliver an export to a webhook. `secret` is the resolved `secret_credential` (none: the
/// requests are not signed); `allow` is the tenant's `allowed_hosts`. Files are posted in order
/// and each must be acknowledged with a 2xx; the first failure ends the attempt (a retry sends
/// every file again with the same `webhook-id`s).
pub async fn deliver(
    cfg: &WebhookConfig,
    secret: Option<&WebhookSecret>,
    allow: &AllowList,
    payload: WebhookPayload,
) -> Result<Evidence, DeliverError> {
    let target = Target::new("webhook", &cfg.url, &cfg.headers, cfg.timeout(), secret, allow)?;
    let mut evidence = Evidence { location: net_guard::redact_url(&target.url), ..Evidence::default() };
    evidence.details.insert("mode".into(), json!(cfg.mode.as_str()));
    match (cfg.mode, payload) {
        (WebhookMode::File, WebhookPayload::Files { export_id, files }) => {
            check_message_id(&export_id)?;
            for (i, f) in files.iter().enumerate() {
                let id = format!("{export_id}-file-{}", i + 1);
                let receipt = target.send_file(&id, &export_id, f).await?;
                let mut m = Map::new();
                m.insert("name".into(), json!(f.remote_name));
                m.extend(receipt.to_map());
                evidence.files.push(m);
            }
        }
        (WebhookMode::Link, WebhookPayload::Links { export_id, tenant, files }) => {
            check_message_id(&export_id)?;
            let doc = json!({"type": "export.delivered", "export_id": export_id, "tenant": tenant, "files": files});
            let receipt = target.send_json(&format!("{export_id}-links"), &doc).await?;
            for f in &files {
                let mut m = Map::new();
                m.insert("name".into(), json!(f.name));
                evidence.files.push(m);
            }
            evidence.details.extend(receipt.to_map());
        }
        (mode, _) => {
            return Err(DeliverError::permanent(format!(
                "webhook mode {:?} was given the other kind of payload (files for \"file\", links for \"link\")",
                mode.as_str()
            )));
        }
    }
    Ok(evidence)
}

/// A signed JSON POST outside an export delivery (notifications: export completed, failed,
/// partial). `what` names the sender in messages (`"notification"`).
#[derive(Debug, Clone, Copy)]
pub struct SignedPost<'a> {
    pub what: &'a str,
    pub url: &'a str,
    /// The `webhook-id`: the same on every retry of one message.
    pub message_id: &'a str,
    /// Extra headers, checked like [`WebhookConfig::headers`].
    pub headers: &'a BTreeMap<String, String>,
    /// Longest wait without progress.
    pub timeout: Duration,
}

/// POST `body` as JSON, signed like a webhook delivery, under the outbound policy; the same
/// outcomes as [`deliver`].
pub async fn post_signed_json(
    post: &SignedPost<'_>,
    body: &Value,
    secret: Option<&WebhookSecret>,
    allow: &AllowList,
) -> Result<HttpReceipt, DeliverError> {
    check_message_id(post.message_id)?;
    let target = Target::new(post.what, post.url, post.headers, post.timeout, secret, allow)?;
    target.send_json(post.message_id, body).await
}

fn check_message_id(id: &str) -> Result<(), DeliverError> {
    let ok = (1..=200).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok { Ok(()) } else { Err(DeliverError::permanent(format!("message id {id:?}: allowed are 1 to 200 letters, digits, _ or -"))) }
}

/// One receiver, ready to be posted to.
struct Target<'a> {
    /// `webhook url https://host/path`, the start of every message.
    label: String,
    url: Url,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    secret: Option<&'a WebhookSecret>,
}

impl<'a> Target<'a> {
    fn new(
        what: &str,
        url: &str,
        extra: &BTreeMap<String, String>,
        timeout: Duration,
        secret: Option<&'a WebhookSecret>,
        allow: &AllowList,
    ) -> Result<Self, DeliverError> {
        let parsed = Url::parse(url).map_err(|e| DeliverError::permanent(format!("{what} url: not an absolute URL ({e})")))?;
        let label = format!("{what} url {}", net_guard::redact_url(&parsed));
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DeliverError::permanent(format!("{label}: user:password@ in the URL is not allowed")));
        }
        net_guard::check_url(allow, &parsed).map_err(|g| DeliverError::permanent(format!("{label}: {g}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in extra {
            let n = check_header_name(name).map_err(|a| DeliverError::permanent(format!("{what} header {name:?}: allowed is {a}")))?;
            let v = check_header_value(value).map_err(|a| DeliverError::permanent(format!("{what} header {name:?}: allowed is {a}")))?;
            headers.insert(n, v);
        }
        let options = ClientOptions { connect_timeout: timeout, redirects: Redirects::KeepMethod };
        let client = net_guard::guarded_client(allow, &options)
            .map_err(|e| DeliverError::permanent(format!("{label}: cannot set up the HTTP client: {}", error_chain(&e))))?;
        Ok(Target { label, url: parsed, client, headers, timeout, secret })
    }

    fn signature_headers(&self, req: RequestBuilder, id: &str, timestamp: i64, signature: Option<String>) -> RequestBuilder {
        let req = req.header(signing::HEADER_ID, id).header(signing::HEADER_TIMESTAMP, timestamp.to_string());
        match signature {
            Some(s) => req.header(signing::HEADER_SIGNATURE, s),
            None => req,
        }
    }

    async fn send_json(&self, id: &str, doc: &Value) -> Result<HttpReceipt, DeliverError> {
        let body = serde_json::to_vec(doc).map_err(|e| DeliverError::permanent(format!("{}: encoding the JSON body: {e}", self.label)))?;
        let ts = chrono::Utc::now().timestamp();
        let signature = self.secret.map(|s| signing::sign(s, id, ts, &body));
        let req = self.client.post(self.url.clone()).headers(self.headers.clone()).header(CONTENT_TYPE, "application/json");
        let req = self.signature_headers(req, id, ts, signature).body(body);
        self.exchange(req, Progress::new(), id).await
    }

    async fn send_file(&self, id: &str, export_id: &str, f: &OutgoingFile) -> Result<HttpReceipt, DeliverError> {
        let what = format!("{}: file {:?}", self.label, f.remote_name);
        let ts = chrono::Utc::now().timestamp();
        // First pass: signature and digest (the body must be signed before its first byte is sent).
        let (signature, sha256, len) = sign_file(f, self.secret, id, ts)
            .await
            .map_err(|e| DeliverError::permanent(format!("{what}: reading {}: {e}", f.path.display())))?;
        if len != f.size || !sha256.eq_ignore_ascii_case(&f.sha256) {
            return Err(DeliverError::permanent(format!(
                "{what}: the local file changed since it was packaged (size {len}, sha256 {sha256}; expected size {}, sha256 {})",
                f.size, f.sha256
            )));
        }
        // Second pass: the body, streamed.
        let file = tokio::fs::File::open(&f.path)
            .await
            .map_err(|e| DeliverError::permanent(format!("{what}: opening {}: {e}", f.path.display())))?;
        let progress = Progress::new();
        let content_type = HeaderValue::from_str(&f.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, len)
            .header("egress-export-id", export_id)
            .header("egress-file-name", utf8_percent_encode(&f.remote_name, FILE_NAME_SET).to_string())
            .header("egress-file-sha256", sha256.to_ascii_lowercase());
        let req = self.signature_headers(req, id, ts, signature).body(file_body(file, progress.clone()));
        self.exchange(req, progress, id).await.map_err(|e| match e {
            DeliverError::Transient { message, retry_after } => {
                DeliverError::Transient { message: message.replacen(&self.label, &what, 1), retry_after }
            }
            DeliverError::Permanent { message } => DeliverError::Permanent { message: message.replacen(&self.label, &what, 1) },
        })
    }

    /// Send, wait for the answer without more than `timeout` of silence, read at most 64 KiB of
    /// it, and classify.
    async fn exchange(&self, req: RequestBuilder, progress: Arc<Progress>, id: &str) -> Result<HttpReceipt, DeliverError> {
        let secs = self.timeout.as_secs();
        let resp = match within_idle_timeout(req.send(), &progress, self.timeout).await {
            None => {
                return Err(DeliverError::transient(format!("{}: no progress for {secs} s (timeout_secs), gave up", self.label)));
            }
            Some(Err(e)) => return Err(classify_error(&self.label, &self.url, e)),
            Some(Ok(r)) => r,
        };
        let status = resp.status();
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let final_url = (resp.url() != &self.url).then(|| net_guard::redact_url(resp.url()));
        let answer = read_answer(resp, self.timeout).await;
        let code = status.as_u16();
        if status.is_success() {
            return Ok(HttpReceipt {
                status: code,
                response_sha256: hex::encode(Sha256::digest(&answer.bytes)),
                response_bytes: answer.bytes.len() as u64,
                response_complete: answer.complete,
                webhook_id: id.to_string(),
                final_url,
            });
        }
        let reason = status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default();
        let excerpt = excerpt(&answer.bytes);
        let said = if excerpt.is_empty() { String::new() } else { format!(": {excerpt}") };
        let message = format!("{} answered {code}{reason}{said}", self.label);
        Err(match code {
            408 | 429 | 500..=599 => DeliverError::Transient { message, retry_after },
            300..=399 => {
                let to = location
                    .as_deref()
                    .and_then(|l| self.url.join(l).ok())
                    .map(|u| format!(" to {}", net_guard::redact_url(&u)))
                    .unwrap_or_default();
                DeliverError::permanent(format!(
                    "{} answered {code}{reason} (a redirect{to}); JSON deliveries follow only 307 and 308 redirects and file \
                     deliveries none: set the url to the final address",
                    self.label
                ))
            }
            _ => DeliverError::permanent(message),
        })
    }
}

/// Read a file once for its signature (when there is a secret), SHA-256 and length.
async fn sign_file(f: &OutgoingFile, secret: Option<&WebhookSecret>, id: &str, ts: i64) -> std::io::Result<(Option<String>, String, u64)> {
    let mut file = tokio::fs::File::open(&f.path).await?;
    let mut signer = secret.map(|s| Signer::new(s, id, ts));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        if let Some(s) = signer.as_mut() {
            s.update(&buf[..n]);
        }
        len += n as u64;
    }
    Ok((signer.map(Signer::finish), hex::encode(hash.finalize()), len))
}

/// When the transfer last moved: the body stream touches it as the client takes each piece.
struct Progress(Mutex<Instant>);

impl Progress {
    fn new() -> Arc<Self> {
        Arc::new(Progress(Mutex::new(Instant::now())))
    }
    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Run `fut` until it ends, or until `idle` passes without progress (`None`). A large body keeps
/// the request alive as long as the receiver keeps taking it; a receiver that stops reading or
/// never answers is given up on after `idle`.
async fn within_idle_timeout<F: Future>(fut: F, progress: &Progress, idle: Duration) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        let deadline = progress.last() + idle;
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                if progress.last() + idle <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// A request body read from a file in 64 KiB pieces, marking progress as each is taken.
fn file_body(file: tokio::fs::File, progress: Arc<Progress>) -> reqwest::Body {
    let stream = futures::stream::try_unfold(file, move |mut file| {
        let progress = progress.clone();
        async move {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            progress.touch();
            Ok(Some((Bytes::from(buf), file)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

struct Answer {
    bytes: Vec<u8>,
    complete: bool,
}

/// At most [`RESPONSE_DIGEST_LIMIT`] bytes of an answer, each piece within `idle`.
async fn read_answer(mut resp: Response, idle: Duration) -> Answer {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = RESPONSE_DIGEST_LIMIT - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return Answer { bytes, complete: false };
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return Answer { bytes, complete: true },
            Ok(Err(_)) | Err(_) => return Answer { bytes, complete: false },
        }
    }
}

/// The first 200 characters of an answer, on one line.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    flat.trim().to_string()
}

/// `Retry-After`: delay seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A client error as a delivery error: refused by the outbound policy or malformed, permanent;
/// timeouts, refused or reset connections and failed lookups, transient.
fn classify_error(label: &str, url: &Url, e: reqwest::Error) -> DeliverError {
    if let Some(g) = net_guard::guard_error(&e) {
        // A name refused by the resolver, other than the URL's own host, came from a redirect.
        if let GuardError::ForbiddenAddress { host, .. } = g
            && url.host_str().is_some_and(|h| !h.eq_ignore_ascii_case(host))
        {
            return DeliverError::permanent(format!("{label}: a redirect led to {host}: {g}"));
        }
        return DeliverError::permanent(format!("{label}: {g}"));
    }
    let e = e.without_url();
    let detail = error_chain(&e);
    if e.is_builder() {
        DeliverError::permanent(format!("{label}: {detail}"))
    } else if e.is_timeout() {
        DeliverError::transient(format!("{label}: timed out ({detail})"))
    } else {
        DeliverError::transient(format!("{label}: {detail}"))
    }
}

/// An error and its sources, `outer: inner: innermost`, repeats left out.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    for _ in 0..16 {
        let Some(err) = cur else { break };
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> WebhookConfig {
        crate::model::validation::from_json(&v).unwrap()
    }

    fn errors(c: &WebhookConfig, allow: &AllowList) -> Vec<(String, String)> {
        let mut errs = ValidationErrors::new();
        c.validate("/destinations/0", &mut errs);
        c.check_policy("/destinations/0", allow, &mut errs);
        errs.0.into_iter().map(|e| (e.pointer, e.allowed)).collect()
    }

    #[test]
    fn defaults() {
        let c = cfg(json!({"url": "https://hooks.example.com/in"}));
        assert_eq!(c.mode, WebhookMode::Link);
        assert_eq!(c.timeout_secs, 30);
        assert!(c.headers.is_empty() && c.secret_credential.is_none());
        assert!(errors(&c, &AllowList::empty()).is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = crate::model::validation::from_json::<WebhookConfig>(&json!({"url": "https://x.example", "secret": "s"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/secret");
    }

    #[test]
    fn bad_fields_are_named() {
        let long = format!("https://x.example/{}", "a".repeat(2048));
        let c = cfg(json!({
            "url": long, "mode": "file", "secret_credential": "whsec_abc", "timeout_secs": 0,
            "headers": {"Host": "x", "X-Ok": "fine", "X-Bad": "a\r\nb", "webhook-id": "1", "Authorization": "Bearer t"}
        }));
        let e = errors(&c, &AllowList::empty());
        let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/destinations/0/url",
                "/destinations/0/secret_credential",
                "/destinations/0/timeout_secs",
                "/destinations/0/headers/Host",
                "/destinations/0/headers/X-Bad",
                "/destinations/0/headers/webhook-id"
            ]
        );
        let c = cfg(json!({"url": "ftp://x.example/"}));
        assert_eq!(errors(&c, &AllowList::empty())[0].1, "an http or https URL");
        let c = cfg(json!({"url": "https://u:p@x.example/"}));
        assert!(errors(&c, &AllowList::empty())[0].1.contains("without user:password@"));
        let c = cfg(json!({"url": "https://x.example/", "timeout_secs": 301}));
        assert_eq!(errors(&c, &AllowList::empty())[0].0, "/destinations/0/timeout_secs");
    }

    #[test]
    fn forbidden_literal_urls_fail_validation_unless_allowed() {
        let c = cfg(json!({"url": "http://169.254.169.254/latest/meta-data/"}));
        let e = errors(&c, &AllowList::empty());
        assert_eq!(e.len(), 1);
        assert!(e[0].1.contains("link-local (the cloud metadata service)"), "{}", e[0].1);
        assert!(errors(&c, &AllowList::new(["169.254.169.254"]).unwrap()).is_empty());
        // A name is only checked when it is resolved, at delivery.
        assert!(errors(&cfg(json!({"url": "http://localhost:8080/"})), &AllowList::empty()).is_empty());
    }

    #[test]
    fn debug_hides_header_values_and_query() {
        let c = cfg(json!({"url": "https://x.example/in?token=abc", "headers": {"Authorization": "Bearer sekrit"}}));
        let d = format!("{c:?}");
        assert!(!d.contains("sekrit") && !d.contains("token=abc"), "{d}");
        assert!(d.contains("Authorization"), "{d}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(80) && d <= Duration::from_secs(90), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn message_ids_are_header_safe() {
        assert!(check_message_id("exp_0193aa-file-1").is_ok());
        assert!(check_message_id("a b").is_err());
        assert!(check_message_id("").is_err());
        assert!(check_message_id("x\r\n").is_err());
    }
}
