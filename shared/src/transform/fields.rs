//! Field mapping at run time: each output column from a read column or a constant, through a
//! value map, a cast and a mask (in that order). Built against the read schema, which is where
//! the spec's references to columns and types are checked; applied to each filtered batch by
//! [`super::RowPipeline::project`], so every format sees the mapped columns and their types.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder, Decimal128Array, Decimal128Builder, Float64Array,
    Float64Builder, Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
    new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::cast::{self, Cast, Kind, Scalar};
use crate::model::ValidationErrors;
use crate::model::fields::{FieldSpec, MapDefault, MaskSpec, OnError};

/// Longest piece of an offending value quoted in an error.
const QUOTE_CHARS: usize = 100;

/// The mapping of all output columns.
pub struct FieldPlan {
    fields: Vec<PlannedField>,
    /// The tenant's hash salt, when a field hashes (set by the stage before `apply`).
    hash_key: Option<[u8; 32]>,
}

struct PlannedField {
    name: String,
    source: Source,
    steps: Option<Steps>,
    out: DataType,
    nullable: bool,
}

enum Source {
    /// Index into the read batch, and the column's name.
    Column(usize, String),
    /// A one-row array, repeated.
    Constant(ArrayRef),
}

/// What happens to a column's values (absent: passed through as they are).
struct Steps {
    /// Arrow type the read column is converted to first.
    canonical: DataType,
    value_map: Option<(HashMap<String, Option<String>>, Fallback)>,
    cast: Option<Cast>,
    mask: Option<Mask>,
    on_error: OnError,
}

enum Fallback {
    Keep,
    Value(Option<String>),
}

enum Mask {
    KeepLast(usize, char),
    Hash,
    Redact(Option<String>),
}

/// The JSON text of a value-map scalar (`None` for null).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A one-row array holding `value` as `type_name` (or the type the JSON value implies). `Err`
/// says what would be allowed.
pub fn constant_array(value: &Value, type_name: Option<&str>, rows: usize) -> Result<ArrayRef, String> {
    let kind = match type_name {
        Some(t) => {
            let dt = crate::source::inline::parse_decl_type(t).ok_or_else(|| crate::model::fields::CAST_TYPES.to_string())?;
            Kind::of(&dt).ok_or_else(|| crate::model::fields::CAST_TYPES.to_string())?
        }
        None => match value {
            Value::String(_) => Kind::Str,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::I64,
            Value::Number(_) => Kind::F64,
            _ => return Err("a string, number or boolean".into()),
        },
    };
    let given = match value {
        Value::String(s) => Scalar::Str(s.clone()),
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) if n.is_i64() => Scalar::I64(n.as_i64().expect("checked")),
        Value::Number(n) => match kind {
            // A number given for a decimal is read from its JSON text, exactly.
            Kind::Dec(..) => Scalar::Str(n.to_string()),
            _ => Scalar::F64(n.as_f64().ok_or("a finite number")?),
        },
        _ => return Err("a string, number or boolean".into()),
    };
    let c = Cast { to: kind, format: None, zone: chrono_tz::Tz::UTC };
    let v = c.apply(given).map_err(|why| format!("a value of type {}: {why}", kind.name()))?;
    let mut b = Builder::new(kind, rows);
    for _ in 0..rows {
        b.push(&v);
    }
    Ok(b.finish())
}

impl FieldPlan {
    /// Plan `fields` against the read schema (columns as read, dictionaries unpacked). Every
    /// problem is reported with the pointer of the field.
    pub fn build(read: &Schema, fields: &[FieldSpec]) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let mut planned = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            let p = format!("/fields/{i}");
            if let Some(c) = &f.constant {
                match constant_array(c, f.data_type.as_deref(), 1) {
                    Ok(a) => planned.push(PlannedField {
                        name: f.name.clone(),
                        out: a.data_type().clone(),
                        source: Source::Constant(a),
                        steps: None,
                        nullable: true,
                    }),
                    Err(why) => errs.push(format!("{p}/constant"), c.clone(), why),
                }
                continue;
            }
            let Some(from) = &f.from else { continue };
            let Ok(index) = read.index_of(from) else { continue }; // reported by the pipeline
            let dt = read.field(index).data_type();
            let source = Source::Column(index, from.clone());
            if f.value_map.is_none() && f.cast.is_none() && f.mask.is_none() {
                planned.push(PlannedField { name: f.name.clone(), source, steps: None, out: dt.clone(), nullable: true });
                continue;
            }
            let Some(canonical) = cast::canonical_type(dt) else {
                errs.push(
                    format!("{p}/from"),
                    from.as_str(),
                    format!("a column that can be mapped; `{from}` is {dt}, which can only be renamed"),
                );
                continue;
            };
            let mut kind = Kind::of(&canonical).expect("canonical types have a kind");
            let value_map = f.value_map.as_ref().map(|m| {
                kind = Kind::Str;
                let values = m.values.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect();
                let fallback = match &m.default {
                    MapDefault::Keep => Fallback::Keep,
                    MapDefault::Null => Fallback::Value(None),
                    MapDefault::Value(v) => Fallback::Value(scalar_text(v)),
                };
                (values, fallback)
            });
            let mut cast = None;
            if let Some(c) = &f.cast {
                let Some(to) = crate::source::inline::parse_decl_type(&c.to).as_ref().and_then(Kind::of) else { continue };
                let Ok(zone) = c.time_zone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>() else { continue };
                if !cast::castable(kind, to) {
                    let what =
                        if f.value_map.is_some() { "the value map's text".to_string() } else { format!("`{from}` ({})", kind.name()) };
                    errs.push(format!("{p}/cast/to"), c.to.as_str(), format!("a type {what} can be cast to: {}", allowed_targets(kind)));
                    continue;
                }
                if let Some(fmt) = &c.format {
                    if !cast::takes_format(kind, to) {
                        errs.push(
                            format!("{p}/cast/format"),
                            fmt.as_str(),
                            format!(
                                "no format for a cast from {} to {}: it applies between string and date or timestamp",
                                kind.name(),
                                to.name()
                            ),
                        );
                    } else if let Some(why) = cast::format_problem(fmt, if to == Kind::Str { kind } else { to }) {
                        errs.push(format!("{p}/cast/format"), fmt.as_str(), why);
                    }
                }
                if let Some(tz) = &c.time_zone
                    && !cast::takes_time_zone(kind, to)
                {
                    errs.push(
                        format!("{p}/cast/time_zone"),
                        tz.as_str(),
                        format!(
                            "no time zone for a cast from {} to {}: it applies to casts to or from a timestamp",
                            kind.name(),
                            to.name()
                        ),
                    );
                }
                cast = Some(Cast { to, format: c.format.clone(), zone });
                kind = to;
            }
            let mask = f.mask.as_ref().map(|m| {
                kind = Kind::Str;
                match m {
                    MaskSpec::KeepLast { n, with } => {
                        Mask::KeepLast(*n as usize, with.as_deref().and_then(|w| w.chars().next()).unwrap_or('*'))
                    }
                    MaskSpec::Hash => Mask::Hash,
                    MaskSpec::Redact { text, null } => {
                        Mask::Redact(if *null { None } else { Some(text.clone().unwrap_or_else(|| "[redacted]".into())) })
                    }
                }
            });
            let steps = Steps { canonical, value_map, cast, mask, on_error: f.on_error };
            planned.push(PlannedField { name: f.name.clone(), source, steps: Some(steps), out: kind.data_type(), nullable: true });
        }
        errs.into_result()?;
        Ok(Self { fields: planned, hash_key: None })
    }

    /// Whether a field hashes its values.
    pub fn needs_hash_key(&self) -> bool {
        self.fields.iter().any(|f| matches!(f.steps.as_ref().and_then(|s| s.mask.as_ref()), Some(Mask::Hash)))
    }

    pub fn set_hash_key(&mut self, key: [u8; 32]) {
        self.hash_key = Some(key);
    }

    /// The output schema.
    pub fn schema(&self) -> Schema {
        Schema::new(self.fields.iter().map(|f| Field::new(&f.name, f.out.clone(), f.nullable)).collect::<Vec<_>>())
    }

    /// Indices of the read columns the fields take, in output order (constants are skipped).
    pub fn source_indices(&self) -> Vec<usize> {
        self.fields
            .iter()
            .filter_map(|f| match f.source {
                Source::Column(i, _) => Some(i),
                Source::Constant(_) => None,
            })
            .collect()
    }

    /// The output columns of a filtered batch. `first_row` is the 1-based number of the batch's
    /// first row and `place` says where rows are counted, both for error messages.
    pub fn apply(&self, batch: &arrow::record_batch::RecordBatch, first_row: u64, place: &str) -> Result<Vec<ArrayRef>, ArrowError> {
        let rows = batch.num_rows();
        let mut out = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let column = match &f.source {
                Source::Constant(one) => {
                    let idx = arrow::array::UInt32Array::from(vec![0u32; rows]);
                    arrow::compute::take(one.as_ref(), &idx, None)?
                }
                Source::Column(i, from) => match &f.steps {
                    None => Arc::clone(batch.column(*i)),
                    Some(steps) => {
                        let ctx = ErrorContext { field: &f.name, from, first_row, place };
                        self.map_column(batch.column(*i), steps, f.out.clone(), &ctx)?
                    }
                },
            };
            out.push(column);
        }
        Ok(out)
    }

    fn map_column(&self, column: &ArrayRef, steps: &Steps, out: DataType, ctx: &ErrorContext) -> Result<ArrayRef, ArrowError> {
        let column =
            if column.data_type() == &steps.canonical { Arc::clone(column) } else { arrow::compute::cast(column, &steps.canonical)? };
        if column.null_count() == column.len() {
            return Ok(new_null_array(&out, column.len()));
        }
        let reader = Reader::new(&column)?;
        let mut b = Builder::new(Kind::of(&out).expect("output types have a kind"), column.len());
        let mac = match (&steps.mask, &self.hash_key) {
            (Some(Mask::Hash), Some(k)) => Some(<Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length")),
            (Some(Mask::Hash), None) => return Err(ArrowError::ComputeError("internal: the hash salt was not loaded".into())),
            _ => None,
        };
        for row in 0..column.len() {
            let mut v = reader.get(row);
            if v == Scalar::Null {
                b.push(&v);
                continue;
            }
            if let Some((values, fallback)) = &steps.value_map {
                let t = cast::text(&v).unwrap_or_default();
                v = match values.get(&t) {
                    Some(r) => r.clone().map(Scalar::Str).unwrap_or(Scalar::Null),
                    None => match fallback {
                        Fallback::Keep => Scalar::Str(t),
                        Fallback::Value(r) => r.clone().map(Scalar::Str).unwrap_or(Scalar::Null),
                    },
                };
            }
            if let Some(c) = &steps.cast {
                let before = v.clone();
                v = match c.apply(v) {
                    Ok(x) => x,
                    Err(_) if steps.on_error == OnError::Null => Scalar::Null,
                    Err(why) => return Err(ctx.error(row, &before, &c.to.name(), &why)),
                };
            }
            if let Some(m) = &steps.mask
                && let Some(t) = cast::text(&v)
            {
                v = match m {
                    Mask::KeepLast(n, with) => Scalar::Str(keep_last(&t, *n, *with)),
                    Mask::Hash => {
                        let mut m = mac.clone().expect("made above");
                        m.update(t.as_bytes());
                        Scalar::Str(hex::encode(m.finalize().into_bytes()))
                    }
                    Mask::Redact(r) => r.clone().map(Scalar::Str).unwrap_or(Scalar::Null),
                };
            }
            b.push(&v);
        }
        Ok(b.finish())
    }
}

fn allowed_targets(from: Kind) -> String {
    let all = [Kind::Str, Kind::I64, Kind::F64, Kind::Bool, Kind::Dec(38, 0), Kind::Date, Kind::Ts];
    all.iter()
        .filter(|k| cast::castable(from, **k))
        .map(|k| if matches!(k, Kind::Dec(..)) { "decimal(P,S)".to_string() } else { k.name() })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replace all but the last `n` characters by `with`; a value of `n` characters or fewer is
/// replaced whole (showing all of a short value would not hide it).
pub fn keep_last(s: &str, n: usize, with: char) -> String {
    let len = s.chars().count();
    if len <= n {
        return std::iter::repeat_n(with, len).collect();
    }
    let mut out: String = std::iter::repeat_n(with, len - n).collect();
    out.extend(s.chars().skip(len - n));
    out
}

struct ErrorContext<'a> {
    field: &'a str,
    from: &'a str,
    first_row: u64,
    place: &'a str,
}

impl ErrorContext<'_> {
    fn error(&self, row: usize, value: &Scalar, to: &str, why: &str) -> ArrowError {
        let text = cast::text(value).unwrap_or_default();
        let quoted: String = text.chars().take(QUOTE_CHARS).collect();
        let more = if text.chars().count() > QUOTE_CHARS { "..." } else { "" };
        ArrowError::InvalidArgumentError(format!(
            "row {} {}: column `{}` (from source column `{}`): cannot cast {:?}{more} to {to}: {why} (set the field's on_error to \"null\" to write null instead)",
            self.first_row + row as u64,
            self.place,
            self.field,
            self.from,
            quoted,
        ))
    }
}

/// Values of a canonical column, one at a time.
enum Reader<'a> {
    Str(&'a StringArray),
    I64(&'a Int64Array),
    F64(&'a Float64Array),
    Bool(&'a BooleanArray),
    Date(&'a Date32Array),
    Ts(&'a TimestampMicrosecondArray),
    Dec(&'a Decimal128Array, i8),
}

impl<'a> Reader<'a> {
    fn new(a: &'a ArrayRef) -> Result<Self, ArrowError> {
        let bad = || ArrowError::ComputeError(format!("internal: a column of type {} was not converted", a.data_type()));
        let any = a.as_any();
        Ok(match a.data_type() {
            DataType::Utf8 => Reader::Str(any.downcast_ref().ok_or_else(bad)?),
            DataType::Int64 => Reader::I64(any.downcast_ref().ok_or_else(bad)?),
            DataType::Float64 => Reader::F64(any.downcast_ref().ok_or_else(bad)?),
            DataType::Boolean => Reader::Bool(any.downcast_ref().ok_or_else(bad)?),
            DataType::Date32 => Reader::Date(any.downcast_ref().ok_or_else(bad)?),
            DataType::Timestamp(..) => Reader::Ts(any.downcast_ref().ok_or_else(bad)?),
            DataType::Decimal128(_, s) => Reader::Dec(any.downcast_ref().ok_or_else(bad)?, *s),
            _ => return Err(bad()),
        })
    }

    fn get(&self, i: usize) -> Scalar {
        macro_rules! val {
            ($a:expr, $f:expr) => {
                if $a.is_null(i) { Scalar::Null } else { $f($a.value(i)) }
            };
        }
        match self {
            Reader::Str(a) => val!(a, |v: &str| Scalar::Str(v.to_string())),
            Reader::I64(a) => val!(a, Scalar::I64),
            Reader::F64(a) => val!(a, Scalar::F64),
            Reader::Bool(a) => val!(a, Scalar::Bool),
            Reader::Date(a) => val!(a, Scalar::Date),
            Reader::Ts(a) => val!(a, Scalar::Ts),
            Reader::Dec(a, s) => val!(a, |v| Scalar::Dec(v, *s)),
        }
    }
}

/// Collects values of one kind into an array.
enum Builder {
    Str(StringBuilder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Dec(Decimal128Builder),
}

impl Builder {
    fn new(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Str => Builder::Str(StringBuilder::with_capacity(rows, rows * 16)),
            Kind::I64 => Builder::I64(Int64Builder::with_capacity(rows)),
            Kind::F64 => Builder::F64(Float64Builder::with_capacity(rows)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            Kind::Ts => Builder::Ts(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")),
            Kind::Dec(p, s) => {
                Builder::Dec(Decimal128Builder::with_capacity(rows).with_precision_and_scale(p, s).expect("precision checked by the spec"))
            }
        }
    }

    /// Append a value the steps made: of this builder's kind, or null.
    fn push(&mut self, v: &Scalar) {
        match (self, v) {
            (Builder::Str(b), Scalar::Str(s)) => b.append_value(s),
            (Builder::I64(b), Scalar::I64(x)) => b.append_value(*x),
            (Builder::F64(b), Scalar::F64(x)) => b.append_value(*x),
            (Builder::Bool(b), Scalar::Bool(x)) => b.append_value(*x),
            (Builder::Date(b), Scalar::Date(x)) => b.append_value(*x),
            (Builder::Ts(b), Scalar::Ts(x)) => b.append_value(*x),
            (Builder::Dec(b), Scalar::Dec(x, _)) => b.append_value(*x),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::I64(b), _) => b.append_null(),
            (Builder::F64(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
            (Builder::Ts(b), _) => b.append_null(),
            (Builder::Dec(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Ts(mut b) => Arc::new(b.finish()),
            Builder::Dec(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimeUnit};
    use arrow::record_batch::RecordBatch;
    use serde_json::json;

    use super::*;
    use crate::model::ExportSpec;
    use crate::transform::RowPipeline;

    fn source() -> (Schema, RecordBatch) {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("type", DataType::Utf8, true),
            Field::new("amount_text", DataType::Utf8, true),
            Field::new("iban", DataType::Utf8, true),
            Field::new("booked_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("flag", DataType::Boolean, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3)])),
                Arc::new(StringArray::from(vec![Some("C"), Some("D"), Some("X")])),
                Arc::new(StringArray::from(vec![Some("12.50"), None, Some("1,5")])),
                Arc::new(StringArray::from(vec![Some("AT611904300234573201"), Some("DE12"), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_774_746_000_000_000), Some(0), None]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    fn spec(fields: Value) -> ExportSpec {
        ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": []}, "format": "csv", "fields": fields})).unwrap()
    }

    fn pipeline(fields: Value) -> Result<RowPipeline, ValidationErrors> {
        let (schema, _) = source();
        let s = spec(fields);
        s.validate()?;
        RowPipeline::build(&schema, &s)
    }

    /// The source batch as the pipeline reads it: its read columns only.
    fn read(p: &RowPipeline) -> RecordBatch {
        let (schema, batch) = source();
        let idx: Vec<usize> = p.read_columns.iter().map(|c| schema.index_of(c).unwrap()).collect();
        batch.project(&idx).unwrap()
    }

    fn run(fields: Value) -> Result<RecordBatch, ArrowError> {
        let mut p = pipeline(fields).unwrap();
        p.set_hash_key([1; 32]);
        let batch = read(&p);
        let read = p.filter(batch)?.unwrap();
        p.project(&read)
    }

    fn strings(b: &RecordBatch, i: usize) -> Vec<Option<String>> {
        b.column(i).as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn rename_reorder_and_constants() {
        let b = run(json!([
            {"name": "kind", "from": "type"},
            {"name": "ident", "from": "id"},
            {"name": "system", "constant": "core"},
            {"name": "version", "constant": 2, "type": "int64"},
            {"name": "rate", "constant": "0.125", "type": "decimal(5,3)"}
        ]))
        .unwrap();
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["kind", "ident", "system", "version", "rate"]);
        assert_eq!(strings(&b, 0), [Some("C".into()), Some("D".into()), Some("X".into())]);
        assert_eq!(b.column(1).as_primitive::<Int64Type>().values().to_vec(), [1, 2, 3]);
        assert_eq!(strings(&b, 2), vec![Some("core".to_string()); 3]);
        assert_eq!(b.column(3).as_primitive::<Int64Type>().values().to_vec(), [2, 2, 2]);
        assert_eq!(b.schema().field(4).data_type(), &DataType::Decimal128(5, 3));
        assert_eq!(b.column(4).as_primitive::<arrow::datatypes::Decimal128Type>().value(0), 125);
    }

    #[test]
    fn value_maps_keep_null_or_replace() {
        let map = |default: Value| {
            let b = run(json!([{"name": "d", "from": "type", "value_map": {"values": {"C": "credit", "D": "debit"}, "default": default}}]))
                .unwrap();
            strings(&b, 0)
        };
        assert_eq!(map(json!("keep")), [Some("credit".into()), Some("debit".into()), Some("X".into())]);
        assert_eq!(map(json!("null")), [Some("credit".into()), Some("debit".into()), None]);
        assert_eq!(map(json!("other")), [Some("credit".into()), Some("debit".into()), Some("other".into())]);
        // Keys are the value's text; a map and a cast compose (map, then cast).
        let b =
            run(json!([{"name": "f", "from": "flag", "value_map": {"values": {"true": 1, "false": 0}}, "cast": {"to": "int64"}}])).unwrap();
        assert_eq!(b.column(0).as_primitive::<Int64Type>().iter().collect::<Vec<_>>(), [Some(1), Some(0), None]);
    }

    #[test]
    fn masks_keep_last_redact_and_hash() {
        let b = run(json!([
            {"name": "a", "from": "iban", "mask": {"type": "keep_last", "n": 4}},
            {"name": "b", "from": "iban", "mask": {"type": "keep_last", "n": 4, "with": "#"}},
            {"name": "c", "from": "iban", "mask": {"type": "redact"}},
            {"name": "d", "from": "iban", "mask": {"type": "redact", "null": true}},
            {"name": "e", "from": "id", "mask": {"type": "hash"}}
        ]))
        .unwrap();
        assert_eq!(strings(&b, 0), [Some("****************3201".into()), Some("****".into()), None]);
        assert_eq!(strings(&b, 1)[0].as_deref(), Some("################3201"));
        assert_eq!(strings(&b, 2), [Some("[redacted]".into()), Some("[redacted]".into()), None]);
        assert_eq!(strings(&b, 3), [None, None, None]);
        // HMAC-SHA256 of the value's text under the salt, as hex.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&[1; 32]).unwrap();
        m.update(b"1");
        assert_eq!(strings(&b, 4)[0].as_deref(), Some(hex::encode(m.finalize().into_bytes()).as_str()));
    }

    #[test]
    fn hash_is_stable_per_salt_and_differs_across_salts() {
        let hashes = |salt: [u8; 32]| {
            let mut p = pipeline(json!([{"name": "h", "from": "type", "mask": {"type": "hash"}}])).unwrap();
            assert!(p.needs_hash_key());
            p.set_hash_key(salt);
            strings(&p.project(&read(&p)).unwrap(), 0)
        };
        let a = hashes([1; 32]);
        assert_eq!(a, hashes([1; 32]));
        assert!(a.iter().all(|h| h.as_ref().unwrap().len() == 64));
        let b = hashes([2; 32]);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        // Without the salt the projection refuses rather than hashing with none.
        let p = pipeline(json!([{"name": "h", "from": "type", "mask": {"type": "hash"}}])).unwrap();
        assert!(p.project(&read(&p)).is_err());
    }

    #[test]
    fn a_failed_cast_names_row_column_and_value() {
        let err = run(json!([{"name": "amount", "from": "amount_text", "cast": {"to": "decimal(18,2)"}}])).unwrap_err().to_string();
        assert!(err.contains("row 3 of the selected rows"), "{err}");
        assert!(err.contains("column `amount` (from source column `amount_text`)"), "{err}");
        assert!(err.contains("\"1,5\""), "{err}");
        assert!(err.contains("decimal(18,2)"), "{err}");
        let b = run(json!([{"name": "amount", "from": "amount_text", "cast": {"to": "decimal(18,2)"}, "on_error": "null"}])).unwrap();
        let col = b.column(0).as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(col.iter().collect::<Vec<_>>(), [Some(1250), None, None]);
        assert!(b.schema().field(0).is_nullable());
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let schema = Schema::new(vec![Field::new("t", DataType::Utf8, true)]);
        let long = "x".repeat(500);
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(StringArray::from(vec![long.as_str()]))]).unwrap();
        let s = spec(json!([{"name": "n", "from": "t", "cast": {"to": "int64"}}]));
        let p = RowPipeline::build(&schema, &s).unwrap();
        let err = p.project(&batch).unwrap_err().to_string();
        assert!(err.contains(&format!("\"{}\"...", "x".repeat(100))) && !err.contains(&"x".repeat(101)), "{err}");
    }

    #[test]
    fn timestamps_to_vienna_text() {
        let b = run(
            json!([{"name": "t", "from": "booked_at", "cast": {"to": "string", "format": "%d.%m.%Y %H:%M", "time_zone": "Europe/Vienna"}}]),
        )
        .unwrap();
        // 1774746000 s = 2026-03-29T01:00:00Z, the first instant of summer time in Vienna.
        assert_eq!(strings(&b, 0), [Some("29.03.2026 03:00".into()), Some("01.01.1970 01:00".into()), None]);
    }

    #[test]
    fn schema_errors_point_at_the_field() {
        let err = pipeline(json!([
            {"name": "a", "from": "nope"},
            {"name": "b", "from": "flag", "cast": {"to": "date"}},
            {"name": "c", "from": "booked_at", "cast": {"to": "int64"}},
            {"name": "d", "from": "id", "cast": {"to": "string", "format": "%Y"}},
            {"name": "e", "from": "amount_text", "cast": {"to": "date", "format": "%d.%m.%Y %H:%M"}},
            {"name": "f", "from": "id", "cast": {"to": "float64", "time_zone": "Europe/Vienna"}}
        ]))
        .err()
        .expect("invalid");
        let got: Vec<(&str, &str)> = err.0.iter().map(|e| (e.pointer.as_str(), e.allowed.as_str())).collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [
                "/fields/0/from",
                "/fields/1/cast/to",
                "/fields/2/cast/to",
                "/fields/3/cast/format",
                "/fields/4/cast/format",
                "/fields/5/cast/time_zone"
            ]
        );
        assert!(got[0].1.contains("a column of the source: id, type"), "{}", got[0].1);
        assert!(got[1].1.contains("string, int64, bool"), "{}", got[1].1);
        assert!(got[4].1.contains("date fields only"), "{}", got[4].1);
        // `fields` and `columns` together.
        let s = ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": []}, "format": "csv",
            "columns": ["id"], "fields": [{"name": "x", "from": "id"}]}))
        .unwrap();
        assert_eq!(s.validate().unwrap_err().0[0].pointer, "/fields");
    }

    #[test]
    fn output_types_follow_the_casts() {
        let b = run(json!([
            {"name": "d", "from": "booked_at", "cast": {"to": "date", "time_zone": "Europe/Vienna"}},
            {"name": "s", "from": "id", "cast": {"to": "string"}},
            {"name": "f", "from": "id", "cast": {"to": "float64"}},
            {"name": "t", "from": "booked_at"}
        ]))
        .unwrap();
        let types: Vec<DataType> = b.schema().fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types, [DataType::Date32, DataType::Utf8, DataType::Float64, Kind::Ts.data_type()]);
        assert_eq!(strings(&b, 1), [Some("1".into()), Some("2".into()), Some("3".into())]);
    }
}
