//! Schedules: when a recurring export fires, and which time window each run exports.
//!
//! - [`cron`]: five-field cron expressions and presets;
//! - [`fires`]: the fires of an expression in a time zone, with the daylight-saving contract
//!   (a wall time in a spring-forward gap runs once at the gap's end, however many of the
//!   expression's times fall in it; a wall time in a fall-back fold runs at its first
//!   occurrence only; a day a month lacks is skipped), and each fire's run id;
//! - [`warnings`]: what to tell a user about a schedule when it is created;
//! - [`eventbridge`]: the same schedule as EventBridge Scheduler expressions;
//! - [`window`]: the time window of a run, on the zone's calendar.
//!
//! The contract is described for users in docs/schedules.md.

pub mod cron;
pub mod eventbridge;
pub mod fires;
pub mod warnings;
pub mod window;
pub mod zone;

pub use cron::{CronError, CronExpr, CronField};
pub use fires::{Fire, FireKind, Fires, fire_key, fires, fires_between, next_fires};
pub use warnings::warnings;
pub use window::{TimeWindow, Window, WindowError};
