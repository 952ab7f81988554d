//! A small Lambda Runtime API (the interface a `provided.al2023` function polls): a function
//! binary started with `AWS_LAMBDA_RUNTIME_API` pointing here takes invocations with
//! `GET /2018-06-01/runtime/invocation/next` and answers with `POST .../response` or
//! `POST .../error`, as under the real Lambda service.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    results: HashMap<String, Result<Value, Value>>,
    init_error: Option<Value>,
}

/// One function: its Runtime API and its process.
pub struct Function {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    child: Child,
    next_id: u64,
    name: String,
}

impl Function {
    /// Start the function binary `exe` against a fresh Runtime API on a loopback port.
    pub async fn start(exe: &str, name: &str, env: &[(&str, &Path)]) -> Function {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (s, c) = (state.clone(), changed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve(s.clone(), c.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        });
        let mut cmd = Command::new(exe);
        cmd.env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_REGION", "eu-central-1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{exe}: {e}"));
        Function { state, changed, child, next_id: 0, name: name.to_string() }
    }

    /// Invoke the function with `event`; `Ok(response)` or `Err({errorType, errorMessage})`.
    pub async fn invoke(&mut self, event: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = format!("{}-{:04}", self.name, self.next_id);
        self.state.lock().unwrap().queue.push_back((id.clone(), event));
        self.changed.notify_waiters();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let notified = self.changed.notified();
            {
                let mut st = self.state.lock().unwrap();
                if let Some(r) = st.results.remove(&id) {
                    return r;
                }
                if let Some(e) = &st.init_error {
                    panic!("{} failed to start: {e}", self.name);
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status} before answering", self.name);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            assert!(tokio::time::Instant::now() < deadline, "{} did not answer within 60 s", self.name);
        }
    }

    /// What the function wrote to stdout (its JSON log lines), after stopping it.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let out = self.child.wait_with_output().map(|o| o.stdout).unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn reply(status: u16, body: Bytes, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(body)).unwrap()
}

async fn serve(state: Arc<Mutex<State>>, changed: Arc<Notify>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parsed = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.trim_start_matches("/2018-06-01/runtime/").split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => loop {
            let notified = changed.notified();
            if let Some((id, event)) = state.lock().unwrap().queue.pop_front() {
                let deadline = (chrono::Utc::now() + chrono::Duration::seconds(60)).timestamp_millis();
                let headers = [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:eu-central-1:123456789012:function:egress".to_string()),
                    ("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_string()),
                    ("content-type", "application/json".to_string()),
                ];
                return Ok(reply(200, Bytes::from(event.to_string()), &headers));
            }
            notified.await;
        },
        ("POST", ["invocation", id, "response"]) => {
            state.lock().unwrap().results.insert(id.to_string(), Ok(parsed()));
            changed.notify_waiters();
            Ok(reply(202, Bytes::new(), &[]))
        }
        ("POST", ["invocation", id, "error"]) => {
            state.lock().unwrap().results.insert(id.to_string(), Err(parsed()));
            changed.notify_waiters();
            Ok(reply(202, Bytes::new(), &[]))
        }
        ("POST", ["init", "error"]) => {
            state.lock().unwrap().init_error = Some(parsed());
            changed.notify_waiters();
            Ok(reply(202, Bytes::new(), &[]))
        }
        _ => Ok(reply(404, Bytes::new(), &[])),
    }
}
