//! The BlobStore on one S3 bucket. Objects are written with SSE-KMS under the configured key
//! when there is one; files above [`MULTIPART_THRESHOLD`] go up as a multipart upload of
//! [`PART_SIZE`] parts (aborted if any part fails); downloads are presigned GetObject URLs that
//! name the file as an attachment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, ServerSideEncryption};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{sdk_error, sdk_message};
use crate::blob::{BlobError, BlobStore, LocalFile, ObjectMeta, is_safe_relative_key};

/// Files larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// The size of each part of a multipart upload (the last one may be smaller).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Parts uploaded at once.
const PART_CONCURRENCY: usize = 4;
/// The largest object one CopyObject copies; larger ones are copied in parts.
pub const COPY_OBJECT_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// The size of each part of a multipart copy.
const COPY_PART_SIZE: u64 = 512 * 1024 * 1024;
/// The most keys one DeleteObjects call takes.
const DELETE_BATCH: usize = 1000;

pub struct S3BlobStore {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
    temp_dir: PathBuf,
}

fn backend<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> BlobError {
    BlobError::Backend(sdk_error(&e))
}

fn other<E: std::error::Error>(e: E) -> BlobError {
    BlobError::Backend(sdk_message(&e))
}

/// A missing object (not a missing bucket: that is a configuration error to report).
fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(se) => match se.err().code() {
            Some("NoSuchKey" | "NotFound") => true,
            Some("NoSuchBucket") => false,
            _ => se.raw().status().as_u16() == 404,
        },
        _ => false,
    }
}

fn check_key(key: &str) -> Result<(), BlobError> {
    if is_safe_relative_key(key) { Ok(()) } else { Err(BlobError::InvalidKey(key.to_string())) }
}

/// Characters kept as they are in an RFC 8187 `filename*` value.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Characters escaped in a `CopySource` (`bucket/key`, URL-encoded; `/` kept).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `attachment` with the file name: a plain ASCII fallback and the exact name (RFC 6266).
pub fn content_disposition(filename: &str) -> String {
    let fallback: String =
        filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(filename, ATTR_CHAR))
}

impl S3BlobStore {
    /// The store on `bucket`; objects are encrypted with SSE-KMS under `kms_key_id` if given.
    pub fn new(client: Client, bucket: impl Into<String>, kms_key_id: Option<String>) -> Self {
        Self { client, bucket: bucket.into(), kms_key_id, temp_dir: std::env::temp_dir() }
    }

    /// Where [`BlobStore::local_file`] downloads to (default: the system's temporary folder).
    pub fn with_temp_dir(mut self, dir: PathBuf) -> Self {
        self.temp_dir = dir;
        self
    }

    fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.kms_key_id {
            Some(k) => (Some(ServerSideEncryption::AwsKms), Some(k.clone())),
            None => (None, None),
        }
    }

    async fn put_object(&self, key: &str, body: ByteStream, len: u64) -> Result<(), BlobError> {
        let (sse, kms) = self.sse();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(len as i64)
            .body(body)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn multipart(&self, key: &str, file: &Path, size: u64) -> Result<(), BlobError> {
        let upload_id = self.create_multipart(key).await?;
        let done = self.upload_parts(key, file, size, &upload_id).await;
        self.abort_if_failed(key, &upload_id, done).await
    }

    /// Start a multipart upload of `key` (SSE-KMS when configured); its upload id.
    async fn create_multipart(&self, key: &str) -> Result<String, BlobError> {
        let (sse, kms) = self.sse();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(backend)?;
        created.upload_id.ok_or_else(|| BlobError::Backend("CreateMultipartUpload returned no upload id".into()))
    }

    /// Abort the multipart upload when `done` is an error, so no parts are left behind; `done`.
    async fn abort_if_failed(&self, key: &str, upload_id: &str, done: Result<(), BlobError>) -> Result<(), BlobError> {
        if done.is_err() {
            let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
            if let Err(a) = abort {
                tracing::warn!(key, error = %sdk_error(&a), "could not abort a failed multipart upload");
            }
        }
        done
    }

    /// Copy `from` to `to` in [`COPY_PART_SIZE`] parts (UploadPartCopy), for objects above
    /// [`COPY_OBJECT_LIMIT`]; the upload is aborted if a part fails.
    async fn multipart_copy(&self, source: &str, to: &str, size: u64) -> Result<(), BlobError> {
        let upload_id = self.create_multipart(to).await?;
        let copied: Result<Vec<CompletedPart>, BlobError> = futures::stream::iter(0..size.div_ceil(COPY_PART_SIZE))
            .map(|i| {
                let upload_id = upload_id.clone();
                async move {
                    let first = i * COPY_PART_SIZE;
                    let last = (first + COPY_PART_SIZE).min(size) - 1;
                    let number = (i + 1) as i32;
                    let out = self
                        .client
                        .upload_part_copy()
                        .bucket(&self.bucket)
                        .key(to)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .send()
                        .await
                        .map_err(backend)?;
                    let etag = out.copy_part_result.and_then(|r| r.e_tag);
                    Ok::<_, BlobError>(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
                }
            })
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await;
        let done = match copied {
            Ok(mut parts) => {
                parts.sort_by_key(|p| p.part_number);
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(backend)
            }
            Err(e) => Err(e),
        };
        self.abort_if_failed(to, &upload_id, done).await
    }

    async fn upload_parts(&self, key: &str, file: &Path, size: u64, upload_id: &str) -> Result<(), BlobError> {
        let count = size.div_ceil(PART_SIZE);
        let mut parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|i| async move {
                let offset = i * PART_SIZE;
                let len = PART_SIZE.min(size - offset);
                let data = read_range(file, offset, len).await?;
                let number = (i + 1) as i32;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(len as i64)
                    .body(ByteStream::from(data))
                    .send()
                    .await
                    .map_err(backend)?;
                Ok::<_, BlobError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .set_checksum_crc32(out.checksum_crc32)
                        .set_checksum_crc32_c(out.checksum_crc32_c)
                        .set_checksum_crc64_nvme(out.checksum_crc64_nvme)
                        .set_checksum_sha1(out.checksum_sha1)
                        .set_checksum_sha256(out.checksum_sha256)
                        .build(),
                )
            })
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number);
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

async fn read_range(file: &Path, offset: u64, len: u64) -> Result<Bytes, BlobError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        check_key(key)?;
        let len = data.len() as u64;
        self.put_object(key, ByteStream::from(data), len).await
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<u64, BlobError> {
        check_key(key)?;
        let size = tokio::fs::metadata(file).await?.len();
        if size > MULTIPART_THRESHOLD {
            self.multipart(key, file, size).await?;
        } else {
            let body = ByteStream::read_from()
                .path(file)
                .length(Length::Exact(size))
                .build()
                .await
                .map_err(|e| BlobError::Backend(e.to_string()))?;
            self.put_object(key, body, size).await?;
        }
        // Stored: the local file is consumed.
        match tokio::fs::remove_file(file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "could not remove an uploaded file"),
        }
        Ok(size)
    }

    async fn get_bytes(&self, key: &str) -> Result<Bytes, BlobError> {
        check_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Err(BlobError::NotFound(key.to_string())),
            Err(e) => return Err(backend(e)),
        };
        let data = out.body.collect().await.map_err(|e| BlobError::Backend(e.to_string()))?;
        Ok(data.into_bytes())
    }

    async fn local_file(&self, key: &str) -> Result<LocalFile, BlobError> {
        check_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Err(BlobError::NotFound(key.to_string())),
            Err(e) => return Err(backend(e)),
        };
        let temp = tempfile::NamedTempFile::new_in(&self.temp_dir)?.into_temp_path();
        let mut dest = tokio::fs::File::create(&temp).await?;
        let mut body = out.body.into_async_read();
        tokio::io::copy_buf(&mut body, &mut dest).await?;
        tokio::io::AsyncWriteExt::flush(&mut dest).await?;
        dest.sync_all().await?;
        Ok(LocalFile::temporary(temp))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        check_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => Ok(Some(o.content_length.unwrap_or(0).max(0) as u64)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, BlobError> {
        if !prefix.is_empty() && !is_safe_relative_key(prefix) {
            return Err(BlobError::InvalidKey(prefix.to_string()));
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(backend)?;
            for o in page.contents.unwrap_or_default() {
                if let Some(key) = o.key {
                    out.push(ObjectMeta { key, size: o.size.unwrap_or(0).max(0) as u64 });
                }
            }
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            // S3 answers a delete of a missing key with success.
            Ok(_) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        if !is_safe_relative_key(prefix) {
            // An empty prefix would name the whole bucket.
            return Err(BlobError::InvalidKey(prefix.to_string()));
        }
        let objects = self.list(prefix).await?;
        for batch in objects.chunks(DELETE_BATCH) {
            let ids =
                batch.iter().map(|o| ObjectIdentifier::builder().key(&o.key).build().map_err(other)).collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(other)?;
            let out = self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await.map_err(backend)?;
            if let Some(err) = out.errors.unwrap_or_default().into_iter().next() {
                return Err(BlobError::Backend(format!(
                    "could not delete {}: {} {}",
                    err.key.unwrap_or_default(),
                    err.code.unwrap_or_default(),
                    err.message.unwrap_or_default()
                )));
            }
        }
        Ok(objects.len() as u64)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        check_key(from)?;
        check_key(to)?;
        let size = self.head(from).await?.ok_or_else(|| BlobError::NotFound(from.to_string()))?;
        let source = utf8_percent_encode(&format!("{}/{from}", self.bucket), COPY_SOURCE).to_string();
        if size > COPY_OBJECT_LIMIT {
            return self.multipart_copy(&source, to, size).await;
        }
        let (sse, kms) = self.sse();
        match self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(BlobError::NotFound(from.to_string())),
            Err(e) => Err(backend(e)),
        }
    }

    fn s3_bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }

    async fn presign_get(&self, key: &str, filename: &str, content_type: &str, expires_in: Duration) -> Result<String, BlobError> {
        check_key(key)?;
        let config = PresigningConfig::expires_in(expires_in).map_err(other)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition(filename))
            .response_content_type(content_type)
            .presigned(config)
            .await
            .map_err(backend)?;
        Ok(req.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_names_the_file_safely() {
        assert_eq!(content_disposition("report.csv"), "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv");
        let d = content_disposition("a \"b\"\u{e9}.csv");
        assert!(d.starts_with("attachment; filename=\"a _b__.csv\"; filename*=UTF-8''a%20%22b%22%C3%A9.csv"), "{d}");
    }
}
