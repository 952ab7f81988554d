//! Parquet, a whole-file format. Each chunk is written as a Parquet file of its own (in
//! parallel, like the row formats' parts); the encode stage then merges the parts' row groups
//! into one file by copying their column chunks as they are: no decoding, no re-encoding. Arrow
//! types are kept (decimal128, timestamps with their zone, date32, strings with dictionary
//! pages) through the Arrow schema stored in the file.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::bloom_filter::Sbbf;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::model::spec::{Codec, FormatSpecObject};

pub const DEFAULT_ROW_GROUP_ROWS: usize = 131_072;

/// Writer properties from the format options.
pub fn properties(o: &FormatSpecObject) -> WriterProperties {
    let codec = match Codec::of(o) {
        Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(3).expect("3 is a valid zstd level")),
        Codec::Snappy => Compression::SNAPPY,
        Codec::Gzip => Compression::GZIP(Default::default()),
        // Refused by `ExportSpec::validate`.
        Codec::Deflate | Codec::Lz4 | Codec::None => Compression::UNCOMPRESSED,
    };
    let rows = o.row_group_size.map_or(DEFAULT_ROW_GROUP_ROWS, |n| n as usize);
    WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_row_count(Some(rows))
        .set_created_by(format!("egress {}", env!("CARGO_PKG_VERSION")))
        // A column of mostly distinct values (ids, timestamps, amounts) gives up dictionary
        // encoding after 128 KB instead of 1 MB: a third faster to write and a fifth smaller
        // (plain pages compress better than a spilled dictionary); low-cardinality columns
        // (currencies, countries) keep their dictionaries.
        .set_dictionary_page_size_limit(128 * 1024)
        .build()
}

/// Write batches as one Parquet file (a chunk's part, or a whole sorted export).
pub struct PartWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    rows: u64,
}

impl<W: Write + Send> PartWriter<W> {
    pub fn new(out: W, schema: SchemaRef, o: &FormatSpecObject) -> Result<Self> {
        Ok(Self { writer: ArrowWriter::try_new(out, schema, Some(properties(o)))?, rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch)
    }

    /// Bytes written so far (row groups flushed, and the one in progress as encoded).
    pub fn bytes_written(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Finish the file; returns the writer and the rows written.
    pub fn finish(self) -> Result<(W, u64)> {
        let rows = self.rows;
        Ok((self.writer.into_inner()?, rows))
    }
}

/// Merges Parquet files of one schema into one, row group by row group, copying the column
/// chunks (with their bloom filters and page indexes) without decoding them. Parts are
/// appended one at a time, as they become ready.
pub struct Merger<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    schema: parquet::schema::types::TypePtr,
    rows: u64,
}

impl<W: Write + Send> Merger<W> {
    /// Start the file with the schema (and Arrow schema metadata) of `first`, which is not
    /// appended yet.
    pub fn new(out: W, first: &Path) -> Result<Self> {
        let meta = ParquetMetaDataReader::new().parse_and_finish(&File::open(first)?)?;
        let schema = meta.file_metadata().schema_descr().root_schema_ptr();
        let props = Arc::new(WriterProperties::builder().set_created_by(format!("egress {}", env!("CARGO_PKG_VERSION"))).build());
        let mut writer = SerializedFileWriter::new(out, schema.clone(), props)?;
        // The Arrow schema (zones, decimal and dictionary types) travels in the key-value metadata.
        for entry in meta.file_metadata().key_value_metadata().cloned().unwrap_or_default() {
            writer.append_key_value_metadata(entry);
        }
        Ok(Self { writer, schema, rows: 0 })
    }

    /// Append every row group of `part`.
    pub fn append(&mut self, part: &Path) -> Result<()> {
        let input = File::open(part)?;
        let meta = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(&input)?;
        if meta.file_metadata().schema_descr().root_schema_ptr() != self.schema {
            return Err(ParquetError::General(format!("{} has another schema than the first part", part.display())));
        }
        let page_index = meta.page_index();
        for (rg_idx, rg) in meta.row_groups().iter().enumerate() {
            let mut rg_out = self.writer.next_row_group()?;
            for (col_idx, column) in rg.columns().iter().enumerate() {
                let result = ColumnCloseResult {
                    bytes_written: column.compressed_size() as _,
                    rows_written: rg.num_rows() as _,
                    metadata: column.clone(),
                    bloom_filter: Sbbf::read_from_column_chunk(column, &input).ok().flatten(),
                    column_index: page_index.and_then(|pi| pi.column_index(rg_idx, col_idx)).cloned(),
                    offset_index: page_index.and_then(|pi| pi.offset_index(rg_idx, col_idx)).cloned(),
                };
                rg_out.append_column(&input, result)?;
            }
            rg_out.close()?;
            self.rows += rg.num_rows() as u64;
        }
        Ok(())
    }

    /// Write the footer; returns the writer and the rows merged.
    pub fn finish(self) -> Result<(W, u64)> {
        let rows = self.rows;
        Ok((self.writer.into_inner()?, rows))
    }
}

/// Rows in a Parquet file, from its footer.
pub fn row_count(path: &Path) -> Result<u64> {
    let meta = ParquetMetaDataReader::new().parse_and_finish(&File::open(path)?)?;
    Ok(meta.file_metadata().num_rows() as u64)
}
