//! One value at a time: the types a field mapping works with, how a value is written as text,
//! and the casts between types. Every failure is a reason for people (the caller adds the row,
//! column and value).

use std::fmt::Write as _;

use arrow::datatypes::DataType;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

/// The types a mapped value can have, one per Arrow type an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    I64,
    F64,
    Bool,
    Date,
    Ts,
    Dec(u8, i8),
}

impl Kind {
    /// The kind of an Arrow type, after [`canonical_type`].
    pub fn of(dt: &DataType) -> Option<Kind> {
        Some(match dt {
            DataType::Utf8 => Kind::Str,
            DataType::Int64 => Kind::I64,
            DataType::Float64 => Kind::F64,
            DataType::Boolean => Kind::Bool,
            DataType::Date32 => Kind::Date,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => Kind::Ts,
            DataType::Decimal128(p, s) if *s >= 0 => Kind::Dec(*p, *s),
            _ => return None,
        })
    }

    pub fn data_type(self) -> DataType {
        match self {
            Kind::Str => DataType::Utf8,
            Kind::I64 => DataType::Int64,
            Kind::F64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
            Kind::Ts => DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Dec(p, s) => DataType::Decimal128(p, s),
        }
    }

    pub fn name(self) -> String {
        match self {
            Kind::Str => "string".into(),
            Kind::I64 => "int64".into(),
            Kind::F64 => "float64".into(),
            Kind::Bool => "bool".into(),
            Kind::Date => "date".into(),
            Kind::Ts => "timestamp".into(),
            Kind::Dec(p, s) => format!("decimal({p},{s})"),
        }
    }
}

/// The Arrow type a column is converted to before it is mapped (all integers to int64, all
/// floats to float64, other string layouts to utf8, timestamps to µs); `None` when the
/// type cannot be mapped (it can still be renamed).
pub fn canonical_type(dt: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match dt {
        Utf8 | LargeUtf8 | Utf8View => Utf8,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Int64,
        Float16 | Float32 | Float64 => Float64,
        Boolean => Boolean,
        Date32 | Date64 => Date32,
        // Arrow keeps UTC instants whatever the zone label: only the unit changes.
        Timestamp(_, tz) => Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz.clone()),
        Decimal128(p, s) if *s >= 0 => Decimal128(*p, *s),
        _ => return None,
    })
}

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Ts(i64),
    /// Unscaled value and scale.
    Dec(i128, i8),
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

pub fn date_of_days(d: i32) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::days(d as i64))
}

fn days_of(d: NaiveDate) -> Result<i32, String> {
    i32::try_from(d.signed_duration_since(EPOCH).num_days()).map_err(|_| "the date is out of range".to_string())
}

pub fn instant_of_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// A decimal's text with all its scale digits, e.g. `-12.50`.
pub fn decimal_text(v: i128, scale: i8) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let mut out = String::with_capacity(digits.len() + 3);
    if v < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        out.push_str(&digits[..digits.len() - scale]);
        out.push('.');
        out.push_str(&digits[digits.len() - scale..]);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    }
    out
}

/// The text of a value as a cast to string without a format writes it: integers and decimals
/// with all their digits, floats in the shortest form that reads back the same, dates as
/// `YYYY-MM-DD`, timestamps as RFC 3339 in UTC (`2026-10-01T12:00:00Z`, fractions only when
/// there are any), booleans as `true`/`false`. `None` for null.
pub fn text(v: &Scalar) -> Option<String> {
    Some(match v {
        Scalar::Null => return None,
        Scalar::Str(s) => s.clone(),
        Scalar::I64(i) => i.to_string(),
        Scalar::F64(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Date(d) => date_of_days(*d).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| format!("{d} days")),
        Scalar::Ts(us) => {
            instant_of_micros(*us).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).unwrap_or_else(|| format!("{us} µs"))
        }
        Scalar::Dec(v, s) => decimal_text(*v, *s),
    })
}

/// Whether a cast from `from` to `to` exists.
pub fn castable(from: Kind, to: Kind) -> bool {
    use Kind::*;
    match from {
        Str => true,
        I64 | Dec(..) => matches!(to, Str | I64 | F64 | Bool | Dec(..)) && !(matches!(from, Dec(..)) && to == Bool),
        F64 => matches!(to, Str | I64 | F64 | Dec(..)),
        Bool => matches!(to, Str | I64 | Bool),
        Date | Ts => matches!(to, Str | Date | Ts),
    }
}

/// Whether a cast reads or writes text with a date/time pattern.
pub fn takes_format(from: Kind, to: Kind) -> bool {
    matches!((from, to), (Kind::Str, Kind::Date | Kind::Ts) | (Kind::Date | Kind::Ts, Kind::Str))
}

/// Whether a cast involves a wall clock, so a time zone applies.
pub fn takes_time_zone(from: Kind, to: Kind) -> bool {
    matches!((from, to), (Kind::Str | Kind::Date, Kind::Ts) | (Kind::Ts, Kind::Str | Kind::Date))
}

/// Why `pattern` cannot write a `kind` value (a date has no time of day, for example), if it
/// cannot.
pub fn format_problem(pattern: &str, kind: Kind) -> Option<String> {
    let sample = NaiveDate::from_ymd_opt(2026, 3, 29).expect("a valid date");
    let mut out = String::new();
    let ok = match kind {
        Kind::Date => write!(out, "{}", sample.format(pattern)).is_ok(),
        _ => write!(out, "{}", Utc.from_utc_datetime(&sample.and_hms_opt(1, 2, 3).expect("valid")).format(pattern)).is_ok(),
    };
    if ok { None } else { Some("a pattern of date fields only: a date has no time of day or zone".into()) }
}

/// Whether a pattern reads an offset (`%z` and its variants): then the text says its instant
/// and no time zone is needed.
fn has_offset(pattern: &str) -> bool {
    StrftimeItems::new(pattern).any(|i| {
        matches!(
            i,
            Item::Fixed(
                chrono::format::Fixed::TimezoneOffset
                    | chrono::format::Fixed::TimezoneOffsetColon
                    | chrono::format::Fixed::TimezoneOffsetDoubleColon
                    | chrono::format::Fixed::TimezoneOffsetTripleColon
                    | chrono::format::Fixed::TimezoneOffsetColonZ
                    | chrono::format::Fixed::TimezoneOffsetZ
                    | chrono::format::Fixed::RFC3339
                    | chrono::format::Fixed::RFC2822
            )
        )
    })
}

/// A cast, checked and ready.
#[derive(Debug, Clone)]
pub struct Cast {
    pub to: Kind,
    pub format: Option<String>,
    pub zone: Tz,
}

impl Cast {
    /// Convert one value (never null: nulls stay null without a cast).
    pub fn apply(&self, v: Scalar) -> Result<Scalar, String> {
        use Scalar as S;
        let to = self.to;
        Ok(match (v, to) {
            (S::Null, _) => S::Null,
            (S::Str(s), Kind::Str) => S::Str(s),
            (v, Kind::Str) => S::Str(self.write_text(&v)?),
            (S::Str(s), _) => self.parse_text(&s)?,
            (S::I64(i), Kind::I64) => S::I64(i),
            (S::I64(i), Kind::F64) => S::F64(i as f64),
            (S::I64(i), Kind::Bool) => match i {
                0 => S::Bool(false),
                1 => S::Bool(true),
                _ => return Err("only 0 and 1 are booleans".into()),
            },
            (S::I64(i), Kind::Dec(p, s)) => S::Dec(rescale(i as i128, 0, p, s)?, s),
            (S::F64(f), Kind::F64) => S::F64(f),
            (S::F64(f), Kind::I64) => {
                if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
                    S::I64(f as i64)
                } else {
                    return Err("not a whole number in the int64 range".into());
                }
            }
            (S::F64(f), Kind::Dec(p, s)) => {
                if !f.is_finite() {
                    return Err("not a finite number".into());
                }
                // The shortest text that reads back as the same float: no binary noise digits.
                S::Dec(parse_decimal(&f.to_string(), p, s)?, s)
            }
            (S::Bool(b), Kind::Bool) => S::Bool(b),
            (S::Bool(b), Kind::I64) => S::I64(b as i64),
            (S::Dec(v, s), Kind::Dec(p2, s2)) => S::Dec(rescale(v, s, p2, s2)?, s2),
            (S::Dec(v, s), Kind::I64) => {
                let f = 10i128.pow(s as u32);
                if v % f != 0 {
                    return Err("has a fractional part".into());
                }
                S::I64(i64::try_from(v / f).map_err(|_| "out of the int64 range".to_string())?)
            }
            (S::Dec(v, s), Kind::F64) => S::F64(decimal_text(v, s).parse().map_err(|_| "not a number".to_string())?),
            (S::Date(d), Kind::Date) => S::Date(d),
            (S::Date(d), Kind::Ts) => {
                let day = date_of_days(d).ok_or("the date is out of range")?;
                S::Ts(self.local_to_utc(day.and_hms_opt(0, 0, 0).expect("midnight"))?)
            }
            (S::Ts(us), Kind::Ts) => S::Ts(us),
            (S::Ts(us), Kind::Date) => {
                let t = instant_of_micros(us).ok_or("the timestamp is out of range")?;
                S::Date(days_of(t.with_timezone(&self.zone).date_naive())?)
            }
            (v, to) => return Err(format!("a {} value cannot become {}", kind_name(&v), to.name())),
        })
    }

    fn write_text(&self, v: &Scalar) -> Result<String, String> {
        let mut out = String::new();
        match (v, &self.format) {
            (Scalar::Date(d), Some(f)) => {
                let d = date_of_days(*d).ok_or("the date is out of range")?;
                write!(out, "{}", d.format(f)).map_err(|_| format!("the pattern {f} cannot write a date"))?;
            }
            (Scalar::Ts(us), f) if f.is_some() || self.zone != Tz::UTC => {
                let t = instant_of_micros(*us).ok_or("the timestamp is out of range")?.with_timezone(&self.zone);
                match f {
                    Some(f) => write!(out, "{}", t.format(f)).map_err(|_| format!("the pattern {f} cannot write a timestamp"))?,
                    None => out = t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                }
            }
            (v, _) => out = text(v).unwrap_or_default(),
        }
        Ok(out)
    }

    fn parse_text(&self, s: &str) -> Result<Scalar, String> {
        Ok(match self.to {
            Kind::Str => Scalar::Str(s.to_string()),
            Kind::I64 => Scalar::I64(s.parse().map_err(|_| "not an integer in the int64 range".to_string())?),
            Kind::F64 => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => Scalar::F64(f),
                _ => return Err("not a finite number".into()),
            },
            Kind::Bool => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Scalar::Bool(true),
                "false" | "0" => Scalar::Bool(false),
                _ => return Err("not a boolean (true, false, 1 or 0)".into()),
            },
            Kind::Dec(p, sc) => Scalar::Dec(parse_decimal(s, p, sc)?, sc),
            Kind::Date => {
                let f = self.format.as_deref().unwrap_or("%Y-%m-%d");
                Scalar::Date(days_of(NaiveDate::parse_from_str(s, f).map_err(|e| format!("does not match {f}: {e}"))?)?)
            }
            Kind::Ts => Scalar::Ts(self.parse_instant(s)?),
        })
    }

    fn parse_instant(&self, s: &str) -> Result<i64, String> {
        match &self.format {
            None => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    return Ok(t.timestamp_micros());
                }
                for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                    if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                        return self.local_to_utc(t);
                    }
                }
                Err("not an RFC 3339 timestamp (give `format` for other layouts)".into())
            }
            Some(f) if has_offset(f) => {
                DateTime::parse_from_str(s, f).map(|t| t.timestamp_micros()).map_err(|e| format!("does not match {f}: {e}"))
            }
            Some(f) => match NaiveDateTime::parse_from_str(s, f) {
                Ok(t) => self.local_to_utc(t),
                // A pattern without a time of day reads midnight.
                Err(e) => match NaiveDate::parse_from_str(s, f) {
                    Ok(d) => self.local_to_utc(d.and_hms_opt(0, 0, 0).expect("midnight")),
                    Err(_) => Err(format!("does not match {f}: {e}")),
                },
            },
        }
    }

    /// A wall time in the cast's zone as an instant. In the hour a clock is set back, the
    /// earlier of the two instants; a wall time skipped when the clock is set forward is an
    /// error.
    fn local_to_utc(&self, t: NaiveDateTime) -> Result<i64, String> {
        match self.zone.from_local_datetime(&t) {
            LocalResult::Single(x) => Ok(x.timestamp_micros()),
            LocalResult::Ambiguous(earlier, _) => Ok(earlier.timestamp_micros()),
            LocalResult::None => Err(format!("{t} does not exist in {} (skipped when the clocks went forward)", self.zone.name())),
        }
    }
}

fn kind_name(v: &Scalar) -> &'static str {
    match v {
        Scalar::Null => "null",
        Scalar::Str(_) => "string",
        Scalar::I64(_) => "int64",
        Scalar::F64(_) => "float64",
        Scalar::Bool(_) => "bool",
        Scalar::Date(_) => "date",
        Scalar::Ts(_) => "timestamp",
        Scalar::Dec(..) => "decimal",
    }
}

fn fits(v: i128, p: u8) -> bool {
    v.unsigned_abs() < 10u128.pow(p as u32)
}

/// `v` with scale `from` as a value with scale `to` and at most `p` digits, exactly: dropping a
/// non-zero digit is an error, never a rounding.
fn rescale(v: i128, from: i8, p: u8, to: i8) -> Result<i128, String> {
    let out = if to >= from {
        v.checked_mul(10i128.pow((to - from) as u32)).ok_or("too many digits")?
    } else {
        let f = 10i128.pow((from - to) as u32);
        if v % f != 0 {
            return Err(format!("has more than {to} decimals"));
        }
        v / f
    };
    if !fits(out, p) {
        return Err(format!("does not fit decimal({p},{to}): more than {} digits before the point", p as i8 - to));
    }
    Ok(out)
}

/// Parse decimal text (`-1234.5`, `+0.25`, `7`) exactly, without a float on the way. Digits
/// beyond the scale must be zeros: `12.345` is an error for scale 2, never rounded.
pub fn parse_decimal(s: &str, p: u8, scale: i8) -> Result<i128, String> {
    let bad = || "not a decimal number (digits, an optional sign and point, no exponent or grouping)".to_string();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let scale_u = scale.max(0) as usize;
    let (kept, dropped) = if frac.len() > scale_u { frac.split_at(scale_u) } else { (frac, "") };
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("has more than {scale} decimals"));
    }
    let int = int.trim_start_matches('0');
    if int.len() > (p as usize).saturating_sub(scale_u) {
        return Err(format!("does not fit decimal({p},{scale}): more than {} digits before the point", p as i8 - scale));
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(kept.bytes()).chain(std::iter::repeat_n(b'0', scale_u - kept.len())) {
        v = v * 10 + (b - b'0') as i128;
    }
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(to: Kind, format: Option<&str>, zone: &str) -> Cast {
        Cast { to, format: format.map(str::to_string), zone: zone.parse().unwrap() }
    }

    fn ts(s: &str) -> Scalar {
        Scalar::Ts(DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros())
    }

    #[test]
    fn decimal_text_is_parsed_exactly() {
        assert_eq!(parse_decimal("1234.5", 18, 2), Ok(123450));
        assert_eq!(parse_decimal("-0.07", 18, 2), Ok(-7));
        assert_eq!(parse_decimal("+12.500", 18, 2), Ok(1250));
        assert_eq!(parse_decimal(".5", 3, 1), Ok(5));
        // 0.1 + 0.2 style noise never enters: 12345678901234567.89 keeps every digit.
        assert_eq!(parse_decimal("12345678901234567.89", 19, 2), Ok(1234567890123456789));
        assert!(parse_decimal("12.345", 18, 2).unwrap_err().contains("more than 2 decimals"));
        assert!(parse_decimal("1000", 4, 2).unwrap_err().contains("does not fit decimal(4,2)"));
        for bad in ["", "-", "1,5", "1e3", "12a", "1.2.3", " 1"] {
            assert!(parse_decimal(bad, 18, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_to_and_from_text() {
        let c = cast(Kind::Str, None, "UTC");
        assert_eq!(c.apply(Scalar::I64(-42)), Ok(Scalar::Str("-42".into())));
        assert_eq!(c.apply(Scalar::F64(0.1)), Ok(Scalar::Str("0.1".into())));
        assert_eq!(c.apply(Scalar::Dec(-5, 2)), Ok(Scalar::Str("-0.05".into())));
        assert_eq!(c.apply(Scalar::Bool(true)), Ok(Scalar::Str("true".into())));
        assert_eq!(cast(Kind::I64, None, "UTC").apply(Scalar::Str("17".into())), Ok(Scalar::I64(17)));
        assert!(cast(Kind::I64, None, "UTC").apply(Scalar::Str("17.5".into())).is_err());
        assert_eq!(cast(Kind::F64, None, "UTC").apply(Scalar::Str("2.5".into())), Ok(Scalar::F64(2.5)));
        assert!(cast(Kind::F64, None, "UTC").apply(Scalar::Str("NaN".into())).is_err());
        assert_eq!(cast(Kind::Bool, None, "UTC").apply(Scalar::Str("TRUE".into())), Ok(Scalar::Bool(true)));
        assert!(cast(Kind::Bool, None, "UTC").apply(Scalar::Str("yes".into())).is_err());
    }

    #[test]
    fn numbers_between_types() {
        assert_eq!(cast(Kind::Dec(18, 2), None, "UTC").apply(Scalar::F64(0.1)), Ok(Scalar::Dec(10, 2)));
        assert!(cast(Kind::Dec(18, 2), None, "UTC").apply(Scalar::F64(0.125)).is_err());
        assert_eq!(cast(Kind::Dec(10, 3), None, "UTC").apply(Scalar::Dec(1234, 2)), Ok(Scalar::Dec(12340, 3)));
        assert_eq!(cast(Kind::Dec(10, 1), None, "UTC").apply(Scalar::Dec(1230, 2)), Ok(Scalar::Dec(123, 1)));
        assert!(cast(Kind::Dec(10, 1), None, "UTC").apply(Scalar::Dec(1234, 2)).is_err());
        assert_eq!(cast(Kind::Dec(5, 2), None, "UTC").apply(Scalar::I64(999)), Ok(Scalar::Dec(99900, 2)));
        assert!(cast(Kind::Dec(4, 2), None, "UTC").apply(Scalar::I64(100)).is_err());
        assert_eq!(cast(Kind::I64, None, "UTC").apply(Scalar::Dec(1200, 2)), Ok(Scalar::I64(12)));
        assert!(cast(Kind::I64, None, "UTC").apply(Scalar::Dec(1201, 2)).is_err());
        assert_eq!(cast(Kind::I64, None, "UTC").apply(Scalar::F64(3.0)), Ok(Scalar::I64(3)));
        assert!(cast(Kind::I64, None, "UTC").apply(Scalar::F64(3.5)).is_err());
        assert!(cast(Kind::I64, None, "UTC").apply(Scalar::F64(1e19)).is_err());
        assert_eq!(cast(Kind::F64, None, "UTC").apply(Scalar::Dec(-125, 2)), Ok(Scalar::F64(-1.25)));
        assert_eq!(cast(Kind::Bool, None, "UTC").apply(Scalar::I64(0)), Ok(Scalar::Bool(false)));
        assert!(cast(Kind::Bool, None, "UTC").apply(Scalar::I64(2)).is_err());
        assert_eq!(cast(Kind::I64, None, "UTC").apply(Scalar::Bool(true)), Ok(Scalar::I64(1)));
    }

    #[test]
    fn which_casts_exist() {
        assert!(!castable(Kind::Bool, Kind::Date));
        assert!(!castable(Kind::Date, Kind::I64));
        assert!(!castable(Kind::Ts, Kind::F64));
        assert!(!castable(Kind::Dec(10, 2), Kind::Bool));
        assert!(castable(Kind::Str, Kind::Ts));
        assert!(castable(Kind::Date, Kind::Ts));
        assert!(takes_time_zone(Kind::Ts, Kind::Str) && !takes_time_zone(Kind::Str, Kind::Date));
        assert!(format_problem("%d.%m.%Y %H:%M", Kind::Date).is_some());
        assert!(format_problem("%d.%m.%Y %H:%M %Z", Kind::Ts).is_none());
    }

    #[test]
    fn dates_with_patterns() {
        let c = cast(Kind::Date, Some("%d/%m/%Y"), "UTC");
        let d = c.apply(Scalar::Str("31/12/2026".into())).unwrap();
        assert_eq!(text(&d).unwrap(), "2026-12-31");
        assert!(c.apply(Scalar::Str("2026-12-31".into())).unwrap_err().contains("does not match %d/%m/%Y"));
        assert!(c.apply(Scalar::Str("31/02/2026".into())).is_err());
        assert_eq!(cast(Kind::Str, Some("%d.%m.%Y"), "UTC").apply(d), Ok(Scalar::Str("31.12.2026".into())));
    }

    #[test]
    fn vienna_wall_times_become_utc_instants() {
        let c = cast(Kind::Ts, Some("%d.%m.%Y %H:%M"), "Europe/Vienna");
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(c.apply(Scalar::Str("15.01.2026 12:00".into())), Ok(ts("2026-01-15T11:00:00Z")));
        assert_eq!(c.apply(Scalar::Str("15.07.2026 12:00".into())), Ok(ts("2026-07-15T10:00:00Z")));
        // 29 March 2026, 02:00 -> 03:00: 02:30 never happens in Vienna.
        let gap = c.apply(Scalar::Str("29.03.2026 02:30".into())).unwrap_err();
        assert!(gap.contains("does not exist in Europe/Vienna"), "{gap}");
        assert_eq!(c.apply(Scalar::Str("29.03.2026 01:59".into())), Ok(ts("2026-03-29T00:59:00Z")));
        assert_eq!(c.apply(Scalar::Str("29.03.2026 03:00".into())), Ok(ts("2026-03-29T01:00:00Z")));
        // 25 October 2026, 03:00 -> 02:00: 02:30 happens twice; the earlier (summer time) is taken.
        assert_eq!(c.apply(Scalar::Str("25.10.2026 02:30".into())), Ok(ts("2026-10-25T00:30:00Z")));
        assert_eq!(c.apply(Scalar::Str("25.10.2026 03:00".into())), Ok(ts("2026-10-25T02:00:00Z")));
        // A pattern with an offset ignores the zone; a date-only pattern reads midnight.
        let o = cast(Kind::Ts, Some("%Y-%m-%d %H:%M %z"), "Europe/Vienna");
        assert_eq!(o.apply(Scalar::Str("2026-07-15 12:00 +0000".into())), Ok(ts("2026-07-15T12:00:00Z")));
        let d = cast(Kind::Ts, Some("%d.%m.%Y"), "Europe/Vienna");
        assert_eq!(d.apply(Scalar::Str("15.07.2026".into())), Ok(ts("2026-07-14T22:00:00Z")));
    }

    #[test]
    fn timestamps_are_written_in_the_zone() {
        let c = cast(Kind::Str, Some("%d.%m.%Y %H:%M %Z"), "Europe/Vienna");
        assert_eq!(c.apply(ts("2026-03-29T00:59:00Z")), Ok(Scalar::Str("29.03.2026 01:59 CET".into())));
        assert_eq!(c.apply(ts("2026-03-29T01:00:00Z")), Ok(Scalar::Str("29.03.2026 03:00 CEST".into())));
        assert_eq!(c.apply(ts("2026-10-25T00:30:00Z")), Ok(Scalar::Str("25.10.2026 02:30 CEST".into())));
        assert_eq!(c.apply(ts("2026-10-25T01:30:00Z")), Ok(Scalar::Str("25.10.2026 02:30 CET".into())));
        let plain = cast(Kind::Str, None, "Europe/Vienna");
        assert_eq!(plain.apply(ts("2026-07-15T10:00:00.5Z")), Ok(Scalar::Str("2026-07-15T12:00:00.500+02:00".into())));
        assert_eq!(cast(Kind::Str, None, "UTC").apply(ts("2026-07-15T10:00:00Z")), Ok(Scalar::Str("2026-07-15T10:00:00Z".into())));
    }

    #[test]
    fn dates_and_timestamps_in_a_zone() {
        let to_date = cast(Kind::Date, None, "Europe/Vienna");
        // 23:30 UTC on 14 July is already 15 July in Vienna.
        assert_eq!(text(&to_date.apply(ts("2026-07-14T23:30:00Z")).unwrap()).unwrap(), "2026-07-15");
        assert_eq!(text(&cast(Kind::Date, None, "UTC").apply(ts("2026-07-14T23:30:00Z")).unwrap()).unwrap(), "2026-07-14");
        let to_ts = cast(Kind::Ts, None, "Europe/Vienna");
        let d = cast(Kind::Date, None, "UTC").apply(Scalar::Str("2026-07-15".into())).unwrap();
        assert_eq!(to_ts.apply(d), Ok(ts("2026-07-14T22:00:00Z")));
        // Without a format: RFC 3339 with an offset, or a wall time in the zone.
        assert_eq!(to_ts.apply(Scalar::Str("2026-01-15T12:00:00+00:00".into())), Ok(ts("2026-01-15T12:00:00Z")));
        assert_eq!(to_ts.apply(Scalar::Str("2026-01-15 12:00:00".into())), Ok(ts("2026-01-15T11:00:00Z")));
    }
}
