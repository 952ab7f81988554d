//! Avro Object Container Files, written by hand (the format is small). A file is a header
//! (magic `Obj\x01`, a metadata map holding `avro.schema` and `avro.codec`, a 16-byte sync
//! marker) and then blocks, each `count, byte size, data, sync marker`. A block stands alone,
//! so Avro is a row format here: each chunk's part is a run of whole blocks, the header is
//! [`RowEncoder::header`], there is no footer, and chunks are encoded in parallel.
//!
//! Every part must end its blocks with the header's sync marker, so the marker is not random:
//! it is the first 16 bytes of the SHA-256 of the schema's JSON text ([`AvroSchema::sync`]).
//! The same output columns always give the same marker; it only has to be the same within a
//! file.
//!
//! The schema comes from the export's Arrow schema ([`AvroSchema::from_arrow`]): a record
//! `egress.Row` with a field per column, nullable columns as `["null", T]` with default null.
//! Decimals are the `decimal` logical type on `bytes` (two's complement, big-endian, as few
//! bytes as hold the value), dates are `date` on `int`, timestamps are `timestamp-micros` on
//! `long` (microseconds since the Unix epoch, UTC; `local-timestamp-micros` for a column
//! without a zone).

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, GenericStringArray, StringViewArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::*;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::RowEncoder;
use crate::model::spec::{Codec, FormatSpecObject};

/// Uncompressed bytes of rows gathered before a block is written.
pub const BLOCK_BYTES: usize = 1 << 20;
/// The record's name and namespace in the schema.
pub const RECORD_NAME: &str = "Row";
pub const RECORD_NAMESPACE: &str = "egress";
/// Compression level of `deflate` (zlib's default) and of `zstandard`.
const DEFLATE_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// How a column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Boolean,
    /// `int`: Int8, Int16, Int32, UInt8, UInt16.
    Int,
    /// `long`: Int64, UInt32, UInt64 (an error above `i64::MAX`).
    Long,
    Float,
    Double,
    String,
    /// `bytes` with the `decimal` logical type.
    Decimal,
    /// `int` with the `date` logical type.
    Date,
    /// `long` with `timestamp-micros`: Arrow's values times this factor (1,000,000 for
    /// seconds, 1,000 for milliseconds, 1 for microseconds).
    Micros(i64),
    /// `long` with `timestamp-nanos` (Avro 1.12), for nanosecond columns.
    Nanos,
    /// Any other Arrow type, as a `string` of Arrow's display text.
    Text,
}

/// One field of the record.
#[derive(Debug, Clone)]
struct AvroField {
    kind: Kind,
    nullable: bool,
    /// The column's name in the export (error messages).
    column: String,
}

/// The Avro schema of an export's output columns, and what the encoder needs from it.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    /// The schema as written to the file's `avro.schema`.
    pub json: String,
    /// The file's sync marker: the first 16 bytes of the SHA-256 of `json`.
    pub sync: [u8; 16],
    fields: Vec<AvroField>,
}

/// `name` made a valid Avro name (`[A-Za-z_][A-Za-z0-9_]*`): every other character becomes
/// `_`, and a name that starts with a digit (or is empty) gets a leading `_`.
fn avro_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// The Avro type of a column (without the null branch) and how its values are written.
fn avro_type(dt: &DataType) -> (Value, Kind) {
    match dt {
        DataType::Null => (json!("null"), Kind::Null),
        DataType::Boolean => (json!("boolean"), Kind::Boolean),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => (json!("int"), Kind::Int),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (json!("long"), Kind::Long),
        DataType::Float32 => (json!("float"), Kind::Float),
        DataType::Float64 => (json!("double"), Kind::Double),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (json!("string"), Kind::String),
        DataType::Decimal128(p, s) if *s >= 0 => {
            (json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s}), Kind::Decimal)
        }
        DataType::Date32 => (json!({"type": "int", "logicalType": "date"}), Kind::Date),
        DataType::Timestamp(unit, tz) => {
            let local = if tz.is_some() { "" } else { "local-" };
            let (logical, kind) = match unit {
                TimeUnit::Second => ("timestamp-micros", Kind::Micros(1_000_000)),
                TimeUnit::Millisecond => ("timestamp-micros", Kind::Micros(1_000)),
                TimeUnit::Microsecond => ("timestamp-micros", Kind::Micros(1)),
                TimeUnit::Nanosecond => ("timestamp-nanos", Kind::Nanos),
            };
            (json!({"type": "long", "logicalType": format!("{local}{logical}")}), kind)
        }
        _ => (json!("string"), Kind::Text),
    }
}

impl AvroSchema {
    /// The record schema of `schema`'s columns. Column names that are not valid Avro names
    /// are renamed ([`avro_name`]; a name taken already gets `_2`, `_3`, ...), and the field
    /// keeps the column's own name in an `arrow_name` property.
    pub fn from_arrow(schema: &Schema) -> Self {
        let mut taken = std::collections::HashSet::new();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut json_fields = Vec::with_capacity(schema.fields().len());
        // Names that are valid as they are keep them; renamed ones make way.
        for f in schema.fields() {
            if avro_name(f.name()) == *f.name() {
                taken.insert(f.name().clone());
            }
        }
        for f in schema.fields() {
            let (ty, kind) = avro_type(f.data_type());
            let nullable = f.is_nullable() && kind != Kind::Null;
            let mut field = serde_json::Map::new();
            let name = if avro_name(f.name()) == *f.name() {
                f.name().clone()
            } else {
                let base = avro_name(f.name());
                let mut name = base.clone();
                let mut n = 1;
                while !taken.insert(name.clone()) {
                    n += 1;
                    name = format!("{base}_{n}");
                }
                name
            };
            let renamed = name != *f.name();
            field.insert("name".into(), json!(name));
            if nullable {
                field.insert("type".into(), json!(["null", ty]));
                field.insert("default".into(), Value::Null);
            } else {
                field.insert("type".into(), ty);
            }
            if renamed {
                field.insert("arrow_name".into(), json!(f.name()));
            }
            json_fields.push(Value::Object(field));
            fields.push(AvroField { kind, nullable, column: f.name().clone() });
        }
        let record = json!({"type": "record", "name": RECORD_NAME, "namespace": RECORD_NAMESPACE, "fields": json_fields});
        let json = record.to_string();
        let digest = Sha256::digest(json.as_bytes());
        let mut sync = [0u8; 16];
        sync.copy_from_slice(&digest[..16]);
        Self { json, sync, fields }
    }
}

/// Append `v` as Avro writes `int` and `long`: zig-zag, then 7 bits a byte, low bits first.
#[inline]
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Append `b` as Avro `bytes` or `string`: its length, then the bytes.
#[inline]
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// The unscaled value of a decimal as Avro's `decimal` holds it: two's complement,
/// big-endian, in as few bytes as keep the sign (at least one).
#[inline]
pub fn decimal_bytes(v: i128) -> ([u8; 16], usize) {
    let b = v.to_be_bytes();
    let mut start = 0;
    while start < 15 && ((b[start] == 0x00 && b[start + 1] & 0x80 == 0) || (b[start] == 0xFF && b[start + 1] & 0x80 != 0)) {
        start += 1;
    }
    (b, start)
}

/// The `avro.codec` name of a codec.
fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Deflate => "deflate",
        Codec::Snappy => "snappy",
        Codec::Zstd => "zstandard",
        _ => "null",
    }
}

/// A column of a batch, downcast once.
enum Values<'a> {
    Null,
    Bool(&'a BooleanArray),
    Int(&'a [i32]),
    Long(&'a [i64]),
    ULong(&'a [u64]),
    Float(&'a [f32]),
    Double(&'a [f64]),
    Decimal(&'a [i128]),
    Str(&'a GenericStringArray<i32>),
    LargeStr(&'a GenericStringArray<i64>),
    StrView(&'a StringViewArray),
    Text(ArrayFormatter<'a>),
}

static DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(true);

/// Narrow integers are widened to Int32 or Int64 before they are written.
fn widened(array: &ArrayRef, kind: Kind) -> Result<ArrayRef, ArrowError> {
    match (kind, array.data_type()) {
        (Kind::Int, DataType::Int32) | (Kind::Long, DataType::Int64 | DataType::UInt64) => Ok(Arc::clone(array)),
        (Kind::Int, _) => arrow::compute::cast(array, &DataType::Int32),
        (Kind::Long, _) => arrow::compute::cast(array, &DataType::Int64),
        _ => Ok(Arc::clone(array)),
    }
}

fn values<'a>(array: &'a ArrayRef, kind: Kind) -> Result<Values<'a>, ArrowError> {
    Ok(match kind {
        Kind::Null => Values::Null,
        Kind::Boolean => Values::Bool(array.as_boolean()),
        Kind::Int | Kind::Date => Values::Int(match array.data_type() {
            DataType::Date32 => array.as_primitive::<Date32Type>().values(),
            _ => array.as_primitive::<Int32Type>().values(),
        }),
        Kind::Long => match array.data_type() {
            DataType::UInt64 => Values::ULong(array.as_primitive::<UInt64Type>().values()),
            _ => Values::Long(array.as_primitive::<Int64Type>().values()),
        },
        Kind::Float => Values::Float(array.as_primitive::<Float32Type>().values()),
        Kind::Double => Values::Double(array.as_primitive::<Float64Type>().values()),
        Kind::Decimal => Values::Decimal(array.as_primitive::<Decimal128Type>().values()),
        Kind::Micros(_) | Kind::Nanos => Values::Long(match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => array.as_primitive::<TimestampSecondType>().values(),
            DataType::Timestamp(TimeUnit::Millisecond, _) => array.as_primitive::<TimestampMillisecondType>().values(),
            DataType::Timestamp(TimeUnit::Microsecond, _) => array.as_primitive::<TimestampMicrosecondType>().values(),
            _ => array.as_primitive::<TimestampNanosecondType>().values(),
        }),
        Kind::String => match array.data_type() {
            DataType::LargeUtf8 => Values::LargeStr(array.as_string::<i64>()),
            DataType::Utf8View => Values::StrView(array.as_string_view()),
            _ => Values::Str(array.as_string::<i32>()),
        },
        Kind::Text => Values::Text(ArrayFormatter::try_new(array.as_ref(), &DISPLAY)?),
    })
}

/// Encodes rows as Avro blocks; one per chunk.
pub struct AvroEncoder {
    schema: Arc<AvroSchema>,
    codec: Codec,
    /// Rows of the block being gathered, uncompressed.
    raw: Vec<u8>,
    rows: i64,
    /// The compressed block.
    packed: Vec<u8>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl AvroEncoder {
    /// An encoder for rows of `schema` (the export's output columns).
    pub fn new(schema: &SchemaRef, o: &FormatSpecObject) -> Self {
        Self::with_schema(Arc::new(AvroSchema::from_arrow(schema)), Codec::of(o))
    }

    pub fn with_schema(schema: Arc<AvroSchema>, codec: Codec) -> Self {
        Self { schema, codec, raw: Vec::with_capacity(BLOCK_BYTES + (64 << 10)), rows: 0, packed: Vec::new(), zstd: None }
    }

    /// Write the rows gathered so far as one block.
    fn flush_block(&mut self, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        if self.rows == 0 {
            return Ok(());
        }
        let io = |e: std::io::Error| ArrowError::ExternalError(Box::new(e));
        self.packed.clear();
        let data: &[u8] = match self.codec {
            Codec::Deflate => {
                let mut enc = flate2::write::DeflateEncoder::new(std::mem::take(&mut self.packed), flate2::Compression::new(DEFLATE_LEVEL));
                enc.write_all(&self.raw).map_err(io)?;
                self.packed = enc.finish().map_err(io)?;
                &self.packed
            }
            Codec::Snappy => {
                // Raw Snappy, then the CRC-32 of the uncompressed data, big-endian.
                self.packed.resize(snap::raw::max_compress_len(self.raw.len()), 0);
                let n =
                    snap::raw::Encoder::new().compress(&self.raw, &mut self.packed).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                self.packed.truncate(n);
                self.packed.extend_from_slice(&crc32fast::hash(&self.raw).to_be_bytes());
                &self.packed
            }
            Codec::Zstd => {
                let zstd = match self.zstd.as_mut() {
                    Some(z) => z,
                    None => self.zstd.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(io)?),
                };
                self.packed.resize(zstd::zstd_safe::compress_bound(self.raw.len()), 0);
                let n = zstd.compress_to_buffer(&self.raw, &mut self.packed).map_err(io)?;
                self.packed.truncate(n);
                &self.packed
            }
            _ => &self.raw,
        };
        write_long(out, self.rows);
        write_bytes(out, data);
        out.extend_from_slice(&self.schema.sync);
        self.raw.clear();
        self.rows = 0;
        Ok(())
    }
}

fn null_error(column: &str) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("column `{column}` holds a null, but its schema says it has none"))
}

impl RowEncoder for AvroEncoder {
    fn header(&self, _columns: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.schema.json.len() + 64);
        out.extend_from_slice(b"Obj\x01");
        write_long(&mut out, 2);
        write_bytes(&mut out, b"avro.schema");
        write_bytes(&mut out, self.schema.json.as_bytes());
        write_bytes(&mut out, b"avro.codec");
        write_bytes(&mut out, codec_name(self.codec).as_bytes());
        write_long(&mut out, 0);
        out.extend_from_slice(&self.schema.sync);
        out
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let schema = Arc::clone(&self.schema);
        if batch.num_columns() != schema.fields.len() {
            return Err(ArrowError::SchemaError(format!(
                "a batch of {} columns for an Avro schema of {}",
                batch.num_columns(),
                schema.fields.len()
            )));
        }
        let arrays: Vec<ArrayRef> =
            batch.columns().iter().zip(&schema.fields).map(|(a, f)| widened(a, f.kind)).collect::<Result<_, _>>()?;
        let cols: Vec<(Values<'_>, Option<&NullBuffer>, &AvroField)> =
            arrays.iter().zip(&schema.fields).map(|(a, f)| Ok((values(a, f.kind)?, a.nulls(), f))).collect::<Result<_, ArrowError>>()?;
        let mut text = String::new();
        for i in 0..batch.num_rows() {
            let raw = &mut self.raw;
            for (values, nulls, field) in &cols {
                let null = nulls.is_some_and(|n| n.is_null(i));
                if field.nullable {
                    raw.push(if null { 0 } else { 2 });
                    if null {
                        continue;
                    }
                } else if null {
                    return Err(null_error(&field.column));
                }
                match values {
                    Values::Null => {}
                    Values::Bool(a) => raw.push(a.value(i) as u8),
                    Values::Int(v) => write_long(raw, v[i] as i64),
                    Values::Long(v) => {
                        let v = match field.kind {
                            Kind::Micros(m) if m != 1 => v[i].checked_mul(m).ok_or_else(|| {
                                ArrowError::InvalidArgumentError(format!(
                                    "column `{}`: the timestamp {} is out of the range of timestamp-micros",
                                    field.column, v[i]
                                ))
                            })?,
                            _ => v[i],
                        };
                        write_long(raw, v)
                    }
                    Values::ULong(v) => {
                        let v = i64::try_from(v[i]).map_err(|_| {
                            ArrowError::InvalidArgumentError(format!(
                                "column `{}`: {} does not fit Avro's long (at most {})",
                                field.column,
                                v[i],
                                i64::MAX
                            ))
                        })?;
                        write_long(raw, v)
                    }
                    Values::Float(v) => raw.extend_from_slice(&v[i].to_le_bytes()),
                    Values::Double(v) => raw.extend_from_slice(&v[i].to_le_bytes()),
                    Values::Decimal(v) => {
                        let (b, start) = decimal_bytes(v[i]);
                        write_bytes(raw, &b[start..]);
                    }
                    Values::Str(a) => write_bytes(raw, a.value(i).as_bytes()),
                    Values::LargeStr(a) => write_bytes(raw, a.value(i).as_bytes()),
                    Values::StrView(a) => write_bytes(raw, a.value(i).as_bytes()),
                    Values::Text(f) => {
                        use std::fmt::Write as _;
                        text.clear();
                        let _ = write!(text, "{}", f.value(i));
                        write_bytes(raw, text.as_bytes());
                    }
                }
            }
            self.rows += 1;
            if self.raw.len() >= BLOCK_BYTES {
                self.flush_block(out)?;
            }
        }
        Ok(())
    }

    fn finish_part(&mut self, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        self.flush_block(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use arrow::array::{BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::model::{FormatKind, FormatSpec};

    /// Read an Avro long back (the inverse of `write_long`).
    fn read_long(b: &[u8], pos: &mut usize) -> i64 {
        let (mut n, mut shift) = (0u64, 0);
        loop {
            let byte = b[*pos];
            *pos += 1;
            n |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        ((n >> 1) as i64) ^ -((n & 1) as i64)
    }

    fn read_bytes<'a>(b: &'a [u8], pos: &mut usize) -> &'a [u8] {
        let n = read_long(b, pos) as usize;
        *pos += n;
        &b[*pos - n..*pos]
    }

    #[test]
    fn longs_are_zigzag_varints() {
        let cases: [(i64, &[u8]); 7] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (-8193, &[0x81, 0x80, 0x01]),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
        for v in [i64::MIN, i64::MAX, i64::MIN + 1, 1 << 40, -(1 << 40), 123_456_789] {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert!(out.len() <= 10);
            assert_eq!(read_long(&out, &mut 0), v);
        }
    }

    #[test]
    fn decimals_are_minimal_twos_complement() {
        let cases: [(i128, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (123_450, &[0x01, 0xe2, 0x3a]),
            (-123_450, &[0xfe, 0x1d, 0xc6]),
        ];
        for (v, want) in cases {
            let (b, start) = decimal_bytes(v);
            assert_eq!(&b[start..], want, "{v}");
        }
        for v in [i128::MAX, i128::MIN, 10i128.pow(38) - 1, -(10i128.pow(38) - 1)] {
            let (b, start) = decimal_bytes(v);
            // Sign-extend back to 16 bytes.
            let mut full = [if b[start] & 0x80 != 0 { 0xff } else { 0 }; 16];
            full[start..].copy_from_slice(&b[start..]);
            assert_eq!(i128::from_be_bytes(full), v);
        }
    }

    fn sample() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("score", DataType::Float64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, -2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("Zürich ✓")])),
                Arc::new(Decimal128Array::from(vec![Some(123_450), Some(-1), None]).with_precision_and_scale(18, 2).unwrap()),
                Arc::new(Date32Array::from(vec![Some(20_000), None, Some(-1)])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_790_000_000_123_456), None, Some(-5)]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), None, Some(-1.25)])),
            ],
        )
        .unwrap()
    }

    /// The rows of a block's uncompressed data, decoded by hand with the sample's schema.
    fn decode_sample(data: &[u8], rows: usize) -> Vec<String> {
        let mut pos = 0;
        let mut out = Vec::new();
        let nullable = |pos: &mut usize| read_long(data, pos) == 1;
        for _ in 0..rows {
            let mut row = vec![read_long(data, &mut pos).to_string()];
            row.push(if nullable(&mut pos) { String::from_utf8(read_bytes(data, &mut pos).to_vec()).unwrap() } else { "null".into() });
            row.push(if nullable(&mut pos) {
                let b = read_bytes(data, &mut pos);
                let mut full = [if b[0] & 0x80 != 0 { 0xff } else { 0 }; 16];
                full[16 - b.len()..].copy_from_slice(b);
                i128::from_be_bytes(full).to_string()
            } else {
                "null".into()
            });
            for _ in 0..2 {
                row.push(if nullable(&mut pos) { read_long(data, &mut pos).to_string() } else { "null".into() });
            }
            row.push(if nullable(&mut pos) {
                pos += 1;
                data[pos - 1].to_string()
            } else {
                "null".into()
            });
            row.push(if nullable(&mut pos) {
                pos += 8;
                f64::from_le_bytes(data[pos - 8..pos].try_into().unwrap()).to_string()
            } else {
                "null".into()
            });
            out.push(row.join("|"));
        }
        assert_eq!(pos, data.len(), "the block holds exactly its rows");
        out
    }

    fn encoder(batch: &RecordBatch, codec: Codec) -> AvroEncoder {
        let mut spec = FormatSpec::of(FormatKind::Avro);
        spec.0.compression = Some(codec);
        AvroEncoder::new(&batch.schema(), &spec.0)
    }

    #[test]
    fn a_file_is_header_and_framed_blocks_in_every_codec() {
        let batch = sample();
        let want = ["1|a|123450|20000|1790000000123456|1|0.5", "-2|null|-1|null|null|0|null", "3|Zürich ✓|null|-1|-5|null|-1.25"];
        for codec in Codec::allowed_for(FormatKind::Avro) {
            let mut enc = encoder(&batch, *codec);
            let mut file = enc.header(&[]);
            let mut part = Vec::new();
            enc.encode_batch(&batch, &mut part).unwrap();
            assert!(part.is_empty(), "rows are held until the block is full");
            enc.encode_batch(&batch.slice(0, 1), &mut part).unwrap();
            enc.finish_part(&mut part).unwrap();
            // A second part from an encoder of its own: the same header and sync marker.
            let mut other = encoder(&batch, *codec);
            assert_eq!(other.header(&[]), file);
            other.encode_batch(&batch.slice(1, 2), &mut part).unwrap();
            other.finish_part(&mut part).unwrap();
            file.extend_from_slice(&part);

            let mut pos = 4;
            assert_eq!(&file[..4], b"Obj\x01");
            let mut meta = std::collections::BTreeMap::new();
            loop {
                let n = read_long(&file, &mut pos);
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    let k = String::from_utf8(read_bytes(&file, &mut pos).to_vec()).unwrap();
                    meta.insert(k, read_bytes(&file, &mut pos).to_vec());
                }
            }
            let schema: Value = serde_json::from_slice(&meta["avro.schema"]).unwrap();
            assert_eq!(schema["fields"][2]["type"][1], json!({"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}));
            let codec_name = String::from_utf8(meta["avro.codec"].clone()).unwrap();
            let sync = file[pos..pos + 16].to_vec();
            assert_eq!(sync, Sha256::digest(&meta["avro.schema"])[..16]);
            pos += 16;
            let mut rows = Vec::new();
            while pos < file.len() {
                let count = read_long(&file, &mut pos) as usize;
                let data = read_bytes(&file, &mut pos);
                let raw = match codec_name.as_str() {
                    "null" => data.to_vec(),
                    "deflate" => {
                        let mut v = Vec::new();
                        flate2::read::DeflateDecoder::new(data).read_to_end(&mut v).unwrap();
                        v
                    }
                    "snappy" => {
                        let (body, crc) = data.split_at(data.len() - 4);
                        let v = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                        assert_eq!(crc, crc32fast::hash(&v).to_be_bytes());
                        v
                    }
                    "zstandard" => zstd::stream::decode_all(data).unwrap(),
                    other => panic!("codec {other}"),
                };
                rows.extend(decode_sample(&raw, count));
                assert_eq!(&file[pos..pos + 16], &sync[..], "each block ends with the sync marker");
                pos += 16;
            }
            assert_eq!(rows, [&want[..], &want[..1], &want[1..]].concat(), "{codec_name}");
        }
    }

    #[test]
    fn blocks_are_cut_near_the_block_size() {
        let batch = sample();
        let mut enc = encoder(&batch, Codec::None);
        let mut out = Vec::new();
        let mut rows = 0;
        while out.is_empty() {
            enc.encode_batch(&batch, &mut out).unwrap();
            rows += batch.num_rows();
        }
        let mut pos = 0;
        let count = read_long(&out, &mut pos) as usize;
        let size = read_long(&out, &mut pos) as usize;
        assert!((BLOCK_BYTES..BLOCK_BYTES + 100).contains(&size), "{size}");
        assert!(count <= rows && count + 3 > rows);
        assert_eq!(pos + size + 16, out.len());
    }

    #[test]
    fn names_are_made_valid_and_unique() {
        let schema = Schema::new(vec![
            Field::new("a b", DataType::Int64, false),
            Field::new("a_b", DataType::Utf8, true),
            Field::new("1st", DataType::Float64, true),
            Field::new("prix €", DataType::Decimal128(10, 3), false),
            Field::new("a-b", DataType::Int64, false),
            Field::new("when", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        let s = AvroSchema::from_arrow(&schema);
        let v: Value = serde_json::from_str(&s.json).unwrap();
        assert_eq!((&v["name"], &v["namespace"]), (&json!("Row"), &json!("egress")));
        let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a_b_2", "a_b", "_1st", "prix__", "a_b_3", "when"]);
        assert_eq!(v["fields"][0]["arrow_name"], "a b");
        assert_eq!(v["fields"][1].get("arrow_name"), None);
        assert_eq!(v["fields"][3]["type"], json!({"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 3}));
        assert_eq!(v["fields"][5]["type"], json!(["null", {"type": "long", "logicalType": "local-timestamp-micros"}]));
        assert_eq!(v["fields"][5]["default"], Value::Null);
    }

    #[test]
    fn a_null_in_a_column_without_nulls_is_an_error() {
        let declared = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut enc = AvroEncoder::new(&declared, &FormatSpec::of(FormatKind::Avro).0);
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        let err = enc.encode_batch(&batch, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("column `id` holds a null"), "{err}");
    }
}
