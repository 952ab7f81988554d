//! The headline example, `examples/goaml-monthly/`, run as its README says: the FIU's OpenPGP
//! key and the SFTP password stored, the template and the schedule created from the example's
//! JSON files (with this test's paths, key, credential and server put into the parameters),
//! and the scheduler on a clock the test moves across 06:00 Vienna time on 2 November 2026.
//! The report of October must arrive on a real SFTP server (asyncssh, loopback), decrypt with
//! `gpg`, pass `xmllint` against the goAML XSD and hold exactly the flagged transactions
//! booked in October in Vienna. In process, over the local host's real services.

use crate::delivery;
use crate::support;
use crate::tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use delivery::{PyServer, free_port, server_script, sha256_file};
use egress::local::client::Client;
use egress::local::{LocalHost, LocalOptions};
use egress::scheduler::{ManualClock, Scheduler};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tools::Gpg;

const TENANT: &str = "acme";
const SFTP_USER: &str = "bank-1234";
const SFTP_PASSWORD: &str = "correct horse battery staple";
const FIU: &str = "goAML FIU <fiu@example.org>";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn example(name: &str) -> Value {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/goaml-monthly")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schemas() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/schemas"))
}

fn fingerprint_of(key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(key).output().expect("ssh-keygen is needed (openssh-client)");
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).expect("fingerprint field").to_string()
}

/// The FIU's SFTP server: password login for `SFTP_USER`, files under `root`.
fn start_sftp(dir: &Path) -> PyServer {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let arg = |p: PathBuf| p.display().to_string();
    let args = vec![
        "--port".into(),
        port.to_string(),
        "--root".into(),
        arg(root),
        "--host-key".into(),
        arg(dir.join("host_key")),
        "--user".into(),
        SFTP_USER.into(),
        "--password".into(),
        SFTP_PASSWORD.into(),
        "--log".into(),
        arg(dir.join("events.jsonl")),
    ];
    PyServer::start(&support::python(), &server_script("sftp_server.py"), port, &args)
}

async fn post(client: &Client<'_>, path: &str, body: &Value) -> Value {
    let (status, _, created) = client.call(Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {created}");
    created
}

/// The schedule's one run, once it is over, and its export once that is over.
async fn finished_run(client: &Client<'_>, schedule: &str) -> (Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, body) = client.call(Method::GET, &format!("/v1/schedules/{schedule}/runs"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let runs = body["items"].as_array().unwrap();
        assert!(runs.len() <= 1, "one fire, one run: {body}");
        if let Some(run) = runs.first()
            && !matches!(run["status"].as_str(), Some("pending" | "running" | "paused"))
        {
            let id = run["export_id"].as_str().unwrap_or_else(|| panic!("the run has no export: {run}"));
            let (_, _, export) = client.call(Method::GET, &format!("/v1/exports/{id}"), None).await;
            if !matches!(export["status"].as_str(), Some("pending" | "running" | "paused")) {
                return (run.clone(), export);
            }
        }
        assert!(Instant::now() < deadline, "the run did not finish within 120 s: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The transaction numbers of the report, and those the dataset says it should hold (flagged,
/// booked in [start, end)), and how many flagged ones lie just after the window, by duckdb.
fn transactions(xml: &Path, dataset: &Path, start: &str, end: &str) -> Value {
    let script = r#"
import json, sys, duckdb
import xml.etree.ElementTree as ET
xml, source, start, end = sys.argv[1:5]
report = ET.parse(xml).getroot()
in_xml = sorted(t.findtext("transactionnumber") for t in report.findall("transaction"))
q = "SELECT transaction_id::VARCHAR FROM read_parquet(?) WHERE flagged AND booked_at >= ?::TIMESTAMPTZ AND booked_at < ?::TIMESTAMPTZ"
expected = sorted(r[0] for r in duckdb.execute(q, [source, start, end]).fetchall())
after = duckdb.execute(
    "SELECT count(*) FROM read_parquet(?) WHERE flagged AND booked_at >= ?::TIMESTAMPTZ", [source, end]
).fetchone()[0]
print(json.dumps({"xml": in_xml, "expected": expected, "flagged_after_window": after}))
"#;
    let source = format!("{}/*.parquet", dataset.display());
    let out = tools::ok(Command::new(support::python()).args(["-c", script]).arg(xml).args([&source, start, end]));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaml_report_of_october_reaches_the_fiu_encrypted_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    let dataset = datasets.join("transactions");
    egress::synthetic::transactions::write_parquet_with(&dataset, 100_000, 25_000, 5_000, |_| {}).expect("write dataset");
    let xsd = schemas().join("goaml-5.0.1/goAMLSchema.xsd");
    let host = LocalHost::open(LocalOptions {
        data_dir: dir.path().join("data"),
        public_url: "http://127.0.0.1:1".into(),
        dataset_roots: vec![datasets.clone(), schemas()],
    })
    .unwrap();
    let client = Client { services: &host.services, token: egress::local::demo::admin_key(&host, TENANT).await.unwrap() };
    let sftp_dir = dir.path().join("sftp");
    let sftp = start_sftp(&sftp_dir);
    let host_key = fingerprint_of(&sftp_dir.join("host_key"));

    // 1. The FIU's public key; 2. the SFTP password.
    let gpg = Gpg::new();
    let fpr = gpg.make_rsa_key(FIU, "2y");
    let armored = String::from_utf8(gpg.export(&fpr, true)).unwrap();
    let key = post(&client, "/v1/recipient-keys", &json!({"name": "goaml-fiu", "type": "openpgp", "key": armored})).await;
    let credential =
        post(&client, "/v1/credentials", &json!({"name": "goaml-sftp", "secret": {"type": "password", "password": SFTP_PASSWORD}})).await;
    assert!(credential.get("secret").is_none(), "{credential}");

    // 3. The template, as the example has it.
    let template = post(&client, "/v1/templates", &example("template.json")).await;
    assert_eq!(template["name"], "goaml-monthly", "{template}");

    // 4. The schedule, with this test's values in its parameters.
    let mut schedule = example("schedule.json");
    let parameters = schedule["export"]["parameters"].as_object_mut().unwrap();
    for (name, value) in [
        ("dataset", json!(dataset.display().to_string())),
        ("goaml_xsd", json!(xsd.display().to_string())),
        ("fiu_key", key["id"].clone()),
        ("sftp_host", json!("127.0.0.1")),
        ("sftp_port", json!(sftp.port)),
        ("sftp_host_key", json!(host_key)),
        ("sftp_credential", credential["id"].clone()),
    ] {
        assert!(name == "sftp_port" || parameters.contains_key(name), "the example's schedule gives `{name}`");
        parameters.insert(name.into(), value);
    }
    assert_eq!(parameters["sftp_user"], SFTP_USER);
    // The parameters are checked against the template when the schedule is created.
    let mut wrong = schedule.clone();
    wrong["export"]["parameters"]["sftp_port"] = json!("22");
    let (status, _, problem) = client.call(Method::POST, "/v1/schedules", Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/export/parameters/sftp_port", "{problem}");
    let created = post(&client, "/v1/schedules", &schedule).await;
    let id = created["id"].as_str().unwrap().to_string();
    for r in created["next_runs"].as_array().unwrap() {
        assert!(r["local"].as_str().unwrap().contains("-02T06:00:00+0"), "06:00 Vienna on the 2nd: {created}");
    }

    // Tick before and across 06:00 Vienna (05:00 UTC) on 2 November.
    let clock = Arc::new(ManualClock::new(utc("2026-11-02T04:59:30Z")));
    let scheduler = Scheduler::new(host.services.clone(), clock.clone());
    assert_eq!(scheduler.tick().await.unwrap().started, 0);
    clock.set(utc("2026-11-02T05:00:05Z"));
    assert_eq!(scheduler.tick().await.unwrap().started, 1);
    let (run, export) = finished_run(&client, &id).await;

    // October in Vienna: CEST until the last Sunday, CET after it.
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["fire_key"], format!("{id}/2026-11-02T06:00[Europe/Vienna]"), "{run}");
    assert_eq!(utc(run["window"]["start"].as_str().unwrap()), utc("2026-09-30T22:00:00Z"), "{run}");
    assert_eq!(utc(run["window"]["end"].as_str().unwrap()), utc("2026-10-31T23:00:00Z"), "{run}");
    assert_eq!(export["status"], "completed", "{export}");
    assert_eq!(export["template"]["name"], "goaml-monthly", "{export}");

    // The receipt: delivered once to the pinned server, the host key in the evidence.
    let receipts = export["result"]["deliveries"].as_array().unwrap_or_else(|| panic!("no deliveries: {export}"));
    assert_eq!(receipts.len(), 1, "{export}");
    let receipt = &receipts[0];
    assert_eq!((receipt["type"].as_str(), receipt["status"].as_str()), (Some("sftp"), Some("delivered")), "{receipt}");
    assert_eq!(receipt["location"], format!("sftp://127.0.0.1:{}/inbox/", sftp.port), "{receipt}");
    assert_eq!(receipt["evidence"]["details"]["host_key_fingerprint"], json!(host_key), "{receipt}");
    let remote = receipt["files"][0]["remote_name"].as_str().unwrap();
    assert!(remote.ends_with(".xml.gpg"), "{remote}");
    let on_server = sftp_dir.join("root/inbox").join(remote);
    assert_eq!(receipt["evidence"]["files"][0]["sha256"], json!(sha256_file(&on_server)), "{receipt}");
    assert_eq!(std::fs::read_dir(sftp_dir.join("root/inbox")).unwrap().count(), 1, "one file in the inbox, no temporary one");

    // The FIU's side: decrypt, validate against the XSD, count.
    let plain = gpg.decrypt(&on_server);
    let xml = dir.path().join("report.xml");
    std::fs::write(&xml, &plain).unwrap();
    let lint = tools::run(Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&xml));
    assert!(lint.status.success(), "xmllint refuses the report: {}", String::from_utf8_lossy(&lint.stderr));
    let t = transactions(&xml, &dataset, "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z");
    let expected = t["expected"].as_array().unwrap();
    assert!(expected.len() > 100, "{} flagged transactions in October", expected.len());
    assert!(t["flagged_after_window"].as_u64().unwrap() > 0, "the data has flagged rows after the window, which the report leaves out");
    assert_eq!(t["xml"], t["expected"], "the report holds exactly the flagged transactions of October in Vienna");
    assert_eq!(run["rows"], json!(expected.len()), "{run}");
}
