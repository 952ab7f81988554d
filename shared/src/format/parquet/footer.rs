//! The column orders a file's footer declares, in the form readers in use today understand.
//!
//! The Parquet writer marks FLOAT and DOUBLE columns with the IEEE 754 total order
//! (PARQUET-2249, `ColumnOrder` field 2). Readers released before that order existed (pyarrow
//! 26 among them) take it for an unknown order and ignore those columns' statistics, so they
//! cannot skip row groups or pages on them. The statistics written under the total order
//! are also right under the type-defined order (field 1) that those readers know: NaN is left
//! out of the minimum and maximum unless every value is NaN (which readers of the type-defined
//! order ignore), and a minimum of `+0.0` or a maximum of `-0.0` only says that no value of the
//! other sign is there, a narrower bound than the type-defined order asks for. So the footer
//! declares the type-defined order for them. Both unions take three bytes (`0x2C 00 00`
//! against `0x1C 00 00`: a field header, the empty struct's end, the union's end), so the
//! footer is patched in place and keeps its length.
//!
//! [`FooterWriter`] passes a file's bytes through until [`FooterWriter::hold`] is called just
//! before the writer writes its footer; it then keeps the rest (the page indexes and the
//! footer, a few hundred KB at most) and writes it, patched, at [`FooterWriter::finish`].

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A field header of the `ColumnOrder` union: field 2 (IEEE 754 total order), a struct.
const TOTAL_ORDER: u8 = 0x2C;
/// Field 1 (type-defined order), a struct.
const TYPE_DEFINED_ORDER: u8 = 0x1C;

/// The writer under a Parquet file writer; see the module's text.
pub struct FooterWriter<W: Write> {
    inner: W,
    held: Arc<AtomicBool>,
    tail: Vec<u8>,
}

/// Makes a [`FooterWriter`] keep what is written from now on.
#[derive(Clone)]
pub struct Hold(Arc<AtomicBool>);

impl Hold {
    pub fn hold(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<W: Write> FooterWriter<W> {
    pub fn new(inner: W) -> (Self, Hold) {
        let held = Arc::new(AtomicBool::new(false));
        (Self { inner, held: Arc::clone(&held), tail: Vec::new() }, Hold(held))
    }

    /// Write what was kept, with the footer's column orders patched; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        patch_tail(&mut self.tail);
        self.inner.write_all(&self.tail)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for FooterWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.held.load(Ordering::Relaxed) {
            self.tail.extend_from_slice(buf);
            Ok(buf.len())
        } else {
            self.inner.write(buf)
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.held.load(Ordering::Relaxed) {
            self.tail.extend_from_slice(buf);
            Ok(())
        } else {
            self.inner.write_all(buf)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.held.load(Ordering::Relaxed) { Ok(()) } else { self.inner.flush() }
    }
}

/// Patch the footer at the end of `tail` (`<footer> <length: u32 LE> PAR1`). A tail that does
/// not end in a footer it can read is left as it is: the file stays what the writer made.
pub fn patch_tail(tail: &mut [u8]) -> usize {
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return 0;
    }
    let len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as usize;
    if len > n - 8 {
        return 0;
    }
    patch_footer(&mut tail[n - 8 - len..n - 8])
}

/// Declare the type-defined order wherever the footer (a Thrift compact `FileMetaData`)
/// declares the total order; returns how many columns were changed.
pub fn patch_footer(footer: &mut [u8]) -> usize {
    let mut r = Reader { buf: footer, pos: 0 };
    match column_orders(&mut r) {
        Some(positions) => {
            for &p in &positions {
                footer[p] = TYPE_DEFINED_ORDER;
            }
            positions.len()
        }
        None => 0,
    }
}

/// The positions of the union headers to change, found by walking `FileMetaData` to its
/// field 7 (`column_orders`); `None` when the bytes are not what was expected.
fn column_orders(r: &mut Reader) -> Option<Vec<usize>> {
    let mut field = 0i16;
    loop {
        let (id, kind) = r.field_header(&mut field)?;
        if kind == STOP {
            return Some(Vec::new());
        }
        if id != 7 {
            r.skip(kind, 0)?;
            continue;
        }
        if kind != LIST {
            return None;
        }
        let (count, element) = r.list_header()?;
        if element != STRUCT {
            return None;
        }
        let mut found = Vec::new();
        for _ in 0..count {
            let at = r.pos;
            if r.buf.get(at..at + 3) == Some(&[TOTAL_ORDER, 0, 0]) {
                found.push(at);
                r.pos += 3;
            } else {
                r.skip(STRUCT, 0)?;
            }
        }
        return Some(found);
    }
}

const STOP: u8 = 0;
const LIST: u8 = 9;
const STRUCT: u8 = 12;

/// Reads the Thrift compact protocol far enough to skip any value.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn advance(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.buf.len()).then(|| self.pos = end)
    }

    /// A field's id and type; `last` is the previous field's id (ids are sent as deltas).
    fn field_header(&mut self, last: &mut i16) -> Option<(i16, u8)> {
        let b = self.byte()?;
        let kind = b & 0x0F;
        if kind == STOP {
            return Some((0, STOP));
        }
        let delta = (b >> 4) as i16;
        let id = if delta == 0 {
            let z = self.varint()? as u16;
            ((z >> 1) as i16) ^ -((z & 1) as i16)
        } else {
            last.checked_add(delta)?
        };
        *last = id;
        Some((id, kind))
    }

    fn list_header(&mut self) -> Option<(usize, u8)> {
        let b = self.byte()?;
        let count = match b >> 4 {
            15 => usize::try_from(self.varint()?).ok()?,
            n => n as usize,
        };
        Some((count, b & 0x0F))
    }

    /// Skip one value of compact type `kind`; `depth` bounds nesting.
    fn skip(&mut self, kind: u8, depth: usize) -> Option<()> {
        if depth > 32 {
            return None;
        }
        match kind {
            // Booleans in a field header carry their value; in a list they take a byte.
            1 | 2 => Some(()),
            3 => self.advance(1),
            4..=6 => self.varint().map(|_| ()),
            7 => self.advance(8),
            8 => {
                let n = usize::try_from(self.varint()?).ok()?;
                self.advance(n)
            }
            9 | 10 => {
                let (count, element) = self.list_header()?;
                for _ in 0..count {
                    if matches!(element, 1 | 2) {
                        self.advance(1)?;
                    } else {
                        self.skip(element, depth + 1)?;
                    }
                }
                Some(())
            }
            11 => {
                let count = usize::try_from(self.varint()?).ok()?;
                if count == 0 {
                    return Some(());
                }
                let types = self.byte()?;
                for _ in 0..count {
                    for t in [types >> 4, types & 0x0F] {
                        if matches!(t, 1 | 2) {
                            self.advance(1)?;
                        } else {
                            self.skip(t, depth + 1)?;
                        }
                    }
                }
                Some(())
            }
            STRUCT => {
                let mut field = 0i16;
                loop {
                    let (_, t) = self.field_header(&mut field)?;
                    if t == STOP {
                        return Some(());
                    }
                    self.skip(t, depth + 1)?;
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{ColumnOrder, SortOrder};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::file::statistics::Statistics;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("score", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("ratio", DataType::Float32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(Float64Array::from(vec![Some(0.0), Some(2.5), None, Some(f64::NAN)])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d")])),
                Arc::new(Float32Array::from(vec![Some(-1.5), Some(f32::NAN), Some(3.0), None])),
            ],
        )
        .unwrap()
    }

    fn write(patched: bool) -> Vec<u8> {
        let b = batch();
        let props = WriterProperties::builder().set_statistics_enabled(EnabledStatistics::Page).build();
        let (out, hold) = FooterWriter::new(Vec::new());
        let mut w = ArrowWriter::try_new(out, b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        w.flush().unwrap();
        if patched {
            hold.hold();
        }
        w.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn float_columns_declare_the_type_defined_order_and_keep_their_statistics() {
        let (plain, patched) = (write(false), write(true));
        assert_eq!(plain.len(), patched.len(), "patched in place");
        let differing: Vec<usize> = (0..plain.len()).filter(|&i| plain[i] != patched[i]).collect();
        assert_eq!(differing.len(), 2, "one byte per float column");
        let read = |bytes: &[u8]| {
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                .parse_and_finish(&Bytes::copy_from_slice(bytes))
                .unwrap()
        };
        let (before, after) = (read(&plain), read(&patched));
        assert_eq!(before.file_metadata().column_orders().unwrap()[1], ColumnOrder::IEEE_754_TOTAL_ORDER);
        let orders = after.file_metadata().column_orders().unwrap();
        assert_eq!(
            orders,
            &vec![
                ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::SIGNED),
                ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::SIGNED),
                ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::UNSIGNED),
                ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::SIGNED),
            ]
        );
        // Everything else is as the writer made it: statistics (NaN left out), page indexes.
        let rg = after.row_group(0);
        match rg.column(1).statistics().unwrap() {
            Statistics::Double(s) => assert_eq!((s.min_opt(), s.max_opt(), s.null_count_opt()), (Some(&0.0), Some(&2.5), Some(1))),
            other => panic!("{other:?}"),
        }
        match rg.column(3).statistics().unwrap() {
            Statistics::Float(s) => assert_eq!((s.min_opt(), s.max_opt()), (Some(&-1.5), Some(&3.0))),
            other => panic!("{other:?}"),
        }
        assert_eq!(before.row_groups(), after.row_groups());
        let (pb, pa) = (before.page_index().unwrap(), after.page_index().unwrap());
        for col in 0..4 {
            let show = |i: Option<&dyn std::fmt::Debug>| format!("{i:?}");
            assert_eq!(show(pb.column_index(0, col).map(|c| c as _)), show(pa.column_index(0, col).map(|c| c as _)));
            assert_eq!(show(pb.offset_index(0, col).map(|c| c as _)), show(pa.offset_index(0, col).map(|c| c as _)));
            assert!(pa.column_index(0, col).is_some(), "page statistics of column {col}");
        }
    }

    #[test]
    fn a_tail_without_a_readable_footer_is_left_alone() {
        let bytes = write(false);
        let n = bytes.len();
        // Too short, and a footer length past the start.
        for mut cut in [bytes[n - 3..].to_vec(), Vec::new(), bytes[n - 20..].to_vec()] {
            let copy = cut.clone();
            assert_eq!(patch_tail(&mut cut), 0);
            assert_eq!(cut, copy);
        }
        // Garbage in the footer: nothing found, nothing changed.
        let mut garbage = vec![0xFFu8; 64];
        garbage.extend_from_slice(&64u32.to_le_bytes());
        garbage.extend_from_slice(b"PAR1");
        let copy = garbage.clone();
        assert_eq!(patch_tail(&mut garbage), 0);
        assert_eq!(garbage, copy);
    }
}
