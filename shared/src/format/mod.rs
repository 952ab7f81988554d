//! Output formats. Row-streaming formats (CSV, TSV, JSON, JSONL, YAML) implement [`RowEncoder`]: chunks
//! are encoded to parts in parallel and the parts are concatenated between a header and a
//! footer. Whole-file formats have a structure of their own: Parquet parts are merged row
//! group by row group (parquet.rs); the others are written from the export's batches in order
//! by a [`FileEncoder`] (batches.rs).

pub mod batches;
pub mod cells;
pub mod csv;
pub mod json;
pub mod parquet;
pub mod tsv;
pub mod xlsx;
pub mod yaml;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::model::{FormatKind, FormatSpec};

pub use batches::{FileContext, FileEncoder, FormatError};

/// How a format's chunks become one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Encoded rows per part, concatenated between a header and a footer ([`RowEncoder`]).
    Rows,
    /// A Parquet file per part, merged row group by row group.
    Parquet,
    /// Arrow IPC per part, read back in order by one [`FileEncoder`].
    Batches,
}

pub fn layout(kind: FormatKind) -> Layout {
    match kind {
        FormatKind::Csv | FormatKind::Tsv | FormatKind::Json | FormatKind::Jsonl | FormatKind::Yaml => Layout::Rows,
        FormatKind::Parquet => Layout::Parquet,
        FormatKind::Xlsx => Layout::Batches,
    }
}

/// The encoder of a whole-file format written from batches ([`Layout::Batches`]), writing to
/// `out`.
pub fn file_encoder(
    spec: &FormatSpec,
    schema: &arrow::datatypes::SchemaRef,
    ctx: &FileContext,
    out: &std::path::Path,
) -> Result<Box<dyn FileEncoder>, FormatError> {
    match spec.kind() {
        FormatKind::Xlsx => Ok(Box::new(xlsx::XlsxEncoder::new(xlsx::XlsxOptions::from_spec(&spec.0), schema, ctx, out)?)),
        other => Err(FormatError::Internal(format!("`{}` is not written from batches", other.as_str()))),
    }
}

/// Encodes rows of one export; one instance per chunk (instances are cheap).
pub trait RowEncoder: Send {
    /// Bytes at the very start of the file (a CSV header line, a JSON `[`).
    fn header(&self, columns: &[String]) -> Vec<u8>;
    /// Append the rows of `batch`.
    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError>;
    /// Bytes at the very end of the file, which holds `rows` rows (none by default).
    fn footer(&self, _rows: u64) -> Vec<u8> {
        Vec::new()
    }
    /// Bytes to drop from the start of the first row of the file: every row of a JSON array
    /// is written with its leading `,` so parts can be made independently; the file's first
    /// row must lose it.
    fn first_row_skip(&self) -> usize {
        0
    }
}

/// The encoder of a row format ([`Layout::Rows`]); `None` for a whole-file format.
pub fn row_encoder(spec: &FormatSpec) -> Option<Box<dyn RowEncoder>> {
    let o = &spec.0;
    Some(match spec.kind() {
        FormatKind::Csv => Box::new(csv::CsvEncoder::new(csv::CsvOptions::from_spec(o))),
        FormatKind::Tsv => Box::new(tsv::TsvEncoder::new(tsv::TsvOptions::from_spec(o))),
        FormatKind::Yaml => Box::new(yaml::YamlEncoder::new(o.decimals_as.unwrap_or_default())),
        FormatKind::Json => Box::new(json::JsonEncoder::new(json::JsonLayout::Array, o.decimals_as.unwrap_or_default())),
        FormatKind::Jsonl => Box::new(json::JsonEncoder::new(json::JsonLayout::Lines, o.decimals_as.unwrap_or_default())),
        FormatKind::Parquet | FormatKind::Xlsx => return None,
    })
}
