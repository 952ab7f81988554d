//! Validation errors that tell a user exactly what to fix: where (a JSON pointer), what was
//! given, and what is allowed.

use serde::Serialize;
use serde_json::Value;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/filters/0/op`.
    pub pointer: String,
    /// The value that was given (`null` when the field was missing).
    pub value: Value,
    /// What is allowed there.
    pub allowed: String,
}

/// Every bad field of one request, collected rather than stopping at the first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, pointer: impl Into<String>, value: impl Into<Value>, allowed: impl Into<String>) {
        self.0.push(FieldError { pointer: pointer.into(), value: value.into(), allowed: allowed.into() });
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was wrong.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// One error, as a result.
    pub fn single(pointer: impl Into<String>, value: impl Into<Value>, allowed: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.push(pointer, value, allowed);
        e
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: got {}, allowed: {}", e.pointer, e.value, e.allowed)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Escape one reference token of a JSON pointer (RFC 6901: `~` -> `~0`, `/` -> `~1`).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Deserialize `value` into `T`, turning a serde error into a [`FieldError`] with the JSON
/// pointer of the offending field, the value found there, and serde's description of what was
/// expected. Unknown fields are errors because every request type denies them.
pub fn from_json<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ValidationErrors> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Ok(v),
        Err(err) => {
            let mut pointer = String::new();
            for seg in err.path().iter() {
                use serde_path_to_error::Segment;
                match seg {
                    Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                    Segment::Map { key } | Segment::Enum { variant: key } => {
                        pointer.push('/');
                        pointer.push_str(&pointer_token(key));
                    }
                    Segment::Unknown => {}
                }
            }
            let message = err.inner().to_string();
            // serde names an unknown field in its message; point at it rather than at its parent
            // (the path already ends with it, except inside a value deserialized by hand).
            if let Some(field) = unknown_field_name(&message) {
                let token = format!("/{}", pointer_token(&field));
                if !pointer.ends_with(&token) {
                    pointer.push_str(&token);
                }
            }
            let found = lookup(value, &pointer).cloned().unwrap_or(Value::Null);
            Err(ValidationErrors::single(pointer_or_root(pointer), found, message))
        }
    }
}

fn pointer_or_root(p: String) -> String {
    if p.is_empty() { "/".to_string() } else { p }
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The value at a JSON pointer, if any.
pub fn lookup<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() || pointer == "/" {
        return Some(value);
    }
    value.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn unknown_field_points_at_the_field() {
        let v = serde_json::json!({"items": [{"a": 1}, {"a": 2, "b": true}]});
        let err = from_json::<Outer>(&v).unwrap_err();
        assert_eq!(err.0[0].pointer, "/items/1/b");
        assert_eq!(err.0[0].value, serde_json::json!(true));
        assert!(err.0[0].allowed.contains("expected `a`"), "{}", err.0[0].allowed);
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let v = serde_json::json!({"items": [{"a": "x"}]});
        let err = from_json::<Outer>(&v).unwrap_err();
        assert_eq!(err.0[0].pointer, "/items/0/a");
        assert_eq!(err.0[0].value, serde_json::json!("x"));
    }
}
