//! Lambda: the schedules' fire function, invoked by EventBridge Scheduler (one schedule per
//! egress schedule, and the periodic sweep).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    egress::lambda::run_schedule_fire().await
}
