//! Sources: where rows come from. A source is planned into chunks (bounded units of work that
//! can run in parallel and be retried alone), and each chunk is read as Arrow record batches.

pub mod dataset;
pub mod inline;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::blob::{BlobError, BlobStore, LocalFile};
use crate::model::ValidationErrors;
use crate::model::spec::{DatasetFormat, ExportSpec, SourceKind};

/// Rows a read batch holds.
pub const BATCH_ROWS: usize = 16_384;

/// A file a chunk reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileRef {
    Blob { key: String },
    Local { path: PathBuf },
}

/// One chunk of a source, as written in the chunk manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChunkSource {
    /// Rows `start..end` of an inline source.
    Inline { start: usize, end: usize },
    /// Some row groups of one Parquet file.
    Parquet { file: FileRef, row_groups: Vec<usize>, rows: u64 },
    /// One whole CSV file (quoted line breaks make byte ranges unsafe to split).
    Csv { file: FileRef },
    /// One whole JSONL file.
    Jsonl { file: FileRef },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request names something that cannot be read: the user must fix it.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The data itself is unreadable (corrupt file, schema drift between files).
    #[error("unreadable source data: {0}")]
    Data(String),
    /// Storage failed; trying again may work.
    #[error("source storage error: {0}")]
    Storage(String),
}

impl From<ArrowError> for SourceError {
    fn from(e: ArrowError) -> Self {
        SourceError::Data(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for SourceError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        SourceError::Data(e.to_string())
    }
}

impl From<BlobError> for SourceError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound(k) => SourceError::Data(format!("a dataset file disappeared: {k}")),
            other => SourceError::Storage(other.to_string()),
        }
    }
}

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        SourceError::Storage(e.to_string())
    }
}

/// What sources need from the environment.
#[derive(Clone, Copy)]
pub struct SourceContext<'a> {
    pub blobs: &'a dyn BlobStore,
    /// Folders under which `local_path` datasets may be read.
    pub dataset_roots: &'a [PathBuf],
    pub tenant: &'a str,
}

/// The source's full schema (before column selection).
pub async fn schema(ctx: SourceContext<'_>, spec: &ExportSpec) -> Result<SchemaRef, SourceError> {
    match spec.source.kind {
        SourceKind::Inline => Ok(inline::schema(&spec.source).map_err(SourceError::Invalid)?),
        SourceKind::Dataset => dataset::schema(ctx, &spec.source).await,
    }
}

/// Split the source into chunks of about `chunk_rows` rows.
pub async fn plan(ctx: SourceContext<'_>, spec: &ExportSpec, chunk_rows: u64) -> Result<Vec<ChunkSource>, SourceError> {
    match spec.source.kind {
        SourceKind::Inline => {
            let n = spec.source.rows.as_ref().map_or(0, Vec::len);
            Ok(vec![ChunkSource::Inline { start: 0, end: n }])
        }
        SourceKind::Dataset => dataset::plan(ctx, &spec.source, chunk_rows).await,
    }
}

/// The file a chunk reads, made local (a temporary copy when the store is remote).
pub async fn localize(blobs: &dyn BlobStore, chunk: &ChunkSource) -> Result<Option<LocalFile>, SourceError> {
    let file = match chunk {
        ChunkSource::Inline { .. } => return Ok(None),
        ChunkSource::Parquet { file, .. } | ChunkSource::Csv { file } | ChunkSource::Jsonl { file } => file,
    };
    Ok(Some(match file {
        FileRef::Blob { key } => blobs.local_file(key).await?,
        FileRef::Local { path } => LocalFile::borrowed(path.clone()),
    }))
}

/// A stream of record batches.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Read a chunk (blocking), only the named columns. `schema` is the source schema; with
/// `views` (a Parquet chunk only), its [`string_views`]: text is read as views.
pub fn read_chunk(
    spec: &ExportSpec,
    schema: &SchemaRef,
    chunk: &ChunkSource,
    local: Option<&LocalFile>,
    columns: &[String],
    views: bool,
) -> Result<Batches, SourceError> {
    let path = || local.map(|l| l.path.clone()).ok_or_else(|| SourceError::Data("chunk file not localized".into()));
    match chunk {
        ChunkSource::Inline { start, end } => inline::read(&spec.source, Arc::clone(schema), *start, *end, columns),
        ChunkSource::Parquet { row_groups, .. } => dataset::read_parquet(&path()?, row_groups, columns, views),
        ChunkSource::Csv { .. } => dataset::read_text(DatasetFormat::Csv, &path()?, schema, columns),
        ChunkSource::Jsonl { .. } => dataset::read_text(DatasetFormat::Jsonl, &path()?, schema, columns),
    }
}

/// `schema` with its top-level text columns (`Utf8`) as string views (`Utf8View`). Read as
/// views, Parquet text is not copied out of the pages and dictionaries it was decoded into:
/// a value of up to 12 bytes is held in its view, a longer one is pointed at where it lies.
/// For a step that takes views as it takes text (filters, and the Parquet writer, which
/// stores them as text: `format::parquet::stored_schema`).
pub fn string_views(schema: &Schema) -> Schema {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => Arc::clone(f),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}
