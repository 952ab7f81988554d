//! Filters and the time window as Arrow compute kernels over whole batches. Literal values are
//! cast to the column's type once, when the predicate is built: a value that does not fit is a
//! validation error naming the filter.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, PrimitiveArray, Scalar, StringArray};
use arrow::compute::kernels::{boolean, cmp, comparison};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::FormatOptions;
use serde_json::Value;

use crate::model::spec::{FILTER_OPS, FilterOp};
use crate::model::{ExportSpec, ValidationErrors};

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

enum Cond {
    Cmp(usize, CmpOp, Scalar<ArrayRef>),
    In(usize, Vec<Scalar<ArrayRef>>),
    IsNull(usize),
    IsNotNull(usize),
    Contains(usize, Scalar<ArrayRef>),
}

/// All conditions of a spec (AND). Empty when there are none.
#[derive(Default)]
pub struct Predicate {
    conds: Vec<Cond>,
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Timestamp(..) => "timestamp (RFC 3339, e.g. 2026-10-01T00:00:00Z)".into(),
        DataType::Date32 | DataType::Date64 => "date (YYYY-MM-DD)".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Boolean => "boolean".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// A JSON value as a one-element array of the column's type.
fn literal(value: &Value, dt: &DataType) -> Option<Scalar<ArrayRef>> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    if let DataType::Timestamp(unit, tz) = dt {
        return Some(Scalar::new(timestamp_literal(&text, *unit, tz.clone())?));
    }
    let source: ArrayRef = Arc::new(StringArray::from(vec![text]));
    let opts = CastOptions { safe: false, format_options: FormatOptions::default() };
    let arr = cast_with_options(&source, dt, &opts).ok()?;
    (arr.null_count() == 0).then(|| Scalar::new(arr))
}

/// An RFC 3339 instant in the column's unit and zone. Arrow's string casts would take a
/// zone-less string as local time; here an offset is required.
fn timestamp_literal(s: &str, unit: TimeUnit, tz: Option<Arc<str>>) -> Option<ArrayRef> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(match unit {
        TimeUnit::Second => Arc::new(PrimitiveArray::<TimestampSecondType>::from(vec![t.timestamp()]).with_timezone_opt(tz)),
        TimeUnit::Millisecond => {
            Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(vec![t.timestamp_millis()]).with_timezone_opt(tz))
        }
        TimeUnit::Microsecond => {
            Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(vec![t.timestamp_micros()]).with_timezone_opt(tz))
        }
        TimeUnit::Nanosecond => {
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(vec![t.timestamp_nanos_opt()?]).with_timezone_opt(tz))
        }
    })
}

/// The UTC date of an RFC 3339 instant, for time windows on date columns: `[from, to)` on
/// dates keeps the days from `from`'s day up to, not including, `to`'s day (or including it
/// when `to` is later than that day's midnight).
fn date_bound(s: &str, is_upper: bool) -> Option<ArrayRef> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&chrono::Utc);
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let mut days = (t.date_naive() - epoch).num_days() as i32;
    if is_upper && t.time() != chrono::NaiveTime::MIN {
        days += 1;
    }
    Some(Arc::new(Date32Array::from(vec![days])))
}

fn is_text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl Predicate {
    /// Build against the schema of the read batches.
    pub fn build(schema: &Schema, spec: &ExportSpec) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let mut conds = Vec::new();
        for (i, f) in spec.filters.iter().enumerate() {
            let Ok(col) = schema.index_of(&f.column) else {
                errs.push(format!("/filters/{i}/column"), f.column.as_str(), "a column of the source");
                continue;
            };
            let dt = schema.field(col).data_type();
            let vp = format!("/filters/{i}/value");
            let want = || format!("a value of the column's type, {}", type_name(dt));
            let one = |v: &Value, errs: &mut ValidationErrors| -> Option<Scalar<ArrayRef>> {
                let s = literal(v, dt);
                if s.is_none() {
                    errs.push(vp.clone(), v.clone(), want());
                }
                s
            };
            let value = f.value.clone().unwrap_or(Value::Null);
            let op = match f.op {
                FilterOp::Eq => Some(CmpOp::Eq),
                FilterOp::Ne => Some(CmpOp::Ne),
                FilterOp::Lt => Some(CmpOp::Lt),
                FilterOp::Le => Some(CmpOp::Le),
                FilterOp::Gt => Some(CmpOp::Gt),
                FilterOp::Ge => Some(CmpOp::Ge),
                _ => None,
            };
            if let Some(op) = op {
                if let Some(s) = one(&value, &mut errs) {
                    conds.push(Cond::Cmp(col, op, s));
                }
                continue;
            }
            match f.op {
                FilterOp::IsNull => conds.push(Cond::IsNull(col)),
                FilterOp::IsNotNull => conds.push(Cond::IsNotNull(col)),
                FilterOp::In => {
                    let items = value.as_array().cloned().unwrap_or_default();
                    let scalars: Vec<_> = items.iter().filter_map(|v| one(v, &mut errs)).collect();
                    if scalars.len() == items.len() && !items.is_empty() {
                        conds.push(Cond::In(col, scalars));
                    }
                }
                FilterOp::Between => {
                    let items = value.as_array().cloned().unwrap_or_default();
                    if let [lo, hi] = items.as_slice()
                        && let (Some(lo), Some(hi)) = (one(lo, &mut errs), one(hi, &mut errs))
                    {
                        conds.push(Cond::Cmp(col, CmpOp::Ge, lo));
                        conds.push(Cond::Cmp(col, CmpOp::Le, hi));
                    }
                }
                FilterOp::Contains => {
                    if !is_text(dt) {
                        errs.push(
                            format!("/filters/{i}/op"),
                            "contains",
                            format!("an operator for a {} column: contains works on text only; use one of {FILTER_OPS}", type_name(dt)),
                        );
                    } else if let Some(s) = one(&value, &mut errs) {
                        conds.push(Cond::Contains(col, s));
                    }
                }
                _ => unreachable!("comparison operators handled above"),
            }
        }
        if let Some(tr) = &spec.time_range {
            match schema.index_of(&tr.column) {
                Err(_) => errs.push("/time_range/column", tr.column.as_str(), "a timestamp or date column of the source"),
                Ok(col) => {
                    let dt = schema.field(col).data_type();
                    for (field, bound, op) in [("from", &tr.from, CmpOp::Ge), ("to", &tr.to, CmpOp::Lt)] {
                        let Some(s) = bound else { continue };
                        let lit = match dt {
                            DataType::Timestamp(unit, tz) => timestamp_literal(s, *unit, tz.clone()),
                            DataType::Date32 => date_bound(s, field == "to"),
                            _ => {
                                errs.push(
                                    "/time_range/column",
                                    tr.column.as_str(),
                                    format!("a timestamp or date column; this one is {}", type_name(dt)),
                                );
                                break;
                            }
                        };
                        match lit {
                            Some(a) => conds.push(Cond::Cmp(col, op, Scalar::new(a))),
                            None => errs.push(format!("/time_range/{field}"), s.as_str(), "an RFC 3339 timestamp with offset"),
                        }
                    }
                }
            }
        }
        errs.into_result()?;
        Ok(Self { conds })
    }

    /// The rows that pass every condition; `None` when there are no conditions. Nulls never
    /// pass a comparison.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>, ArrowError> {
        let mut acc: Option<BooleanArray> = None;
        for cond in &self.conds {
            let m = match cond {
                Cond::Cmp(c, op, s) => {
                    let col = batch.column(*c);
                    match op {
                        CmpOp::Eq => cmp::eq(col, s)?,
                        CmpOp::Ne => cmp::neq(col, s)?,
                        CmpOp::Lt => cmp::lt(col, s)?,
                        CmpOp::Le => cmp::lt_eq(col, s)?,
                        CmpOp::Gt => cmp::gt(col, s)?,
                        CmpOp::Ge => cmp::gt_eq(col, s)?,
                    }
                }
                Cond::In(c, values) => {
                    let col = batch.column(*c);
                    let mut any: Option<BooleanArray> = None;
                    for v in values {
                        let m = cmp::eq(col, v)?;
                        any = Some(match any {
                            None => m,
                            Some(a) => boolean::or_kleene(&a, &m)?,
                        });
                    }
                    any.expect("`in` has at least one value")
                }
                Cond::IsNull(c) => arrow::compute::is_null(batch.column(*c))?,
                Cond::IsNotNull(c) => arrow::compute::is_not_null(batch.column(*c))?,
                Cond::Contains(c, s) => comparison::contains(batch.column(*c), s)?,
            };
            acc = Some(match acc {
                None => m,
                Some(a) => boolean::and_kleene(&a, &m)?,
            });
        }
        Ok(acc)
    }
}
