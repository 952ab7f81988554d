//! Executes a loaded definition the way Step Functions does: input and output processing,
//! Task dispatch by resource, Retry (first matching retrier, exponential backoff capped by
//! `MaxDelaySeconds`, full jitter from an injectable RNG), Catch, Choice, Wait, Parallel and
//! Map (inline, and distributed with an ItemReader and tolerated failures). Every step is
//! written to the execution's history, which tests compare with Step Functions' own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use super::states::{self, Kind, MapSpec, MaxConcurrency, State, WaitFor};
use super::states::{Machine, matches};

/// A failed state or execution: an error name and a cause, as Step Functions reports them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self { error: error.into(), cause: cause.into() }
    }
    fn runtime(cause: impl Into<String>) -> Self {
        Self::new("States.Runtime", cause)
    }
    pub fn to_json(&self) -> Value {
        json!({"Error": self.error, "Cause": self.cause})
    }
}

/// What Task states call, and where a Distributed Map reads its items.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// Whether `resource` can be invoked (checked for every Task when a definition is loaded).
    fn knows(&self, resource: &str) -> bool;
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure>;
    /// The items of a Distributed Map's `ItemReader` (`arn:aws:states:::s3:getObject` with
    /// its rendered `Parameters`: Bucket and Key), parsed as `input_type` (JSON or JSONL).
    async fn read_items(&self, parameters: &Value, input_type: &str) -> Result<Vec<Value>, Failure>;
}

/// One entry of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Since the execution started.
    pub elapsed: Duration,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EventKind {
    StateEntered(String),
    StateExited(String),
    TaskFailed { state: String, error: String },
    RetryScheduled { state: String, attempt: u32, delay: Duration },
    Caught { state: String, error: String, next: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed(Failure),
}

#[derive(Debug)]
pub struct Execution {
    pub name: String,
    pub outcome: Outcome,
    pub history: Vec<Event>,
}

impl Execution {
    /// The names of the states entered, in order.
    pub fn path(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StateEntered(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A definition ready to run, with what its tasks call.
pub struct Runner {
    machine: Arc<Machine>,
    handler: Arc<dyn TaskHandler>,
    rng: Mutex<StdRng>,
    name: String,
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Exec {
    history: Mutex<Vec<Event>>,
    started: tokio::time::Instant,
    context: Value,
}

impl Exec {
    fn event(&self, kind: EventKind) {
        self.history.lock().expect("history").push(Event { elapsed: self.started.elapsed(), kind });
    }
}

enum Step<'m> {
    Next(&'m str, Value),
    End(Value),
}

impl Runner {
    /// Load `definition` with its substitutions; every Task resource must be one `handler`
    /// knows.
    pub fn load(
        name: &str,
        definition: &str,
        substitutions: &std::collections::HashMap<String, String>,
        handler: Arc<dyn TaskHandler>,
    ) -> Result<Self, String> {
        let machine = states::load(definition, substitutions)?;
        if let Some(r) = states::resources(&machine).into_iter().find(|r| !handler.knows(r)) {
            return Err(format!("the Task resource `{r}` is not one this runner can call"));
        }
        Ok(Runner { machine: Arc::new(machine), handler, rng: Mutex::new(StdRng::from_os_rng()), name: name.to_string() })
    }

    /// Seed the jitter RNG (tests).
    pub fn with_seed(self, seed: u64) -> Self {
        Self { rng: Mutex::new(StdRng::seed_from_u64(seed)), ..self }
    }

    pub async fn execute(&self, execution: &str, input: Value) -> Execution {
        let exec = Exec {
            history: Mutex::new(Vec::new()),
            started: tokio::time::Instant::now(),
            context: json!({
                "Execution": {
                    "Id": format!("arn:egress:local:execution:{}:{execution}", self.name),
                    "Name": execution,
                    "Input": input.clone(),
                    "StartTime": chrono::Utc::now().to_rfc3339(),
                },
                "StateMachine": {"Id": format!("arn:egress:local:stateMachine:{}", self.name), "Name": self.name},
            }),
        };
        let run = self.run_machine(&self.machine, input, &exec, None);
        let result = match self.machine.timeout {
            Some(t) => {
                tokio::time::timeout(t, run).await.unwrap_or_else(|_| Err(Failure::new("States.Timeout", "the execution timed out")))
            }
            None => run.await,
        };
        let outcome = match result {
            Ok(v) => Outcome::Succeeded(v),
            Err(f) => Outcome::Failed(f),
        };
        Execution { name: execution.to_string(), outcome, history: exec.history.into_inner().expect("history") }
    }

    fn context(&self, exec: &Exec, state: &str, retry_count: u32, item: Option<&Value>) -> Value {
        let mut ctx = exec.context.clone();
        ctx["State"] = json!({"Name": state, "EnteredTime": chrono::Utc::now().to_rfc3339(), "RetryCount": retry_count});
        if let Some(item) = item {
            ctx["Map"] = json!({"Item": item});
        }
        ctx
    }

    fn run_machine<'a>(&'a self, m: &'a Machine, input: Value, exec: &'a Exec, item: Option<Value>) -> BoxFut<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let mut name: &str = &m.start_at;
            let mut input = input;
            loop {
                let st = &m.states[name];
                exec.event(EventKind::StateEntered(name.to_string()));
                match self.run_state(st, input, exec, item.as_ref()).await? {
                    Step::Next(next, out) => {
                        exec.event(EventKind::StateExited(name.to_string()));
                        name = next;
                        input = out;
                    }
                    Step::End(out) => {
                        exec.event(EventKind::StateExited(name.to_string()));
                        return Ok(out);
                    }
                }
            }
        })
    }

    fn finish<'m>(&self, st: &'m State, output: Value, ctx: &Value) -> Result<Step<'m>, Failure> {
        let output = match &st.output_path {
            None => output,
            Some(None) => json!({}),
            Some(Some(p)) => p
                .get(&output, ctx)
                .cloned()
                .ok_or_else(|| Failure::runtime(format!("state `{}`: OutputPath `{}` is not in the output", st.name, p.as_str())))?,
        };
        Ok(match &st.next {
            Some(n) => Step::Next(n, output),
            None => Step::End(output),
        })
    }

    async fn run_state<'m>(&'m self, st: &'m State, raw: Value, exec: &'m Exec, item: Option<&Value>) -> Result<Step<'m>, Failure> {
        let ctx = self.context(exec, &st.name, 0, item);
        let effective = match &st.input_path {
            None => raw.clone(),
            Some(None) => json!({}),
            Some(Some(p)) => p
                .get(&raw, &ctx)
                .cloned()
                .ok_or_else(|| Failure::runtime(format!("state `{}`: InputPath `{}` is not in the input", st.name, p.as_str())))?,
        };
        match &st.kind {
            Kind::Pass { result } => {
                let eff = match &st.parameters {
                    Some(t) => t.render(&effective, &ctx).map_err(|e| Failure::runtime(format!("state `{}`: Parameters: {e}", st.name)))?,
                    None => effective,
                };
                let result = result.clone().unwrap_or(eff);
                let out = st.result_path.apply(raw, result).map_err(|e| Failure::runtime(format!("state `{}`: {e}", st.name)))?;
                self.finish(st, out, &ctx)
            }
            Kind::Choice { choices, default } => {
                let mut next = None;
                for (rule, n) in choices {
                    if rule.eval(&effective, &ctx).map_err(|e| Failure::runtime(format!("state `{}`: {e}", st.name)))? {
                        next = Some(n.as_str());
                        break;
                    }
                }
                let next = next.or(default.as_deref());
                let Some(next) = next else {
                    return Err(Failure::new(
                        "States.NoChoiceMatched",
                        format!("state `{}`: no choice rule matched and there is no Default", st.name),
                    ));
                };
                let out = match &st.output_path {
                    None => effective,
                    Some(None) => json!({}),
                    Some(Some(p)) => p
                        .get(&effective, &ctx)
                        .cloned()
                        .ok_or_else(|| Failure::runtime(format!("state `{}`: OutputPath not in the output", st.name)))?,
                };
                Ok(Step::Next(next, out))
            }
            Kind::Wait(how) => {
                let bad = |what: &str| Failure::runtime(format!("state `{}`: {what}", st.name));
                let delay = match how {
                    WaitFor::Seconds(s) => Duration::from_secs(*s),
                    WaitFor::SecondsPath(p) => Duration::from_secs(
                        p.get(&effective, &ctx).and_then(Value::as_u64).ok_or_else(|| bad("SecondsPath is not a non-negative integer"))?,
                    ),
                    WaitFor::Timestamp(t) => until(t.with_timezone(&chrono::Utc)),
                    WaitFor::TimestampPath(p) => {
                        let t = p.get(&effective, &ctx).and_then(Value::as_str).and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                        until(t.ok_or_else(|| bad("TimestampPath is not an RFC 3339 timestamp"))?.with_timezone(&chrono::Utc))
                    }
                };
                tokio::time::sleep(delay).await;
                self.finish(st, effective, &ctx)
            }
            Kind::Succeed => match self.finish(st, effective, &ctx)? {
                Step::Next(_, v) | Step::End(v) => Ok(Step::End(v)),
            },
            Kind::Fail { error, cause, error_path, cause_path } => {
                let pick = |fixed: &Option<String>, path: &Option<super::path::RefPath>, dflt: &str| -> String {
                    match (fixed, path) {
                        (Some(s), _) => s.clone(),
                        (None, Some(p)) => {
                            p.get(&raw, &ctx).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_default()
                        }
                        _ => dflt.to_string(),
                    }
                };
                Err(Failure::new(pick(error, error_path, "States.Fail"), pick(cause, cause_path, "")))
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_) => self.run_with_retry(st, raw, effective, exec, item).await,
        }
    }

    async fn run_with_retry<'m>(
        &'m self,
        st: &'m State,
        raw: Value,
        effective: Value,
        exec: &'m Exec,
        item: Option<&Value>,
    ) -> Result<Step<'m>, Failure> {
        let mut counts = vec![0u32; st.retry.len()];
        let mut retries = 0u32;
        loop {
            let ctx = self.context(exec, &st.name, retries, item);
            let attempt = async {
                // Map states build each item's input with ItemSelector: Parameters is theirs.
                let payload = match (&st.parameters, &st.kind) {
                    (Some(t), k) if !matches!(k, Kind::Map(_)) => {
                        t.render(&effective, &ctx).map_err(|e| Failure::runtime(format!("state `{}`: Parameters: {e}", st.name)))?
                    }
                    _ => effective.clone(),
                };
                match &st.kind {
                    Kind::Task { resource, timeout } => {
                        let call = self.handler.invoke(resource, payload);
                        match timeout {
                            Some(t) => tokio::time::timeout(*t, call).await.unwrap_or_else(|_| {
                                Err(Failure::new("States.Timeout", format!("the task ran longer than {}s", t.as_secs())))
                            }),
                            None => call.await,
                        }
                    }
                    Kind::Parallel { branches } => {
                        let runs = branches.iter().map(|b| self.run_machine(b, payload.clone(), exec, None));
                        futures::future::try_join_all(runs).await.map(Value::Array)
                    }
                    Kind::Map(spec) => self.run_map(st, spec, payload, &ctx, exec).await,
                    _ => unreachable!("only Task, Parallel and Map retry"),
                }
            }
            .await;
            match attempt {
                Ok(result) => {
                    let result = match &st.result_selector {
                        Some(t) => {
                            t.render(&result, &ctx).map_err(|e| Failure::runtime(format!("state `{}`: ResultSelector: {e}", st.name)))?
                        }
                        None => result,
                    };
                    let out = st.result_path.apply(raw, result).map_err(|e| Failure::runtime(format!("state `{}`: {e}", st.name)))?;
                    return self.finish(st, out, &ctx);
                }
                Err(f) => {
                    if f.error == "States.Runtime" {
                        return Err(f);
                    }
                    if matches!(st.kind, Kind::Task { .. }) {
                        exec.event(EventKind::TaskFailed { state: st.name.clone(), error: f.error.clone() });
                    }
                    if let Some(i) = st.retry.iter().position(|r| matches(&r.errors, &f.error)) {
                        let r = &st.retry[i];
                        if counts[i] < r.max_attempts {
                            counts[i] += 1;
                            retries += 1;
                            let mut delay = r.delay(counts[i]);
                            if r.full_jitter {
                                delay = delay.mul_f64(self.rng.lock().expect("rng").random::<f64>());
                            }
                            exec.event(EventKind::RetryScheduled { state: st.name.clone(), attempt: counts[i], delay });
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    if let Some(c) = st.catch.iter().find(|c| matches(&c.errors, &f.error)) {
                        exec.event(EventKind::Caught { state: st.name.clone(), error: f.error.clone(), next: c.next.clone() });
                        let out =
                            c.result_path.apply(raw, f.to_json()).map_err(|e| Failure::runtime(format!("state `{}`: {e}", st.name)))?;
                        return Ok(Step::Next(&c.next, out));
                    }
                    return Err(f);
                }
            }
        }
    }

    async fn run_map(&self, st: &State, spec: &MapSpec, effective: Value, ctx: &Value, exec: &Exec) -> Result<Value, Failure> {
        let rt = |m: String| Failure::runtime(format!("state `{}`: {m}", st.name));
        let items: Vec<Value> = match (&spec.item_reader, &spec.items_path) {
            (Some(reader), _) => {
                let params = reader.parameters.render(&effective, ctx).map_err(|e| rt(format!("ItemReader: {e}")))?;
                let mut items = self.handler.read_items(&params, &reader.input_type).await?;
                if let Some(max) = reader.max_items {
                    items.truncate(max as usize);
                }
                items
            }
            (None, path) => {
                let v = match path {
                    Some(p) => {
                        p.get(&effective, ctx).cloned().ok_or_else(|| rt(format!("ItemsPath `{}` is not in the input", p.as_str())))?
                    }
                    None => effective.clone(),
                };
                match v {
                    Value::Array(a) => a,
                    other => return Err(rt(format!("the items must be an array, not {other}"))),
                }
            }
        };
        let limit = match &spec.max_concurrency {
            MaxConcurrency::Fixed(n) => *n,
            MaxConcurrency::Path(p) => p
                .get(&effective, ctx)
                .and_then(Value::as_u64)
                .ok_or_else(|| rt(format!("MaxConcurrencyPath `{}` is not a non-negative integer", p.as_str())))?,
        };
        let total = items.len();
        let limit = if limit == 0 { total.max(1) } else { limit as usize };
        let mut runs = futures::stream::iter(items.into_iter().enumerate())
            .map(|(index, value)| {
                let effective = &effective;
                async move {
                    let item = json!({"Index": index, "Value": value});
                    let input = match &spec.item_selector {
                        Some(t) => {
                            let ictx = self.context(exec, &st.name, 0, Some(&item));
                            match t.render(effective, &ictx) {
                                Ok(v) => v,
                                Err(e) => return (index, Err(Failure::runtime(format!("state `{}`: ItemSelector: {e}", st.name)))),
                            }
                        }
                        None => item["Value"].clone(),
                    };
                    (index, self.run_machine(&spec.processor, input, exec, Some(item)).await)
                }
            })
            .buffer_unordered(limit);
        // An iteration's slot is free as soon as it ends, whichever it is; results keep the
        // items' order.
        let mut results = vec![Value::Null; total];
        let mut failed = 0usize;
        while let Some((index, r)) = runs.next().await {
            match r {
                Ok(v) => results[index] = v,
                Err(f) if !spec.distributed || f.error == "States.Runtime" => return Err(f),
                Err(f) => {
                    failed += 1;
                    results[index] = json!({"Error": f.error, "Cause": f.cause});
                    // Over either threshold fails the Map; with neither, any failure does.
                    let over_count = spec.tolerated_count.is_some_and(|c| failed as u64 > c);
                    let over_pct = spec.tolerated_percent.is_some_and(|p| failed as f64 * 100.0 / total as f64 > p);
                    let untolerant = spec.tolerated_count.is_none() && spec.tolerated_percent.is_none();
                    if over_count || over_pct || untolerant {
                        return Err(Failure::new(
                            "States.ExceedToleratedFailureThreshold",
                            format!("{failed} of {total} items failed; the last with {}: {}", f.error, f.cause),
                        ));
                    }
                }
            }
        }
        Ok(Value::Array(results))
    }
}

fn until(t: chrono::DateTime<chrono::Utc>) -> Duration {
    (t - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
}
