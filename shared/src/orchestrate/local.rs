//! The in-process orchestrator of the embedded default: plan, then the chunks in parallel
//! (bounded), then encode and record_receipt, with retries of transient errors (exponential
//! backoff, full jitter) and record_failure when a stage fails for good. A restarted host
//! resumes unfinished exports ([`LocalOrchestrator::recover`]); chunks already done are skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{OrchestrateError, Orchestrator};
use crate::pipeline::record_failure::{RecordFailureInput, record_failure};
use crate::pipeline::{ErrorName, ExportRef, StageContext, StageError, encode, extract_chunk, plan, record_receipt};
use crate::store::update_export;

/// Attempts per stage call for retryable errors.
const STAGE_ATTEMPTS: u32 = 4;

pub struct LocalOrchestrator {
    ctx: StageContext,
    runs: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Chunk slots shared by all runs of this host.
    slots: Arc<Semaphore>,
}

impl LocalOrchestrator {
    pub fn new(ctx: StageContext) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(ctx.settings.max_concurrency.max(1)));
        Arc::new(Self { ctx, runs: Mutex::new(HashMap::new()), slots })
    }

    fn run_key(tenant: &str, id: &str) -> String {
        format!("{tenant}/{id}")
    }

    /// Resume the exports a previous process left pending or running. An export interrupted
    /// `max_attempts` times is failed with a reason instead: it is never left running forever.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, OrchestrateError> {
        let active = self.ctx.store.list_active_exports().await.map_err(|e| OrchestrateError::Backend(e.to_string()))?;
        let mut resumed = 0;
        for (tenant, id) in active {
            let Ok(Some(export)) = self.ctx.store.get_export(&tenant, &id).await else { continue };
            if export.attempts >= self.ctx.settings.max_attempts {
                let err = StageError::new(
                    ErrorName::Transient,
                    format!("the host stopped during this export {} times; giving up", export.attempts),
                );
                let mut input = RecordFailureInput::from_stage_error(&tenant, &id, &err);
                input.error.error = "Egress.Interrupted".into();
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
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Full jitter: a delay uniform in [0, base * 2^attempt], capped.
fn backoff(attempt: u32) -> Duration {
    let cap = 200u64 * 2u64.pow(attempt.min(6));
    Duration::from_millis(rand::rng().random_range(0..=cap.min(10_000)))
}

async fn with_retry<T, F, Fut>(mut f: F) -> Result<T, StageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StageError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.name.is_retryable() && attempt + 1 < STAGE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "stage failed, retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn run(ctx: StageContext, slots: Arc<Semaphore>, tenant: String, export_id: String) {
    let r = ExportRef { tenant: tenant.clone(), export_id: export_id.clone() };
    let outcome: Result<(), StageError> = async {
        let started = std::time::Instant::now();
        let planned = with_retry(|| plan::plan(&ctx, r.clone())).await?;
        tracing::debug!(export_id = %r.export_id, ms = started.elapsed().as_millis() as u64, chunks = planned.chunks_total, "plan done");
        // Encode takes the parts in order as they are recorded: it runs beside the chunks.
        let encoding = {
            let (ctx, r) = (ctx.clone(), r.clone());
            tokio::spawn(async move { with_retry(|| encode::encode(&ctx, r.clone())).await })
        };
        let results: Vec<Result<_, StageError>> = futures::stream::iter(planned.chunks)
            .map(|item| {
                let (ctx, slots) = (ctx.clone(), slots.clone());
                async move {
                    let _permit = slots.acquire_owned().await.map_err(|_| StageError::internal("host shutting down"))?;
                    with_retry(|| extract_chunk::extract_chunk(&ctx, item.clone())).await
                }
            })
            .buffer_unordered(ctx.settings.max_concurrency.max(1))
            .collect()
            .await;
        tracing::debug!(export_id = %r.export_id, ms = started.elapsed().as_millis() as u64, "chunks done");
        // Cancellation and pause win over other errors: they explain the rest.
        let mut first_err = None;
        for res in results {
            if let Err(e) = res {
                let stronger = matches!(e.name, ErrorName::Cancelled | ErrorName::Paused | ErrorName::NotFound);
                if first_err.is_none() || stronger {
                    first_err = Some(e);
                }
            }
        }
        if let Some(e) = first_err {
            // Encode stops by itself once the export is no longer active; record the failure
            // first so that it sees that.
            if !matches!(e.name, ErrorName::Cancelled | ErrorName::Paused | ErrorName::NotFound) {
                let _ = record_failure(&ctx, RecordFailureInput::from_stage_error(&tenant, &export_id, &e)).await;
            }
            let _ = encoding.await;
            return Err(e);
        }
        let encoded = encoding.await.map_err(StageError::from)??;
        tracing::debug!(export_id = %r.export_id, ms = started.elapsed().as_millis() as u64, "encode done");
        with_retry(|| record_receipt::record_receipt(&ctx, encoded.clone())).await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {}
        Err(e) if matches!(e.name, ErrorName::Cancelled | ErrorName::Paused | ErrorName::NotFound) => {
            tracing::info!(export_id, tenant, reason = %e, "run stopped");
        }
        Err(e) => {
            let _ = record_failure(&ctx, RecordFailureInput::from_stage_error(&tenant, &export_id, &e)).await;
        }
    }
}

#[async_trait]
impl Orchestrator for LocalOrchestrator {
    async fn start(&self, tenant: &str, export_id: &str, _run: u32) -> Result<(), OrchestrateError> {
        let key = Self::run_key(tenant, export_id);
        {
            let runs = self.runs.lock().expect("run map");
            if runs.get(&key).is_some_and(|h| !h.is_finished()) {
                return Ok(());
            }
        }
        update_export(self.ctx.store.as_ref(), tenant, export_id, |e| {
            e.attempts += 1;
            Ok::<(), ()>(())
        })
        .await
        .map_err(|e| OrchestrateError::Backend(format!("{e}")))?;
        let handle = tokio::spawn(run(self.ctx.clone(), self.slots.clone(), tenant.to_string(), export_id.to_string()));
        self.runs.lock().expect("run map").insert(key, handle);
        Ok(())
    }

    async fn stop(&self, tenant: &str, export_id: &str, _run: u32) -> Result<(), OrchestrateError> {
        // The stages see the export's new status at their next check and end; wait for that.
        let handle = self.runs.lock().expect("run map").remove(&Self::run_key(tenant, export_id));
        if let Some(h) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(60), h).await;
        }
        Ok(())
    }
}
