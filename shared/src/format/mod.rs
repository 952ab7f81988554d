//! Output formats. Row-streaming formats (CSV, TSV, JSON, JSONL, YAML, Avro) implement [`RowEncoder`]: chunks
//! are encoded to parts in parallel and the parts are concatenated between a header and a
//! footer. Whole-file formats have a structure of their own: Parquet parts are merged row
//! group by row group (parquet.rs); the others are written from the export's batches in order
//! by a [`FileEncoder`] (batches.rs).

pub mod arrow_ipc;
pub mod avro;
pub mod batches;
pub mod cells;
pub mod csv;
pub mod json;
pub mod parquet;
pub mod pdf;
pub mod tsv;
pub mod xlsx;
pub mod xml;
pub mod yaml;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::model::spec::FormatSpecObject;
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

pub fn layout(o: &FormatSpecObject) -> Layout {
    match o.kind {
        FormatKind::Csv | FormatKind::Tsv | FormatKind::Json | FormatKind::Jsonl | FormatKind::Yaml | FormatKind::Avro => Layout::Rows,
        FormatKind::Parquet => Layout::Parquet,
        // Mapped XML is written in schema order, with groups and totals: from batches.
        FormatKind::Xml if o.xml_mapping.is_some() => Layout::Batches,
        FormatKind::Xml => Layout::Rows,
        FormatKind::Pdf | FormatKind::Arrow => Layout::Batches,
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
        FormatKind::Pdf => Ok(Box::new(pdf::PdfEncoder::new(pdf::PdfOptions::from_spec(&spec.0, ctx), schema, ctx, out)?)),
        FormatKind::Arrow => Ok(Box::new(arrow_ipc::IpcFileEncoder::create(out, schema, &spec.0)?)),
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
    /// Bytes that end a part: rows the encoder held back to write them together (an Avro
    /// block). Called once after the part's last batch (none by default).
    fn finish_part(&mut self, _out: &mut Vec<u8>) -> Result<(), ArrowError> {
        Ok(())
    }
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

/// The encoder of a row format ([`Layout::Rows`]) for rows of `schema` (the export's output
/// columns); `None` for a whole-file format.
pub fn row_encoder(spec: &FormatSpec, schema: &arrow::datatypes::SchemaRef) -> Option<Box<dyn RowEncoder>> {
    let o = &spec.0;
    Some(match spec.kind() {
        FormatKind::Csv => Box::new(csv::CsvEncoder::new(csv::CsvOptions::from_spec(o))),
        FormatKind::Tsv => Box::new(tsv::TsvEncoder::new(tsv::TsvOptions::from_spec(o))),
        FormatKind::Yaml => Box::new(yaml::YamlEncoder::new(o.decimals_as.unwrap_or_default())),
        FormatKind::Json => Box::new(json::JsonEncoder::new(json::JsonLayout::Array, o.decimals_as.unwrap_or_default())),
        FormatKind::Jsonl => Box::new(json::JsonEncoder::new(json::JsonLayout::Lines, o.decimals_as.unwrap_or_default())),
        FormatKind::Xml if o.xml_mapping.is_none() => Box::new(xml::generic::GenericXml::new(o)),
        FormatKind::Avro => Box::new(avro::AvroEncoder::new(schema, o)),
        FormatKind::Parquet | FormatKind::Xml | FormatKind::Pdf | FormatKind::Arrow | FormatKind::Xlsx => return None,
    })
}
