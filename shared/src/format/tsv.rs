//! TSV, one row per line and one tab between fields, as PostgreSQL's text format writes it:
//! there is no quoting; instead a tab, a line feed, a carriage return or a backslash inside a
//! value is written as `\t`, `\n`, `\r` or `\\`, so a line is always a row and a tab always
//! ends a field. Null is `\N` (unambiguous: a value `\N` is written `\\N`). The formula guard
//! of CSV applies too (a spreadsheet opens TSV the same way).

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::RowEncoder;
use super::cells::{TypedColumn, typed_column, write_plain};
use super::csv::needs_formula_guard;
use crate::model::spec::{FormatSpecObject, LineEnding};

#[derive(Debug, Clone)]
pub struct TsvOptions {
    pub header: bool,
    pub bom: bool,
    pub null: Vec<u8>,
    pub crlf: bool,
    pub formula_guard: bool,
}

impl Default for TsvOptions {
    fn default() -> Self {
        Self { header: true, bom: false, null: b"\\N".to_vec(), crlf: false, formula_guard: true }
    }
}

impl TsvOptions {
    pub fn from_spec(o: &FormatSpecObject) -> Self {
        let d = Self::default();
        Self {
            header: o.header.unwrap_or(d.header),
            bom: o.bom.unwrap_or(d.bom),
            null: o.null.clone().map(String::into_bytes).unwrap_or(d.null),
            crlf: o.line_ending == Some(LineEnding::Crlf),
            formula_guard: o.formula_guard.unwrap_or(d.formula_guard),
        }
    }
}

pub struct TsvEncoder {
    opts: TsvOptions,
}

/// Append `s` with tabs, line breaks and backslashes escaped.
#[inline]
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(off) = bytes[start..].iter().position(|&b| matches!(b, b'\t' | b'\n' | b'\r' | b'\\')) {
        let i = start + off;
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(match bytes[i] {
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\\\",
        });
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

impl TsvEncoder {
    pub fn new(opts: TsvOptions) -> Self {
        Self { opts }
    }

    fn line_end(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.opts.crlf { b"\r\n" } else { b"\n" });
    }

    #[inline]
    fn write_text(&self, s: &str, out: &mut Vec<u8>) {
        if self.opts.formula_guard && needs_formula_guard(s.as_bytes()) {
            out.push(b'\'');
        }
        write_escaped(out, s);
    }
}

impl RowEncoder for TsvEncoder {
    fn header(&self, columns: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.opts.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        if self.opts.header {
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(b'\t');
                }
                self.write_text(c, &mut out);
            }
            self.line_end(&mut out);
        }
        out
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let cols: Vec<TypedColumn<'_>> = batch.columns().iter().map(typed_column).collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    out.push(b'\t');
                }
                if col.is_null(row) {
                    out.extend_from_slice(&self.opts.null);
                } else if let Some(s) = col.text(row) {
                    self.write_text(s, out);
                } else {
                    let start = out.len();
                    write_plain(&col.column, row, out);
                    // Display-formatted values (nested types) may hold anything.
                    if out[start..].iter().any(|&b| matches!(b, b'\t' | b'\n' | b'\r' | b'\\')) {
                        let text = String::from_utf8_lossy(&out[start..]).into_owned();
                        out.truncate(start);
                        write_escaped(out, &text);
                    }
                }
            }
            self.line_end(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn tabs_newlines_and_backslashes_are_escaped() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "t",
                Arc::new(StringArray::from(vec![Some("a\tb"), Some("two\r\nlines"), Some("back\\slash"), Some("\\N"), None, Some("=1+1")]))
                    as ArrayRef,
            ),
            ("n", Arc::new(Int64Array::from(vec![-1, 2, 3, 4, 5, 6])) as ArrayRef),
        ])
        .unwrap();
        let mut e = TsvEncoder::new(TsvOptions::default());
        let mut out = e.header(&["t".into(), "n".into()]);
        e.encode_batch(&batch, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "t\tn\na\\tb\t-1\ntwo\\r\\nlines\t2\nback\\\\slash\t3\n\\\\N\t4\n\\N\t5\n'=1+1\t6\n");
    }
}
