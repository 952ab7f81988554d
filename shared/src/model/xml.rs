//! The XML options of an export spec: where the XSD comes from, and the mapping that places
//! columns, constants and computed values onto the element and attribute paths the XSD
//! defines. The mapping is compiled against the schema by `format::xml::mapping`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Where an XSD is read from: exactly one of the three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XsdSource {
    /// A file in the tenant's dataset area of the blob store (`schemas/goaml.xsd`); the
    /// schema's `xs:import` and `xs:include` locations are read relative to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A file on the host, under one of its `--dataset-root` folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
    /// The schema document itself (one document: no imports or includes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

/// How rows become elements of an XSD-defined document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlMapping {
    /// The document element: a global element of the schema (`report`, `Document`).
    pub root: String,
    /// The repeated elements, outermost first: each row is one element of the last level
    /// (`report/transaction`); an earlier level groups consecutive rows with equal `group_by`
    /// values under one element (one `PmtInf` per debtor account). Written as a path for one
    /// level.
    #[serde(deserialize_with = "levels")]
    pub repeat: Vec<RepeatLevel>,
    /// What goes where: an element path (`report/transaction/amount_local`) or an attribute
    /// path (`.../InstdAmt/@Ccy`), from the root, to its value.
    #[serde(deserialize_with = "deserialize_values")]
    pub values: BTreeMap<String, MappedValue>,
}

/// One level of repeated elements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatLevel {
    pub path: String,
    /// Columns whose values start a new element when they change (rows must come sorted by
    /// them: the export's `sort` begins with these columns). Empty for the last level: one
    /// element per row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

fn levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RepeatLevel>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Path(String),
        Levels(Vec<RepeatLevel>),
    }
    Ok(match OneOrMany::deserialize(d).map_err(|_| serde::de::Error::custom("a path, or an array of {path, group_by}"))? {
        OneOrMany::Path(path) => vec![RepeatLevel { path, group_by: Vec::new() }],
        OneOrMany::Levels(l) => l,
    })
}

/// Where one element's or attribute's value comes from. A bare JSON string, number or
/// boolean is a constant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappedValue {
    /// The value of this column in the row (or in the group's first row, for a group level's
    /// `group_by` columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A fixed text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    /// Text with `{column}` placeholders (`DE2026-{transaction_id}`); `{{` and `}}` are braces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A value of the run: `generated_at` (when the file is written, UTC), `export_id`,
    /// `row_number` (1-based, within the export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Generated>,
    /// A total over the rows under the element's repeat level (the whole export outside every
    /// level): `count`, or `sum` of `column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    /// Dates and timestamps: a strftime pattern (`%Y-%m-%dT%H:%M:%S`); timestamps are
    /// written in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Decimals and floats (and sums): exactly this many fraction digits, rounded half away
    /// from zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    /// Codes mapped to the schema's values (`{"card": "K", "wire": "A"}`), applied to the
    /// text after `format`/`scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<BTreeMap<String, String>>,
    /// With `map`: the text for a value the map does not list (by default the row fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generated {
    GeneratedAt,
    ExportId,
    RowNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
}

impl MappedValue {
    pub fn from_json(v: Value) -> Result<Self, String> {
        match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(MappedValue { constant: Some(v), ..Default::default() }),
            Value::Object(_) => serde_json::from_value::<MappedValue>(v).map_err(|e| e.to_string()),
            other => Err(format!(
                "invalid type: {other}, expected a constant or an object with column, constant, template, generated or aggregate"
            )),
        }
    }

    /// Which of the five sources it names, as written in the spec.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.column.is_some() && self.aggregate.is_none() {
            s.push("column");
        }
        if self.constant.is_some() {
            s.push("constant");
        }
        if self.template.is_some() {
            s.push("template");
        }
        if self.generated.is_some() {
            s.push("generated");
        }
        if self.aggregate.is_some() {
            s.push("aggregate");
        }
        s
    }
}

/// `values` entries: bare scalars are constants.
fn deserialize_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, MappedValue>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| MappedValue::from_json(v).map(|m| (k.clone(), m)).map_err(|e| serde::de::Error::custom(format!("values `{k}`: {e}"))))
        .collect()
}
