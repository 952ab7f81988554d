//! Field mapping in an export spec: the `fields` array names the output columns in order and
//! says where each comes from (a source column or a constant) and what happens to the value on
//! the way: a value map, a cast, a mask, in that order. The checks here need no source schema;
//! those that do (does the column exist, can its type be cast) are in `transform::fields`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::validation::{ValidationErrors, pointer_token};

/// Most fields one export may define.
pub const MAX_FIELDS: usize = 1000;
/// Most entries of one value map.
pub const MAX_VALUE_MAP: usize = 10_000;

/// The target types of a cast and of a constant.
pub const CAST_TYPES: &str = "string, int64, float64, bool, date, timestamp or decimal(P,S) with 1 <= P <= 38, 0 <= S <= P";

/// One output column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The output column's name (unique among the fields).
    pub name: String,
    /// The source column the value comes from. Exactly one of `from` and `constant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The same value on every row (a string, number or boolean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    /// The type of a constant (default: string for text, int64 for an integer, float64 for
    /// another number, bool): one of [`CAST_TYPES`].
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// Replace values by others (applied first, on the value's text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_map: Option<ValueMap>,
    /// Convert the value to another type (after the value map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cast: Option<CastSpec>,
    /// Hide the value (last): the output is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskSpec>,
    /// What a value the cast cannot convert does: `fail` the export (default) or become `null`.
    #[serde(default, skip_serializing_if = "OnError::is_fail")]
    pub on_error: OnError,
}

/// A conversion to another type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastSpec {
    /// The target type: one of [`CAST_TYPES`].
    pub to: String,
    /// A chrono strftime pattern (e.g. `%d.%m.%Y %H:%M`) for a cast between text and a date or
    /// timestamp: how the text is read, or how the date or timestamp is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// An IANA time zone (e.g. `Europe/Vienna`) for a cast to or from a timestamp: a wall time
    /// read from text or a date is taken in this zone; a timestamp is written or cut to a date
    /// in this zone. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// What a failed cast does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The chunk fails (`Egress.Invalid`) with the row, column and value.
    #[default]
    Fail,
    /// The value becomes null (the column is nullable then).
    Null,
}

impl OnError {
    fn is_fail(&self) -> bool {
        *self == OnError::Fail
    }
}

/// Replace values: the value's text (as a cast to string writes it) is looked up in `values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMap {
    /// Text of a value -> its replacement (a string, number, boolean or null; written as text).
    pub values: BTreeMap<String, Value>,
    /// A value not in `values`: `"keep"` (default), `"null"`, or a literal replacement.
    #[serde(default, skip_serializing_if = "MapDefault::is_keep")]
    pub default: MapDefault,
}

/// What a value map does with a value it does not list.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum MapDefault {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Make it null.
    Null,
    /// Replace it by this scalar.
    Value(Value),
}

impl MapDefault {
    fn is_keep(&self) -> bool {
        *self == MapDefault::Keep
    }
}

impl Serialize for MapDefault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MapDefault::Keep => s.serialize_str("keep"),
            MapDefault::Null => s.serialize_str("null"),
            MapDefault::Value(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MapDefault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) if s == "keep" => MapDefault::Keep,
            Value::String(s) if s == "null" => MapDefault::Null,
            Value::Null => MapDefault::Null,
            v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => MapDefault::Value(v),
            other => {
                return Err(serde::de::Error::custom(format!("invalid default {other}: expected \"keep\", \"null\" or a scalar value")));
            }
        })
    }
}

/// How a value is hidden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MaskSpec {
    /// Keep the last `n` characters, replace the others by `with` (default `*`).
    KeepLast {
        n: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
    },
    /// HMAC-SHA256 of the value's text with the tenant's secret salt, as 64 hex digits: equal
    /// values give equal hashes within a tenant, different ones across tenants.
    Hash,
    /// Replace every non-null value by `text` (default `[redacted]`); `null: true` makes it
    /// null instead.
    Redact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        null: bool,
    },
}

impl FieldSpec {
    /// Whether this field hashes its values (then the stage needs the tenant's salt).
    pub fn hashes(&self) -> bool {
        matches!(self.mask, Some(MaskSpec::Hash))
    }
}

/// A strftime pattern chrono can use: `Err` names the first bad item.
pub fn check_strftime(pattern: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if pattern.is_empty() {
        return Err("an empty pattern".into());
    }
    if StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
        return Err("an unknown or incomplete % specifier".into());
    }
    Ok(())
}

/// Checks of `fields` that need no source schema, all errors at once.
pub fn validate_fields(fields: &[FieldSpec], columns_given: bool, errs: &mut ValidationErrors) {
    if columns_given && !fields.is_empty() {
        errs.push("/fields", Value::Null, "either `columns` or `fields`, not both (`fields` selects, orders and renames columns)");
    }
    if !fields.is_empty() && fields.iter().all(|f| f.from.is_none()) {
        errs.push("/fields", Value::Null, "at least one field `from` a source column (the rows come from the source)");
    }
    if fields.len() > MAX_FIELDS {
        errs.push("/fields", fields.len(), format!("at most {MAX_FIELDS} fields"));
    }
    let mut names = HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let p = format!("/fields/{i}");
        if f.name.trim().is_empty() || f.name.len() > 256 {
            errs.push(format!("{p}/name"), f.name.as_str(), "a column name of 1 to 256 bytes, not only spaces");
        } else if !names.insert(f.name.as_str()) {
            errs.push(format!("{p}/name"), f.name.as_str(), "each output name once");
        }
        match (&f.from, &f.constant) {
            (None, None) => errs.push(format!("{p}/from"), Value::Null, "a source column (`from`) or a `constant`"),
            (Some(_), Some(c)) => errs.push(format!("{p}/constant"), c.clone(), "either `from` or `constant`, not both"),
            (Some(c), None) if c.is_empty() => errs.push(format!("{p}/from"), c.as_str(), "a source column name"),
            _ => {}
        }
        if let Some(c) = &f.constant {
            if let Some(t) = &f.data_type
                && crate::source::inline::parse_decl_type(t).is_none()
            {
                errs.push(format!("{p}/type"), t.as_str(), CAST_TYPES);
            } else if let Err(why) = crate::transform::fields::constant_array(c, f.data_type.as_deref(), 1) {
                errs.push(format!("{p}/constant"), c.clone(), why);
            }
            for (key, given) in [("value_map", f.value_map.is_some()), ("cast", f.cast.is_some()), ("mask", f.mask.is_some())] {
                if given {
                    errs.push(format!("{p}/{key}"), Value::Null, "nothing: a constant is written as it is (give it a `type`)");
                }
            }
        } else if let Some(t) = &f.data_type {
            errs.push(format!("{p}/type"), t.as_str(), "only with `constant`; convert a source column with `cast`");
        }
        if let Some(c) = &f.cast {
            if crate::source::inline::parse_decl_type(&c.to).is_none() {
                errs.push(format!("{p}/cast/to"), c.to.as_str(), CAST_TYPES);
            }
            if let Some(fmt) = &c.format
                && let Err(why) = check_strftime(fmt)
            {
                errs.push(
                    format!("{p}/cast/format"),
                    fmt.as_str(),
                    format!("a chrono strftime pattern such as %d.%m.%Y %H:%M (got {why})"),
                );
            }
            if let Some(tz) = &c.time_zone
                && tz.parse::<chrono_tz::Tz>().is_err()
            {
                errs.push(format!("{p}/cast/time_zone"), tz.as_str(), "an IANA time zone name such as UTC or Europe/Vienna");
            }
        } else if f.on_error == OnError::Null {
            errs.push(format!("{p}/on_error"), "null", "only with `cast` (the other steps cannot fail)");
        }
        if let Some(m) = &f.value_map {
            if m.values.len() > MAX_VALUE_MAP {
                errs.push(format!("{p}/value_map/values"), m.values.len(), format!("at most {MAX_VALUE_MAP} entries"));
            }
            for (k, v) in &m.values {
                if matches!(v, Value::Array(_) | Value::Object(_)) {
                    errs.push(format!("{p}/value_map/values/{}", pointer_token(k)), v.clone(), "a string, number, boolean or null");
                }
            }
        }
        match &f.mask {
            Some(MaskSpec::KeepLast { n, with }) => {
                if *n > 1000 {
                    errs.push(format!("{p}/mask/n"), *n, "0 to 1000 characters kept");
                }
                if let Some(w) = with
                    && w.chars().count() != 1
                {
                    errs.push(format!("{p}/mask/with"), w.as_str(), "one character (default *)");
                }
            }
            Some(MaskSpec::Redact { text: Some(t), null }) => {
                if *null {
                    errs.push(format!("{p}/mask/text"), t.as_str(), "either `text` or `null: true`, not both");
                } else if t.len() > 256 {
                    errs.push(format!("{p}/mask/text"), t.as_str(), "at most 256 bytes");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(fields: Value, columns: bool) -> Vec<(String, String)> {
        let fields: Vec<FieldSpec> = serde_json::from_value(fields).unwrap();
        let mut errs = ValidationErrors::new();
        validate_fields(&fields, columns, &mut errs);
        errs.0.into_iter().map(|e| (e.pointer, e.allowed)).collect()
    }

    #[test]
    fn the_documented_example_parses_and_is_valid() {
        let v = json!([
            {"name": "id", "from": "transaction_id"},
            {"name": "booked_on", "from": "booked_at", "cast": {"to": "string", "format": "%d.%m.%Y %H:%M", "time_zone": "Europe/Vienna"}},
            {"name": "value_date", "from": "t", "cast": {"to": "date", "format": "%d/%m/%Y"}, "on_error": "null"},
            {"name": "direction", "from": "type", "value_map": {"values": {"C": "credit", "D": "debit"}, "default": "keep"}},
            {"name": "iban", "from": "iban", "mask": {"type": "keep_last", "n": 4, "with": "*"}},
            {"name": "customer", "from": "customer_id", "mask": {"type": "hash"}},
            {"name": "note", "from": "note", "mask": {"type": "redact"}},
            {"name": "source_system", "constant": "core-banking"},
            {"name": "report_version", "constant": 2, "type": "int64"}
        ]);
        assert_eq!(errors(v.clone(), false), vec![]);
        let parsed: Vec<FieldSpec> = serde_json::from_value(v.clone()).unwrap();
        // Serializing gives back what was given (the spec is stored and shown as JSON).
        let mut again = serde_json::to_value(&parsed).unwrap();
        again[3]["value_map"]["default"] = json!("keep");
        assert_eq!(again, v);
    }

    #[test]
    fn bad_fields_are_named_by_pointer() {
        let errs = errors(
            json!([
                {"name": "a", "from": "x", "cast": {"to": "date", "format": "%d.%Q", "time_zone": "Europe/Viena"}},
                {"name": "a", "from": "y"},
                {"name": "c"},
                {"name": "d", "constant": "x", "type": "int64"},
                {"name": "e", "constant": 1, "type": "decimal(40,2)"},
                {"name": "f", "from": "x", "cast": {"to": "money"}},
                {"name": "g", "from": "x", "on_error": "null"},
                {"name": "h", "from": "x", "mask": {"type": "keep_last", "n": 4, "with": "**"}}
            ]),
            true,
        );
        let pointers: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/fields",
                "/fields/0/cast/format",
                "/fields/0/cast/time_zone",
                "/fields/1/name",
                "/fields/2/from",
                "/fields/3/constant",
                "/fields/4/type",
                "/fields/5/cast/to",
                "/fields/6/on_error",
                "/fields/7/mask/with"
            ]
        );
        assert!(errs[2].1.contains("IANA"), "{:?}", errs[2]);
    }

    #[test]
    fn constants_alone_are_not_enough() {
        let errs = errors(json!([{"name": "a", "constant": 1}]), false);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/fields");
    }

    #[test]
    fn map_default_forms() {
        let m: ValueMap = serde_json::from_value(json!({"values": {}, "default": "null"})).unwrap();
        assert_eq!(m.default, MapDefault::Null);
        let m: ValueMap = serde_json::from_value(json!({"values": {}, "default": "other"})).unwrap();
        assert_eq!(m.default, MapDefault::Value(json!("other")));
        let m: ValueMap = serde_json::from_value(json!({"values": {}})).unwrap();
        assert_eq!(m.default, MapDefault::Keep);
        assert!(serde_json::from_value::<ValueMap>(json!({"values": {}, "default": [1]})).is_err());
    }
}
