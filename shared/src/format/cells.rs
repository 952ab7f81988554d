//! Typed access to one column of a batch, and fast writers for the values every text format
//! shares: exact decimals, ISO 8601 dates and RFC 3339 timestamps, integers and floats. Writing
//! these by hand (instead of through `Display`) is most of what makes the encoders fast.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, GenericStringArray, StringViewArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::*;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// One column, downcast once per batch.
pub enum Column<'a> {
    Null,
    Bool(&'a BooleanArray),
    Int(&'a [i64]),
    UInt(&'a [u64]),
    /// Narrow integers, widened on the fly.
    Int32(&'a [i32]),
    Float64(&'a [f64]),
    Float32(&'a [f32]),
    Decimal(&'a [i128], i8),
    Date32(&'a [i32]),
    /// Values, units per second, fraction digits, offset in seconds.
    Timestamp(&'a [i64], i64, usize, i32),
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    Utf8View(&'a StringViewArray),
    /// Anything else, through Arrow's display formatting.
    Other(ArrayFormatter<'a>),
}

/// A column and its nulls.
pub struct TypedColumn<'a> {
    pub column: Column<'a>,
    pub nulls: Option<&'a NullBuffer>,
    /// True for text-like columns (what the CSV formula guard looks at).
    pub is_text: bool,
    /// True when the value is a number in JSON (written without quotes).
    pub is_number: bool,
}

impl TypedColumn<'_> {
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(i)) || matches!(self.column, Column::Null)
    }

    /// The text of a text column.
    #[inline]
    pub fn text(&self, i: usize) -> Option<&str> {
        match &self.column {
            Column::Utf8(a) => Some(a.value(i)),
            Column::LargeUtf8(a) => Some(a.value(i)),
            Column::Utf8View(a) => Some(a.value(i)),
            _ => None,
        }
    }
}

static DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(true);

/// The offset of a timestamp column's zone, in seconds: 0 for none, UTC or `Z`, the fixed
/// offset for `+HH:MM`; named zones are written in UTC (the instant is the same).
pub fn zone_offset_seconds(tz: Option<&str>) -> i32 {
    let Some(tz) = tz else { return 0 };
    let b = tz.as_bytes();
    if b.len() == 6 && (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
        let num = |s: &[u8]| -> Option<i32> { std::str::from_utf8(s).ok()?.parse().ok() };
        if let (Some(h), Some(m)) = (num(&b[1..3]), num(&b[4..6])) {
            let off = h * 3600 + m * 60;
            return if b[0] == b'-' { -off } else { off };
        }
    }
    0
}

pub fn typed_column<'a>(array: &'a ArrayRef) -> Result<TypedColumn<'a>, ArrowError> {
    let nulls = array.nulls();
    let mut is_text = false;
    let mut is_number = false;
    let column = match array.data_type() {
        DataType::Null => Column::Null,
        DataType::Boolean => Column::Bool(array.as_boolean()),
        DataType::Int64 => {
            is_number = true;
            Column::Int(array.as_primitive::<Int64Type>().values())
        }
        DataType::Int32 => {
            is_number = true;
            Column::Int32(array.as_primitive::<Int32Type>().values())
        }
        DataType::UInt64 => {
            is_number = true;
            Column::UInt(array.as_primitive::<UInt64Type>().values())
        }
        DataType::Float64 => {
            is_number = true;
            Column::Float64(array.as_primitive::<Float64Type>().values())
        }
        DataType::Float32 => {
            is_number = true;
            Column::Float32(array.as_primitive::<Float32Type>().values())
        }
        DataType::Decimal128(_, s) => {
            is_number = true;
            Column::Decimal(array.as_primitive::<Decimal128Type>().values(), *s)
        }
        DataType::Date32 => Column::Date32(array.as_primitive::<Date32Type>().values()),
        DataType::Timestamp(unit, tz) => {
            let (per_sec, digits, values) = match unit {
                TimeUnit::Second => (1, 0, array.as_primitive::<TimestampSecondType>().values().as_ref()),
                TimeUnit::Millisecond => (1_000, 3, array.as_primitive::<TimestampMillisecondType>().values().as_ref()),
                TimeUnit::Microsecond => (1_000_000, 6, array.as_primitive::<TimestampMicrosecondType>().values().as_ref()),
                TimeUnit::Nanosecond => (1_000_000_000, 9, array.as_primitive::<TimestampNanosecondType>().values().as_ref()),
            };
            Column::Timestamp(values, per_sec, digits, zone_offset_seconds(tz.as_deref()))
        }
        DataType::Utf8 => {
            is_text = true;
            Column::Utf8(array.as_string::<i32>())
        }
        DataType::LargeUtf8 => {
            is_text = true;
            Column::LargeUtf8(array.as_string::<i64>())
        }
        DataType::Utf8View => {
            is_text = true;
            Column::Utf8View(array.as_string_view())
        }
        dt if dt.is_integer() || dt.is_floating() => {
            is_number = true;
            Column::Other(ArrayFormatter::try_new(array.as_ref(), &DISPLAY)?)
        }
        _ => Column::Other(ArrayFormatter::try_new(array.as_ref(), &DISPLAY)?),
    };
    Ok(TypedColumn { column, nulls, is_text, is_number })
}

/// Write the value at `i` of a non-text column as plain text (no quoting or escaping needed:
/// none of these contain quotes, delimiters or line breaks). Returns false for text columns,
/// which the caller writes with its own escaping.
#[inline]
pub fn write_plain(col: &Column<'_>, i: usize, out: &mut Vec<u8>) -> bool {
    match col {
        Column::Int(v) => write_int(out, v[i]),
        Column::Int32(v) => write_int(out, v[i] as i64),
        Column::UInt(v) => out.extend_from_slice(itoa::Buffer::new().format(v[i]).as_bytes()),
        Column::Float64(v) => write_f64(out, v[i]),
        Column::Float32(v) => write_f32(out, v[i]),
        Column::Decimal(v, s) => write_decimal(out, v[i], *s),
        Column::Bool(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
        Column::Date32(v) => write_date(out, v[i] as i64),
        Column::Timestamp(v, per_sec, digits, off) => write_timestamp(out, v[i], *per_sec, *digits, *off),
        Column::Null => {}
        Column::Other(f) => {
            use std::fmt::Write;
            let mut s = String::new();
            let _ = write!(s, "{}", f.value(i));
            out.extend_from_slice(s.as_bytes());
        }
        Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_) => return false,
    }
    true
}

#[inline]
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Shortest text that reads back as the same float; `NaN`, `inf`, `-inf` for the rest.
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    } else if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v > 0.0 {
        out.extend_from_slice(b"inf");
    } else {
        out.extend_from_slice(b"-inf");
    }
}

#[inline]
pub fn write_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        out.extend_from_slice(s.strip_suffix(".0").unwrap_or(s).as_bytes());
    } else {
        write_f64(out, v as f64);
    }
}

/// A decimal with exactly `scale` fraction digits: 12345 at scale 2 is `123.45`, -5 is
/// `-0.05`. A negative scale multiplies by ten.
#[inline]
pub fn write_decimal(out: &mut Vec<u8>, v: i128, scale: i8) {
    if v < 0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v.unsigned_abs()).as_bytes();
    if scale <= 0 {
        out.extend_from_slice(digits);
        if v != 0 {
            out.extend(std::iter::repeat_n(b'0', (-scale) as usize));
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    }
}

/// (year, month, day) of a day count from 1970-01-01, in the proleptic Gregorian calendar.
#[inline]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[inline]
fn two(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD`; years outside 0000..=9999 get a sign and at least four digits, as ISO 8601's
/// expanded form.
#[inline]
pub fn write_date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        two(out, y / 100);
        two(out, y % 100);
    } else {
        out.push(if y < 0 { b'-' } else { b'+' });
        let s = format!("{:04}", y.unsigned_abs());
        out.extend_from_slice(s.as_bytes());
    }
    out.push(b'-');
    two(out, m);
    out.push(b'-');
    two(out, d);
}

/// RFC 3339: `2026-10-05T14:03:07.250Z`, or with `+HH:MM` when the zone has an offset. The
/// fraction is written only when it is not zero, with the unit's digits (3, 6 or 9).
#[inline]
pub fn write_timestamp(out: &mut Vec<u8>, value: i64, per_sec: i64, digits: usize, offset: i32) {
    let secs = value.div_euclid(per_sec) + offset as i64;
    let frac = value.rem_euclid(per_sec);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    write_date(out, days);
    out.push(b'T');
    two(out, sod / 3600);
    out.push(b':');
    two(out, (sod / 60) % 60);
    out.push(b':');
    two(out, sod % 60);
    if frac != 0 {
        out.push(b'.');
        let mut buf = itoa::Buffer::new();
        let s = buf.format(frac).as_bytes();
        out.extend(std::iter::repeat_n(b'0', digits - s.len()));
        out.extend_from_slice(s);
    }
    if offset == 0 {
        out.push(b'Z');
    } else {
        let (sign, off) = if offset < 0 { (b'-', -offset) } else { (b'+', offset) };
        out.push(sign);
        two(out, (off / 3600) as u32);
        out.push(b':');
        two(out, ((off / 60) % 60) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(s(|o| write_decimal(o, 12345, 2)), "123.45");
        assert_eq!(s(|o| write_decimal(o, -5, 2)), "-0.05");
        assert_eq!(s(|o| write_decimal(o, 0, 2)), "0.00");
        assert_eq!(s(|o| write_decimal(o, 7, 0)), "7");
        assert_eq!(s(|o| write_decimal(o, 7, -2)), "700");
        assert_eq!(s(|o| write_decimal(o, i128::MAX, 10)), "17014118346046923173168730371.5884105727");
        assert_eq!(s(|o| write_decimal(o, -100, 2)), "-1.00");
    }

    #[test]
    fn dates_match_chrono() {
        for days in [-719_528i64, -1, 0, 1, 59, 60, 11_016, 19_999, 20_390, 2_932_896] {
            let expect = chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + days as i32).unwrap().format("%Y-%m-%d").to_string();
            assert_eq!(s(|o| write_date(o, days)), expect, "{days}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(s(|o| write_timestamp(o, 0, 1_000_000, 6, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(s(|o| write_timestamp(o, 1_790_000_000_250_000, 1_000_000, 6, 0)), "2026-09-21T14:13:20.250000Z");
        assert_eq!(s(|o| write_timestamp(o, -1, 1000, 3, 0)), "1969-12-31T23:59:59.999Z");
        assert_eq!(s(|o| write_timestamp(o, 0, 1, 0, 3600 + 1800)), "1970-01-01T01:30:00+01:30");
        assert_eq!(s(|o| write_timestamp(o, 0, 1, 0, -5 * 3600)), "1969-12-31T19:00:00-05:00");
        for v in [1_700_000_000_123_456i64, -86_400_000_001, 253_402_300_799_999_999] {
            let expect = chrono::DateTime::from_timestamp_micros(v).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            assert_eq!(s(|o| write_timestamp(o, v, 1_000_000, 6, 0)), expect);
        }
    }

    #[test]
    fn floats_read_back() {
        assert_eq!(s(|o| write_f64(o, 0.1)), "0.1");
        assert_eq!(s(|o| write_f64(o, 3.0)), "3");
        assert_eq!(s(|o| write_f64(o, f64::NAN)), "NaN");
        assert_eq!(s(|o| write_f64(o, -1e300)), "-1e300");
    }

    #[test]
    fn zone_offsets() {
        assert_eq!(zone_offset_seconds(Some("+05:30")), 19_800);
        assert_eq!(zone_offset_seconds(Some("-03:00")), -10_800);
        assert_eq!(zone_offset_seconds(Some("UTC")), 0);
        assert_eq!(zone_offset_seconds(None), 0);
    }
}
