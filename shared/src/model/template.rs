//! Templates: a named, versioned ExportSpec with declared, typed parameters. The spec's strings
//! may hold placeholders `{{name}}`: a string that is exactly one placeholder takes the
//! parameter's typed value (a number stays a number), a placeholder inside a longer string is
//! replaced by the value as text. [`render`] turns a template and the caller's parameters into
//! a plain export body, which then goes the way every export body goes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::spec::ExportSpec;
use super::validation::{ValidationErrors, pointer_token};

/// Most parameters one template declares.
pub const MAX_PARAMETERS: usize = 50;

/// A new template id, `tpl_` + 32 hex digits of a UUID v7 (sorts by creation time).
pub fn template_id() -> String {
    format!("tpl_{}", uuid::Uuid::now_v7().simple())
}

/// True when `s` has the form of a template id (anything else is taken as a name).
pub fn is_template_id(s: &str) -> bool {
    s.len() == 36 && s.starts_with("tpl_") && s[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    /// A JSON integer.
    Integer,
    /// Any JSON number.
    Number,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 instant with offset, e.g. `2026-10-01T00:00:00Z`.
    Datetime,
}

pub const PARAM_TYPES: &str = "string, integer, number, boolean, date, datetime";

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
        }
    }

    /// What a value of this type looks like, for error messages.
    fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Number => "a number",
            Self::Boolean => "true or false",
            Self::Date => "a date YYYY-MM-DD, e.g. 2026-10-01",
            Self::Datetime => "an RFC 3339 timestamp with offset, e.g. 2026-10-01T00:00:00Z",
        }
    }

    /// Whether `v` is a value of this type.
    fn accepts(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Date => v.as_str().is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
            Self::Datetime => v.as_str().is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// Letters, digits and `_`, not starting with a digit; at most 64 characters.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What the parameter means, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value when an export does not give one. A parameter without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Whether an export must give the parameter; defaults to "when there is no default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// The only values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
    /// integer, number: the smallest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// integer, number: the largest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ParamDecl {
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(self.default.is_none())
    }

    /// Check a value against the type, `enum`, `min` and `max`.
    fn check(&self, pointer: &str, v: &Value, errs: &mut ValidationErrors) {
        if !self.kind.accepts(v) {
            errs.push(
                pointer,
                v.clone(),
                format!("{} (parameter `{}` is of type {})", self.kind.describe(), self.name, self.kind.as_str()),
            );
            return;
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(v)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            errs.push(pointer, v.clone(), format!("one of {}", list.join(", ")));
            return;
        }
        if let Some(n) = v.as_f64() {
            match (self.min, self.max) {
                (Some(lo), Some(hi)) if n < lo || n > hi => errs.push(pointer, v.clone(), format!("a value from {lo} to {hi}")),
                (Some(lo), None) if n < lo => errs.push(pointer, v.clone(), format!("a value of at least {lo}")),
                (None, Some(hi)) if n > hi => errs.push(pointer, v.clone(), format!("a value of at most {hi}")),
                _ => {}
            }
        }
    }

    /// A stand-in value used to check a template whose parameter has no default.
    fn sample(&self, index: usize) -> Value {
        if let Some(v) = self.allowed.as_ref().and_then(|a| a.first()) {
            return v.clone();
        }
        let bounded = self.min.or(self.max);
        match self.kind {
            ParamType::String => Value::String("sample".into()),
            ParamType::Integer => Value::from(bounded.map_or(1, |b| b.ceil() as i64)),
            ParamType::Number => serde_json::Number::from_f64(bounded.unwrap_or(1.0)).map_or(Value::from(1), Value::Number),
            ParamType::Boolean => Value::Bool(true),
            // Later parameters get later dates, so that a `from` declared before its `to` still
            // makes a window.
            ParamType::Date => Value::String(
                (chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default() + chrono::Days::new(index as u64))
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            ParamType::Datetime => {
                let t = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(10_957 + index as i64);
                Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
        }
    }
}

/// What a client sends to create or replace a template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParamDecl>,
    /// An export body whose strings may hold `{{parameter}}` placeholders.
    pub spec: Value,
    /// On replace: the version the client read (optimistic concurrency).
    #[serde(default)]
    pub version: Option<u64>,
}

/// One version of a template, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateVersion {
    /// 1 when created, one more on every edit.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParamDecl>,
    pub spec: Value,
    /// The output format of the spec with its defaults (for listing by format).
    #[serde(default)]
    pub format: String,
    /// The source type of the spec with its defaults (for listing by source).
    #[serde(default)]
    pub source: String,
    /// When this version was saved, and by which API key.
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A template record's document: the current version. Earlier versions are records of their
/// own (`RecordKind::TemplateVersion`); `history` holds those that records written before kept
/// inline, and is empty on new ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDoc {
    pub current: TemplateVersion,
    /// Earlier versions kept inline, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TemplateVersion>,
}

impl TemplateDoc {
    /// The version numbered `n`, current or earlier.
    pub fn version(&self, n: u64) -> Option<&TemplateVersion> {
        std::iter::once(&self.current).chain(&self.history).find(|v| v.version == n)
    }
}

/// The template an export was made from: recorded on the export and shown in its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub id: String,
    pub name: String,
    pub version: u64,
    /// The parameters the spec was rendered with, defaults included.
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

/// A placeholder found in a spec: where, which parameter, and whether it is the whole string.
#[derive(Debug, Clone, PartialEq)]
struct Placeholder {
    pointer: String,
    name: String,
    whole: bool,
}

fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// The placeholders of one string, in order, or what is wrong with one.
fn scan(s: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { return Err("a `{{` is not closed with `}}`".into()) };
        let name = after[..close].trim();
        if !is_param_name(name) {
            return Err(format!("`{{{{{name}}}}}` is not a placeholder: `{{{{` and `}}}}` around a parameter name"));
        }
        names.push(name.to_string());
        rest = &after[close + 2..];
    }
    Ok(names)
}

/// Every placeholder in a JSON value (strings only; object keys are never placeholders).
fn placeholders(v: &Value, pointer: &str, out: &mut Vec<Placeholder>, errs: &mut ValidationErrors) {
    match v {
        Value::String(s) => match scan(s) {
            Ok(names) => {
                let whole = names.len() == 1 && whole_name(s).is_some();
                out.extend(names.into_iter().map(|name| Placeholder { pointer: pointer.to_string(), name, whole }));
            }
            Err(why) => errs.push(pointer, s.as_str(), why),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                placeholders(item, &format!("{pointer}/{i}"), out, errs);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                placeholders(item, &format!("{pointer}/{}", pointer_token(k)), out, errs);
            }
        }
        _ => {}
    }
}

/// The parameter name when `s` is exactly one placeholder.
fn whole_name(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    (is_param_name(inner) && !inner.contains("{{")).then_some(inner)
}

/// A value as text inside a longer string.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Replace the placeholders of `v` with `values` (every name is declared: [`check`] saw to it).
fn substitute(v: &Value, values: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            if let Some(name) = whole_name(s) {
                return values.get(name).cloned().unwrap_or(Value::Null);
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(open) = rest.find("{{") {
                let after = &rest[open + 2..];
                let Some(close) = after.find("}}") else { break };
                out.push_str(&rest[..open]);
                out.push_str(&values.get(after[..close].trim()).map(as_text).unwrap_or_default());
                rest = &after[close + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, values)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, i)| (k.clone(), substitute(i, values))).collect()),
        other => other.clone(),
    }
}

/// Check the declared parameters on their own; errors point at `/parameters/<i>/...`.
fn check_decls(params: &[ParamDecl], errs: &mut ValidationErrors) {
    if params.len() > MAX_PARAMETERS {
        errs.push("/parameters", Value::from(params.len()), format!("at most {MAX_PARAMETERS} parameters"));
    }
    let mut seen = BTreeSet::new();
    for (i, p) in params.iter().enumerate() {
        let at = format!("/parameters/{i}");
        if !is_param_name(&p.name) {
            errs.push(format!("{at}/name"), p.name.as_str(), "1 to 64 letters, digits or `_`, not starting with a digit");
        } else if !seen.insert(p.name.as_str()) {
            errs.push(format!("{at}/name"), p.name.as_str(), "a name no other parameter of this template has");
        }
        if p.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
            errs.push(format!("{at}/description"), Value::Null, "at most 500 characters");
        }
        match (p.required, &p.default) {
            (Some(false), None) => errs.push(format!("{at}/required"), false, "true, or a `default` for when an export gives no value"),
            (Some(true), Some(d)) => {
                errs.push(format!("{at}/default"), d.clone(), "no default on a required parameter (drop `default` or `required`)")
            }
            _ => {}
        }
        let numeric = matches!(p.kind, ParamType::Integer | ParamType::Number);
        for (field, bound) in [("min", p.min), ("max", p.max)] {
            if let Some(b) = bound
                && !numeric
            {
                errs.push(
                    format!("{at}/{field}"),
                    b,
                    format!("no `{field}` on a parameter of type {} (integer and number only)", p.kind.as_str()),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (p.min, p.max)
            && lo > hi
        {
            errs.push(format!("{at}/max"), hi, format!("a value of at least `min` ({lo})"));
        }
        if let Some(allowed) = &p.allowed {
            if allowed.is_empty() {
                errs.push(format!("{at}/enum"), Value::Array(vec![]), "one or more values");
            }
            let bare = ParamDecl { allowed: None, ..p.clone() };
            for (j, v) in allowed.iter().enumerate() {
                bare.check(&format!("{at}/enum/{j}"), v, errs);
            }
        }
        if let Some(d) = &p.default {
            p.check(&format!("{at}/default"), d, errs);
        }
    }
}

/// The parameters of one export: type-checked against the declarations, defaults applied.
/// Errors point at `/parameters/<name>`: a wrong type or value, a missing required parameter,
/// a parameter the template does not declare.
pub fn bind(decls: &[ParamDecl], given: &Map<String, Value>) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let declared: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    for (k, v) in given {
        if !declared.contains(&k.as_str()) {
            let allowed = if declared.is_empty() {
                "no parameters: this template declares none".to_string()
            } else {
                format!("one of the template's parameters {}", declared.join(", "))
            };
            errs.push(format!("/parameters/{}", pointer_token(k)), v.clone(), allowed);
        }
    }
    let mut out = Map::new();
    for d in decls {
        let at = format!("/parameters/{}", pointer_token(&d.name));
        match given.get(&d.name).filter(|v| !v.is_null()) {
            Some(v) => {
                d.check(&at, v, &mut errs);
                out.insert(d.name.clone(), v.clone());
            }
            None => match &d.default {
                Some(def) => {
                    out.insert(d.name.clone(), def.clone());
                }
                None => errs.push(at, Value::Null, format!("{} (the parameter `{}` is required)", d.kind.describe(), d.name)),
            },
        }
    }
    errs.into_result().map(|()| out)
}

/// The export body of one template version with the caller's parameters: checked, defaults
/// applied, placeholders replaced. Returns the body and the parameters it was rendered with.
pub fn render(template: &TemplateVersion, parameters: &Map<String, Value>) -> Result<(Value, Map<String, Value>), ValidationErrors> {
    let values = bind(&template.parameters, parameters)?;
    Ok((substitute(&template.spec, &values), values))
}

/// What checking a template finds out about its spec: its output format and source type.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSummary {
    pub format: String,
    pub source: String,
}

/// Check a template at create or update, every error at once: the parameters' declarations;
/// the spec's placeholders (each names a declared parameter, each declared parameter is used,
/// since one that is not would silently change nothing); and the spec itself, rendered with the
/// defaults (and stand-in values for required parameters), must be a valid export body.
/// Errors in the spec point at `/spec/...`. A problem that only a stand-in value causes (a
/// required parameter's real value is not known yet) is left for export time.
pub fn check(parameters: &[ParamDecl], spec: &Value) -> Result<TemplateSummary, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    check_decls(parameters, &mut errs);
    if !spec.is_object() {
        errs.push(
            "/spec",
            spec.clone(),
            "an export body (an object with source, format, ...) whose strings may hold {{parameter}} placeholders",
        );
        return Err(errs);
    }
    let mut found = Vec::new();
    placeholders(spec, "", &mut found, &mut errs);
    let declared: BTreeMap<&str, &ParamDecl> = parameters.iter().map(|p| (p.name.as_str(), p)).collect();
    for ph in &found {
        if !declared.contains_key(ph.name.as_str()) {
            let names: Vec<&str> = declared.keys().copied().collect();
            let allowed = if names.is_empty() {
                "a placeholder of a declared parameter (this template declares none)".to_string()
            } else {
                format!("a placeholder of a declared parameter: {}", names.join(", "))
            };
            errs.push(
                format!("/spec{}", ph.pointer),
                crate::model::validation::lookup(spec, &ph.pointer).cloned().unwrap_or(Value::Null),
                allowed,
            );
        }
    }
    for (i, p) in parameters.iter().enumerate() {
        if !found.iter().any(|ph| ph.name == p.name) {
            errs.push(format!("/parameters/{i}/name"), p.name.as_str(), "a parameter the spec uses as `{{name}}` (or remove it)");
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    // Render with defaults, or stand-ins where a required parameter has none.
    let mut values = Map::new();
    let mut stand_ins = BTreeSet::new();
    for (i, p) in parameters.iter().enumerate() {
        match &p.default {
            Some(d) => {
                values.insert(p.name.clone(), d.clone());
            }
            None => {
                values.insert(p.name.clone(), p.sample(i));
                stand_ins.insert(p.name.as_str());
            }
        }
    }
    let sampled: Vec<&str> = found.iter().filter(|ph| stand_ins.contains(ph.name.as_str())).map(|ph| ph.pointer.as_str()).collect();
    let from_stand_in = |pointer: &str| sampled.iter().any(|s| pointer == *s || pointer.starts_with(&format!("{s}/")));
    let rendered = substitute(spec, &values);
    let mut spec_errs = ValidationErrors::new();
    let parsed = match ExportSpec::from_json(&rendered) {
        Ok(s) => {
            if let Err(e) = s.validate() {
                spec_errs.extend(e);
            }
            Some(s)
        }
        Err(e) => {
            spec_errs.extend(e);
            None
        }
    };
    for mut e in spec_errs.0 {
        let pointer = if e.pointer == "/" { String::new() } else { e.pointer.clone() };
        if from_stand_in(&pointer) {
            continue;
        }
        // Show what the template holds there, not the rendered value.
        if let Some(raw) = crate::model::validation::lookup(spec, &pointer) {
            e.value = raw.clone();
        }
        e.pointer = format!("/spec{pointer}");
        errs.0.push(e);
    }
    errs.into_result()?;
    Ok(TemplateSummary {
        format: parsed.as_ref().map(|s| s.format.kind().as_str().to_string()).unwrap_or_default(),
        source: parsed
            .as_ref()
            .and_then(|s| serde_json::to_value(s.source.kind).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decls(v: Value) -> Vec<ParamDecl> {
        serde_json::from_value(v).unwrap()
    }

    fn version(params: Value, spec: Value) -> TemplateVersion {
        TemplateVersion {
            version: 1,
            description: None,
            parameters: decls(params),
            spec,
            format: String::new(),
            source: String::new(),
            created_at: Utc::now(),
            created_by: "k".into(),
        }
    }

    fn inline_spec(filter_value: Value, name: Value) -> Value {
        json!({
            "name": name,
            "source": {"type": "inline", "rows": [{"a": 1}]},
            "filters": [{"column": "a", "op": ">=", "value": filter_value}],
            "format": "csv"
        })
    }

    #[test]
    fn whole_string_placeholder_takes_the_typed_value() {
        let t = version(json!([{"name": "min_a", "type": "integer"}]), inline_spec(json!("{{min_a}}"), json!("rows from {{ min_a }}")));
        let (body, used) = render(&t, json!({"min_a": 5}).as_object().unwrap()).unwrap();
        assert_eq!(body["filters"][0]["value"], json!(5));
        assert_eq!(body["name"], json!("rows from 5"));
        assert_eq!(used, *json!({"min_a": 5}).as_object().unwrap());
    }

    #[test]
    fn defaults_apply_when_a_parameter_is_not_given() {
        let t = version(
            json!([{"name": "fmt", "type": "string", "default": "jsonl", "enum": ["csv", "jsonl"]}]),
            json!({"source": {"type": "inline", "rows": []}, "format": "{{fmt}}"}),
        );
        let (body, used) = render(&t, &Map::new()).unwrap();
        assert_eq!(body["format"], "jsonl");
        assert_eq!(used["fmt"], "jsonl");
    }

    #[test]
    fn bad_parameters_point_at_the_parameter() {
        let d = decls(json!([
            {"name": "n", "type": "integer", "min": 1, "max": 10},
            {"name": "day", "type": "date"},
            {"name": "at", "type": "datetime", "default": "2026-01-01T00:00:00Z"},
            {"name": "kind", "type": "string", "enum": ["a", "b"], "default": "a"}
        ]));
        let err = bind(&d, json!({"n": "3", "at": "yesterday", "kind": "c", "extra": 1}).as_object().unwrap()).unwrap_err();
        let by: BTreeMap<&str, &super::super::FieldError> = err.0.iter().map(|e| (e.pointer.as_str(), e)).collect();
        assert!(by["/parameters/n"].allowed.contains("an integer"), "{err}");
        assert_eq!(by["/parameters/n"].value, json!("3"));
        assert!(by["/parameters/day"].allowed.contains("required"), "{err}");
        assert!(by["/parameters/at"].allowed.contains("RFC 3339"), "{err}");
        assert!(by["/parameters/kind"].allowed.contains("one of \"a\", \"b\""), "{err}");
        assert!(by["/parameters/extra"].allowed.contains("n, day, at, kind"), "{err}");
        let err = bind(&d, json!({"n": 11, "day": "2026-02-30"}).as_object().unwrap()).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert_eq!(err.0[0].allowed, "a value from 1 to 10");
        assert!(err.0[1].allowed.contains("YYYY-MM-DD"));
    }

    #[test]
    fn check_finds_undeclared_and_unused_parameters() {
        let err = check(&decls(json!([{"name": "unused", "type": "string", "default": "x"}])), &inline_spec(json!("{{nope}}"), json!("n")))
            .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert_eq!(err.0[0].pointer, "/spec/filters/0/value");
        assert_eq!(err.0[0].value, json!("{{nope}}"));
        assert!(err.0[0].allowed.contains("unused"));
        assert_eq!(err.0[1].pointer, "/parameters/0/name");
    }

    #[test]
    fn check_validates_the_spec_with_defaults() {
        let d = decls(json!([{"name": "fmt", "type": "string", "default": "docx"}]));
        let err = check(&d, &json!({"source": {"type": "inline", "rows": []}, "format": "{{fmt}}"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/spec/format", "{err}");
        assert_eq!(err.0[0].value, json!("{{fmt}}"));
        let ok = check(
            &decls(json!([{"name": "fmt", "type": "string", "default": "jsonl"}])),
            &json!({"source": {"type": "inline", "rows": []}, "format": "{{fmt}}"}),
        )
        .unwrap();
        assert_eq!(ok, TemplateSummary { format: "jsonl".into(), source: "inline".into() });
    }

    #[test]
    fn check_leaves_what_only_a_stand_in_breaks_for_export_time() {
        // Two required datetimes: the stand-ins make a valid window, and the spec passes.
        let d = decls(
            json!([{"name": "from", "type": "datetime"}, {"name": "to", "type": "datetime"}, {"name": "fmt", "type": "string", "enum": ["csv", "jsonl"]}]),
        );
        let spec = json!({"source": {"type": "inline", "rows": []}, "time_range": {"column": "t", "from": "{{from}}", "to": "{{to}}"}, "format": "{{fmt}}"});
        assert!(check(&d, &spec).is_ok());
        // A bad literal next to them is still found.
        let mut bad = spec.clone();
        bad["max_rows"] = json!(0);
        let err = check(&d, &bad).unwrap_err();
        assert_eq!(err.0[0].pointer, "/spec/max_rows", "{err}");
        // A format no stand-in can guess (no `enum`) is checked when an export gives it.
        let free = decls(json!([{"name": "fmt", "type": "string"}]));
        assert!(check(&free, &json!({"source": {"type": "inline", "rows": []}, "format": "{{fmt}}"})).is_ok());
    }

    #[test]
    fn declarations_are_checked() {
        let d = decls(json!([
            {"name": "1x", "type": "string", "default": "a"},
            {"name": "b", "type": "string", "required": false},
            {"name": "c", "type": "date", "min": 1, "default": "2026-01-01"},
            {"name": "d", "type": "integer", "default": 1.5},
            {"name": "d", "type": "integer", "enum": [1, "2"]}
        ]));
        let mut errs = ValidationErrors::new();
        check_decls(&d, &mut errs);
        let pointers: Vec<&str> = errs.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/parameters/0/name",
                "/parameters/1/required",
                "/parameters/2/min",
                "/parameters/3/default",
                "/parameters/4/name",
                "/parameters/4/enum/1"
            ]
        );
    }

    #[test]
    fn unclosed_and_malformed_placeholders_are_errors() {
        assert!(scan("a {{b").is_err());
        assert!(scan("{{ not a name }}").is_err());
        assert_eq!(scan("{{a}}-{{ b }}").unwrap(), ["a", "b"]);
        assert_eq!(scan("{single} braces stay").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn template_ids_are_recognised() {
        assert!(is_template_id(&template_id()));
        assert!(!is_template_id("goaml-monthly"));
    }
}
