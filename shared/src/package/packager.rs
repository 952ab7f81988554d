//! The packaging step of the Encrypt stage: from the encoded files to the delivered ones. Zip
//! archives them (optionally under an AES password), OpenPGP or age encrypts each file (or the
//! archive), and a manifest is written beside them when asked. Every source is re-hashed while
//! it is read (a file changed since encode is refused) and every output is hashed while it is
//! written. Synchronous and streaming: the stage runs it in `spawn_blocking`, and memory stays
//! at a few blocks whatever the sizes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::Value;

use super::age::{self as age_pkg, AgeRecipient};
use super::hashing::{BLOCK, HashingWriter};
use super::manifest::{ContainedFile, MANIFEST_NAME, MANIFEST_VERSION, Manifest, ManifestFile, PackagingSummary};
use super::openpgp::{self, RecipientKey};
use super::pipe::pipe;
use super::secret::Secret;
use super::zip_archive::{self, ZipEntry, ZipError};
use crate::model::spec::Compression;

/// Content type of an OpenPGP message (binary or armored).
pub const OPENPGP_CONTENT_TYPE: &str = "application/pgp-encrypted";
/// Content type of an age file (binary or armored).
pub const AGE_CONTENT_TYPE: &str = "application/octet-stream";
/// Content type of the manifest.
pub const MANIFEST_CONTENT_TYPE: &str = "application/json";

/// One encoded file, as the encode stage recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    /// The name it is delivered under (before packaging suffixes).
    pub name: String,
    /// Where its bytes are (a local file).
    pub path: PathBuf,
    pub rows: u64,
    pub size: u64,
    /// Hex SHA-256 of its bytes, taken when it was written.
    pub sha256: String,
    pub content_type: String,
}

/// Put all files into one zip archive.
#[derive(Debug, Clone)]
pub struct ZipOptions {
    /// The archive's name, e.g. `transactions-2026-10.zip`: a plain file name.
    pub archive_name: String,
    /// Encrypt every entry with AES-256 (WinZip AE-2) under this password.
    pub password: Option<Secret>,
}

/// Encrypt each delivered file (or the archive) to recipients.
#[derive(Debug, Clone)]
pub enum Encryption {
    /// OpenPGP (SEIPD v1, AES-256): files get `.gpg`, or `.asc` when armored.
    OpenPgp { keys: Vec<RecipientKey>, armor: bool },
    /// age (X25519): files get `.age`.
    Age { recipients: Vec<AgeRecipient>, armor: bool },
}

/// What the manifest says about the export, beyond the files.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestContext {
    pub export_id: String,
    pub tenant: String,
    /// Hex SHA-256 of the spec's canonical JSON ([`super::manifest::spec_sha256`]).
    pub spec_sha256: String,
    /// The sources the rows came from.
    pub source_lineage: Value,
    /// The spec's compression (gzip and zstd were applied by encode).
    pub compression: Compression,
}

/// How to package an export's files. All `None`: the files are delivered as they are.
#[derive(Debug, Clone, Default)]
pub struct PackagingOptions {
    pub zip: Option<ZipOptions>,
    pub encryption: Option<Encryption>,
    /// Write `manifest.json` beside the files (it is the last file returned).
    pub manifest: Option<ManifestContext>,
}

/// One file to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedFile {
    pub name: String,
    /// Where its bytes are: in `out_dir`, or the input's own path when nothing was done to it.
    pub path: PathBuf,
    pub size: u64,
    /// Hex SHA-256 of the bytes to deliver.
    pub sha256: String,
    pub rows: u64,
    pub content_type: String,
    /// Hex SHA-256 of the file it was made from; `None` for an archive (see `contents`) and the
    /// manifest.
    pub source_sha256: Option<String>,
    /// Size of the file it was made from; `None` for an archive and the manifest.
    pub source_size: Option<u64>,
    /// The files inside an archive.
    pub contents: Vec<ContainedFile>,
}

/// Why packaging failed. Never holds a password or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    #[error("nothing to package: no files were given")]
    NoInputs,
    #[error("the name `{name}` cannot be used: {why}")]
    Name { name: String, why: String },
    #[error(
        "{name} changed after it was written: expected {expected_size} bytes with SHA-256 {expected_sha256}, read {actual_size} bytes with SHA-256 {actual_sha256}"
    )]
    SourceChanged { name: String, expected_size: u64, expected_sha256: String, actual_size: u64, actual_sha256: String },
    #[error("reading {name}: {source}")]
    Read { name: String, source: io::Error },
    #[error("writing {name}: {source}")]
    Write { name: String, source: io::Error },
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error(transparent)]
    OpenPgp(#[from] openpgp::EncryptError),
    #[error(transparent)]
    Age(#[from] age_pkg::EncryptError),
    #[error("packaging stopped unexpectedly: {0}")]
    Internal(String),
}

impl PackageError {
    /// A disk or I/O failure that another attempt may not meet; everything else (a bad name, an
    /// expired key, a changed source) fails the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PackageError::Read { .. }
                | PackageError::Write { .. }
                | PackageError::Internal(_)
                | PackageError::Zip(ZipError::Io { .. })
                | PackageError::OpenPgp(openpgp::EncryptError::Io(_))
                | PackageError::Age(age_pkg::EncryptError::Io(_))
        )
    }
}

/// Package `inputs` into `out_dir` as `opts` says; returns the files to deliver, in order (the
/// manifest last). Outputs already in `out_dir` under the same names are replaced; on error the
/// outputs made so far are removed.
pub fn package(inputs: &[InputFile], opts: &PackagingOptions, out_dir: &Path) -> Result<Vec<PackedFile>, PackageError> {
    let mut made = Vec::new();
    let r = package_into(inputs, opts, out_dir, &mut made);
    if r.is_err() {
        for p in &made {
            let _ = std::fs::remove_file(p);
        }
    }
    r
}

fn package_into(
    inputs: &[InputFile],
    opts: &PackagingOptions,
    out_dir: &Path,
    made: &mut Vec<PathBuf>,
) -> Result<Vec<PackedFile>, PackageError> {
    if inputs.is_empty() {
        return Err(PackageError::NoInputs);
    }
    let mut names: Vec<&str> = inputs.iter().map(|f| f.name.as_str()).collect();
    if opts.manifest.is_some() {
        names.push(MANIFEST_NAME);
    }
    check_names(&names)?;
    std::fs::create_dir_all(out_dir).map_err(|source| PackageError::Write { name: out_dir.display().to_string(), source })?;
    let suffix = opts.encryption.as_ref().map(encrypted_suffix).unwrap_or("");
    let mut out = Vec::new();
    match (&opts.zip, &opts.encryption) {
        (None, None) => out.extend(inputs.iter().map(|f| PackedFile {
            name: f.name.clone(),
            path: f.path.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            rows: f.rows,
            content_type: f.content_type.clone(),
            source_sha256: Some(f.sha256.clone()),
            source_size: Some(f.size),
            contents: Vec::new(),
        })),
        (None, Some(enc)) => {
            for f in inputs {
                let name = format!("{}{suffix}", f.name);
                let path = out_path(out_dir, &name, inputs, made)?;
                let mut source = VerifyingReader::open(f)?;
                let mut w = HashingWriter::new(create(&path, &name)?);
                encrypt(enc, &mut source, &mut w)?;
                source.check()?;
                let (_, sha256, size) = w.finish().map_err(|source| PackageError::Write { name: name.clone(), source })?;
                out.push(PackedFile {
                    name,
                    path,
                    size,
                    sha256,
                    rows: f.rows,
                    content_type: encrypted_content_type(enc).into(),
                    source_sha256: Some(f.sha256.clone()),
                    source_size: Some(f.size),
                    contents: Vec::new(),
                });
            }
        }
        (Some(zip), enc) => {
            check_names(&[zip.archive_name.as_str()])?;
            if let Some(other) = inputs.iter().find(|f| f.name.eq_ignore_ascii_case(&zip.archive_name)) {
                return Err(PackageError::Name { name: other.name.clone(), why: "the archive has the same name as a file in it".into() });
            }
            let name = format!("{}{suffix}", zip.archive_name);
            let path = out_path(out_dir, &name, inputs, made)?;
            let mut w = HashingWriter::new(create(&path, &name)?);
            match enc {
                None => {
                    archive(inputs, zip.password.as_ref(), &mut w)?;
                }
                Some(enc) => archive_and_encrypt(inputs, zip.password.as_ref(), enc, &mut w)?,
            }
            let (_, sha256, size) = w.finish().map_err(|source| PackageError::Write { name: name.clone(), source })?;
            let content_type = enc.as_ref().map(encrypted_content_type).unwrap_or(super::ZIP_CONTENT_TYPE).to_string();
            let contents = inputs
                .iter()
                .map(|f| ContainedFile {
                    name: f.name.clone(),
                    size: f.size,
                    rows: f.rows,
                    content_type: f.content_type.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect();
            let rows = inputs.iter().map(|f| f.rows).sum();
            out.push(PackedFile { name, path, size, sha256, rows, content_type, source_sha256: None, source_size: None, contents });
        }
    }
    if let Some(ctx) = &opts.manifest {
        let manifest = build_manifest(ctx, opts, &out);
        let path = out_path(out_dir, MANIFEST_NAME, inputs, made)?;
        let mut w = HashingWriter::new(create(&path, MANIFEST_NAME)?);
        let werr = |source| PackageError::Write { name: MANIFEST_NAME.into(), source };
        w.write_all(&manifest.to_json_bytes()).map_err(werr)?;
        let (_, sha256, size) = w.finish().map_err(werr)?;
        out.push(PackedFile {
            name: MANIFEST_NAME.into(),
            path,
            size,
            sha256,
            rows: 0,
            content_type: MANIFEST_CONTENT_TYPE.into(),
            source_sha256: None,
            source_size: None,
            contents: Vec::new(),
        });
    }
    Ok(out)
}

/// The manifest of the packaged files.
pub fn build_manifest(ctx: &ManifestContext, opts: &PackagingOptions, files: &[PackedFile]) -> Manifest {
    let (encryption, recipients, armor) = match (&opts.encryption, &opts.zip) {
        (Some(Encryption::OpenPgp { keys, armor }), _) => {
            (Some("openpgp"), keys.iter().map(|k| k.fingerprint().to_string()).collect(), *armor)
        }
        (Some(Encryption::Age { recipients, armor }), _) => {
            (Some("age"), recipients.iter().map(|r| r.as_str().to_string()).collect(), *armor)
        }
        (None, Some(ZipOptions { password: Some(_), .. })) => (Some("zip_aes"), Vec::new(), false),
        (None, _) => (None, Vec::new(), false),
    };
    Manifest {
        manifest_version: MANIFEST_VERSION,
        export_id: ctx.export_id.clone(),
        tenant: ctx.tenant.clone(),
        created_at: Utc::now(),
        egress_version: env!("CARGO_PKG_VERSION").to_string(),
        spec_sha256: ctx.spec_sha256.clone(),
        source_lineage: ctx.source_lineage.clone(),
        files: files
            .iter()
            .map(|f| ManifestFile {
                name: f.name.clone(),
                size: f.size,
                rows: f.rows,
                content_type: f.content_type.clone(),
                sha256: f.sha256.clone(),
                source_sha256: f.source_sha256.clone(),
                source_size: f.source_size,
                contents: f.contents.clone(),
            })
            .collect(),
        packaging: PackagingSummary { compression: ctx.compression, encryption: encryption.map(String::from), recipients, armor },
    }
}

/// The suffix encryption adds to a name.
pub fn encrypted_suffix(enc: &Encryption) -> &'static str {
    match enc {
        Encryption::OpenPgp { armor: true, .. } => ".asc",
        Encryption::OpenPgp { armor: false, .. } => ".gpg",
        Encryption::Age { .. } => ".age",
    }
}

fn encrypted_content_type(enc: &Encryption) -> &'static str {
    match enc {
        Encryption::OpenPgp { .. } => OPENPGP_CONTENT_TYPE,
        Encryption::Age { .. } => AGE_CONTENT_TYPE,
    }
}

fn encrypt(enc: &Encryption, reader: impl Read, writer: impl Write) -> Result<(), PackageError> {
    match enc {
        Encryption::OpenPgp { keys, armor } => openpgp::encrypt(reader, writer, keys, *armor)?,
        Encryption::Age { recipients, armor } => age_pkg::encrypt(reader, writer, recipients, *armor)?,
    }
    Ok(())
}

/// Write the zip archive of `inputs` into `w`, checking every source as it is read.
fn archive<W: Write>(inputs: &[InputFile], password: Option<&Secret>, w: W) -> Result<W, PackageError> {
    let mut sources = inputs.iter().map(VerifyingReader::open).collect::<Result<Vec<_>, _>>()?;
    let mut entries: Vec<ZipEntry<'_>> =
        inputs.iter().zip(sources.iter_mut()).map(|(f, r)| ZipEntry { name: &f.name, size: f.size, reader: r as &mut dyn Read }).collect();
    let w = zip_archive::write_zip(w, &mut entries, password)?;
    drop(entries);
    for s in sources {
        s.check()?;
    }
    Ok(w)
}

/// Zip on one thread, encrypt on this one, joined by a bounded pipe of large blocks.
fn archive_and_encrypt(inputs: &[InputFile], password: Option<&Secret>, enc: &Encryption, w: impl Write) -> Result<(), PackageError> {
    std::thread::scope(|s| {
        let (pw, pr) = pipe(BLOCK, 4);
        let producer = s.spawn(move || -> Result<(), PackageError> {
            let pw = archive(inputs, password, pw)?;
            pw.finish().map_err(|source| PackageError::Write { name: "the archive".into(), source })
        });
        let consumed = encrypt(enc, pr, w);
        let produced = producer.join().unwrap_or_else(|_| Err(PackageError::Internal("the archive thread panicked".into())));
        match (produced, consumed) {
            // The archive side stopped because encryption did: encryption's error is the cause.
            (Err(p), Err(c)) if pipe_closed(&p) => Err(c),
            (Err(p), _) => Err(p),
            (Ok(()), c) => c,
        }
    })
}

fn pipe_closed(e: &PackageError) -> bool {
    match e {
        PackageError::Zip(ZipError::Io { source, .. }) | PackageError::Write { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
        _ => false,
    }
}

/// Names are plain file names, each once (ignoring case).
fn check_names(names: &[&str]) -> Result<(), PackageError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if let Some(why) = zip_archive::name_problem(n) {
            return Err(PackageError::Name { name: n.chars().take(200).collect(), why: why.into() });
        }
        if !seen.insert(n.to_lowercase()) {
            return Err(PackageError::Name { name: n.to_string(), why: "each file name once (ignoring case)".into() });
        }
    }
    Ok(())
}

/// `out_dir/name`, recorded for clean-up; never one of the inputs.
fn out_path(out_dir: &Path, name: &str, inputs: &[InputFile], made: &mut Vec<PathBuf>) -> Result<PathBuf, PackageError> {
    let path = out_dir.join(name);
    if inputs.iter().any(|f| f.path == path) {
        return Err(PackageError::Name { name: name.into(), why: "the output would overwrite an input: use another out_dir".into() });
    }
    made.push(path.clone());
    Ok(path)
}

fn create(path: &Path, name: &str) -> Result<File, PackageError> {
    File::create(path).map_err(|source| PackageError::Write { name: name.into(), source })
}

/// Reads an input file and hashes what it reads, to check it against what encode recorded.
struct VerifyingReader<'a> {
    input: &'a InputFile,
    file: File,
    hash: HashingWriter<io::Sink>,
}

impl<'a> VerifyingReader<'a> {
    fn open(input: &'a InputFile) -> Result<Self, PackageError> {
        let file = File::open(&input.path).map_err(|source| PackageError::Read { name: input.name.clone(), source })?;
        Ok(Self { input, file, hash: HashingWriter::new(io::sink()) })
    }

    /// The bytes read were the bytes recorded.
    fn check(self) -> Result<(), PackageError> {
        let (_, actual_sha256, actual_size) =
            self.hash.finish().map_err(|source| PackageError::Read { name: self.input.name.clone(), source })?;
        if actual_size != self.input.size || !actual_sha256.eq_ignore_ascii_case(&self.input.sha256) {
            return Err(PackageError::SourceChanged {
                name: self.input.name.clone(),
                expected_size: self.input.size,
                expected_sha256: self.input.sha256.clone(),
                actual_size,
                actual_sha256,
            });
        }
        Ok(())
    }
}

impl Read for VerifyingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}
