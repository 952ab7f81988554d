//! Lambda: the `delete_recipient_key` API route.

use egress::api::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    egress::lambda::run_route(Route::DeleteRecipientKey).await
}
