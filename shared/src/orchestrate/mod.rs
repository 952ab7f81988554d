//! Orchestrator: starts and stops export runs. Step Functions on AWS (an execution named by the
//! export id, so a retried request cannot start two runs); in process on the embedded default.

pub mod asl;
pub mod local;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestrateError {
    #[error("orchestrator error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// Start run number `run` of the export (1 for the first; resume and retry start the next).
    /// Idempotent: starting a run that exists already (same [`execution_name`]) does nothing.
    async fn start(&self, tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError>;
    /// Stop the export's run `run`, if it is going, and wait until it no longer writes anything.
    async fn stop(&self, tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError>;
}

/// The name of an export's run: the export id for the first, `<export id>-run<n>` after. One
/// name is one execution, so a repeated start cannot make two (Step Functions refuses a second
/// execution of the same name; the local runner does the same).
pub fn execution_name(export_id: &str, run: u32) -> String {
    if run <= 1 { export_id.to_string() } else { format!("{export_id}-run{run}") }
}
