//! What every Lambda `main` does: logs, adapters from the environment, run one route.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};

use crate::api::Route;
use crate::local::{LocalHost, LocalOptions};
use crate::services::Services;

/// Build the adapters named by the environment. `EGRESS_BACKEND=local` (the only backend until
/// the AWS adapters land) uses `EGRESS_DATA_DIR`; `EGRESS_PUBLIC_URL` is the base of download
/// links.
pub fn services_from_env() -> Result<Arc<Services>, Error> {
    match std::env::var("EGRESS_BACKEND").unwrap_or_else(|_| "local".into()).as_str() {
        "local" => {
            let data_dir = std::env::var("EGRESS_DATA_DIR").unwrap_or_else(|_| "/tmp/egress".into());
            let public_url = std::env::var("EGRESS_PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
            let host = LocalHost::open(LocalOptions { data_dir: data_dir.into(), public_url, dataset_roots: Vec::new() })?;
            Ok(host.services.clone())
        }
        other => Err(format!("EGRESS_BACKEND `{other}` is not known; use `local`").into()),
    }
}

/// Serve one API route as a Lambda function behind API Gateway.
pub async fn run_route(route: Route) -> Result<(), Error> {
    crate::telemetry::init_json();
    let services = services_from_env()?;
    lambda_http::run(service_fn(move |req: Request| {
        let services = services.clone();
        async move { Ok::<_, std::convert::Infallible>(route.call(&services, req).await) }
    }))
    .await
}
