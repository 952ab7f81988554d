//! Logging: JSON lines on Lambda (CloudWatch), readable lines locally. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON logs for a Lambda function.
pub fn init_json() {
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter()).with_current_span(false).without_time().try_init();
}

/// Human-readable logs to stderr for the local host.
pub fn init_text() {
    let _ = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).try_init();
}
