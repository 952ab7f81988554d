//! The file side of an SFTP delivery: `mkdir -p`, and a streamed, resumable upload to a
//! temporary name followed by a rename to the final name.
//!
//! The temporary name carries the start of the file's SHA-256, so a temporary file left by a
//! broken attempt can only hold a prefix of the same bytes: the next attempt resumes it.

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use super::connect::Session;
use super::sftp_error;
use crate::deliver::{DeliverError, OutgoingFile};

/// Bytes of writes sent and not yet acknowledged. Also how far a resumed upload steps back
/// from the temporary file's end: a server that applies writes out of order can leave holes
/// only within this distance of it.
const IN_FLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// Largest write request when the server does not announce its limit (`limits@openssh.com`).
const DEFAULT_WRITE_LEN: u64 = 32 * 1024;
/// Largest write request sent at all (OpenSSH takes 255 KiB).
const MAX_WRITE_LEN: u64 = 255 * 1024;

fn is_no_such_file(err: &SftpError) -> bool {
    matches!(err, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// Make sure `directory` exists (creating it and its parents when `create` is set) and return
/// its absolute path as the server names it.
pub(super) async fn prepare_directory(session: &Session, directory: &str, create: bool, target: &str) -> Result<String, DeliverError> {
    let sftp = &session.sftp;
    let dir = normalize(directory);
    match sftp.stat(dir.as_str()).await {
        Ok(attrs) if attrs.attrs.file_type().is_dir() => {}
        Ok(_) => return Err(DeliverError::permanent(format!("{target}: {dir:?} exists and is not a directory"))),
        Err(e) if is_no_such_file(&e) => {
            if !create {
                return Err(DeliverError::permanent(format!("{target}: directory {dir:?} does not exist (create_directories is false)")));
            }
            mkdir_p(session, &dir, target).await?;
        }
        Err(e) => return Err(sftp_error(target, &format!("checking directory {dir:?}"), e)),
    }
    let name = sftp.realpath(dir.as_str()).await.map_err(|e| sftp_error(target, &format!("resolving directory {dir:?}"), e))?;
    Ok(name.files.first().map(|f| f.filename.clone()).unwrap_or(dir))
}

/// `a//b/./c/` -> `a/b/c`; `/` stays `/`; empty means `.`.
fn normalize(directory: &str) -> String {
    let absolute = directory.starts_with('/');
    let parts: Vec<&str> = directory.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => parts.join("/"),
    }
}

async fn mkdir_p(session: &Session, dir: &str, target: &str) -> Result<(), DeliverError> {
    let sftp = &session.sftp;
    let mut prefix = if dir.starts_with('/') { String::from("/") } else { String::new() };
    for part in dir.split('/').filter(|s| !s.is_empty()) {
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        match sftp.stat(prefix.as_str()).await {
            Ok(attrs) if attrs.attrs.file_type().is_dir() => continue,
            Ok(_) => return Err(DeliverError::permanent(format!("{target}: {prefix:?} exists and is not a directory"))),
            Err(e) if is_no_such_file(&e) => {}
            Err(e) => return Err(sftp_error(target, &format!("checking directory {prefix:?}"), e)),
        }
        if let Err(e) = sftp.mkdir(prefix.as_str(), FileAttributes::empty()).await {
            // Another client may have created it meanwhile.
            match sftp.stat(prefix.as_str()).await {
                Ok(attrs) if attrs.attrs.file_type().is_dir() => {}
                _ => return Err(sftp_error(target, &format!("creating directory {prefix:?}"), e)),
            }
        }
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") }
}

/// The temporary name of `file` while it is uploaded: hidden, and tied to its content.
pub(super) fn temporary_name(file: &OutgoingFile) -> String {
    let digest = file.sha256.get(..16).unwrap_or(&file.sha256).to_ascii_lowercase();
    format!(".{}.{digest}.egress-part", file.remote_name)
}

/// Upload one file into `dir` (absolute) and return its evidence.
pub(super) async fn upload_file(
    session: &Session,
    dir: &str,
    file: &OutgoingFile,
    target: &str,
) -> Result<Map<String, Value>, DeliverError> {
    if file.remote_name.is_empty() || file.remote_name.contains('/') || file.remote_name.chars().any(char::is_control) {
        return Err(DeliverError::permanent(format!("{target}: {:?} is not a file name", file.remote_name)));
    }
    let sftp = &session.sftp;
    let final_path = join(dir, &file.remote_name);
    let part_path = join(dir, &temporary_name(file));

    let mut local = tokio::fs::File::open(&file.path)
        .await
        .map_err(|e| DeliverError::permanent(format!("cannot read the file to deliver {}: {e}", file.path.display())))?;

    // Resume from what a previous attempt left, stepping back over the unacknowledged window.
    let remote_size = match sftp.stat(part_path.as_str()).await {
        Ok(attrs) => attrs.attrs.size,
        Err(e) if is_no_such_file(&e) => None,
        Err(e) => return Err(sftp_error(target, &format!("checking {part_path:?}"), e)),
    };
    let mut resume_at = match remote_size {
        Some(size) if size <= file.size => size.saturating_sub(IN_FLIGHT_BYTES as u64),
        _ => 0,
    };
    let opened = if resume_at > 0 {
        match sftp.open(part_path.as_str(), OpenFlags::WRITE, FileAttributes::empty()).await {
            Err(e) if is_no_such_file(&e) => {
                resume_at = 0;
                None
            }
            other => Some(other),
        }
    } else {
        None
    };
    let handle = match opened {
        Some(result) => result,
        None => sftp.open(part_path.as_str(), OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE, FileAttributes::empty()).await,
    }
    .map_err(|e| sftp_error(target, &format!("opening {part_path:?} for writing"), e))?
    .handle;

    let write_len = session.extensions.max_write_len.unwrap_or(DEFAULT_WRITE_LEN).clamp(4096, MAX_WRITE_LEN) as usize;
    let sent = send(session, &handle, &mut local, file, resume_at, write_len, target).await;
    if let Err(e) = sent {
        let _ = sftp.close(handle.as_str()).await;
        return Err(e);
    }
    if session.extensions.fsync {
        sftp.fsync(handle.as_str()).await.map_err(|e| sftp_error(target, &format!("syncing {part_path:?}"), e))?;
    }
    sftp.close(handle.as_str()).await.map_err(|e| sftp_error(target, &format!("closing {part_path:?}"), e))?;

    let size = remote_len(session, &part_path, target).await?;
    if size != file.size {
        return Err(DeliverError::transient(format!(
            "{target}: {part_path:?} holds {size} bytes after the upload, expected {}",
            file.size
        )));
    }
    rename(session, &part_path, &final_path, target).await?;
    let size = remote_len(session, &final_path, target).await?;
    if size != file.size {
        return Err(DeliverError::transient(format!("{target}: {final_path:?} holds {size} bytes, expected {}", file.size)));
    }

    let mut evidence = Map::new();
    evidence.insert("remote_path".into(), json!(final_path));
    evidence.insert("size".into(), json!(file.size));
    evidence.insert("sha256".into(), json!(file.sha256));
    evidence.insert("resumed_from".into(), json!(resume_at));
    Ok(evidence)
}

/// Stream the local file, hashing all of it, and write everything from `resume_at` on with
/// up to [`IN_FLIGHT_BYTES`] of writes awaiting acknowledgement. Fails without writing the
/// final name when the local bytes are not the ones announced.
async fn send(
    session: &Session,
    handle: &str,
    local: &mut tokio::fs::File,
    file: &OutgoingFile,
    resume_at: u64,
    write_len: usize,
    target: &str,
) -> Result<(), DeliverError> {
    let sftp = &session.sftp;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; write_len];
    let mut offset = 0u64;
    let mut pending: FuturesUnordered<WriteAck<'_>> = FuturesUnordered::new();
    let mut pending_bytes = 0usize;
    let write_error = |e: SftpError| sftp_error(target, "writing", e);
    loop {
        let n = read_full(local, &mut buf)
            .await
            .map_err(|e| DeliverError::permanent(format!("cannot read the file to deliver {}: {e}", file.path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        let start = offset;
        offset += n as u64;
        if offset <= resume_at {
            continue;
        }
        let skip = resume_at.saturating_sub(start) as usize;
        let data = buf[skip..n].to_vec();
        let len = data.len();
        while pending_bytes + len > IN_FLIGHT_BYTES
            && let Some(done) = pending.next().await
        {
            pending_bytes -= done.map_err(write_error)?;
        }
        pending_bytes += len;
        let at = start + skip as u64;
        pending.push(Box::pin(async move { sftp.write(handle, at, data).await.map(|_| len) }));
    }
    while let Some(done) = pending.next().await {
        done.map_err(write_error)?;
    }
    let digest = hex::encode(hasher.finalize());
    if offset != file.size || !digest.eq_ignore_ascii_case(&file.sha256) {
        return Err(DeliverError::permanent(format!(
            "the file to deliver {} changed: {offset} bytes with SHA-256 {digest}, expected {} bytes with {}",
            file.path.display(),
            file.size,
            file.sha256
        )));
    }
    Ok(())
}

/// A write request in flight; resolves to its length once acknowledged.
type WriteAck<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, SftpError>> + Send + 'a>>;

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

async fn remote_len(session: &Session, path: &str, target: &str) -> Result<u64, DeliverError> {
    let attrs = session.sftp.stat(path).await.map_err(|e| sftp_error(target, &format!("checking {path:?}"), e))?;
    attrs.attrs.size.ok_or_else(|| DeliverError::transient(format!("{target}: the server gave no size for {path:?}")))
}

/// Rename over any existing file: atomically with `posix-rename@openssh.com`, else by
/// removing the old file first (plain SFTP rename refuses an existing target).
async fn rename(session: &Session, from: &str, to: &str, target: &str) -> Result<(), DeliverError> {
    let sftp = &session.sftp;
    let what = || format!("renaming {from:?} to {to:?}");
    if session.extensions.posix_rename {
        let mut data = Vec::with_capacity(8 + from.len() + to.len());
        for s in [from, to] {
            data.extend_from_slice(&(s.len() as u32).to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        return match sftp.extended("posix-rename@openssh.com", data).await {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => Err(sftp_error(target, &what(), SftpError::Status(s))),
            Ok(_) => Err(DeliverError::transient(format!("{target}: {}: unexpected reply", what()))),
            Err(e) => Err(sftp_error(target, &what(), e)),
        };
    }
    match sftp.rename(from, to).await {
        Ok(_) => Ok(()),
        Err(first) => {
            match sftp.stat(to).await {
                Ok(_) => {}
                // The target does not exist: the rename failed for another reason.
                Err(_) => return Err(sftp_error(target, &what(), first)),
            }
            sftp.remove(to).await.map_err(|e| sftp_error(target, &format!("removing the previous {to:?}"), e))?;
            sftp.rename(from, to).await.map(|_| ()).map_err(|e| sftp_error(target, &what(), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_normalize() {
        assert_eq!(normalize("."), ".");
        assert_eq!(normalize("./"), ".");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("a//b/./c/"), "a/b/c");
        assert_eq!(normalize("/srv/in/"), "/srv/in");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/in", "x"), "/in/x");
    }
}
