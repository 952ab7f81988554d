//! The in-process ASL runner (`egress::orchestrate::asl`) against Step Functions semantics:
//! retry timing and matching, Catch and ResultPath, States.Runtime, timeouts, input and output
//! processing with intrinsic functions, Choice, Wait, Parallel, Map (inline and distributed),
//! load-time refusals, and the real `statemachines/export.asl.json` with a scripted handler.
//!
//! Every test runs on tokio's paused clock (`start_paused`): sleeps advance virtual time at
//! once, so delays are asserted exactly and no test waits for real.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egress::orchestrate::asl::{EventKind, Execution, Failure, Outcome, Runner, TaskHandler};
use serde_json::{Value, json};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// A scripted TaskHandler
// ---------------------------------------------------------------------------------------------

/// What one invocation does: wait `after` (virtual time), then answer.
struct Reply {
    after: Duration,
    result: Result<Value, Failure>,
}

fn ok(v: Value) -> Reply {
    Reply { after: Duration::ZERO, result: Ok(v) }
}

fn fail(error: &str) -> Reply {
    Reply { after: Duration::ZERO, result: Err(Failure::new(error, format!("{error} (scripted)"))) }
}

impl Reply {
    fn after(self, d: Duration) -> Reply {
        Reply { after: d, ..self }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Decides the reply of a call: (resource, input, how many earlier calls had this resource and
/// this very input).
type Script = dyn Fn(&str, &Value, usize) -> Reply + Send + Sync;

#[derive(Debug, Clone)]
struct Call {
    resource: String,
    input: Value,
    at: Duration,
}

#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    seen: HashMap<String, usize>,
    running: HashMap<String, usize>,
    peak: HashMap<String, usize>,
    reads: Vec<(Value, String)>,
}

struct Scripted {
    resources: Vec<String>,
    script: Box<Script>,
    items: Vec<Value>,
    epoch: Instant,
    log: Mutex<Log>,
}

impl Scripted {
    fn new(resources: &[&str], script: impl Fn(&str, &Value, usize) -> Reply + Send + Sync + 'static) -> Arc<Scripted> {
        Arc::new(Scripted {
            resources: resources.iter().map(|s| s.to_string()).collect(),
            script: Box::new(script),
            items: Vec::new(),
            epoch: Instant::now(),
            log: Mutex::new(Log::default()),
        })
    }

    /// Each resource answers from its queue, in order; an empty queue echoes the input.
    fn queued(queues: Vec<(&str, Vec<Reply>)>) -> Arc<Scripted> {
        let names: Vec<&str> = queues.iter().map(|(n, _)| *n).collect();
        let queues: Mutex<HashMap<String, VecDeque<Reply>>> =
            Mutex::new(queues.into_iter().map(|(n, q)| (n.to_string(), q.into_iter().collect())).collect());
        Scripted::new(&names, move |resource, input, _| {
            queues.lock().unwrap().get_mut(resource).and_then(VecDeque::pop_front).unwrap_or_else(|| ok(input.clone()))
        })
    }

    fn with_items(self: Arc<Self>, items: Vec<Value>) -> Arc<Scripted> {
        let mut me = Arc::try_unwrap(self).ok().expect("not shared yet");
        me.items = items;
        Arc::new(me)
    }

    fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().calls.clone()
    }

    fn calls_to(&self, resource: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.resource == resource).collect()
    }

    /// The time between consecutive calls of `resource`.
    fn gaps(&self, resource: &str) -> Vec<Duration> {
        let at: Vec<Duration> = self.calls_to(resource).iter().map(|c| c.at).collect();
        at.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn peak(&self, resource: &str) -> usize {
        self.log.lock().unwrap().peak.get(resource).copied().unwrap_or(0)
    }

    fn reads(&self) -> Vec<(Value, String)> {
        self.log.lock().unwrap().reads.clone()
    }
}

/// Counts a call as running until it ends or is dropped (a timeout or a failed sibling branch
/// cancels it).
struct Running<'a> {
    handler: &'a Scripted,
    resource: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut log = self.handler.log.lock().unwrap();
        *log.running.get_mut(&self.resource).expect("counted") -= 1;
    }
}

// The trait is declared with #[async_trait]; this is its expansion (the test crate does not
// depend on async-trait).
impl TaskHandler for Scripted {
    fn knows(&self, resource: &str) -> bool {
        self.resources.iter().any(|r| r == resource)
    }

    fn invoke<'life0, 'life1, 'async_trait>(
        &'life0 self,
        resource: &'life1 str,
        input: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let reply = {
                let mut log = self.log.lock().unwrap();
                let key = format!("{resource} {input}");
                let n = *log.seen.get(&key).unwrap_or(&0);
                log.seen.insert(key, n + 1);
                log.calls.push(Call { resource: resource.to_string(), input: input.clone(), at: self.epoch.elapsed() });
                let running = log.running.entry(resource.to_string()).or_default();
                *running += 1;
                let now = *running;
                let peak = log.peak.entry(resource.to_string()).or_default();
                *peak = (*peak).max(now);
                drop(log);
                (self.script)(resource, &input, n)
            };
            let _running = Running { handler: self, resource: resource.to_string() };
            if !reply.after.is_zero() {
                tokio::time::sleep(reply.after).await;
            }
            reply.result
        })
    }

    fn read_items<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        parameters: &'life1 Value,
        input_type: &'life2 str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Value>, Failure>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.log.lock().unwrap().reads.push((parameters.clone(), input_type.to_string()));
            Ok(self.items.clone())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn load(definition: &Value, handler: &Arc<Scripted>) -> Runner {
    Runner::load("test", &definition.to_string(), &HashMap::new(), handler.clone())
        .unwrap_or_else(|e| panic!("the definition should load: {e}\n{definition:#}"))
}

fn load_err(definition: &str, handler: &Arc<Scripted>) -> String {
    match Runner::load("test", definition, &HashMap::new(), handler.clone()) {
        Ok(_) => panic!("the definition should be refused:\n{definition}"),
        Err(e) => e,
    }
}

/// A machine of one Task state `T`.
fn one_task(task: Value) -> Value {
    let mut t = task;
    t["Type"] = json!("Task");
    if t.get("Next").is_none() {
        t["End"] = json!(true);
    }
    json!({"StartAt": "T", "States": {"T": t}})
}

fn succeeded(ex: &Execution) -> &Value {
    match &ex.outcome {
        Outcome::Succeeded(v) => v,
        Outcome::Failed(f) => panic!("the execution failed with {}: {}\npath: {:?}", f.error, f.cause, ex.path()),
    }
}

fn failed(ex: &Execution) -> &Failure {
    match &ex.outcome {
        Outcome::Failed(f) => f,
        Outcome::Succeeded(v) => panic!("the execution succeeded with {v}\npath: {:?}", ex.path()),
    }
}

fn retry_delays(ex: &Execution, state: &str) -> Vec<Duration> {
    ex.history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { state: s, delay, .. } if s == state => Some(*delay),
            _ => None,
        })
        .collect()
}

fn count(path: &[String], state: &str) -> usize {
    path.iter().filter(|s| *s == state).count()
}

/// The path restricted to `states` (e.g. the top-level states), in order.
fn only(path: &[String], states: &[&str]) -> Vec<String> {
    path.iter().filter(|s| states.contains(&s.as_str())).cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Retry
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn retry_without_jitter_waits_interval_times_backoff_capped_by_max_delay() {
    let mut replies: Vec<Reply> = (0..6).map(|_| fail("E.Flaky")).collect();
    replies.push(ok(json!({"done": true})));
    let h = Scripted::queued(vec![("task:flaky", replies)]);
    let def = one_task(json!({
        "Resource": "task:flaky",
        "Retry": [{"ErrorEquals": ["E.Flaky"], "IntervalSeconds": 3, "BackoffRate": 2.0, "MaxAttempts": 6,
                   "MaxDelaySeconds": 20, "JitterStrategy": "NONE"}]
    }));
    let ex = load(&def, &h).execute("e", json!({"x": 1})).await;
    assert_eq!(succeeded(&ex), &json!({"done": true}));
    let expected: Vec<Duration> = [3, 6, 12, 20, 20, 20].iter().map(|s| Duration::from_secs(*s)).collect();
    assert_eq!(h.calls_to("task:flaky").len(), 7);
    assert_eq!(h.gaps("task:flaky"), expected, "the invocations are apart by exactly the delays");
    assert_eq!(retry_delays(&ex, "T"), expected);
    assert_eq!(ex.path(), vec!["T"], "a retry does not enter the state again");
}

#[tokio::test(start_paused = true)]
async fn retry_with_a_fractional_backoff_and_no_cap_then_gives_up_with_the_error() {
    let h = Scripted::queued(vec![("task:flaky", (0..10).map(|_| fail("E.Flaky")).collect())]);
    // No JitterStrategy: NONE is the default.
    let def = one_task(json!({
        "Resource": "task:flaky",
        "Retry": [{"ErrorEquals": ["E.Flaky"], "IntervalSeconds": 2, "BackoffRate": 1.5, "MaxAttempts": 3}]
    }));
    let ex = load(&def, &h).execute("e", json!({})).await;
    let f = failed(&ex);
    assert_eq!(f.error, "E.Flaky");
    assert_eq!(f.cause, "E.Flaky (scripted)", "the task's cause is kept");
    assert_eq!(h.calls_to("task:flaky").len(), 4, "1 attempt + MaxAttempts 3 retries");
    assert_eq!(h.gaps("task:flaky"), vec![secs(2.0), secs(3.0), secs(4.5)]);
}

/// One run of a task failing 5 times with FULL jitter; returns the delays the runner chose.
async fn full_jitter_run(seed: u64) -> Vec<Duration> {
    let mut replies: Vec<Reply> = (0..5).map(|_| fail("E.Busy")).collect();
    replies.push(ok(json!("ok")));
    let h = Scripted::queued(vec![("task:busy", replies)]);
    let def = one_task(json!({
        "Resource": "task:busy",
        "Retry": [{"ErrorEquals": ["E.Busy"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 5,
                   "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}]
    }));
    let ex = load(&def, &h).with_seed(seed).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex), &json!("ok"));
    let delays = retry_delays(&ex, "T");
    assert_eq!(delays.len(), 5);
    let caps = [2.0, 4.0, 8.0, 10.0, 10.0];
    for (i, (d, cap)) in delays.iter().zip(caps).enumerate() {
        assert!(*d <= secs(cap), "seed {seed}: retry {} waited {d:?}, more than the cap {cap}s", i + 1);
    }
    // The sleeps really are the chosen delays (tokio's timer rounds up to the millisecond).
    for (gap, d) in h.gaps("task:busy").iter().zip(&delays) {
        assert!(*gap >= *d && *gap - *d <= Duration::from_millis(1), "seed {seed}: slept {gap:?} for a delay of {d:?}");
    }
    let total: Duration = delays.iter().sum();
    assert!(total < secs(34.0), "seed {seed}: FULL jitter never shortened a delay: {delays:?}");
    delays
}

#[tokio::test(start_paused = true)]
async fn full_jitter_delays_are_within_the_cap_and_follow_the_seed() {
    let a = full_jitter_run(7).await;
    let b = full_jitter_run(7).await;
    let c = full_jitter_run(8).await;
    assert_eq!(a, b, "the same seed gives the same delays");
    assert_ne!(a, c, "another seed gives other delays");
}

#[tokio::test(start_paused = true)]
async fn the_first_matching_retrier_decides_even_when_exhausted() {
    let def = one_task(json!({
        "Resource": "task:x",
        "Retry": [
            {"ErrorEquals": ["E.A"], "IntervalSeconds": 1, "MaxAttempts": 1},
            {"ErrorEquals": ["E.A", "E.B"], "IntervalSeconds": 5, "MaxAttempts": 3},
            {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 9, "MaxAttempts": 2}
        ]
    }));
    // E.A matches the first and the second retrier: the first is used; once it is exhausted
    // the state fails, the later retriers are not consulted.
    let h = Scripted::queued(vec![("task:x", vec![fail("E.A"), fail("E.A"), ok(json!(1))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(failed(&ex).error, "E.A");
    assert_eq!(h.gaps("task:x"), vec![secs(1.0)]);

    // E.B goes to the second retrier, anything else to States.ALL (last).
    let h = Scripted::queued(vec![("task:x", vec![fail("E.B"), fail("E.Other"), ok(json!(2))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex), &json!(2));
    assert_eq!(h.gaps("task:x"), vec![secs(5.0), secs(9.0)]);
}

#[tokio::test(start_paused = true)]
async fn each_retrier_counts_its_own_attempts() {
    // The example of the Step Functions guide: ErrorA, ErrorB, ErrorC, ErrorB. The first two
    // use the first retrier (1 s, 2 s), the third the second retrier (its own first retry: 5 s);
    // the fourth finds the first retrier exhausted (MaxAttempts 2) and is caught.
    let def = json!({
        "StartAt": "X",
        "States": {
            "X": {
                "Type": "Task",
                "Resource": "task:x",
                "Retry": [
                    {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                    {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}],
                "Next": "Y"
            },
            "Y": {"Type": "Pass", "End": true},
            "Z": {"Type": "Pass", "End": true}
        }
    });
    let h = Scripted::queued(vec![("task:x", vec![fail("ErrorA"), fail("ErrorB"), fail("ErrorC"), fail("ErrorB"), ok(json!(0))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex), &json!({"Error": "ErrorB", "Cause": "ErrorB (scripted)"}));
    assert_eq!(ex.path(), vec!["X", "Z"]);
    assert_eq!(h.calls_to("task:x").len(), 4);
    assert_eq!(h.gaps("task:x"), vec![secs(1.0), secs(2.0), secs(5.0)]);
    let attempts: Vec<u32> = ex
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![1, 2, 1], "the attempt number is the retrier's own");
}

#[tokio::test(start_paused = true)]
async fn max_attempts_zero_never_retries() {
    let def = one_task(json!({
        "Resource": "task:x",
        "Retry": [
            {"ErrorEquals": ["E.Fatal"], "MaxAttempts": 0},
            {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3}
        ]
    }));
    let h = Scripted::queued(vec![("task:x", vec![fail("E.Fatal"), ok(json!(1))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(failed(&ex).error, "E.Fatal");
    assert_eq!(h.calls_to("task:x").len(), 1);
    assert!(retry_delays(&ex, "T").is_empty());
    assert_eq!(ex.history.last().map(|e| e.elapsed), Some(Duration::ZERO), "no time was spent waiting");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_fails_twice_then_succeeds_is_invoked_three_times() {
    let def = json!({
        "StartAt": "Fetch",
        "States": {
            "Fetch": {
                "Type": "Task",
                "Resource": "task:fetch",
                "Parameters": {"id.$": "$.id"},
                "ResultPath": "$.fetched",
                "Retry": [{"ErrorEquals": ["E.Transient"]}],
                "Next": "After"
            },
            "After": {"Type": "Pass", "End": true}
        }
    });
    let h = Scripted::queued(vec![("task:fetch", vec![fail("E.Transient"), fail("E.Transient"), ok(json!({"rows": 3}))])]);
    let ex = load(&def, &h).execute("e", json!({"id": "a1", "keep": [1]})).await;
    assert_eq!(succeeded(&ex), &json!({"id": "a1", "keep": [1], "fetched": {"rows": 3}}));
    let calls = h.calls_to("task:fetch");
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.input == json!({"id": "a1"})), "every attempt gets the same Parameters");
    // The defaults: IntervalSeconds 1, BackoffRate 2.0, MaxAttempts 3.
    assert_eq!(h.gaps("task:fetch"), vec![secs(1.0), secs(2.0)]);
    assert_eq!(ex.path(), vec!["Fetch", "After"]);
    let failures = ex.history.iter().filter(|e| matches!(&e.kind, EventKind::TaskFailed { error, .. } if error == "E.Transient")).count();
    assert_eq!(failures, 2);
}

#[tokio::test(start_paused = true)]
async fn the_context_object_counts_the_retries_of_the_state() {
    let def = one_task(json!({
        "Resource": "task:x",
        "Parameters": {"try.$": "$$.State.RetryCount", "state.$": "$$.State.Name"},
        "Retry": [{"ErrorEquals": ["E.Again"], "IntervalSeconds": 1, "BackoffRate": 1.0}]
    }));
    let h = Scripted::queued(vec![("task:x", vec![fail("E.Again"), fail("E.Again"), ok(json!("done"))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex), &json!("done"));
    let tries: Vec<Value> = h.calls_to("task:x").into_iter().map(|c| c.input).collect();
    assert_eq!(tries, vec![json!({"try": 0, "state": "T"}), json!({"try": 1, "state": "T"}), json!({"try": 2, "state": "T"})]);
    assert_eq!(h.gaps("task:x"), vec![secs(1.0), secs(1.0)], "BackoffRate 1.0: a constant interval");
}

// ---------------------------------------------------------------------------------------------
// Catch, States.Runtime, timeouts
// ---------------------------------------------------------------------------------------------

fn catching(catcher: Value) -> Value {
    json!({
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "task:x",
                "InputPath": "$.inner",
                "Parameters": {"v.$": "$.v"},
                "Catch": [{"ErrorEquals": ["E.Other"], "Next": "Wrong"}, catcher],
                "Next": "Wrong"
            },
            "Handle": {"Type": "Pass", "End": true},
            "Wrong": {"Type": "Fail", "Error": "Test.WrongState"}
        }
    })
}

#[tokio::test(start_paused = true)]
async fn catch_result_path_merges_the_error_into_the_original_input() {
    let input = json!({"inner": {"v": 1}, "keep": "me"});
    let h = Scripted::queued(vec![("task:x", vec![fail("E.Bad")])]);
    let def = catching(json!({"ErrorEquals": ["E.Bad"], "ResultPath": "$.error", "Next": "Handle"}));
    let ex = load(&def, &h).execute("e", input.clone()).await;
    assert_eq!(
        succeeded(&ex),
        &json!({"inner": {"v": 1}, "keep": "me", "error": {"Error": "E.Bad", "Cause": "E.Bad (scripted)"}}),
        "the state's raw input (not the InputPath/Parameters view of it) gets the error"
    );
    assert_eq!(ex.path(), vec!["T", "Handle"]);
    assert!(ex.history.iter().any(|e| matches!(&e.kind, EventKind::Caught { state, error, next }
        if state == "T" && error == "E.Bad" && next == "Handle")));

    // Without ResultPath the error output replaces the input.
    let h = Scripted::queued(vec![("task:x", vec![fail("E.Bad")])]);
    let def = catching(json!({"ErrorEquals": ["E.Bad"], "Next": "Handle"}));
    let ex = load(&def, &h).execute("e", input.clone()).await;
    assert_eq!(succeeded(&ex), &json!({"Error": "E.Bad", "Cause": "E.Bad (scripted)"}));

    // ResultPath null: the input passes through unchanged.
    let h = Scripted::queued(vec![("task:x", vec![fail("E.Bad")])]);
    let def = catching(json!({"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "Handle"}));
    let ex = load(&def, &h).execute("e", input.clone()).await;
    assert_eq!(succeeded(&ex), &input);
}

#[tokio::test(start_paused = true)]
async fn states_runtime_is_neither_retried_nor_caught_by_states_all() {
    let h = Scripted::queued(vec![("task:x", vec![])]);
    let guarded = |task: Value| {
        let mut t = task;
        t["Type"] = json!("Task");
        t["Resource"] = json!("task:x");
        t["Retry"] = json!([{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3}]);
        t["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]);
        t["End"] = json!(true);
        json!({"StartAt": "T", "States": {"T": t, "Caught": {"Type": "Pass", "End": true}}})
    };
    let cases = [
        ("InputPath", json!({"InputPath": "$.missing"}), 0),
        ("Parameters", json!({"Parameters": {"x.$": "$.missing"}}), 0),
        ("ResultSelector", json!({"ResultSelector": {"x.$": "$.missing"}}), 1),
        ("OutputPath", json!({"OutputPath": "$.missing"}), 1),
    ];
    for (what, fields, invocations) in cases {
        let before = h.calls().len();
        let ex = load(&guarded(fields), &h).execute("e", json!({"present": 1})).await;
        let f = failed(&ex);
        assert_eq!(f.error, "States.Runtime", "{what}: {}", f.cause);
        assert!(f.cause.contains("$.missing"), "{what}: the cause names the path: {}", f.cause);
        assert_eq!(ex.path(), vec!["T"], "{what}: not caught");
        assert_eq!(h.calls().len() - before, invocations, "{what}: not retried");
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_timeout_is_states_timeout_and_can_be_retried() {
    let def = one_task(json!({
        "Resource": "task:slow",
        "TimeoutSeconds": 5,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 2, "MaxAttempts": 1}]
    }));
    let h = Scripted::queued(vec![("task:slow", vec![ok(json!("late")).after(secs(60.0)), ok(json!("quick")).after(secs(1.0))])]);
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex), &json!("quick"));
    assert_eq!(h.gaps("task:slow"), vec![secs(7.0)], "timed out at 5 s, retried 2 s later");
    assert!(ex.history.iter().any(|e| matches!(&e.kind, EventKind::TaskFailed { error, .. } if error == "States.Timeout")));
    assert_eq!(ex.history.last().unwrap().elapsed, secs(8.0));
    assert_eq!(h.peak("task:slow"), 1, "the timed-out call was abandoned before the retry");
}

#[tokio::test(start_paused = true)]
async fn states_task_failed_does_not_match_a_timeout_but_states_all_does() {
    let def = |errors: Value| {
        json!({
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": "task:slow", "TimeoutSeconds": 5,
                      "Catch": [{"ErrorEquals": errors, "ResultPath": "$.error", "Next": "Caught"}], "End": true},
                "Caught": {"Type": "Pass", "End": true}
            }
        })
    };
    let slow = || Scripted::queued(vec![("task:slow", vec![ok(json!(1)).after(secs(30.0))])]);
    let ex = load(&def(json!(["States.TaskFailed"])), &slow()).execute("e", json!({})).await;
    assert_eq!(failed(&ex).error, "States.Timeout");
    assert_eq!(ex.history.last().unwrap().elapsed, secs(5.0));

    let ex = load(&def(json!(["States.ALL"])), &slow()).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex)["error"]["Error"], json!("States.Timeout"));

    // States.TaskFailed does match a task's own error names.
    let h = Scripted::queued(vec![("task:slow", vec![fail("Custom.Error")])]);
    let ex = load(&def(json!(["States.TaskFailed"])), &h).execute("e", json!({})).await;
    assert_eq!(succeeded(&ex)["error"]["Error"], json!("Custom.Error"));
}

// ---------------------------------------------------------------------------------------------
// Input and output processing
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn input_path_parameters_result_selector_result_path_output_path_with_intrinsics() {
    let def = json!({
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "task:work",
                "InputPath": "$.job",
                "Parameters": {
                    "title.$": "States.Format('job {} has {} parts', $.id, States.ArrayLength($.parts))",
                    "count.$": "States.ArrayLength($.parts)",
                    "next.$": "States.MathAdd($.n, 1)",
                    "first.$": "$.parts[0]",
                    "state.$": "$$.State.Name",
                    "execution.$": "$$.Execution.Name",
                    "fixed": {"deep": [1, "two"]}
                },
                "ResultSelector": {
                    "rows.$": "$.meta.rows",
                    "title.$": "$.title",
                    "total.$": "States.MathAdd($.meta.rows, $.count)"
                },
                "ResultPath": "$.out.result",
                "OutputPath": "$.out",
                "Next": "Done"
            },
            "Done": {"Type": "Pass", "End": true}
        }
    });
    let h = Scripted::new(&["task:work"], |_, input, _| {
        let mut out = input.clone();
        out["meta"] = json!({"rows": 10, "noise": true});
        ok(out)
    });
    let input = json!({"job": {"id": "j1", "parts": ["a", "b", "c"], "n": 41}, "out": {"prior": "kept"}});
    let ex = load(&def, &h).execute("exec-7", input).await;
    assert_eq!(
        h.calls_to("task:work")[0].input,
        json!({
            "title": "job j1 has 3 parts",
            "count": 3,
            "next": 42,
            "first": "a",
            "state": "Work",
            "execution": "exec-7",
            "fixed": {"deep": [1, "two"]}
        })
    );
    assert_eq!(succeeded(&ex), &json!({"prior": "kept", "result": {"rows": 10, "title": "job j1 has 3 parts", "total": 13}}));
}

// ---------------------------------------------------------------------------------------------
// Choice
// ---------------------------------------------------------------------------------------------

fn choice_machine(with_default: bool) -> Value {
    let mut route = json!({
        "Type": "Choice",
        "InputPath": "$.job",
        "Choices": [
            {"Variable": "$.format", "StringEquals": "csv", "Next": "Csv"},
            {"And": [{"Variable": "$.rows", "NumericGreaterThan": 1000}, {"Variable": "$.compress", "BooleanEquals": true}], "Next": "Big"},
            {"Or": [{"Variable": "$.rows", "NumericEquals": 0}, {"Variable": "$.rows", "NumericLessThan": 0}], "Next": "Empty"},
            {"Not": {"Variable": "$.tenant", "IsPresent": true}, "Next": "NoTenant"},
            {"Variable": "$.limit", "NumericLessThanPath": "$.rows", "Next": "Over"}
        ]
    });
    if with_default {
        route["Default"] = json!("Other");
    }
    let end = |name: &str| json!({"Type": "Pass", "Result": name, "ResultPath": "$.route", "End": true});
    json!({
        "StartAt": "Route",
        "States": {
            "Route": route,
            "Csv": end("csv"), "Big": end("big"), "Empty": end("empty"), "NoTenant": end("no tenant"),
            "Over": end("over"), "Other": end("other")
        }
    })
}

#[tokio::test(start_paused = true)]
async fn choice_rules_pick_the_first_match_or_the_default() {
    let h = Scripted::queued(vec![]);
    let runner = load(&choice_machine(true), &h);
    let job = |format: &str, rows: f64, compress: bool, tenant: bool, limit: f64| {
        let mut j = json!({"format": format, "rows": rows, "compress": compress, "limit": limit});
        if tenant {
            j["tenant"] = json!("t1");
        }
        json!({"job": j})
    };
    let cases = [
        (job("csv", 5000.0, true, true, 1e9), "Csv"),
        (job("parquet", 5000.0, true, true, 1e9), "Big"),
        (job("parquet", 1000.0, true, true, 1e9), "Other"),
        (job("parquet", 5000.0, false, true, 1e9), "Other"),
        (job("json", 0.0, false, true, 1e9), "Empty"),
        (job("json", -3.0, false, true, 1e9), "Empty"),
        (job("json", 10.0, false, false, 1e9), "NoTenant"),
        (job("json", 10.0, false, true, 9.5), "Over"),
        (job("json", 10.0, false, true, 10.0), "Other"),
    ];
    for (input, next) in cases {
        let ex = runner.execute("e", input.clone()).await;
        assert_eq!(ex.path(), vec!["Route", next], "input {input}");
        // The Choice passes its (InputPath) input on; the target adds `route`.
        let mut expected = input["job"].clone();
        expected["route"] = json!(next.to_lowercase().replace("notenant", "no tenant"));
        assert_eq!(succeeded(&ex), &expected, "input {input}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_choice_without_default_that_matches_nothing_fails_with_no_choice_matched() {
    let h = Scripted::queued(vec![]);
    let ex = load(&choice_machine(false), &h)
        .execute("e", json!({"job": {"format": "json", "rows": 10, "compress": false, "tenant": "t", "limit": 10}}))
        .await;
    assert_eq!(failed(&ex).error, "States.NoChoiceMatched");
    assert_eq!(ex.path(), vec!["Route"]);
}

/// Step Functions fails a Choice rule whose `Variable` is not in the input (States.Runtime,
/// "Invalid path '$.x': The choice state's condition path references an invalid value"), unless
/// the operator is IsPresent: that is what IsPresent is for.
#[tokio::test(start_paused = true)]
async fn a_choice_comparison_on_a_missing_variable_is_a_runtime_error() {
    let h = Scripted::queued(vec![]);
    let def = json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.missing", "StringEquals": "x", "Next": "A"}], "Default": "B"},
            "A": {"Type": "Pass", "End": true},
            "B": {"Type": "Pass", "End": true}
        }
    });
    let ex = load(&def, &h).execute("e", json!({"present": 1})).await;
    assert_eq!(failed(&ex).error, "States.Runtime", "path {:?}", ex.path());
}

// ---------------------------------------------------------------------------------------------
// Wait
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn wait_seconds_and_seconds_path_wait_exactly() {
    let def = json!({
        "StartAt": "Pause",
        "States": {
            "Pause": {"Type": "Wait", "Seconds": 3, "Next": "PauseFor"},
            "PauseFor": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Until"},
            "Until": {"Type": "Wait", "TimestampPath": "$.past", "Next": "Stamp"},
            "Stamp": {"Type": "Task", "Resource": "task:stamp", "ResultPath": null, "End": true}
        }
    });
    let h = Scripted::queued(vec![("task:stamp", vec![])]);
    let input = json!({"delay": 7, "past": "2001-01-01T00:00:00Z"});
    let ex = load(&def, &h).execute("e", input.clone()).await;
    assert_eq!(succeeded(&ex), &input);
    assert_eq!(h.calls_to("task:stamp")[0].at, secs(10.0), "3 s, then 7 s, then a timestamp in the past: no wait");
    assert_eq!(ex.path(), vec!["Pause", "PauseFor", "Until", "Stamp"]);

    let ex = load(&def, &h).execute("e", json!({"delay": "soon", "past": "2001-01-01T00:00:00Z"})).await;
    assert_eq!(failed(&ex).error, "States.Runtime", "SecondsPath must point at a number");
}

#[tokio::test(start_paused = true)]
async fn the_execution_times_out_after_its_timeout_seconds() {
    let def = json!({
        "TimeoutSeconds": 5,
        "StartAt": "Long",
        "States": {
            "Long": {"Type": "Wait", "Seconds": 3, "Next": "Longer"},
            "Longer": {"Type": "Task", "Resource": "task:x", "End": true}
        }
    });
    let h = Scripted::queued(vec![("task:x", vec![ok(json!(1)).after(secs(60.0))])]);
    let started = Instant::now();
    let ex = load(&def, &h).execute("e", json!({})).await;
    assert_eq!(failed(&ex).error, "States.Timeout");
    assert_eq!(started.elapsed(), secs(5.0));
    assert_eq!(ex.path(), vec!["Long", "Longer"]);
}

// ---------------------------------------------------------------------------------------------
// Parallel
// ---------------------------------------------------------------------------------------------

fn parallel_machine(second: Value, catch: bool) -> Value {
    let mut fan = json!({
        "Type": "Parallel",
        "Branches": [
            {
                "StartAt": "Slow",
                "States": {
                    "Slow": {"Type": "Task", "Resource": "task:slow", "Next": "AfterSlow"},
                    "AfterSlow": {"Type": "Pass", "Parameters": {"slow.$": "$"}, "End": true}
                }
            },
            {"StartAt": "Quick", "States": {"Quick": second}}
        ],
        "ResultPath": "$.results",
        "Next": "Done"
    });
    if catch {
        fan["Catch"] = json!([{"ErrorEquals": ["E.Branch"], "ResultPath": "$.err", "Next": "Handle"}]);
    }
    json!({
        "StartAt": "Fan",
        "States": {"Fan": fan, "Done": {"Type": "Pass", "End": true}, "Handle": {"Type": "Pass", "End": true}}
    })
}

#[tokio::test(start_paused = true)]
async fn parallel_output_is_in_branch_order_whatever_finishes_first() {
    let h =
        Scripted::queued(vec![("task:slow", vec![ok(json!("s")).after(secs(5.0))]), ("task:quick", vec![ok(json!("q")).after(secs(1.0))])]);
    let def = parallel_machine(json!({"Type": "Task", "Resource": "task:quick", "End": true}), false);
    let ex = load(&def, &h).execute("e", json!({"in": 1})).await;
    assert_eq!(succeeded(&ex), &json!({"in": 1, "results": [{"slow": "s"}, "q"]}));
    assert_eq!(h.calls_to("task:slow")[0].input, json!({"in": 1}), "each branch gets the state's input");
    assert_eq!(h.calls_to("task:quick")[0].at, Duration::ZERO, "the branches run side by side");
    assert_eq!(ex.history.last().unwrap().elapsed, secs(5.0));
    let path = ex.path();
    assert_eq!(only(&path, &["Fan", "Done"]), vec!["Fan", "Done"]);
    let mut inner = only(&path, &["Slow", "AfterSlow", "Quick"]);
    inner.sort();
    assert_eq!(inner, vec!["AfterSlow", "Quick", "Slow"]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_branch_fails_the_parallel_with_its_error_and_can_be_caught() {
    let failing = json!({"Type": "Task", "Resource": "task:quick", "End": true});
    let script = || {
        Scripted::queued(vec![
            ("task:slow", vec![ok(json!("s")).after(secs(5.0))]),
            ("task:quick", vec![fail("E.Branch").after(secs(1.0))]),
        ])
    };
    let h = script();
    let ex = load(&parallel_machine(failing.clone(), true), &h).execute("e", json!({"in": 1})).await;
    assert_eq!(succeeded(&ex), &json!({"in": 1, "err": {"Error": "E.Branch", "Cause": "E.Branch (scripted)"}}));
    let path = ex.path();
    assert_eq!(only(&path, &["Fan", "Done", "Handle"]), vec!["Fan", "Handle"]);
    assert_eq!(count(&path, "AfterSlow"), 0, "the other branch is stopped");
    assert_eq!(ex.history.last().unwrap().elapsed, secs(1.0));

    let h = script();
    let ex = load(&parallel_machine(failing, false), &h).execute("e", json!({"in": 1})).await;
    assert_eq!(failed(&ex), &Failure::new("E.Branch", "E.Branch (scripted)"));

    // A Fail state in a branch is a branch failure too.
    let h = script();
    let def = parallel_machine(json!({"Type": "Fail", "Error": "E.Branch", "Cause": "by a Fail state"}), true);
    let ex = load(&def, &h).execute("e", json!({"in": 1})).await;
    assert_eq!(succeeded(&ex)["err"], json!({"Error": "E.Branch", "Cause": "by a Fail state"}));
}

// ---------------------------------------------------------------------------------------------
// Map
// ---------------------------------------------------------------------------------------------

fn inline_map(max_concurrency: u64) -> Value {
    json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "run.$": "$.run"},
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Task", "Resource": "task:item", "End": true}}
                },
                "ResultPath": "$.results",
                "End": true
            }
        }
    })
}

/// Item i takes (n - i) seconds and answers {"i", "double"}.
fn item_worker(n: u64) -> Arc<Scripted> {
    Scripted::new(&["task:item"], move |_, input, _| {
        let i = input["index"].as_u64().unwrap();
        let v = input["value"]["v"].as_i64().unwrap();
        ok(json!({"i": i, "double": v * 2, "run": input["run"]})).after(secs((n - i) as f64))
    })
}

#[tokio::test(start_paused = true)]
async fn inline_map_selects_items_keeps_their_order_and_respects_max_concurrency() {
    let items: Vec<Value> = (0..10).map(|i| json!({"v": i * 10})).collect();
    let h = item_worker(10);
    let ex = load(&inline_map(3), &h).execute("e", json!({"run": "r1", "items": items})).await;
    let expected: Vec<Value> = (0..10u64).map(|i| json!({"i": i, "double": i * 20, "run": "r1"})).collect();
    assert_eq!(succeeded(&ex)["results"], json!(expected), "results in item order, not completion order");
    let mut indexes: Vec<u64> = h.calls_to("task:item").iter().map(|c| c.input["index"].as_u64().unwrap()).collect();
    indexes.sort();
    assert_eq!(indexes, (0..10).collect::<Vec<_>>());
    assert_eq!(h.peak("task:item"), 3, "MaxConcurrency 3: at most 3 iterations at once, and 3 were");
    assert_eq!(count(&ex.path(), "Item"), 10);

    // Equal durations: 10 items, 3 at a time, 1 s each: 4 rounds.
    let h = Scripted::new(&["task:item"], |_, input, _| ok(input["index"].clone()).after(secs(1.0)));
    let items: Vec<Value> = (0..10).map(|i| json!({"v": i})).collect();
    let ex = load(&inline_map(3), &h).execute("e", json!({"run": "r2", "items": items.clone()})).await;
    assert_eq!(succeeded(&ex)["results"], json!((0..10).collect::<Vec<_>>()));
    assert_eq!(h.peak("task:item"), 3);
    assert_eq!(ex.history.last().unwrap().elapsed, secs(4.0));

    // MaxConcurrency 0: no limit.
    let h = Scripted::new(&["task:item"], |_, input, _| ok(input["index"].clone()).after(secs(1.0)));
    let ex = load(&inline_map(0), &h).execute("e", json!({"run": "r3", "items": items})).await;
    assert_eq!(h.peak("task:item"), 10);
    assert_eq!(ex.history.last().unwrap().elapsed, secs(1.0));
}

#[tokio::test(start_paused = true)]
async fn an_inline_map_fails_with_its_failing_item_error() {
    let h = Scripted::new(&["task:item"], |_, input, _| if input["index"] == json!(4) { fail("E.Item") } else { ok(json!(1)) });
    let mut def = inline_map(2);
    def["States"]["Each"]["Catch"] = json!([{"ErrorEquals": ["E.Item"], "ResultPath": "$.error", "Next": "Handle"}]);
    def["States"]["Handle"] = json!({"Type": "Pass", "End": true});
    let items: Vec<Value> = (0..8).map(|i| json!({"v": i})).collect();
    let ex = load(&def, &h).execute("e", json!({"run": "r", "items": items})).await;
    assert_eq!(succeeded(&ex)["error"]["Error"], json!("E.Item"));
    assert_eq!(only(&ex.path(), &["Each", "Handle"]), vec!["Each", "Handle"]);
}

/// Step Functions starts the next iteration as soon as any running one ends: a slow item
/// holds its own slot, not the others.
#[tokio::test(start_paused = true)]
async fn a_map_slot_freed_by_any_iteration_is_reused_at_once() {
    // MaxConcurrency 2; item 0 takes 10 s, items 1 to 5 take 1 s each: item 0 holds one slot
    // while the other five run one after another in the other slot, all done at 10 s.
    let h = Scripted::new(&["task:item"], |_, input, _| {
        let i = input["index"].as_u64().unwrap();
        ok(json!(i)).after(secs(if i == 0 { 10.0 } else { 1.0 }))
    });
    let items: Vec<Value> = (0..6).map(|i| json!({"v": i})).collect();
    let ex = load(&inline_map(2), &h).execute("e", json!({"run": "r", "items": items})).await;
    assert_eq!(succeeded(&ex)["results"], json!([0, 1, 2, 3, 4, 5]));
    let mut starts: Vec<(u64, Duration)> = h.calls_to("task:item").iter().map(|c| (c.input["index"].as_u64().unwrap(), c.at)).collect();
    starts.sort();
    let expected: Vec<(u64, Duration)> = [0.0, 0.0, 1.0, 2.0, 3.0, 4.0].iter().enumerate().map(|(i, s)| (i as u64, secs(*s))).collect();
    assert_eq!(starts, expected, "(item, started at)");
    assert_eq!(ex.history.last().unwrap().elapsed, secs(10.0));
}

fn distributed_map(extra: Value) -> Value {
    let mut m = json!({
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": "data-bucket", "Key.$": "$.key"}
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": "task:item", "End": true}}
        },
        "ResultPath": "$.results",
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"StartAt": "Chunks", "States": {"Chunks": m}})
}

/// 10 items {"n": i}; the items in `failing` fail with E.Chunk; each call takes 1 s.
fn chunk_worker(failing: &'static [u64]) -> Arc<Scripted> {
    Scripted::new(&["task:item"], move |_, input, _| {
        let n = input["n"].as_u64().unwrap();
        let r = if failing.contains(&n) { fail("E.Chunk") } else { ok(json!({"done": n})) };
        r.after(secs(1.0))
    })
    .with_items((0..10).map(|n| json!({"n": n})).collect())
}

#[tokio::test(start_paused = true)]
async fn distributed_map_reads_items_and_tolerates_a_percentage_of_failures() {
    let def = distributed_map(json!({"ToleratedFailurePercentage": 20, "MaxConcurrencyPath": "$.conc"}));
    let input = json!({"key": "tenants/t/chunks.jsonl", "conc": 4});

    let h = chunk_worker(&[3, 7]);
    let ex = load(&def, &h).execute("e", input.clone()).await;
    let out = succeeded(&ex);
    assert_eq!(h.reads(), vec![(json!({"Bucket": "data-bucket", "Key": "tenants/t/chunks.jsonl"}), "JSONL".to_string())]);
    assert_eq!(h.calls_to("task:item").len(), 10);
    let results = out["results"].as_array().expect("the Map's results");
    for n in [0, 1, 2, 4, 5, 6, 8, 9] {
        assert!(results.contains(&json!({"done": n})), "item {n}'s result is in {results:?}");
    }
    assert_eq!(h.peak("task:item"), 4, "MaxConcurrencyPath: 4 at once");

    let h = chunk_worker(&[1, 5, 8]);
    let ex = load(&def, &h).execute("e", input).await;
    assert_eq!(failed(&ex).error, "States.ExceedToleratedFailureThreshold", "3 of 10 is more than 20 %");
}

#[tokio::test(start_paused = true)]
async fn distributed_map_tolerated_failure_count_and_max_items() {
    let def = distributed_map(json!({"ToleratedFailureCount": 2}));
    let input = json!({"key": "k"});
    let ex = load(&def, &chunk_worker(&[0, 9])).execute("e", input.clone()).await;
    succeeded(&ex);
    let ex = load(&def, &chunk_worker(&[0, 4, 9])).execute("e", input.clone()).await;
    assert_eq!(failed(&ex).error, "States.ExceedToleratedFailureThreshold");

    // No tolerance: the first failure fails the Map.
    let ex = load(&distributed_map(json!({})), &chunk_worker(&[6])).execute("e", input.clone()).await;
    assert_eq!(failed(&ex).error, "States.ExceedToleratedFailureThreshold");

    // ReaderConfig.MaxItems: only the first items are processed.
    let mut def = distributed_map(json!({}));
    def["States"]["Chunks"]["ItemReader"]["ReaderConfig"]["MaxItems"] = json!(4);
    let h = chunk_worker(&[]);
    let ex = load(&def, &h).execute("e", input).await;
    assert_eq!(succeeded(&ex)["results"], json!([{"done": 0}, {"done": 1}, {"done": 2}, {"done": 3}]));
    assert_eq!(h.calls_to("task:item").len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Load-time refusals
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn definitions_with_unsupported_or_broken_parts_are_refused_at_load() {
    let h = Scripted::queued(vec![("task:x", vec![])]);
    let task = |extra: Value| {
        let mut t = json!({"Type": "Task", "Resource": "task:x", "End": true});
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        json!({"StartAt": "T", "States": {"T": t}}).to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown state type", json!({"StartAt": "T", "States": {"T": {"Type": "Taks", "End": true}}}).to_string(), "Taks"),
        ("unknown field", task(json!({"HeartbeatSeconds": 10})), "HeartbeatSeconds"),
        ("Next to a missing state", json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}).to_string(), "Nowhere"),
        (
            "Catch to a missing state",
            task(json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gone"}]})),
            "Gone",
        ),
        (
            "Choice to a missing state",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": true, "Next": "Lost"}]}}})
                .to_string(),
            "Lost",
        ),
        ("StartAt a missing state", json!({"StartAt": "Zed", "States": {"A": {"Type": "Succeed"}}}).to_string(), "Zed"),
        (
            "a substitution left unfilled",
            r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${X}", "End": true}}}"#.to_string(),
            "${X}",
        ),
        (
            "an unknown resource",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:nope", "End": true}}}).to_string(),
            "arn:aws:lambda:nope",
        ),
        (
            "States.ALL retrier not last",
            task(json!({"Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E.X"]}]})),
            "States.ALL",
        ),
        (
            "States.ALL catcher not last",
            json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "task:x", "End": true,
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}, {"ErrorEquals": ["E.X"], "Next": "H"}]},
                "H": {"Type": "Succeed"}}})
            .to_string(),
            "States.ALL",
        ),
        ("States.ALL with other errors", task(json!({"Retry": [{"ErrorEquals": ["States.ALL", "E.X"]}]})), "States.ALL"),
        ("recursive descent in InputPath", task(json!({"InputPath": "$..x"})), "$..x"),
        ("a filter in Parameters", task(json!({"Parameters": {"x.$": "$.a[?(@.b == 1)]"}})), "$.a[?(@.b == 1)]"),
        ("a wildcard in OutputPath", task(json!({"OutputPath": "$.a[*]"})), "$.a[*]"),
        ("an unknown intrinsic", task(json!({"Parameters": {"x.$": "States.Nope($.a)"}})), "States.Nope"),
        ("Next and End", task(json!({"Next": "T"})), "Next"),
        ("JSONata", json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}).to_string(), "QueryLanguage"),
        ("an unknown retrier field", task(json!({"Retry": [{"ErrorEquals": ["E.X"], "Jitter": "FULL"}]})), "Jitter"),
        ("a bad JitterStrategy", task(json!({"Retry": [{"ErrorEquals": ["E.X"], "JitterStrategy": "HALF"}]})), "HALF"),
        ("an unknown choice operator", json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEqualz": "x", "Next": "D"}]},
            "D": {"Type": "Succeed"}}}).to_string(), "StringEqualz"),
        (
            "ItemBatcher",
            distributed_map(json!({"ItemBatcher": {"MaxItemsPerBatch": 10}})).to_string().replace("task:item", "task:x"),
            "ItemBatcher",
        ),
        (
            "a field unknown inside a Map's processor",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "I", "States": {"I": {"Type": "Task", "Resource": "task:x", "End": true, "Credentials": {}}}}}}})
            .to_string(),
            "Credentials",
        ),
    ];
    for (what, def, needle) in cases {
        let e = load_err(&def, &h);
        assert!(e.contains(needle), "{what}: the error should name `{needle}`: {e}");
    }

    // The same definition loads once its substitution is filled.
    let subs = HashMap::from([("X".to_string(), "task:x".to_string())]);
    let def = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${X}", "End": true}}}"#;
    assert!(Runner::load("test", def, &subs, h.clone()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// statemachines/export.asl.json
// ---------------------------------------------------------------------------------------------

const EXPORT: &str = include_str!("../statemachines/export.asl.json");

const FUNCTIONS: [(&str, &str); 7] = [
    ("PlanFunctionArn", "plan"),
    ("ExtractChunkFunctionArn", "extract"),
    ("EncodeFunctionArn", "encode"),
    ("EncryptFunctionArn", "encrypt"),
    ("DeliverFunctionArn", "deliver"),
    ("RecordReceiptFunctionArn", "receipt"),
    ("RecordFailureFunctionArn", "failure"),
];

fn arn(stage: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:egress-{stage}")
}

fn export_substitutions() -> HashMap<String, String> {
    let mut subs: HashMap<String, String> = FUNCTIONS.iter().map(|(k, s)| (k.to_string(), arn(s))).collect();
    subs.insert("DataBucket".into(), "egress-data-test".into());
    subs
}

const MAIN_STATES: [&str; 10] =
    ["Plan", "ExtractAndEncode", "Encrypt", "Deliver", "RecordReceipt", "RecordFailure", "StoppedOrFailed", "Stopped", "Failed", "Encode"];

const CHUNKS: u64 = 5;

/// The stages of an export, answering like the real ones; `chunk` decides each ExtractChunk
/// call (index, earlier calls with that input) and `status` is what RecordFailure reports.
fn export_handler(
    chunk: impl Fn(u64, usize) -> Reply + Send + Sync + 'static,
    plan: impl Fn(usize) -> Reply + Send + Sync + 'static,
    status: &'static str,
) -> Arc<Scripted> {
    let names: Vec<String> = FUNCTIONS.iter().map(|(_, s)| arn(s)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Scripted::new(&names, move |resource, input, n| {
        let stage = resource.rsplit('-').next().unwrap();
        let (t, e) = (input["tenant"].clone(), input["export_id"].clone());
        match stage {
            "plan" => plan(n),
            "extract" => {
                let index = input["index"].as_u64().unwrap();
                chunk(index, n)
            }
            "encode" => {
                ok(json!({"tenant": t, "export_id": e, "files": [{"name": "out.csv", "size": 10, "key": "k/out.csv"}]})).after(secs(2.0))
            }
            "encrypt" => ok(json!({"files": input["files"]})),
            "deliver" => ok(json!({"index": input["index"], "type": input["destination"]["type"], "status": "delivered"})),
            "receipt" => ok(json!({"tenant": t, "export_id": e})),
            "failure" => ok(json!({"tenant": t, "export_id": e, "status": status})),
            other => panic!("no stage {other}"),
        }
    })
    .with_items((0..CHUNKS).map(|i| json!({"tenant": "t1", "export_id": "x1", "index": i})).collect())
}

fn plan_ok(_: usize) -> Reply {
    ok(json!({
        "tenant": "t1", "export_id": "x1", "chunks_total": CHUNKS,
        "items_key": "tenants/t1/staging/x1/chunks.json", "max_concurrency": 2,
        "destinations": [{"index": 0, "type": "s3"}, {"index": 1, "type": "sftp"}, {"index": 2, "type": "email"}],
        "redeliver": false
    }))
}

fn chunk_ok(index: u64) -> Reply {
    ok(json!({"index": index, "rows": 100, "bytes": 1000, "already_done": false})).after(secs(1.0))
}

async fn run_export(h: &Arc<Scripted>) -> Execution {
    let runner = Runner::load("export", EXPORT, &export_substitutions(), h.clone())
        .unwrap_or_else(|e| panic!("statemachines/export.asl.json should load: {e}"))
        .with_seed(42);
    runner.execute("x1", json!({"tenant": "t1", "export_id": "x1"})).await
}

#[tokio::test(start_paused = true)]
async fn export_definition_needs_every_substitution_and_known_resources() {
    let h = export_handler(|i, _| chunk_ok(i), plan_ok, "failed");
    for missing in ["DataBucket", "EncodeFunctionArn"] {
        let mut subs = export_substitutions();
        subs.remove(missing);
        let e = Runner::load("export", EXPORT, &subs, h.clone()).err().expect("refused");
        assert!(e.contains(&format!("${{{missing}}}")), "{e}");
    }
    let mut subs = export_substitutions();
    subs.insert("DeliverFunctionArn".into(), "arn:aws:lambda:us-east-1:123456789012:function:unknown".into());
    let e = Runner::load("export", EXPORT, &subs, h.clone()).err().expect("refused");
    assert!(e.contains("function:unknown"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn export_redelivery_goes_from_plan_to_deliver_with_the_export_files() {
    let files = json!([{"name": "out.csv.gpg", "size": 12, "key": "k/packaged/out.csv.gpg"}]);
    let planned = files.clone();
    let h = export_handler(
        |i, _| chunk_ok(i),
        move |_| {
            ok(json!({
                "tenant": "t1", "export_id": "x1", "chunks_total": 0, "items_key": "", "max_concurrency": 1,
                "destinations": [{"index": 2, "type": "email"}], "redeliver": true, "files": planned
            }))
        },
        "failed",
    );
    let ex = run_export(&h).await;
    let out = succeeded(&ex).clone();
    let path = ex.path();
    assert_eq!(only(&path, &MAIN_STATES), vec!["Plan", "Deliver", "RecordReceipt"], "{path:?}");
    assert!(path.iter().any(|s| s == "ReuseFiles"), "{path:?}");
    for stage in ["extract", "encode", "encrypt", "failure"] {
        assert!(h.calls_to(&arn(stage)).is_empty(), "{stage} is not run");
    }
    let delivered = h.calls_to(&arn("deliver"));
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].input,
        json!({"tenant": "t1", "export_id": "x1", "index": 2, "destination": {"index": 2, "type": "email"}, "files": files})
    );
    let deliveries = json!([{"index": 2, "type": "email", "status": "delivered"}]);
    assert_eq!(h.calls_to(&arn("receipt"))[0].input, json!({"tenant": "t1", "export_id": "x1", "files": files, "deliveries": deliveries}));
    assert_eq!(out["encrypted"], json!({"files": files}));
}

#[tokio::test(start_paused = true)]
async fn export_happy_path() {
    let h = export_handler(|i, _| chunk_ok(i), plan_ok, "failed");
    let ex = run_export(&h).await;
    let out = succeeded(&ex).clone();
    let path = ex.path();
    assert_eq!(only(&path, &MAIN_STATES), vec!["Plan", "ExtractAndEncode", "Encode", "Encrypt", "Deliver", "RecordReceipt"], "{path:?}");
    assert_eq!(count(&path, "ExtractChunks"), 1);
    assert_eq!(count(&path, "ExtractChunk"), CHUNKS as usize);
    assert_eq!(count(&path, "DeliverTo"), 3);
    assert_eq!(count(&path, "ChunkFailed"), 0);
    let first_chunk = path.iter().position(|s| s == "ExtractChunk").unwrap();
    assert!(path.iter().position(|s| s == "ExtractChunks").unwrap() < first_chunk);
    assert!(path.iter().position(|s| s == "ExtractAndEncode").unwrap() < first_chunk);
    assert!(path.iter().rposition(|s| s == "ExtractChunk").unwrap() < path.iter().position(|s| s == "Encrypt").unwrap());

    // What the stages were given.
    assert_eq!(h.calls_to(&arn("plan"))[0].input, json!({"tenant": "t1", "export_id": "x1"}));
    assert_eq!(h.reads(), vec![(json!({"Bucket": "egress-data-test", "Key": "tenants/t1/staging/x1/chunks.json"}), "JSON".to_string())]);
    let mut chunks: Vec<u64> = h.calls_to(&arn("extract")).iter().map(|c| c.input["index"].as_u64().unwrap()).collect();
    chunks.sort();
    assert_eq!(chunks, (0..CHUNKS).collect::<Vec<_>>());
    assert_eq!(h.peak(&arn("extract")), 2, "MaxConcurrencyPath takes Plan's max_concurrency");
    assert_eq!(h.calls_to(&arn("encode"))[0].input, json!({"tenant": "t1", "export_id": "x1"}));
    let files = json!([{"name": "out.csv", "size": 10, "key": "k/out.csv"}]);
    assert_eq!(h.calls_to(&arn("encrypt"))[0].input, json!({"tenant": "t1", "export_id": "x1", "files": files}));
    let mut delivered: Vec<Value> = h.calls_to(&arn("deliver")).into_iter().map(|c| c.input).collect();
    delivered.sort_by_key(|v| v["index"].as_u64());
    assert_eq!(
        delivered[1],
        json!({"tenant": "t1", "export_id": "x1", "index": 1, "destination": {"index": 1, "type": "sftp"}, "files": files})
    );
    let deliveries = json!([
        {"index": 0, "type": "s3", "status": "delivered"},
        {"index": 1, "type": "sftp", "status": "delivered"},
        {"index": 2, "type": "email", "status": "delivered"}
    ]);
    assert_eq!(h.calls_to(&arn("receipt"))[0].input, json!({"tenant": "t1", "export_id": "x1", "files": files, "deliveries": deliveries}));
    assert!(h.calls_to(&arn("failure")).is_empty());

    // The final state document.
    assert_eq!(out["plan"]["max_concurrency"], json!(2));
    assert_eq!(out["encoded"], json!({"files": files}));
    assert_eq!(out["encrypted"], json!({"files": files}));
    assert_eq!(out["deliveries"], deliveries);
    assert_eq!(out["receipt"], json!({"tenant": "t1", "export_id": "x1"}));
    assert!(out.get("error").is_none());
}

#[tokio::test(start_paused = true)]
async fn export_a_chunk_failing_for_good_records_its_error_then_fails_the_run() {
    let h = export_handler(|i, _| if i == 1 { fail("Egress.Invalid") } else { chunk_ok(i) }, plan_ok, "failed");
    let ex = run_export(&h).await;
    let f = failed(&ex).clone();
    let path = ex.path();
    assert_eq!(
        only(
            &path,
            &["Plan", "ExtractAndEncode", "Encrypt", "Deliver", "RecordReceipt", "RecordFailure", "StoppedOrFailed", "Stopped", "Failed"]
        ),
        vec!["Plan", "ExtractAndEncode", "RecordFailure", "StoppedOrFailed", "Failed"],
        "{path:?}"
    );
    let chunk_failed = path.iter().position(|s| s == "ChunkFailed").expect("ChunkFailed entered");
    assert_eq!(path[chunk_failed + 1], "ChunkNotExtracted");
    assert_eq!(count(&path, "ChunkFailed"), 1);
    assert!(chunk_failed < path.iter().position(|s| s == "RecordFailure").unwrap());
    assert_eq!(h.calls_to(&arn("extract")).iter().filter(|c| c.input["index"] == json!(1)).count(), 1, "Egress.Invalid is not retried");

    // RecordFailure ran twice: for the chunk (its own error), then for the run.
    let failures = h.calls_to(&arn("failure"));
    assert_eq!(failures.len(), 2);
    assert_eq!(
        failures[0].input,
        json!({"tenant": "t1", "export_id": "x1", "index": 1, "error": {"Error": "Egress.Invalid", "Cause": "Egress.Invalid (scripted)"}})
    );
    assert_eq!(failures[1].input["error"]["Error"], json!("States.ExceedToleratedFailureThreshold"));
    assert_eq!(f.error, "States.ExceedToleratedFailureThreshold", "the run fails with the Map's error: {}", f.cause);
    assert!(h.calls_to(&arn("encrypt")).is_empty());
}

#[tokio::test(start_paused = true)]
async fn export_a_transient_chunk_error_is_retried_and_the_run_succeeds() {
    let h = export_handler(|i, n| if i == 3 && n < 2 { fail("Egress.Transient") } else { chunk_ok(i) }, plan_ok, "failed");
    let ex = run_export(&h).await;
    succeeded(&ex);
    let path = ex.path();
    assert_eq!(only(&path, &MAIN_STATES), vec!["Plan", "ExtractAndEncode", "Encode", "Encrypt", "Deliver", "RecordReceipt"]);
    assert_eq!(count(&path, "ExtractChunk"), CHUNKS as usize, "retries do not re-enter the state");
    assert_eq!(count(&path, "ChunkFailed"), 0);
    assert_eq!(h.calls_to(&arn("extract")).iter().filter(|c| c.input["index"] == json!(3)).count(), 3);
    let delays = retry_delays(&ex, "ExtractChunk");
    assert_eq!(delays.len(), 2);
    assert!(delays[0] <= secs(1.0) && delays[1] <= secs(2.0), "FULL jitter within 1 s, then 2 s: {delays:?}");
    assert!(h.calls_to(&arn("failure")).is_empty());
}

#[tokio::test(start_paused = true)]
async fn export_stopped_on_request_ends_in_stopped_and_succeeds() {
    let h = export_handler(|i, _| chunk_ok(i), |_| fail("Egress.Paused"), "paused");
    let ex = run_export(&h).await;
    let out = succeeded(&ex);
    assert_eq!(ex.path(), vec!["Plan", "RecordFailure", "StoppedOrFailed", "Stopped"]);
    assert_eq!(out["failure"]["status"], json!("paused"));
    assert_eq!(out["error"], json!({"Error": "Egress.Paused", "Cause": "Egress.Paused (scripted)"}));
    assert_eq!(
        h.calls_to(&arn("failure"))[0].input,
        json!({"tenant": "t1", "export_id": "x1", "error": {"Error": "Egress.Paused", "Cause": "Egress.Paused (scripted)"}})
    );
    assert_eq!(h.calls_to(&arn("plan")).len(), 1, "Egress.Paused is not retried");

    // A throttled Plan is retried (FULL jitter, 2 s base), then the run goes on.
    let h = export_handler(|i, _| chunk_ok(i), |n| if n < 3 { fail("Egress.Throttled") } else { plan_ok(n) }, "failed");
    let ex = run_export(&h).await;
    succeeded(&ex);
    let delays = retry_delays(&ex, "Plan");
    assert_eq!(delays.len(), 3);
    for (d, cap) in delays.iter().zip([2.0, 4.0, 8.0]) {
        assert!(*d <= secs(cap), "{delays:?}");
    }
}
