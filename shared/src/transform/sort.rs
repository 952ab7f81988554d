//! Sorting larger than memory: each chunk sorts its rows and writes them as a sorted run
//! (Arrow IPC); the Encode stage merges the runs (k-way, on Arrow's row format) while it
//! writes the file. Memory is one chunk per worker plus one batch per run during the merge.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{SortOptions, concat_batches, interleave_record_batch, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};

use crate::model::ValidationErrors;
use crate::model::spec::{NullsOrder, SortKey, SortOrder};

/// Rows per batch written to a run and emitted by the merge.
const RUN_BATCH: usize = 8192;

/// Sort keys resolved against a schema.
#[derive(Clone)]
pub struct SortSpec {
    keys: Vec<(usize, SortOptions)>,
}

fn sortable(dt: &DataType) -> bool {
    dt.is_primitive()
        || matches!(
            dt,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean | DataType::Binary | DataType::LargeBinary
        )
}

impl SortSpec {
    pub fn build(schema: &Schema, keys: &[SortKey]) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match schema.index_of(&k.column) {
                Err(_) => errs.push(format!("/sort/{i}/column"), k.column.as_str(), "a column of the source"),
                Ok(c) if !sortable(schema.field(c).data_type()) => errs.push(
                    format!("/sort/{i}/column"),
                    k.column.as_str(),
                    "a column of a scalar type (number, text, date, timestamp, boolean)",
                ),
                Ok(c) => {
                    out.push((c, SortOptions { descending: k.order == SortOrder::Desc, nulls_first: k.nulls == Some(NullsOrder::First) }))
                }
            }
        }
        errs.into_result()?;
        Ok(Self { keys: out })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Sort batches of one chunk into one batch. Stable: equal keys keep source order.
    pub fn sort(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, ArrowError> {
        let all = concat_batches(schema, batches)?;
        let conv = self.converter(schema)?;
        let rows = self.rows(&conv, &all)?;
        let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
        order.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
        take_record_batch(&all, &arrow::array::UInt32Array::from(order))
    }

    fn converter(&self, schema: &Schema) -> Result<RowConverter, ArrowError> {
        RowConverter::new(self.keys.iter().map(|(c, o)| SortField::new_with_options(schema.field(*c).data_type().clone(), *o)).collect())
    }

    fn rows(&self, conv: &RowConverter, batch: &RecordBatch) -> Result<Rows, ArrowError> {
        let cols: Vec<ArrayRef> = self.keys.iter().map(|(c, _)| Arc::clone(batch.column(*c))).collect();
        conv.convert_columns(&cols)
    }
}

/// Write a sorted batch as a run file.
pub fn write_run(path: &Path, batch: &RecordBatch) -> Result<u64, ArrowError> {
    let mut w = FileWriter::try_new(std::io::BufWriter::new(File::create(path)?), &batch.schema())?;
    let mut off = 0;
    while off < batch.num_rows() {
        let len = RUN_BATCH.min(batch.num_rows() - off);
        w.write(&batch.slice(off, len))?;
        off += len;
    }
    w.finish()?;
    Ok(std::fs::metadata(path)?.len())
}

struct Run {
    reader: FileReader<BufReader<File>>,
    /// Index of the current batch in `Merge::batches`.
    slot: usize,
    rows: Rows,
    pos: usize,
    len: usize,
}

/// A k-way merge of sorted runs, yielding batches of the merged rows.
pub struct Merge {
    spec: SortSpec,
    conv: RowConverter,
    runs: Vec<Run>,
    /// Batches the pending output rows point into.
    batches: Vec<RecordBatch>,
    heap: BinaryHeap<Reverse<(OwnedRow, usize)>>,
    remaining: Option<u64>,
}

impl Merge {
    pub fn open(spec: SortSpec, schema: &Schema, paths: &[std::path::PathBuf], limit: Option<u64>) -> Result<Self, ArrowError> {
        let conv = spec.converter(schema)?;
        let mut m = Merge { spec, conv, runs: Vec::new(), batches: Vec::new(), heap: BinaryHeap::new(), remaining: limit };
        for p in paths {
            let reader = FileReader::try_new(BufReader::new(File::open(p)?), None)?;
            let idx = m.runs.len();
            m.runs.push(Run { reader, slot: 0, rows: m.conv.empty_rows(0, 0), pos: 0, len: 0 });
            if m.advance_batch(idx)? {
                let row = m.runs[idx].rows.row(0).owned();
                m.heap.push(Reverse((row, idx)));
            }
        }
        Ok(m)
    }

    /// Load the run's next non-empty batch; false at its end.
    fn advance_batch(&mut self, idx: usize) -> Result<bool, ArrowError> {
        loop {
            match self.runs[idx].reader.next() {
                None => return Ok(false),
                Some(b) => {
                    let b = b?;
                    if b.num_rows() == 0 {
                        continue;
                    }
                    let rows = self.spec.rows(&self.conv, &b)?;
                    let run = &mut self.runs[idx];
                    run.len = b.num_rows();
                    run.rows = rows;
                    run.pos = 0;
                    run.slot = self.batches.len();
                    self.batches.push(b);
                    return Ok(true);
                }
            }
        }
    }

    /// The next merged batch, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(RUN_BATCH);
        let limit = self.remaining.map_or(RUN_BATCH, |r| (r as usize).min(RUN_BATCH));
        while picks.len() < limit {
            let Some(Reverse((_, idx))) = self.heap.pop() else { break };
            let run = &mut self.runs[idx];
            picks.push((run.slot, run.pos));
            run.pos += 1;
            let more = if run.pos < run.len { true } else { self.advance_batch(idx)? };
            if more {
                let run = &self.runs[idx];
                self.heap.push(Reverse((run.rows.row(run.pos).owned(), idx)));
            }
        }
        if picks.is_empty() {
            return Ok(None);
        }
        if let Some(r) = &mut self.remaining {
            *r -= picks.len() as u64;
        }
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let out = interleave_record_batch(&refs, &picks)?;
        self.compact();
        Ok(Some(out))
    }

    /// Drop batches no run points into any more, renumbering the runs' slots.
    fn compact(&mut self) {
        let live: Vec<usize> = self.runs.iter().filter(|r| r.pos < r.len).map(|r| r.slot).collect();
        let mut keep: Vec<usize> = live.clone();
        keep.sort_unstable();
        keep.dedup();
        let new_batches: Vec<RecordBatch> = keep.iter().map(|&s| self.batches[s].clone()).collect();
        for r in &mut self.runs {
            if let Ok(n) = keep.binary_search(&r.slot) {
                r.slot = n;
            }
        }
        self.batches = new_batches;
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn merge_of_sorted_runs_is_sorted_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("k", DataType::Int64, true),
            arrow::datatypes::Field::new("tag", DataType::Utf8, true),
        ]));
        let spec = SortSpec::build(&schema, &[SortKey { column: "k".into(), order: SortOrder::Desc, nulls: None }]).unwrap();
        let mut paths = Vec::new();
        for run in 0..3i64 {
            let ks: Vec<Option<i64>> = (0..20_000i64).map(|i| if i % 97 == 0 { None } else { Some((i * 7 + run) % 1000) }).collect();
            let tags: Vec<String> = (0..20_000).map(|i| format!("{run}-{i}")).collect();
            let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ks)), Arc::new(StringArray::from(tags))]).unwrap();
            let sorted = spec.sort(&schema, &[b]).unwrap();
            let p = dir.path().join(format!("run{run}"));
            write_run(&p, &sorted).unwrap();
            paths.push(p);
        }
        let mut m = Merge::open(spec, &schema, &paths, Some(59_000)).unwrap();
        let mut all = Vec::new();
        while let Some(b) = m.next_batch().unwrap() {
            all.push(b);
        }
        let merged = concat_batches(&schema, &all).unwrap();
        assert_eq!(merged.num_rows(), 59_000);
        let k = merged.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let tag = merged.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 1..merged.num_rows() {
            match (k.is_null(i - 1), k.is_null(i)) {
                (false, false) => assert!(k.value(i - 1) >= k.value(i), "row {i}"),
                (true, false) => panic!("nulls must come last"),
                _ => {}
            }
            if !k.is_null(i) && !k.is_null(i - 1) && k.value(i - 1) == k.value(i) {
                // Ties keep run order, then source order within a run.
                let (a, b) = (tag.value(i - 1), tag.value(i));
                let run = |s: &str| s.split('-').next().unwrap().parse::<u32>().unwrap();
                let row = |s: &str| s.split('-').nth(1).unwrap().parse::<u32>().unwrap();
                assert!((run(a), row(a)) < (run(b), row(b)), "{a} before {b}");
            }
        }
    }

    use arrow::array::Array;
}
