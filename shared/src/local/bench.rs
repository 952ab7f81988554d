//! `egress bench`: export the synthetic dataset through the whole service (API route, the
//! export state machine in the local runner, parallel chunks, encode) and report rows/s, MB/s
//! and peak RSS. `infra/bench/run.sh` runs DuckDB and Polars on the same files in the same run
//! and prints the ratios.
//!
//! `--driver direct` calls the stage functions straight instead (plan; encode beside the chunks;
//! encrypt, deliver, record_receipt), without the state machine: the measure of what the runner
//! costs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use http::Method;
use serde::Serialize;
use serde_json::json;

use super::client::Client;
use super::demo::{Bar, admin_key, run_export};
use super::{LocalHost, LocalOptions};
use crate::synthetic::transactions;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub tool: &'static str,
    pub format: String,
    pub compression: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub mb_per_s: f64,
    pub peak_rss_mb: f64,
    pub source: String,
}

/// Peak resident set size of this process, in MB (VmHWM).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Reset the peak RSS counter, so that the measure covers the export only.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The benchmark dataset of `rows` rows under `data_dir/bench/`, made if missing.
pub fn dataset(data_dir: &Path, rows: u64) -> Result<PathBuf, String> {
    let dir = data_dir.join("bench").join(format!("transactions-{rows}"));
    let marker = dir.join("_SUCCESS");
    if std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<u64>().ok()) == Some(rows) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut bar = Bar::new("generating bench dataset");
    transactions::write_parquet(&dir, rows, |done| bar.show(done as f64 / rows as f64 * 100.0, &format!("{done} rows")))
        .map_err(|e| format!("writing the dataset: {e}"))?;
    bar.done("done");
    std::fs::write(&marker, rows.to_string()).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// How the export is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Through the API and `statemachines/export.asl.json` (what `egress serve` does).
    StateMachine,
    /// The stage functions called in order from Rust.
    Direct,
}

pub async fn run(data_dir: &Path, format: &str, compression: &str, rows: u64, driver: Driver) -> Result<BenchResult, String> {
    let source = dataset(data_dir, rows)?;
    let source = std::fs::canonicalize(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let host_dir = data_dir.join("bench").join("host");
    let _ = std::fs::remove_dir_all(&host_dir);
    let options = LocalOptions { data_dir: host_dir.clone(), public_url: "http://127.0.0.1:0".into(), dataset_roots: vec![source.clone()] };
    // The benchmark polls its export often; the per-key rate limit is for clients, not for it.
    let host = LocalHost::open_with(options, |s| s.rate_limit = None).map_err(|e| e.to_string())?;
    let client = Client { services: &host.services, token: admin_key(&host, "bench").await? };
    let spec = json!({
        "name": format!("bench-{rows}"),
        "source": {"type": "dataset", "local_path": source.to_string_lossy()},
        "format": format,
        "compression": compression,
    });
    reset_peak_rss();
    let started = Instant::now();
    let export = match driver {
        Driver::StateMachine => run_export(&client, &spec, "bench", true).await?,
        Driver::Direct => direct(&host, &spec).await?,
    };
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let file = &export["result"]["files"][0];
    let (out_rows, bytes) = (file["rows"].as_u64().unwrap_or(0), file["size"].as_u64().unwrap_or(0));
    let id = export["id"].as_str().unwrap_or_default().to_string();
    client.call(Method::DELETE, &format!("/v1/exports/{id}"), None).await;
    drop(host);
    let _ = std::fs::remove_dir_all(&host_dir);
    Ok(BenchResult {
        tool: match driver {
            Driver::StateMachine => "egress",
            Driver::Direct => "egress-direct",
        },
        format: format.to_string(),
        compression: compression.to_string(),
        rows: out_rows,
        bytes,
        seconds,
        rows_per_s: out_rows as f64 / seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds,
        peak_rss_mb: peak,
        source: format!("{}/*.parquet", source.display()),
    })
}

/// Run one export by calling the stage functions in order, encode beside the chunks.
async fn direct(host: &LocalHost, spec: &serde_json::Value) -> Result<serde_json::Value, String> {
    use futures::StreamExt;

    use crate::model::{Export, ExportSpec};
    use crate::pipeline::{ExportRef, deliver, encode, encrypt, extract_chunk, plan, record_receipt};
    use crate::store::ExportStore;

    let spec = ExportSpec::from_json(spec).map_err(|e| e.to_string())?;
    let export = Export::new(crate::model::ids::export_id(), "bench".into(), "bench".into(), spec, chrono::Utc::now());
    host.store.create_export(&export).await.map_err(|e| e.to_string())?;
    let ctx = host.services.stage_context();
    let r = ExportRef { tenant: export.tenant.clone(), export_id: export.id.clone() };
    let e = |e: crate::pipeline::StageError| e.to_string();
    let planned = plan::plan(&ctx, r.clone()).await.map_err(e)?;
    let encoding = {
        let (ctx, r) = (ctx.clone(), r.clone());
        tokio::spawn(async move { encode::encode(&ctx, r).await })
    };
    let results: Vec<_> = futures::stream::iter(0..planned.chunks_total)
        .map(|index| {
            let ctx = ctx.clone();
            let item = plan::ChunkItem { tenant: r.tenant.clone(), export_id: r.export_id.clone(), index };
            tokio::spawn(async move { extract_chunk::extract_chunk(&ctx, item).await })
        })
        .buffer_unordered(planned.max_concurrency as usize)
        .collect()
        .await;
    for res in results {
        res.map_err(|j| j.to_string())?.map_err(e)?;
    }
    let encoded = encoding.await.map_err(|j| j.to_string())?.map_err(e)?;
    let files =
        encrypt::encrypt(&ctx, encrypt::EncryptInput { tenant: r.tenant.clone(), export_id: r.export_id.clone(), files: encoded.files })
            .await
            .map_err(e)?
            .files;
    let input = deliver::DeliverInput {
        tenant: r.tenant.clone(),
        export_id: r.export_id.clone(),
        index: 0,
        destination: json!({"type": "download"}),
        files: files.clone(),
    };
    let delivery = deliver::deliver(&ctx, input).await.map_err(e)?;
    let input =
        record_receipt::RecordReceiptInput { tenant: r.tenant.clone(), export_id: r.export_id.clone(), files, deliveries: vec![delivery] };
    record_receipt::record_receipt(&ctx, input).await.map_err(e)?;
    let done = host.store.get_export(&r.tenant, &r.export_id).await.map_err(|e| e.to_string())?.ok_or("the export is gone")?;
    Ok(done.to_api_json())
}
