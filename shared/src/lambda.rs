//! What every Lambda `main` does: JSON logs, adapters from the environment, then one API route
//! ([`run_route`]), one pipeline stage ([`run_stage`]) or the schedules' fire function
//! ([`run_schedule_fire`]).

use std::sync::Arc;

use lambda_http::{Error, LambdaEvent, Request, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::api::Route;
use crate::pipeline::stage::Handler;
use crate::pipeline::{Stage, StageError};
use crate::services::Services;

/// Build the adapters named by the environment. `EGRESS_BACKEND=aws` (what the SAM template
/// sets) uses DynamoDB, S3, Step Functions and KMS as [`crate::aws::AwsSettings`] describes;
/// `EGRESS_BACKEND=local` (the default, in builds with the `local` feature) uses the data
/// folder `EGRESS_DATA_DIR`, with `EGRESS_PUBLIC_URL` as the base of download links.
pub async fn services_from_env() -> Result<Arc<Services>, Error> {
    match std::env::var("EGRESS_BACKEND").unwrap_or_else(|_| "local".into()).as_str() {
        "aws" => Ok(crate::aws::services_from_env().await?),
        #[cfg(feature = "local")]
        "local" => {
            use crate::local::{LocalHost, LocalOptions};
            let data_dir = std::env::var("EGRESS_DATA_DIR").unwrap_or_else(|_| "/tmp/egress".into());
            let public_url = std::env::var("EGRESS_PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
            let host = LocalHost::open(LocalOptions { data_dir: data_dir.into(), public_url, dataset_roots: Vec::new() })?;
            Ok(host.services.clone())
        }
        #[cfg(not(feature = "local"))]
        "local" => Err("EGRESS_BACKEND `local` is not in this build (built without the `local` feature); use `aws`".into()),
        other => Err(format!("EGRESS_BACKEND `{other}` is not known; use `aws` or `local`").into()),
    }
}

/// A stage function's adapters: on AWS the store, the blobs and the keys (no orchestrator, so
/// a stage binary carries no Step Functions client).
async fn stage_context_from_env() -> Result<crate::pipeline::StageContext, Error> {
    match std::env::var("EGRESS_BACKEND").unwrap_or_else(|_| "local".into()).as_str() {
        "aws" => Ok(crate::aws::stage_context_from_env().await?),
        #[cfg(feature = "local")]
        "local" => Ok(services_from_env().await?.stage_context()),
        #[cfg(not(feature = "local"))]
        "local" => Err("EGRESS_BACKEND `local` is not in this build (built without the `local` feature); use `aws`".into()),
        other => Err(format!("EGRESS_BACKEND `{other}` is not known; use `aws` or `local`").into()),
    }
}

/// Serve one API route as a Lambda function behind API Gateway.
pub async fn run_route(route: Route) -> Result<(), Error> {
    crate::telemetry::init_json();
    let services = services_from_env().await?;
    lambda_http::run(service_fn(move |req: Request| {
        let services = services.clone();
        async move { Ok::<_, std::convert::Infallible>(route.call(&services, req).await) }
    }))
    .await
}

/// Run one pipeline stage as a Lambda function invoked by Step Functions. Its input and output
/// are the stage's JSON documents; a failure's `errorType` is the stage's error name. `handler`
/// is the stage's own (`pipeline::stage::handlers::encode`), so that the binary carries only
/// that stage's code.
pub async fn run_stage(stage: Stage, handler: Handler) -> Result<(), Error> {
    crate::telemetry::init_json();
    let ctx = stage_context_from_env().await?;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        let field = |k: &str| event.payload.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let span = tracing::info_span!("stage", stage = stage.name(), export_id = %field("export_id"), tenant = %field("tenant"), request_id = %event.context.request_id);
        async move {
            let result: Result<Value, StageError> = handler(&ctx, event.payload).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e.name.as_str(), cause = %e.message, "stage failed");
            }
            result
        }
        .instrument(span)
    }))
    .await
}

/// The fire function that EventBridge Scheduler invokes for each schedule's fire (and for the
/// periodic sweep): see [`crate::scheduler::fire`].
pub async fn run_schedule_fire() -> Result<(), Error> {
    crate::telemetry::init_json();
    let services = services_from_env().await?;
    let clock: Arc<dyn crate::scheduler::Clock> = Arc::new(crate::scheduler::SystemClock);
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (services, clock) = (services.clone(), clock.clone());
        let field = |k: &str| event.payload.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let span = tracing::info_span!("schedule_fire", schedule_id = %field("schedule_id"), tenant = %field("tenant"), scheduled_time = %field("scheduled_time"), request_id = %event.context.request_id);
        async move {
            let result = crate::scheduler::fire::handle(services, clock, event.payload).await;
            match &result {
                Ok(report) => tracing::info!(%report, "schedule fire handled"),
                Err(e) => tracing::warn!(error = %e, "schedule fire failed"),
            }
            result.map_err(Error::from)
        }
        .instrument(span)
    }))
    .await
}
