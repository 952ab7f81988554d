//! The in-process ASL runner against another Step Functions engine: the definitions of
//! `tests/asl/` run on moto server's Step Functions (an emulator derived from LocalStack's ASL
//! interpreter) and in the runner, and must end the same way: status, output (or error and
//! cause) and the states entered.
//!
//! moto comes from `bash infra/testbed/moto.sh` (`<repo>/.venv-moto`, or the Python named by
//! `EGRESS_MOTO_PYTHON`); the test fails, saying so, when it is missing. The server is a child
//! process on a free loopback port, killed when the test ends; every wait is bounded.
//!
//! Left out on purpose, because moto disagrees with Step Functions there (tested against the
//! Step Functions semantics in `asl_semantics.rs` instead): a Choice without Default that
//! matches nothing (Step Functions: `States.NoChoiceMatched`; moto: `States.Runtime`) and a
//! Choice comparison on a missing variable (Step Functions: `States.Runtime`; moto: no match).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress::orchestrate::asl::{Failure, Outcome, Runner, TaskHandler};
use serde_json::{Value, json};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The Python of the moto venv.
fn python() -> PathBuf {
    let p = std::env::var("EGRESS_MOTO_PYTHON").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(REPO).join(".venv-moto/bin/python"));
    assert!(
        p.exists(),
        "this test needs moto server at {}: run `bash infra/testbed/moto.sh` first (or set EGRESS_MOTO_PYTHON)",
        p.display()
    );
    p
}

/// A `python -m moto.server` child on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Moto {
    fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start moto.server");
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), log };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto.server exited at start ({status}): {}\ncheck the venv with `bash infra/testbed/moto.sh`", moto.log_text());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto.server did not listen on port {port} within 30 s: {}", moto.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One execution: a definition of `tests/asl/` and its input.
struct Case {
    name: &'static str,
    file: &'static str,
    input: Value,
}

fn case(name: &'static str, file: &'static str, input: Value) -> Case {
    Case { name, file, input }
}

fn definition_path(file: &str) -> PathBuf {
    PathBuf::from(REPO).join("tests/asl").join(file)
}

/// How an execution ended, on either engine.
#[derive(Debug, Clone, PartialEq)]
struct Ended {
    status: String,
    output: Value,
    error: Value,
    cause: Value,
    path: Vec<String>,
}

/// Run every case on moto with `tests/readers/moto_sfn_paths.py`.
fn run_on_moto(moto: &Moto, cases: &[Case]) -> BTreeMap<String, Ended> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(PathBuf::from(REPO).join("tests/readers/moto_sfn_paths.py")).arg(&moto.endpoint).args(["--timeout", "60"]);
    for c in cases {
        cmd.arg("--case").arg(c.name).arg(definition_path(c.file)).arg(c.input.to_string());
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(out.reopen().unwrap()).stderr(err.reopen().unwrap()).spawn().expect("run python");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("moto_sfn_paths.py did not end within 120 s; moto said:\n{}", moto.log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(out.path()).unwrap();
    let stderr = std::fs::read_to_string(err.path()).unwrap();
    assert!(status.success(), "moto_sfn_paths.py failed ({status}):\n{stderr}\n{stdout}\nmoto said:\n{}", moto.log_text());
    let parsed: BTreeMap<String, Value> =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("moto_sfn_paths.py printed no JSON ({e}):\n{stdout}\n{stderr}"));
    parsed
        .into_iter()
        .map(|(name, r)| {
            let path = r["path"].as_array().expect("path").iter().map(|s| s.as_str().unwrap().to_string()).collect();
            let ended = Ended {
                status: r["status"].as_str().unwrap().to_string(),
                output: r["output"].clone(),
                error: r["error"].clone(),
                cause: r["cause"].clone(),
                path,
            };
            (name, ended)
        })
        .collect()
}

/// Definitions here have no Task states: the runner's handler knows no resource.
struct NoTasks;

// The trait is declared with #[async_trait]; this is its expansion.
impl TaskHandler for NoTasks {
    fn knows(&self, _resource: &str) -> bool {
        false
    }

    fn invoke<'life0, 'life1, 'async_trait>(
        &'life0 self,
        resource: &'life1 str,
        _input: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let resource = resource.to_string();
        Box::pin(async move { Err(Failure::new("Test.NoTasks", format!("no task {resource} here"))) })
    }

    fn read_items<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        _parameters: &'life1 Value,
        _input_type: &'life2 str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Value>, Failure>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Err(Failure::new("Test.NoTasks", "no item reader here")) })
    }
}

/// Run every case in the runner, on a paused clock (Wait and retry intervals pass at once).
fn run_locally(cases: &[Case]) -> BTreeMap<String, Ended> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let handler: Arc<dyn TaskHandler> = Arc::new(NoTasks);
    let mut out = BTreeMap::new();
    for c in cases {
        let text = std::fs::read_to_string(definition_path(c.file)).unwrap();
        let runner = Runner::load(c.name, &text, &HashMap::new(), handler.clone()).unwrap_or_else(|e| panic!("{}: {e}", c.file));
        // An hour of virtual time at most (the clock is paused: a stuck run ends at once).
        let run = async { tokio::time::timeout(Duration::from_secs(3600), runner.execute(c.name, c.input.clone())).await };
        let ex = rt.block_on(run).unwrap_or_else(|_| panic!("{}: the runner did not end", c.name));
        let path = ex.path();
        let ended = match ex.outcome {
            Outcome::Succeeded(v) => Ended { status: "SUCCEEDED".into(), output: v, error: Value::Null, cause: Value::Null, path },
            Outcome::Failed(f) => {
                Ended { status: "FAILED".into(), output: Value::Null, error: json!(f.error), cause: json!(f.cause), path }
            }
        };
        out.insert(c.name.to_string(), ended);
    }
    out
}

/// The top-level states of a definition, and whether it has Map or Parallel states (whose
/// branches and iterations interleave: their order is not fixed).
fn shape(file: &str) -> (Vec<String>, bool) {
    let def: Value = serde_json::from_str(&std::fs::read_to_string(definition_path(file)).unwrap()).unwrap();
    let states = def["States"].as_object().unwrap();
    let concurrent = states.values().any(|s| matches!(s["Type"].as_str(), Some("Map" | "Parallel")));
    (states.keys().cloned().collect(), concurrent)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The differences between the two engines' runs of one case.
fn compare(c: &Case, moto: &Ended, local: &Ended) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut differ =
        |what: &str, m: &dyn std::fmt::Debug, l: &dyn std::fmt::Debug| diffs.push(format!("{}: {what}: moto {m:?}, runner {l:?}", c.name));
    if moto.status != local.status {
        differ("status", &moto.status, &local.status);
    }
    if moto.output != local.output {
        differ("output", &moto.output, &local.output);
    }
    if moto.error != local.error {
        differ("error", &moto.error, &local.error);
    }
    if moto.cause != local.cause {
        differ("cause", &moto.cause, &local.cause);
    }
    let (top, concurrent) = shape(c.file);
    if concurrent {
        if sorted(moto.path.clone()) != sorted(local.path.clone()) {
            differ("states entered (as a multiset)", &sorted(moto.path.clone()), &sorted(local.path.clone()));
        }
        let top_only = |p: &[String]| p.iter().filter(|s| top.contains(s)).cloned().collect::<Vec<_>>();
        if top_only(&moto.path) != top_only(&local.path) {
            differ("top-level states entered", &top_only(&moto.path), &top_only(&local.path));
        }
    } else if moto.path != local.path {
        differ("states entered", &moto.path, &local.path);
    }
    diffs
}

fn cases() -> Vec<Case> {
    let choice = |kind: &str, size: i64, urgent: bool, note: Option<&str>| {
        let mut v = json!({"kind": kind, "size": size, "urgent": urgent});
        if let Some(n) = note {
            v["note"] = json!(n);
        }
        v
    };
    vec![
        case("pass", "pass_paths.json", json!({"order": {"id": "o-1", "items": ["a", "b", "c"], "n": 41}, "other": 1})),
        case("choice_big", "choice_rules.json", choice("big", 100, false, Some("n"))),
        case("choice_urgent", "choice_rules.json", choice("big", 99, true, Some("n"))),
        case("choice_negative", "choice_rules.json", choice("medium", -4, false, Some("n"))),
        case("choice_no_note", "choice_rules.json", choice("small", 5, false, None)),
        case("choice_small", "choice_rules.json", choice("small", 5, false, Some("x"))),
        case("choice_other", "choice_rules.json", choice("medium", 7, false, Some("x"))),
        case("wait", "wait_paths.json", json!({"inner": {"delay": 1, "payload": {"k": [1, "two"]}}, "dropped": true})),
        case("parallel_big", "parallel_branches.json", json!({"x": 2})),
        case("parallel_small", "parallel_branches.json", json!({"x": 0, "y": "kept"})),
        case(
            "map",
            "map_inline.json",
            json!({"prefix": "p", "items": [{"n": 1, "big": false}, {"n": 2, "big": true}, {"n": 3, "big": false}, {"n": 4, "big": false}, {"n": 5, "big": true}]}),
        ),
        case("map_empty", "map_inline.json", json!({"prefix": "p", "items": []})),
        case("retry", "retry_catch.json", json!({"id": "r1", "bad": [1, 2, 3]})),
        case("retry_no_bad_item", "retry_catch.json", json!({"id": "r2", "bad": [1, 3]})),
        case("fail_path", "fail_states.json", json!({"err": {"code": "Custom.Code", "why": "because"}})),
        case("succeed", "fail_states.json", json!({"fine": true})),
    ]
}

#[test]
fn the_runner_ends_like_moto_step_functions() {
    let cases = cases();
    let moto = Moto::start();
    let on_moto = run_on_moto(&moto, &cases);
    drop(moto);
    let local = run_locally(&cases);
    let mut diffs = Vec::new();
    for c in &cases {
        let m = on_moto.get(c.name).unwrap_or_else(|| panic!("moto did not report {}", c.name));
        let l = &local[c.name];
        diffs.extend(compare(c, m, l));
    }
    assert!(diffs.is_empty(), "the runner and moto differ:\n{}", diffs.join("\n"));
}

#[test]
fn every_definition_of_tests_asl_is_compared() {
    let compared: Vec<&str> = cases().iter().map(|c| c.file).collect();
    for entry in std::fs::read_dir(PathBuf::from(REPO).join("tests/asl")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            assert!(compared.contains(&name.as_str()), "tests/asl/{name} is not run by any case");
        }
    }
}
