//! Delivery to an Azure Blob Storage container through the REST API. A file up to
//! [`BLOCK_SIZE`] goes up in one Put Blob; a larger one as blocks (Put Block, read from the
//! file one at a time, at most [`BLOCK_CONCURRENCY`] in flight) that become the blob only with
//! Put Block List, sent after the file's SHA-256 matched: until then the blob does not exist
//! (or keeps its previous content), and uncommitted blocks expire by themselves. Requests are
//! signed with the account key (SharedKey) or carry a SAS token.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::{FutureExt, StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Request, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{
    self, CREDENTIAL_ID_ALLOWED, Endpoints, check_digest, finish_hash, local_size, object_key, read_chunk, read_hashed,
};
use super::http_status::{error_from_reqwest, error_from_response};
use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

/// The REST API version every request names.
pub const API_VERSION: &str = "2021-08-06";
/// The size of each block, and the largest file sent in one Put Blob.
pub const BLOCK_SIZE: u64 = 8 * 1024 * 1024;
/// Blocks uploaded at once: memory holds at most this many blocks plus the one being read.
pub const BLOCK_CONCURRENCY: usize = 4;
const MAX_BLOCKS: u64 = 50_000;

/// An Azure Blob Storage destination, as the export spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobConfig {
    /// The storage account (3 to 24 lowercase letters and digits).
    pub account: String,
    /// The container (Azure container-name rules).
    pub container: String,
    /// Folder of the files in the container (`in/daily`): relative, no `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A stored credential (`cred_...`): the account key or a SAS token.
    pub credential: String,
}

impl AzureBlobConfig {
    /// Check every field; errors point at `{at}/field`.
    pub fn validate(&self, at: &str) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let account_ok =
            (3..=24).contains(&self.account.len()) && self.account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !account_ok {
            errors.push(format!("{at}/account"), self.account.as_str(), "a storage account name: 3 to 24 lowercase letters and digits");
        }
        if let Err(why) = check_container_name(&self.container) {
            errors.push(format!("{at}/container"), self.container.as_str(), why);
        }
        if let Some(p) = &self.prefix
            && let Err(why) = endpoints::check_prefix(p)
        {
            errors.push(format!("{at}/prefix"), p.as_str(), why);
        }
        if !endpoints::is_credential_id(&self.credential) {
            errors.push(format!("{at}/credential"), self.credential.as_str(), CREDENTIAL_ID_ALLOWED);
        }
        errors.into_result()
    }
}

/// Checks an Azure container name; the error says what is allowed.
pub fn check_container_name(name: &str) -> Result<(), String> {
    const ALLOWED: &str = "3 to 63 lowercase letters, digits or `-`, starting and ending with a letter or digit, no `--`";
    let ok = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("--");
    if ok { Ok(()) } else { Err(ALLOWED.to_string()) }
}

/// What a stored Azure credential resolves to. Never shown in errors or `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureCredential {
    /// The storage account key (decoded from its base64 form): requests are signed.
    SharedKey { key: Vec<u8> },
    /// A SAS token (its query string, without `?`): appended to every request.
    Sas { token: String },
}

impl std::fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzureCredential::SharedKey { .. } => f.write_str("SharedKey(<redacted>)"),
            AzureCredential::Sas { .. } => f.write_str("Sas(<redacted>)"),
        }
    }
}

impl AzureCredential {
    /// An account key as the portal shows it (base64).
    pub fn shared_key(base64_key: &str) -> Result<Self, String> {
        let key = B64.decode(base64_key.trim()).map_err(|_| "the account key is not base64".to_string())?;
        if key.is_empty() {
            return Err("the account key is empty".into());
        }
        Ok(AzureCredential::SharedKey { key })
    }

    /// A SAS token (`sv=...&sig=...`, with or without a leading `?`).
    pub fn sas(token: &str) -> Result<Self, String> {
        let token = token.trim().trim_start_matches('?');
        let has_sig = token.split('&').any(|p| p.starts_with("sig="));
        if !has_sig || token.contains(['#', ' ', '\n']) {
            return Err("not a SAS token: a query string with `sig=`".into());
        }
        Ok(AzureCredential::Sas { token: token.to_string() })
    }
}

/// The SharedKey string to sign of a request (Blob service, version 2015-02-21 and later):
/// the verb, the standard headers (`Content-Length` empty when 0), the `x-ms-` headers
/// (lowercase, sorted), and the canonicalized resource `/{account}{path}` with the query
/// parameters (lowercase names, sorted, decoded values).
pub fn string_to_sign(method: &Method, url: &Url, headers: &HeaderMap, content_length: u64, account: &str) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let length = if content_length == 0 { String::new() } else { content_length.to_string() };
    let mut s = String::new();
    for part in [
        method.as_str().to_string(),
        header("content-encoding"),
        header("content-language"),
        length,
        header("content-md5"),
        header("content-type"),
        header("date"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        s.push_str(&part);
        s.push('\n');
    }
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
        .map(|(k, v)| (k.as_str().to_string(), collapse_whitespace(v.to_str().unwrap_or(""))))
        .collect();
    ms.sort();
    for (k, v) in ms {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(&format!("/{account}{}", url.path()));
    let mut params: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_lowercase(), v.into_owned())).collect();
    params.sort();
    let mut i = 0;
    while i < params.len() {
        let name = params[i].0.clone();
        let mut values = Vec::new();
        while i < params.len() && params[i].0 == name {
            values.push(params[i].1.clone());
            i += 1;
        }
        s.push_str(&format!("\n{name}:{}", values.join(",")));
    }
    s
}

fn collapse_whitespace(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `Authorization` value for `string_to_sign`: `SharedKey {account}:{base64 HMAC-SHA256}`.
pub fn shared_key_authorization(account: &str, key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    format!("SharedKey {account}:{}", B64.encode(mac.finalize().into_bytes()))
}

/// Deliver `files` to the container of `cfg` with `credential` (the stored credential
/// `cfg.credential` resolved).
pub async fn deliver(
    cfg: &AzureBlobConfig,
    credential: &AzureCredential,
    endpoints: &Endpoints,
    files: &[OutgoingFile],
) -> Result<Evidence, DeliverError> {
    cfg.validate("").map_err(|e| DeliverError::permanent(format!("the Azure Blob destination is not valid: {e}")))?;
    let names: Vec<String> = files.iter().map(|f| object_key(cfg.prefix.as_deref(), &f.remote_name)).collect::<Result<_, _>>()?;
    let client = Container::new(endpoints, &cfg.account, &cfg.container, credential)?;
    let mut location = client.url(&[], None);
    location.set_query(None);
    let prefix = cfg.prefix.as_deref().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty());
    let location = match prefix {
        Some(p) => format!("{location}/{p}/"),
        None => format!("{location}/"),
    };
    let mut details = Map::new();
    details.insert("account".into(), json!(cfg.account));
    details.insert("container".into(), json!(cfg.container));
    let mut evidence = Evidence { location, files: Vec::with_capacity(files.len()), details };
    for (file, name) in files.iter().zip(&names) {
        evidence.files.push(client.upload(file, name).await?);
    }
    Ok(evidence)
}

/// Requests to one container, authorized.
pub struct Container<'a> {
    client: Client,
    base: Url,
    account: &'a str,
    container: &'a str,
    credential: &'a AzureCredential,
}

impl<'a> Container<'a> {
    /// A client for `container` of `account` at `endpoints`.
    pub fn new(endpoints: &Endpoints, account: &'a str, container: &'a str, credential: &'a AzureCredential) -> Result<Self, DeliverError> {
        let base = Url::parse(&endpoints.azure_blob_base_for(account))
            .map_err(|e| DeliverError::permanent(format!("EGRESS_AZURE_BLOB_ENDPOINT: {e}")))?;
        Ok(Self { client: endpoints::http_client()?, base, account, container, credential })
    }

    /// The URL of the container (`blob` empty) or of a blob, with `query` pairs.
    fn url(&self, blob: &[&str], query: Option<&[(&str, &str)]>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(self.container).extend(blob);
        }
        if let Some(q) = query {
            url.query_pairs_mut().extend_pairs(q);
        }
        url
    }

    /// Build, authorize and send one request; a non-success answer is an error.
    async fn send(
        &self,
        what: &str,
        method: Method,
        mut url: Url,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<reqwest::Response, DeliverError> {
        if let AzureCredential::Sas { token } = self.credential {
            let q = match url.query() {
                Some(q) => format!("{q}&{token}"),
                None => token.clone(),
            };
            url.set_query(Some(&q));
        }
        let length = body.len() as u64;
        let mut req = Request::new(method, url);
        let headers = req.headers_mut();
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        insert(headers, "x-ms-date", &date)?;
        insert(headers, "x-ms-version", API_VERSION)?;
        for (k, v) in extra {
            insert(headers, k, v)?;
        }
        if let AzureCredential::SharedKey { key } = self.credential {
            let sts = string_to_sign(req.method(), req.url(), req.headers(), length, self.account);
            let auth = shared_key_authorization(self.account, key, &sts);
            insert(req.headers_mut(), "authorization", &auth)?;
        }
        *req.body_mut() = Some(body.into());
        let response = self.client.execute(req).await.map_err(|e| error_from_reqwest(what, e))?;
        if response.status().is_success() { Ok(response) } else { Err(error_from_response(what, response).await) }
    }

    /// Create the container (private). An existing container is an error (409).
    pub async fn create(&self) -> Result<(), DeliverError> {
        let url = self.url(&[], Some(&[("restype", "container")]));
        self.send(&format!("Azure Create Container {}", self.container), Method::PUT, url, &[], Vec::new()).await?;
        Ok(())
    }

    async fn upload(&self, file: &OutgoingFile, name: &str) -> Result<Map<String, Value>, DeliverError> {
        let size = local_size(file).await?;
        let segments: Vec<&str> = name.split('/').collect();
        let response = if size <= BLOCK_SIZE {
            self.put_blob(file, name, &segments, size).await?
        } else {
            self.put_blocks(file, name, &segments, size).await?
        };
        let h = response.headers();
        let header = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(|v| json!(v)).unwrap_or(Value::Null);
        let mut ev = Map::new();
        ev.insert("blob".into(), json!(name));
        ev.insert("etag".into(), header("etag"));
        ev.insert("last_modified".into(), header("last-modified"));
        ev.insert("request_id".into(), header("x-ms-request-id"));
        ev.insert("version_id".into(), header("x-ms-version-id"));
        ev.insert("size".into(), json!(size));
        ev.insert("sha256".into(), json!(file.sha256));
        Ok(ev)
    }

    async fn put_blob(&self, file: &OutgoingFile, name: &str, segments: &[&str], size: u64) -> Result<reqwest::Response, DeliverError> {
        let data = read_chunk(file, 0, size as usize).await?;
        check_digest(file, &Sha256::digest(&data).into())?;
        let headers =
            [("x-ms-blob-type", "BlockBlob"), ("content-type", file.content_type.as_str()), ("x-ms-meta-sha256", file.sha256.as_str())];
        self.send(&format!("Azure Put Blob {}/{name}", self.container), Method::PUT, self.url(segments, None), &headers, data).await
    }

    async fn put_blocks(&self, file: &OutgoingFile, name: &str, segments: &[&str], size: u64) -> Result<reqwest::Response, DeliverError> {
        let block_size = block_size(size);
        let count = size.div_ceil(block_size);
        let whole = Arc::new(Mutex::new(Sha256::new()));
        let what = format!("Azure Put Block {}/{name}", self.container);
        // Blocks are read in order (one read at a time), so the whole file's hash is computed
        // on the way; uploads run concurrently behind the reads.
        futures::stream::iter(0..count)
            .then(|i| {
                let whole = whole.clone();
                async move {
                    let offset = i * block_size;
                    let (data, _) = read_hashed(file, offset, block_size.min(size - offset) as usize, whole, false).await?;
                    Ok::<_, DeliverError>((i, data))
                }
                // Boxed: keeps the caller's future `Send` for every lifetime.
                .boxed()
            })
            .map_ok(|(i, data)| {
                let what = &what;
                async move {
                    let id = block_id(i);
                    let url = self.url(segments, Some(&[("comp", "block"), ("blockid", &id)]));
                    self.send(what, Method::PUT, url, &[], data).await.map(drop)
                }
                .boxed()
            })
            .boxed()
            .try_buffer_unordered(BLOCK_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        check_digest(file, &finish_hash(whole))?;
        let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for i in 0..count {
            list.push_str(&format!("<Latest>{}</Latest>", block_id(i)));
        }
        list.push_str("</BlockList>");
        let headers = [
            ("content-type", "application/xml"),
            ("x-ms-blob-content-type", file.content_type.as_str()),
            ("x-ms-meta-sha256", file.sha256.as_str()),
        ];
        let url = self.url(segments, Some(&[("comp", "blocklist")]));
        self.send(&format!("Azure Put Block List {}/{name}", self.container), Method::PUT, url, &headers, list.into_bytes()).await
    }
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), DeliverError> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| DeliverError::permanent(format!("bad header name {name}")))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| DeliverError::permanent(format!("the value of the header {name} has characters HTTP does not allow")))?;
    headers.insert(name, value);
    Ok(())
}

/// The id of block `index`: base64 of a fixed-width decimal counter (every id of a blob must
/// have the same length).
pub fn block_id(index: u64) -> String {
    B64.encode(format!("{index:012}"))
}

/// The block size for a file of `size` bytes: [`BLOCK_SIZE`], or more (whole MiB) when that
/// would make more than 50,000 blocks.
pub fn block_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    BLOCK_SIZE.max(size.div_ceil(MAX_BLOCKS).div_ceil(MIB) * MIB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validation::from_json;

    #[test]
    fn the_string_to_sign_follows_the_shared_key_rules() {
        let url =
            Url::parse("http://127.0.0.1:10000/devstoreaccount1/drop/in/a%20b.csv?comp=block&blockid=MDAwMDAwMDAwMDAx&Timeout=30").unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ms-version", HeaderValue::from_static("2021-08-06"));
        h.insert("x-ms-date", HeaderValue::from_static("Fri, 26 Jun 2015 23:39:12 GMT"));
        h.insert("x-ms-meta-sha256", HeaderValue::from_static("  ab   cd "));
        h.insert("content-type", HeaderValue::from_static("text/csv"));
        let s = string_to_sign(&Method::PUT, &url, &h, 11, "devstoreaccount1");
        assert_eq!(
            s,
            "PUT\n\n\n11\n\ntext/csv\n\n\n\n\n\n\n\
             x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-meta-sha256:ab cd\nx-ms-version:2021-08-06\n\
             /devstoreaccount1/devstoreaccount1/drop/in/a%20b.csv\nblockid:MDAwMDAwMDAwMDAx\ncomp:block\ntimeout:30"
        );
        let empty = string_to_sign(
            &Method::PUT,
            &Url::parse("https://a.blob.core.windows.net/c?restype=container").unwrap(),
            &HeaderMap::new(),
            0,
            "a",
        );
        assert_eq!(empty, "PUT\n\n\n\n\n\n\n\n\n\n\n\n/a/c\nrestype:container");
    }

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // Expected value from Python: base64(hmac.new(b64decode(key), sts.encode(), sha256).digest()).
        let key = B64.decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==").unwrap();
        let sts = "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/c\nrestype:container";
        assert_eq!(shared_key_authorization("devstoreaccount1", &key, sts), format!("SharedKey devstoreaccount1:{}", PYTHON_SIGNATURE));
    }

    const PYTHON_SIGNATURE: &str = "U7bwbKpWhjqfQzeuY/jWhPAAExddFGkXGjnoFribH3A=";

    #[test]
    fn block_ids_have_one_length() {
        assert_eq!(block_id(0).len(), block_id(49_999).len());
        assert_eq!(B64.decode(block_id(7)).unwrap(), b"000000000007");
        assert!(400 * (1u64 << 30) / block_size(400 * (1u64 << 30)) <= MAX_BLOCKS);
    }

    #[test]
    fn config_fields_are_checked() {
        let cfg: AzureBlobConfig =
            from_json(&json!({"account": "acme01", "container": "drop-zone", "prefix": "in", "credential": "cred_az"})).unwrap();
        cfg.validate("/d").unwrap();
        let cfg: AzureBlobConfig = from_json(&json!({"account": "Acme", "container": "a--b", "prefix": "/x", "credential": "k"})).unwrap();
        let pointers: Vec<String> = cfg.validate("/d").unwrap_err().0.into_iter().map(|e| e.pointer).collect();
        assert_eq!(pointers, ["/d/account", "/d/container", "/d/prefix", "/d/credential"]);
        assert!(from_json::<AzureBlobConfig>(&json!({"account": "acme01", "container": "abc"})).is_err());
    }

    #[test]
    fn credentials_are_redacted_and_checked() {
        let k = AzureCredential::shared_key("c2VjcmV0").unwrap();
        assert_eq!(format!("{k:?}"), "SharedKey(<redacted>)");
        let s = AzureCredential::sas("?sv=2021-08-06&ss=b&sig=abc%3D").unwrap();
        assert_eq!(s, AzureCredential::Sas { token: "sv=2021-08-06&ss=b&sig=abc%3D".into() });
        assert_eq!(format!("{s:?}"), "Sas(<redacted>)");
        assert!(AzureCredential::sas("sv=1").is_err());
        assert!(AzureCredential::shared_key("not base64!").is_err());
    }
}
