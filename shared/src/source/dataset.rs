//! The dataset source: Parquet, CSV or JSONL files, one file or a folder of them, in the
//! tenant's dataset area of the blob store or (where the host allows it) on a local path.
//! Parquet is split by row groups; CSV and JSONL files are one chunk each.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

use super::{BATCH_ROWS, Batches, ChunkSource, FileRef, SourceContext, SourceError};
use crate::blob::keys;
use crate::model::ValidationErrors;
use crate::model::spec::{DatasetFormat, SourceSpec};

/// Rows read to infer a CSV or JSONL schema.
const INFER_ROWS: usize = 1000;

fn invalid(pointer: &str, value: &str, allowed: impl Into<String>) -> SourceError {
    SourceError::Invalid(ValidationErrors::single(pointer, Value::String(value.to_string()), allowed))
}

/// The files of a dataset, in name order, and their one format.
pub async fn files(ctx: SourceContext<'_>, src: &SourceSpec) -> Result<(DatasetFormat, Vec<FileRef>), SourceError> {
    let (pointer, given, mut found): (&str, &str, Vec<(String, FileRef)>) = if let Some(path) = &src.path {
        let key = keys::dataset(ctx.tenant, path.trim_end_matches('/'));
        let found = if ctx.blobs.head(&key).await?.is_some() {
            vec![(key.clone(), FileRef::Blob { key })]
        } else {
            let prefix = format!("{key}/");
            ctx.blobs.list(&prefix).await?.into_iter().map(|m| (m.key.clone(), FileRef::Blob { key: m.key })).collect()
        };
        ("/source/path", path.as_str(), found)
    } else if let Some(local) = &src.local_path {
        let found = local_files(ctx.dataset_roots, local)?;
        ("/source/local_path", local.as_str(), found)
    } else {
        return Err(invalid("/source/path", "", "a dataset path"));
    };
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let single = found.len() == 1;
    let mut format = src.file_format;
    let mut out = Vec::new();
    for (name, file) in found {
        let base = name.rsplit('/').next().unwrap_or(&name);
        if base.starts_with('.') || base.starts_with('_') {
            continue; // hidden and marker files (`_SUCCESS`, `.crc`)
        }
        let f = match (src.file_format, DatasetFormat::from_name(&name)) {
            (Some(f), _) => f,
            (None, Some(f)) => f,
            (None, None) if single => {
                return Err(invalid("/source/file_format", given, "the file's format (parquet, csv or jsonl): its name does not say"));
            }
            (None, None) => continue,
        };
        match format {
            None => format = Some(f),
            Some(prev) if prev != f => {
                return Err(invalid(pointer, given, "files of one format; this folder mixes them (set file_format or split the folder)"));
            }
            _ => {}
        }
        out.push(file);
    }
    match (format, out.is_empty()) {
        (Some(f), false) => Ok((f, out)),
        _ => Err(invalid(pointer, given, "an existing dataset file, or a folder with Parquet, CSV or JSONL files")),
    }
}

fn local_files(roots: &[PathBuf], local: &str) -> Result<Vec<(String, FileRef)>, SourceError> {
    let not_allowed = || invalid("/source/local_path", local, "a file or folder under one of the host's dataset roots (--dataset-root)");
    let Ok(path) = std::fs::canonicalize(local) else {
        return Err(if roots.is_empty() { not_allowed() } else { invalid("/source/local_path", local, "an existing file or folder") });
    };
    let roots: Vec<PathBuf> = roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).collect();
    let allowed = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    if !allowed(&path) {
        return Err(not_allowed());
    }
    let mut out = Vec::new();
    walk(&path, &mut out)?;
    // A link inside a root must not lead out of it: every file is checked where it really is.
    let mut files = Vec::new();
    for p in out {
        match std::fs::canonicalize(&p) {
            Ok(real) if allowed(&real) => files.push((p.to_string_lossy().into_owned(), FileRef::Local { path: real })),
            _ => {
                return Err(invalid(
                    "/source/local_path",
                    local,
                    format!("files under the dataset roots only; {} leads elsewhere", p.display()),
                ));
            }
        }
    }
    Ok(files)
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

async fn local(ctx: SourceContext<'_>, file: &FileRef) -> Result<crate::blob::LocalFile, SourceError> {
    Ok(match file {
        FileRef::Blob { key } => ctx.blobs.local_file(key).await?,
        FileRef::Local { path } => crate::blob::LocalFile::borrowed(path.clone()),
    })
}

/// The dataset's schema, from its first file.
pub async fn schema(ctx: SourceContext<'_>, src: &SourceSpec) -> Result<SchemaRef, SourceError> {
    let (format, files) = files(ctx, src).await?;
    let first = local(ctx, &files[0]).await?;
    let path = first.path.clone();
    tokio::task::spawn_blocking(move || file_schema(format, &path)).await.map_err(|e| SourceError::Storage(e.to_string()))?
}

fn file_schema(format: DatasetFormat, path: &Path) -> Result<SchemaRef, SourceError> {
    match format {
        DatasetFormat::Parquet => {
            let meta = ArrowReaderMetadata::load(&File::open(path)?, ArrowReaderOptions::new())?;
            Ok(meta.schema().clone())
        }
        DatasetFormat::Csv => {
            let (schema, _) = arrow::csv::reader::Format::default().with_header(true).infer_schema(File::open(path)?, Some(INFER_ROWS))?;
            Ok(Arc::new(schema))
        }
        DatasetFormat::Jsonl => {
            let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(BufReader::new(File::open(path)?), Some(INFER_ROWS))?;
            Ok(Arc::new(in_first_record_order(schema, path)?))
        }
    }
}

/// Inference sorts the keys; a person expects the order of the file. Keys of the first record
/// come first, in its order, then any others as inference found them.
fn in_first_record_order(schema: Schema, path: &Path) -> Result<Schema, SourceError> {
    use std::io::BufRead;
    let mut first = String::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            first = line;
            break;
        }
    }
    let order = serde_json::from_str::<KeysInOrder>(&first).map(|k| k.0).unwrap_or_default();
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.sort_by_key(|f| order.iter().position(|k| k == f.name()).unwrap_or(usize::MAX));
    Ok(Schema::new(fields))
}

/// The keys of a JSON object, in the order they are written.
struct KeysInOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeysInOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KeysInOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(KeysInOrder(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// Chunks of about `chunk_rows` rows: consecutive row groups of one Parquet file, or one text
/// file each. Every Parquet file must have the first file's schema.
pub async fn plan(ctx: SourceContext<'_>, src: &SourceSpec, chunk_rows: u64) -> Result<Vec<ChunkSource>, SourceError> {
    let (format, files) = files(ctx, src).await?;
    let mut chunks = Vec::new();
    let mut first_schema: Option<SchemaRef> = None;
    for file in files {
        match format {
            DatasetFormat::Csv => chunks.push(ChunkSource::Csv { file }),
            DatasetFormat::Jsonl => chunks.push(ChunkSource::Jsonl { file }),
            DatasetFormat::Parquet => {
                let lf = local(ctx, &file).await?;
                let path = lf.path.clone();
                let meta = tokio::task::spawn_blocking(move || -> Result<ArrowReaderMetadata, SourceError> {
                    Ok(ArrowReaderMetadata::load(&File::open(&path)?, ArrowReaderOptions::new())?)
                })
                .await
                .map_err(|e| SourceError::Storage(e.to_string()))??;
                match &first_schema {
                    None => first_schema = Some(meta.schema().clone()),
                    Some(s) if !same_fields(s, meta.schema()) => {
                        return Err(SourceError::Data(format!("{file:?} has another schema than the dataset's first file")));
                    }
                    _ => {}
                }
                let mut groups = Vec::new();
                let mut rows = 0u64;
                for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
                    groups.push(i);
                    rows += rg.num_rows() as u64;
                    if rows >= chunk_rows {
                        chunks.push(ChunkSource::Parquet { file: file.clone(), row_groups: std::mem::take(&mut groups), rows });
                        rows = 0;
                    }
                }
                if !groups.is_empty() {
                    chunks.push(ChunkSource::Parquet { file, row_groups: groups, rows });
                }
            }
        }
    }
    Ok(chunks)
}

fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn indices(schema: &Schema, columns: &[String]) -> Result<Vec<usize>, SourceError> {
    columns
        .iter()
        .map(|c| schema.index_of(c).map_err(|_| SourceError::Data(format!("column `{c}` is missing from a dataset file"))))
        .collect()
}

/// The batches of `row_groups` of a Parquet file, only `columns`; with `views`, its text
/// columns as string views ([`super::string_views`]).
pub(super) fn read_parquet(path: &Path, row_groups: &[usize], columns: &[String], views: bool) -> Result<Batches, SourceError> {
    let file = File::open(path)?;
    let mut meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())?;
    if views {
        let schema = Arc::new(super::string_views(meta.schema()));
        meta = ArrowReaderMetadata::try_new(Arc::clone(meta.metadata()), ArrowReaderOptions::new().with_schema(schema))?;
    }
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
    let idx = indices(builder.schema(), columns)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    let reader = builder.with_projection(mask).with_row_groups(row_groups.to_vec()).with_batch_size(BATCH_ROWS).build()?;
    Ok(Box::new(reader))
}

pub(super) fn read_text(format: DatasetFormat, path: &Path, schema: &SchemaRef, columns: &[String]) -> Result<Batches, SourceError> {
    let idx = indices(schema, columns)?;
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(0))?;
    match format {
        DatasetFormat::Csv => {
            let reader = arrow::csv::ReaderBuilder::new(Arc::clone(schema))
                .with_header(true)
                .with_batch_size(BATCH_ROWS)
                .with_projection(idx)
                .build(file)?;
            Ok(Box::new(reader))
        }
        _ => {
            let projected = Arc::new(schema.project(&idx)?);
            let reader = arrow::json::ReaderBuilder::new(projected).with_batch_size(BATCH_ROWS).build(BufReader::new(file))?;
            Ok(Box::new(reader))
        }
    }
}
