//! Webhook delivery against a real HTTP server on loopback: signatures checked by the receiver
//! with its own HMAC, file bodies intact, link documents, transient and permanent answers,
//! timeouts, and the outbound policy (forbidden addresses, names, redirects, allow list).

#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use egress::deliver::net_guard::{self, AllowList, ClientOptions, GuardError, Redirects};
use egress::deliver::signing::WebhookSecret;
use egress::deliver::webhook::{self, FileLink, SignedPost, WebhookConfig, WebhookPayload};
use egress::deliver::{DeliverError, Evidence, OutgoingFile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webhook_receiver::{HmacSha256, OK_BODY, Receiver, Reply, base64};

const KEY: [u8; 32] = *b"egress-webhook-test-key-32-bytes";
const EXPORT: &str = "exp_0193f0c2a1b27c3d8e4f5a6b7c8d9e0f";

fn secret() -> WebhookSecret {
    WebhookSecret::parse(&format!("whsec_{}", base64(&KEY))).unwrap()
}

fn config(url: &str, mode: &str, timeout_secs: u64) -> WebhookConfig {
    serde_json::from_value(json!({"url": url, "mode": mode, "timeout_secs": timeout_secs, "secret_credential": "cred_test"})).unwrap()
}

fn allow(entries: &[&str]) -> AllowList {
    AllowList::new(entries).unwrap()
}

fn link_payload() -> WebhookPayload {
    WebhookPayload::Links {
        export_id: EXPORT.to_string(),
        tenant: "acme".to_string(),
        files: vec![
            FileLink {
                name: "orders-1.csv".into(),
                size: 1234,
                sha256: "ab".repeat(32),
                url: "https://files.example/dl/orders-1.csv?sig=abc".into(),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            },
            FileLink {
                name: "orders-2.csv".into(),
                size: 99,
                sha256: "cd".repeat(32),
                url: "https://files.example/dl/orders-2.csv?sig=def".into(),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            },
        ],
    }
}

/// Deliver, with a bound on how long a test can wait.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(90), f).await.expect("the delivery ended within 90 s")
}

async fn deliver_links(url: &str, allow: &AllowList) -> Result<Evidence, DeliverError> {
    bounded(webhook::deliver(&config(url, "link", 5), Some(&secret()), allow, link_payload())).await
}

fn permanent(r: Result<Evidence, DeliverError>) -> String {
    match r {
        Err(DeliverError::Permanent { message }) => message,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// A file of pseudo-random bytes (xorshift), written in 1 MiB pieces; returns its SHA-256.
fn write_file(path: &Path, len: usize, seed: u64) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut sha = Sha256::new();
    let mut x = seed | 1;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len());
        for b in buf[..n].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.write_all(&buf[..n]).unwrap();
        sha.update(&buf[..n]);
        left -= n;
    }
    f.flush().unwrap();
    hex::encode(sha.finalize())
}

fn outgoing(dir: &Path, name: &str, len: usize, seed: u64, content_type: &str) -> OutgoingFile {
    let path = dir.join(format!("f{seed}.bin"));
    let sha256 = write_file(&path, len, seed);
    OutgoingFile { remote_name: name.into(), path, size: len as u64, sha256, content_type: content_type.into() }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn receiver_hmac_matches_the_standard_webhooks_reference_vector() {
    // The receiver's own HMAC and base64 against the published vector, so its checks mean something.
    let key = [
        0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4, 0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d,
        0xa4, 0xb0,
    ];
    assert_eq!(base64(&key), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let mut m = HmacSha256::new(&key);
    m.update(br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#);
    assert_eq!(base64(&m.finish()), "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_mode_streams_each_file_intact_and_signed() {
    let dir = tempfile::tempdir().unwrap();
    let big = outgoing(dir.path(), "orders 2026-11.parquet", 20 * 1024 * 1024 + 17, 7, "application/vnd.apache.parquet");
    let small = outgoing(dir.path(), "données été.csv", 1000, 9, "text/csv; charset=utf-8");
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let payload = WebhookPayload::Files { export_id: EXPORT.into(), files: vec![big.clone(), small.clone()] };
    let ev = bounded(webhook::deliver(&config(&rx.url("/in?token=t1"), "file", 10), Some(&secret()), &allow(&["127.0.0.1"]), payload))
        .await
        .expect("delivered");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    for (i, (req, f)) in reqs.iter().zip([&big, &small]).enumerate() {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/in?token=t1");
        assert!(!req.body_incomplete);
        assert_eq!(req.body_len, f.size, "{}", f.remote_name);
        assert_eq!(req.body_sha256, f.sha256, "{}", f.remote_name);
        assert_eq!(req.signature_valid, Some(true), "signature of {}", f.remote_name);
        assert_eq!(req.header("content-length"), Some(f.size.to_string().as_str()));
        assert_eq!(req.header("content-type"), Some(f.content_type.as_str()));
        assert_eq!(req.header("egress-file-sha256"), Some(f.sha256.as_str()));
        assert_eq!(req.header("egress-export-id"), Some(EXPORT));
        assert_eq!(percent_decode(req.header("egress-file-name").unwrap()), f.remote_name);
        let id = format!("{EXPORT}-file-{}", i + 1);
        assert_eq!(req.header("webhook-id"), Some(id.as_str()));
        assert_eq!(ev.files[i]["name"], json!(f.remote_name));
        assert_eq!(ev.files[i]["status"], json!(200));
        assert_eq!(ev.files[i]["webhook_id"], json!(id));
        assert_eq!(ev.files[i]["response_sha256"], json!(hex::encode(Sha256::digest(OK_BODY))));
        assert_eq!(ev.files[i]["response_complete"], json!(true));
    }
    assert_eq!(ev.location, rx.url("/in"), "the receipt's location has no query");
    assert_eq!(ev.details["mode"], json!("file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_posts_one_signed_json_document() {
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let ev = deliver_links(&rx.url("/hooks/egress"), &allow(&[&rx.addr.to_string()])).await.expect("delivered");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.signature_valid, Some(true));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let link_id = format!("{EXPORT}-links");
    assert_eq!(r.header("webhook-id"), Some(link_id.as_str()));
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        doc,
        json!({
            "type": "export.delivered", "export_id": EXPORT, "tenant": "acme",
            "files": [
                {"name": "orders-1.csv", "size": 1234, "sha256": "ab".repeat(32), "url": "https://files.example/dl/orders-1.csv?sig=abc", "expires_at": "2026-12-01T00:00:00Z"},
                {"name": "orders-2.csv", "size": 99, "sha256": "cd".repeat(32), "url": "https://files.example/dl/orders-2.csv?sig=def", "expires_at": "2026-12-01T00:00:00Z"}
            ]
        })
    );
    assert_eq!(ev.details["status"], json!(200));
    assert_eq!(ev.details["webhook_id"], json!(link_id));
    assert_eq!(ev.details["response_sha256"], json!(hex::encode(Sha256::digest(OK_BODY))));
    assert_eq!(ev.files.len(), 2);
    assert_eq!(ev.files[1]["name"], json!("orders-2.csv"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_the_receivers_check_and_no_secret_sends_no_signature() {
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let url = rx.url("/");
    let other = WebhookSecret::parse(&egress::deliver::signing::generate_secret()).unwrap();
    bounded(webhook::deliver(&config(&url, "link", 5), Some(&other), &allow(&["127.0.0.1"]), link_payload())).await.unwrap();
    bounded(webhook::deliver(&config(&url, "link", 5), None, &allow(&["127.0.0.1"]), link_payload())).await.unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs[0].signature_valid, Some(false));
    assert!(reqs[1].header("webhook-signature").is_none());
    assert!(reqs[1].header("webhook-id").is_some() && reqs[1].header("webhook-timestamp").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_twice_then_200_are_transient_then_a_receipt() {
    let rx = Receiver::start(Some(&KEY), vec![Reply::status(503, "busy"), Reply::status(503, "busy"), Reply::ok()]).await;
    let url = rx.url("/");
    let allowed = allow(&["127.0.0.1"]);
    for attempt in 0..2 {
        match deliver_links(&url, &allowed).await {
            Err(DeliverError::Transient { message, retry_after: None }) => {
                assert!(message.contains("answered 503 Service Unavailable: busy"), "{message}")
            }
            other => panic!("attempt {attempt}: expected transient, got {other:?}"),
        }
    }
    let ev = deliver_links(&url, &allowed).await.expect("third attempt delivered");
    assert_eq!(ev.details["status"], json!(200));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    // Every attempt is signed afresh and keeps the message id (receivers drop duplicates by it).
    assert!(reqs.iter().all(|r| r.signature_valid == Some(true) && r.header("webhook-id") == reqs[0].header("webhook-id")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_429_is_transient_with_retry_after() {
    let rx = Receiver::start(None, vec![Reply::with_header(429, "retry-after", "7")]).await;
    match deliver_links(&rx.url("/"), &allow(&["127.0.0.1"])).await {
        Err(DeliverError::Transient { message, retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_404_is_permanent_with_the_receivers_words() {
    let rx = Receiver::start(None, vec![Reply::status(404, "no such hook\nsorry")]).await;
    let msg = permanent(deliver_links(&rx.url("/missing"), &allow(&["127.0.0.1"])).await);
    assert_eq!(msg, format!("webhook url {} answered 404 Not Found: no such hook sorry", rx.url("/missing")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_times_out_as_transient() {
    let rx = Receiver::start(None, vec![Reply::Hang]).await;
    let started = Instant::now();
    let r = bounded(webhook::deliver(&config(&rx.url("/"), "link", 1), None, &allow(&["127.0.0.1"]), link_payload())).await;
    let took = started.elapsed();
    match r {
        Err(DeliverError::Transient { message, .. }) => assert!(message.contains("no progress for 1 s"), "{message}"),
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(rx.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_a_file_times_out_as_transient() {
    let dir = tempfile::tempdir().unwrap();
    let f = outgoing(dir.path(), "big.bin", 24 * 1024 * 1024, 3, "application/octet-stream");
    let rx = Receiver::start(None, vec![Reply::HangUnread]).await;
    let started = Instant::now();
    let payload = WebhookPayload::Files { export_id: EXPORT.into(), files: vec![f] };
    let r = bounded(webhook::deliver(&config(&rx.url("/"), "file", 1), None, &allow(&["127.0.0.1"]), payload)).await;
    match r {
        Err(DeliverError::Transient { message, .. }) => {
            assert!(message.contains("file \"big.bin\"") && message.contains("no progress for 1 s"), "{message}")
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert_eq!(rx.hits(), 1, "the request reached the receiver, which never read its body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = deliver_links(&format!("http://127.0.0.1:{port}/"), &allow(&["127.0.0.1"])).await;
    assert!(matches!(r, Err(DeliverError::Transient { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forbidden_address_class_is_refused_before_any_request() {
    let rx = Receiver::start(None, vec![]).await;
    let v6 = Receiver::start_on("[::1]:0", None, vec![]).await;
    let port = rx.addr.port();
    let v6_port = v6.as_ref().map(|r| r.addr.port()).unwrap_or(port);
    let cases = [
        (format!("http://127.0.0.1:{port}/"), "is loopback"),
        (format!("http://[::1]:{v6_port}/"), "is loopback"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "is link-local (the cloud metadata service)"),
        ("http://10.0.0.1/".to_string(), "is private"),
        ("http://192.168.1.1/".to_string(), "is private"),
        ("http://172.16.0.1/".to_string(), "is private"),
        ("http://100.64.0.1/".to_string(), "is carrier-grade NAT"),
        ("http://224.0.0.1/".to_string(), "is multicast"),
        (format!("http://0.0.0.0:{port}/"), "is unspecified"),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), "is loopback"),
        ("http://[fe80::1]/".to_string(), "is link-local"),
        (format!("http://2130706433:{port}/"), "is loopback"),
    ];
    let empty = AllowList::empty();
    for (url, class) in &cases {
        let started = Instant::now();
        let msg = permanent(deliver_links(url, &empty).await);
        assert!(msg.starts_with("webhook url http://") && msg.contains(class), "{url}: {msg}");
        assert!(msg.contains("allowed_hosts"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(2), "{url} was refused without connecting");
    }
    assert_eq!(rx.hits(), 0, "no request reached the IPv4 listener");
    if let Some(v6) = v6 {
        assert_eq!(v6.hits(), 0, "no request reached the IPv6 listener");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
    let rx = Receiver::start(None, vec![]).await;
    let url = format!("http://localhost:{}/in", rx.addr.port());
    let msg = permanent(deliver_links(&url, &AllowList::empty()).await);
    assert!(msg.contains("localhost resolves to") && msg.contains("which is loopback"), "{msg}");
    assert_eq!(rx.hits(), 0);
    // The guard error is recognisable inside the client's own error, too.
    let client = net_guard::guarded_client(
        &AllowList::empty(),
        &ClientOptions { connect_timeout: Duration::from_secs(5), redirects: Redirects::Follow },
    )
    .unwrap();
    let err = bounded(client.get(&url).send()).await.expect_err("refused");
    assert!(matches!(net_guard::guard_error(&err), Some(GuardError::ForbiddenAddress { class: "loopback", .. })), "{err:?}");
    assert_eq!(rx.hits(), 0);
    // Allowed by name (with its port), the same URL is delivered.
    deliver_links(&url, &allow(&[&format!("LOCALHOST:{}", rx.addr.port())])).await.expect("delivered to an allowed name");
    assert_eq!(rx.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listing_an_address_with_its_port_lets_exactly_that_through() {
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let other_port = rx.addr.port().wrapping_add(1).max(1024);
    let msg = permanent(deliver_links(&rx.url("/"), &allow(&[&format!("127.0.0.1:{other_port}")])).await);
    assert!(msg.contains(&format!("only with port {other_port}")), "{msg}");
    assert_eq!(rx.hits(), 0);
    deliver_links(&rx.url("/"), &allow(&[&rx.addr.to_string()])).await.expect("delivered");
    assert_eq!(rx.hits(), 1);
    assert_eq!(rx.requests()[0].signature_valid, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_forbidden_addresses_are_refused_and_never_reached() {
    let second = Receiver::start(None, vec![]).await;
    let b = second.addr.port();
    let first = Receiver::start(
        None,
        vec![
            Reply::redirect(307, &format!("http://localhost:{b}/stolen")),
            Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"),
            Reply::redirect(307, &format!("http://127.0.0.1:{b}/x?token=secret")),
        ],
    )
    .await;
    let only_first = allow(&[&first.addr.to_string()]);
    let m1 = permanent(deliver_links(&first.url("/"), &only_first).await);
    assert!(m1.contains("a redirect led to localhost: localhost resolves to") && m1.contains("which is loopback"), "{m1}");
    let m2 = permanent(deliver_links(&first.url("/"), &only_first).await);
    assert!(
        m2.contains(
            "redirect to http://169.254.169.254/latest/meta-data/: the address 169.254.169.254 is link-local (the cloud metadata service)"
        ),
        "{m2}"
    );
    let m3 = permanent(deliver_links(&first.url("/"), &only_first).await);
    assert!(m3.contains(&format!("redirect to http://127.0.0.1:{b}/x: ")) && m3.contains("127.0.0.1"), "{m3}");
    assert!(!m3.contains("token=secret"), "{m3}");
    assert_eq!(first.hits(), 3);
    assert_eq!(second.hits(), 0, "the redirect target was never reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_between_allowed_hosts() {
    let second = Receiver::start(Some(&KEY), vec![]).await;
    let b = second.url("/final");
    let first =
        Receiver::start(Some(&KEY), vec![Reply::redirect(307, &b), Reply::redirect(302, &b), Reply::redirect(308, &second.url("/again"))])
            .await;
    let both = allow(&[&first.addr.to_string(), &second.addr.to_string()]);
    // 307 keeps the method and body: followed, and the body arrives signed.
    let ev = deliver_links(&first.url("/"), &both).await.expect("followed 307");
    assert_eq!(ev.details["final_url"], json!(b));
    assert_eq!(second.hits(), 1);
    assert_eq!(second.requests()[0].method, "POST");
    assert_eq!(second.requests()[0].signature_valid, Some(true));
    // 302 would turn the POST into a GET: not followed.
    let m = permanent(deliver_links(&first.url("/"), &both).await);
    assert!(m.contains("answered 302 Found") && m.contains(&format!("redirect to {b}")) && m.contains("final address"), "{m}");
    assert_eq!(second.hits(), 1);
    // A streamed file body cannot be sent twice: a 308 is reported, not followed.
    let dir = tempfile::tempdir().unwrap();
    let f = outgoing(dir.path(), "a.bin", 5000, 11, "application/octet-stream");
    let payload = WebhookPayload::Files { export_id: EXPORT.into(), files: vec![f] };
    let r = bounded(webhook::deliver(&config(&first.url("/"), "file", 5), Some(&secret()), &both, payload)).await;
    let m = permanent(r);
    assert!(m.contains("answered 308 Permanent Redirect"), "{m}");
    assert_eq!(second.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_stop_after_five_hops() {
    let rx = Receiver::start(None, vec![]).await;
    let url = rx.url("/again");
    rx.script((0..10).map(|_| Reply::redirect(307, &url)).collect());
    let m = permanent(deliver_links(&url, &allow(&["127.0.0.1"])).await);
    assert!(m.contains("more than 5 redirects"), "{m}");
    assert_eq!(rx.hits(), 6, "the first request and five redirects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_posted_signed() {
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let url = rx.url("/notify");
    let headers = BTreeMap::from([("Authorization".to_string(), "Bearer n-token".to_string())]);
    let post = SignedPost { what: "notification", url: &url, message_id: "ntf_1", headers: &headers, timeout: Duration::from_secs(5) };
    let body = json!({"type": "export.completed", "export_id": EXPORT});
    let receipt = bounded(webhook::post_signed_json(&post, &body, Some(&secret()), &allow(&["127.0.0.1"]))).await.unwrap();
    assert_eq!(receipt.status, 200);
    assert_eq!(receipt.webhook_id, "ntf_1");
    let r = &rx.requests()[0];
    assert_eq!(r.signature_valid, Some(true));
    assert_eq!(r.header("authorization"), Some("Bearer n-token"));
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), body);
    // The same call to a forbidden address is refused with the notification's own label.
    let post = SignedPost { url: "http://169.254.169.254/", ..post };
    let err = bounded(webhook::post_signed_json(&post, &body, Some(&secret()), &AllowList::empty())).await.unwrap_err();
    assert!(err.to_string().starts_with("notification url http://169.254.169.254/: the address 169.254.169.254 is link-local"), "{err}");
}

/// The bar for large files: a 1 GiB file delivered with peak RSS under 300 MB. The file is sparse
/// (zeros, no disk space); the delivery still reads it twice and sends every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gigabyte_file_keeps_memory_bounded() {
    const SIZE: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.bin");
    std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
    let mut sha = Sha256::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..SIZE / zeros.len() as u64 {
        sha.update(&zeros);
    }
    let f = OutgoingFile {
        remote_name: "big.bin".into(),
        path,
        size: SIZE,
        sha256: hex::encode(sha.finalize()),
        content_type: "application/octet-stream".into(),
    };
    let rx = Receiver::start(Some(&KEY), vec![]).await;
    let payload = WebhookPayload::Files { export_id: EXPORT.into(), files: vec![f.clone()] };
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(300),
        webhook::deliver(&config(&rx.url("/"), "file", 30), Some(&secret()), &allow(&["127.0.0.1"]), payload),
    )
    .await
    .expect("within 5 minutes");
    r.expect("delivered");
    let req = &rx.requests()[0];
    assert_eq!((req.body_len, req.body_sha256.as_str(), req.signature_valid), (f.size, f.sha256.as_str(), Some(true)));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm_kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    eprintln!("1 GiB delivered in {:?}, peak RSS of the test process {} MB", started.elapsed(), hwm_kb / 1024);
    assert!(hwm_kb < 300 * 1024, "peak RSS {hwm_kb} kB");
}
