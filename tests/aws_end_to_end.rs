//! An export end to end through the export state machine in the local runner, with the AWS
//! adapters on moto server: the job store is really DynamoDB, the dataset, parts and file are
//! really in S3 (SSE-KMS), and the download link is a presigned S3 URL that a plain HTTP GET
//! follows. The file is checked by an independent reader against the source.

use crate::moto;
use crate::support;

use egress::aws::AwsSettings;
use egress::config::Settings;
use egress::local::client::Client;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_runs_through_the_state_machine_on_dynamodb_and_s3() {
    let moto = tokio::task::spawn_blocking(moto::Moto::start).await.unwrap();
    let cfg = moto.config();
    egress::aws::dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&cfg), "egress").await.unwrap();
    let s3 = egress::aws::s3_client(&cfg, true);
    s3.create_bucket().bucket("egress-data").send().await.unwrap();
    let key = aws_sdk_kms::Client::new(&cfg).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let aws = AwsSettings {
        table: "egress".into(),
        bucket: "egress-data".into(),
        kms_key_id: Some(key.clone()),
        hash_key_id: None,
        state_machine_arn: None,
        s3_force_path_style: true,
        endpoint_url: None,
        schedules: None,
    };
    let adapters = egress::aws::services(&aws, &cfg).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(work.path().into());
    settings.chunk_rows = 2_500;
    settings.rate_limit = None;
    let (services, orchestrator) = moto::with_local_runs(&adapters, settings);

    // The tenant's dataset, uploaded to its blob area in S3.
    let local = work.path().join("tx");
    let files = support::write_dataset(&local, 30_000);
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let copy = work.path().join(format!("upload-{name}"));
        std::fs::copy(f, &copy).unwrap();
        services.blobs.put_file(&egress::blob::keys::dataset("acme", &format!("tx/{name}")), &copy).await.unwrap();
    }
    let token = {
        let k = egress::auth::generate("acme", [egress::model::Permission::Admin].into(), "end to end");
        services.store.put_api_key(&k.record).await.unwrap();
        k.token
    };
    let client = Client { services: &services, token };
    let spec = json!({"name": "moto", "source": {"type": "dataset", "path": "tx"}, "format": "csv"});
    let (status, location, created) = client.call(Method::POST, "/v1/exports", Some(&spec)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    orchestrator.idle().await;
    let (_, _, export) = client.call(Method::GET, &location.unwrap(), None).await;
    assert_eq!(export["status"], "completed", "{export}");
    assert_eq!(export["result"]["rows"], 30_000);
    assert_eq!(export["progress"]["chunks_total"], 12, "{export}");
    let id = export["id"].as_str().unwrap();

    // Really in DynamoDB: the export item under the tenant's partition.
    let item = aws_sdk_dynamodb::Client::new(&cfg)
        .query()
        .table_name("egress")
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("T#acme".into()))
        .send()
        .await
        .unwrap();
    assert!(item.items().iter().any(|i| format!("{i:?}").contains(id)), "the export is an item of the table");
    // Really in S3, encrypted with the key; the staging area is gone.
    let listed = s3.list_objects_v2().bucket("egress-data").prefix(format!("tenants/acme/exports/{id}/")).send().await.unwrap();
    let object = listed.contents()[0].key().unwrap().to_string();
    let head = s3.head_object().bucket("egress-data").key(&object).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    assert!(head.ssekms_key_id().unwrap_or_default().contains(&key), "{head:?}");
    let staging = s3.list_objects_v2().bucket("egress-data").prefix(format!("tenants/acme/staging/{id}/")).send().await.unwrap();
    assert!(staging.contents().is_empty(), "staging removed: {:?}", staging.contents());

    // The download link is a presigned S3 URL; a plain GET of it returns the file.
    let (status, location, body) = client.call(Method::GET, &format!("/v1/exports/{id}/download"), None).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let url = location.unwrap();
    assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires="), "{url}");
    let rest = url.strip_prefix(&moto.endpoint).unwrap_or_else(|| panic!("presigned on the endpoint: {url}"));
    let resp = moto.get(rest).unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.header("content-disposition").unwrap_or_default().contains("moto.csv"), "{:?}", resp.headers);
    let path = work.path().join("out.csv");
    std::fs::write(&path, &resp.body).unwrap();
    let source = format!("{}/*.parquet", local.display());
    tokio::task::spawn_blocking(move || {
        support::check_export(&["--source", &source, "--export", path.to_str().unwrap(), "--format", "csv"])
    })
    .await
    .unwrap();
}
