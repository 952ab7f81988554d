//! Generic XML, a row format: a document element, one row element per row, one child element
//! per column named after the column (made a safe XML name), in an optional default
//! namespace. A null is left out (so an XSD can declare the element `minOccurs="0"`); values
//! are written as XSD's built-in types read them: `xs:decimal` with every digit, `xs:date`,
//! `xs:dateTime` with its zone, `xs:boolean`.
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <rows>
//!   <row><transaction_id>T1</transaction_id><amount>12.50</amount></row>
//! </rows>
//! ```

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::text::{escape_attr, escape_text, forbidden_char, safe_names};
use crate::format::RowEncoder;
use crate::format::cells::{typed_column, write_plain};
use crate::model::spec::FormatSpecObject;

pub const DEFAULT_ROOT: &str = "rows";
pub const DEFAULT_ROW: &str = "row";

pub struct GenericXml {
    root: String,
    row: String,
    namespace: Option<String>,
    /// `<name>` and `</name>` of each column, made once.
    tags: Vec<(Vec<u8>, Vec<u8>)>,
}

impl GenericXml {
    pub fn new(o: &FormatSpecObject) -> Self {
        Self {
            root: o.root_element.clone().unwrap_or_else(|| DEFAULT_ROOT.into()),
            row: o.row_element.clone().unwrap_or_else(|| DEFAULT_ROW.into()),
            namespace: o.namespace.clone(),
            tags: Vec::new(),
        }
    }

    fn tags(&mut self, batch: &RecordBatch) -> &[(Vec<u8>, Vec<u8>)] {
        if self.tags.len() != batch.num_columns() {
            let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            self.tags = safe_names(&names).into_iter().map(|n| (format!("<{n}>").into_bytes(), format!("</{n}>").into_bytes())).collect();
        }
        &self.tags
    }
}

impl RowEncoder for GenericXml {
    fn header(&self, _columns: &[String]) -> Vec<u8> {
        let mut out = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<".to_vec();
        out.extend_from_slice(self.root.as_bytes());
        if let Some(ns) = &self.namespace {
            out.extend_from_slice(b" xmlns=\"");
            escape_attr(&mut out, ns);
            out.push(b'"');
        }
        out.extend_from_slice(b">\n");
        out
    }

    fn encode_batch(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let row_open = format!("  <{}>", self.row).into_bytes();
        let row_close = format!("</{}>\n", self.row).into_bytes();
        let tags = self.tags(batch).to_vec();
        let cols = batch.columns().iter().map(typed_column).collect::<Result<Vec<_>, _>>()?;
        let names = batch.schema();
        for i in 0..batch.num_rows() {
            out.extend_from_slice(&row_open);
            for (c, col) in cols.iter().enumerate() {
                if col.is_null(i) {
                    continue;
                }
                out.extend_from_slice(&tags[c].0);
                if !write_plain(&col.column, i, out) {
                    let s = col.text(i).unwrap_or_default();
                    if let Some(bad) = forbidden_char(s) {
                        return Err(ArrowError::InvalidArgumentError(format!(
                            "column `{}`: the value {:?} holds U+{:04X}, which XML 1.0 cannot carry",
                            names.field(c).name(),
                            s.chars().take(100).collect::<String>(),
                            bad as u32
                        )));
                    }
                    escape_text(out, s);
                }
                out.extend_from_slice(&tags[c].1);
            }
            out.extend_from_slice(&row_close);
        }
        Ok(())
    }

    fn footer(&self, _rows: u64) -> Vec<u8> {
        format!("</{}>\n", self.root).into_bytes()
    }
}
