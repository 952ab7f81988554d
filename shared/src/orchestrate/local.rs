//! The orchestrator of the embedded default: runs `statemachines/export.asl.json` in process
//! with the [ASL runner](super::asl), its Task states dispatched to the stage functions (the
//! same functions the stage Lambdas run on AWS).
//!
//! A run is claimed with a lease on the export (a conditional write naming this host and
//! renewed while the run goes), so two hosts on one data folder never run the same export at
//! once. A restarted host resumes the exports left pending or running
//! ([`LocalOrchestrator::recover`]): finished chunks are kept, so the run continues from the
//! first unfinished one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::asl::{Failure, Outcome, Runner, TaskHandler};
use super::{OrchestrateError, Orchestrator, execution_name};
use crate::model::{ExportStatus, Lease};
use crate::pipeline::record_failure::{FailureInfo, RecordFailureInput, record_failure};
use crate::pipeline::{ErrorName, Stage, StageContext, StageError};
use crate::store::{UpdateError, update_export};

/// The export state machine, the one Step Functions runs.
pub const EXPORT_DEFINITION: &str = include_str!("../../../statemachines/export.asl.json");

/// How long a claim on a run holds without renewal, and how often it is renewed.
const LEASE: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// The local Task resource of a stage (what `${PlanFunctionArn}` becomes here).
pub fn stage_resource(stage: Stage) -> String {
    format!("egress:stage:{}", stage.name())
}

/// The definition substitutions of the embedded default.
pub fn local_substitutions() -> HashMap<String, String> {
    let mut subs: HashMap<String, String> = Stage::ALL.iter().map(|s| (s.substitution().to_string(), stage_resource(*s))).collect();
    subs.insert("DataBucket".into(), "local".into());
    subs
}

/// Task states call the stage functions; the Distributed Map reads its items from the blob
/// store. Chunk extraction takes a slot of the host (shared by every run).
///
/// Each invocation runs as a task of its own, as a Lambda invocation does. When a state stops
/// waiting for one (a failed Map or Parallel drops its other iterations), the invocation still
/// finishes on its own; the host counts such invocations per export, so that stopping a run
/// waits for them too and nothing is written after a run is over.
pub struct StageTasks {
    ctx: StageContext,
    slots: Arc<Semaphore>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    calls: [AtomicU64; 7],
    parts_written: AtomicU64,
    /// Invocations still running, per `tenant/export id`.
    running: Mutex<HashMap<String, usize>>,
}

/// Counts one running invocation of an export while it lives.
struct Running {
    stats: Arc<Stats>,
    key: String,
}

impl Running {
    fn new(stats: Arc<Stats>, key: String) -> Self {
        *stats.running.lock().expect("running map").entry(key.clone()).or_default() += 1;
        Self { stats, key }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.stats.running.lock().expect("running map");
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

impl StageTasks {
    pub fn new(ctx: StageContext) -> Self {
        let slots = Arc::new(Semaphore::new(ctx.settings.max_concurrency.max(1)));
        Self { ctx, slots, stats: Arc::default() }
    }

    /// How many chunk parts this host wrote (a chunk found already done is not counted).
    pub fn parts_written(&self) -> u64 {
        self.stats.parts_written.load(Ordering::Relaxed)
    }

    /// How many times a stage was invoked by this host (retries included).
    pub fn invocations(&self, stage: Stage) -> u64 {
        self.stats.calls[stage_index(stage)].load(Ordering::Relaxed)
    }

    /// Stage invocations still running for the export (`None`: for any export).
    fn running(&self, key: Option<&str>) -> usize {
        let running = self.stats.running.lock().expect("running map");
        match key {
            Some(k) => running.get(k).copied().unwrap_or(0),
            None => running.values().sum(),
        }
    }

    /// Wait (at most `limit`) until no stage invocation of the export (`None`: of any) runs.
    async fn settle(&self, key: Option<&str>, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.running(key) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn stage_index(stage: Stage) -> usize {
    Stage::ALL.iter().position(|s| *s == stage).expect("a stage")
}

fn failure(e: StageError) -> Failure {
    Failure::new(e.name.as_str(), e.message)
}

#[async_trait]
impl TaskHandler for StageTasks {
    fn knows(&self, resource: &str) -> bool {
        resource.strip_prefix("egress:stage:").and_then(Stage::from_name).is_some()
    }

    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure> {
        let stage = resource
            .strip_prefix("egress:stage:")
            .and_then(Stage::from_name)
            .ok_or_else(|| Failure::new("States.Runtime", format!("unknown resource {resource}")))?;
        self.stats.calls[stage_index(stage)].fetch_add(1, Ordering::Relaxed);
        let field = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let running = Running::new(self.stats.clone(), format!("{}/{}", field("tenant"), field("export_id")));
        let permit = if stage == Stage::ExtractChunk {
            Some(
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Failure::new(ErrorName::Internal.as_str(), "the host is shutting down"))?,
            )
        } else {
            None
        };
        // A task of its own, as a Lambda invocation is: stages run in parallel.
        let ctx = self.ctx.clone();
        let joined = tokio::spawn(async move {
            let (_permit, _running) = (permit, running);
            let out = stage.call(&ctx, input).await;
            if let Ok(v) = &out
                && stage == Stage::ExtractChunk
                && v.get("already_done") == Some(&Value::Bool(false))
            {
                _running.stats.parts_written.fetch_add(1, Ordering::Relaxed);
            }
            out
        })
        .await;
        match joined {
            Ok(r) => r.map_err(failure),
            Err(e) => Err(failure(StageError::from(e))),
        }
    }

    async fn read_items(&self, parameters: &Value, input_type: &str) -> Result<Vec<Value>, Failure> {
        let key =
            parameters.get("Key").and_then(Value::as_str).ok_or_else(|| Failure::new("States.Runtime", "the ItemReader has no Key"))?;
        let bytes = self.ctx.blobs.get_bytes(key).await.map_err(|e| failure(e.into()))?;
        let bad = |e: serde_json::Error| Failure::new("States.ItemReaderFailed", format!("{key}: {e}"));
        match input_type {
            "JSONL" => bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).map_err(bad)).collect(),
            _ => match serde_json::from_slice(&bytes).map_err(bad)? {
                Value::Array(items) => Ok(items),
                _ => Err(Failure::new("States.ItemReaderFailed", format!("{key} is not a JSON array"))),
            },
        }
    }
}

pub struct LocalOrchestrator {
    ctx: StageContext,
    runner: Arc<Runner>,
    tasks: Arc<StageTasks>,
    runs: Mutex<HashMap<String, JoinHandle<()>>>,
    owner: String,
}

impl LocalOrchestrator {
    pub fn new(ctx: StageContext) -> Result<Arc<Self>, OrchestrateError> {
        let tasks = Arc::new(StageTasks::new(ctx.clone()));
        let runner = Runner::load("export", EXPORT_DEFINITION, &local_substitutions(), tasks.clone())
            .map_err(|e| OrchestrateError::Backend(format!("statemachines/export.asl.json: {e}")))?;
        let owner = format!("{}/{}/{}", host_name(), std::process::id(), uuid::Uuid::now_v7().simple());
        Ok(Arc::new(Self { ctx, runner: Arc::new(runner), tasks, runs: Mutex::new(HashMap::new()), owner }))
    }

    pub fn tasks(&self) -> &StageTasks {
        &self.tasks
    }

    fn run_key(tenant: &str, execution: &str) -> String {
        format!("{tenant}/{execution}")
    }

    /// Resume the exports a previous process left pending or running. An export interrupted
    /// `max_attempts` times is failed with a reason instead: it is never left running forever.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, OrchestrateError> {
        let active = self.ctx.store.list_active_exports().await.map_err(|e| OrchestrateError::Backend(e.to_string()))?;
        let mut resumed = 0;
        for (tenant, id) in active {
            let Ok(Some(export)) = self.ctx.store.get_export(&tenant, &id).await else { continue };
            if export.lease.as_ref().is_some_and(|l| l.owner != self.owner && owner_alive(l)) {
                continue;
            }
            if export.attempts >= self.ctx.settings.max_attempts {
                let cause = format!("the host stopped during this export {} times; giving up", export.attempts);
                let input = RecordFailureInput {
                    tenant: tenant.clone(),
                    export_id: id.clone(),
                    error: FailureInfo { error: "Egress.Interrupted".into(), cause },
                };
                let _ = record_failure(&self.ctx, input).await;
                continue;
            }
            tracing::info!(export_id = %id, tenant = %tenant, "resuming an export the last process left unfinished");
            self.start(&tenant, &id, export.run).await?;
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Wait for every run of this host to end (for tests and the demo).
    pub async fn idle(&self) {
        loop {
            let busy = {
                let mut runs = self.runs.lock().expect("run map");
                runs.retain(|_, h| !h.is_finished());
                !runs.is_empty()
            };
            if !busy && self.tasks.running(None) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Claim run `run` of the export for this host; `false` when there is nothing to run here
    /// (another live host holds it, the export is no longer active, or a newer run exists).
    async fn claim(&self, tenant: &str, export_id: &str, run: u32) -> Result<bool, OrchestrateError> {
        let res = update_export(self.ctx.store.as_ref(), tenant, export_id, |e| {
            if e.run != run || !ExportStatus::ACTIVE.contains(&e.status) {
                return Err(());
            }
            if e.lease.as_ref().is_some_and(|l| l.owner != self.owner && l.until > Utc::now() && owner_alive(l)) {
                return Err(());
            }
            if e.lease.as_ref().is_none_or(|l| l.owner != self.owner) {
                e.attempts += 1;
            }
            e.lease = Some(Lease { owner: self.owner.clone(), until: Utc::now() + LEASE });
            Ok(())
        })
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(UpdateError::Refused(())) | Err(UpdateError::NotFound) => Ok(false),
            Err(UpdateError::Store(e)) => Err(OrchestrateError::Backend(e.to_string())),
        }
    }

    /// Renew or drop this host's lease; `false` once it is no longer ours.
    async fn renew(ctx: &StageContext, owner: &str, tenant: &str, export_id: &str, keep: bool) -> bool {
        update_export(ctx.store.as_ref(), tenant, export_id, |e| {
            if e.lease.as_ref().is_none_or(|l| l.owner != owner) {
                return Err(());
            }
            e.lease = keep.then(|| Lease { owner: owner.to_string(), until: Utc::now() + LEASE });
            Ok(())
        })
        .await
        .is_ok()
    }
}

/// Whether a lease's owner may still be running: a host on this machine whose process is gone
/// is not (its runs are taken over at once); others are trusted until the lease runs out.
fn owner_alive(lease: &Lease) -> bool {
    let mut parts = lease.owner.split('/');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else { return true };
    if host != host_name() || !std::path::Path::new("/proc/self").exists() {
        return lease.until > Utc::now();
    }
    pid == std::process::id().to_string() || std::path::Path::new("/proc").join(pid).exists()
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().replace('/', "_")).unwrap_or_else(|_| "localhost".into())
}

#[async_trait]
impl Orchestrator for LocalOrchestrator {
    async fn start(&self, tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError> {
        let name = execution_name(export_id, run);
        let key = Self::run_key(tenant, &name);
        {
            let runs = self.runs.lock().expect("run map");
            if runs.get(&key).is_some_and(|h| !h.is_finished()) {
                return Ok(());
            }
        }
        if !self.claim(tenant, export_id, run).await? {
            tracing::info!(export_id, tenant, run, "not starting the run: it is not active or another host runs it");
            return Ok(());
        }
        let (ctx, runner, owner, tasks) = (self.ctx.clone(), self.runner.clone(), self.owner.clone(), self.tasks.clone());
        let (tenant, export_id) = (tenant.to_string(), export_id.to_string());
        let span = tracing::info_span!("execution", export_id = %export_id, tenant = %tenant, execution = %name);
        let handle = tokio::spawn(
            async move {
                let renewing = {
                    let (ctx, owner, tenant, export_id) = (ctx.clone(), owner.clone(), tenant.clone(), export_id.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(RENEW_EVERY).await;
                            if !Self::renew(&ctx, &owner, &tenant, &export_id, true).await {
                                return;
                            }
                        }
                    })
                };
                let started = std::time::Instant::now();
                let execution = runner.execute(&name, json!({"tenant": tenant, "export_id": export_id})).await;
                // Stage invocations a failed Map or Parallel stopped waiting for are part of the
                // run: it is over when they are.
                tasks.settle(Some(&format!("{tenant}/{export_id}")), Duration::from_secs(60)).await;
                renewing.abort();
                match execution.outcome {
                    Outcome::Succeeded(_) => tracing::info!(ms = started.elapsed().as_millis() as u64, "execution succeeded"),
                    Outcome::Failed(f) => {
                        tracing::warn!(error = %f.error, cause = %f.cause, "execution failed");
                        // The definition records failures itself; this catches what it could not
                        // (a States.Runtime error). A no-op when the export is already failed.
                        let input = RecordFailureInput {
                            tenant: tenant.clone(),
                            export_id: export_id.clone(),
                            error: FailureInfo { error: f.error, cause: f.cause },
                        };
                        let _ = record_failure(&ctx, input).await;
                    }
                }
                Self::renew(&ctx, &owner, &tenant, &export_id, false).await;
            }
            .instrument(span),
        );
        self.runs.lock().expect("run map").insert(key, handle);
        Ok(())
    }

    async fn stop(&self, tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError> {
        // The stages see the export's new status at their next check and end; wait for that.
        let handle = self.runs.lock().expect("run map").remove(&Self::run_key(tenant, &execution_name(export_id, run)));
        if let Some(h) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(60), h).await;
        }
        // Invocations the run stopped waiting for end by themselves (the export is no longer
        // active); wait for them too.
        self.tasks.settle(Some(&format!("{tenant}/{export_id}")), Duration::from_secs(60)).await;
        Ok(())
    }
}
