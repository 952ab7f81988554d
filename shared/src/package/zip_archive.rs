//! Zip archives of several files: deflate, each file streamed from its reader into a writer that
//! never seeks (sizes follow each entry in a data descriptor), Zip64 for large entries, and optionally
//! AES-256 (WinZip AE-2) under a password, which 7-Zip, WinZip and macOS Archive Utility open.

use std::io::{Read, Write};

use chrono::{Datelike, Timelike, Utc};
use zip::write::SimpleFileOptions;
use zip::{AesMode, CompressionMethod, ZipWriter};

use super::secret::Secret;

/// Deflate level (zlib's default).
const DEFLATE_LEVEL: i64 = 6;
/// Entries from this size on are written as Zip64 (deflate can grow incompressible data a
/// little, so the switch comes well before 4 GiB).
const ZIP64_FROM: u64 = 4_000_000_000;
/// Bytes read from a source file at a time.
const READ_BLOCK: usize = 1 << 20;
/// Shortest password accepted for an AES archive.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// One file to put in the archive.
pub struct ZipEntry<'a> {
    /// Name inside the archive: a plain file name (no folders).
    pub name: &'a str,
    /// Its size (it decides whether the entry is written as Zip64).
    pub size: u64,
    /// Its bytes.
    pub reader: &'a mut dyn Read,
}

/// Why an archive could not be written. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("the name `{name}` cannot be used inside the archive: {why}")]
    Name { name: String, why: &'static str },
    #[error("the archive password is too short: at least {MIN_PASSWORD_CHARS} characters are needed")]
    WeakPassword,
    #[error("reading {name} or writing the archive: {source}")]
    Io { name: String, source: std::io::Error },
    #[error("writing the archive: {0}")]
    Zip(String),
}

/// Write `entries` into one zip archive streamed into `writer`, in the order given; with a
/// password, every entry is AES-256 encrypted (AE-2). Returns the writer.
pub fn write_zip<W: Write>(writer: W, entries: &mut [ZipEntry<'_>], password: Option<&Secret>) -> Result<W, ZipError> {
    check_names(entries)?;
    if let Some(p) = password
        && p.expose().chars().count() < MIN_PASSWORD_CHARS
    {
        return Err(ZipError::WeakPassword);
    }
    let zip_err = |e: zip::result::ZipError| ZipError::Zip(e.to_string());
    let mut zip = ZipWriter::new_stream(writer);
    let now = Utc::now();
    let modified = zip::DateTime::from_date_and_time(
        now.year().clamp(1980, 2107) as u16,
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second().min(59) as u8,
    )
    .unwrap_or_default();
    let mut buf = vec![0u8; READ_BLOCK];
    for e in entries.iter_mut() {
        let name = e.name;
        let io = |source: std::io::Error| ZipError::Io { name: name.to_string(), source };
        let mut options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .last_modified_time(modified)
            .unix_permissions(0o644)
            .large_file(e.size >= ZIP64_FROM);
        if let Some(p) = password {
            options = options.with_aes_encryption(AesMode::Aes256, p.expose());
        }
        zip.start_file(e.name, options).map_err(zip_err)?;
        loop {
            let n = match e.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io(err)),
            };
            zip.write_all(&buf[..n]).map_err(io)?;
        }
    }
    let stream = zip.finish().map_err(zip_err)?;
    Ok(stream.into_inner())
}

/// Why `name` cannot name a file inside an archive (or beside it), if it cannot: it must be a
/// plain file name, nothing that could land outside the folder it is extracted to.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 255 {
        return Some("1 to 255 bytes");
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Some("a file name without folders or control characters");
    }
    if name == "." || name == ".." {
        return Some("not `.` or `..`");
    }
    None
}

/// Names are plain, distinct file names.
fn check_names(entries: &[ZipEntry<'_>]) -> Result<(), ZipError> {
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let why = name_problem(e.name).or_else(|| {
            (!seen.insert(e.name.to_lowercase())).then_some("each name once (names differing only in case collide on Windows and macOS)")
        });
        if let Some(why) = why {
            return Err(ZipError::Name { name: e.name.chars().take(200).collect(), why });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_or_collide_are_refused() {
        for names in [vec!["../x.csv"], vec!["a/b.csv"], vec![".."], vec![""], vec!["a.csv", "A.csv"], vec!["a\u{7}.csv"]] {
            let mut readers: Vec<&[u8]> = names.iter().map(|_| &b""[..]).collect();
            let mut entries: Vec<_> =
                names.iter().zip(readers.iter_mut()).map(|(n, r)| ZipEntry { name: n, size: 0, reader: r as &mut dyn Read }).collect();
            assert!(matches!(write_zip(Vec::new(), &mut entries, None), Err(ZipError::Name { .. })), "{names:?}");
        }
    }

    #[test]
    fn short_passwords_are_refused_and_never_shown() {
        let mut r = &b""[..];
        let mut entries = [ZipEntry { name: "a.csv", size: 0, reader: &mut r }];
        let e = write_zip(Vec::new(), &mut entries, Some(&Secret::new("short-pw"))).unwrap_err();
        assert!(matches!(e, ZipError::WeakPassword));
        assert!(!format!("{e} {e:?}").contains("short-pw"));
    }

    #[test]
    fn an_unencrypted_archive_reads_back() {
        let a = b"x,y\n1,2\n".repeat(1000);
        let (mut ra, mut rb) = (&a[..], &b""[..]);
        let mut entries =
            [ZipEntry { name: "a.csv", size: a.len() as u64, reader: &mut ra }, ZipEntry { name: "empty.csv", size: 0, reader: &mut rb }];
        let bytes = write_zip(Vec::new(), &mut entries, None).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 2);
        let mut s = String::new();
        archive.by_name("a.csv").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s.as_bytes(), &b"x,y\n1,2\n".repeat(1000)[..]);
        assert_eq!(archive.by_name("empty.csv").unwrap().size(), 0);
    }
}
