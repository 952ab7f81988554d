//! Payload templates: `Parameters`, `ItemSelector` and `ResultSelector`. A key ending in `.$`
//! takes its value from a path or an intrinsic function; everything else is copied.

use serde_json::{Map, Value};

use super::intrinsic::{Call, is_intrinsic};
use super::path::RefPath;

#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(RefPath),
    Call(Call),
}

impl Template {
    pub fn compile(v: &Value) -> Result<Template, String> {
        Ok(match v {
            Value::Object(m) => {
                let mut fields = Vec::with_capacity(m.len());
                for (k, v) in m {
                    if let Some(name) = k.strip_suffix(".$") {
                        let Value::String(expr) = v else {
                            return Err(format!("`{k}`: a `.$` field takes a path or an intrinsic function as a string"));
                        };
                        let t = if is_intrinsic(expr) { Template::Call(Call::parse(expr)?) } else { Template::Path(RefPath::parse(expr)?) };
                        fields.push((name.to_string(), t));
                    } else {
                        fields.push((k.clone(), Template::compile(v)?));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(a) => Template::Array(a.iter().map(Template::compile).collect::<Result<_, _>>()?),
            other => Template::Literal(other.clone()),
        })
    }

    /// Build the payload; an error is a `States.Runtime` failure (a path not in the input).
    pub fn render(&self, input: &Value, ctx: &Value) -> Result<Value, String> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    m.insert(k.clone(), t.render(input, ctx)?);
                }
                Value::Object(m)
            }
            Template::Array(items) => Value::Array(items.iter().map(|t| t.render(input, ctx)).collect::<Result<_, _>>()?),
            Template::Path(p) => p.get(input, ctx).cloned().ok_or_else(|| format!("the path `{}` is not in the input", p.as_str()))?,
            Template::Call(c) => c.eval(input, ctx)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_paths_calls_and_literals() {
        let t = Template::compile(&json!({
            "id.$": "$.export_id",
            "n.$": "States.MathAdd($.n, 1)",
            "item.$": "$$.Map.Item.Value",
            "fixed": {"deep": [1, {"x.$": "$.n"}]}
        }))
        .unwrap();
        let out = t.render(&json!({"export_id": "e1", "n": 1}), &json!({"Map": {"Item": {"Value": "v"}}})).unwrap();
        assert_eq!(out, json!({"id": "e1", "n": 2, "item": "v", "fixed": {"deep": [1, {"x": 1}]}}));
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let t = Template::compile(&json!({"x.$": "$.nope"})).unwrap();
        assert!(t.render(&json!({}), &json!({})).is_err());
        assert!(Template::compile(&json!({"x.$": 3})).is_err());
        assert!(Template::compile(&json!({"x.$": "$..all"})).is_err());
    }
}
