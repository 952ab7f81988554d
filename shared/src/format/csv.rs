//! CSV as RFC 4180 writes it, with the options people need in practice: delimiter, header,
//! BOM, null text, line ending, quote-all, and a formula-injection guard (OWASP: a text cell
//! starting with `=`, `+`, `-`, `@`, tab, CR or NUL is prefixed with `'` and quoted, so a
//! spreadsheet shows it instead of running it). Numbers are never touched by the guard: they
//! are typed columns, and text that is exactly a plain number (`-12.5`) is left alone too.

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::RowEncoder;
use super::cells::{TypedColumn, typed_column, write_plain};
use crate::model::spec::{FormatSpecObject, LineEnding};

#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
    pub bom: bool,
    pub null: Vec<u8>,
    pub crlf: bool,
    pub quote_all: bool,
    pub formula_guard: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { header: true, delimiter: b',', bom: false, null: Vec::new(), crlf: false, quote_all: false, formula_guard: true }
    }
}

impl CsvOptions {
    pub fn from_spec(o: &FormatSpecObject) -> Self {
        let d = Self::default();
        Self {
            header: o.header.unwrap_or(d.header),
            delimiter: o.delimiter.as_deref().and_then(|s| s.bytes().next()).unwrap_or(d.delimiter),
            bom: o.bom.unwrap_or(d.bom),
            null: o.null.clone().map(String::into_bytes).unwrap_or(d.null),
            crlf: o.line_ending == Some(LineEnding::Crlf),
            quote_all: o.quote_all.unwrap_or(d.quote_all),
            formula_guard: o.formula_guard.unwrap_or(d.formula_guard),
        }
    }
}

pub struct CsvEncoder {
    opts: CsvOptions,
    /// Bytes that force a field into quotes.
    special: [bool; 256],
}

impl CsvEncoder {
    pub fn new(opts: CsvOptions) -> Self {
        let mut special = [false; 256];
        for b in [b'"', b'\n', b'\r', opts.delimiter] {
            special[b as usize] = true;
        }
        Self { opts, special }
    }

    fn line_end(&self, out: &mut Vec<u8>) {
        if self.opts.crlf {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b'\n');
        }
    }

    #[inline]
    fn write_text(&self, s: &str, out: &mut Vec<u8>) {
        let bytes = s.as_bytes();
        let guard = self.opts.formula_guard && needs_formula_guard(bytes);
        let needs_quotes = self.opts.quote_all || guard || bytes.iter().any(|&b| self.special[b as usize]);
        if !needs_quotes {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(b'"');
        if guard {
            out.push(b'\'');
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' {
                out.extend_from_slice(&bytes[start..=i]);
                out.push(b'"');
                start = i + 1;
            }
        }
        out.extend_from_slice(&bytes[start..]);
        out.push(b'"');
    }
}

/// A text cell a spreadsheet could take for a formula: it starts with one of
/// `= + - @ TAB CR NUL` and is not simply a number.
pub fn needs_formula_guard(bytes: &[u8]) -> bool {
    match bytes.first() {
        Some(b'=' | b'@' | b'\t' | b'\r' | b'\0') => true,
        Some(b'+' | b'-') => !is_plain_number(&bytes[1..]),
        _ => false,
    }
}

/// Digits with at most one decimal point, at least one digit: `12`, `12.50`, `.5`.
fn is_plain_number(b: &[u8]) -> bool {
    let mut digits = 0;
    let mut dots = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

impl RowEncoder for CsvEncoder {
    fn header(&self, columns: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.opts.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        if self.opts.header {
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(self.opts.delimiter);
                }
                self.write_text(c, &mut out);
            }
            self.line_end(&mut out);
        }
        out
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let cols: Vec<TypedColumn<'_>> = batch.columns().iter().map(typed_column).collect::<Result<_, _>>()?;
        out.reserve(batch.num_rows() * 16 * cols.len().max(1));
        let delim = self.opts.delimiter;
        for row in 0..batch.num_rows() {
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    out.push(delim);
                }
                if col.is_null(row) {
                    out.extend_from_slice(&self.opts.null);
                } else if let Some(s) = col.text(row) {
                    self.write_text(s, out);
                } else if self.opts.quote_all {
                    out.push(b'"');
                    write_plain(&col.column, row, out);
                    out.push(b'"');
                } else {
                    write_plain(&col.column, row, out);
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

    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};

    use super::*;

    fn encode(opts: CsvOptions, cols: Vec<(&str, ArrayRef)>) -> String {
        let names: Vec<String> = cols.iter().map(|(n, _)| n.to_string()).collect();
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let mut enc = CsvEncoder::new(opts);
        let mut out = enc.header(&names);
        enc.encode_batch(&batch, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn text(v: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(v))
    }

    #[test]
    fn correct_quoting() {
        let out =
            encode(CsvOptions::default(), vec![("name", text(vec![Some("a,b"), Some("say \"hi\""), Some("two\nlines"), Some("plain")]))]);
        assert_eq!(out, "name\n\"a,b\"\n\"say \"\"hi\"\"\"\n\"two\nlines\"\nplain\n");
    }

    #[test]
    fn formula_guard_defuses_text_but_not_numbers() {
        let out = encode(
            CsvOptions::default(),
            vec![
                ("memo", text(vec![Some("=SUM(A1)"), Some("+1+2"), Some("-12.5"), Some("@x"), Some("\tx"), Some("ok")])),
                ("n", Arc::new(Int64Array::from(vec![-1, -2, -3, 4, 5, 6])) as ArrayRef),
            ],
        );
        assert_eq!(out, "memo,n\n\"'=SUM(A1)\",-1\n\"'+1+2\",-2\n-12.5,-3\n\"'@x\",4\n\"'\tx\",5\nok,6\n");
    }

    #[test]
    fn guard_can_be_turned_off() {
        let opts = CsvOptions { formula_guard: false, ..Default::default() };
        assert_eq!(encode(opts, vec![("m", text(vec![Some("=1+1")]))]), "m\n=1+1\n");
    }

    #[test]
    fn custom_delimiter_null_crlf_bom() {
        let opts = CsvOptions { delimiter: b';', null: b"NULL".to_vec(), crlf: true, bom: true, ..Default::default() };
        let amounts = Decimal128Array::from(vec![Some(12345), None]).with_precision_and_scale(18, 2).unwrap();
        let out = encode(opts, vec![("a;b", text(vec![Some("x;y"), None])), ("amount", Arc::new(amounts) as ArrayRef)]);
        assert_eq!(out, "\u{feff}\"a;b\";amount\r\n\"x;y\";123.45\r\nNULL;NULL\r\n");
    }

    #[test]
    fn no_header_and_quote_all() {
        let opts = CsvOptions { header: false, quote_all: true, ..Default::default() };
        let out = encode(opts, vec![("a", text(vec![Some("x")])), ("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
        assert_eq!(out, "\"x\",\"1\"\n");
    }
}
