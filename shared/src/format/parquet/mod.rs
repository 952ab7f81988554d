//! Parquet, a whole-file format. Each chunk is written as a Parquet file of its own (in
//! parallel, like the row formats' parts); the encode stage then merges the parts' row groups
//! into one file by copying their column chunks as they are: no decoding, no re-encoding. Arrow
//! types are kept (decimal128, timestamps with their zone, date32, strings with dictionary
//! pages) through the Arrow schema stored in the file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::bloom_filter::Sbbf;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::ChunkReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::model::spec::{Codec, FormatSpecObject};

mod delta;
mod footer;
mod statistics;
use footer::{FooterWriter, Hold};
use statistics::StringStatistics;

pub const DEFAULT_ROW_GROUP_ROWS: usize = 131_072;
/// Parts up to this size are merged from memory.
const IN_MEMORY_PART_BYTES: u64 = 64 << 20;

/// Writer properties from the format options, for a file of `schema`. `sample`, the first rows
/// to be written, chooses the columns written without a dictionary (see
/// [`dictionary_would_spill`]), and among them the integer columns written delta-encoded (see
/// [`delta`]).
pub fn properties(o: &FormatSpecObject, schema: &Schema, sample: Option<&RecordBatch>) -> WriterProperties {
    let codec = match Codec::of(o) {
        Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(3).expect("3 is a valid zstd level")),
        Codec::Snappy => Compression::SNAPPY,
        Codec::Gzip => Compression::GZIP(Default::default()),
        // Refused by `ExportSpec::validate`.
        Codec::Deflate | Codec::Lz4 | Codec::None => Compression::UNCOMPRESSED,
    };
    let rows = o.row_group_size.map_or(DEFAULT_ROW_GROUP_ROWS, |n| n as usize);
    let mut props = WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_row_count(Some(rows))
        .set_created_by(format!("egress {}", env!("CARGO_PKG_VERSION")))
        // A column of mostly distinct values that the sample did not catch gives up dictionary
        // encoding after 128 KB instead of 1 MB: plain pages compress better than a spilled
        // dictionary; low-cardinality columns (currencies, countries) keep their dictionaries.
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        // Pages of 32 KB rather than 1 MB: zstd sizes its tables to its input, and small tables
        // stay in the cache. Measured on the benchmark dataset: 64 KB took a tenth less time to
        // write a row group than 1 MB, for a file 1% larger; 32 KB another 7% less CPU time,
        // for a file 0.7% larger (16 KB: no faster, 1.3% larger again).
        .set_data_page_size_limit(DATA_PAGE_BYTES);
    // Their chunk statistics are computed by `PartWriter`, faster (see `statistics`).
    for field in schema.fields().iter().filter(|f| has_own_statistics(f.data_type())) {
        props = props.set_column_statistics_enabled(ColumnPath::from(field.name().as_str()), EnabledStatistics::None);
    }
    if let Some(batch) = sample {
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if dictionary_would_spill(column.as_ref(), rows) {
                let path = ColumnPath::from(field.name().as_str());
                props = props.set_column_dictionary_enabled(path.clone(), false);
                if delta::delta_would_pack(column.as_ref()) {
                    props = props.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
                }
            }
        }
    }
    props.build()
}

/// Bytes of values in a data page before it is compressed and written.
pub const DATA_PAGE_BYTES: usize = 32 * 1024;
/// Bytes of a column chunk's dictionary before the writer gives it up for plain pages.
pub const DICTIONARY_PAGE_BYTES: usize = 128 * 1024;

/// Values a sample needs before it decides an encoding: fewer say little about the column.
const SAMPLE_MIN_VALUES: usize = 1024;
/// Values of a sample looked at.
const SAMPLE_MAX_VALUES: usize = 16_384;

/// True when the dictionary of a row group of `row_group_rows` rows would outgrow
/// [`DICTIONARY_PAGE_BYTES`], judged from the column's first values: ids, account numbers,
/// amounts, instants. The writer would hash every value into a dictionary only to give it up
/// part way through the row group, so such a column is written in plain pages from the start.
///
/// The distinct values of a row group are estimated from the `d` distinct among `n` sampled
/// values as the `D` for which `n` draws from `D` equally likely values give `d` distinct on
/// average: `D (1 - e^(-n/D)) = d`. Columns of a type not sampled here, and samples of fewer
/// than 1,024 non-null values, keep the dictionary.
pub fn dictionary_would_spill(column: &dyn Array, row_group_rows: usize) -> bool {
    let column = column.slice(0, column.len().min(SAMPLE_MAX_VALUES));
    let n = column.len() - column.null_count();
    if n < SAMPLE_MIN_VALUES {
        return false;
    }
    // Distinct values and their bytes in a dictionary page (a length before each byte array).
    let (d, bytes) = match column.data_type() {
        DataType::Utf8 => distinct_of(column.as_string::<i32>().iter(), 4),
        DataType::LargeUtf8 => distinct_of(column.as_string::<i64>().iter(), 4),
        DataType::Utf8View => distinct_of(column.as_string_view().iter(), 4),
        DataType::Binary => distinct_of(column.as_binary::<i32>().iter(), 4),
        DataType::LargeBinary => distinct_of(column.as_binary::<i64>().iter(), 4),
        dt if dt.is_primitive() => {
            // Fixed-width values compared as their bytes.
            let data = column.to_data();
            let width = dt.primitive_width().unwrap_or(1);
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + data.len()) * width];
            distinct_of(bytes.chunks_exact(width).enumerate().map(|(i, v)| data.is_valid(i).then_some(v)), 0)
        }
        _ => return false,
    };
    let in_row_group = estimated_distinct(d, n).min(row_group_rows as f64);
    in_row_group * (bytes as f64 / d as f64) > DICTIONARY_PAGE_BYTES as f64
}

/// The `D` with `D (1 - e^(-n/D)) = d`: how many equally likely values `n` draws with `d`
/// distinct among them come from. Infinite when every draw was distinct.
fn estimated_distinct(d: usize, n: usize) -> f64 {
    if d >= n {
        return f64::INFINITY;
    }
    let (d, n) = (d as f64, n as f64);
    let expected = |pop: f64| pop * (1.0 - (-n / pop).exp());
    // `expected` grows with the population: bisect between `d` and a population so large that
    // `n` draws would repeat a value about once.
    let (mut lo, mut hi) = (d, n * n);
    for _ in 0..64 {
        let mid = (lo * hi).sqrt();
        if expected(mid) < d { lo = mid } else { hi = mid }
    }
    hi
}

/// Distinct non-null items, and their bytes with `prefix` bytes each.
fn distinct_of<T: std::hash::Hash + Eq + AsRef<[u8]>>(items: impl Iterator<Item = Option<T>>, prefix: usize) -> (usize, usize) {
    let mut seen = std::collections::HashSet::with_capacity(SAMPLE_MAX_VALUES);
    let mut bytes = 0;
    for v in items.flatten() {
        let len = v.as_ref().len();
        if seen.insert(v) {
            bytes += prefix + len;
        }
    }
    (seen.len(), bytes)
}

/// Write batches as one Parquet file (a chunk's part, or a whole sorted export). The writer is
/// made at the first batch, whose rows choose the column encodings ([`properties`]). Row groups
/// are written column by column with the Arrow column writers; the statistics of top-level
/// string columns are computed here ([`statistics`]).
pub struct PartWriter<W: Write + Send> {
    state: State<W>,
    rows: u64,
}

enum State<W: Write + Send> {
    Pending(W, SchemaRef, Box<FormatSpecObject>),
    Open(Box<OpenFile<W>>),
    Finished,
}

struct OpenFile<W: Write + Send> {
    file: SerializedFileWriter<FooterWriter<W>>,
    hold: Hold,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// For each top-level field: its leaf column when its statistics are computed here.
    own_statistics: Vec<Option<usize>>,
    max_rows: usize,
    row_group: Option<RowGroup>,
    row_groups: usize,
}

struct RowGroup {
    writers: Vec<ArrowColumnWriter>,
    statistics: Vec<Option<StringStatistics>>,
    rows: usize,
}

/// The schema a file of batches of `schema` declares: top-level string and binary views
/// (text read from Parquet without copying it, see `source::string_views`) as strings and
/// byte arrays. A view is how the values are held in memory, not another type of value; the
/// Parquet column is the same either way, and every reader knows `string`, while only recent
/// ones know `string_view`. The column writers take either array for the field.
pub fn stored_schema(schema: SchemaRef) -> SchemaRef {
    let stored = |dt: &DataType| match dt {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    };
    if !schema.fields().iter().any(|f| stored(f.data_type()).is_some()) {
        return schema;
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match stored(f.data_type()) {
            Some(dt) => Arc::new(f.as_ref().clone().with_data_type(dt)),
            None => Arc::clone(f),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether the statistics of a top-level field of this type are computed here.
fn has_own_statistics(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8)
}

impl<W: Write + Send> OpenFile<W> {
    fn new(out: W, schema: SchemaRef, o: &FormatSpecObject, sample: Option<&RecordBatch>) -> Result<Self> {
        let props = properties(o, &schema, sample);
        let max_rows = props.max_row_group_row_count().unwrap_or(DEFAULT_ROW_GROUP_ROWS);
        let (out, hold) = FooterWriter::new(out);
        let (file, columns) = ArrowWriter::try_new(out, Arc::clone(&schema), Some(props))?.into_serialized_writer()?;
        let descr = file.schema_descr();
        let own_statistics = (0..schema.fields().len())
            .map(|field| {
                let field_type = schema.field(field).data_type();
                has_own_statistics(field_type)
                    .then(|| (0..descr.num_columns()).find(|&leaf| descr.get_column_root_idx(leaf) == field))
                    .flatten()
            })
            .collect();
        Ok(Self { file, hold, columns, schema, own_statistics, max_rows, row_group: None, row_groups: 0 })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let rg = match self.row_group.as_mut() {
                Some(rg) => rg,
                None => {
                    let writers = self.columns.create_column_writers(self.row_groups)?;
                    let statistics = self.own_statistics.iter().map(|o| o.map(|_| StringStatistics::default())).collect();
                    self.row_group.insert(RowGroup { writers, statistics, rows: 0 })
                }
            };
            let take = rest.num_rows().min(self.max_rows - rg.rows);
            let part = rest.slice(0, take);
            rest = rest.slice(take, rest.num_rows() - take);
            let mut writers = rg.writers.iter_mut();
            for ((field, column), stats) in self.schema.fields().iter().zip(part.columns()).zip(rg.statistics.iter_mut()) {
                if let Some(stats) = stats {
                    match column.data_type() {
                        DataType::Utf8 => stats.update(column.as_string::<i32>()),
                        DataType::LargeUtf8 => stats.update(column.as_string::<i64>()),
                        DataType::Utf8View => stats.update_views(column.as_string_view()),
                        other => {
                            return Err(ParquetError::General(format!(
                                "column {} is {other}, not a string as its schema says",
                                field.name()
                            )));
                        }
                    }
                }
                for leaf in compute_leaves(field, column)? {
                    writers.next().ok_or_else(|| ParquetError::General("fewer column writers than leaves".into()))?.write(&leaf)?;
                }
            }
            rg.rows += take;
            if rg.rows >= self.max_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Write the row group in progress, with the statistics computed here.
    fn flush(&mut self) -> Result<()> {
        let Some(rg) = self.row_group.take() else { return Ok(()) };
        let mut chunks = rg.writers.into_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>>>()?;
        for ((field, stats), leaf) in self.schema.fields().iter().zip(rg.statistics).zip(&self.own_statistics) {
            if let (Some(stats), Some(leaf)) = (stats, leaf) {
                let close = chunks[*leaf].close_mut();
                close.metadata = stats.apply(close.metadata.clone(), field.is_nullable())?;
            }
        }
        let mut out = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut out)?;
        }
        out.close()?;
        self.row_groups += 1;
        Ok(())
    }

    fn bytes_written(&self) -> usize {
        let in_progress = self.row_group.as_ref().map_or(0, |rg| rg.writers.iter().map(|w| w.get_estimated_total_bytes()).sum());
        self.file.bytes_written() + in_progress
    }
}

impl<W: Write + Send> PartWriter<W> {
    /// A writer of batches of `schema`; string and binary views are stored as the strings
    /// and byte arrays they are ([`stored_schema`]).
    pub fn new(out: W, schema: SchemaRef, o: &FormatSpecObject) -> Result<Self> {
        let schema = stored_schema(schema);
        // A schema Parquet cannot hold fails here, not at the first batch.
        ArrowSchemaConverter::new().convert(&schema)?;
        Ok(Self { state: State::Pending(out, schema, Box::new(o.clone())), rows: 0 })
    }

    fn file(&mut self, sample: Option<&RecordBatch>) -> Result<&mut OpenFile<W>> {
        if let State::Pending(..) = self.state
            && let State::Pending(out, schema, o) = std::mem::replace(&mut self.state, State::Finished)
        {
            self.state = State::Open(Box::new(OpenFile::new(out, schema, &o, sample)?));
        }
        match &mut self.state {
            State::Open(f) => Ok(f),
            _ => Err(ParquetError::General("the Parquet part is finished".into())),
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.file(Some(batch))?.write(batch)
    }

    /// Bytes written so far (row groups flushed, and the one in progress as encoded).
    pub fn bytes_written(&self) -> usize {
        match &self.state {
            State::Open(f) => f.bytes_written(),
            _ => 0,
        }
    }

    /// Finish the file; returns the writer and the rows written.
    pub fn finish(mut self) -> Result<(W, u64)> {
        let rows = self.rows;
        let file = self.file(None)?;
        file.flush()?;
        let State::Open(f) = std::mem::replace(&mut self.state, State::Finished) else { unreachable!("opened above") };
        f.hold.hold();
        Ok((f.file.into_inner()?.finish()?, rows))
    }
}

/// Merges Parquet files of one schema into one, row group by row group, copying the column
/// chunks (with their bloom filters and page indexes) without decoding them. Parts are
/// appended one at a time, as they become ready.
pub struct Merger<W: Write + Send> {
    writer: SerializedFileWriter<FooterWriter<W>>,
    hold: Hold,
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
        let (out, hold) = FooterWriter::new(out);
        let mut writer = SerializedFileWriter::new(out, schema.clone(), props)?;
        // The Arrow schema (zones, decimal and dictionary types) travels in the key-value metadata.
        for entry in meta.file_metadata().key_value_metadata().cloned().unwrap_or_default() {
            writer.append_key_value_metadata(entry);
        }
        Ok(Self { writer, hold, schema, rows: 0 })
    }

    /// Append every row group of `part`. A part of up to 64 MB is read in one call and copied
    /// from memory (a chunk's part is a few MB); a larger one is read from the file.
    pub fn append(&mut self, part: &Path) -> Result<()> {
        let input = File::open(part)?;
        if input.metadata()?.len() <= IN_MEMORY_PART_BYTES {
            let mut bytes = Vec::new();
            (&input).read_to_end(&mut bytes)?;
            return self.append_from(part, &Bytes::from(bytes));
        }
        self.append_from(part, &input)
    }

    fn append_from<R: ChunkReader>(&mut self, part: &Path, input: &R) -> Result<()> {
        let meta = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(input)?;
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
                    bloom_filter: Sbbf::read_from_column_chunk(column, input).ok().flatten(),
                    column_index: page_index.and_then(|pi| pi.column_index(rg_idx, col_idx)).cloned(),
                    offset_index: page_index.and_then(|pi| pi.offset_index(rg_idx, col_idx)).cloned(),
                };
                rg_out.append_column(input, result)?;
            }
            rg_out.close()?;
            self.rows += rg.num_rows() as u64;
        }
        Ok(())
    }

    /// Write the footer; returns the writer and the rows merged.
    pub fn finish(self) -> Result<(W, u64)> {
        let rows = self.rows;
        self.hold.hold();
        Ok((self.writer.into_inner()?.finish()?, rows))
    }
}

/// Rows in a Parquet file, from its footer.
pub fn row_count(path: &Path) -> Result<u64> {
    let meta = ParquetMetaDataReader::new().parse_and_finish(&File::open(path)?)?;
    Ok(meta.file_metadata().num_rows() as u64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::Int64Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::model::{FormatKind, FormatSpec};
    use crate::synthetic::transactions;

    /// Whether each column of the file's first row group has dictionary pages.
    fn dictionary_columns(file: &Bytes) -> BTreeMap<String, bool> {
        let meta = ParquetMetaDataReader::new().parse_and_finish(file).unwrap();
        meta.row_group(0)
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.encodings().any(|e| e == Encoding::RLE_DICTIONARY)))
            .collect()
    }

    #[test]
    fn mostly_distinct_columns_are_written_without_a_dictionary_and_read_back_equal() {
        let rows = 150_000;
        let schema = transactions::schema();
        let spec = FormatSpec::of(FormatKind::Parquet);
        let mut w = PartWriter::new(Vec::new(), Arc::clone(&schema), &spec.0).unwrap();
        let mut written = Vec::new();
        for start in (0..rows).step_by(16_384) {
            let b = transactions::batch(start, 16_384.min(rows - start) as usize, rows);
            w.write(&b).unwrap();
            written.push(b);
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, rows);
        let file = Bytes::from(out);
        let dict = dictionary_columns(&file);
        let plain: Vec<&str> = dict.iter().filter(|(_, d)| !**d).map(|(c, _)| c.as_str()).collect();
        // Ids, account numbers (50,000), amounts, instants, references and memos (mostly
        // "Payment <n>") would outgrow the dictionary; risk scores (10,000 values of 8 bytes)
        // and the short lists (currencies, countries) keep theirs. Booleans never have one.
        assert_eq!(plain, ["account_id", "amount", "booked_at", "flagged", "memo", "reference", "transaction_id"]);
        // Of those, the growing integers are delta-encoded: instants and references; amounts
        // spread at random over a range are not.
        let meta = ParquetMetaDataReader::new().parse_and_finish(&file).unwrap();
        let delta: Vec<String> = meta
            .row_group(0)
            .columns()
            .iter()
            .filter(|c| c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED))
            .map(|c| c.column_path().string())
            .collect();
        assert_eq!(delta, ["booked_at", "reference"]);
        let back: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().collect::<std::result::Result<_, _>>().unwrap();
        let back = arrow::compute::concat_batches(&schema, &back).unwrap();
        assert_eq!(back, arrow::compute::concat_batches(&schema, &written).unwrap());
    }

    /// Batches of the benchmark's columns and of strings that test the statistics' edges: long
    /// ones cut to 64 bytes (multi-byte characters, a maximum that cannot be rounded up), empty
    /// ones, nulls, a column of nulls only, a large string column.
    fn statistics_batches(rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
        use arrow::array::{ArrayRef, LargeStringArray, StringArray};
        use arrow::datatypes::Field;
        let base = transactions::schema();
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("long", DataType::Utf8, true));
        fields.push(Field::new("nothing", DataType::Utf8, true));
        fields.push(Field::new("large", DataType::LargeUtf8, false));
        let schema = Arc::new(Schema::new(fields));
        let mut r = crate::synthetic::Rng::new(5);
        let pieces = ["é", "a", "\u{10FFFF}", "z", "€", ""];
        let batches = (0..rows)
            .step_by(10_000)
            .map(|start| {
                let n = 10_000.min(rows - start);
                let t = transactions::batch(start as u64, n, rows as u64);
                let long: StringArray = (0..n)
                    .map(|_| (r.below(10) > 0).then(|| (0..r.below(70) as usize).map(|_| pieces[r.below(6) as usize]).collect::<String>()))
                    .collect();
                let nothing = StringArray::new_null(n);
                let large: LargeStringArray = (0..n).map(|i| Some(format!("{:x}", (start + i) * 7919 % 100_003))).collect();
                let mut columns: Vec<ArrayRef> = t.columns().to_vec();
                columns.extend([Arc::new(long) as ArrayRef, Arc::new(nothing), Arc::new(large)]);
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        (schema, batches)
    }

    #[test]
    fn string_statistics_are_the_ones_the_parquet_writer_computes() {
        string_statistics_match_the_writers(false);
    }

    #[test]
    fn string_views_are_stored_as_strings_with_the_statistics_the_parquet_writer_computes() {
        string_statistics_match_the_writers(true);
    }

    /// Writes the statistics batches with `PartWriter` (their text as string views when
    /// `views`) and with the plain `ArrowWriter` (as strings), and compares the two files.
    fn string_statistics_match_the_writers(views: bool) {
        let rows = 70_000;
        let (schema, batches) = statistics_batches(rows);
        let mut spec = FormatSpec::of(FormatKind::Parquet);
        spec.0.row_group_size = Some(30_000);
        let given = if views { Arc::new(crate::source::string_views(&schema)) } else { Arc::clone(&schema) };
        let mut ours = PartWriter::new(Vec::new(), Arc::clone(&given), &spec.0).unwrap();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(30_000)).build();
        let mut theirs = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props)).unwrap();
        for b in &batches {
            let columns = given.fields().iter().zip(b.columns()).map(|(f, c)| arrow::compute::cast(c, f.data_type()).unwrap()).collect();
            ours.write(&RecordBatch::try_new(Arc::clone(&given), columns).unwrap()).unwrap();
            theirs.write(b).unwrap();
        }
        let ours = Bytes::from(ours.finish().unwrap().0);
        let theirs = Bytes::from(theirs.into_inner().unwrap());
        let read = |f: &Bytes| ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(f).unwrap();
        let (ours_meta, theirs_meta) = (read(&ours), read(&theirs));
        assert_eq!(ours_meta.num_row_groups(), 3);
        assert_eq!(theirs_meta.num_row_groups(), 3);
        let mut compared = 0;
        for (rg, (a, b)) in ours_meta.row_groups().iter().zip(theirs_meta.row_groups()).enumerate() {
            assert_eq!(a.num_rows(), b.num_rows());
            for (col, (x, y)) in a.columns().iter().zip(b.columns()).enumerate() {
                let name = x.column_path().string();
                assert_eq!(x.statistics(), y.statistics(), "row group {rg}, {name}");
                assert_eq!(x.unencoded_byte_array_data_bytes(), y.unencoded_byte_array_data_bytes(), "row group {rg}, {name}");
                assert_eq!(x.definition_level_histogram(), y.definition_level_histogram(), "row group {rg}, {name}");
                assert_eq!(x.repetition_level_histogram(), y.repetition_level_histogram(), "row group {rg}, {name}");
                let strings = has_own_statistics(schema.field(col).data_type());
                // The page index: offsets for every column, page statistics for the others.
                let index = ours_meta.page_index().unwrap();
                assert_eq!(index.column_index(rg, col).is_none(), strings, "{name}");
                assert!(!index.offset_index(rg, col).unwrap().page_locations().is_empty(), "{name}");
                compared += usize::from(strings);
            }
        }
        assert_eq!(compared, 3 * 10, "seven string columns of the benchmark and three more, in three row groups");
        // A long value was cut: the statistics say so.
        let long = ours_meta.row_group(0).column(13).statistics().unwrap();
        assert!(!long.max_is_exact() && long.max_bytes_opt().unwrap().len() <= 64, "{long:?}");
        assert_eq!(ours_meta.row_group(0).column(14).statistics().unwrap().null_count_opt(), Some(30_000));
        // Read back as the strings they were: views are stored as strings.
        let reader = ParquetRecordBatchReaderBuilder::try_new(ours).unwrap();
        assert_eq!(reader.schema().fields(), schema.fields());
        let back: Vec<RecordBatch> = reader.build().unwrap().collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(arrow::compute::concat_batches(&schema, &back).unwrap(), arrow::compute::concat_batches(&schema, &batches).unwrap());
    }

    #[test]
    fn a_small_sample_or_a_dictionary_that_fits_keeps_the_dictionary() {
        let rows = DEFAULT_ROW_GROUP_ROWS;
        let few = Int64Array::from_iter_values(0..1_000);
        assert!(!dictionary_would_spill(&few, rows), "1,000 values are too few to judge");
        // Draws from 12,000 values of 8 bytes: a 96 KB dictionary, though most of the sample is
        // distinct.
        let mut r = crate::synthetic::Rng::new(7);
        let fits = Int64Array::from_iter_values((0..20_000).map(|_| r.below(12_000) as i64));
        assert!(!dictionary_would_spill(&fits, rows));
        let distinct = Int64Array::from_iter_values(0..20_000);
        assert!(dictionary_would_spill(&distinct, rows));
        let nulls = Int64Array::from_iter((0..20_000).map(|i| (i % 10 == 0).then_some(i)));
        assert!(dictionary_would_spill(&nulls, rows), "nulls are not counted as values");
        // A row group of 2,048 rows holds a dictionary of 16 KB at most.
        assert!(!dictionary_would_spill(&distinct, 2_048));
    }

    #[test]
    fn the_estimate_of_distinct_values_inverts_the_expected_count() {
        for pop in [500.0, 10_000.0, 50_000.0] {
            let n = 16_384.0;
            let d = pop * (1.0 - f64::exp(-n / pop));
            let est = estimated_distinct(d.round() as usize, n as usize);
            assert!((est - pop).abs() / pop < 0.02, "{pop}: {est}");
        }
        assert!(estimated_distinct(16_384, 16_384).is_infinite());
    }

    #[test]
    fn an_empty_part_is_a_parquet_file_of_the_schema() {
        let schema = transactions::schema();
        let w = PartWriter::new(Vec::new(), Arc::clone(&schema), &FormatSpec::of(FormatKind::Parquet).0).unwrap();
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, 0);
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out)).unwrap();
        assert_eq!(reader.schema().fields(), schema.fields());
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    }
}
