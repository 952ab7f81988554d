//! Credentials (sealed, never returned), tenant settings, the audit trail with its hash chain
//! (edits and deletions in the store are detected), and an export's lineage, against the real
//! `egress serve`.

use crate::support;

use serde_json::{Value, json};
use support::Server;

fn start() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let server = Server::start(&data, &datasets, &[]);
    let token = server.key("acme", "exports:admin");
    (dir, server, token)
}

/// Run SQL on the server's database with Python's sqlite3 (an independent writer).
fn sql(server: &Server, statement: &str) {
    let db = server.data_dir.join("egress.db");
    let script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2])\nc.commit()\nprint(c.total_changes)";
    let out = std::process::Command::new(support::python()).args(["-c", script, db.to_str().unwrap(), statement]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "one row changed by {statement}");
}

#[test]
fn credentials_are_sealed_and_never_returned() {
    let (_dir, server, token) = start();
    let secret = "s3cr3t-Hunter2-never-shown";
    let body = json!({"name": "partner sftp", "description": "FIU drop box", "secret": {"type": "password", "password": secret}});
    let r = server.req("POST", "/v1/credentials", Some(&token), Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains(secret));
    let cred = r.json();
    let id = cred["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cred_"));
    assert_eq!(cred["type"], "password");
    assert_eq!(r.header("location"), Some(format!("/v1/credentials/{id}").as_str()));

    let got = server.req("GET", &format!("/v1/credentials/{id}"), Some(&token), None);
    assert_eq!(got.status, 200);
    assert!(!got.text().contains(secret) && !got.text().contains("sealed"), "{}", got.text());
    let list = server.req("GET", "/v1/credentials?limit=10", Some(&token), None);
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);
    assert!(!list.text().contains(secret));

    // Same name: 409. Bad secrets: 422 naming the field, never echoing the value.
    assert_eq!(server.req("POST", "/v1/credentials", Some(&token), Some(&body)).status, 409);
    let bad = json!({"name": "hook", "secret": {"type": "webhook_secret", "secret": "plain-text-secret-xyz"}});
    let r = server.req("POST", "/v1/credentials", Some(&token), Some(&bad));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["pointer"], "/secret/secret");
    assert!(!r.text().contains("plain-text-secret-xyz"));
    let wrong_type = json!({"name": "x", "secret": {"type": "password", "password": 12345678}});
    let r = server.req("POST", "/v1/credentials", Some(&token), Some(&wrong_type));
    assert_eq!(r.status, 422);
    assert!(!r.text().contains("12345678"), "{}", r.text());
    let unknown = json!({"name": "x", "secret": {"type": "carrier_pigeon"}});
    assert_eq!(server.req("POST", "/v1/credentials", Some(&token), Some(&unknown)).json()["errors"][0]["pointer"], "/secret/type");

    // Nothing on disk holds the secret in clear (the database and its WAL).
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{} holds the secret", path.display());
        }
    }

    // Another tenant does not see it; a key without admin cannot manage credentials.
    let other = server.key("other", "exports:admin");
    assert_eq!(server.req("GET", &format!("/v1/credentials/{id}"), Some(&other), None).status, 404);
    let viewer = server.key("acme", "exports:view");
    assert_eq!(server.req("GET", "/v1/credentials", Some(&viewer), None).status, 403);

    // A template whose destination logs in with it: the credential cannot be deleted under it.
    let sftp = json!({"type": "sftp", "host": "sftp.fiu.example", "username": "acme", "host_key": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "credential": id});
    let spec = json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv", "destinations": [sftp]});
    let t = server.req("POST", "/v1/templates", Some(&token), Some(&json!({"name": "fiu", "spec": spec})));
    assert_eq!(t.status, 201, "{}", t.text());
    let del = server.req("DELETE", &format!("/v1/credentials/{id}"), Some(&token), None);
    assert_eq!(del.status, 409, "{}", del.text());
    assert!(del.json()["detail"].as_str().unwrap().contains(t.json()["id"].as_str().unwrap()), "{}", del.text());
    assert_eq!(server.req("DELETE", &format!("/v1/templates/{}", t.json()["id"].as_str().unwrap()), Some(&token), None).status, 204);

    assert_eq!(server.req("DELETE", &format!("/v1/credentials/{id}"), Some(&token), None).status, 204);
    assert_eq!(server.req("GET", &format!("/v1/credentials/{id}"), Some(&token), None).status, 404);
}

#[test]
fn settings_are_validated_and_written_conditionally() {
    let (_dir, server, token) = start();
    let r = server.req("GET", "/v1/settings", Some(&token), None);
    assert_eq!(r.json(), json!({"allowed_hosts": [], "version": 0}));
    let bad = json!({"allowed_hosts": ["http://x"], "notifications": {"webhook": {"url": "ftp://x"}}});
    let r = server.req("PUT", "/v1/settings", Some(&token), Some(&bad));
    assert_eq!(r.status, 422);
    let pointers: Vec<Value> = r.json()["errors"].as_array().unwrap().iter().map(|e| e["pointer"].clone()).collect();
    assert_eq!(pointers, [json!("/allowed_hosts/0"), json!("/notifications/webhook/url")]);

    let good = json!({"allowed_hosts": ["127.0.0.1:9000"], "version": 0});
    let r = server.req("PUT", "/v1/settings", Some(&token), Some(&good));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 1);
    // A writer that read version 0 loses now.
    assert_eq!(server.req("PUT", "/v1/settings", Some(&token), Some(&good)).status, 409);
    let r = server.req("PUT", "/v1/settings", Some(&token), Some(&json!({"allowed_hosts": [], "version": 1})));
    assert_eq!(r.json()["version"], 2);
}

#[test]
fn the_audit_trail_is_listed_filtered_and_its_chain_verified() {
    let (_dir, server, token) = start();
    for i in 0..3 {
        let body = json!({"name": format!("c{i}"), "secret": {"type": "password", "password": "pw"}});
        assert_eq!(server.req("POST", "/v1/credentials", Some(&token), Some(&body)).status, 201);
    }
    let export = server.export(&token, &json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"}));
    assert_eq!(export["status"], "completed");
    let id = export["id"].as_str().unwrap();

    let all = server.req("GET", "/v1/audit?limit=100", Some(&token), None).json();
    let events = all["items"].as_array().unwrap();
    assert!(events.len() >= 5, "{all}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "chain order");
    let creds = server.req("GET", "/v1/audit?action=credential.create&limit=2", Some(&token), None).json();
    assert_eq!(creds["items"].as_array().unwrap().len(), 2);
    let cursor = creds["next_cursor"].as_str().unwrap();
    let rest = server.req("GET", &format!("/v1/audit?action=credential.create&cursor={cursor}"), Some(&token), None).json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    // `export.completed` is appended just after the status is written, which ends the wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let about = loop {
        let about = server.req("GET", &format!("/v1/audit?target={id}"), Some(&token), None).json();
        let done = about["items"].as_array().unwrap().iter().any(|e| e["action"] == "export.completed");
        if done || std::time::Instant::now() > deadline {
            break about;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let actions: Vec<&str> = about["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"export.create") && actions.contains(&"export.completed"), "{actions:?}");
    // Reads are audited too (the waits above read the export), and so are refusals.
    assert!(actions.contains(&"export.get"), "{actions:?}");
    let viewer = server.key("acme", "exports:view");
    assert_eq!(server.req("GET", "/v1/credentials", Some(&viewer), None).status, 403);
    let body = json!({"name": "nope", "secret": {"type": "password", "password": "pw"}});
    assert_eq!(server.req("POST", "/v1/credentials", Some(&viewer), Some(&body)).status, 403);
    let denied = server.req("GET", "/v1/audit?outcome=denied", Some(&token), None).json();
    let denied: Vec<(&str, &str)> =
        denied["items"].as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap())).collect();
    assert_eq!(denied.iter().map(|(a, _)| *a).collect::<Vec<_>>(), ["credentials.list", "credential.create"], "{denied:?}");
    assert!(denied.iter().all(|(_, actor)| *actor != "-" && !actor.is_empty()), "the refused key is named: {denied:?}");
    assert_eq!(server.req("GET", "/v1/audit?since=yesterday", Some(&token), None).status, 400);

    let lineage = server.req("GET", &format!("/v1/exports/{id}/lineage"), Some(&token), None);
    assert_eq!(lineage.status, 200, "{}", lineage.text());
    let l = lineage.json();
    assert_eq!(l["rows"], 1);
    assert_eq!(l["source"]["type"], "inline");
    assert_eq!(l["spec_hash"].as_str().unwrap().len(), 64);
    assert!(l["code_version"].as_str().unwrap().starts_with("egress "));
    assert_eq!(l["files"][0]["sha256"], export["result"]["files"][0]["sha256"]);
    assert!(l["audit"].as_array().unwrap().iter().any(|e| e["action"] == "export.completed"));

    let v = server.req("GET", "/v1/audit/verify", Some(&token), None).json();
    assert_eq!(v["valid"], true, "{v}");
    let n = v["events_checked"].as_u64().unwrap();
    assert!(n >= 5);

    // Edit one event's outcome in the store: verify names it.
    sql(
        &server,
        "UPDATE audit_events SET doc = replace(doc, '\"outcome\":\"success\"', '\"outcome\":\"denied\"') WHERE tenant = 'acme' AND seq = 2",
    );
    let v = server.req("GET", "/v1/audit/verify", Some(&token), None).json();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["first_invalid"]["seq"], 2);
    assert!(v["first_invalid"]["reason"].as_str().unwrap().contains("edited"), "{v}");

    // Delete another (after restoring nothing): the gap is found too, at the first bad place.
    let (_dir2, server2, token2) = start();
    for i in 0..4 {
        let body = json!({"name": format!("c{i}"), "secret": {"type": "password", "password": "pw"}});
        server2.req("POST", "/v1/credentials", Some(&token2), Some(&body));
    }
    sql(&server2, "DELETE FROM audit_events WHERE tenant = 'acme' AND seq = 3");
    let v = server2.req("GET", "/v1/audit/verify", Some(&token2), None).json();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["first_invalid"]["seq"], 3);
    assert_eq!(v["first_invalid"]["found_seq"], 4);
    assert!(v["first_invalid"]["reason"].as_str().unwrap().contains("deleted"), "{v}");
}

#[test]
fn an_anchor_kept_outside_finds_events_deleted_from_the_end() {
    let (_dir, server, token) = start();
    for i in 0..3 {
        let body = json!({"name": format!("c{i}"), "secret": {"type": "password", "password": "pw"}});
        server.req("POST", "/v1/credentials", Some(&token), Some(&body));
    }
    // The auditor keeps the head of a verify.
    let v = server.req("GET", "/v1/audit/verify", Some(&token), None).json();
    assert_eq!(v["valid"], true, "{v}");
    let (seq, hash) = (v["head"]["seq"].as_u64().unwrap(), v["head"]["hash"].as_str().unwrap().to_string());
    let anchored = format!("/v1/audit/verify?seq={seq}&hash={hash}");
    let v = server.req("GET", &anchored, Some(&token), None).json();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["anchor"], json!({"seq": seq, "hash": hash, "found": true}), "{v}");

    // The last events are deleted: the chain alone still verifies, the anchor does not.
    // (the two verifies above are events seq + 1 and seq + 2)
    for n in (seq - 1..=seq + 2).rev() {
        sql(&server, &format!("DELETE FROM audit_events WHERE tenant = 'acme' AND seq = {n}"));
    }
    let v = server.req("GET", &anchored, Some(&token), None).json();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["first_invalid"]["seq"], seq - 1, "{v}");
    assert!(v["first_invalid"]["reason"].as_str().unwrap().contains("deleted from its end"), "{v}");
    let plain = server.req("GET", "/v1/audit/verify", Some(&token), None).json();
    assert_eq!(plain["valid"], true, "a chain cut at its end is still a chain: {plain}");

    // A wrong hash at the anchor's position, and bad anchors.
    let zeros = "0".repeat(64);
    let v = server.req("GET", &format!("/v1/audit/verify?seq=1&hash={zeros}"), Some(&token), None).json();
    assert_eq!((v["valid"].as_bool(), v["first_invalid"]["seq"].as_u64()), (Some(false), Some(1)), "{v}");
    assert!(v["first_invalid"]["reason"].as_str().unwrap().contains("another hash"), "{v}");
    for (q, pointer) in
        [("seq=0&hash=".to_string() + &zeros, "/query/seq"), ("seq=1&hash=xyz".into(), "/query/hash"), ("seq=1".into(), "/query/hash")]
    {
        let r = server.req("GET", &format!("/v1/audit/verify?{q}"), Some(&token), None);
        assert_eq!(r.status, 400, "{q}");
        let p = r.json();
        assert_eq!(p["code"], "INVALID_PARAMETER", "{p}");
        assert_eq!(p["errors"][0]["pointer"], pointer, "{q}: {p}");
    }
}
