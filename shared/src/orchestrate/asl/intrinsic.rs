//! Intrinsic functions (`States.Format('{} rows', $.rows)`), parsed when the definition is
//! loaded (an unknown function is a load error) and evaluated against the state's input.

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::path::RefPath;

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Literal(Value),
    Path(RefPath),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

const KNOWN: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

pub fn is_intrinsic(text: &str) -> bool {
    text.starts_with("States.")
}

impl Call {
    pub fn parse(text: &str) -> Result<Call, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0, text };
        let call = p.call()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("unexpected text after the call"));
        }
        Ok(call)
    }

    pub fn eval(&self, input: &Value, ctx: &Value) -> Result<Value, String> {
        let args: Vec<Value> = self
            .args
            .iter()
            .map(|a| match a {
                Arg::Literal(v) => Ok(v.clone()),
                Arg::Path(p) => p.get(input, ctx).cloned().ok_or_else(|| format!("`{}` is not in the input", p.as_str())),
                Arg::Call(c) => c.eval(input, ctx),
            })
            .collect::<Result<_, _>>()?;
        let name = self.name.as_str();
        let want = |n: usize| if args.len() == n { Ok(()) } else { Err(format!("{name} takes {n} arguments, got {}", args.len())) };
        let string = |v: &Value| v.as_str().map(str::to_string).ok_or_else(|| format!("{name}: {v} is not a string"));
        let array = |v: &Value| v.as_array().cloned().ok_or_else(|| format!("{name}: {v} is not an array"));
        let int = |v: &Value| v.as_i64().ok_or_else(|| format!("{name}: {v} is not an integer"));
        match name {
            "States.Format" => {
                let fmt = string(args.first().ok_or("States.Format needs a format string")?)?;
                let mut out = String::new();
                let mut rest = args[1..].iter();
                let mut chars = fmt.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.extend(chars.next()),
                        '{' if chars.peek() == Some(&'}') => {
                            chars.next();
                            let v = rest.next().ok_or("States.Format: more {} than arguments")?;
                            match v {
                                Value::String(s) => out.push_str(s),
                                Value::Array(_) | Value::Object(_) => return Err("States.Format: arguments must be scalars".into()),
                                other => out.push_str(&other.to_string()),
                            }
                        }
                        c => out.push(c),
                    }
                }
                if rest.next().is_some() {
                    return Err("States.Format: more arguments than {}".into());
                }
                Ok(Value::String(out))
            }
            "States.StringToJson" => {
                want(1)?;
                serde_json::from_str(&string(&args[0])?).map_err(|e| format!("States.StringToJson: {e}"))
            }
            "States.JsonToString" => {
                want(1)?;
                Ok(Value::String(args[0].to_string()))
            }
            "States.Array" => Ok(Value::Array(args)),
            "States.ArrayPartition" => {
                want(2)?;
                let size = int(&args[1])?;
                if size < 1 {
                    return Err("States.ArrayPartition: the chunk size must be positive".into());
                }
                Ok(Value::Array(array(&args[0])?.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
            }
            "States.ArrayContains" => {
                want(2)?;
                Ok(Value::Bool(array(&args[0])?.contains(&args[1])))
            }
            "States.ArrayRange" => {
                want(3)?;
                let (start, end, step) = (int(&args[0])?, int(&args[1])?, int(&args[2])?);
                if step == 0 {
                    return Err("States.ArrayRange: the step must not be 0".into());
                }
                let mut out = Vec::new();
                let mut v = start;
                while (step > 0 && v <= end) || (step < 0 && v >= end) {
                    out.push(json!(v));
                    if out.len() > 1000 {
                        return Err("States.ArrayRange: more than 1000 items".into());
                    }
                    v += step;
                }
                Ok(Value::Array(out))
            }
            "States.ArrayGetItem" => {
                want(2)?;
                let a = array(&args[0])?;
                let i = int(&args[1])?;
                usize::try_from(i).ok().and_then(|i| a.get(i).cloned()).ok_or_else(|| format!("States.ArrayGetItem: no item {i}"))
            }
            "States.ArrayLength" => {
                want(1)?;
                Ok(json!(array(&args[0])?.len()))
            }
            "States.ArrayUnique" => {
                want(1)?;
                let mut out: Vec<Value> = Vec::new();
                for v in array(&args[0])? {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            "States.Base64Encode" => {
                want(1)?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(string(&args[0])?)))
            }
            "States.Base64Decode" => {
                want(1)?;
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(string(&args[0])?).map_err(|e| format!("States.Base64Decode: {e}"))?;
                String::from_utf8(bytes).map(Value::String).map_err(|_| "States.Base64Decode: not UTF-8".into())
            }
            "States.Hash" => {
                want(2)?;
                let algo = string(&args[1])?;
                if algo != "SHA-256" {
                    return Err(format!("States.Hash: algorithm {algo} is not supported here; use SHA-256"));
                }
                let data = match &args[0] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok(Value::String(hex::encode(sha2::Sha256::digest(data.as_bytes()))))
            }
            "States.JsonMerge" => {
                want(3)?;
                if args[2] != Value::Bool(false) {
                    return Err("States.JsonMerge: only shallow merges (false) are supported".into());
                }
                let (Some(a), Some(b)) = (args[0].as_object(), args[1].as_object()) else {
                    return Err("States.JsonMerge: both arguments must be objects".into());
                };
                let mut out = a.clone();
                out.extend(b.clone());
                Ok(Value::Object(out))
            }
            "States.MathAdd" => {
                want(2)?;
                Ok(json!(int(&args[0])?.checked_add(int(&args[1])?).ok_or("States.MathAdd: overflow")?))
            }
            "States.StringSplit" => {
                want(2)?;
                let (s, d) = (string(&args[0])?, string(&args[1])?);
                let parts: Vec<Value> = s.split(|c| d.contains(c)).filter(|p| !p.is_empty()).map(|p| json!(p)).collect();
                Ok(Value::Array(parts))
            }
            "States.UUID" => {
                want(0)?;
                Ok(Value::String(uuid::Uuid::now_v7().to_string()))
            }
            other => Err(format!("unknown intrinsic function {other}")),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> String {
        format!("`{}`: {why} (at character {})", self.text, self.i)
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn call(&mut self) -> Result<Call, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.') {
            self.i += 1;
        }
        let name = self.text[start..self.i].to_string();
        if !KNOWN.contains(&name.as_str()) {
            return Err(self.err(&format!("`{name}` is not a supported intrinsic function")));
        }
        self.ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Err(self.err("expected `(`"));
        }
        self.i += 1;
        let mut args = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b')') {
                self.i += 1;
                break;
            }
            if !args.is_empty() {
                if self.s.get(self.i) != Some(&b',') {
                    return Err(self.err("expected `,` or `)`"));
                }
                self.i += 1;
                self.ws();
            }
            args.push(self.arg()?);
        }
        Ok(Call { name, args })
    }
    fn arg(&mut self) -> Result<Arg, String> {
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err(self.err("unclosed string")),
                        Some(b'\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            // Keep the escape for States.Format's own `\{` `\}`; unescape quotes
                            // and backslashes.
                            match self.s.get(self.i + 1) {
                                Some(b'\'') => out.push('\''),
                                Some(b'\\') => out.push_str("\\\\"),
                                Some(&c) => {
                                    out.push('\\');
                                    out.push(c as char);
                                }
                                None => return Err(self.err("unclosed string")),
                            }
                            self.i += 2;
                        }
                        Some(_) => {
                            let ch = self.text[self.i..].chars().next().expect("in bounds");
                            out.push(ch);
                            self.i += ch.len_utf8();
                        }
                    }
                }
                Ok(Arg::Literal(Value::String(out)))
            }
            Some(b'$') => {
                let start = self.i;
                let mut depth = 0;
                while let Some(&c) = self.s.get(self.i) {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b',' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                Ok(Arg::Path(RefPath::parse(self.text[start..self.i].trim())?))
            }
            Some(b'S') => Ok(Arg::Call(self.call()?)),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b')') {
                    self.i += 1;
                }
                let lit = self.text[start..self.i].trim();
                serde_json::from_str::<Value>(lit)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array())
                    .map(Arg::Literal)
                    .ok_or_else(|| self.err(&format!("`{lit}` is not a string, number, boolean, null, path or call")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, input: Value) -> Result<Value, String> {
        Call::parse(expr)?.eval(&input, &json!({}))
    }

    #[test]
    fn formats_and_converts() {
        assert_eq!(eval("States.Format('{} of {} chunks', $.a, $.b)", json!({"a": 3, "b": "9"})).unwrap(), json!("3 of 9 chunks"));
        assert_eq!(eval("States.Format('it\\'s \\{literal\\}')", json!({})).unwrap(), json!("it's {literal}"));
        assert_eq!(eval("States.StringToJson($.s)", json!({"s": "{\"x\":[1]}"})).unwrap(), json!({"x": [1]}));
        assert_eq!(eval("States.JsonToString($.o)", json!({"o": {"x": 1}})).unwrap(), json!("{\"x\":1}"));
        assert_eq!(eval("States.ArrayLength(States.Array(1, 'two', $.t))", json!({"t": true})).unwrap(), json!(3));
        assert_eq!(eval("States.ArrayRange(1, 9, 4)", json!({})).unwrap(), json!([1, 5, 9]));
        assert_eq!(eval("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3]})).unwrap(), json!([[1, 2], [3]]));
        assert_eq!(eval("States.MathAdd($.n, -1)", json!({"n": 5})).unwrap(), json!(4));
        assert_eq!(eval("States.ArrayGetItem($.a[0], 1)", json!({"a": [[7, 8]]})).unwrap(), json!(8));
    }

    #[test]
    fn refuses_unknown_functions_and_bad_arguments() {
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Format('x'").is_err());
        assert!(eval("States.ArrayLength($.n)", json!({"n": 1})).is_err());
        assert!(eval("States.Format('{}')", json!({})).is_err());
        assert!(eval("States.Hash($.x, 'MD5')", json!({"x": "a"})).is_err());
    }
}
