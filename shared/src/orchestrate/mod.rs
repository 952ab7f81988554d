//! Orchestrator: starts and stops export runs. Step Functions on AWS (an execution named by the
//! export id, so a retried request cannot start two runs); in process on the embedded default.

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
    /// Start a run of the export. Idempotent: a run already going is left alone.
    async fn start(&self, tenant: &str, export_id: &str) -> Result<(), OrchestrateError>;
    /// Stop the export's run, if any, and wait until it no longer writes anything.
    async fn stop(&self, tenant: &str, export_id: &str) -> Result<(), OrchestrateError>;
}
