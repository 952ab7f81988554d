//! Lambda: the `resume_schedule` API route.

use egress::api::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    egress::lambda::run_route(Route::ResumeSchedule).await
}
