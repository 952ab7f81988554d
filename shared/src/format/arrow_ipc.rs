//! Arrow IPC file format (Feather v2): the export's Arrow schema as it is, then its record
//! batches, then a footer that indexes them (random access for readers such as
//! `pyarrow.feather`, `pyarrow.ipc.open_file`, DuckDB, Polars). Written from the export's
//! batches in order ([`super::Layout::Batches`]); small batches are coalesced into batches of
//! [`BATCH_ROWS`] rows, so the buffers compress well and readers get few, large batches.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::CompressionType;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use arrow::record_batch::RecordBatch;

use super::{FileEncoder, FormatError};
use crate::model::spec::{Codec, FormatSpecObject};

/// Rows per record batch in the file (the last one may be shorter).
pub const BATCH_ROWS: usize = 65_536;

/// Writes one Arrow IPC file.
pub struct IpcFileEncoder {
    writer: FileWriter<BufWriter<File>>,
    coalescer: BatchCoalescer,
    schema: SchemaRef,
}

/// The IPC codec of the buffers for the format's `compression` option.
fn compression(o: &FormatSpecObject) -> Result<Option<CompressionType>, FormatError> {
    match Codec::of(o) {
        Codec::Lz4 => Ok(Some(CompressionType::LZ4_FRAME)),
        Codec::Zstd => Ok(Some(CompressionType::ZSTD)),
        Codec::None => Ok(None),
        other => Err(FormatError::Invalid(format!("Arrow IPC does not compress with {}", other.as_str()))),
    }
}

impl IpcFileEncoder {
    pub fn create(out: &Path, schema: &SchemaRef, o: &FormatSpecObject) -> Result<Self, FormatError> {
        let options = IpcWriteOptions::default().try_with_compression(compression(o)?)?;
        let file = BufWriter::with_capacity(1 << 20, File::create(out)?);
        let writer = FileWriter::try_new_with_options(file, schema, options)?;
        Ok(Self { writer, coalescer: BatchCoalescer::new(schema.clone(), BATCH_ROWS), schema: schema.clone() })
    }

    fn drain(&mut self) -> Result<(), FormatError> {
        while let Some(batch) = self.coalescer.next_completed_batch() {
            self.writer.write(&batch)?;
        }
        Ok(())
    }
}

impl FileEncoder for IpcFileEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        // The file's schema is the export's: checked here (types, and nulls only where the
        // schema allows them) so a batch that does not fit is an error, not a corrupt file.
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        self.coalescer.push_batch(batch)?;
        self.drain()
    }

    fn finish(mut self: Box<Self>) -> Result<(), FormatError> {
        self.coalescer.finish_buffered_batch()?;
        self.drain()?;
        self.writer.finish()?;
        let file = self.writer.into_inner()?;
        file.into_inner().map_err(|e| FormatError::Io(e.into_error()))?.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::reader::FileReader;

    use super::*;
    use crate::model::{FormatKind, FormatSpec};

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<Option<String>> = ids.iter().map(|i| (i % 3 != 0).then(|| format!("n{i}"))).collect();
        let amounts: Vec<i128> = ids.iter().map(|i| *i as i128 * 101).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Decimal128Array::from(amounts).with_precision_and_scale(18, 2).unwrap()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn batches_read_back_coalesced_with_every_codec() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        for codec in Codec::allowed_for(FormatKind::Arrow) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.arrow");
            let mut spec = FormatSpec::of(FormatKind::Arrow);
            spec.0.compression = Some(*codec);
            let mut enc: Box<dyn FileEncoder> = Box::new(IpcFileEncoder::create(&path, &schema, &spec.0).unwrap());
            let mut from = 0;
            for _ in 0..20 {
                enc.write_batch(&batch(&schema, from, 5_000)).unwrap();
                from += 5_000;
            }
            enc.finish().unwrap();
            let reader = FileReader::try_new(File::open(&path).unwrap(), None).unwrap();
            assert_eq!(reader.schema(), schema);
            let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
            assert_eq!(back.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [65_536, 100_000 - 65_536]);
            let all = arrow::compute::concat_batches(&schema, &back).unwrap();
            assert_eq!(all, batch(&schema, 0, 100_000), "{codec:?}");
        }
    }

    #[test]
    fn a_batch_that_does_not_fit_the_schema_is_refused() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let dir = tempfile::tempdir().unwrap();
        let mut enc = IpcFileEncoder::create(&dir.path().join("f"), &schema, &FormatSpec::of(FormatKind::Arrow).0).unwrap();
        let with_null = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        assert!(enc.write_batch(&with_null).is_err());
    }
}
