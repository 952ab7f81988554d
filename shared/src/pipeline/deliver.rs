//! Deliver: hand the files to one destination and return its receipt. The state machine maps
//! this stage over the export's destinations, each with its own retries. The download link is
//! the destination every export has: its files stay in the blob store, fetched through expiring
//! links.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::mark;
use super::{StageContext, StageError, load_active};
use crate::model::{DeliveredFile, Delivery, ResultFile, Step};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverInput {
    pub tenant: String,
    pub export_id: String,
    /// The destination's position among the export's destinations.
    pub index: u32,
    /// The destination, as the plan listed it (`{"type": "download"}`).
    pub destination: Value,
    pub files: Vec<ResultFile>,
}

pub async fn deliver(ctx: &StageContext, input: DeliverInput) -> Result<Delivery, StageError> {
    let DeliverInput { tenant, export_id, index, destination, files } = input;
    load_active(ctx, &tenant, &export_id).await?;
    mark(ctx, &tenant, &export_id, Step::Deliver, "delivering".into(), None).await?;
    let kind = destination.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "download" => {
            for f in &files {
                if ctx.blobs.head(&f.key).await?.is_none() {
                    return Err(StageError::internal(format!("the file {} is missing", f.name)));
                }
            }
        }
        other => return Err(StageError::invalid(format!("destination {index}: the type `{other}` is not known"))),
    }
    Ok(Delivery {
        index,
        kind,
        status: "delivered".into(),
        location: Some(format!("/v1/exports/{export_id}/download")),
        files: files.iter().map(|f| DeliveredFile { name: f.name.clone(), size: f.size, sha256: f.sha256.clone() }).collect(),
        delivered_at: Utc::now(),
    })
}
