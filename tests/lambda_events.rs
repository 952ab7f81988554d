//! Every API route function fed its sample API Gateway event from `events/` through the real
//! lambda_http path (event JSON -> LambdaRequest -> Adapter -> LambdaResponse JSON), as the
//! Lambda runtime would.

use crate::sample_events;

use std::convert::Infallible;

use egress::api::Route;
use egress::local::{LocalHost, LocalOptions};
use egress::model::{Export, ExportSpec};
use egress::store::ExportStore;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service;
use lambda_http::{Adapter, Context, LambdaEvent, Request, service_fn};
use sample_events::{EXPORT_ID, KEY_ID};
use serde_json::{Value, json};

async fn call(host: &LocalHost, route: Route) -> Value {
    let path = format!("{}/../events/api_{}.json", env!("CARGO_MANIFEST_DIR"), route.name());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: LambdaRequest = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not an API Gateway event: {e}"));
    let services = host.services.clone();
    let handler = service_fn(move |req: Request| {
        let services = services.clone();
        async move { Ok::<_, Infallible>(route.call(&services, req).await) }
    });
    let mut adapter = Adapter::from(handler);
    let resp = adapter.call(LambdaEvent::new(event, Context::default())).await.unwrap();
    serde_json::to_value(&resp).unwrap()
}

/// A response header (API Gateway REST responses carry them as `multiValueHeaders`).
fn header(resp: &Value, name: &str) -> Value {
    resp["multiValueHeaders"][name][0].clone()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_its_sample_event() {
    let dir = tempfile::tempdir().unwrap();
    let host = LocalHost::open(LocalOptions {
        data_dir: dir.path().into(),
        public_url: "https://files.example.test".into(),
        dataset_roots: vec![],
    })
    .unwrap();
    sample_events::store_key(&host).await;
    // The export the get, download and delete events name.
    let spec = ExportSpec::from_json(&json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"})).unwrap();
    host.store.create_export(&Export::new(EXPORT_ID.into(), "acme".into(), KEY_ID.into(), spec, chrono::Utc::now())).await.unwrap();
    host.services.orchestrator.start("acme", EXPORT_ID, 1).await.unwrap();
    host.orchestrator.idle().await;

    let r = call(&host, Route::Health).await;
    assert_eq!(r["statusCode"], 200, "{r}");

    let r = call(&host, Route::CreateExport).await;
    assert_eq!(r["statusCode"], 202, "{r}");
    let created = body(&r);
    assert_eq!(header(&r, "location"), format!("/v1/exports/{}", created["id"].as_str().unwrap()));
    assert_eq!(header(&r, "x-request-id"), "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "API Gateway's request id is ours");
    host.orchestrator.idle().await;

    let r = call(&host, Route::ListExports).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(body(&r)["items"].as_array().unwrap().len(), 2);

    let r = call(&host, Route::GetExport).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(body(&r)["status"], "completed");

    let r = call(&host, Route::DownloadExport).await;
    assert_eq!(r["statusCode"], 302, "{r}");
    assert!(header(&r, "location").as_str().unwrap().starts_with("https://files.example.test/v1/files/tenants/acme/exports/"));

    let r = call(&host, Route::DeleteExport).await;
    assert_eq!(r["statusCode"], 204, "{r}");
    let r = call(&host, Route::GetExport).await;
    assert_eq!(r["statusCode"], 404, "{r}");
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    assert_eq!(body(&r)["code"], "EXPORT_NOT_FOUND");
}
