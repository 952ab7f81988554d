//! Encrypt: package the encoded files for delivery, as the spec says. `compression: "zip"`
//! puts them in one archive (under an AES-256 password with `encryption: zip_aes`); OpenPGP or
//! age encrypts each file (or the archive) to the tenant's registered recipient keys; `manifest:
//! true` adds `manifest.json`. Every source file is re-hashed while it is read and every output
//! hashed while it is written. With none of these, the files pass through unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::mark;
use super::{ErrorName, StageContext, StageError, load_active};
use crate::blob::{LocalFile, keys};
use crate::model::packaging::EncryptionSpec;
use crate::model::recipient_key::RecipientKeyKind;
use crate::model::spec::Compression;
use crate::model::{Export, ResultFile, Step};
use crate::package::recipients::{self, ParsedKey};
use crate::package::{Encryption, InputFile, ManifestContext, PackageError, PackagingOptions, Secret, ZipOptions, manifest, package};
use crate::secrets;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptInput {
    pub tenant: String,
    pub export_id: String,
    pub files: Vec<ResultFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncryptOutput {
    pub files: Vec<ResultFile>,
}

pub async fn encrypt(ctx: &StageContext, input: EncryptInput) -> Result<EncryptOutput, StageError> {
    let EncryptInput { tenant, export_id, files } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    mark(ctx, &tenant, &export_id, Step::Encrypt, "packaging the files".into(), None).await?;
    let spec = &export.spec;
    if spec.encryption.is_none() && spec.compression != Compression::Zip && !spec.manifest {
        for f in &files {
            if ctx.blobs.head(&f.key).await?.is_none() {
                return Err(StageError::internal(format!("the file {} is missing", f.name)));
            }
        }
        return Ok(EncryptOutput { files });
    }
    let opts = options(ctx, &export).await?;
    // Local copies of the encoded files (the files themselves on the embedded default).
    let mut locals: Vec<LocalFile> = Vec::with_capacity(files.len());
    for f in &files {
        locals.push(ctx.blobs.local_file(&f.key).await?);
    }
    let inputs: Vec<InputFile> = files
        .iter()
        .zip(&locals)
        .map(|(f, l)| InputFile {
            name: f.name.clone(),
            path: l.path.clone(),
            rows: f.rows,
            size: f.size,
            sha256: f.sha256.clone(),
            content_type: f.content_type.clone(),
        })
        .collect();
    let out_dir = tempfile::Builder::new().prefix("package-").tempdir_in(&ctx.settings.work_dir)?;
    let dir = out_dir.path().to_path_buf();
    let packed = tokio::task::spawn_blocking(move || package(&inputs, &opts, &dir)).await?.map_err(package_error)?;
    let mut out = Vec::with_capacity(packed.len());
    for p in packed {
        // A file delivered as it was encoded keeps its place; anything made here is stored.
        if let Some(same) = files.iter().zip(&locals).find(|(_, l)| l.path == p.path).map(|(f, _)| f) {
            out.push(same.clone());
            continue;
        }
        let key = keys::packaged_file(&tenant, &export_id, &p.name);
        ctx.blobs.put_file(&key, &p.path).await?;
        out.push(ResultFile {
            name: p.name,
            size: p.size,
            rows: p.rows,
            sha256: p.sha256,
            content_type: p.content_type,
            key,
            source_sha256: p.source_sha256,
        });
    }
    drop(locals);
    Ok(EncryptOutput { files: out })
}

/// The packaging options of the export: keys and password loaded, the archive named.
async fn options(ctx: &StageContext, export: &Export) -> Result<PackagingOptions, StageError> {
    let spec = &export.spec;
    let mut opts = PackagingOptions::default();
    let mut password = None;
    match &spec.encryption {
        None => {}
        Some(EncryptionSpec::OpenPgp { recipients, armor }) => {
            let keys = load_keys(ctx, &export.tenant, RecipientKeyKind::OpenPgp, recipients).await?;
            let keys = keys.into_iter().filter_map(|k| if let ParsedKey::OpenPgp(k) = k { Some(*k) } else { None }).collect();
            opts.encryption = Some(Encryption::OpenPgp { keys, armor: *armor });
        }
        Some(EncryptionSpec::Age { recipients, armor }) => {
            let keys = load_keys(ctx, &export.tenant, RecipientKeyKind::Age, recipients).await?;
            let recipients = keys.into_iter().filter_map(|k| if let ParsedKey::Age(r) = k { Some(r) } else { None }).collect();
            opts.encryption = Some(Encryption::Age { recipients, armor: *armor });
        }
        Some(EncryptionSpec::ZipAes { password_credential }) => {
            password = Some(load_password(ctx, &export.tenant, password_credential).await?);
        }
    }
    if spec.compression == Compression::Zip {
        let archive_name = format!("{}.zip", super::encode::file_slug(export));
        opts.zip = Some(ZipOptions { archive_name, password });
    }
    if spec.manifest {
        let spec_json = serde_json::to_value(spec).map_err(|e| StageError::internal(e.to_string()))?;
        opts.manifest = Some(ManifestContext {
            export_id: export.id.clone(),
            tenant: export.tenant.clone(),
            spec_sha256: manifest::spec_sha256(&spec_json),
            source_lineage: source_lineage(&spec_json),
            compression: spec.compression,
        });
    }
    Ok(opts)
}

async fn load_keys(ctx: &StageContext, tenant: &str, kind: RecipientKeyKind, ids: &[String]) -> Result<Vec<ParsedKey>, StageError> {
    recipients::load(ctx.store.as_ref(), tenant, kind, ids).await.map_err(|errs| {
        let transient = errs.iter().all(|(_, e)| matches!(e, recipients::LoadError::Store(_)));
        let msg = errs.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ");
        if transient { StageError::transient(msg) } else { StageError::invalid(format!("encryption: {msg}")) }
    })
}

async fn load_password(ctx: &StageContext, tenant: &str, credential: &str) -> Result<Secret, StageError> {
    match secrets::load_credential(ctx.store.as_ref(), ctx.keys.as_ref(), tenant, credential).await {
        Ok(crate::model::credential::CredentialSecret::Password { password }) => Ok(Secret::new(password)),
        Ok(other) => {
            Err(StageError::invalid(format!("encryption: the credential `{credential}` is of type {}, not password", other.kind())))
        }
        Err(e @ (secrets::SecretError::NotFound(_) | secrets::SecretError::Corrupt(_))) => {
            Err(StageError::invalid(format!("encryption: {e}")))
        }
        Err(e) => Err(StageError::transient(format!("encryption: the password could not be opened: {e}"))),
    }
}

/// What the manifest says about the rows' origin: the spec's source (an inline source by its
/// row count, not its rows), filters and time range.
fn source_lineage(spec: &Value) -> Value {
    let mut source = spec.get("source").cloned().unwrap_or(Value::Null);
    if let Some(rows) = source.get("rows").and_then(Value::as_array).map(Vec::len) {
        source["rows"] = json!(rows);
    }
    json!({"source": source, "filters": spec.get("filters"), "time_range": spec.get("time_range")})
}

fn package_error(e: PackageError) -> StageError {
    if e.is_transient() {
        StageError::transient(format!("packaging: {e}"))
    } else {
        StageError::new(ErrorName::Invalid, format!("packaging: {e}"))
    }
}
