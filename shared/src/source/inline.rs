//! The inline source: rows carried in the request. Column types are declared
//! (`source.schema`) or inferred from the first non-null value of each column; every value is
//! checked against its column's type when the export is created.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::{Batches, SourceError};
use crate::model::ValidationErrors;
use crate::model::spec::SourceSpec;
use crate::model::validation::pointer_token;

/// The Arrow type of a declared type name: `string`, `int64`, `float64`, `bool`, `date`,
/// `timestamp` (UTC, microseconds) or `decimal(P,S)`.
pub fn parse_decl_type(s: &str) -> Option<DataType> {
    let t = s.trim().to_ascii_lowercase();
    Some(match t.as_str() {
        "string" | "text" => DataType::Utf8,
        "int64" | "integer" | "int" => DataType::Int64,
        "float64" | "float" | "double" => DataType::Float64,
        "bool" | "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => {
            let inner = t.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                return None;
            }
            DataType::Decimal128(p, s)
        }
    })
}

fn infer_type(v: &Value) -> DataType {
    match v {
        Value::Bool(_) => DataType::Boolean,
        Value::Number(n) if n.is_i64() || n.is_u64() => DataType::Int64,
        Value::Number(_) => DataType::Float64,
        _ => DataType::Utf8,
    }
}

/// The schema: declared columns first (in order), then any other key in order of first
/// appearance, typed by its first non-null value.
pub fn schema(src: &SourceSpec) -> Result<SchemaRef, ValidationErrors> {
    let rows = src.rows.as_deref().unwrap_or(&[]);
    let mut fields: Vec<(String, Option<DataType>)> = Vec::new();
    let mut errs = ValidationErrors::new();
    if let Some(decl) = &src.schema {
        for (i, c) in decl.iter().enumerate() {
            match parse_decl_type(&c.data_type) {
                Some(dt) => fields.push((c.name.clone(), Some(dt))),
                None => errs.push(
                    format!("/source/schema/{i}/type"),
                    c.data_type.as_str(),
                    "string, int64, float64, bool, date, timestamp or decimal(P,S)",
                ),
            }
        }
    }
    for row in rows {
        for (k, v) in row {
            match fields.iter_mut().find(|(n, _)| n == k) {
                Some((_, t @ None)) if !v.is_null() => *t = Some(infer_type(v)),
                Some(_) => {}
                None => fields.push((k.clone(), (!v.is_null()).then(|| infer_type(v)))),
            }
        }
    }
    errs.into_result()?;
    Ok(Arc::new(Schema::new(fields.into_iter().map(|(n, t)| Field::new(n, t.unwrap_or(DataType::Utf8), true)).collect::<Vec<_>>())))
}

/// Build the rows `start..end` as one batch of the named columns, reporting every value that
/// does not fit its column's type.
pub fn build(src: &SourceSpec, schema: &Schema, start: usize, end: usize, columns: &[String]) -> Result<RecordBatch, ValidationErrors> {
    let rows = &src.rows.as_deref().unwrap_or(&[])[start..end];
    let mut errs = ValidationErrors::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    let mut fields = Vec::new();
    for name in columns {
        let Ok(field) = schema.field_with_name(name) else { continue };
        arrays.push(column(rows, start, field, &mut errs));
        fields.push(field.clone());
    }
    errs.into_result()?;
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| ValidationErrors::single("/source/rows", Value::Null, e.to_string()))
}

/// Check every row of an inline source against its schema.
pub fn check(src: &SourceSpec, schema: &Schema) -> Result<(), ValidationErrors> {
    let n = src.rows.as_ref().map_or(0, Vec::len);
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    build(src, schema, 0, n, &names).map(|_| ())
}

pub(super) fn read(src: &SourceSpec, schema: SchemaRef, start: usize, end: usize, columns: &[String]) -> Result<Batches, SourceError> {
    let batch = build(src, &schema, start, end, columns).map_err(SourceError::Invalid)?;
    Ok(Box::new(std::iter::once(Ok(batch))))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn column(rows: &[Map<String, Value>], offset: usize, field: &Field, errs: &mut ValidationErrors) -> ArrayRef {
    let name = field.name();
    let pointer = |i: usize| format!("/source/rows/{}/{}", offset + i, pointer_token(name));
    let values = rows.iter().map(|r| r.get(name).filter(|v| !v.is_null()));
    macro_rules! build_with {
        ($builder:expr, $allowed:expr, $parse:expr) => {{
            let mut b = $builder;
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(v) => match $parse(v) {
                        Some(x) => b.append_value(x),
                        None => {
                            errs.push(pointer(i), v.clone(), $allowed);
                            b.append_null();
                        }
                    },
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match field.data_type() {
        DataType::Int64 => build_with!(Int64Builder::new(), "an integer (int64)", |v: &Value| v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))),
        DataType::Float64 => build_with!(Float64Builder::new(), "a number", |v: &Value| v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))),
        DataType::Boolean => build_with!(BooleanBuilder::new(), "true or false", |v: &Value| v.as_bool()),
        DataType::Date32 => build_with!(Date32Builder::new(), "a date YYYY-MM-DD", |v: &Value| {
            let d = chrono::NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok()?;
            Some((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
        }),
        DataType::Timestamp(_, _) => {
            let a = build_with!(TimestampMicrosecondBuilder::new(), "an RFC 3339 timestamp with offset", |v: &Value| {
                Some(chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?.timestamp_micros())
            });
            Arc::new(arrow::array::TimestampMicrosecondArray::from(a.to_data()).with_timezone("UTC"))
        }
        DataType::Decimal128(p, s) => {
            let (p, s) = (*p, *s);
            let a = build_with!(
                Decimal128Builder::new(),
                format!("a decimal with at most {} digits before and {s} after the point", p as i8 - s),
                |v: &Value| { parse_decimal(&text_of(v), p, s) }
            );
            Arc::new(arrow::array::Decimal128Array::from(a.to_data()).with_precision_and_scale(p, s).expect("checked precision"))
        }
        _ => build_with!(StringBuilder::new(), "a value", |v: &Value| Some(text_of(v))),
    }
}

/// Parse a decimal exactly (no binary floating point on the way): `-12.5` at scale 2 is
/// -1250. Too many fraction digits or too many digits in all is `None`.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let scale = scale.max(0) as usize;
    if frac.len() > scale {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() + scale > precision as usize {
        return None;
    }
    let mut digits = String::with_capacity(int.len() + scale);
    digits.push_str(int);
    digits.push_str(frac);
    digits.extend(std::iter::repeat_n('0', scale - frac.len()));
    let v: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("123.45", 18, 2), Some(12345));
        assert_eq!(parse_decimal("-0.5", 18, 2), Some(-50));
        assert_eq!(parse_decimal("7", 18, 2), Some(700));
        assert_eq!(parse_decimal("1.230", 18, 2), Some(123));
        assert_eq!(parse_decimal("1.234", 18, 2), None);
        assert_eq!(parse_decimal("1e3", 18, 2), None);
        assert_eq!(parse_decimal("12345678901234567", 18, 2), None);
        assert_eq!(parse_decimal("", 18, 2), None);
    }

    #[test]
    fn bad_values_are_reported_with_their_row_and_column() {
        let src: SourceSpec = serde_json::from_value(serde_json::json!({
            "type": "inline",
            "schema": [{"name": "amount", "type": "decimal(10,2)"}, {"name": "at", "type": "timestamp"}],
            "rows": [{"amount": "1.00", "at": "2026-01-01T00:00:00Z"}, {"amount": "1.001", "at": "yesterday"}]
        }))
        .unwrap();
        let schema = schema(&src).unwrap();
        let err = check(&src, &schema).unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/source/rows/1/amount", "/source/rows/1/at"]);
    }
}
