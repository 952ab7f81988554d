//! YAML: one sequence of mappings, streamed row by row (`- key: value`). Every string a YAML
//! reader could take for something else is double-quoted: `no`, `on`, `yes`, `null`, `~`,
//! `1e3`, `0123`, dates, anything with `: ` or ` #`, leading or trailing spaces, ...; only
//! plain words are left unquoted. Values keep their types as YAML 1.1 readers see them:
//! integers, floats (always with a point, so they read back as floats), timestamps and dates
//! (YAML's own timestamp type), booleans and null. Decimals are numbers (every digit written)
//! or, with `decimals_as: string`, quoted strings.

use arrow::datatypes::FieldRef;
use arrow::error::ArrowError;
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;

use super::RowEncoder;
use super::cells::{Column, TypedColumn, write_plain};
use super::json::{ValueColumn, value_columns, write_json_string};
use crate::model::spec::DecimalsAs;

pub struct YamlEncoder {
    decimals: DecimalsAs,
}

impl YamlEncoder {
    pub fn new(decimals: DecimalsAs) -> Self {
        Self { decimals }
    }
}

/// Words YAML 1.1 and 1.2 readers turn into booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null", "nil"];

/// True when `s` reads back as this same string without quotes: it starts with a letter, holds
/// only letters, digits, spaces and `_ - . / ( ) , + ' &`, does not end with a space, and is not
/// a reserved word.
pub fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    if !first.is_alphabetic() || s.ends_with(' ') {
        return false;
    }
    if !s.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '/' | '(' | ')' | ',' | '+' | '\'' | '&')) {
        return false;
    }
    // Line breaks in YAML 1.1 that JSON escaping leaves alone.
    if s.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
        return false;
    }
    !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// Append a string scalar: plain when safe, else double-quoted (JSON escaping is valid YAML;
/// the YAML 1.1 line breaks U+0085, U+2028 and U+2029 are escaped too).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if plain_ok(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let start = out.len();
    write_json_string(out, s);
    if s.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
        let quoted = String::from_utf8_lossy(&out[start..]).replace('\u{85}', "\\N").replace('\u{2028}', "\\L").replace('\u{2029}', "\\P");
        out.truncate(start);
        out.extend_from_slice(quoted.as_bytes());
    }
}

/// A float as YAML 1.1 reads floats: with a point, and a signed exponent.
fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b".nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b".inf" } else { b"-.inf" });
    } else {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        let (mantissa, exp) = match s.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (s, None),
        };
        out.extend_from_slice(mantissa.as_bytes());
        if !mantissa.contains('.') {
            out.extend_from_slice(b".0");
        }
        if let Some(e) = exp {
            out.push(b'e');
            if !e.starts_with('-') {
                out.push(b'+');
            }
            out.extend_from_slice(e.as_bytes());
        }
    }
}

impl RowEncoder for YamlEncoder {
    fn header(&self, _columns: &[String]) -> Vec<u8> {
        Vec::new()
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let options = EncoderOptions::default();
        let fields: Vec<FieldRef> = batch.schema().fields().iter().cloned().collect();
        let mut cols = value_columns(&fields, batch, &options)?;
        let keys: Vec<Vec<u8>> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut k = if i == 0 { b"- ".to_vec() } else { b"  ".to_vec() };
                write_str(&mut k, f.name());
                k.extend_from_slice(b": ");
                k
            })
            .collect();
        for row in 0..batch.num_rows() {
            for (c, col) in cols.iter_mut().enumerate() {
                out.extend_from_slice(&keys[c]);
                match col {
                    // JSON is YAML's flow style.
                    ValueColumn::Nested(enc) if enc.is_null(row) => out.extend_from_slice(b"null"),
                    ValueColumn::Nested(enc) => enc.encode(row, out),
                    ValueColumn::Typed(col) => self.write_value(col, row, out),
                }
                out.push(b'\n');
            }
        }
        Ok(())
    }

    fn footer(&self, rows: u64) -> Vec<u8> {
        // An empty sequence must still be a sequence, not an empty document (null).
        if rows == 0 { b"[]\n".to_vec() } else { Vec::new() }
    }
}

impl YamlEncoder {
    fn write_value(&self, col: &TypedColumn<'_>, row: usize, out: &mut Vec<u8>) {
        if col.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        if let Some(s) = col.text(row) {
            write_str(out, s);
            return;
        }
        match &col.column {
            Column::Float64(v) => write_float(out, v[row]),
            Column::Float32(v) => write_float(out, v[row] as f64),
            Column::Decimal(..) if self.decimals == DecimalsAs::String => {
                out.push(b'"');
                write_plain(&col.column, row, out);
                out.push(b'"');
            }
            Column::Other(f) => write_str(out, &f.value(row).to_string()),
            c => {
                write_plain(c, row, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn strings_yaml_would_mistype_are_quoted() {
        for s in [
            "no",
            "On",
            "yes",
            "~",
            "null",
            "1e3",
            "0123",
            "2026-10-01",
            "",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "-x",
            "[x]",
            "{x}",
            "@x",
            "*x",
            "&x",
            "!x",
            "%x",
            "|x",
            ">x",
            "'x",
            "\"x",
            "=SUM()",
            "x\ny",
            ".inf",
            "y",
            "N",
        ] {
            assert!(!plain_ok(s), "{s:?} must be quoted");
        }
        for s in ["Payment", "Müller & Söhne, GmbH", "Ελληνική", "ООО Ромашка", "Rent, October", "O'Brien, Ltd.", "a-b_c/d (e)"]
        {
            assert!(plain_ok(s), "{s:?} may be plain");
        }
    }

    #[test]
    fn rows_are_a_sequence_of_mappings_with_types() {
        let batch = RecordBatch::try_from_iter(vec![
            ("name", Arc::new(StringArray::from(vec![Some("no"), Some("Acme Corp")])) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![Some(9_007_199_254_740_993), None])) as ArrayRef),
            ("x", Arc::new(Float64Array::from(vec![3.0, 1e300])) as ArrayRef),
            ("amount", Arc::new(Decimal128Array::from(vec![1050, -5]).with_precision_and_scale(10, 2).unwrap()) as ArrayRef),
        ])
        .unwrap();
        let mut e = YamlEncoder::new(DecimalsAs::Number);
        let mut out = Vec::new();
        e.encode_batch(&batch, &mut out).unwrap();
        out.extend(e.footer(2));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "- name: \"no\"\n  \"n\": 9007199254740993\n  x: 3.0\n  amount: 10.50\n- name: Acme Corp\n  \"n\": null\n  x: 1.0e+300\n  amount: -0.05\n"
        );
        assert_eq!(e.footer(0), b"[]\n");
    }
}
