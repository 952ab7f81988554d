//! Plan: split the source into chunks, write the chunk manifest, mark the export running.

use serde::{Deserialize, Serialize};

use super::{ChunkManifest, ExportRef, StageContext, StageError, load_active};
use crate::blob::keys;
use crate::model::{ExportStatus, ResultFile, Step};
use crate::source::{self, SourceContext};
use crate::store::{UpdateError, update_export};
use crate::transform::RowPipeline;

/// One item of the Map over chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkItem {
    pub tenant: String,
    pub export_id: String,
    pub index: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    pub tenant: String,
    pub export_id: String,
    pub chunks_total: u32,
    /// Blob key of the JSON array of [`ChunkItem`]s: a Distributed Map's ItemReader reads it
    /// (the list stays out of the state's document, which Step Functions caps at 256 KB).
    pub items_key: String,
    /// Chunks extracted at once (the Map's `MaxConcurrencyPath`).
    pub max_concurrency: u32,
    /// Where the files go, in order (the Deliver Map's items: `{"index", "type"}`).
    pub destinations: Vec<serde_json::Value>,
    /// A redelivery run: the state machine skips extract, encode and encrypt and delivers
    /// `files`, the ones the export has, to the one destination listed.
    pub redeliver: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ResultFile>,
}

pub async fn plan(ctx: &StageContext, input: ExportRef) -> Result<PlanOutput, StageError> {
    let ExportRef { tenant, export_id } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    let destination = |i: usize, d: &crate::model::DestinationSpec| serde_json::json!({"index": i, "type": d.target.kind()});
    if let Some(index) = export.redelivery {
        let (Some(result), Some(d)) = (&export.result, export.spec.destinations.get(index as usize)) else {
            return Err(StageError::invalid(format!("nothing to deliver again to destination {index}: no files or no such destination")));
        };
        mark(ctx, &tenant, &export_id, Step::Deliver, format!("delivering again to destination {index}"), None).await?;
        return Ok(PlanOutput {
            items_key: String::new(),
            max_concurrency: 1,
            destinations: vec![destination(index as usize, d)],
            chunks_total: 0,
            redeliver: true,
            files: result.files.clone(),
            tenant,
            export_id,
        });
    }
    mark(ctx, &tenant, &export_id, Step::Plan, "planning chunks".into(), None).await?;
    // A retried or resumed run keeps the plan it made: chunk numbers must not move.
    let manifest = match ChunkManifest::load(ctx.blobs.as_ref(), &tenant, &export_id).await? {
        Some(m) => m,
        None => {
            let sctx = SourceContext { blobs: ctx.blobs.as_ref(), dataset_roots: &ctx.settings.dataset_roots, tenant: &tenant };
            let schema = source::schema(sctx, &export.spec).await?;
            let pipeline = RowPipeline::build(&schema, &export.spec).map_err(|e| StageError::invalid(e.to_string()))?;
            let sorted = !export.spec.sort.is_empty();
            let rows = if sorted { ctx.settings.sort_chunk_rows } else { ctx.settings.chunk_rows };
            let chunks = source::plan(sctx, &export.spec, rows).await?;
            let columns = pipeline.output_schema.fields().iter().map(|f| f.name().clone()).collect();
            let m = ChunkManifest { chunks, columns, sorted };
            let bytes = serde_json::to_vec(&m).map_err(|e| StageError::internal(e.to_string()))?;
            ctx.blobs.put_bytes(&keys::manifest(&tenant, &export_id), bytes.into()).await?;
            m
        }
    };
    let total = manifest.chunks.len() as u32;
    let items_key = keys::chunk_items(&tenant, &export_id);
    if ctx.blobs.head(&items_key).await?.is_none() {
        let items: Vec<ChunkItem> =
            (0..total).map(|index| ChunkItem { tenant: tenant.clone(), export_id: export_id.clone(), index }).collect();
        let bytes = serde_json::to_vec(&items).map_err(|e| StageError::internal(e.to_string()))?;
        ctx.blobs.put_bytes(&items_key, bytes.into()).await?;
    }
    mark(ctx, &tenant, &export_id, Step::ExtractChunk, format!("reading {total} chunks"), Some(total)).await?;
    Ok(PlanOutput {
        items_key,
        max_concurrency: ctx.settings.max_concurrency.max(1) as u32,
        destinations: export.spec.destinations.iter().enumerate().map(|(i, d)| destination(i, d)).collect(),
        chunks_total: total,
        redeliver: false,
        files: Vec::new(),
        tenant,
        export_id,
    })
}

/// Move an active export to `running` at `step` (a conditional write).
pub(crate) async fn mark(
    ctx: &StageContext,
    tenant: &str,
    id: &str,
    step: Step,
    description: String,
    chunks_total: Option<u32>,
) -> Result<(), StageError> {
    let res = update_export(ctx.store.as_ref(), tenant, id, |e| {
        if !ExportStatus::ACTIVE.contains(&e.status) {
            return Err(e.status);
        }
        if e.status == ExportStatus::Pending {
            e.status = ExportStatus::Running;
            e.started_at.get_or_insert_with(chrono::Utc::now);
        }
        if let Some(t) = chunks_total {
            e.progress.chunks_total = t;
        }
        e.progress.step = step;
        e.progress.step_description = description.clone();
        e.progress.recompute_percent();
        Ok(())
    })
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(UpdateError::Refused(ExportStatus::Paused)) => Err(StageError::new(super::ErrorName::Paused, "the export is paused")),
        Err(UpdateError::Refused(s)) => Err(StageError::new(super::ErrorName::Cancelled, format!("the export is {}", s.as_str()))),
        Err(UpdateError::NotFound) => Err(StageError::new(super::ErrorName::NotFound, "the export no longer exists")),
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}
