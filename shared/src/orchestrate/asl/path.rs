//! Reference paths (`$.a.b[0]`, `$['key']`) and the context object (`$$.Map.Item.Value`): the
//! part of JSONPath that Step Functions allows in `InputPath`, `ResultPath`, `OutputPath`,
//! `ItemsPath`, `Variable` and `*Path` fields. Filters, wildcards and recursive descent are
//! refused when the definition is loaded.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
}

/// A parsed reference path, rooted at the state's input (`$`) or the context object (`$$`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefPath {
    pub context: bool,
    steps: Vec<Step>,
    text: String,
}

impl RefPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, rest) = if let Some(r) = text.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (false, r)
        } else {
            return Err(format!("`{text}` is not a path: it must start with `$`"));
        };
        let bad = |why: &str| format!("`{text}` is not a supported reference path: {why}");
        let b = rest.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < b.len() && b[end] != b'.' && b[end] != b'[' {
                        end += 1;
                    }
                    let name = &rest[start..end];
                    if name.is_empty() || name == "*" || name.contains(['(', ')', '?', '@', ' ']) {
                        return Err(bad("empty names, wildcards and recursive descent are not supported"));
                    }
                    steps.push(Step::Field(name.to_string()));
                    i = end;
                }
                b'[' => {
                    let close = rest[i..].find(']').map(|p| p + i).ok_or_else(|| bad("unclosed `[`"))?;
                    let inner = &rest[i + 1..close];
                    if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                        steps.push(Step::Field(q.to_string()));
                    } else if let Ok(n) = inner.parse::<usize>() {
                        steps.push(Step::Index(n));
                    } else {
                        return Err(bad("only `[n]` and `['name']` subscripts are supported"));
                    }
                    i = close + 1;
                }
                _ => return Err(bad("expected `.` or `[`")),
            }
        }
        Ok(RefPath { context, steps, text: text.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// The value at this path, if there is one.
    pub fn get<'a>(&self, input: &'a Value, context: &'a Value) -> Option<&'a Value> {
        let mut v = if self.context { context } else { input };
        for s in &self.steps {
            v = match s {
                Step::Field(f) => v.as_object()?.get(f)?,
                Step::Index(n) => v.as_array()?.get(*n)?,
            };
        }
        Some(v)
    }

    /// Put `value` at this path inside `target`, making objects along the way (ResultPath).
    pub fn set(&self, target: Value, value: Value) -> Result<Value, String> {
        if self.context {
            return Err(format!("`{}`: a result cannot be written into the context object", self.text));
        }
        fn put(cur: Value, steps: &[Step], value: Value, text: &str) -> Result<Value, String> {
            let Some((first, rest)) = steps.split_first() else { return Ok(value) };
            match first {
                Step::Field(f) => {
                    let mut obj = match cur {
                        Value::Object(m) => m,
                        Value::Null => Map::new(),
                        _ => return Err(format!("`{text}`: the input at `{f}`'s parent is not an object")),
                    };
                    let child = obj.remove(f).unwrap_or(Value::Null);
                    obj.insert(f.clone(), put(child, rest, value, text)?);
                    Ok(Value::Object(obj))
                }
                Step::Index(n) => match cur {
                    Value::Array(mut a) if *n < a.len() => {
                        let child = std::mem::take(&mut a[*n]);
                        a[*n] = put(child, rest, value, text)?;
                        Ok(Value::Array(a))
                    }
                    _ => Err(format!("`{text}`: index {n} is not in the input")),
                },
            }
        }
        put(target, &self.steps, value, &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_fields_indexes_and_the_context() {
        let input = json!({"a": {"b": [10, {"c": "x"}]}, "odd key": 1});
        let ctx = json!({"Map": {"Item": {"Index": 3}}});
        assert_eq!(RefPath::parse("$.a.b[1].c").unwrap().get(&input, &ctx), Some(&json!("x")));
        assert_eq!(RefPath::parse("$['odd key']").unwrap().get(&input, &ctx), Some(&json!(1)));
        assert_eq!(RefPath::parse("$$.Map.Item.Index").unwrap().get(&input, &ctx), Some(&json!(3)));
        assert_eq!(RefPath::parse("$").unwrap().get(&input, &ctx), Some(&input));
        assert_eq!(RefPath::parse("$.missing").unwrap().get(&input, &ctx), None);
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        for bad in ["a.b", "$..a", "$.a[*]", "$.a[?(@.x)]", "$.", "$[-1]", "$.a["] {
            assert!(RefPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_results_into_copies_of_the_input() {
        let p = RefPath::parse("$.x.y").unwrap();
        assert_eq!(p.set(json!({"a": 1}), json!(2)).unwrap(), json!({"a": 1, "x": {"y": 2}}));
        assert_eq!(RefPath::parse("$").unwrap().set(json!({"a": 1}), json!(5)).unwrap(), json!(5));
        assert!(p.set(json!({"x": 3}), json!(2)).is_err());
    }
}
