//! The Orchestrator on Step Functions: a run is an execution of the export state machine named
//! [`execution_name`], so starting the same run twice makes one execution (Step Functions
//! refuses a second execution of a name).

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;
use aws_sdk_sfn::types::ExecutionStatus;

use super::sdk_error;
use crate::orchestrate::{OrchestrateError, Orchestrator, execution_name};

pub struct StepFunctionsOrchestrator {
    client: Client,
    state_machine_arn: String,
    /// `arn:aws:states:<region>:<account>:execution:<state machine name>:`
    execution_prefix: String,
}

/// The prefix of the ARNs of a state machine's executions, from the state machine's ARN
/// (`arn:<partition>:states:<region>:<account>:stateMachine:<name>`); `None` if it is not one.
pub fn execution_arn_prefix(state_machine_arn: &str) -> Option<String> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", name]
            if !partition.is_empty() && !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some(format!("arn:{partition}:states:{region}:{account}:execution:{name}:"))
        }
        _ => None,
    }
}

fn backend<E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sfn::error::SdkError<E, R>,
) -> OrchestrateError {
    OrchestrateError::Backend(sdk_error(&e))
}

impl StepFunctionsOrchestrator {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Result<Self, String> {
        let state_machine_arn = state_machine_arn.into();
        let execution_prefix =
            execution_arn_prefix(&state_machine_arn).ok_or_else(|| format!("`{state_machine_arn}` is not a state machine ARN"))?;
        Ok(Self { client, state_machine_arn, execution_prefix })
    }

    /// The ARN of an export's run.
    pub fn execution_arn(&self, export_id: &str, run: u32) -> String {
        format!("{}{}", self.execution_prefix, execution_name(export_id, run))
    }
}

#[async_trait]
impl Orchestrator for StepFunctionsOrchestrator {
    async fn start(&self, tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError> {
        let input = serde_json::json!({ "tenant": tenant, "export_id": export_id }).to_string();
        let r = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(execution_name(export_id, run))
            .input(input)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // The run exists already (a retried request): nothing to do.
            Err(e) if matches!(e.as_service_error(), Some(StartExecutionError::ExecutionAlreadyExists(_))) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// Stop the run's execution. A run that never started or has ended is not an error. Step
    /// Functions ends the execution at once; a task it had started may still finish, and the
    /// stages' conditional writes on the export's status keep it from changing a stopped export.
    async fn stop(&self, _tenant: &str, export_id: &str, run: u32) -> Result<(), OrchestrateError> {
        let arn = self.execution_arn(export_id, run);
        let r = self.client.stop_execution().execution_arn(&arn).cause("stopped on request").send().await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(StopExecutionError::ExecutionDoesNotExist(_))) => Ok(()),
            Err(e) => {
                // Stopping an execution that has ended may be refused: then it is stopped.
                match self.client.describe_execution().execution_arn(&arn).send().await {
                    Ok(d) if d.status != ExecutionStatus::Running => Ok(()),
                    _ => Err(backend(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_come_from_the_state_machine_arn() {
        assert_eq!(
            execution_arn_prefix("arn:aws:states:eu-west-1:123456789012:stateMachine:egress-export").as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:egress-export:")
        );
        assert_eq!(
            execution_arn_prefix("arn:aws-cn:states:cn-north-1:1:stateMachine:m").as_deref(),
            Some("arn:aws-cn:states:cn-north-1:1:execution:m:")
        );
        for bad in ["", "egress-export", "arn:aws:states:eu-west-1:1:execution:m:x", "arn:aws:lambda:eu-west-1:1:function:f"] {
            assert_eq!(execution_arn_prefix(bad), None, "{bad}");
        }
    }
}
