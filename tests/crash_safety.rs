//! Crash safety: a host killed in the middle of the chunk Map resumes the export on restart
//! (chunks already done are kept; the file is byte-identical to an uninterrupted run), and an export interrupted too often is failed with a reason; none is left
//! running forever.

use crate::support;

use std::time::{Duration, Instant};

use egress::local::{LocalHost, LocalOptions};
use egress::model::{Export, ExportSpec, ExportStatus};
use egress::store::ExportStore;
use serde_json::json;
use support::{Server, check_export};

#[test]
fn a_killed_host_finishes_the_export_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("datasets/tx");
    support::write_dataset(&dataset, 200_000);
    let data = dir.path().join("data");
    let roots = dir.path().join("datasets");
    let mut server = Server::start(&data, &roots, &["--chunk-rows", "2500"]);
    let token = server.key("acme", "exports:admin");
    let spec = json!({"source": {"type": "dataset", "local_path": dataset.to_str().unwrap()}, "format": "jsonl"});
    let r = server.req("POST", "/v1/exports", Some(&token), Some(&spec));
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("location").unwrap().to_string();
    // Kill it (SIGKILL: no clean shutdown) once some chunks are done and some are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done_before = loop {
        let e = server.req("GET", &location, Some(&token), None).json();
        let (done, total) = (e["progress"]["chunks_done"].as_u64().unwrap(), e["progress"]["chunks_total"].as_u64().unwrap());
        assert_ne!(e["status"], "completed", "the export finished before the host could be killed; make it bigger");
        if done >= 2 && done < total {
            server.kill();
            break done;
        }
        assert!(Instant::now() < deadline, "no progress: {e}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let server = Server::start(&data, &roots, &["--chunk-rows", "2500"]);
    let e = server.wait(&token, &location);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["attempts"], 2, "one run, then one resumed run");
    assert_eq!(e["result"]["rows"], 200_000);
    assert!(e["progress"]["chunks_done"].as_u64().unwrap() >= done_before);
    let bytes = server.download(&token, e["id"].as_str().unwrap());
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let source = format!("{}/*.parquet", dataset.display());
    check_export(&["--source", &source, "--export", path.to_str().unwrap(), "--format", "jsonl"]);
    // Byte for byte the file an uninterrupted run makes.
    let again = server.export(&token, &spec);
    assert_eq!(again["status"], "completed", "{again}");
    let uninterrupted = server.download(&token, again["id"].as_str().unwrap());
    assert!(bytes == uninterrupted, "the resumed export differs from an uninterrupted one");
    assert_eq!(e["result"]["files"][0]["sha256"], again["result"]["files"][0]["sha256"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_interrupted_too_often_is_failed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let host =
        LocalHost::open(LocalOptions { data_dir: dir.path().into(), public_url: "http://127.0.0.1:1".into(), dataset_roots: vec![] })
            .unwrap();
    let spec = ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"})).unwrap();
    let mut e = Export::new(egress::model::ids::export_id(), "acme".into(), "k".into(), spec.clone(), chrono::Utc::now());
    e.status = ExportStatus::Running;
    e.attempts = host.services.settings.max_attempts;
    host.store.create_export(&e).await.unwrap();
    // And one that was interrupted once: it is resumed and completes.
    let mut once = Export::new(egress::model::ids::export_id(), "acme".into(), "k".into(), spec, chrono::Utc::now());
    once.status = ExportStatus::Running;
    once.attempts = 1;
    host.store.create_export(&once).await.unwrap();

    assert_eq!(host.orchestrator.recover().await.unwrap(), 1);
    host.orchestrator.idle().await;
    let failed = host.store.get_export("acme", &e.id).await.unwrap().unwrap();
    assert_eq!(failed.status, ExportStatus::Failed);
    let err = failed.error.unwrap();
    assert_eq!(err.code, "INTERRUPTED");
    assert!(err.message.contains("3 times"), "{}", err.message);
    let resumed = host.store.get_export("acme", &once.id).await.unwrap().unwrap();
    assert_eq!(resumed.status, ExportStatus::Completed);
    assert!(host.store.list_active_exports().await.unwrap().is_empty());
}
