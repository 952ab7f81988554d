//! Pause, resume, cancel and retry of running exports, and two runners racing on one export,
//! in process so that the stage invocations can be counted: a chunk once written is never
//! written again.

use std::time::{Duration, Instant};

use egress::local::client::Client;
use egress::local::{LocalHost, LocalOptions};
use egress::model::{Export, ExportSpec, ExportStatus};
use egress::orchestrate::Orchestrator;
use egress::pipeline::record_failure::{FailureInfo, RecordFailureInput, record_failure};
use egress::store::ExportStore;
use http::{Method, StatusCode};
use serde_json::{Value, json};

fn open(dir: &std::path::Path, roots: &std::path::Path) -> LocalHost {
    LocalHost::open_with(
        LocalOptions { data_dir: dir.into(), public_url: "http://127.0.0.1:1".into(), dataset_roots: vec![roots.into()] },
        |s| {
            s.chunk_rows = 2_500;
            s.max_concurrency = 2;
        },
    )
    .unwrap()
}

async fn client(host: &LocalHost) -> Client<'_> {
    Client { services: &host.services, token: egress::local::demo::admin_key(host, "acme").await.unwrap() }
}

fn dataset(dir: &std::path::Path, rows: u64) -> (std::path::PathBuf, Value) {
    let roots = dir.join("datasets");
    let ds = roots.join("tx");
    egress::synthetic::transactions::write_parquet_with(&ds, rows, 10_000, 2_500, |_| {}).unwrap();
    let spec = json!({"source": {"type": "dataset", "local_path": ds.to_str().unwrap()}, "format": "csv", "name": "run control"});
    (roots, spec)
}

async fn get(c: &Client<'_>, id: &str) -> Value {
    let (status, _, body) = c.call(Method::GET, &format!("/v1/exports/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn wait_until(c: &Client<'_>, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let e = get(c, id).await;
        if ok(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "waited too long for {what}: {e}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn file_sha(host: &LocalHost, id: &str) -> String {
    let e = host.store.get_export("acme", id).await.unwrap().unwrap();
    e.result.unwrap().files[0].sha256.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_keeps_finished_chunks_and_resume_continues_from_the_first_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let (roots, spec) = dataset(dir.path(), 200_000);
    let host = open(&dir.path().join("data"), &roots);
    let c = client(&host).await;

    let (status, _, created) = c.call(Method::POST, "/v1/exports", Some(&spec)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_until(&c, &id, "a few chunks", |e| e["progress"]["chunks_done"].as_u64().unwrap() >= 3).await;
    let (status, _, paused) = c.call(Method::POST, &format!("/v1/exports/{id}/pause"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{paused}");
    assert_eq!(paused["status"], "paused");
    host.orchestrator.idle().await;
    let at_pause = get(&c, &id).await;
    assert_eq!(at_pause["status"], "paused", "a paused run stays paused: {at_pause}");
    let (done, total) = (at_pause["progress"]["chunks_done"].as_u64().unwrap(), at_pause["progress"]["chunks_total"].as_u64().unwrap());
    assert!(done < total, "the pause came too late to test anything: {at_pause}");
    assert_eq!(host.orchestrator.tasks().parts_written(), done, "every part written so far is recorded");

    // Pausing twice, or resuming something not paused, is a conflict naming the status.
    let (status, _, p) = c.call(Method::POST, &format!("/v1/exports/{id}/pause"), None).await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::CONFLICT, Some("INVALID_STATE")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("paused"), "{p}");

    let (status, _, resumed) = c.call(Method::POST, &format!("/v1/exports/{id}/resume"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resumed}");
    assert_eq!(resumed["run"], 2);
    let e = wait_until(&c, &id, "completion", |e| e["status"] == "completed").await;
    assert_eq!(e["result"]["rows"], 200_000);
    assert_eq!(host.orchestrator.tasks().parts_written(), total, "no chunk was extracted twice across pause and resume");
    let (status, _, p) = c.call(Method::POST, &format!("/v1/exports/{id}/resume"), None).await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::CONFLICT, Some("INVALID_STATE")), "{p}");

    // The file equals the one an uninterrupted run makes.
    let (_, _, again) = c.call(Method::POST, "/v1/exports", Some(&spec)).await;
    let again_id = again["id"].as_str().unwrap().to_string();
    wait_until(&c, &again_id, "completion", |e| e["status"] == "completed").await;
    assert_eq!(file_sha(&host, &id).await, file_sha(&host, &again_id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_run_and_removes_its_working_files() {
    let dir = tempfile::tempdir().unwrap();
    let (roots, spec) = dataset(dir.path(), 200_000);
    let host = open(&dir.path().join("data"), &roots);
    let c = client(&host).await;
    let (_, _, created) = c.call(Method::POST, "/v1/exports", Some(&spec)).await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_until(&c, &id, "a chunk", |e| e["progress"]["chunks_done"].as_u64().unwrap() >= 1).await;
    let (status, _, cancelled) = c.call(Method::POST, &format!("/v1/exports/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    host.orchestrator.idle().await;
    let e = get(&c, &id).await;
    assert_eq!(e["status"], "cancelled", "{e}");
    assert!(e.get("result").is_none(), "{e}");
    let staging = egress::blob::keys::staging("acme", &id);
    assert!(host.services.blobs.list(&staging).await.unwrap().is_empty(), "working files are gone");
    for action in ["pause", "resume", "cancel", "retry"] {
        let (status, _, p) = c.call(Method::POST, &format!("/v1/exports/{id}/{action}"), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {p}");
    }
    let (status, _, p) = c.call(Method::POST, "/v1/exports/exp_0192f0c0a0b07c3d8e9f00112233aabb/pause", None).await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::NOT_FOUND, Some("EXPORT_NOT_FOUND")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_of_a_transient_failure_keeps_the_finished_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (roots, spec) = dataset(dir.path(), 100_000);
    let host = open(&dir.path().join("data"), &roots);
    let c = client(&host).await;
    let (_, _, created) = c.call(Method::POST, "/v1/exports", Some(&spec)).await;
    let id = created["id"].as_str().unwrap().to_string();
    wait_until(&c, &id, "a chunk", |e| e["progress"]["chunks_done"].as_u64().unwrap() >= 2).await;
    // A transient failure recorded mid-run (as the state machine does once retries run out).
    let failure = |error: &str| RecordFailureInput {
        tenant: "acme".into(),
        export_id: id.clone(),
        error: FailureInfo { error: error.into(), cause: "the storage went away".into() },
    };
    record_failure(&host.services.stage_context(), failure("Egress.Transient")).await.unwrap();
    host.orchestrator.idle().await;
    let failed = get(&c, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "TRANSIENT_FAILURE");
    let written = host.orchestrator.tasks().parts_written();
    let done = failed["progress"]["chunks_done"].as_u64().unwrap();
    assert_eq!(written, done, "every part written was recorded");

    let (status, _, retried) = c.call(Method::POST, &format!("/v1/exports/{id}/retry"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["status"], "pending");
    assert!(retried.get("error").is_none(), "{retried}");
    let e = wait_until(&c, &id, "completion", |e| e["status"] == "completed").await;
    let total = e["progress"]["chunks_total"].as_u64().unwrap();
    assert_eq!(host.orchestrator.tasks().parts_written(), total, "the retry extracted only the chunks not yet done");
    assert_eq!(e["result"]["rows"], 100_000);

    // A failure a retry would not fix is refused.
    let (_, _, other) =
        c.call(Method::POST, "/v1/exports", Some(&json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"}))).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    wait_until(&c, &other_id, "completion", |e| e["status"] == "completed").await;
    // The host gives its run lease back after the export shows completed: let it finish
    // before changing the record behind its back.
    host.orchestrator.idle().await;
    let mut broken = host.store.get_export("acme", &other_id).await.unwrap().unwrap();
    broken.status = ExportStatus::Failed;
    broken.error = Some(egress::model::ExportError { code: "INVALID_SOURCE_DATA".into(), message: "bad".into() });
    host.store.put_export_if_version(&broken).await.unwrap();
    let (status, _, p) = c.call(Method::POST, &format!("/v1/exports/{other_id}/retry"), None).await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::CONFLICT, Some("NOT_RETRYABLE")), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_racing_on_one_export_run_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let (roots, spec) = dataset(dir.path(), 100_000);
    let data = dir.path().join("data");
    let a = open(&data, &roots);
    let b = open(&data, &roots);
    let spec = ExportSpec::from_json(&spec).unwrap();
    let export = Export::new(egress::model::ids::export_id(), "acme".into(), "k".into(), spec, chrono::Utc::now());
    a.store.create_export(&export).await.unwrap();
    let (ra, rb) = tokio::join!(a.orchestrator.start("acme", &export.id, 1), b.orchestrator.start("acme", &export.id, 1));
    ra.unwrap();
    rb.unwrap();
    // Starting again on either host while it runs changes nothing.
    a.orchestrator.start("acme", &export.id, 1).await.unwrap();
    b.orchestrator.start("acme", &export.id, 1).await.unwrap();
    a.orchestrator.idle().await;
    b.orchestrator.idle().await;
    let e = a.store.get_export("acme", &export.id).await.unwrap().unwrap();
    assert_eq!(e.status, ExportStatus::Completed, "{e:?}");
    assert_eq!(e.attempts, 1, "one host ran it");
    assert!(e.lease.is_none(), "the lease is given back");
    let total = e.progress.chunks_total as u64;
    let (pa, pb) = (a.orchestrator.tasks().parts_written(), b.orchestrator.tasks().parts_written());
    assert_eq!(pa + pb, total, "each chunk written once (a: {pa}, b: {pb})");
    assert!(pa == 0 || pb == 0, "one runner won (a: {pa}, b: {pb})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_event_left_due_by_a_stopped_stage_is_appended_once_by_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(&dir.path().join("data"), dir.path());
    let c = client(&host).await;
    // The write that ended the run landed, and the stage stopped before the audit append.
    let spec = ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"})).unwrap();
    let mut e = Export::new(egress::model::ids::export_id(), "acme".into(), "key".into(), spec, chrono::Utc::now());
    host.store.create_export(&e).await.unwrap();
    e.status = ExportStatus::Failed;
    e.error = Some(egress::model::ExportError { code: "INVALID_SOURCE_DATA".into(), message: "bad".into() });
    e.audit_due = Some(egress::model::DueAudit { action: "export.failed".into(), outcome: "failed".into() });
    host.store.put_export_if_version(&e).await.unwrap();
    let input = || RecordFailureInput {
        tenant: "acme".into(),
        export_id: e.id.clone(),
        error: FailureInfo { error: "Egress.Invalid".into(), cause: "bad".into() },
    };
    let failed_events = || async {
        let (status, _, page) = c.call(Method::GET, &format!("/v1/audit?target={}&action=export.failed", e.id), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().len()
    };
    assert_eq!(failed_events().await, 0);
    for _ in 0..2 {
        let out = record_failure(&host.services.stage_context(), input()).await.unwrap();
        assert_eq!(out.status, "failed");
        assert_eq!(failed_events().await, 1, "appended by the retry, once");
    }
    let stored = host.store.get_export("acme", &e.id).await.unwrap().unwrap();
    assert_eq!(stored.audit_due, None);
    assert!(get(&c, &e.id).await.get("audit_due").is_none(), "internal");
}
