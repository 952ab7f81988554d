//! The stages by name: what a Task resource or a stage Lambda dispatches on. Each takes and
//! returns JSON (the state machine's documents, see `statemachines/README.md`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use futures::future::BoxFuture;

use super::{StageContext, StageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Plan,
    ExtractChunk,
    Encode,
    Encrypt,
    Deliver,
    RecordReceipt,
    RecordFailure,
}

impl Stage {
    pub const ALL: [Stage; 7] =
        [Stage::Plan, Stage::ExtractChunk, Stage::Encode, Stage::Encrypt, Stage::Deliver, Stage::RecordReceipt, Stage::RecordFailure];

    /// The stage's name in logs, binaries (`stage_<name>`) and local resources.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::ExtractChunk => "extract_chunk",
            Stage::Encode => "encode",
            Stage::Encrypt => "encrypt",
            Stage::Deliver => "deliver",
            Stage::RecordReceipt => "record_receipt",
            Stage::RecordFailure => "record_failure",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The definition substitution that names the stage's function
    /// (`${PlanFunctionArn}` in `export.asl.json`).
    pub fn substitution(self) -> &'static str {
        match self {
            Stage::Plan => "PlanFunctionArn",
            Stage::ExtractChunk => "ExtractChunkFunctionArn",
            Stage::Encode => "EncodeFunctionArn",
            Stage::Encrypt => "EncryptFunctionArn",
            Stage::Deliver => "DeliverFunctionArn",
            Stage::RecordReceipt => "RecordReceiptFunctionArn",
            Stage::RecordFailure => "RecordFailureFunctionArn",
        }
    }

    /// Run the stage on a JSON input. A document that is not the stage's input is
    /// `Egress.Invalid`.
    pub async fn call(self, ctx: &StageContext, input: Value) -> Result<Value, StageError> {
        self.handler()(ctx, input).await
    }

    /// The stage's JSON handler. A stage Lambda's `main` passes its own
    /// (`handlers::encode`), so the binary links that stage's code and no other's.
    pub fn handler(self) -> Handler {
        match self {
            Stage::Plan => handlers::plan,
            Stage::ExtractChunk => handlers::extract_chunk,
            Stage::Encode => handlers::encode,
            Stage::Encrypt => handlers::encrypt,
            Stage::Deliver => handlers::deliver,
            Stage::RecordReceipt => handlers::record_receipt,
            Stage::RecordFailure => handlers::record_failure,
        }
    }
}

/// A stage from JSON to JSON.
pub type Handler = for<'a> fn(&'a StageContext, Value) -> BoxFuture<'a, Result<Value, StageError>>;

/// One JSON handler per stage.
pub mod handlers {
    use futures::future::BoxFuture;
    use serde_json::Value;

    use super::{Stage, out, parse};
    use crate::pipeline::{StageContext, StageError, deliver, encode, encrypt, extract_chunk, plan, record_failure, record_receipt};

    macro_rules! handler {
        ($name:ident, $stage:expr, $f:path) => {
            pub fn $name(ctx: &StageContext, input: Value) -> BoxFuture<'_, Result<Value, StageError>> {
                Box::pin(async move { out($f(ctx, parse($stage, input)?).await?) })
            }
        };
    }

    handler!(plan, Stage::Plan, plan::plan);
    handler!(extract_chunk, Stage::ExtractChunk, extract_chunk::extract_chunk);
    handler!(encode, Stage::Encode, encode::encode);
    handler!(encrypt, Stage::Encrypt, encrypt::encrypt);
    handler!(deliver, Stage::Deliver, deliver::deliver);
    handler!(record_receipt, Stage::RecordReceipt, record_receipt::record_receipt);
    handler!(record_failure, Stage::RecordFailure, record_failure::record_failure);
}

fn parse<T: DeserializeOwned>(stage: Stage, input: Value) -> Result<T, StageError> {
    serde_path_to_error::deserialize(input)
        .map_err(|e| StageError::invalid(format!("{}: not a valid input at `{}`: {}", stage.name(), e.path(), e.inner())))
}

fn out<T: Serialize>(v: T) -> Result<Value, StageError> {
    serde_json::to_value(v).map_err(|e| StageError::internal(e.to_string()))
}

/// On Lambda a stage's error name is the runtime's `errorType`: what the state machine's
/// `Retry` and `Catch` match on.
impl From<StageError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(e: StageError) -> Self {
        Self { error_type: e.name.as_str().to_string(), error_message: e.message }
    }
}
