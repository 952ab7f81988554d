//! Output formats. Row-streaming formats (CSV, TSV, JSON, JSONL, YAML) implement [`RowEncoder`]: chunks
//! are encoded to parts in parallel and the parts are concatenated between a header and a
//! footer. Whole-file formats have a structure of their own: Parquet parts are merged row
//! group by row group (parquet.rs).

pub mod cells;
pub mod csv;
pub mod json;
pub mod parquet;
pub mod tsv;
pub mod yaml;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::model::{FormatKind, FormatSpec};

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

/// The encoder of a row format; `None` for a whole-file format (Parquet).
pub fn row_encoder(spec: &FormatSpec) -> Option<Box<dyn RowEncoder>> {
    let o = &spec.0;
    Some(match spec.kind() {
        FormatKind::Csv => Box::new(csv::CsvEncoder::new(csv::CsvOptions::from_spec(o))),
        FormatKind::Tsv => Box::new(tsv::TsvEncoder::new(tsv::TsvOptions::from_spec(o))),
        FormatKind::Yaml => Box::new(yaml::YamlEncoder::new(o.decimals_as.unwrap_or_default())),
        FormatKind::Json => Box::new(json::JsonEncoder::new(json::JsonLayout::Array, o.decimals_as.unwrap_or_default())),
        FormatKind::Jsonl => Box::new(json::JsonEncoder::new(json::JsonLayout::Lines, o.decimals_as.unwrap_or_default())),
        FormatKind::Parquet => return None,
    })
}
