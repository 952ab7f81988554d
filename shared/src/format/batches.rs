//! Whole-file formats written from the export's batches in order (Excel, PDF/A, Arrow IPC,
//! grouped XML). Each chunk's part is an Arrow IPC stream of the output columns, written in
//! parallel like the row formats' parts; the encode stage reads the parts in chunk order and
//! hands their batches to one [`FileEncoder`].

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The data or the options do not fit the format (a cell too long, a value out of range):
    /// not worth retrying.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A bug, or a library's failure that retrying will not mend.
    #[error("{0}")]
    Internal(String),
}

/// What a whole-file encoder knows of the export besides its rows: the title and generation
/// time of a report, a workbook's metadata sheet.
#[derive(Debug, Clone)]
pub struct FileContext {
    /// The export's name.
    pub title: String,
    pub export_id: String,
    /// When this file is written (the run's encode stage).
    pub generated_at: DateTime<Utc>,
    /// The row filters and time range, one line each, for people (`amount >= 1000`).
    pub filters: Vec<String>,
    /// The export's spec as the API shows it.
    pub spec: serde_json::Value,
    /// Scratch space for temporary files.
    pub work_dir: PathBuf,
}

/// Writes one whole file from batches of the export's output columns.
pub trait FileEncoder: Send {
    /// Append the rows of `batch`, in export order.
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), FormatError>;
    /// Finish the file (at the path it was made with).
    fn finish(self: Box<Self>) -> Result<(), FormatError>;
}

/// A chunk's part: its batches as an Arrow IPC stream.
pub struct PartWriter {
    writer: StreamWriter<BufWriter<File>>,
}

impl PartWriter {
    pub fn create(path: &Path, schema: &SchemaRef) -> Result<Self, ArrowError> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        Ok(Self { writer: StreamWriter::try_new(file, schema)? })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.writer.write(batch)
    }

    /// Finish the stream; returns the part's size.
    pub fn finish(mut self) -> Result<u64, ArrowError> {
        self.writer.finish()?;
        let file = self.writer.into_inner()?.into_inner().map_err(|e| ArrowError::IoError(e.to_string(), e.into_error()))?;
        Ok(file.metadata()?.len())
    }
}

/// The batches of a part written by [`PartWriter`]; an empty file has none.
pub fn read_part(path: &Path) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>, ArrowError> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Box::new(std::iter::empty()));
    }
    Ok(Box::new(StreamReader::try_new(BufReader::with_capacity(1 << 20, file), None)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_part_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap();
        let path = dir.path().join("p");
        let mut w = PartWriter::create(&path, &schema).unwrap();
        w.write(&batch).unwrap();
        w.write(&batch.slice(1, 1)).unwrap();
        assert!(w.finish().unwrap() > 0);
        let back: Vec<RecordBatch> = read_part(&path).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], batch);
        assert_eq!(back[1], batch.slice(1, 1));
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        assert_eq!(read_part(&dir.path().join("empty")).unwrap().count(), 0);
    }
}
