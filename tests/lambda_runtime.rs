//! Every Lambda binary started under the Lambda Runtime API and fed its sample event from
//! `events/`: the API routes answer their API Gateway events, the stage functions make a
//! whole export when called in the state machine's order, failing with the documented error
//! names (the runtime's `errorType`) when they should, and the schedules' fire function ticks
//! the schedule its EventBridge input names.

use crate::runtime_api;
use crate::sample_events;

use std::path::Path;

use egress::local::{LocalHost, LocalOptions};
use egress::model::{Export, ExportSpec};
use egress::store::ExportStore;
use runtime_api::Function;
use sample_events::{EXPORT_ID, KEY_ID};
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn exe(bin: &str) -> String {
    // Cargo builds every binary of this package before its integration tests.
    let dir = Path::new(env!("CARGO_BIN_EXE_egress")).parent().unwrap().to_path_buf();
    dir.join(bin).to_str().unwrap().to_string()
}

async fn host(data: &Path) -> LocalHost {
    let host =
        LocalHost::open(LocalOptions { data_dir: data.into(), public_url: "https://files.example.test".into(), dataset_roots: vec![] })
            .unwrap();
    sample_events::store_key(&host).await;
    host
}

async fn create(host: &LocalHost, id: &str) {
    let spec = ExportSpec::from_json(&json!({
        "source": {"type": "inline", "rows": [{"id": 1, "name": "Ωmega"}, {"id": 2, "name": "Жук"}, {"id": 3, "name": "plain"}]},
        "format": "csv",
        "name": "sample"
    }))
    .unwrap();
    host.store.create_export(&Export::new(id.into(), "acme".into(), KEY_ID.into(), spec, chrono::Utc::now())).await.unwrap();
}

async fn start(bin: &str, data: &Path) -> Function {
    Function::start(&exe(bin), bin, &[("EGRESS_DATA_DIR", data), ("EGRESS_BACKEND", Path::new("local"))]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_functions_make_an_export_under_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = host(&data).await;
    create(&host, EXPORT_ID).await;

    let mut plan = start("stage_plan", &data).await;
    let planned = plan.invoke(event("stage_plan")).await.expect("plan");
    assert_eq!(planned["chunks_total"], 1, "{planned}");
    assert_eq!(planned["destinations"], json!([{"index": 0, "type": "download"}]));
    assert_eq!(planned["redeliver"], false);
    // A document that is not the stage's input, and an export that does not exist.
    let err = plan.invoke(json!({"tenant": "acme"})).await.expect_err("missing export_id");
    assert_eq!(err["errorType"], "Egress.Invalid", "{err}");
    assert!(err["errorMessage"].as_str().unwrap().contains("export_id"), "{err}");
    let err = plan.invoke(json!({"tenant": "acme", "export_id": "exp_0192f0c0a0b07c3d8e9f0011223300ff"})).await.expect_err("no export");
    assert_eq!(err["errorType"], "Egress.NotFound", "{err}");
    let logs = plan.stop();
    let line = logs.lines().find(|l| l.contains("stage failed")).unwrap_or_else(|| panic!("no JSON log of the failure in:\n{logs}"));
    let log: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    assert_eq!(log["fields"]["error"], "Egress.Invalid", "{log}");
    assert!(line.contains("\"stage\":\"plan\""), "the span names the stage: {line}");

    // The Map's item, as the Distributed Map reads it from the chunk list.
    let items: Value =
        serde_json::from_slice(&host.services.blobs.get_bytes(planned["items_key"].as_str().unwrap()).await.unwrap()).unwrap();
    assert_eq!(items, json!([event("stage_extract_chunk")]));
    let mut extract = start("stage_extract_chunk", &data).await;
    let chunk = extract.invoke(items[0].clone()).await.expect("extract");
    assert_eq!((chunk["rows"].as_u64(), chunk["already_done"].as_bool()), (Some(3), Some(false)), "{chunk}");
    let again = extract.invoke(items[0].clone()).await.expect("extract again");
    assert_eq!(again["already_done"], true, "a repeated chunk is not written again: {again}");
    extract.stop();

    let mut encode = start("stage_encode", &data).await;
    let encoded = encode.invoke(event("stage_encode")).await.expect("encode");
    encode.stop();
    let files = encoded["files"].clone();
    assert_eq!(files[0]["rows"], 3, "{encoded}");

    let mut encrypt = start("stage_encrypt", &data).await;
    let mut input = event("stage_encrypt");
    input["files"] = files.clone();
    let encrypted = encrypt.invoke(input).await.expect("encrypt");
    encrypt.stop();
    assert_eq!(encrypted["files"], files);

    let mut deliver = start("stage_deliver", &data).await;
    let mut input = event("stage_deliver");
    input["files"] = files.clone();
    let receipt = deliver.invoke(input).await.expect("deliver");
    let mut bad = event("stage_deliver");
    // The destination is read from the export's spec by its index: one it does not have is invalid.
    bad["index"] = json!(7);
    let err = deliver.invoke(bad).await.expect_err("no such destination");
    assert_eq!(err["errorType"], "Egress.Invalid", "{err}");
    deliver.stop();
    assert_eq!(receipt["status"], "delivered", "{receipt}");
    assert_eq!(receipt["files"][0]["sha256"], files[0]["sha256"]);

    let mut record = start("stage_record_receipt", &data).await;
    let mut input = event("stage_record_receipt");
    input["files"] = files.clone();
    input["deliveries"] = json!([receipt]);
    record.invoke(input).await.expect("record_receipt");
    record.stop();
    let done = host.store.get_export("acme", EXPORT_ID).await.unwrap().unwrap();
    assert_eq!(done.status, egress::model::ExportStatus::Completed);
    let result = done.result.unwrap();
    assert_eq!((result.rows, result.deliveries.len()), (3, 1));
    let bytes = host.services.blobs.get_bytes(&result.files[0].key).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&bytes), "id,name\n1,Ωmega\n2,Жук\n3,plain\n");

    // RecordFailure on another export, with the sample's Catch output.
    let other = "exp_0192f0c0a0b07c3d8e9f0011223344cc";
    create(&host, other).await;
    let mut fail = start("stage_record_failure", &data).await;
    let mut input = event("stage_record_failure");
    input["export_id"] = json!(other);
    let out = fail.invoke(input.clone()).await.expect("record_failure");
    assert_eq!(out["status"], "failed", "{out}");
    let out = fail.invoke(input).await.expect("record_failure again");
    assert_eq!(out["status"], "failed", "idempotent: {out}");
    fail.stop();
    let failed = host.store.get_export("acme", other).await.unwrap().unwrap();
    assert_eq!(failed.error.unwrap().code, "INVALID_SOURCE_DATA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_functions_answer_their_sample_events_under_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = host(&data).await;
    create(&host, EXPORT_ID).await;
    let mut expected = vec![
        ("api_health", 200),
        ("api_list_exports", 200),
        ("api_get_export", 200),
        ("api_pause_export", 202),
        ("api_resume_export", 202),
        ("api_cancel_export", 202),
        ("api_retry_export", 409),
        ("api_download_export", 409),
        ("api_delete_export", 204),
    ];
    expected.push(("api_create_export", 202));
    for (bin, status) in expected {
        let mut f = start(bin, &data).await;
        let resp = f.invoke(event(bin)).await.unwrap_or_else(|e| panic!("{bin}: {e}"));
        f.stop();
        assert_eq!(resp["statusCode"], status, "{bin}: {resp}");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        let ct = resp["multiValueHeaders"]["content-type"][0].as_str().unwrap_or("").to_string();
        if status >= 400 {
            assert_eq!(ct, "application/problem+json", "{bin}: {resp}");
            assert!(body["code"].is_string(), "{bin}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fire_function_ticks_the_schedule_its_event_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = host(&data).await;
    let client = egress::local::client::Client { services: &host.services, token: format!("egk_{KEY_ID}_{}", sample_events::SECRET) };
    let body = json!({
        "name": "every minute", "cron": "* * * * *", "timezone": "Europe/Vienna",
        "export": {"source": {"type": "inline", "rows": [{"id": 1}]}, "format": "csv"},
    });
    let (status, _, created) = client.call(http::Method::POST, "/v1/schedules", Some(&body)).await;
    assert_eq!(status, 201, "{created}");

    let mut fire = start("schedule_fire", &data).await;
    let mut input = event("schedule_fire");
    input["schedule_id"] = created["id"].clone();
    let report = fire.invoke(input).await.expect("fire");
    assert_eq!(report["schedules"], 1, "the schedule was found and ticked: {report}");
    let swept = fire.invoke(json!({"sweep": true})).await.expect("sweep");
    assert_eq!(swept["schedules"], 1, "{swept}");
    // A schedule that is gone: nothing to do, and not an error.
    let mut gone = event("schedule_fire");
    gone["schedule_id"] = json!("sch_0192f0c0a0b07c3d8e9f0011223300ff");
    assert_eq!(fire.invoke(gone).await.expect("gone")["schedules"], 0);
    let err = fire.invoke(json!({"tenant": "acme", "schedule_id": "sch_x", "scheduled_time": "yesterday"})).await.expect_err("bad event");
    assert!(err["errorMessage"].as_str().unwrap().contains("scheduled_time"), "{err}");
    let logs = fire.stop();
    assert!(logs.contains("schedule fire handled"), "JSON logs of each fire:\n{logs}");
}
