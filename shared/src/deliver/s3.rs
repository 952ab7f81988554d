//! Delivery to an S3 bucket, possibly another account's: the service's own identity (or stored
//! access keys) writes, after assuming the destination's role when one is named. Files under
//! [`MULTIPART_THRESHOLD`] go up in one PutObject; larger ones as a multipart upload whose parts
//! are read from the file one at a time (at most [`PART_CONCURRENCY`] in flight), completed only
//! when every part is in and the file's SHA-256 matched, and aborted otherwise: the object
//! appears whole or not at all. Every request carries a SHA-256 checksum S3 verifies.

use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption, StorageClass};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{
    self, CONNECT_TIMEOUT, CREDENTIAL_ID_ALLOWED, Endpoints, REQUEST_TIMEOUT, check_digest, finish_hash, local_error, local_size,
    object_key, read_hashed,
};
use super::http_status::error_chain;
use super::{DeliverError, Evidence, OutgoingFile};
use crate::model::validation::ValidationErrors;

/// Files of this size and larger go up as a multipart upload.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The size of each part (larger for files over 160 GiB, so that there are at most 10,000).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Parts uploaded at once: memory holds at most this many parts plus the one being read.
pub const PART_CONCURRENCY: usize = 4;
const MAX_PARTS: u64 = 10_000;

/// The storage classes PutObject takes.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "EXPRESS_ONEZONE",
];

/// The canned ACLs a delivery may set. The public ones (`public-read`, `public-read-write`,
/// `authenticated-read`, `aws-exec-read`) are refused: an export is never published.
pub const CANNED_ACLS: &[&str] = &["private", "bucket-owner-read", "bucket-owner-full-control"];

/// Server-side encryption of the delivered objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum S3Sse {
    /// SSE-S3: keys managed by S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS: under `kms_key_id`, or the account's `aws/s3` key.
    #[serde(rename = "aws:kms")]
    AwsKms,
}

/// An S3 destination, as the export spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (S3 bucket-name rules).
    pub bucket: String,
    /// Folder of the files in the bucket (`in/daily`): relative, no `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The bucket's region (`eu-west-1`); default: the service's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A role to assume before writing (another account's bucket), as an IAM role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks for (only with `role_arn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Server-side encryption: `AES256` or `aws:kms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<S3Sse>,
    /// The KMS key of `aws:kms` (key id, key ARN or alias); only with `sse: "aws:kms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Stored access keys (`cred_...`) to write with, instead of the service's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The storage class of the objects (one of [`STORAGE_CLASSES`]); default `STANDARD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// A canned ACL (one of [`CANNED_ACLS`]), e.g. `bucket-owner-full-control` when writing
    /// into another account's bucket that still uses ACLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// AWS access keys a stored credential resolves to.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl S3Config {
    /// Check every field; errors point at `{at}/field`.
    pub fn validate(&self, at: &str) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(why) = check_bucket_name(&self.bucket) {
            errors.push(format!("{at}/bucket"), self.bucket.as_str(), why);
        }
        if let Some(p) = &self.prefix
            && let Err(why) = endpoints::check_prefix(p)
        {
            errors.push(format!("{at}/prefix"), p.as_str(), why);
        }
        if let Some(r) = &self.region
            && !is_region(r)
        {
            errors.push(format!("{at}/region"), r.as_str(), "an AWS region name such as `us-east-1` or `eu-central-1`");
        }
        if let Some(arn) = &self.role_arn
            && !is_role_arn(arn)
        {
            errors.push(format!("{at}/role_arn"), arn.as_str(), "an IAM role ARN: `arn:aws:iam::<12-digit account>:role/<name>`");
        }
        if let Some(x) = &self.external_id {
            if self.role_arn.is_none() {
                errors.push(format!("{at}/external_id"), x.as_str(), "only with `role_arn`");
            } else if !(2..=1224).contains(&x.len()) || !x.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b)) {
                errors.push(format!("{at}/external_id"), x.as_str(), "2 to 1224 letters, digits or `+=,.@:/-_`");
            }
        }
        if let Some(k) = &self.kms_key_id {
            if self.sse != Some(S3Sse::AwsKms) {
                errors.push(format!("{at}/kms_key_id"), k.as_str(), "only with `sse: \"aws:kms\"`");
            } else if k.is_empty() || k.len() > 2048 || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push(format!("{at}/kms_key_id"), k.as_str(), "a KMS key id, key ARN, alias name or alias ARN");
            }
        }
        if let Some(c) = &self.credential
            && !endpoints::is_credential_id(c)
        {
            errors.push(format!("{at}/credential"), c.as_str(), CREDENTIAL_ID_ALLOWED);
        }
        if let Some(s) = &self.storage_class
            && !STORAGE_CLASSES.contains(&s.as_str())
        {
            errors.push(format!("{at}/storage_class"), s.as_str(), format!("one of {}", STORAGE_CLASSES.join(", ")));
        }
        if let Some(a) = &self.acl
            && !CANNED_ACLS.contains(&a.as_str())
        {
            errors.push(format!("{at}/acl"), a.as_str(), format!("one of {} (public ACLs are refused)", CANNED_ACLS.join(", ")));
        }
        errors.into_result()
    }

    /// Where the files go: `s3://bucket/prefix/`.
    pub fn location(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
            Some(p) => format!("s3://{}/{p}/", self.bucket),
            None => format!("s3://{}/", self.bucket),
        }
    }
}

/// Checks an S3 bucket name (general purpose buckets); the error says what is allowed.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    const ALLOWED: &str = "3 to 63 lowercase letters, digits, `.` or `-`, starting and ending with a letter or digit, no `..`, not an IP address, not starting with `xn--`, `sthree-` or `amzn-s3-demo-`, not ending with `-s3alias`, `--ol-s3`, `.mrap`, `--x-s3` or `--table-s3`";
    let ok = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && !endpoints::looks_like_ipv4(name)
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    if ok { Ok(()) } else { Err(ALLOWED.to_string()) }
}

fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn is_role_arn(arn: &str) -> bool {
    let mut it = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    let name_ok = resource
        .strip_prefix("role/")
        .is_some_and(|n| !n.is_empty() && n.len() <= 512 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b)));
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov") && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && name_ok
}

/// The session name of the assumed role: `egress-<export id>`, in the characters STS takes, at
/// most 64.
pub fn role_session_name(export_id: &str) -> String {
    let mut name: String =
        format!("egress-{export_id}").chars().map(|c| if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) { c } else { '-' }).collect();
    name.truncate(64);
    name
}

/// Deliver `files` to the bucket of `cfg`. `creds` are the stored access keys `cfg.credential`
/// resolved to (`None`: the service's own identity from `endpoints.aws`, or the SDK's usual
/// chain). With `role_arn`, that identity first assumes the role (session `egress-<export id>`).
pub async fn deliver(
    cfg: &S3Config,
    creds: Option<&AwsKeys>,
    endpoints: &Endpoints,
    export_id: &str,
    files: &[OutgoingFile],
) -> Result<Evidence, DeliverError> {
    cfg.validate("").map_err(|e| DeliverError::permanent(format!("the S3 destination is not valid: {e}")))?;
    let keys: Vec<String> = files.iter().map(|f| object_key(cfg.prefix.as_deref(), &f.remote_name)).collect::<Result<_, _>>()?;
    let base = match &endpoints.aws {
        Some(c) => c.clone(),
        None => aws_config::defaults(BehaviorVersion::latest()).load().await,
    };
    let region = cfg.region.clone().map(Region::new).or_else(|| base.region().cloned()).unwrap_or_else(|| Region::new("us-east-1"));
    let mut credentials = creds.map(|k| {
        SharedCredentialsProvider::new(Credentials::new(
            &k.access_key_id,
            &k.secret_access_key,
            k.session_token.clone(),
            None,
            "egress-destination",
        ))
    });
    let mut details = Map::new();
    details.insert("bucket".into(), json!(cfg.bucket));
    details.insert("region".into(), json!(region.as_ref()));
    if let Some(role) = &cfg.role_arn {
        let (assumed, arn) = assume_role(&base, credentials.clone(), region.clone(), role, cfg.external_id.as_deref(), export_id).await?;
        credentials = Some(assumed);
        details.insert("assumed_role".into(), json!(arn));
    }
    let mut conf =
        aws_sdk_s3::config::Builder::from(&base).region(region).force_path_style(endpoints.s3_force_path_style).timeout_config(timeouts());
    if let Some(c) = credentials {
        conf = conf.credentials_provider(c);
    }
    let dest = Destination { client: Client::from_conf(conf.build()), cfg };
    let mut evidence = Evidence { location: cfg.location(), files: Vec::with_capacity(files.len()), details };
    for (file, key) in files.iter().zip(&keys) {
        evidence.files.push(dest.upload(file, key).await?);
    }
    Ok(evidence)
}

fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(REQUEST_TIMEOUT).build()
}

/// AssumeRole with `credentials` (or the base configuration's); returns the temporary
/// credentials and the assumed role's ARN.
async fn assume_role(
    base: &aws_config::SdkConfig,
    credentials: Option<SharedCredentialsProvider>,
    region: Region,
    role_arn: &str,
    external_id: Option<&str>,
    export_id: &str,
) -> Result<(SharedCredentialsProvider, String), DeliverError> {
    let mut conf = aws_sdk_sts::config::Builder::from(base).region(region).timeout_config(timeouts());
    if let Some(c) = credentials {
        conf = conf.credentials_provider(c);
    }
    let sts = aws_sdk_sts::Client::from_conf(conf.build());
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(role_session_name(export_id))
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("STS AssumeRole {role_arn}"), e))?;
    let c = out.credentials().ok_or_else(|| DeliverError::permanent(format!("STS AssumeRole {role_arn} returned no credentials")))?;
    let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
    let provider = SharedCredentialsProvider::new(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "egress-assumed-role",
    ));
    let arn = out.assumed_role_user().map(|u| u.arn().to_string()).unwrap_or_else(|| role_arn.to_string());
    Ok((provider, arn))
}

/// The error codes S3 and STS answer when another attempt may succeed.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestTimeout",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "ExpiredToken",
    "IDPCommunicationError",
];

/// An SDK error as a [`DeliverError`]: throttling, 408/429/5xx, timeouts and connection
/// failures are transient; any other answer (AccessDenied, NoSuchBucket, InvalidAccessKeyId,
/// other 4xx) is permanent. The message is `what`, then the service's code and message and
/// the HTTP status, or the error's causes.
pub fn sdk_error<E>(what: &str, e: SdkError<E, HttpResponse>) -> DeliverError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("");
            let mut message = format!("{what}: ");
            match (code, se.err().message()) {
                ("", _) => message.push_str(&error_chain(&e)),
                (c, Some(m)) => message.push_str(&format!("{c}: {m}")),
                (c, None) => message.push_str(c),
            }
            message.push_str(&format!(" (HTTP {status})"));
            let transient = TRANSIENT_CODES.contains(&code) || status == 408 || status == 429 || status >= 500;
            if transient {
                let retry_after =
                    se.raw().headers().get("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(std::time::Duration::from_secs);
                DeliverError::Transient { message, retry_after }
            } else {
                DeliverError::Permanent { message }
            }
        }
        SdkError::ConstructionFailure(_) => DeliverError::permanent(format!("{what}: {}", error_chain(&e))),
        SdkError::DispatchFailure(d) if d.is_user() => DeliverError::permanent(format!("{what}: {}", error_chain(&e))),
        _ => DeliverError::transient(format!("{what}: {}", error_chain(&e))),
    }
}

struct Destination<'a> {
    client: Client,
    cfg: &'a S3Config,
}

/// One part read from the file, with its SHA-256.
struct Part {
    number: i32,
    data: Bytes,
    sha256: [u8; 32],
}

impl Destination<'_> {
    fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match self.cfg.sse {
            Some(S3Sse::Aes256) => (Some(ServerSideEncryption::Aes256), None),
            Some(S3Sse::AwsKms) => (Some(ServerSideEncryption::AwsKms), self.cfg.kms_key_id.clone()),
            None => (None, None),
        }
    }

    fn where_(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.cfg.bucket)
    }

    async fn upload(&self, file: &OutgoingFile, key: &str) -> Result<Map<String, Value>, DeliverError> {
        let size = local_size(file).await?;
        let mut ev = Map::new();
        ev.insert("key".into(), json!(key));
        let (etag, version_id, checksum, sse) =
            if size < MULTIPART_THRESHOLD { self.put(file, key, size).await? } else { self.multipart(file, key, size).await? };
        ev.insert("etag".into(), json!(etag));
        ev.insert("version_id".into(), json!(version_id));
        ev.insert("size".into(), json!(size));
        ev.insert("sha256".into(), json!(file.sha256));
        ev.insert("checksum_sha256".into(), json!(checksum));
        ev.insert("server_side_encryption".into(), json!(sse));
        Ok(ev)
    }

    /// One PutObject with the whole file (under 16 MiB) and its SHA-256 as the checksum.
    async fn put(&self, file: &OutgoingFile, key: &str, size: u64) -> Result<S3Answer, DeliverError> {
        let data = tokio::fs::read(&file.path).await.map_err(|e| local_error(file, e))?;
        let digest: [u8; 32] = Sha256::digest(&data).into();
        check_digest(file, &digest)?;
        let (sse, kms) = self.sse();
        let out = self
            .client
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .content_length(size as i64)
            .content_type(&file.content_type)
            .metadata("sha256", &file.sha256)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(B64.encode(digest))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_storage_class(self.cfg.storage_class.as_deref().map(StorageClass::from))
            .set_acl(self.cfg.acl.as_deref().map(ObjectCannedAcl::from))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("S3 PutObject {}", self.where_(key)), e))?;
        Ok((
            out.e_tag().map(str::to_string),
            out.version_id().map(str::to_string),
            out.checksum_sha256().map(str::to_string),
            out.server_side_encryption().map(|s| s.as_str().to_string()),
        ))
    }

    async fn multipart(&self, file: &OutgoingFile, key: &str, size: u64) -> Result<S3Answer, DeliverError> {
        let (sse, kms) = self.sse();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.cfg.bucket)
            .key(key)
            .content_type(&file.content_type)
            .metadata("sha256", &file.sha256)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_storage_class(self.cfg.storage_class.as_deref().map(StorageClass::from))
            .set_acl(self.cfg.acl.as_deref().map(ObjectCannedAcl::from))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("S3 CreateMultipartUpload {}", self.where_(key)), e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| DeliverError::transient(format!("S3 CreateMultipartUpload {} returned no upload id", self.where_(key))))?
            .to_string();
        match self.parts_and_complete(file, key, size, &upload_id).await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                let abort = self.client.abort_multipart_upload().bucket(&self.cfg.bucket).key(key).upload_id(&upload_id).send().await;
                if let Err(a) = abort {
                    let a = sdk_error("S3 AbortMultipartUpload", a);
                    tracing::warn!(bucket = %self.cfg.bucket, key, error = %a, "could not abort a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    async fn parts_and_complete(&self, file: &OutgoingFile, key: &str, size: u64, upload_id: &str) -> Result<S3Answer, DeliverError> {
        let part_size = part_size(size);
        let count = size.div_ceil(part_size);
        let whole = Arc::new(Mutex::new(Sha256::new()));
        // Parts are read in order (`then` runs one read at a time), so the whole file's hash is
        // computed on the way; uploads run concurrently behind the reads.
        let mut parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            // Boxed: the futures' concrete types would make the caller's future not `Send`
            // for every lifetime (a known limit of the compiler with closures over borrows).
            .then(|i| read_part(file, i, part_size, size, whole.clone()).boxed())
            .map_ok(|part| self.upload_part(key, upload_id, part).boxed())
            .boxed()
            .try_buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        check_digest(file, &finish_hash(whole))?;
        parts.sort_by_key(|p| p.part_number);
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.cfg.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("S3 CompleteMultipartUpload {}", self.where_(key)), e))?;
        Ok((
            out.e_tag().map(str::to_string),
            out.version_id().map(str::to_string),
            out.checksum_sha256().map(str::to_string),
            out.server_side_encryption().map(|s| s.as_str().to_string()),
        ))
    }

    async fn upload_part(&self, key: &str, upload_id: &str, part: Part) -> Result<CompletedPart, DeliverError> {
        let checksum = B64.encode(part.sha256);
        let len = part.data.len() as i64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.cfg.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.number)
            .content_length(len)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(part.data))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("S3 UploadPart {} part {}", self.where_(key), part.number), e))?;
        Ok(CompletedPart::builder()
            .part_number(part.number)
            .set_e_tag(out.e_tag)
            .checksum_sha256(out.checksum_sha256.unwrap_or(checksum))
            .build())
    }
}

/// ETag, version id, S3's SHA-256 checksum, server-side encryption.
type S3Answer = (Option<String>, Option<String>, Option<String>, Option<String>);

/// The part size for a file of `size` bytes: [`PART_SIZE`], or more (whole MiB) when that would
/// make more than 10,000 parts.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    PART_SIZE.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// Read part `index` of the file with its SHA-256, feeding the whole file's hash.
async fn read_part(file: &OutgoingFile, index: u64, part_size: u64, size: u64, whole: Arc<Mutex<Sha256>>) -> Result<Part, DeliverError> {
    let offset = index * part_size;
    let len = part_size.min(size - offset) as usize;
    let (data, digest) = read_hashed(file, offset, len, whole, true).await?;
    Ok(Part { number: (index + 1) as i32, data: Bytes::from(data), sha256: digest.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validation::from_json;

    fn parse(v: Value) -> Result<S3Config, ValidationErrors> {
        let cfg: S3Config = from_json(&v)?;
        cfg.validate("/destinations/0")?;
        Ok(cfg)
    }

    #[test]
    fn a_full_config_is_accepted() {
        let cfg = parse(json!({
            "bucket": "partner-drop.example", "prefix": "in/daily", "region": "eu-central-1",
            "role_arn": "arn:aws:iam::123456789012:role/egress-writer", "external_id": "acme-42",
            "sse": "aws:kms", "kms_key_id": "alias/partner", "credential": "cred_01abc",
            "storage_class": "STANDARD_IA", "acl": "bucket-owner-full-control"
        }))
        .unwrap();
        assert_eq!(cfg.sse, Some(S3Sse::AwsKms));
        assert_eq!(cfg.location(), "s3://partner-drop.example/in/daily/");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my.bucket-1", "a1b"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "My-Bucket", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "abc-s3alias", "a_b", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported_with_its_pointer() {
        let err = parse(json!({
            "bucket": "Bad_Bucket", "prefix": "/abs/../x", "region": "mars", "role_arn": "arn:aws:iam::12:user/x",
            "kms_key_id": "k", "credential": "password", "storage_class": "COLD", "acl": "public-read"
        }))
        .unwrap_err();
        let pointers: Vec<&str> = err.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/destinations/0/bucket",
                "/destinations/0/prefix",
                "/destinations/0/region",
                "/destinations/0/role_arn",
                "/destinations/0/kms_key_id",
                "/destinations/0/credential",
                "/destinations/0/storage_class",
                "/destinations/0/acl"
            ]
        );
        assert_eq!(err.0[7].value, json!("public-read"));
        assert!(err.0[7].allowed.contains("bucket-owner-full-control"));
    }

    #[test]
    fn unknown_fields_and_sse_values_are_refused() {
        let err = parse(json!({"bucket": "abc", "encryption": "AES256"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/encryption");
        let err = parse(json!({"bucket": "abc", "sse": "aws:kms:dsse"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/sse");
        assert!(err.0[0].allowed.contains("AES256"), "{}", err.0[0].allowed);
        let err = parse(json!({"bucket": "abc", "external_id": "xyz"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/destinations/0/external_id");
    }

    #[test]
    fn storage_classes_are_s3_ones() {
        for s in STORAGE_CLASSES {
            assert!(StorageClass::values().contains(s), "{s}");
        }
        for a in CANNED_ACLS {
            assert!(ObjectCannedAcl::values().contains(a), "{a}");
        }
    }

    #[test]
    fn session_names_fit_sts() {
        assert_eq!(role_session_name("exp_0190abc"), "egress-exp_0190abc");
        assert_eq!(role_session_name("a b/c"), "egress-a-b-c");
        assert_eq!(role_session_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn parts_stay_under_ten_thousand() {
        assert_eq!(part_size(1 << 30), PART_SIZE);
        let huge = 400 * (1u64 << 30);
        assert!(huge.div_ceil(part_size(huge)) <= MAX_PARTS);
        assert_eq!(part_size(huge) % (1024 * 1024), 0);
    }

    #[test]
    fn keys_are_redacted_in_debug() {
        let k = AwsKeys { access_key_id: "AKIAEXAMPLE".into(), secret_access_key: "s3cr3t".into(), session_token: Some("tok3n".into()) };
        let d = format!("{k:?}");
        assert!(d.contains("AKIAEXAMPLE") && !d.contains("s3cr3t") && !d.contains("tok3n"), "{d}");
    }
}
