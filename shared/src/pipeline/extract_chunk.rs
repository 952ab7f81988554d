//! ExtractChunk: read one chunk, filter and select, and write it as a part (encoded rows) or,
//! when sorting, as a sorted run. Idempotent: a chunk already recorded is not done again.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use super::plan::ChunkItem;
use super::{ChunkManifest, ErrorName, StageContext, StageError, load_active};
use crate::blob::{LocalFile, keys};
use crate::format::parquet::PartWriter;
use crate::format::{Layout, batches, layout, row_encoder};
use crate::model::{ChunkRecord, ExportSpec};
use crate::source::{self, ChunkSource, SourceContext};
use crate::transform::RowPipeline;
use crate::transform::sort::{SortSpec, write_run};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractChunkOutput {
    pub index: u32,
    pub rows: u64,
    pub bytes: u64,
    /// True when an earlier attempt had already finished this chunk.
    pub already_done: bool,
}

/// Encoded bytes buffered before a write.
const FLUSH_BYTES: usize = 4 << 20;
/// Batches between two checks that the export is still wanted.
const CHECK_EVERY: usize = 16;

pub async fn extract_chunk(ctx: &StageContext, input: ChunkItem) -> Result<ExtractChunkOutput, StageError> {
    let ChunkItem { tenant, export_id, index } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    if let Some(done) = ctx.store.list_chunks(&tenant, &export_id).await?.into_iter().find(|c| c.index == index) {
        return Ok(ExtractChunkOutput { index, rows: done.rows, bytes: done.bytes, already_done: true });
    }
    let manifest = ChunkManifest::load(ctx.blobs.as_ref(), &tenant, &export_id)
        .await?
        .ok_or_else(|| StageError::internal("the chunk manifest is missing: plan did not run"))?;
    let chunk = manifest
        .chunks
        .get(index as usize)
        .cloned()
        .ok_or_else(|| StageError::internal(format!("chunk {index} is not in the manifest")))?;
    let sctx = SourceContext { blobs: ctx.blobs.as_ref(), dataset_roots: &ctx.settings.dataset_roots, tenant: &tenant };
    let schema = source::schema(sctx, &export.spec).await?;
    let local = source::localize(ctx.blobs.as_ref(), &chunk).await?;
    let tmp = tempfile::Builder::new().prefix("part-").tempfile_in(&ctx.settings.work_dir)?.into_temp_path();
    let out = tmp.to_path_buf();
    let spec = export.spec.clone();
    let (store, t, id) = (ctx.store.clone(), tenant.clone(), export_id.clone());
    let handle = tokio::runtime::Handle::current();
    let stop = move || -> bool {
        match handle.block_on(store.get_export(&t, &id)) {
            Ok(Some(e)) => !crate::model::ExportStatus::ACTIVE.contains(&e.status),
            Ok(None) => true,
            Err(_) => false,
        }
    };
    let sorted = manifest.sorted;
    let hash_key = super::field_hash_key(ctx, &tenant, &spec).await?;
    let (rows, _) =
        tokio::task::spawn_blocking(move || write_part(&spec, &schema, &chunk, local.as_ref(), sorted, None, hash_key, &out, &stop))
            .await??;
    let part_key = keys::part(&tenant, &export_id, index);
    let bytes = ctx.blobs.put_file(&part_key, &tmp).await?;
    let record = ChunkRecord { index, rows, bytes, part_key };
    ctx.store.record_chunk(&tenant, &export_id, &record).await?;
    Ok(ExtractChunkOutput { index, rows, bytes, already_done: false })
}

/// Read a chunk and write its rows to `out`: encoded rows, or a sorted run. `limit` overrides
/// the spec's `max_rows` (the encode stage uses it to cut the last part short); `hash_key` is
/// the tenant's salt when fields are hashed. Returns rows and bytes written. Blocking.
#[allow(clippy::too_many_arguments)]
pub fn write_part(
    spec: &ExportSpec,
    schema: &SchemaRef,
    chunk: &ChunkSource,
    local: Option<&LocalFile>,
    sorted: bool,
    limit: Option<u64>,
    hash_key: Option<[u8; 32]>,
    out: &Path,
    should_stop: &dyn Fn() -> bool,
) -> Result<(u64, u64), StageError> {
    let max_rows = limit.or(spec.max_rows);
    let mut pipe_spec = spec.clone();
    // A sorted chunk keeps its top rows after sorting, not its first rows.
    pipe_spec.max_rows = if sorted { None } else { max_rows };
    // Parquet into Parquet with the columns as they are: text is read as string views, not
    // copied out of the source's pages, and written as the text it is (a tenth less work).
    let views = !sorted
        && spec.fields.is_empty()
        && !spec.splits()
        && matches!(chunk, ChunkSource::Parquet { .. })
        && matches!(layout(&spec.format.0), Layout::Parquet);
    let schema = if views { Arc::new(source::string_views(schema)) } else { Arc::clone(schema) };
    let schema = &schema;
    let mut pipeline = RowPipeline::build(schema, &pipe_spec).map_err(|e| StageError::invalid(e.to_string()))?;
    if let Some(k) = hash_key {
        pipeline.set_hash_key(k);
    }
    pipeline.set_row_place(format!("of the selected rows of {}", describe(chunk)));
    let batches = source::read_chunk(spec, schema, chunk, local, &pipeline.read_columns, views)?;
    let stopped = || StageError::new(ErrorName::Cancelled, "the export stopped while the chunk was read");
    if sorted {
        let read_schema: SchemaRef = Arc::new(pipeline.read_schema_of(schema));
        let mut kept = Vec::new();
        for (i, b) in batches.enumerate() {
            if i % CHECK_EVERY == CHECK_EVERY - 1 && should_stop() {
                return Err(stopped());
            }
            if let Some(f) = pipeline.filter(b?)? {
                kept.push(f);
            }
        }
        let sort = SortSpec::build(&read_schema, &spec.sort).map_err(|e| StageError::invalid(e.to_string()))?;
        let mut all = sort.sort(&read_schema, &kept)?;
        drop(kept);
        if let Some(m) = max_rows
            && all.num_rows() as u64 > m
        {
            all = all.slice(0, m as usize);
        }
        let bytes = write_run(out, &all)?;
        return Ok((all.num_rows() as u64, bytes));
    }
    let mut sink = PartSink::new(spec, &pipeline.output_schema, out)?;
    let mut rows = 0u64;
    // Where the time goes, for the debug log: reading, filtering, encoding and writing.
    let mut spent = [std::time::Duration::ZERO; 3];
    let mut batches = batches;
    let mut i = 0usize;
    loop {
        let t = Instant::now();
        let Some(b) = batches.next() else { break };
        let b = b?;
        spent[0] += t.elapsed();
        if i % CHECK_EVERY == CHECK_EVERY - 1 && should_stop() {
            return Err(stopped());
        }
        i += 1;
        let t = Instant::now();
        let Some(filtered) = pipeline.filter(b)? else { break };
        if filtered.num_rows() == 0 {
            continue;
        }
        let projected = pipeline.project(&filtered)?;
        spent[1] += t.elapsed();
        let t = Instant::now();
        sink.write(&projected)?;
        spent[2] += t.elapsed();
        rows += projected.num_rows() as u64;
    }
    let bytes = sink.finish()?;
    tracing::debug!(
        rows,
        bytes,
        read_ms = spent[0].as_millis() as u64,
        filter_ms = spent[1].as_millis() as u64,
        write_ms = spent[2].as_millis() as u64,
        "chunk written"
    );
    Ok((rows, bytes))
}

/// A chunk in words, for the row an error names: `source rows 1 to 500`, `file x.parquet, row
/// groups 2 to 3`.
fn describe(chunk: &ChunkSource) -> String {
    let name = |f: &source::FileRef| match f {
        source::FileRef::Blob { key } => key.rsplit('/').next().unwrap_or(key).to_string(),
        source::FileRef::Local { path } => path.display().to_string(),
    };
    match chunk {
        ChunkSource::Inline { start, end } => format!("source rows {} to {end}", start + 1),
        ChunkSource::Parquet { file, row_groups, .. } => match (row_groups.first(), row_groups.last()) {
            (Some(a), Some(b)) if a != b => format!("file {}, row groups {a} to {b} (from 0)", name(file)),
            (Some(a), _) => format!("file {}, row group {a} (from 0)", name(file)),
            _ => format!("file {}", name(file)),
        },
        ChunkSource::Csv { file } | ChunkSource::Jsonl { file } => format!("file {}", name(file)),
    }
}

/// Where a chunk's rows go: encoded rows of a row format, a Parquet file of their own, or
/// Arrow IPC for a format written from batches.
enum PartSink {
    Rows { encoder: Box<dyn crate::format::RowEncoder>, file: std::fs::File, buf: Vec<u8>, bytes: u64 },
    Parquet(Box<PartWriter<std::io::BufWriter<std::fs::File>>>),
    Batches(Box<batches::PartWriter>),
}

impl PartSink {
    fn new(spec: &ExportSpec, schema: &SchemaRef, out: &Path) -> Result<Self, StageError> {
        // A split export's files are cut at row counts the parts do not know: its parts are
        // batches, whatever the format.
        let layout = if spec.splits() { Layout::Batches } else { layout(&spec.format.0) };
        Ok(match layout {
            Layout::Rows => {
                let encoder =
                    row_encoder(&spec.format, schema).ok_or_else(|| StageError::internal("a row format without a row encoder"))?;
                let file = std::fs::File::create(out)?;
                PartSink::Rows { encoder, file, buf: Vec::with_capacity(FLUSH_BYTES + (1 << 20)), bytes: 0 }
            }
            Layout::Parquet => {
                let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
                PartSink::Parquet(Box::new(PartWriter::new(file, Arc::clone(schema), &spec.format.0)?))
            }
            Layout::Batches => PartSink::Batches(Box::new(batches::PartWriter::create(out, schema)?)),
        })
    }

    fn write(&mut self, batch: &arrow::record_batch::RecordBatch) -> Result<(), StageError> {
        match self {
            PartSink::Rows { encoder, file, buf, bytes } => {
                encoder.encode_batch(batch, buf)?;
                if buf.len() >= FLUSH_BYTES {
                    file.write_all(buf)?;
                    *bytes += buf.len() as u64;
                    buf.clear();
                }
            }
            PartSink::Parquet(w) => w.write(batch)?,
            PartSink::Batches(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Write what is left; returns the part's size.
    fn finish(self) -> Result<u64, StageError> {
        match self {
            PartSink::Rows { mut encoder, mut file, mut buf, bytes } => {
                encoder.finish_part(&mut buf)?;
                file.write_all(&buf)?;
                Ok(bytes + buf.len() as u64)
            }
            PartSink::Parquet(w) => {
                let (out, _) = (*w).finish()?;
                let file = out.into_inner().map_err(|e| StageError::transient(e.to_string()))?;
                Ok(file.metadata()?.len())
            }
            PartSink::Batches(w) => Ok((*w).finish()?),
        }
    }
}
