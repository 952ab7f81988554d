//! A webhook receiver for tests: a hyper HTTP/1 server on a loopback port that records every
//! request (headers, body length and SHA-256), checks Standard Webhooks signatures with its own
//! HMAC-SHA256 and base64 (written from RFC 2104 and RFC 4648 over `sha2`, so a mistake in the
//! library's signer cannot hide behind the same mistake here), and answers from a script.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

/// How long a hanging reply waits before it gives up (the receiver is normally dropped first).
const HANG: Duration = Duration::from_secs(60);
/// Bodies are kept in memory up to this size (larger ones are only counted and digested).
const KEEP_BODY: usize = 1 << 20;
/// The body of the default answer.
pub const OK_BODY: &str = "received";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, with headers and a body.
    Status { status: u16, headers: Vec<(String, String)>, body: String },
    /// Read the whole request, then never answer.
    Hang,
    /// Never read the request body and never answer (the sender's upload stalls).
    HangUnread,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status { status, headers: Vec::new(), body: body.to_string() }
    }
    pub fn ok() -> Reply {
        Reply::status(200, OK_BODY)
    }
    pub fn with_header(status: u16, name: &str, value: &str) -> Reply {
        Reply::Status { status, headers: vec![(name.to_string(), value.to_string())], body: String::new() }
    }
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::with_header(status, "location", location)
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body_sha256: String,
    /// The body when at most 1 MiB.
    pub body: Vec<u8>,
    /// Whether one `v1` signature matched, recomputed here; `None` without a key or headers.
    pub signature_valid: Option<bool>,
    /// The body stopped arriving before its end (the sender gave up).
    pub body_incomplete: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

struct State {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listen on 127.0.0.1; `key` is the signing key's bytes (to check signatures); the script
    /// is answered in order, then every request gets 200 `received`.
    pub async fn start(key: Option<&[u8]>, script: Vec<Reply>) -> Receiver {
        Self::start_on("127.0.0.1:0", key, script).await.expect("bind 127.0.0.1")
    }

    /// Listen on another loopback address (`[::1]:0`); `None` when it cannot be bound.
    pub async fn start_on(addr: &str, key: Option<&[u8]>, script: Vec<Reply>) -> Option<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let state = Arc::new(Mutex::new(State { script: script.into(), requests: Vec::new() }));
        let key: Option<Arc<Vec<u8>>> = key.map(|k| Arc::new(k.to_vec()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: dropping the accept task (on Drop) ends them too.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (st, key) = (st.clone(), key.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(req, st.clone(), key.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Some(Receiver { addr, state, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replace the answers still to come.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.lock().unwrap().script = replies.into();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn hits(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>, key: Option<Arc<Vec<u8>>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = state.lock().unwrap().script.pop_front().unwrap_or_else(Reply::ok);
    let (parts, mut body) = req.into_parts();
    let headers: Vec<(String, String)> =
        parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: headers.clone(),
        body_len: 0,
        body_sha256: String::new(),
        body: Vec::new(),
        signature_valid: None,
        body_incomplete: false,
    };
    if matches!(reply, Reply::HangUnread) {
        state.lock().unwrap().requests.push(rec);
        tokio::time::sleep(HANG).await;
        return Ok(Response::builder().status(504).body(Full::new(Bytes::new())).unwrap());
    }
    let (id, ts, sig) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
    let mut mac = match (&key, &id, &ts) {
        (Some(k), Some(id), Some(ts)) => {
            let mut m = HmacSha256::new(k);
            m.update(format!("{id}.{ts}.").as_bytes());
            Some(m)
        }
        _ => None,
    };
    let mut sha = Sha256::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    sha.update(&data);
                    if let Some(m) = mac.as_mut() {
                        m.update(&data);
                    }
                    rec.body_len += data.len() as u64;
                    if rec.body.len() + data.len() <= KEEP_BODY {
                        rec.body.extend_from_slice(&data);
                    }
                }
            }
            Err(_) => {
                rec.body_incomplete = true;
                break;
            }
        }
    }
    rec.body_sha256 = hex::encode(sha.finalize());
    if rec.body.len() as u64 != rec.body_len {
        rec.body.clear();
    }
    rec.signature_valid = mac.map(|m| {
        let expected = format!("v1,{}", base64(&m.finish()));
        let fresh = ts.as_deref().and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| (now() - t).abs() <= 300);
        fresh && sig.as_deref().is_some_and(|s| s.split(' ').any(|one| one == expected))
    });
    state.lock().unwrap().requests.push(rec);
    match reply {
        Reply::Status { status, headers, body } => {
            let mut b = Response::builder().status(status);
            for (n, v) in headers {
                b = b.header(n, v);
            }
            Ok(b.body(Full::new(Bytes::from(body))).unwrap())
        }
        Reply::Hang | Reply::HangUnread => {
            tokio::time::sleep(HANG).await;
            Ok(Response::builder().status(504).body(Full::new(Bytes::new())).unwrap())
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// HMAC-SHA256 (RFC 2104), incremental.
pub struct HmacSha256 {
    inner: Sha256,
    outer_key: [u8; 64],
}

impl HmacSha256 {
    pub fn new(key: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        HmacSha256 { inner, outer_key: k.map(|b| b ^ 0x5c) }
    }
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }
    pub fn finish(self) -> [u8; 32] {
        let mut outer = Sha256::new();
        outer.update(self.outer_key);
        outer.update(self.inner.finalize());
        outer.finalize().into()
    }
}

/// Base64 with the standard alphabet and padding (RFC 4648, section 4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
