//! The AWS adapters against moto (the AWS emulator, started per test on a loopback port): the
//! JobStore and BlobStore conformance suites, KMS data keys, and Step Functions runs.

use crate::moto;

use std::future::Future;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use egress::aws::dynamodb::{DynamoStore, create_table};
use egress::aws::kms::KmsKeyService;
use egress::aws::s3::{MULTIPART_THRESHOLD, PART_SIZE, S3BlobStore};
use egress::aws::sfn::StepFunctionsOrchestrator;
use egress::blob::BlobStore;
use egress::kms::{EncryptionContext, KeyError, KeyService};
use egress::model::{ChunkRecord, Export, ExportSpec, ExportStatus};
use egress::orchestrate::Orchestrator;
use egress::store::{ExportQuery, ExportStore, StoreError, update_export};
use sha2::{Digest, Sha256};

/// Run a test body with a deadline, so a hung emulator fails the test instead of the run.
async fn bounded<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("the test took more than {secs} s"));
}

async fn kms_key(cfg: &aws_config::SdkConfig) -> String {
    let kms = aws_sdk_kms::Client::new(cfg);
    let out = kms.create_key().description("egress test").send().await.expect("create KMS key");
    out.key_metadata.expect("key metadata").key_id
}

fn export(tenant: &str, format: &str, minutes_ago: i64) -> Export {
    let spec = ExportSpec::from_json(&serde_json::json!({"source": {"type": "inline", "rows": []}, "format": format})).expect("valid spec");
    Export::new(egress::model::ids::export_id(), tenant.into(), "key".into(), spec, Utc::now() - chrono::Duration::minutes(minutes_ago))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_conforms() {
    let moto = moto::Moto::start();
    bounded(180, async {
        let client = aws_sdk_dynamodb::Client::new(&moto.config());
        create_table(&client, "egress").await.unwrap();
        let ttl = client.describe_time_to_live().table_name("egress").send().await.unwrap();
        assert_eq!(ttl.time_to_live_description.and_then(|d| d.attribute_name).as_deref(), Some("ttl"));
        let store = DynamoStore::new(client, "egress");
        egress::store::conformance::run_all(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_listing_fills_filtered_pages_and_keeps_cursors_to_their_tenant() {
    let moto = moto::Moto::start();
    bounded(180, async {
        let client = aws_sdk_dynamodb::Client::new(&moto.config());
        create_table(&client, "egress").await.unwrap();
        let store = DynamoStore::new(client, "egress");
        // 12 exports, every third one JSON, some running, one failed; newest first is the order.
        let mut all = Vec::new();
        for i in 0..12 {
            let mut e = export("t-pages", if i % 3 == 0 { "json" } else { "csv" }, 100 - i);
            store.create_export(&e).await.unwrap();
            if i % 4 == 1 {
                e = update_export(&store, "t-pages", &e.id, |x| {
                    x.status = if i == 5 { ExportStatus::Failed } else { ExportStatus::Running };
                    Ok::<(), ()>(())
                })
                .await
                .unwrap();
            }
            all.push(e);
        }
        all.reverse();
        let pages = |q: ExportQuery| {
            let store = &store;
            async move {
                let mut q = q;
                let mut seen = Vec::new();
                for _ in 0..50 {
                    let page = store.list_exports("t-pages", &q).await.unwrap();
                    assert!(page.items.len() <= q.limit);
                    if page.next_cursor.is_some() {
                        assert_eq!(page.items.len(), q.limit, "a page before the last one is full");
                    }
                    seen.extend(page.items.into_iter().map(|e| e.id));
                    match page.next_cursor {
                        Some(c) => q.cursor = Some(c),
                        None => return seen,
                    }
                }
                panic!("listing did not end");
            }
        };
        let want = |f: &dyn Fn(&Export) -> bool| all.iter().filter(|e| f(e)).map(|e| e.id.clone()).collect::<Vec<_>>();
        let json = Some(egress::model::FormatKind::Json);
        assert_eq!(
            pages(ExportQuery { limit: 1, format: json, ..Default::default() }).await,
            want(&|e| e.spec.format.kind().as_str() == "json")
        );
        let running = Some(ExportStatus::Running);
        assert_eq!(
            pages(ExportQuery { limit: 1, status: running, ..Default::default() }).await,
            want(&|e| e.status == ExportStatus::Running)
        );
        let failed = Some(ExportStatus::Failed);
        assert_eq!(
            pages(ExportQuery { limit: 2, status: failed, ..Default::default() }).await,
            want(&|e| e.status == ExportStatus::Failed)
        );
        let after = Utc::now() - chrono::Duration::minutes(95);
        let before = Utc::now() - chrono::Duration::minutes(91);
        let q = ExportQuery { limit: 2, created_after: Some(after), created_before: Some(before), ..Default::default() };
        assert_eq!(pages(q).await, want(&|e| e.created_at > after && e.created_at < before));
        let q = ExportQuery {
            limit: 1,
            status: running,
            format: Some(egress::model::FormatKind::Csv),
            created_after: Some(after),
            ..Default::default()
        };
        assert_eq!(
            pages(q).await,
            want(&|e| e.status == ExportStatus::Running && e.spec.format.kind().as_str() == "csv" && e.created_at > after)
        );

        // A cursor is this tenant's and this index's only.
        let other = export("t-other", "csv", 0);
        store.create_export(&other).await.unwrap();
        let page = store.list_exports("t-pages", &ExportQuery { limit: 1, ..Default::default() }).await.unwrap();
        let cursor = page.next_cursor.expect("more pages");
        let r = store.list_exports("t-other", &ExportQuery { limit: 1, cursor: Some(cursor.clone()), ..Default::default() }).await;
        assert!(matches!(r, Err(StoreError::InvalidCursor)), "another tenant's cursor: {r:?}");
        let r = store.list_exports("t-pages", &ExportQuery { limit: 1, status: running, cursor: Some(cursor), ..Default::default() }).await;
        assert!(matches!(r, Err(StoreError::InvalidCursor)), "another index's cursor: {r:?}");

        // Only pending and running exports are active; a finished one leaves the index.
        let active = store.list_active_exports().await.unwrap();
        assert_eq!(active.len(), all.iter().filter(|e| ExportStatus::ACTIVE.contains(&e.status)).count() + 1);
        assert!(!active.iter().any(|(_, id)| id == &all.iter().find(|e| e.status == ExportStatus::Failed).unwrap().id));
        update_export(&store, "t-other", &other.id, |x| {
            x.status = ExportStatus::Completed;
            Ok::<(), ()>(())
        })
        .await
        .unwrap();
        assert!(!store.list_active_exports().await.unwrap().iter().any(|(_, id)| id == &other.id));

        // The largest inline source fits in an item (compressed), and round trips.
        let rows: Vec<serde_json::Value> = (0..egress::model::spec::MAX_INLINE_ROWS)
            .map(|i| serde_json::json!({"id": i, "name": format!("customer {i}"), "amount": i as f64 * 1.25, "country": "DE"}))
            .collect();
        let spec = ExportSpec::from_json(&serde_json::json!({"source": {"type": "inline", "rows": rows}, "format": "csv"})).unwrap();
        let big = Export::new(egress::model::ids::export_id(), "t-pages".into(), "key".into(), spec, Utc::now());
        assert!(serde_json::to_string(&big).unwrap().len() > 400_000, "more than an item holds uncompressed");
        store.create_export(&big).await.unwrap();
        let mut read = store.get_export("t-pages", &big.id).await.unwrap().unwrap();
        assert_eq!(read, big);
        read.status = ExportStatus::Running;
        let saved = store.put_export_if_version(&read).await.unwrap();
        assert_eq!(store.get_export("t-pages", &big.id).await.unwrap().unwrap(), saved);
        assert!(store.delete_export("t-pages", &big.id).await.unwrap());

        // Deleting an export deletes its chunk records.
        let c = ChunkRecord { index: 0, rows: 1, bytes: 1, part_key: "p".into() };
        store.record_chunk("t-other", &other.id, &c).await.unwrap();
        assert!(matches!(store.record_chunk("t-other", "exp_missing", &c).await, Err(StoreError::NotFound)));
        assert!(store.delete_export("t-other", &other.id).await.unwrap());
        assert!(store.list_chunks("t-other", &other.id).await.unwrap().is_empty());
        assert!(!store.delete_export("t-other", &other.id).await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_record_chunk_counts_each_chunk_once_under_concurrency() {
    let moto = moto::Moto::start();
    bounded(180, async {
        let client = aws_sdk_dynamodb::Client::new(&moto.config());
        create_table(&client, "egress").await.unwrap();
        let store = std::sync::Arc::new(DynamoStore::new(client, "egress"));
        let mut e = export("t-race", "csv", 0);
        e.progress.chunks_total = 4;
        store.create_export(&e).await.unwrap();
        // Every chunk recorded by two writers at once: each counts once.
        let mut tasks = Vec::new();
        for index in 0..4u32 {
            for _ in 0..2 {
                let (store, id) = (store.clone(), e.id.clone());
                tasks.push(tokio::spawn(async move {
                    let c = ChunkRecord { index, rows: 10, bytes: 1, part_key: format!("p{index}") };
                    store.record_chunk("t-race", &id, &c).await.unwrap().1
                }));
            }
        }
        let mut firsts = 0;
        for t in tasks {
            firsts += t.await.unwrap() as u32;
        }
        assert_eq!(firsts, 4);
        let saved = store.get_export("t-race", &e.id).await.unwrap().unwrap();
        assert_eq!((saved.progress.chunks_done, saved.progress.rows), (4, 40));
        assert_eq!(saved.progress.step_description, "read 4 of 4 chunks");
        assert_eq!(saved.version, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blob_store_conforms_with_sse_kms_multipart_and_presigned_urls() {
    let moto = moto::Moto::start();
    bounded(300, async {
        let cfg = moto.config();
        let key_id = kms_key(&cfg).await;
        let s3 = egress::aws::s3_client(&cfg, true);
        s3.create_bucket().bucket("egress-data").send().await.unwrap();
        let store = S3BlobStore::new(s3.clone(), "egress-data", Some(key_id.clone()));
        egress::blob::conformance::run_all(&store).await;

        // Written under the KMS key.
        store.put_bytes("t/sse/one", Bytes::from_static(b"secret")).await.unwrap();
        let head = s3.head_object().bucket("egress-data").key("t/sse/one").send().await.unwrap();
        assert_eq!(head.server_side_encryption, Some(aws_sdk_s3::types::ServerSideEncryption::AwsKms));
        assert!(head.ssekms_key_id.unwrap_or_default().contains(&key_id), "the configured key");

        // A file above the threshold goes up in parts (a sparse file with marks at the edges).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let size = MULTIPART_THRESHOLD + PART_SIZE / 2 + 7;
        {
            let mut f = std::fs::File::create(&path).unwrap();
            f.set_len(size).unwrap();
            for at in [0, PART_SIZE - 3, PART_SIZE * 2, MULTIPART_THRESHOLD, size - 5] {
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(&at.to_be_bytes()[3..]).unwrap();
            }
        }
        let want = Sha256::digest(std::fs::read(&path).unwrap());
        assert_eq!(store.put_file("t/big/file", &path).await.unwrap(), size);
        assert!(!path.exists(), "put_file consumes the local file");
        assert_eq!(store.head("t/big/file").await.unwrap(), Some(size));
        let head = s3.head_object().bucket("egress-data").key("t/big/file").send().await.unwrap();
        let parts = size.div_ceil(PART_SIZE);
        assert!(head.e_tag.unwrap_or_default().ends_with(&format!("-{parts}\"")), "a multipart ETag");
        assert_eq!(head.server_side_encryption, Some(aws_sdk_s3::types::ServerSideEncryption::AwsKms));
        let local = store.local_file("t/big/file").await.unwrap();
        assert_eq!(Sha256::digest(std::fs::read(&local.path).unwrap()), want);
        let temp = local.path.clone();
        drop(local);
        assert!(!temp.exists(), "the downloaded copy is temporary");
        assert!(matches!(store.local_file("t/big/missing").await, Err(egress::blob::BlobError::NotFound(_))));

        // A presigned URL works for a plain HTTP GET, names the file and its type.
        store.put_bytes("t/dl/report.csv", Bytes::from_static(b"id,name\n1,a\n")).await.unwrap();
        let url = store.presign_get("t/dl/report.csv", "report 2026.csv", "text/csv", Duration::from_secs(300)).await.unwrap();
        let rest = url.strip_prefix(&moto.endpoint).unwrap_or_else(|| panic!("presigned on the endpoint: {url}"));
        assert!(rest.contains("X-Amz-Expires=300"), "{url}");
        let r = moto.get(rest).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, b"id,name\n1,a\n");
        assert_eq!(r.header("content-type"), Some("text/csv"));
        let cd = r.header("content-disposition").unwrap_or_default();
        assert!(cd.starts_with("attachment;") && cd.contains("report%202026.csv"), "{cd}");
    })
    .await;
}

/// Fails every UploadPart of part 2, as a network or service failure would.
#[derive(Debug)]
struct FailPartTwo;

impl aws_sdk_s3::config::Intercept for FailPartTwo {
    fn name(&self) -> &'static str {
        "FailPartTwo"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if context.request().uri().contains("partNumber=2&") || context.request().uri().ends_with("partNumber=2") {
            return Err("part 2 refused by the test".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failed_multipart_upload_is_aborted_and_keeps_the_file() {
    let moto = moto::Moto::start();
    bounded(120, async {
        let cfg = moto.config();
        let s3 = egress::aws::s3_client(&cfg, true);
        s3.create_bucket().bucket("egress-data").send().await.unwrap();
        let failing = aws_sdk_s3::Client::from_conf(s3.config().to_builder().interceptor(FailPartTwo).build());
        let store = S3BlobStore::new(failing, "egress-data", None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::File::create(&path).unwrap().set_len(MULTIPART_THRESHOLD + 1).unwrap();
        let r = store.put_file("t/big/failed", &path).await;
        let err = r.expect_err("part 2 fails");
        assert!(err.to_string().contains("part 2 refused"), "{err}");
        assert!(path.exists(), "a file that was not stored is not consumed");
        let uploads = s3.list_multipart_uploads().bucket("egress-data").send().await.unwrap();
        assert!(uploads.uploads.unwrap_or_default().is_empty(), "the upload was aborted");
        assert_eq!(store.head("t/big/failed").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_data_keys_round_trip_only_under_their_context() {
    let moto = moto::Moto::start();
    bounded(60, async {
        let cfg = moto.config();
        let ks = KmsKeyService::new(aws_sdk_kms::Client::new(&cfg), kms_key(&cfg).await);
        let ctx: EncryptionContext = [("tenant".to_string(), "a".to_string()), ("export".to_string(), "exp_1".to_string())].into();
        let dk = ks.generate_data_key(&ctx).await.unwrap();
        assert_ne!(dk.plaintext, [0u8; 32]);
        assert_eq!(ks.decrypt_data_key(&dk.ciphertext, &ctx).await.unwrap(), dk.plaintext);
        let other: EncryptionContext = [("tenant".to_string(), "b".to_string()), ("export".to_string(), "exp_1".to_string())].into();
        let r = ks.decrypt_data_key(&dk.ciphertext, &other).await;
        assert!(matches!(r, Err(KeyError::Decrypt)), "{r:?}");
        let r = ks.decrypt_data_key(&dk.ciphertext, &EncryptionContext::new()).await;
        assert!(matches!(r, Err(KeyError::Decrypt)), "{r:?}");
        let second = ks.generate_data_key(&ctx).await.unwrap();
        assert_ne!(second.plaintext, dk.plaintext, "a fresh key each time");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_tenant_secrets_come_from_generate_mac_and_differ_by_tenant() {
    let moto = moto::Moto::start();
    bounded(60, async {
        let cfg = moto.config();
        let kms = aws_sdk_kms::Client::new(&cfg);
        let mac_key = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
            .send()
            .await
            .expect("create HMAC key")
            .key_metadata
            .expect("key metadata")
            .key_id;
        let ks = KmsKeyService::new(kms.clone(), kms_key(&cfg).await).with_mac_key(Some(mac_key.clone()));
        let a = ks.tenant_secret("acme", "field-hash-salt").await.unwrap();
        assert_eq!(a, ks.tenant_secret("acme", "field-hash-salt").await.unwrap(), "stable");
        assert_ne!(a, ks.tenant_secret("globex", "field-hash-salt").await.unwrap());
        assert_ne!(a, ks.tenant_secret("acme", "other").await.unwrap());
        // The secret is the MAC of the documented message: VerifyMac under the key accepts it.
        let ok = kms
            .verify_mac()
            .key_id(&mac_key)
            .mac_algorithm(aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
            .message(aws_sdk_kms::primitives::Blob::new(egress::kms::secret_message("acme", "field-hash-salt")))
            .mac(aws_sdk_kms::primitives::Blob::new(a.to_vec()))
            .send()
            .await
            .unwrap();
        assert!(ok.mac_valid);
        // Without an HMAC key, the error says which setting is missing.
        let none = KmsKeyService::new(kms, "unused");
        let r = none.tenant_secret("acme", "field-hash-salt").await;
        assert!(matches!(&r, Err(KeyError::NotConfigured(m)) if m.contains("EGRESS_HASH_KEY_ID")), "{r:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_functions_start_once_per_run_and_stop() {
    let moto = moto::Moto::start();
    bounded(60, async {
        let client = aws_sdk_sfn::Client::new(&moto.config());
        let definition = r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#;
        let sm = client
            .create_state_machine()
            .name("egress-export")
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/egress-export")
            .send()
            .await
            .unwrap();
        let orch = StepFunctionsOrchestrator::new(client.clone(), sm.state_machine_arn.clone()).unwrap();
        let id = egress::model::ids::export_id();
        orch.start("t-sfn", &id, 1).await.unwrap();
        orch.start("t-sfn", &id, 1).await.unwrap();
        let list = |c: aws_sdk_sfn::Client, arn: String| async move {
            let out = c.list_executions().state_machine_arn(arn).send().await.unwrap();
            out.executions.into_iter().map(|e| (e.name, e.status)).collect::<Vec<_>>()
        };
        let runs = list(client.clone(), sm.state_machine_arn.clone()).await;
        assert_eq!(runs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), [id.as_str()], "one execution for one run");
        let arn = orch.execution_arn(&id, 1);
        let d = client.describe_execution().execution_arn(&arn).send().await.unwrap();
        let input: serde_json::Value = serde_json::from_str(d.input.as_deref().unwrap_or("null")).unwrap();
        assert_eq!(input, serde_json::json!({"tenant": "t-sfn", "export_id": id}));

        // Stop ends it; stopping it again, or a run that never started, is no error.
        orch.stop("t-sfn", &id, 1).await.unwrap();
        let d = client.describe_execution().execution_arn(&arn).send().await.unwrap();
        assert_ne!(d.status, aws_sdk_sfn::types::ExecutionStatus::Running);
        orch.stop("t-sfn", &id, 1).await.unwrap();
        orch.stop("t-sfn", &id, 3).await.unwrap();

        // The next run is another execution.
        orch.start("t-sfn", &id, 2).await.unwrap();
        let mut names: Vec<String> = list(client.clone(), sm.state_machine_arn.clone()).await.into_iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(names, [id.clone(), format!("{id}-run2")]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_wire_the_adapters_together() {
    let moto = moto::Moto::start();
    bounded(60, async {
        let cfg = moto.config();
        create_table(&aws_sdk_dynamodb::Client::new(&cfg), "egress").await.unwrap();
        egress::aws::s3_client(&cfg, true).create_bucket().bucket("egress-data").send().await.unwrap();
        let sfn = aws_sdk_sfn::Client::new(&cfg);
        let sm = sfn
            .create_state_machine()
            .name("egress-export")
            .definition(r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/egress-export")
            .send()
            .await
            .unwrap();
        let vars = [
            ("EGRESS_TABLE", "egress".to_string()),
            ("EGRESS_BUCKET", "egress-data".to_string()),
            ("EGRESS_STATE_MACHINE_ARN", sm.state_machine_arn.clone()),
            ("EGRESS_S3_FORCE_PATH_STYLE", "1".to_string()),
        ];
        let aws = egress::aws::AwsSettings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
        let services = egress::aws::services(&aws, &cfg).unwrap();
        let e = export("t-wired", "csv", 0);
        services.store.create_export(&e).await.unwrap();
        assert_eq!(services.store.get_export("t-wired", &e.id).await.unwrap().unwrap().id, e.id);
        services.blobs.put_bytes("tenants/t-wired/x", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(services.blobs.head("tenants/t-wired/x").await.unwrap(), Some(1));
        services.orchestrator.start("t-wired", &e.id, 1).await.unwrap();
        let runs = sfn.list_executions().state_machine_arn(&sm.state_machine_arn).send().await.unwrap();
        assert_eq!(runs.executions.len(), 1);
        assert!(services.settings.work_dir.is_dir());
    })
    .await;
}
