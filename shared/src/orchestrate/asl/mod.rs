//! A runner of Amazon States Language definitions, in process: the local host executes
//! `statemachines/export.asl.json`, the same JSON Step Functions runs on AWS, so the flow that
//! is tested here is the flow that runs there.
//!
//! Supported: Task (dispatched by resource to a [`TaskHandler`]), Pass, Choice, Wait, Succeed,
//! Fail (with `ErrorPath`/`CausePath`), Parallel, Map (inline; distributed with an S3
//! `ItemReader` of JSON or JSONL, `MaxConcurrency[Path]`, `ToleratedFailurePercentage` and
//! `ToleratedFailureCount`), Retry (`IntervalSeconds`, `BackoffRate`, `MaxDelaySeconds`,
//! `MaxAttempts`, `JitterStrategy`), Catch with `ResultPath`, `InputPath`, `Parameters`,
//! `ItemSelector`, `ResultSelector`, `ResultPath`, `OutputPath`, `TimeoutSeconds`, the context
//! object and the intrinsic functions in [`intrinsic`]. Anything else (JSONata, `Assign`,
//! heartbeats, `ItemBatcher`, `ResultWriter`, JSONPath filters) is refused when the definition
//! is loaded.

pub mod choice;
pub mod intrinsic;
pub mod path;
pub mod runner;
pub mod states;
pub mod template;

pub use runner::{Event, EventKind, Execution, Failure, Outcome, Runner, TaskHandler};
