//! Encode: make the deliverable file from the parts. Row formats: header, the parts in chunk
//! order, footer; a sorted export merges its runs instead. Compression and the SHA-256 are
//! applied on the way to the file.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::extract_chunk::write_part;
use super::plan::mark;
use super::{ChunkManifest, ExportRef, StageContext, StageError, load_active};
use crate::blob::keys;
use crate::format::row_encoder;
use crate::model::{ChunkRecord, Export, ResultFile, Step};
use crate::package::{Compressor, HashingWriter, content_type};
use crate::source::{self, SourceContext};
use crate::transform::RowPipeline;
use crate::transform::sort::{Merge, SortSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeOutput {
    pub tenant: String,
    pub export_id: String,
    pub files: Vec<ResultFile>,
}

/// Where the bytes of the file come from, in order.
enum Body {
    /// Encoded parts; the last may be re-made shorter to honour `max_rows`.
    Parts(Vec<std::path::PathBuf>),
    /// Sorted runs to merge.
    Runs(Vec<std::path::PathBuf>),
}

pub async fn encode(ctx: &StageContext, input: ExportRef) -> Result<EncodeOutput, StageError> {
    let ExportRef { tenant, export_id } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    let manifest = ChunkManifest::load(ctx.blobs.as_ref(), &tenant, &export_id)
        .await?
        .ok_or_else(|| StageError::internal("the chunk manifest is missing: plan did not run"))?;
    let records = ctx.store.list_chunks(&tenant, &export_id).await?;
    if records.len() != manifest.chunks.len() {
        return Err(StageError::internal(format!("{} of {} chunks are done: encode ran too early", records.len(), manifest.chunks.len())));
    }
    mark(ctx, &tenant, &export_id, Step::Encode, "writing the file".into(), None).await?;

    // Local copies of the parts (the parts themselves on the embedded default).
    let mut locals = Vec::with_capacity(records.len());
    for r in &records {
        locals.push(ctx.blobs.local_file(&r.part_key).await?);
    }
    let paths = locals.iter().map(|l| l.path.clone()).collect::<Vec<_>>();
    let mut rows: u64 = records.iter().map(|r| r.rows).sum();
    let mut body = if manifest.sorted { Body::Runs(paths) } else { Body::Parts(paths) };
    // Each sorted run keeps up to `max_rows`; the merge keeps `max_rows` in all.
    if manifest.sorted
        && let Some(max) = export.spec.max_rows
    {
        rows = rows.min(max);
    }

    // `max_rows` without sorting: keep whole parts while they fit, re-make the one that
    // crosses the limit with just the rows still allowed, and drop the rest.
    let mut cut_part = None;
    if let (Some(max), Body::Parts(paths)) = (export.spec.max_rows, &mut body)
        && rows > max
    {
        let (keep, need) = parts_within(&records, max);
        paths.truncate(keep);
        if need > 0 {
            let chunk = manifest.chunks[keep].clone();
            let sctx = SourceContext { blobs: ctx.blobs.as_ref(), dataset_roots: &ctx.settings.dataset_roots, tenant: &tenant };
            let schema = source::schema(sctx, &export.spec).await?;
            let local = source::localize(ctx.blobs.as_ref(), &chunk).await?;
            let tmp = tempfile::Builder::new().prefix("cut-").tempfile_in(&ctx.settings.work_dir)?.into_temp_path();
            let (spec, out) = (export.spec.clone(), tmp.to_path_buf());
            tokio::task::spawn_blocking(move || write_part(&spec, &schema, &chunk, local.as_ref(), false, Some(need), &out, &|| false))
                .await??;
            paths.push(tmp.to_path_buf());
            cut_part = Some(tmp);
        }
        rows = max;
    }

    let sort_schema = if manifest.sorted {
        let sctx = SourceContext { blobs: ctx.blobs.as_ref(), dataset_roots: &ctx.settings.dataset_roots, tenant: &tenant };
        let schema = source::schema(sctx, &export.spec).await?;
        let p = RowPipeline::build(&schema, &export.spec).map_err(|e| StageError::invalid(e.to_string()))?;
        Some((Arc::new(p.read_schema_of(&schema)), p.output_indices().to_vec(), p.output_schema.clone()))
    } else {
        None
    };

    let out = tempfile::Builder::new().prefix("file-").tempfile_in(&ctx.settings.work_dir)?.into_temp_path();
    let out_path = out.to_path_buf();
    let exp = export.clone();
    let columns = manifest.columns.clone();
    let (sha256, size) = tokio::task::spawn_blocking(move || -> Result<(String, u64), StageError> {
        let file = std::fs::File::create(&out_path)?;
        let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let mut w = Compressor::new(hashing, exp.spec.compression);
        let mut encoder = row_encoder(&exp.spec.format);
        w.write_all(&encoder.header(&columns))?;
        match body {
            Body::Parts(paths) => {
                let mut skip = encoder.first_row_skip();
                for p in paths {
                    let mut f = std::fs::File::open(&p)?;
                    if skip > 0 {
                        let len = f.metadata()?.len();
                        if len == 0 {
                            continue;
                        }
                        let mut drop = vec![0u8; skip];
                        f.read_exact(&mut drop)?;
                        skip = 0;
                    }
                    std::io::copy(&mut f, &mut w)?;
                }
            }
            Body::Runs(paths) => {
                let (read_schema, output, output_schema) = sort_schema.expect("sorted exports carry their schema");
                // Runs hold the read columns (sort keys included); the file gets the output columns.
                let spec = SortSpec::build(&read_schema, &exp.spec.sort).map_err(|e| StageError::invalid(e.to_string()))?;
                let mut merge = Merge::open(spec, &read_schema, &paths, exp.spec.max_rows)?;
                let mut buf = Vec::with_capacity(1 << 20);
                let mut skip = encoder.first_row_skip();
                while let Some(batch) = merge.next_batch()? {
                    let projected = batch.project(&output)?;
                    let projected = arrow::record_batch::RecordBatch::try_new(Arc::clone(&output_schema), projected.columns().to_vec())?;
                    encoder.encode_batch(&projected, &mut buf)?;
                    w.write_all(&buf[skip.min(buf.len())..])?;
                    if !buf.is_empty() {
                        skip = 0;
                    }
                    buf.clear();
                }
            }
        }
        w.write_all(&encoder.footer())?;
        let hashing = w.finish()?;
        let (mut buffered, sha, size) = hashing.finish();
        buffered.flush()?;
        Ok((sha, size))
    })
    .await??;
    drop(cut_part);

    let name = file_name(&export);
    let key = keys::result_file(&tenant, &export_id, &name);
    ctx.blobs.put_file(&key, &out).await?;
    let file = ResultFile {
        name,
        size,
        rows,
        sha256,
        content_type: content_type(export.spec.format.kind().content_type(), export.spec.compression),
        key,
    };
    Ok(EncodeOutput { tenant, export_id, files: vec![file] })
}

/// How many whole parts fit in `max` rows, and how many rows the next part must give.
fn parts_within(records: &[ChunkRecord], max: u64) -> (usize, u64) {
    let mut total = 0u64;
    for (i, r) in records.iter().enumerate() {
        if total + r.rows > max {
            return (i, max - total);
        }
        total += r.rows;
    }
    (records.len(), 0)
}

/// `<name as a slug>.<ext>[.gz]`, e.g. `flagged-transactions-2026-10.csv`.
pub fn file_name(export: &Export) -> String {
    let mut slug = String::new();
    for c in export.name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "export" } else { &slug[..slug.len().min(80)] };
    format!("{slug}.{}{}", export.spec.format.kind().extension(), export.spec.compression.suffix())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rows: u64) -> ChunkRecord {
        ChunkRecord { index: 0, rows, bytes: 0, part_key: String::new() }
    }

    #[test]
    fn limit_cuts_the_crossing_part() {
        let r = [rec(10), rec(10), rec(10)];
        assert_eq!(parts_within(&r, 25), (2, 5));
        assert_eq!(parts_within(&r, 20), (2, 0));
        assert_eq!(parts_within(&r, 5), (0, 5));
        assert_eq!(parts_within(&r, 40), (3, 0));
    }
}
