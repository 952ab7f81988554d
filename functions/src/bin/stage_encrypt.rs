//! Lambda: the `encrypt` pipeline stage, a Task of `statemachines/export.asl.json`.

use egress::pipeline::Stage;
use egress::pipeline::stage::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    egress::lambda::run_stage(Stage::Encrypt, handlers::encrypt).await
}
