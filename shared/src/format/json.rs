//! JSON (one array of objects) and JSONL (one object per line). Types are kept: integers and
//! decimals are numbers with every digit (or strings for decimals, if asked), timestamps are
//! RFC 3339 strings, dates ISO 8601 strings, nulls `null`; NaN and infinities, which JSON
//! cannot hold, are `null`. Nested types are written as JSON by Arrow's own encoder.

use arrow::array::Array;
use arrow::datatypes::{DataType, FieldRef};
use arrow::error::ArrowError;
use arrow::json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use arrow::record_batch::RecordBatch;

use super::RowEncoder;
use super::cells::{Column, TypedColumn, typed_column, write_plain};
use crate::model::spec::DecimalsAs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLayout {
    /// `[` rows separated by `,` `]`
    Array,
    /// one row per line
    Lines,
}

pub struct JsonEncoder {
    layout: JsonLayout,
    decimals: DecimalsAs,
}

impl JsonEncoder {
    pub fn new(layout: JsonLayout, decimals: DecimalsAs) -> Self {
        Self { layout, decimals }
    }
}

/// Bytes that must be escaped inside a JSON string: controls, `"` and `\\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Append `s` as a JSON string. Runs of plain bytes are copied whole.
#[inline]
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(off) = bytes[start..].iter().position(|&b| NEEDS_ESCAPE[b as usize]) {
        let i = start + off;
        out.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// One column of a batch for the JSON-like writers (JSON, JSONL, YAML): typed access to
/// scalars, or Arrow's own JSON encoder for nested types (JSON is also YAML's flow style).
pub(crate) enum ValueColumn<'a> {
    Typed(TypedColumn<'a>),
    Nested(NullableEncoder<'a>),
}

/// The columns of `batch`; `fields` and `options` must outlive them.
pub(crate) fn value_columns<'a>(
    fields: &'a [FieldRef],
    batch: &'a RecordBatch,
    options: &'a EncoderOptions,
) -> Result<Vec<ValueColumn<'a>>, ArrowError> {
    fields
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            Ok(if is_nested(array.data_type()) {
                ValueColumn::Nested(make_encoder(field, array.as_ref(), options)?)
            } else {
                ValueColumn::Typed(typed_column(array)?)
            })
        })
        .collect()
}

fn is_nested(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
    )
}

impl RowEncoder for JsonEncoder {
    fn header(&self, _columns: &[String]) -> Vec<u8> {
        match self.layout {
            JsonLayout::Array => b"[".to_vec(),
            JsonLayout::Lines => Vec::new(),
        }
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let options = EncoderOptions::default();
        let fields: Vec<FieldRef> = batch.schema().fields().iter().cloned().collect();
        let mut cols = value_columns(&fields, batch, &options)?;
        // `"name":` for each column, with the `,` before all but the first.
        let keys: Vec<Vec<u8>> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut k = Vec::new();
                if i > 0 {
                    k.push(b',');
                }
                write_json_string(&mut k, f.name());
                k.push(b':');
                k
            })
            .collect();
        out.reserve(batch.num_rows() * 24 * cols.len().max(1));
        for row in 0..batch.num_rows() {
            if self.layout == JsonLayout::Array {
                out.extend_from_slice(b",\n");
            }
            out.push(b'{');
            for (c, col) in cols.iter_mut().enumerate() {
                out.extend_from_slice(&keys[c]);
                match col {
                    ValueColumn::Nested(enc) => {
                        if enc.is_null(row) {
                            out.extend_from_slice(b"null");
                        } else {
                            enc.encode(row, out);
                        }
                    }
                    ValueColumn::Typed(col) => write_value(col, row, self.decimals, out),
                }
            }
            out.push(b'}');
            if self.layout == JsonLayout::Lines {
                out.push(b'\n');
            }
        }
        Ok(())
    }

    fn footer(&self, _rows: u64) -> Vec<u8> {
        match self.layout {
            JsonLayout::Array => b"\n]\n".to_vec(),
            JsonLayout::Lines => Vec::new(),
        }
    }

    fn first_row_skip(&self) -> usize {
        match self.layout {
            JsonLayout::Array => 1,
            JsonLayout::Lines => 0,
        }
    }
}

#[inline]
fn write_value(col: &TypedColumn<'_>, row: usize, decimals: DecimalsAs, out: &mut Vec<u8>) {
    if col.is_null(row) {
        out.extend_from_slice(b"null");
        return;
    }
    if let Some(s) = col.text(row) {
        write_json_string(out, s);
        return;
    }
    match &col.column {
        Column::Float64(v) if !v[row].is_finite() => out.extend_from_slice(b"null"),
        Column::Float32(v) if !v[row].is_finite() => out.extend_from_slice(b"null"),
        Column::Decimal(..) if decimals == DecimalsAs::String => {
            out.push(b'"');
            write_plain(&col.column, row, out);
            out.push(b'"');
        }
        Column::Bool(_) => {
            write_plain(&col.column, row, out);
        }
        c if col.is_number => {
            write_plain(c, row, out);
        }
        Column::Other(f) => {
            let s = f.value(row).to_string();
            write_json_string(out, &s);
        }
        c => {
            out.push(b'"');
            write_plain(c, row, out);
            out.push(b'"');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;

    fn encode(layout: JsonLayout, decimals: DecimalsAs, batch: &RecordBatch) -> String {
        let mut e = JsonEncoder::new(layout, decimals);
        let mut out = Vec::new();
        e.encode_batch(batch, &mut out).unwrap();
        let skip = e.first_row_skip();
        let mut file = e.header(&[]);
        file.extend_from_slice(&out[skip..]);
        file.extend(e.footer(2));
        String::from_utf8(file).unwrap()
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(vec![9_007_199_254_740_993, 2])) as ArrayRef),
            ("amount", Arc::new(Decimal128Array::from(vec![Some(1050), None]).with_precision_and_scale(18, 2).unwrap()) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec!["Ωmega \"q\"\n", "x\u{1}"])) as ArrayRef),
            ("at", Arc::new(TimestampMicrosecondArray::from(vec![0, 1]).with_timezone("UTC")) as ArrayRef),
            ("score", Arc::new(Float64Array::from(vec![f64::NAN, 0.5])) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn jsonl_keeps_types() {
        let out = encode(JsonLayout::Lines, DecimalsAs::Number, &batch());
        assert_eq!(
            out,
            "{\"id\":9007199254740993,\"amount\":10.50,\"name\":\"Ωmega \\\"q\\\"\\n\",\"at\":\"1970-01-01T00:00:00Z\",\"score\":null}\n\
             {\"id\":2,\"amount\":null,\"name\":\"x\\u0001\",\"at\":\"1970-01-01T00:00:00.000001Z\",\"score\":0.5}\n"
        );
        for line in out.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn json_array_is_one_valid_document() {
        let out = encode(JsonLayout::Array, DecimalsAs::String, &batch());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["amount"], serde_json::json!("10.50"));
        assert!(out.starts_with("[\n{"));
    }
}
