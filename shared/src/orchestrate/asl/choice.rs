//! Choice rules: comparisons of a `Variable` with a literal or another path, type tests, and
//! `And`/`Or`/`Not`.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::path::RefPath;

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: RefPath, op: Op, operand: Operand },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Compare(Kind, Cmp),
    StringMatches,
    IsNull,
    IsPresent,
    IsString,
    IsNumeric,
    IsBoolean,
    IsTimestamp,
}

#[derive(Debug, Clone)]
pub enum Operand {
    Value(Value),
    Path(RefPath),
}

fn op_of(name: &str) -> Option<(Op, bool)> {
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(b) if b != "Is" => (b, true),
        _ => (name, false),
    };
    let cmp = |s: &str| match s {
        "Equals" => Some(Cmp::Eq),
        "LessThan" => Some(Cmp::Lt),
        "GreaterThan" => Some(Cmp::Gt),
        "LessThanEquals" => Some(Cmp::Le),
        "GreaterThanEquals" => Some(Cmp::Ge),
        _ => None,
    };
    let op = if let Some(r) = base.strip_prefix("String") {
        if r == "Matches" { Op::StringMatches } else { Op::Compare(Kind::String, cmp(r)?) }
    } else if let Some(r) = base.strip_prefix("Numeric") {
        Op::Compare(Kind::Numeric, cmp(r)?)
    } else if let Some(r) = base.strip_prefix("Timestamp") {
        Op::Compare(Kind::Timestamp, cmp(r)?)
    } else if base == "BooleanEquals" {
        Op::Compare(Kind::Boolean, Cmp::Eq)
    } else {
        let op = match name {
            "IsNull" => Op::IsNull,
            "IsPresent" => Op::IsPresent,
            "IsString" => Op::IsString,
            "IsNumeric" => Op::IsNumeric,
            "IsBoolean" => Op::IsBoolean,
            "IsTimestamp" => Op::IsTimestamp,
            _ => return None,
        };
        return Some((op, false));
    };
    if is_path && op == Op::StringMatches {
        return None;
    }
    Some((op, is_path))
}

impl Rule {
    /// Parse one rule (a top-level rule's `Next` is taken out by the caller).
    pub fn parse(v: &Value, top_level: bool) -> Result<Rule, String> {
        let obj = v.as_object().ok_or("a choice rule must be an object")?;
        let allowed_extra = |k: &str| k == "Comment" || (top_level && k == "Next");
        for key in ["And", "Or", "Not"] {
            if let Some(inner) = obj.get(key) {
                if let Some(k) = obj.keys().find(|k| *k != key && !allowed_extra(k)) {
                    return Err(format!("a rule with `{key}` cannot also have `{k}`"));
                }
                return Ok(match key {
                    "Not" => Rule::Not(Box::new(Rule::parse(inner, false)?)),
                    _ => {
                        let rules = inner.as_array().ok_or_else(|| format!("`{key}` takes an array of rules"))?;
                        if rules.is_empty() {
                            return Err(format!("`{key}` needs at least one rule"));
                        }
                        let parsed = rules.iter().map(|r| Rule::parse(r, false)).collect::<Result<Vec<_>, _>>()?;
                        if key == "And" { Rule::And(parsed) } else { Rule::Or(parsed) }
                    }
                });
            }
        }
        let variable = obj.get("Variable").and_then(Value::as_str).ok_or("a choice rule needs a `Variable` path")?;
        let variable = RefPath::parse(variable)?;
        let mut found = None;
        for (k, val) in obj {
            if k == "Variable" || allowed_extra(k) {
                continue;
            }
            let (op, is_path) = op_of(k).ok_or_else(|| format!("`{k}` is not a supported choice operator"))?;
            if found.is_some() {
                return Err("a choice rule has exactly one operator".into());
            }
            let operand = if is_path {
                Operand::Path(RefPath::parse(val.as_str().ok_or_else(|| format!("`{k}` takes a path"))?)?)
            } else {
                let ok = match &op {
                    Op::Compare(Kind::String, _) | Op::StringMatches => val.is_string(),
                    Op::Compare(Kind::Numeric, _) => val.is_number(),
                    Op::Compare(Kind::Timestamp, _) => val.as_str().is_some_and(|s| timestamp(s).is_some()),
                    _ => val.is_boolean(),
                };
                if !ok {
                    return Err(format!("`{k}` does not take {val}"));
                }
                Operand::Value(val.clone())
            };
            found = Some((op, operand));
        }
        let (op, operand) = found.ok_or("a choice rule needs an operator")?;
        Ok(Rule::Test { variable, op, operand })
    }

    /// Evaluate the rule. A comparison whose variable (or `*Path` operand) is not in the input
    /// is an error, as in Step Functions (`States.Runtime`): test with `IsPresent` first.
    pub fn eval(&self, input: &Value, ctx: &Value) -> Result<bool, String> {
        match self {
            Rule::And(rs) => {
                for r in rs {
                    if !r.eval(input, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rs) => {
                for r in rs {
                    if r.eval(input, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval(input, ctx)?),
            Rule::Test { variable, op, operand } => {
                let v = variable.get(input, ctx);
                let expected = match operand {
                    Operand::Value(x) => Some(x),
                    Operand::Path(p) => {
                        Some(p.get(input, ctx).ok_or_else(|| format!("the choice operand `{}` is not in the input", p.as_str()))?)
                    }
                };
                let flag = expected == Some(&Value::Bool(true));
                let compared = || v.ok_or_else(|| format!("the choice variable `{}` is not in the input", variable.as_str()));
                Ok(match op {
                    Op::IsPresent => v.is_some() == flag,
                    Op::IsNull => v.is_some_and(Value::is_null) == flag,
                    Op::IsString => v.is_some_and(Value::is_string) == flag,
                    Op::IsNumeric => v.is_some_and(Value::is_number) == flag,
                    Op::IsBoolean => v.is_some_and(Value::is_boolean) == flag,
                    Op::IsTimestamp => v.and_then(Value::as_str).and_then(timestamp).is_some() == flag,
                    Op::StringMatches => match (compared()?.as_str(), expected.and_then(Value::as_str)) {
                        (Some(s), Some(pat)) => wildcard(s, pat),
                        _ => false,
                    },
                    Op::Compare(kind, cmp) => {
                        let (a, Some(b)) = (compared()?, expected) else { return Ok(false) };
                        let ord = match kind {
                            Kind::String => a.as_str().zip(b.as_str()).map(|(a, b)| a.cmp(b)),
                            Kind::Numeric => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
                            Kind::Boolean => a.as_bool().zip(b.as_bool()).map(|(a, b)| a.cmp(&b)),
                            Kind::Timestamp => a.as_str().and_then(timestamp).zip(b.as_str().and_then(timestamp)).map(|(a, b)| a.cmp(&b)),
                        };
                        let Some(ord) = ord else { return Ok(false) };
                        match cmp {
                            Cmp::Eq => ord.is_eq(),
                            Cmp::Lt => ord.is_lt(),
                            Cmp::Gt => ord.is_gt(),
                            Cmp::Le => ord.is_le(),
                            Cmp::Ge => ord.is_ge(),
                        }
                    }
                })
            }
        }
    }
}

fn timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// `*` matches any run of characters; `\*` and `\\` are literal.
fn wildcard(s: &str, pat: &str) -> bool {
    enum Tok {
        Lit(char),
        Star,
    }
    let mut toks = Vec::new();
    let mut it = pat.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => toks.push(Tok::Lit(it.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Lit(c)),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    // Classic two-pointer glob match with backtracking to the last star.
    let (mut si, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while si < chars.len() {
        match toks.get(pi) {
            Some(Tok::Lit(c)) if *c == chars[si] => {
                si += 1;
                pi += 1;
            }
            Some(Tok::Star) => {
                star = Some(pi);
                mark = si;
                pi += 1;
            }
            _ => match star {
                Some(p) => {
                    pi = p + 1;
                    mark += 1;
                    si = mark;
                }
                None => return false,
            },
        }
    }
    toks[pi..].iter().all(|t| matches!(t, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, input: Value) -> bool {
        Rule::parse(&rule, false).unwrap().eval(&input, &json!({})).unwrap()
    }

    #[test]
    fn compares_and_combines() {
        let input = json!({"s": "paused", "n": 3, "b": true, "t": "2026-11-24T06:00:00Z", "m": 5});
        assert!(check(json!({"Variable": "$.s", "StringEquals": "paused"}), input.clone()));
        assert!(check(json!({"Variable": "$.n", "NumericLessThanPath": "$.m"}), input.clone()));
        assert!(check(json!({"Variable": "$.t", "TimestampGreaterThan": "2026-11-24T05:00:00+00:00"}), input.clone()));
        assert!(check(json!({"Variable": "$.s", "StringMatches": "pa*d"}), input.clone()));
        assert!(!check(json!({"Variable": "$.s", "StringMatches": "pa*x"}), input.clone()));
        assert!(check(json!({"Not": {"Variable": "$.zz", "IsPresent": true}}), input.clone()));
        assert!(check(
            json!({"And": [{"Variable": "$.b", "BooleanEquals": true}, {"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.n", "IsNumeric": true}]}]}),
            input.clone()
        ));
        // A comparison with a missing variable is an error (States.Runtime), not false.
        assert!(Rule::parse(&json!({"Variable": "$.zz", "NumericEquals": 1}), false).unwrap().eval(&input, &json!({})).is_err());
    }

    #[test]
    fn refuses_bad_rules() {
        assert!(Rule::parse(&json!({"Variable": "$.s", "StringEqualz": "x"}), false).is_err());
        assert!(Rule::parse(&json!({"Variable": "$.s", "NumericEquals": "x"}), false).is_err());
        assert!(Rule::parse(&json!({"Variable": "$.s", "StringEquals": "x", "NumericEquals": 1}), false).is_err());
        assert!(Rule::parse(&json!({"And": []}), false).is_err());
        assert!(Rule::parse(&json!({"Variable": "$.s", "StringEquals": "x", "Next": "A"}), false).is_err());
    }
}
