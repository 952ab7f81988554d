//! Splitting an export into numbered files (`max_rows_per_file`, `max_bytes_per_file`): each
//! file is a valid file of its format on its own (a CSV with its header, a JSON array, a
//! Parquet file with its footer, a workbook, an XML document with its own totals). The parts
//! of a split export are Arrow IPC (whatever the format) and the encode stage writes the files
//! one after the other, starting a new one at the limit.
//!
//! Rows per file are exact. Bytes per file are exact for row formats without compression (a
//! row that alone is larger than the limit gets a file of its own); for compressed files,
//! Parquet and the formats written from batches a new file starts once the file has reached the
//! limit, so a file can pass it by up to one batch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::StageError;
use crate::format::parquet::PartWriter;
use crate::format::{FileContext, FileEncoder, Layout, RowEncoder, layout, row_encoder};
use crate::model::ExportSpec;
use crate::model::spec::Compression;
use crate::package::{Compressor, HashingWriter};

/// Rows encoded at a time while a row-format file is near its byte limit.
const SLICE_ROWS: usize = 256;

/// One finished file of a split export.
#[derive(Debug, Clone)]
pub struct SplitFile {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub rows: u64,
}

/// Makes the encoder of one file of a format written from batches (mapped XML needs its plan).
pub type MakeEncoder<'a> = dyn FnMut(&Path) -> Result<Box<dyn FileEncoder>, StageError> + 'a;

enum Current {
    Rows { encoder: Box<dyn RowEncoder>, w: Compressor<HashingWriter<std::fs::File>>, skip: usize },
    Parquet(Box<PartWriter<HashingWriter<std::fs::File>>>),
    Batches(Box<dyn FileEncoder>),
}

/// Writes the files of a split export from its batches in order.
pub struct Splitter<'a> {
    spec: &'a ExportSpec,
    schema: SchemaRef,
    work_dir: PathBuf,
    make: &'a mut MakeEncoder<'a>,
    max_rows: u64,
    max_bytes: u64,
    current: Option<(Current, PathBuf, u64, u64)>,
    done: Vec<SplitFile>,
    buf: Vec<u8>,
}

impl<'a> Splitter<'a> {
    pub fn new(spec: &'a ExportSpec, schema: SchemaRef, ctx: &FileContext, make: &'a mut MakeEncoder<'a>) -> Self {
        Self {
            spec,
            schema,
            work_dir: ctx.work_dir.clone(),
            make,
            max_rows: spec.max_rows_per_file.unwrap_or(u64::MAX),
            max_bytes: spec.max_bytes_per_file.unwrap_or(u64::MAX),
            current: None,
            done: Vec::new(),
            buf: Vec::with_capacity(1 << 20),
        }
    }

    fn open(&mut self) -> Result<(), StageError> {
        let path = tempfile::Builder::new()
            .prefix("file-")
            .tempfile_in(&self.work_dir)?
            .into_temp_path()
            .keep()
            .map_err(|e| StageError::transient(e.to_string()))?;
        let cur = match layout(&self.spec.format.0) {
            Layout::Rows => {
                let encoder = row_encoder(&self.spec.format, &self.schema)
                    .ok_or_else(|| StageError::internal("a row format without a row encoder"))?;
                let mut w = Compressor::new(HashingWriter::new(std::fs::File::create(&path)?), self.spec.compression)?;
                let columns: Vec<String> = self.schema.fields().iter().map(|f| f.name().clone()).collect();
                let header = encoder.header(&columns);
                w.write_all(&header)?;
                let skip = encoder.first_row_skip();
                let size = header.len() as u64;
                self.current = Some((Current::Rows { encoder, w, skip }, path, 0, size));
                return Ok(());
            }
            Layout::Parquet => {
                let w = HashingWriter::new(std::fs::File::create(&path)?);
                Current::Parquet(Box::new(PartWriter::new(w, Arc::clone(&self.schema), &self.spec.format.0)?))
            }
            Layout::Batches => Current::Batches((self.make)(&path)?),
        };
        self.current = Some((cur, path, 0, 0));
        Ok(())
    }

    /// Finish the open file, if any.
    fn close(&mut self) -> Result<(), StageError> {
        let Some((cur, path, rows, _)) = self.current.take() else { return Ok(()) };
        let (sha256, size) = match cur {
            Current::Rows { mut encoder, mut w, .. } => {
                let mut tail = Vec::new();
                encoder.finish_part(&mut tail)?;
                w.write_all(&tail)?;
                w.write_all(&encoder.footer(rows))?;
                let (_, sha, size) = w.finish()?.finish()?;
                (sha, size)
            }
            Current::Parquet(w) => {
                let (hashing, _) = (*w).finish()?;
                let (_, sha, size) = hashing.finish()?;
                (sha, size)
            }
            Current::Batches(e) => {
                e.finish()?;
                super::encode::hash_file(&path)?
            }
        };
        self.done.push(SplitFile { path, sha256, size, rows });
        Ok(())
    }

    /// Append a batch, starting new files at the limits.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StageError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.as_ref().is_some_and(|(_, _, rows, bytes)| *rows >= self.max_rows || *bytes >= self.max_bytes) {
                self.close()?;
            }
            if self.current.is_none() {
                self.open()?;
            }
            let (_, _, rows, _) = self.current.as_ref().expect("opened");
            let room = (self.max_rows - rows).min((batch.num_rows() - offset) as u64) as usize;
            let slice = batch.slice(offset, room);
            offset += room;
            self.write_slice(&slice)?;
        }
        Ok(())
    }

    fn write_slice(&mut self, slice: &RecordBatch) -> Result<(), StageError> {
        // Exact only where every row's bytes are known when it is encoded (not an Avro block).
        let exact_bytes = self.spec.compression.of_rows() == Compression::None
            && self.max_bytes != u64::MAX
            && crate::model::spec::Codec::allowed_for(self.spec.format.kind()).is_empty();
        let (cur, path, rows, bytes) = self.current.as_mut().expect("opened");
        match cur {
            Current::Rows { encoder, w, skip } => {
                if !exact_bytes {
                    self.buf.clear();
                    encoder.encode_batch(slice, &mut self.buf)?;
                    let cut = (*skip).min(self.buf.len());
                    w.write_all(&self.buf[cut..])?;
                    if !self.buf.is_empty() {
                        *skip = 0;
                    }
                    *rows += slice.num_rows() as u64;
                    *bytes = w.get_ref().written();
                    return Ok(());
                }
            }
            Current::Parquet(w) => {
                w.write(slice)?;
                *rows += slice.num_rows() as u64;
                *bytes = w.bytes_written() as u64;
                return Ok(());
            }
            Current::Batches(e) => {
                e.write_batch(slice)?;
                *rows += slice.num_rows() as u64;
                *bytes = std::fs::metadata(&*path).map(|m| m.len()).unwrap_or(0);
                return Ok(());
            }
        }
        // Row formats with an exact byte limit: a slice at a time, a row at a time near the
        // limit, so that no file passes it (unless one row alone does).
        let mut start = 0;
        while start < slice.num_rows() {
            let n = SLICE_ROWS.min(slice.num_rows() - start);
            let part = slice.slice(start, n);
            let encoded = self.encode_rows(&part)?;
            let (_, _, rows, bytes) = self.current.as_ref().expect("opened");
            if *bytes + encoded.len() as u64 + self.footer_len(*rows + n as u64) <= self.max_bytes {
                self.append(&encoded, n)?;
                start += n;
                continue;
            }
            // One row at a time until the file is full.
            for r in 0..n {
                let row = part.slice(r, 1);
                let encoded = self.encode_rows(&row)?;
                let (_, _, rows, bytes) = self.current.as_ref().expect("opened");
                if *rows > 0 && *bytes + encoded.len() as u64 + self.footer_len(*rows + 1) > self.max_bytes {
                    self.close()?;
                    self.open()?;
                }
                let encoded = self.encode_rows(&row)?;
                self.append(&encoded, 1)?;
            }
            start += n;
        }
        Ok(())
    }

    /// The rows encoded as they would be appended to the open file.
    fn encode_rows(&mut self, part: &RecordBatch) -> Result<Vec<u8>, StageError> {
        let Some((Current::Rows { encoder, skip, .. }, ..)) = self.current.as_mut() else {
            return Err(StageError::internal("not a row format"));
        };
        let mut out = Vec::new();
        encoder.encode_batch(part, &mut out)?;
        let cut = (*skip).min(out.len());
        Ok(out.split_off(cut))
    }

    fn footer_len(&self, rows: u64) -> u64 {
        match self.current.as_ref() {
            Some((Current::Rows { encoder, .. }, ..)) => encoder.footer(rows).len() as u64,
            _ => 0,
        }
    }

    fn append(&mut self, encoded: &[u8], n: usize) -> Result<(), StageError> {
        let Some((Current::Rows { w, skip, .. }, _, rows, bytes)) = self.current.as_mut() else {
            return Err(StageError::internal("not a row format"));
        };
        w.write_all(encoded)?;
        *skip = 0;
        *rows += n as u64;
        *bytes += encoded.len() as u64;
        Ok(())
    }

    /// Finish the last file; an export without rows still gets one (empty) file.
    pub fn finish(mut self) -> Result<Vec<SplitFile>, StageError> {
        if self.current.is_none() && self.done.is_empty() {
            self.open()?;
        }
        self.close()?;
        Ok(self.done)
    }
}

/// `name.ext[.gz]` as `name-part-00001.ext[.gz]`.
pub fn part_name(name: &str, index: usize, ext_and_suffix: &str) -> String {
    let stem = name.strip_suffix(ext_and_suffix).unwrap_or(name);
    format!("{stem}-part-{index:05}{ext_and_suffix}")
}
