//! `egress demo`: make (or reuse) a month of synthetic transactions, run real exports through
//! the API route functions and the pipeline, and show where the files are. Deterministic: the
//! same command prints the same checksums.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::LocalHost;
use super::client::Client;
use crate::blob::keys;
use crate::model::Permission;
use crate::synthetic::transactions;

pub const TENANT: &str = "demo";

/// One finished demo export.
#[derive(Debug, Clone)]
pub struct DemoExport {
    pub name: String,
    pub format: String,
    pub rows: u64,
    pub size: u64,
    pub sha256: String,
    pub path: std::path::PathBuf,
    pub seconds: f64,
}

/// The exports the demo runs: what a compliance team, an analyst and a warehouse would ask for.
pub fn demo_specs() -> Vec<Value> {
    vec![
        json!({
            "name": "flagged-transactions-2026-10",
            "source": {"type": "dataset", "path": "transactions/2026-10"},
            "columns": ["transaction_id", "booked_at", "value_date", "account_id", "counterparty_name", "amount", "currency", "country", "channel", "risk_score", "memo"],
            "filters": [{"column": "flagged", "op": "=", "value": true}],
            "time_range": {"column": "booked_at", "from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            "format": {"type": "csv", "bom": false},
            "metadata": {"purpose": "monthly review of flagged transactions"}
        }),
        json!({
            "name": "all-transactions-2026-10",
            "source": {"type": "dataset", "path": "transactions/2026-10"},
            "format": "jsonl",
            "compression": "gzip"
        }),
        json!({
            "name": "largest-debits-2026-10",
            "source": {"type": "dataset", "path": "transactions/2026-10"},
            "columns": ["transaction_id", "booked_at", "amount", "currency", "counterparty_name"],
            "filters": [{"column": "amount", "op": "<", "value": 0}],
            "sort": [{"column": "amount", "order": "asc"}, {"column": "transaction_id"}],
            "max_rows": 100,
            "format": "json"
        }),
    ]
}

/// Make the demo dataset in the blob store unless it is already there with `rows` rows.
pub fn ensure_dataset(host: &LocalHost, rows: u64) -> Result<std::path::PathBuf, String> {
    let dir = host.blobs.root().join(keys::dataset(TENANT, "transactions/2026-10"));
    let marker = dir.join("_SUCCESS");
    if std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<u64>().ok()) == Some(rows) {
        eprintln!("dataset: reusing {} rows in {}", rows, dir.display());
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut bar = Bar::new("generating dataset");
    transactions::write_parquet(&dir, rows, |done| bar.show(done as f64 / rows as f64 * 100.0, &format!("{done} rows")))
        .map_err(|e| format!("writing the dataset: {e}"))?;
    bar.done(&format!("{rows} rows in {:.1} s", started.elapsed().as_secs_f64()));
    std::fs::write(&marker, rows.to_string()).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// A new API key for `tenant` with every permission; returns the token.
pub async fn admin_key(host: &LocalHost, tenant: &str) -> Result<String, String> {
    let k = crate::auth::generate(tenant, [Permission::Admin].into(), "created by the egress CLI");
    host.store_api_key(&k.record).await?;
    Ok(k.token)
}

/// Create an export through the API and wait for it, drawing a progress bar.
pub async fn run_export(client: &Client<'_>, spec: &Value, label: &str, quiet: bool) -> Result<Value, String> {
    let (status, location, body) = client.call(Method::POST, "/v1/exports", Some(spec)).await;
    if status != StatusCode::ACCEPTED {
        return Err(format!("{label}: the API answered {status}: {body}"));
    }
    let location = location.ok_or("no Location header")?;
    let mut bar = Bar::new(label);
    // Quiet, the answer waits for the end; otherwise the progress bar is redrawn as it goes.
    let poll = if quiet { format!("{location}?wait_seconds={}", crate::api::exports::MAX_WAIT_SECONDS) } else { location.clone() };
    loop {
        let (status, _, export) = client.call(Method::GET, &poll, None).await;
        if status != StatusCode::OK {
            return Err(format!("{label}: GET {location} answered {status}: {export}"));
        }
        let p = &export["progress"];
        if !quiet {
            bar.show(p["percent"].as_f64().unwrap_or(0.0), p["step_description"].as_str().unwrap_or(""));
        }
        match export["status"].as_str() {
            Some("completed") | Some("partial") => {
                if !quiet {
                    bar.done("done");
                }
                return Ok(export);
            }
            Some("failed") | Some("cancelled") => {
                if !quiet {
                    bar.done("failed");
                }
                return Err(format!("{label}: export {}: {}", export["status"], export["error"]));
            }
            _ if quiet => {}
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub async fn run(host: &LocalHost, rows: u64) -> Result<Vec<DemoExport>, String> {
    ensure_dataset(host, rows)?;
    let client = Client { services: &host.services, token: admin_key(host, TENANT).await? };
    let mut out = Vec::new();
    for spec in demo_specs() {
        let name = spec["name"].as_str().unwrap_or("export").to_string();
        let started = Instant::now();
        let export = run_export(&client, &spec, &name, false).await?;
        let seconds = started.elapsed().as_secs_f64();
        let file = &export["result"]["files"][0];
        let id = export["id"].as_str().unwrap_or_default();
        let file_name = file["name"].as_str().unwrap_or_default();
        out.push(DemoExport {
            name,
            format: spec["format"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| spec["format"]["type"].as_str().unwrap_or("").to_string()),
            rows: file["rows"].as_u64().unwrap_or(0),
            size: file["size"].as_u64().unwrap_or(0),
            sha256: file["sha256"].as_str().unwrap_or_default().to_string(),
            path: host.blobs.root().join(keys::result_file(TENANT, id, file_name)),
            seconds,
        });
    }
    Ok(out)
}

/// A one-line progress bar on stderr (a line per quarter when stderr is not a terminal).
pub struct Bar {
    label: String,
    tty: bool,
    last_quarter: i32,
}

impl Bar {
    pub fn new(label: &str) -> Self {
        Self { label: label.to_string(), tty: std::io::stderr().is_terminal(), last_quarter: -1 }
    }

    pub fn show(&mut self, percent: f64, note: &str) {
        let width = 30usize;
        let filled = ((percent / 100.0) * width as f64).round().clamp(0.0, width as f64) as usize;
        let line = format!("{:<32} [{}{}] {:>5.1}%  {}", self.label, "#".repeat(filled), "-".repeat(width - filled), percent, note);
        if self.tty {
            eprint!("\r{line:<100}");
            let _ = std::io::stderr().flush();
        } else {
            let q = (percent / 25.0).floor() as i32;
            if q > self.last_quarter {
                self.last_quarter = q;
                eprintln!("{line}");
            }
        }
    }

    pub fn done(&mut self, note: &str) {
        self.show(100.0, note);
        if self.tty {
            eprintln!();
        }
    }
}
