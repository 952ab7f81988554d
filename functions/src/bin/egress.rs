//! `egress`: the local host. Serves the API (every route function in one process), runs the
//! demo and the benchmarks, and manages API keys, all on the embedded default (SQLite and a data
//! folder).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use egress::local::{LocalHost, LocalOptions, bench, bench_package, demo, host};
use egress::model::{Permission, principal};

#[derive(Parser)]
#[command(name = "egress", version, about = "A data export service: one local process on SQLite and a data folder")]
struct Cli {
    /// Data folder (SQLite database, blobs, keys).
    #[arg(long, env = "EGRESS_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "EGRESS_ADDR", default_value = "127.0.0.1:8080", global = true)]
    addr: SocketAddr,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API.
    Serve {
        /// A folder whose files `local_path` dataset sources may read (repeatable).
        #[arg(long = "dataset-root", env = "EGRESS_DATASET_ROOT")]
        dataset_roots: Vec<PathBuf>,
        /// Base URL of download links (default: http://<addr>).
        #[arg(long, env = "EGRESS_PUBLIC_URL")]
        public_url: Option<String>,
        /// Rows per chunk (smaller chunks: more parallelism and finer progress).
        #[arg(long, env = "EGRESS_CHUNK_ROWS")]
        chunk_rows: Option<u64>,
    },
    /// Make a month of synthetic transactions and export it: CSV, JSONL.gz and a sorted JSON.
    Demo {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Benchmark one export of the synthetic dataset (rows/s, MB/s, peak RSS).
    Bench {
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        #[arg(long, default_value = "none")]
        compression: String,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
        /// Only make the dataset (if missing) and stop.
        #[arg(long)]
        prepare_only: bool,
        /// `state-machine` (the API and the export state machine, as served) or `direct` (the
        /// stage functions called in order, to measure what the state machine costs).
        #[arg(long, default_value = "state-machine", value_parser = ["state-machine", "direct"])]
        driver: String,
    },
    /// Benchmark packaging one file: gzip (optional) and OpenPGP encryption to one public key,
    /// as the Encrypt stage does it (MB/s of input, peak RSS).
    BenchPackage {
        /// The file to package.
        #[arg(long)]
        input: PathBuf,
        /// The recipient's OpenPGP public key (armored or binary).
        #[arg(long)]
        recipient_key: PathBuf,
        /// Where the encrypted file goes (default: the input's path with `.gz.gpg`).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Gzip (level 6) before encrypting.
        #[arg(long)]
        gzip: bool,
        /// ASCII-armored output.
        #[arg(long)]
        armor: bool,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key; the key is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: exports:generate, exports:view, exports:download, exports:delete, exports:schedule, exports:admin.
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
}

/// How often the in-process scheduler looks for due fires.
const SCHEDULER_TICK_SECS: u64 = 10;

fn open(cli: &Cli, dataset_roots: Vec<PathBuf>, public_url: Option<String>) -> Result<LocalHost, String> {
    open_tuned(cli, dataset_roots, public_url, None)
}

fn open_tuned(cli: &Cli, dataset_roots: Vec<PathBuf>, public_url: Option<String>, chunk_rows: Option<u64>) -> Result<LocalHost, String> {
    let public_url = public_url.unwrap_or_else(|| format!("http://{}", cli.addr));
    let options = LocalOptions { data_dir: cli.data_dir.clone(), public_url, dataset_roots };
    LocalHost::open_with(options, |s| {
        if let Some(n) = chunk_rows {
            s.chunk_rows = n.max(1);
            s.sort_chunk_rows = n.max(1);
        }
    })
    .map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve { dataset_roots, public_url, chunk_rows } => {
            egress::telemetry::init_text();
            let host = Arc::new(open_tuned(&cli, dataset_roots.clone(), public_url.clone(), *chunk_rows)?);
            let listener = tokio::net::TcpListener::bind(cli.addr).await.map_err(|e| format!("cannot listen on {}: {e}", cli.addr))?;
            let resumed = host.orchestrator.recover().await.map_err(|e| e.to_string())?;
            eprintln!(
                "egress listening on http://{} (data: {}; resumed {resumed} unfinished exports)",
                listener.local_addr().map_err(|e| e.to_string())?,
                cli.data_dir.display()
            );
            let scheduler = egress::scheduler::Scheduler::new(host.services.clone(), Arc::new(egress::scheduler::SystemClock));
            tokio::spawn(scheduler.run(std::time::Duration::from_secs(SCHEDULER_TICK_SECS)));
            tokio::select! {
                r = host::serve(host.clone(), listener) => r.map_err(|e| e.to_string()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        Command::Demo { rows } => {
            let host = open(&cli, Vec::new(), None)?;
            host.orchestrator.recover().await.map_err(|e| e.to_string())?;
            let results = demo::run(&host, *rows).await?;
            println!();
            println!("{:<30} {:<6} {:>9} {:>12} {:>8}  sha256", "export", "format", "rows", "bytes", "seconds");
            for r in &results {
                println!("{:<30} {:<6} {:>9} {:>12} {:>8.2}  {}", r.name, r.format, r.rows, r.size, r.seconds, r.sha256);
                println!("    {}", r.path.display());
            }
            Ok(())
        }
        Command::Bench { format, rows, compression, json, prepare_only, driver } => {
            egress::telemetry::init_text();
            if *prepare_only {
                let dir = bench::dataset(&cli.data_dir, *rows)?;
                eprintln!("bench dataset: {}", dir.display());
                return Ok(());
            }
            let driver = if driver == "direct" { bench::Driver::Direct } else { bench::Driver::StateMachine };
            let r = bench::run(&cli.data_dir, format, compression, *rows, driver).await?;
            if *json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!(
                    "{} {} {}: {} rows, {:.1} MB in {:.2} s = {:.0} rows/s, {:.1} MB/s, peak RSS {:.0} MB",
                    r.tool,
                    r.format,
                    r.compression,
                    r.rows,
                    r.bytes as f64 / 1e6,
                    r.seconds,
                    r.rows_per_s,
                    r.mb_per_s,
                    r.peak_rss_mb
                );
            }
            Ok(())
        }
        Command::BenchPackage { input, recipient_key, output, gzip, armor, json } => {
            let suffix = format!("{}{}", if *gzip { ".gz" } else { "" }, if *armor { ".asc" } else { ".gpg" });
            let output = output.clone().unwrap_or_else(|| PathBuf::from(format!("{}{suffix}", input.display())));
            let (input, key, gzip, armor) = (input.clone(), recipient_key.clone(), *gzip, *armor);
            let r = tokio::task::spawn_blocking(move || bench_package::run(&input, &key, &output, gzip, armor))
                .await
                .map_err(|e| e.to_string())??;
            if *json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!(
                    "{} {}: {:.1} MB in {:.2} s = {:.1} MB/s, {:.1} MB out, peak RSS {:.0} MB",
                    r.tool,
                    r.pipeline,
                    r.input_bytes as f64 / 1e6,
                    r.seconds,
                    r.mb_per_s,
                    r.output_bytes as f64 / 1e6,
                    r.peak_rss_mb
                );
            }
            Ok(())
        }
        Command::Keys { command: KeysCommand::Create { tenant, permissions, description } } => {
            if !principal::is_valid_tenant(tenant) {
                return Err(format!("--tenant `{tenant}`: 1 to 64 of a-z, 0-9, - and _"));
            }
            let mut perms = BTreeSet::new();
            for p in permissions {
                perms.insert(Permission::parse(p).ok_or_else(|| format!("--permissions `{p}`: one of {}", principal::PERMISSIONS))?);
            }
            let host = open(&cli, Vec::new(), None)?;
            let key = egress::auth::generate(tenant, perms, description);
            host.store_api_key(&key.record).await?;
            eprintln!("created key {} for tenant {tenant}; it is shown once:", key.record.key_id);
            println!("{}", key.token);
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("egress: {e}");
            ExitCode::FAILURE
        }
    }
}
