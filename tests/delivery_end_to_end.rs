//! Delivery through the whole service: an export with two destinations, a webhook that answers
//! 503 twice then 200 (one receipt, three attempts, signed with a stored credential) and a
//! webhook whose name resolves to loopback (refused at once, no retries): the export ends
//! `partial` with a receipt per destination, and the audit trail records both. A webhook at an
//! address the policy forbids is refused when the export is created, unless the tenant allows it.

use crate::support;
use crate::webhook_receiver;

use serde_json::json;
use support::Server;
use webhook_receiver::{Receiver, Reply, base64};

const KEY: [u8; 32] = *b"egress-end-to-end-webhook-key-32";

#[test]
fn a_transient_webhook_is_retried_and_a_forbidden_one_fails_alone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start(Some(&KEY), vec![Reply::status(503, "busy"), Reply::status(503, "busy"), Reply::ok()]));
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let server = Server::start(&dir.path().join("data"), &datasets, &[]);
    let token = server.key("acme", "exports:admin");

    let cred = server.req(
        "POST",
        "/v1/credentials",
        Some(&token),
        Some(&json!({"name": "hook", "secret": {"type": "webhook_secret", "secret": format!("whsec_{}", base64(&KEY))}})),
    );
    assert_eq!(cred.status, 201, "{}", cred.text());
    let cred_id = cred.json()["id"].as_str().unwrap().to_string();
    let url = receiver.url("/egress");
    let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let r = server.req("PUT", "/v1/settings", Some(&token), Some(&json!({"allowed_hosts": [authority]})));
    assert_eq!(r.status, 200, "{}", r.text());

    // The metadata address is refused at create time, naming the field; the allowed one is not.
    let refused = server.req(
        "POST",
        "/v1/exports",
        Some(&token),
        Some(&json!({"source": {"type": "inline", "rows": [{"id": 1}]}, "format": "csv",
            "destinations": [{"type": "webhook", "url": url}, {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}]})),
    );
    assert_eq!(refused.status, 422, "{}", refused.text());
    let problem = refused.json();
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{problem}");
    assert_eq!(errors[0]["pointer"], "/destinations/1/url", "{problem}");
    assert!(errors[0]["allowed"].as_str().unwrap().contains("link-local"), "{problem}");

    let rows: Vec<_> = (0..500).map(|i| json!({"id": i, "memo": format!("row {i}")})).collect();
    let spec = json!({
        "source": {"type": "inline", "rows": rows},
        "format": "csv",
        "destinations": [
            {"type": "webhook", "url": url, "mode": "file", "secret_credential": cred_id,
             "filename": "{tenant}-{date}-{name}", "retry": {"max_attempts": 5, "initial_delay_secs": 0.2, "max_delay_secs": 0.5}},
            {"type": "webhook", "url": format!("http://localhost:{}/hook", receiver.addr.port()), "mode": "link"}
        ]
    });
    let export = server.export(&token, &spec);
    assert_eq!(export["status"], "partial", "{export}");
    let file = &export["result"]["files"][0];
    let deliveries = export["result"]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);

    let ok = &deliveries[0];
    assert_eq!((ok["status"].as_str(), ok["attempts"].as_u64()), (Some("delivered"), Some(3)), "{ok}");
    assert!(ok["files"][0]["remote_name"].as_str().unwrap().starts_with("acme-20"), "{ok}");
    assert_eq!(ok["evidence"]["files"][0]["status"], 200, "{ok}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "two 503s then the 200");
    let last = requests.last().unwrap();
    assert_eq!(last.signature_valid, Some(true), "signed with the stored secret");
    assert_eq!(last.body_sha256, file["sha256"].as_str().unwrap(), "the file arrived intact");

    let refused = &deliveries[1];
    assert_eq!((refused["status"].as_str(), refused["attempts"].as_u64()), (Some("failed"), Some(1)), "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("loopback"), "{refused}");
    assert!(!export.to_string().contains(&base64(&KEY)), "no secret in the export");

    let audit = server.req("GET", &format!("/v1/audit?target={}", export["id"].as_str().unwrap()), Some(&token), None).json();
    let outcomes: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("export.delivery") || e["action"] == "export.partial")
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert!(outcomes.contains(&("export.delivery.webhook".into(), "success".into())), "{outcomes:?}");
    assert!(outcomes.contains(&("export.delivery.webhook".into(), "failed".into())), "{outcomes:?}");
    assert!(outcomes.contains(&("export.partial".into(), "partial".into())), "{outcomes:?}");

    // The tenant now allows the second receiver's name: deliver to it again, on request. Only its
    // receipt changes; the export is completed.
    let id = export["id"].as_str().unwrap();
    let version = server.req("GET", "/v1/settings", Some(&token), None).json()["version"].clone();
    let r = server.req(
        "PUT",
        "/v1/settings",
        Some(&token),
        Some(&json!({"allowed_hosts": [authority, format!("localhost:{}", receiver.addr.port())], "version": version})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.req("POST", &format!("/v1/exports/{id}/deliveries/1/retry"), Some(&token), None);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["run"], 2, "a new run: {}", r.text());
    let again = server.wait(&token, &format!("/v1/exports/{id}"));
    assert_eq!(again["status"], "completed", "{again}");
    let deliveries = again["result"]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries[0], export["result"]["deliveries"][0], "the first receipt is kept");
    assert_eq!((deliveries[1]["status"].as_str(), deliveries[1]["attempts"].as_u64()), (Some("delivered"), Some(1)), "{again}");
    assert_eq!(again["result"]["files"], export["result"]["files"], "the same files");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "one more request: the link to the same file");
    assert_eq!(requests[3].path, "/hook");
    let link = String::from_utf8_lossy(&requests[3].body).into_owned();
    assert!(link.contains(file["sha256"].as_str().unwrap()), "the link names the file's checksum: {link}");

    // A destination that does not exist, an index that is not one, an export without files.
    let r = server.req("POST", &format!("/v1/exports/{id}/deliveries/2/retry"), Some(&token), None);
    assert_eq!((r.status, r.problem_code().as_str()), (404, "NOT_FOUND"), "{}", r.text());
    let r = server.req("POST", &format!("/v1/exports/{id}/deliveries/first/retry"), Some(&token), None);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["pointer"], "/path/n");
}
