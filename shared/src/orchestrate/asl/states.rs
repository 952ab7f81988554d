//! The definition: states, transitions, retriers and catchers, parsed and checked when it is
//! loaded. A field, state type, operator or path form this runner does not implement is a load
//! error naming the state and the field: nothing is silently skipped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::choice::Rule;
use super::path::RefPath;
use super::template::Template;

/// A state machine (the whole definition, a Parallel branch or a Map's item processor).
#[derive(Debug)]
pub struct Machine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    pub timeout: Option<Duration>,
}

#[derive(Debug)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    pub input_path: Option<Option<RefPath>>,
    pub output_path: Option<Option<RefPath>>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub next: Option<String>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub enum ResultPath {
    /// The default `$`: the result replaces the input.
    Replace,
    /// `null`: the result is dropped, the input passes through.
    Discard,
    Path(RefPath),
}

impl ResultPath {
    pub fn apply(&self, raw_input: Value, result: Value) -> Result<Value, String> {
        match self {
            ResultPath::Replace => Ok(result),
            ResultPath::Discard => Ok(raw_input),
            ResultPath::Path(p) => p.set(raw_input, result),
        }
    }
}

#[derive(Debug)]
pub enum Kind {
    Task { resource: String, timeout: Option<Duration> },
    Pass { result: Option<Value> },
    Choice { choices: Vec<(Rule, String)>, default: Option<String> },
    Wait(WaitFor),
    Succeed,
    Fail { error: Option<String>, cause: Option<String>, error_path: Option<RefPath>, cause_path: Option<RefPath> },
    Parallel { branches: Vec<Machine> },
    Map(Box<MapSpec>),
}

#[derive(Debug)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(RefPath),
    Timestamp(chrono::DateTime<chrono::FixedOffset>),
    TimestampPath(RefPath),
}

#[derive(Debug)]
pub struct MapSpec {
    pub processor: Machine,
    pub distributed: bool,
    pub items_path: Option<RefPath>,
    pub item_reader: Option<ItemReader>,
    pub item_selector: Option<Template>,
    pub max_concurrency: MaxConcurrency,
    pub tolerated_percent: Option<f64>,
    pub tolerated_count: Option<u64>,
}

#[derive(Debug)]
pub enum MaxConcurrency {
    Fixed(u64),
    Path(RefPath),
}

/// A Distributed Map's `ItemReader`: where the items come from.
#[derive(Debug)]
pub struct ItemReader {
    pub resource: String,
    pub input_type: String,
    pub parameters: Template,
    pub max_items: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub errors: Vec<String>,
    pub interval: Duration,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay: Option<Duration>,
    pub full_jitter: bool,
}

impl Retrier {
    /// The delay before retry number `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let secs = self.interval.as_secs_f64() * self.backoff_rate.powi(attempt.saturating_sub(1) as i32);
        let d = Duration::from_secs_f64(secs.min(31_622_400.0));
        match self.max_delay {
            Some(m) => d.min(m),
            None => d,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub errors: Vec<String>,
    pub result_path: ResultPath,
    pub next: String,
}

/// Does an error list (`ErrorEquals`) match this error name? `States.ALL` matches every error
/// but `States.Runtime`, which is never retried or caught; `States.TaskFailed` every error but
/// `States.Timeout`.
pub fn matches(errors: &[String], name: &str) -> bool {
    if name == "States.Runtime" {
        return false;
    }
    errors.iter().any(|e| e == name || e == "States.ALL" || (e == "States.TaskFailed" && name != "States.Timeout"))
}

/// Load a definition: `${Name}` substitutions (as SAM's `DefinitionSubstitutions`) are
/// replaced first; one left over is an error.
pub fn load(text: &str, substitutions: &HashMap<String, String>) -> Result<Machine, String> {
    let mut s = text.to_string();
    for (k, v) in substitutions {
        s = s.replace(&format!("${{{k}}}"), v);
    }
    if let Some(at) = s.find("${") {
        let end = s[at..].find('}').map(|e| at + e + 1).unwrap_or(s.len());
        return Err(format!("the substitution {} has no value", &s[at..end]));
    }
    let v: Value = serde_json::from_str(&s).map_err(|e| format!("the definition is not JSON: {e}"))?;
    machine(&v, "the definition", true)
}

/// Takes fields out of a JSON object and refuses the ones nobody took.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    taken: HashSet<&'static str>,
    at: String,
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value, at: &str) -> Result<Self, String> {
        let obj = v.as_object().ok_or_else(|| format!("{at} must be an object"))?;
        Ok(Fields { obj, taken: HashSet::new(), at: at.to_string() })
    }
    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.taken.insert(k);
        self.obj.get(k)
    }
    fn has(&self, k: &str) -> bool {
        self.obj.contains_key(k)
    }
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("{}: {msg}", self.at)
    }
    fn str(&mut self, k: &'static str) -> Result<Option<String>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(format!("`{k}` must be a string, not {other}"))),
        }
    }
    fn req_str(&mut self, k: &'static str) -> Result<String, String> {
        self.str(k)?.ok_or_else(|| self.err(format!("`{k}` is required")))
    }
    fn uint(&mut self, k: &'static str) -> Result<Option<u64>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.err(format!("`{k}` must be a non-negative integer, not {v}"))),
        }
    }
    fn num(&mut self, k: &'static str) -> Result<Option<f64>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| self.err(format!("`{k}` must be a number, not {v}"))),
        }
    }
    fn path(&mut self, k: &'static str) -> Result<Option<RefPath>, String> {
        self.str(k)?.map(|p| RefPath::parse(&p).map_err(|e| self.err(format!("`{k}`: {e}")))).transpose()
    }
    /// A path that may be `null` (InputPath, OutputPath): `None` when absent.
    fn nullable_path(&mut self, k: &'static str) -> Result<Option<Option<RefPath>>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(p)) => Ok(Some(Some(RefPath::parse(p).map_err(|e| self.err(format!("`{k}`: {e}")))?))),
            Some(other) => Err(self.err(format!("`{k}` must be a path or null, not {other}"))),
        }
    }
    fn template(&mut self, k: &'static str) -> Result<Option<Template>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Template::compile(v).map(Some).map_err(|e| self.err(format!("`{k}`: {e}"))),
            Some(other) => Err(self.err(format!("`{k}` must be an object, not {other}"))),
        }
    }
    fn finish(self) -> Result<(), String> {
        match self.obj.keys().find(|k| !self.taken.contains(k.as_str())) {
            Some(k) => Err(format!("{}: the field `{k}` is not supported here", self.at)),
            None => Ok(()),
        }
    }
}

fn machine(v: &Value, at: &str, top: bool) -> Result<Machine, String> {
    let mut f = Fields::new(v, at)?;
    let start_at = f.req_str("StartAt")?;
    f.get("Comment");
    if top {
        f.get("Version");
    }
    let timeout = if top { f.uint("TimeoutSeconds")?.map(Duration::from_secs) } else { None };
    let states_v = f.get("States").and_then(Value::as_object).ok_or_else(|| f.err("`States` must be an object"))?;
    f.finish()?;
    let mut states = HashMap::new();
    for (name, sv) in states_v {
        if name.is_empty() || name.len() > 80 {
            return Err(format!("{at}: state names have 1 to 80 characters: `{name}`"));
        }
        states.insert(name.clone(), state(name, sv)?);
    }
    if !states.contains_key(&start_at) {
        return Err(format!("{at}: `StartAt` names `{start_at}`, which is not a state"));
    }
    for s in states.values() {
        let mut targets: Vec<&String> = s.next.iter().chain(s.catch.iter().map(|c| &c.next)).collect();
        if let Kind::Choice { choices, default } = &s.kind {
            targets.extend(choices.iter().map(|(_, n)| n));
            targets.extend(default.iter());
        }
        for t in targets {
            if !states.contains_key(t) {
                return Err(format!("state `{}`: the transition to `{t}` names no state of {at}", s.name));
            }
        }
    }
    Ok(Machine { start_at, states, timeout })
}

fn errors_list(f: &Fields, v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let list = v.and_then(Value::as_array).ok_or_else(|| f.err(format!("a {what} needs `ErrorEquals`, a list of error names")))?;
    let names: Vec<String> =
        list.iter().map(|e| e.as_str().map(str::to_string)).collect::<Option<_>>().ok_or_else(|| f.err("error names are strings"))?;
    if names.is_empty() {
        return Err(f.err(format!("a {what}'s `ErrorEquals` is empty")));
    }
    if names.contains(&"States.ALL".to_string()) && names.len() > 1 {
        return Err(f.err("`States.ALL` must be alone in its `ErrorEquals`"));
    }
    Ok(names)
}

fn parse_result_path(f: &mut Fields) -> Result<ResultPath, String> {
    Ok(match f.get("ResultPath") {
        None => ResultPath::Replace,
        Some(Value::Null) => ResultPath::Discard,
        Some(Value::String(p)) => {
            let p = RefPath::parse(p).map_err(|e| f.err(format!("`ResultPath`: {e}")))?;
            if p.context {
                return Err(f.err("`ResultPath` cannot point into the context object"));
            }
            if p.is_root() { ResultPath::Replace } else { ResultPath::Path(p) }
        }
        Some(other) => return Err(f.err(format!("`ResultPath` must be a path or null, not {other}"))),
    })
}

fn state(name: &str, v: &Value) -> Result<State, String> {
    let at = format!("state `{name}`");
    let mut f = Fields::new(v, &at)?;
    let ty = f.req_str("Type")?;
    f.get("Comment");
    let (io_in, io_out, params, selector, rpath, transitions, retry_catch) = match ty.as_str() {
        "Task" | "Parallel" | "Map" => (true, true, ty != "Map", true, true, true, true),
        "Pass" => (true, true, true, false, true, true, false),
        "Wait" => (true, true, false, false, false, true, false),
        "Choice" => (true, true, false, false, false, false, false),
        "Succeed" => (true, true, false, false, false, false, false),
        "Fail" => (false, false, false, false, false, false, false),
        other => return Err(f.err(format!("the state type `{other}` is not known"))),
    };
    let input_path = if io_in { f.nullable_path("InputPath")? } else { None };
    let output_path = if io_out { f.nullable_path("OutputPath")? } else { None };
    let parameters = if params { f.template("Parameters")? } else { None };
    let result_selector = if selector { f.template("ResultSelector")? } else { None };
    let result_path = if rpath { parse_result_path(&mut f)? } else { ResultPath::Replace };
    let next = if transitions {
        let next = f.str("Next")?;
        let end = f.get("End").and_then(Value::as_bool).unwrap_or(false);
        match (&next, end) {
            (Some(_), true) => return Err(f.err("`Next` and `End` cannot both be set")),
            (None, false) => return Err(f.err("needs `Next` or `\"End\": true`")),
            _ => {}
        }
        next
    } else {
        None
    };
    let (mut retry, mut catch) = (Vec::new(), Vec::new());
    if retry_catch {
        if let Some(list) = f.get("Retry") {
            let list = list.as_array().ok_or_else(|| f.err("`Retry` must be a list"))?;
            for (i, r) in list.iter().enumerate() {
                let mut rf = Fields::new(r, &format!("{at}, retrier {i}"))?;
                let ev = rf.get("ErrorEquals");
                let errors = errors_list(&rf, ev, "retrier")?;
                let interval = rf.uint("IntervalSeconds")?.unwrap_or(1);
                let max_attempts = rf.uint("MaxAttempts")?.unwrap_or(3);
                let backoff_rate = rf.num("BackoffRate")?.unwrap_or(2.0);
                let max_delay = rf.uint("MaxDelaySeconds")?;
                let full_jitter = match rf.str("JitterStrategy")?.as_deref() {
                    None | Some("NONE") => false,
                    Some("FULL") => true,
                    Some(o) => return Err(rf.err(format!("`JitterStrategy` is FULL or NONE, not {o}"))),
                };
                rf.get("Comment");
                rf.finish()?;
                if interval == 0 || backoff_rate < 1.0 || max_attempts > 99_999_999 {
                    return Err(format!("{at}, retrier {i}: IntervalSeconds ≥ 1, BackoffRate ≥ 1.0, MaxAttempts ≤ 99999999"));
                }
                if errors.iter().any(|e| e == "States.ALL") && i + 1 != list.len() {
                    return Err(format!("{at}: a retrier on `States.ALL` must be the last"));
                }
                retry.push(Retrier {
                    errors,
                    interval: Duration::from_secs(interval),
                    max_attempts: max_attempts as u32,
                    backoff_rate,
                    max_delay: max_delay.map(Duration::from_secs),
                    full_jitter,
                });
            }
        }
        if let Some(list) = f.get("Catch") {
            let list = list.as_array().ok_or_else(|| f.err("`Catch` must be a list"))?;
            for (i, c) in list.iter().enumerate() {
                let mut cf = Fields::new(c, &format!("{at}, catcher {i}"))?;
                let ev = cf.get("ErrorEquals");
                let errors = errors_list(&cf, ev, "catcher")?;
                let next = cf.req_str("Next")?;
                let result_path = parse_result_path(&mut cf)?;
                cf.get("Comment");
                cf.finish()?;
                if errors.iter().any(|e| e == "States.ALL") && i + 1 != list.len() {
                    return Err(format!("{at}: a catcher on `States.ALL` must be the last"));
                }
                catch.push(Catcher { errors, result_path, next });
            }
        }
    }
    let kind = match ty.as_str() {
        "Task" => {
            let resource = f.req_str("Resource")?;
            let timeout = f.uint("TimeoutSeconds")?.map(Duration::from_secs);
            Kind::Task { resource, timeout }
        }
        "Pass" => Kind::Pass { result: f.get("Result").cloned() },
        "Choice" => {
            let list = f.get("Choices").and_then(Value::as_array).ok_or_else(|| f.err("`Choices` must be a non-empty list"))?;
            if list.is_empty() {
                return Err(f.err("`Choices` must be a non-empty list"));
            }
            let mut choices = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let rule = Rule::parse(c, true).map_err(|e| format!("{at}, choice {i}: {e}"))?;
                let next = c.get("Next").and_then(Value::as_str).ok_or_else(|| format!("{at}, choice {i}: needs `Next`"))?;
                choices.push((rule, next.to_string()));
            }
            Kind::Choice { choices, default: f.str("Default")? }
        }
        "Wait" => {
            let mut found = Vec::new();
            if let Some(s) = f.uint("Seconds")? {
                found.push(WaitFor::Seconds(s));
            }
            if let Some(p) = f.path("SecondsPath")? {
                found.push(WaitFor::SecondsPath(p));
            }
            if let Some(t) = f.str("Timestamp")? {
                let t = chrono::DateTime::parse_from_rfc3339(&t).map_err(|e| f.err(format!("`Timestamp`: {e}")))?;
                found.push(WaitFor::Timestamp(t));
            }
            if let Some(p) = f.path("TimestampPath")? {
                found.push(WaitFor::TimestampPath(p));
            }
            if found.len() != 1 {
                return Err(f.err("a Wait state has exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"));
            }
            Kind::Wait(found.pop().expect("one"))
        }
        "Succeed" => Kind::Succeed,
        "Fail" => {
            let error = f.str("Error")?;
            let cause = f.str("Cause")?;
            let error_path = f.path("ErrorPath")?;
            let cause_path = f.path("CausePath")?;
            if (error.is_some() && error_path.is_some()) || (cause.is_some() && cause_path.is_some()) {
                return Err(f.err("`Error`/`ErrorPath` and `Cause`/`CausePath` exclude each other"));
            }
            Kind::Fail { error, cause, error_path, cause_path }
        }
        "Parallel" => {
            let list = f.get("Branches").and_then(Value::as_array).ok_or_else(|| f.err("`Branches` must be a non-empty list"))?;
            if list.is_empty() {
                return Err(f.err("`Branches` must be a non-empty list"));
            }
            let branches =
                list.iter().enumerate().map(|(i, b)| machine(b, &format!("{at}, branch {i}"), false)).collect::<Result<_, _>>()?;
            Kind::Parallel { branches }
        }
        "Map" => Kind::Map(Box::new(map_spec(&mut f, &at)?)),
        _ => unreachable!("checked above"),
    };
    f.finish()?;
    Ok(State { name: name.to_string(), kind, input_path, output_path, parameters, result_selector, result_path, next, retry, catch })
}

fn map_spec(f: &mut Fields, at: &str) -> Result<MapSpec, String> {
    let proc_v = match (f.get("ItemProcessor"), f.get("Iterator")) {
        (Some(p), None) => p,
        (None, Some(i)) => i,
        _ => return Err(f.err("a Map needs exactly one of `ItemProcessor` and `Iterator`")),
    };
    let mut pf = Fields::new(proc_v, &format!("{at}, ItemProcessor"))?;
    let distributed = match pf.get("ProcessorConfig") {
        None => false,
        Some(cfg) => {
            let mut cf = Fields::new(cfg, &format!("{at}, ProcessorConfig"))?;
            let mode = cf.str("Mode")?.unwrap_or_else(|| "INLINE".into());
            let exec_type = cf.str("ExecutionType")?;
            cf.finish()?;
            match (mode.as_str(), exec_type.as_deref()) {
                ("INLINE", None) => false,
                ("DISTRIBUTED", Some("STANDARD") | Some("EXPRESS")) => true,
                _ => return Err(format!("{at}: ProcessorConfig is INLINE, or DISTRIBUTED with an ExecutionType")),
            }
        }
    };
    // The processor is a machine: take its ProcessorConfig out and parse the rest.
    let mut proc_obj = proc_v.as_object().cloned().unwrap_or_default();
    proc_obj.remove("ProcessorConfig");
    let processor = machine(&Value::Object(proc_obj), &format!("{at}'s item processor"), false)?;
    let _ = pf;
    if f.has("Parameters") && f.has("ItemSelector") {
        return Err(f.err("a Map has `ItemSelector` or the older `Parameters`, not both"));
    }
    let item_selector = match f.template("ItemSelector")? {
        Some(t) => Some(t),
        None => f.template("Parameters")?,
    };
    let items_path = f.path("ItemsPath")?;
    let item_reader = match f.get("ItemReader") {
        None => None,
        Some(r) => {
            let mut rf = Fields::new(r, &format!("{at}, ItemReader"))?;
            let resource = rf.req_str("Resource")?;
            let parameters = rf.template("Parameters")?.ok_or_else(|| rf.err("`Parameters` (Bucket, Key) are required"))?;
            let (input_type, max_items) = match rf.get("ReaderConfig") {
                Some(c) => {
                    let mut cf = Fields::new(c, &format!("{at}, ReaderConfig"))?;
                    let t = cf.req_str("InputType")?;
                    let m = cf.uint("MaxItems")?;
                    cf.finish()?;
                    (t, m)
                }
                None => return Err(rf.err("`ReaderConfig` with an `InputType` is required")),
            };
            rf.finish()?;
            if resource != "arn:aws:states:::s3:getObject" || !matches!(input_type.as_str(), "JSON" | "JSONL") {
                return Err(format!("{at}: ItemReader supports arn:aws:states:::s3:getObject with InputType JSON or JSONL"));
            }
            Some(ItemReader { resource, input_type, parameters, max_items })
        }
    };
    if item_reader.is_some() && items_path.is_some() {
        return Err(f.err("`ItemsPath` and `ItemReader` exclude each other"));
    }
    if item_reader.is_some() && !distributed {
        return Err(f.err("`ItemReader` needs a DISTRIBUTED ItemProcessor"));
    }
    let max_concurrency = match (f.uint("MaxConcurrency")?, f.path("MaxConcurrencyPath")?) {
        (Some(_), Some(_)) => return Err(f.err("`MaxConcurrency` and `MaxConcurrencyPath` exclude each other")),
        (_, Some(p)) => MaxConcurrency::Path(p),
        (n, None) => MaxConcurrency::Fixed(n.unwrap_or(0)),
    };
    let tolerated_percent = f.num("ToleratedFailurePercentage")?;
    let tolerated_count = f.uint("ToleratedFailureCount")?;
    if (tolerated_percent.is_some() || tolerated_count.is_some()) && !distributed {
        return Err(f.err("tolerated failures need a DISTRIBUTED ItemProcessor"));
    }
    if tolerated_percent.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        return Err(f.err("`ToleratedFailurePercentage` is between 0 and 100"));
    }
    f.get("Label");
    Ok(MapSpec { processor, distributed, items_path, item_reader, item_selector, max_concurrency, tolerated_percent, tolerated_count })
}

/// Every Task resource of a machine, nested ones included.
pub fn resources(m: &Machine) -> Vec<&str> {
    let mut out = Vec::new();
    for s in m.states.values() {
        match &s.kind {
            Kind::Task { resource, .. } => out.push(resource.as_str()),
            Kind::Parallel { branches } => branches.iter().for_each(|b| out.extend(resources(b))),
            Kind::Map(spec) => out.extend(resources(&spec.processor)),
            _ => {}
        }
    }
    out
}
