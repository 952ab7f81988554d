//! Encode: make the deliverable file from the parts. Row formats: header, the parts in chunk
//! order, footer; a sorted export merges its runs instead. Compression and the SHA-256 are
//! applied on the way to the file (the hash on a thread of its own).
//!
//! Encode takes the parts in chunk order as they are recorded, so it can run beside the
//! extraction (the local orchestrator starts it right after plan) or after it (a state
//! machine's Map; then every part is already there).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::extract_chunk::write_part;
use super::plan::mark;
use super::split::{self, SplitFile, Splitter};
use super::{ChunkManifest, ExportRef, StageContext, StageError, load_active};
use crate::blob::{BlobError, LocalFile, keys};
use crate::format::parquet::{Merger, PartWriter};
use crate::format::{FileContext, FileEncoder, Layout, batches, file_encoder, layout, row_encoder, xml};
use crate::model::{ChunkRecord, Export, FormatKind, ResultFile, Step};
use crate::package::{Compressor, HashingWriter, content_type};
use crate::source::{self, SourceContext};
use crate::store::Armed;
use crate::transform::RowPipeline;
use crate::transform::sort::{Merge, SortSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeOutput {
    pub tenant: String,
    pub export_id: String,
    pub files: Vec<ResultFile>,
}

pub async fn encode(ctx: &StageContext, input: ExportRef) -> Result<EncodeOutput, StageError> {
    let ExportRef { tenant, export_id } = input;
    let export = load_active(ctx, &tenant, &export_id).await?;
    let manifest = ChunkManifest::load(ctx.blobs.as_ref(), &tenant, &export_id)
        .await?
        .ok_or_else(|| StageError::internal("the chunk manifest is missing: plan did not run"))?;
    let sctx = SourceContext { blobs: ctx.blobs.as_ref(), dataset_roots: &ctx.settings.dataset_roots, tenant: &tenant };
    let schema = source::schema(sctx, &export.spec).await?;
    let out = tempfile::Builder::new().prefix("file-").tempfile_in(&ctx.settings.work_dir)?.into_temp_path();
    let hash_key = super::field_hash_key(ctx, &tenant, &export.spec).await?;
    let job =
        Job { ctx: ctx.clone(), export: export.clone(), manifest, schema, out: out.to_path_buf(), handle: Handle::current(), hash_key };
    let name = file_name(&export);
    let content_type = content_type(export.spec.format.kind().content_type(), export.spec.compression);
    if export.spec.splits() {
        let parts = tokio::task::spawn_blocking(move || job.run_split()).await??;
        let suffix = format!(".{}{}", export.spec.format.kind().extension(), export.spec.compression.of_rows().suffix());
        let mut files = Vec::new();
        for (i, p) in parts.into_iter().enumerate() {
            let name = split::part_name(&name, i + 1, &suffix);
            let key = keys::result_file(&tenant, &export_id, &name);
            let put = ctx.blobs.put_file(&key, &p.path).await;
            let _ = std::fs::remove_file(&p.path);
            put?;
            files.push(ResultFile {
                name,
                size: p.size,
                rows: p.rows,
                sha256: p.sha256,
                content_type: content_type.clone(),
                key,
                source_sha256: None,
            });
        }
        return Ok(EncodeOutput { tenant, export_id, files });
    }
    let (sha256, size, rows) = tokio::task::spawn_blocking(move || job.run()).await??;
    let key = keys::result_file(&tenant, &export_id, &name);
    ctx.blobs.put_file(&key, &out).await?;
    let file = ResultFile { name, size, rows, sha256, content_type, key, source_sha256: None };
    Ok(EncodeOutput { tenant, export_id, files: vec![file] })
}

/// The blocking part of encode.
struct Job {
    ctx: StageContext,
    export: Export,
    manifest: ChunkManifest,
    schema: SchemaRef,
    out: PathBuf,
    handle: Handle,
    /// The tenant's salt of hashed fields, if any.
    hash_key: Option<[u8; 32]>,
}

impl Job {
    fn tenant(&self) -> &str {
        &self.export.tenant
    }

    /// Wait until chunk `index` is recorded; returns its record and its part as a local file.
    /// Gives up when the export stops being wanted (cancelled, paused, failed, deleted).
    fn part(&self, index: u32, known: &mut Vec<ChunkRecord>) -> Result<(ChunkRecord, LocalFile), StageError> {
        let mut delay = Duration::from_millis(5);
        let signal = self.ctx.store.write_signal();
        loop {
            let armed = Armed::new(signal.as_deref());
            if let Some(r) = known.iter().find(|r| r.index == index) {
                return match self.handle.block_on(self.ctx.blobs.local_file(&r.part_key)) {
                    Ok(local) => Ok((r.clone(), local)),
                    // Recorded but gone (lost from the staging area): make it again from the source.
                    Err(BlobError::NotFound(_)) => Ok((r.clone(), LocalFile::temporary(self.remake_part(index, None)?))),
                    Err(e) => Err(e.into()),
                };
            }
            *known = self.handle.block_on(self.ctx.store.list_chunks(self.tenant(), &self.export.id))?;
            if known.iter().any(|r| r.index == index) {
                continue;
            }
            self.handle.block_on(load_active(&self.ctx, self.tenant(), &self.export.id))?;
            self.handle.block_on(armed.wait(delay));
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// Write the file, check it when the spec asks; returns its SHA-256, size and rows.
    fn run(self) -> Result<(String, u64, u64), StageError> {
        let written = self.write()?;
        if self.export.spec.format.kind() == FormatKind::Xml && self.export.spec.format.0.validate == Some(true) {
            self.mark(Step::Encode, "validating against the XSD")?;
            let bundle = self.xml_bundle()?;
            xml::check_file(&self.export.spec.format.0, Some(&bundle), &self.out, &self.ctx.settings.work_dir)?;
        }
        Ok(written)
    }

    /// The schema bundle of an XML export.
    fn xml_bundle(&self) -> Result<xml::Bundle, StageError> {
        let src = self.export.spec.format.0.xsd.as_ref().ok_or_else(|| StageError::invalid("format.xsd is missing"))?;
        let sctx = SourceContext { blobs: self.ctx.blobs.as_ref(), dataset_roots: &self.ctx.settings.dataset_roots, tenant: self.tenant() };
        match self.handle.block_on(xml::load_bundle(sctx, src)) {
            Ok(b) => Ok(b),
            Err(xml::BundleError::Invalid(e)) => Err(StageError::invalid(e.to_string())),
            Err(xml::BundleError::Storage(m)) => Err(StageError::transient(m)),
        }
    }

    fn mark(&self, step: Step, what: &str) -> Result<(), StageError> {
        self.handle.block_on(mark(&self.ctx, self.tenant(), &self.export.id, step, what.into(), None))
    }

    /// Write the file; returns its SHA-256, size and rows.
    fn write(&self) -> Result<(String, u64, u64), StageError> {
        match layout(&self.export.spec.format.0) {
            Layout::Rows => {}
            Layout::Parquet => {
                let hashing = HashingWriter::new(std::fs::File::create(&self.out)?);
                let (hashing, rows) = self.parquet(hashing)?;
                let (_, sha, size) = hashing.finish()?;
                return Ok((sha, size, rows));
            }
            Layout::Batches => {
                let rows = self.batches()?;
                let (sha, size) = hash_file(&self.out)?;
                return Ok((sha, size, rows));
            }
        }
        let hashing = HashingWriter::new(std::fs::File::create(&self.out)?);
        let output_schema =
            RowPipeline::build(&self.schema, &self.export.spec).map_err(|e| StageError::invalid(e.to_string()))?.output_schema;
        let mut encoder = row_encoder(&self.export.spec.format, &output_schema)
            .ok_or_else(|| StageError::internal("a row format without a row encoder"))?;
        let mut w = Compressor::new(hashing, self.export.spec.compression)?;
        w.write_all(&encoder.header(&self.manifest.columns))?;
        let rows = if self.manifest.sorted {
            self.merge_runs(&mut *encoder, &mut w)?
        } else {
            let mut skip = encoder.first_row_skip() as u64;
            let mut buf = Vec::new();
            self.each_part(|path| {
                let len = std::fs::metadata(path)?.len();
                if len > 0 {
                    w.append_file(path, skip.min(len), &mut buf)?;
                    skip = 0;
                }
                Ok(())
            })?
        };
        w.write_all(&encoder.footer(rows))?;
        let (_, sha, size) = w.finish()?.finish()?;
        Ok((sha, size, rows))
    }

    /// Parquet: the parts' row groups copied as they are, or (sorted) the merged runs written
    /// once more.
    fn parquet(&self, out: HashingWriter<std::fs::File>) -> Result<(HashingWriter<std::fs::File>, u64), StageError> {
        if self.manifest.sorted {
            let (pipeline, mut merge) = self.open_merge()?;
            let mut w = PartWriter::new(out, Arc::clone(&pipeline.output_schema), &self.export.spec.format.0)?;
            while let Some(batch) = merge.next_batch()? {
                w.write(&pipeline.project(&batch)?)?;
            }
            return Ok(w.finish()?);
        }
        let mut out = Some(out);
        let mut merger: Option<Merger<HashingWriter<std::fs::File>>> = None;
        self.each_part(|path| {
            let m = match merger.as_mut() {
                Some(m) => m,
                None => merger.insert(Merger::new(out.take().expect("taken once"), path)?),
            };
            m.append(path)?;
            Ok(())
        })?;
        let merger = merger.ok_or_else(|| StageError::internal("an export without chunks"))?;
        Ok(merger.finish()?)
    }

    fn file_context(&self) -> Result<FileContext, StageError> {
        let spec = &self.export.spec;
        Ok(FileContext {
            title: self.export.name.clone(),
            export_id: self.export.id.clone(),
            generated_at: chrono::Utc::now(),
            filters: spec.selection_lines(),
            spec: serde_json::to_value(spec).map_err(|e| StageError::internal(e.to_string()))?,
            work_dir: self.ctx.settings.work_dir.clone(),
        })
    }

    /// A split export: the batches in order, to files of at most the limits; each file is
    /// checked against the XSD when the spec asks.
    fn run_split(self) -> Result<Vec<SplitFile>, StageError> {
        let spec = &self.export.spec;
        let fctx = self.file_context()?;
        let (pipeline, mut merge) = if self.manifest.sorted {
            let (p, m) = self.open_merge()?;
            (p, Some(m))
        } else {
            (RowPipeline::build(&self.schema, spec).map_err(|e| StageError::invalid(e.to_string()))?, None)
        };
        let schema = pipeline.output_schema.clone();
        let mut make = |path: &Path| -> Result<Box<dyn FileEncoder>, StageError> { self.file_encoder_at(&schema, &fctx, path) };
        let mut splitter = Splitter::new(spec, schema.clone(), &fctx, &mut make);
        match merge.as_mut() {
            Some(m) => {
                while let Some(batch) = m.next_batch()? {
                    splitter.write(&pipeline.project(&batch)?)?;
                }
            }
            None => {
                self.each_part(|path| {
                    for batch in batches::read_part(path)? {
                        splitter.write(&batch?)?;
                    }
                    Ok(())
                })?;
            }
        }
        let files = splitter.finish()?;
        if spec.format.kind() == FormatKind::Xml && spec.format.0.validate == Some(true) {
            self.mark(Step::Encode, "validating against the XSD")?;
            let bundle = self.xml_bundle()?;
            for f in &files {
                xml::check_file(&spec.format.0, Some(&bundle), &f.path, &self.ctx.settings.work_dir)?;
            }
        }
        Ok(files)
    }

    /// A format written from batches: the parts' batches (or the merged runs) in order, to one
    /// encoder writing the file.
    fn batches(&self) -> Result<u64, StageError> {
        let spec = &self.export.spec;
        let fctx = self.file_context()?;
        let mut rows = 0u64;
        if self.manifest.sorted {
            let (pipeline, mut merge) = self.open_merge()?;
            let mut encoder = self.file_encoder(&pipeline.output_schema, &fctx)?;
            while let Some(batch) = merge.next_batch()? {
                let projected = pipeline.project(&batch)?;
                rows += projected.num_rows() as u64;
                encoder.write_batch(&projected)?;
            }
            encoder.finish()?;
            return Ok(rows);
        }
        let pipeline = RowPipeline::build(&self.schema, spec).map_err(|e| StageError::invalid(e.to_string()))?;
        let mut encoder = self.file_encoder(&pipeline.output_schema, &fctx)?;
        self.each_part(|path| {
            for batch in batches::read_part(path)? {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                encoder.write_batch(&batch)?;
            }
            Ok(())
        })?;
        encoder.finish()?;
        Ok(rows)
    }

    /// The encoder of a format written from batches; mapped XML compiles its mapping first.
    fn file_encoder(&self, schema: &SchemaRef, fctx: &FileContext) -> Result<Box<dyn FileEncoder>, StageError> {
        self.file_encoder_at(schema, fctx, &self.out)
    }

    fn file_encoder_at(&self, schema: &SchemaRef, fctx: &FileContext, out: &Path) -> Result<Box<dyn FileEncoder>, StageError> {
        let spec = &self.export.spec;
        if spec.format.kind() != FormatKind::Xml {
            return Ok(file_encoder(&spec.format, schema, fctx, out)?);
        }
        let sort: Vec<String> = spec.sort.iter().map(|k| k.column.clone()).collect();
        let prepared = xml::prepare(&spec.format.0, self.xml_bundle()?, schema, &sort).map_err(|e| StageError::invalid(e.to_string()))?;
        Ok(xml::mapped_encoder(prepared, schema, fctx, out)?)
    }

    fn mark_encoding(&self) -> Result<(), StageError> {
        self.handle.block_on(mark(&self.ctx, self.tenant(), &self.export.id, Step::Encode, "writing the file".into(), None))
    }

    /// Hand the parts to `append` in chunk order, as they become ready; returns the rows. With
    /// `max_rows`, whole parts are kept while they fit, the part that crosses the limit is made
    /// again with just the rows still allowed, and the rest are skipped. Parts stay until the
    /// export is recorded (a paused or failed run resumes without extracting them again).
    fn each_part(&self, mut append: impl FnMut(&Path) -> Result<(), StageError>) -> Result<u64, StageError> {
        let total = self.manifest.chunks.len() as u32;
        let max = self.export.spec.max_rows;
        let mut known = Vec::new();
        let mut rows = 0u64;
        for index in 0..total {
            let (record, local) = self.part(index, &mut known)?;
            if index + 1 == total {
                self.mark_encoding()?;
            }
            let mut cut = None;
            let path = match max {
                Some(m) if rows + record.rows > m => {
                    let tmp = self.remake_part(index, Some(m - rows))?;
                    let p = tmp.to_path_buf();
                    cut = Some(tmp);
                    rows = m;
                    p
                }
                _ => {
                    rows += record.rows;
                    local.path.clone()
                }
            };
            append(&path)?;
            drop(cut);
            drop(local);
            if max == Some(rows) {
                break;
            }
        }
        if max == Some(rows) || total == 0 {
            self.mark_encoding()?;
        }
        Ok(rows)
    }

    /// Make chunk `index`'s part again from the source: with only its first `need` rows (to
    /// honour `max_rows`), or whole (when the part is gone).
    fn remake_part(&self, index: u32, need: Option<u64>) -> Result<tempfile::TempPath, StageError> {
        let chunk = self.manifest.chunks[index as usize].clone();
        let local = self.handle.block_on(source::localize(self.ctx.blobs.as_ref(), &chunk))?;
        let tmp = tempfile::Builder::new().prefix("cut-").tempfile_in(&self.ctx.settings.work_dir)?.into_temp_path();
        write_part(&self.export.spec, &self.schema, &chunk, local.as_ref(), false, need, self.hash_key, &tmp, &|| false)?;
        Ok(tmp)
    }

    /// The pipeline and the k-way merge of the sorted runs (all of them are needed before the
    /// first row can be known).
    fn open_merge(&self) -> Result<(RowPipeline, Merge), StageError> {
        let mut known = Vec::new();
        let mut locals = Vec::new();
        for index in 0..self.manifest.chunks.len() as u32 {
            locals.push(self.part(index, &mut known)?.1);
        }
        self.mark_encoding()?;
        let mut pipeline = RowPipeline::build(&self.schema, &self.export.spec).map_err(|e| StageError::invalid(e.to_string()))?;
        if let Some(k) = self.hash_key {
            pipeline.set_hash_key(k);
        }
        pipeline.set_row_place("of the sorted file");
        // Runs hold the read columns (sort keys included); the file gets the output columns.
        let read_schema = Arc::new(pipeline.read_schema_of(&self.schema));
        let spec = SortSpec::build(&read_schema, &self.export.spec.sort).map_err(|e| StageError::invalid(e.to_string()))?;
        let paths: Vec<PathBuf> = locals.iter().map(|l| l.path.clone()).collect();
        let merge = Merge::open(spec, &read_schema, &paths, self.export.spec.max_rows)?;
        Ok((pipeline, merge))
    }

    fn merge_runs(&self, encoder: &mut dyn crate::format::RowEncoder, w: &mut impl Write) -> Result<u64, StageError> {
        let (pipeline, mut merge) = self.open_merge()?;
        let mut buf = Vec::with_capacity(1 << 20);
        let mut skip = encoder.first_row_skip();
        let mut rows = 0u64;
        while let Some(batch) = merge.next_batch()? {
            let projected = pipeline.project(&batch)?;
            encoder.encode_batch(&projected, &mut buf)?;
            rows += projected.num_rows() as u64;
            w.write_all(&buf[skip.min(buf.len())..])?;
            if !buf.is_empty() {
                skip = 0;
            }
            buf.clear();
        }
        encoder.finish_part(&mut buf)?;
        w.write_all(&buf)?;
        Ok(rows)
    }
}

/// The SHA-256 and size of a written file.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64), StageError> {
    let mut hashing = HashingWriter::new(std::io::sink());
    std::io::copy(&mut std::fs::File::open(path)?, &mut hashing)?;
    let (_, sha, size) = hashing.finish()?;
    Ok((sha, size))
}

/// `<name as a slug>.<ext>[.gz|.zst]`, e.g. `flagged-transactions-2026-10.csv`.
pub fn file_name(export: &Export) -> String {
    format!("{}.{}{}", file_slug(export), export.spec.format.kind().extension(), export.spec.compression.of_rows().suffix())
}

/// The export's name as a file name stem: lower-case letters, digits and `-`, at most 80
/// characters; `export` when nothing is left.
pub fn file_slug(export: &Export) -> String {
    let mut slug = String::new();
    for c in export.name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() { "export".to_string() } else { slug[..slug.len().min(80)].to_string() }
}
