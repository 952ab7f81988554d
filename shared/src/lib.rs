//! egress: a data export service. This crate is everything that is not a `main`: the model,
//! the API route functions, the pipeline stages, and the ports with their adapters. The
//! Lambda functions in `functions/` and the local host `egress` are thin mains over it.

pub mod api;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod blob;
pub mod config;
pub mod deliver;
pub mod format;
pub mod kms;
pub mod lambda;
#[cfg(feature = "local")]
pub mod local;
pub mod model;
pub mod notify;
pub mod orchestrate;
pub mod package;
pub mod pipeline;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod services;
pub mod source;
pub mod store;
pub mod synthetic;
pub mod telemetry;
pub mod transform;
