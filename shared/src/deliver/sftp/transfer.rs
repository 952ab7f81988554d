//! SFTP delivery through an AWS Transfer Family SFTP connector: the connector reads the files
//! from the data bucket and writes them to the recipient's server with its own login.
//!
//! One attempt:
//! 1. `DescribeConnector`: the connector must be an active SFTP connector whose URL names the
//!    destination's host and port, and one of whose `TrustedHostKeys` has the pinned
//!    fingerprint (else a permanent error naming both sides).
//! 2. Each file is copied inside the bucket to `<staging>/<name>.egress-part`: the connector
//!    names a remote file after its object, so the file lands under a temporary name.
//! 3. `StartFileTransfer` (at most [`SEND_BATCH`] files a call) to the destination directory,
//!    then `ListFileTransferResults` is polled, with backoff and a bound, until every file is
//!    `COMPLETED` or `FAILED`; a failure's code and message become the delivery error.
//! 4. `StartRemoteMove` renames each temporary file to its final name.
//! 5. The moves report nowhere, so `StartDirectoryListing` lists the directory into the bucket
//!    until every final name is there with its size and no temporary name is left (bounded).
//!
//! The staged copies and listings are deleted at the end of the attempt, whatever its outcome.

use std::time::{Duration, Instant};

use aws_sdk_transfer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_transfer::types::{ConnectorStatus, TransferTableStatus};
use serde_json::{Map, Value, json};

use super::SftpConfig;
use super::fingerprint::{TrustedKey, parse_key_line};
use crate::blob::{BlobError, BlobStore};
use crate::deliver::endpoints::object_key;
use crate::deliver::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

/// The suffix of a file's name on the server until it is complete.
pub const PART_SUFFIX: &str = ".egress-part";
/// The most files one `StartFileTransfer` takes.
pub const SEND_BATCH: usize = 10;
/// The most entries a directory listing holds.
const LISTING_MAX_ITEMS: i32 = 10_000;

/// True for a connector id as Transfer Family makes them: `c-` and 17 lowercase hex digits.
pub fn is_connector_id(id: &str) -> bool {
    id.strip_prefix("c-").is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A Transfer Family client for `config`, sent to `endpoint` when given (an emulator).
pub fn client(config: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_transfer::Client {
    let mut conf = aws_sdk_transfer::config::Builder::from(config);
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    aws_sdk_transfer::Client::from_conf(conf.build())
}

/// How long to wait for the connector, and how often to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferWait {
    /// The first pause between two polls; each next one is twice as long, up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
    /// How long one batch of files may take to reach `COMPLETED` or `FAILED`.
    pub transfer_limit: Duration,
    /// How long the moves may take to show in the directory listing.
    pub listing_limit: Duration,
}

impl Default for TransferWait {
    fn default() -> Self {
        Self {
            first_poll: Duration::from_secs(1),
            max_poll: Duration::from_secs(15),
            transfer_limit: Duration::from_secs(600),
            listing_limit: Duration::from_secs(120),
        }
    }
}

/// The pauses between two polls: from `first_poll`, each twice as long up to `max_poll`, until
/// a limit.
struct Polling {
    deadline: Instant,
    pause: Duration,
    max: Duration,
}

impl Polling {
    fn new(wait: &TransferWait, limit: Duration) -> Self {
        Self { deadline: Instant::now() + limit, pause: wait.first_poll, max: wait.max_poll }
    }

    /// Sleep before the next poll; `false`, at once, when it would come after the limit.
    async fn sleep(&mut self) -> bool {
        if Instant::now() + self.pause > self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(self.max);
        true
    }
}

/// What one attempt works with besides the destination and the files.
pub struct TransferRun<'a> {
    pub client: &'a aws_sdk_transfer::Client,
    /// The data bucket: the files are there, and the staged copies and listings go there.
    pub blobs: &'a dyn BlobStore,
    /// A blob-key prefix (ending in `/`) of this attempt's own: staged copies and listings.
    pub staging: String,
    pub wait: TransferWait,
}

/// The connector as checked: where it sends to and the trusted host key that matched the pin.
struct CheckedConnector {
    url: String,
    key: TrustedKey,
}

/// One file on its way: its blob, its staged copy, and its remote paths.
struct Planned<'f> {
    file: &'f OutgoingFile,
    staged_key: String,
    temp_path: String,
    final_path: String,
}

/// Deliver `files` (whose objects are `blob_keys`, in the same order) through the connector
/// `cfg.transfer_connector`. Errors say whether another attempt may succeed.
pub async fn deliver(
    cfg: &SftpConfig,
    run: &TransferRun<'_>,
    files: &[OutgoingFile],
    blob_keys: &[String],
) -> Result<Evidence, DeliverError> {
    let mut errs = ValidationErrors::new();
    cfg.validate("", &mut errs);
    if !errs.is_empty() {
        return Err(DeliverError::permanent(format!("invalid SFTP destination: {errs}")));
    }
    let connector_id =
        cfg.transfer_connector.as_deref().ok_or_else(|| DeliverError::permanent("the destination names no transfer_connector"))?;
    let Some(bucket) = run.blobs.s3_bucket() else {
        return Err(DeliverError::permanent(format!(
            "the Transfer Family connector {connector_id} sends files from S3, and this service keeps them in a local folder: \
             leave transfer_connector out to connect directly"
        )));
    };
    if blob_keys.len() != files.len() {
        return Err(DeliverError::permanent(format!("{} files but {} stored objects", files.len(), blob_keys.len())));
    }
    let connector = check_connector(run.client, cfg, connector_id).await?;
    let directory = cfg.directory.trim_end_matches('/');
    let mut planned = Vec::with_capacity(files.len());
    for file in files {
        let staged_key = object_key(Some(&run.staging), &format!("{}{PART_SUFFIX}", file.remote_name))?;
        planned.push(Planned {
            file,
            staged_key,
            temp_path: format!("{directory}/{}{PART_SUFFIX}", file.remote_name),
            final_path: format!("{directory}/{}", file.remote_name),
        });
    }
    let result = send_and_move(run, connector_id, bucket, directory, &planned, blob_keys).await;
    if let Err(e) = run.blobs.delete_prefix(&run.staging).await {
        tracing::warn!(staging = %run.staging, error = %e, "could not delete the staged copies of a connector delivery");
    }
    let (transfer_ids, move_ids, sizes) = result?;

    let files = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = Map::new();
            m.insert("remote_path".into(), json!(p.final_path));
            m.insert("size".into(), json!(p.file.size));
            m.insert("sha256".into(), json!(p.file.sha256));
            m.insert("transfer_id".into(), json!(transfer_ids[i / SEND_BATCH]));
            m.insert("move_id".into(), json!(move_ids[i]));
            m.insert("remote_size".into(), json!(sizes[i]));
            m
        })
        .collect();
    let mut details = Map::new();
    details.insert("transfer_connector".into(), json!(connector_id));
    details.insert("connector_url".into(), json!(connector.url));
    details.insert("transfer_ids".into(), json!(transfer_ids));
    details.insert("host_key_fingerprint".into(), json!(connector.key.fingerprint));
    details.insert("host_key_algorithm".into(), json!(connector.key.algorithm));
    let location = format!("{}{}/", cfg.target(), directory);
    Ok(Evidence { location, files, details })
}

/// Stage, send, move and confirm; returns the transfer ids (one a batch), the move ids and
/// the sizes the listing showed (one a file).
async fn send_and_move(
    run: &TransferRun<'_>,
    connector_id: &str,
    bucket: &str,
    directory: &str,
    planned: &[Planned<'_>],
    blob_keys: &[String],
) -> Result<(Vec<String>, Vec<String>, Vec<Option<u64>>), DeliverError> {
    for (p, key) in planned.iter().zip(blob_keys) {
        run.blobs.copy(key, &p.staged_key).await.map_err(|e| match e {
            BlobError::NotFound(_) => DeliverError::permanent(format!("the file {} is missing from the bucket", p.file.remote_name)),
            other => DeliverError::transient(format!("the file {} could not be staged for the connector: {other}", p.file.remote_name)),
        })?;
    }
    let mut transfer_ids = Vec::new();
    for batch in planned.chunks(SEND_BATCH) {
        let id = run
            .client
            .start_file_transfer()
            .connector_id(connector_id)
            .set_send_file_paths(Some(batch.iter().map(|p| format!("/{bucket}/{}", p.staged_key)).collect()))
            .remote_directory_path(directory_or_root(directory))
            .send()
            .await
            .map_err(|e| api_error(connector_id, "StartFileTransfer", e))?
            .transfer_id
            .clone();
        await_transfer(run, connector_id, &id, batch).await?;
        transfer_ids.push(id);
    }
    let mut move_ids = Vec::with_capacity(planned.len());
    for p in planned {
        let out = run
            .client
            .start_remote_move()
            .connector_id(connector_id)
            .source_path(&p.temp_path)
            .target_path(&p.final_path)
            .send()
            .await
            .map_err(|e| api_error(connector_id, "StartRemoteMove", e))?;
        move_ids.push(out.move_id);
    }
    let sizes = confirm_moves(run, connector_id, bucket, directory, planned).await?;
    Ok((transfer_ids, move_ids, sizes))
}

fn directory_or_root(directory: &str) -> &str {
    if directory.is_empty() { "/" } else { directory }
}

/// DescribeConnector, and the checks of what it says against the destination.
async fn check_connector(client: &aws_sdk_transfer::Client, cfg: &SftpConfig, id: &str) -> Result<CheckedConnector, DeliverError> {
    let out = client.describe_connector().connector_id(id).send().await.map_err(|e| api_error(id, "DescribeConnector", e))?;
    let Some(c) = out.connector else {
        return Err(DeliverError::transient(format!("the connector {id}: DescribeConnector returned no connector")));
    };
    match &c.status {
        ConnectorStatus::Active => {}
        ConnectorStatus::Pending => return Err(DeliverError::transient(format!("the connector {id} is still being set up (PENDING)"))),
        other => {
            let why = c.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            return Err(DeliverError::permanent(format!("the connector {id} is {}{why}", other.as_str())));
        }
    }
    let Some(sftp) = &c.sftp_config else {
        return Err(DeliverError::permanent(format!(
            "the connector {id} is not an SFTP connector (it has no SftpConfig; an AS2 connector?)"
        )));
    };
    let url = c.url.clone().unwrap_or_default();
    let expected = cfg.target().to_ascii_lowercase();
    if url_target(&url).as_deref() != Some(expected.as_str()) {
        return Err(DeliverError::permanent(format!(
            "the connector {id} sends to {url:?}, but the destination names {expected}: set host and port to the connector's"
        )));
    }
    let pin = super::parse_fingerprint(&cfg.host_key)
        .ok_or_else(|| DeliverError::permanent(format!("the pinned host key {:?} is not a SHA256 fingerprint", cfg.host_key)))?;
    let trusted: Vec<TrustedKey> = sftp.trusted_host_keys().iter().filter_map(|k| parse_key_line(k)).collect();
    match trusted.iter().find(|k| k.digest == pin) {
        Some(k) => Ok(CheckedConnector { url, key: k.clone() }),
        None => {
            let theirs = if trusted.is_empty() {
                "no host key it can read".to_string()
            } else {
                trusted.iter().map(|k| format!("{} ({})", k.fingerprint, k.algorithm)).collect::<Vec<_>>().join(", ")
            };
            Err(DeliverError::permanent(format!(
                "host key mismatch: the connector {id} trusts {theirs}; the destination pins {}",
                cfg.host_key.trim()
            )))
        }
    }
}

/// `sftp://host:port` of a connector URL (`sftp://host`, `sftp://host:port`, port 22 by
/// default), in the form [`SftpConfig::target`] writes; `None` if it is no SFTP URL.
fn url_target(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "sftp" {
        return None;
    }
    let host = parsed.host_str().filter(|h| !h.is_empty())?.to_ascii_lowercase();
    Some(format!("sftp://{host}:{}", parsed.port().unwrap_or(22)))
}

/// Poll ListFileTransferResults until every file of `batch` is COMPLETED or FAILED.
async fn await_transfer(run: &TransferRun<'_>, connector_id: &str, transfer_id: &str, batch: &[Planned<'_>]) -> Result<(), DeliverError> {
    let mut polling = Polling::new(&run.wait, run.wait.transfer_limit);
    loop {
        let mut results = Vec::new();
        let mut token = None;
        loop {
            let page = run
                .client
                .list_file_transfer_results()
                .connector_id(connector_id)
                .transfer_id(transfer_id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| api_error(connector_id, "ListFileTransferResults", e))?;
            results.extend(page.file_transfer_results);
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        let settled = |s: &TransferTableStatus| matches!(s, TransferTableStatus::Completed | TransferTableStatus::Failed);
        if results.len() >= batch.len() && results.iter().all(|r| settled(&r.status_code)) {
            if let Some(failed) = results.iter().find(|r| r.status_code == TransferTableStatus::Failed) {
                let code = failed.failure_code.as_deref().unwrap_or("UNKNOWN");
                let message = format!(
                    "the connector {connector_id} could not send {} (transfer {transfer_id}): {code}: {}",
                    failed.file_path,
                    failed.failure_message.as_deref().unwrap_or("no message")
                );
                return Err(if is_permanent_failure(code) { DeliverError::permanent(message) } else { DeliverError::transient(message) });
            }
            return Ok(());
        }
        if !polling.sleep().await {
            let open: Vec<String> = results
                .iter()
                .filter(|r| !settled(&r.status_code))
                .map(|r| format!("{} {}", r.file_path, r.status_code.as_str()))
                .collect();
            return Err(DeliverError::transient(format!(
                "the connector {connector_id}'s transfer {transfer_id} did not finish within {} s (still: {})",
                run.wait.transfer_limit.as_secs(),
                if open.is_empty() { "no results yet".to_string() } else { open.join(", ") }
            )));
        }
    }
}

/// A failure another attempt would meet again: the remote refused the path or the login, or
/// the file is missing. Connection trouble, timeouts and codes not known here are transient.
fn is_permanent_failure(code: &str) -> bool {
    let code = code.to_ascii_uppercase();
    ["NOT_FOUND", "PERMISSION", "DENIED", "FORBIDDEN", "INVALID", "AUTH", "HOST_KEY", "UNSUPPORTED"].iter().any(|w| code.contains(w))
}

/// One directory listing's file entries: name (last path segment) and size.
fn listed_files(listing: &Value) -> Vec<(String, Option<u64>)> {
    listing
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| {
                    let path = f.get("filePath")?.as_str()?;
                    let name = path.trim_end_matches('/').rsplit('/').next()?.to_string();
                    Some((name, f.get("size").and_then(Value::as_u64)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// List the directory until every final name shows with its size and no temporary name is
/// left; returns the listed sizes. A truncated listing that lacks a name cannot say: the
/// moves are then taken as done, with no size.
async fn confirm_moves(
    run: &TransferRun<'_>,
    connector_id: &str,
    bucket: &str,
    directory: &str,
    planned: &[Planned<'_>],
) -> Result<Vec<Option<u64>>, DeliverError> {
    let mut polling = Polling::new(&run.wait, run.wait.listing_limit);
    let listing_prefix = format!("{}listing", run.staging);
    loop {
        let out = run
            .client
            .start_directory_listing()
            .connector_id(connector_id)
            .remote_directory_path(directory_or_root(directory))
            .output_directory_path(format!("/{bucket}/{listing_prefix}"))
            .max_items(LISTING_MAX_ITEMS)
            .send()
            .await
            .map_err(|e| api_error(connector_id, "StartDirectoryListing", e))?;
        let key = format!("{listing_prefix}/{}", out.output_file_name);
        let listing = loop {
            match run.blobs.get_bytes(&key).await {
                Ok(bytes) => {
                    break serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                        DeliverError::transient(format!("the connector {connector_id}'s directory listing is not JSON: {e}"))
                    })?;
                }
                Err(BlobError::NotFound(_)) => {
                    if polling.sleep().await {
                        continue;
                    }
                    return Err(DeliverError::transient(format!(
                        "the connector {connector_id} wrote no directory listing of {directory} within {} s; the files were sent as *{PART_SUFFIX} and moved, unconfirmed",
                        run.wait.listing_limit.as_secs()
                    )));
                }
                Err(e) => return Err(DeliverError::transient(format!("the connector's directory listing could not be read: {e}"))),
            }
        };
        let truncated = listing.get("truncated").and_then(Value::as_bool).unwrap_or(false);
        let entries = listed_files(&listing);
        let size_of = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        let mut pending = Vec::new();
        let mut sizes = Vec::with_capacity(planned.len());
        for p in planned {
            let name = &p.file.remote_name;
            let temp_left = size_of(&format!("{name}{PART_SUFFIX}")).is_some();
            match size_of(name) {
                Some(Some(size)) if size != p.file.size => {
                    pending.push(format!("{} has {size} bytes, not {}", p.final_path, p.file.size));
                }
                Some(size) if !temp_left => sizes.push(size),
                None if truncated && !temp_left => sizes.push(None),
                _ => pending.push(format!("{} not yet moved to {}", p.temp_path, p.final_path)),
            }
        }
        if pending.is_empty() {
            return Ok(sizes);
        }
        if !polling.sleep().await {
            return Err(DeliverError::transient(format!(
                "the connector {connector_id}'s moves were not confirmed within {} s: {}",
                run.wait.listing_limit.as_secs(),
                pending.join("; ")
            )));
        }
    }
}

/// A Transfer API error: refusals of the request (no such connector, access denied, invalid
/// request) are permanent; throttling, service errors and network trouble transient.
fn api_error<E, R>(connector_id: &str, op: &str, e: SdkError<E, R>) -> DeliverError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = format!("the connector {connector_id}: {op}: {}", crate::aws::sdk_error(&e));
    match &e {
        SdkError::ServiceError(se) => match se.err().code() {
            Some("ResourceNotFoundException" | "AccessDeniedException" | "InvalidRequestException" | "ValidationException") => {
                DeliverError::permanent(message)
            }
            _ => DeliverError::transient(message),
        },
        SdkError::ConstructionFailure(_) => DeliverError::permanent(message),
        _ => DeliverError::transient(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_ids() {
        assert!(is_connector_id("c-0123456789abcdef0"));
        for bad in ["c-0123456789ABCDEF0", "c-0123456789abcdef", "c-0123456789abcdef01", "s-0123456789abcdef0", "c_0123456789abcdef0", ""] {
            assert!(!is_connector_id(bad), "{bad}");
        }
    }

    #[test]
    fn connector_urls_compare_as_targets() {
        assert_eq!(url_target("sftp://SFTP.example.com").as_deref(), Some("sftp://sftp.example.com:22"));
        assert_eq!(url_target("sftp://127.0.0.1:2222").as_deref(), Some("sftp://127.0.0.1:2222"));
        assert_eq!(url_target("sftp://[::1]:22/").as_deref(), Some("sftp://[::1]:22"));
        assert_eq!(url_target("https://as2.example.com"), None);
        assert_eq!(url_target("not a url"), None);
    }

    #[test]
    fn failure_codes_that_no_retry_mends() {
        assert!(is_permanent_failure("REMOTE_PATH_NOT_FOUND"));
        assert!(is_permanent_failure("RETRIEVE_FILE_NOT_FOUND"));
        assert!(is_permanent_failure("remote_permission_denied"));
        assert!(!is_permanent_failure("CONNECTION_ERROR"));
        assert!(!is_permanent_failure("UNKNOWN"));
    }

    #[test]
    fn listings_give_names_and_sizes() {
        let listing = json!({"files": [
            {"filePath": "/in/a.csv", "modifiedTimestamp": "2026-11-24T10:00:00Z", "size": 12},
            {"filePath": "b.csv.egress-part"},
            {"size": 3}
        ], "paths": [{"path": "/in/sub"}], "truncated": false});
        assert_eq!(listed_files(&listing), [("a.csv".to_string(), Some(12)), ("b.csv.egress-part".to_string(), None)]);
        assert!(listed_files(&json!({})).is_empty());
    }
}
