//! Transforms applied while reading: filters and time window, column selection and order or
//! field mapping (fields.rs, cast.rs), the row limit, and sorting (sort.rs). Built once per chunk against the source schema; the
//! same build is what validates a spec against that schema when the export is created.

pub mod cast;
pub mod fields;
pub mod filter;
pub mod sort;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::model::{ExportSpec, ValidationErrors};

/// How a chunk's batches become the export's rows.
pub struct RowPipeline {
    /// Columns to read from the source, in source order.
    pub read_columns: Vec<String>,
    predicate: filter::Predicate,
    /// Indices into a read batch of the output columns, in output order.
    output: Vec<usize>,
    pub output_schema: SchemaRef,
    /// Rows still allowed by `max_rows` (per chunk: the merge applies the global limit).
    remaining: Option<u64>,
    /// The field mapping, when the spec has `fields`.
    fields: Option<fields::FieldPlan>,
    /// Rows projected so far, and where they are counted (for the row named in an error).
    projected: std::cell::Cell<u64>,
    place: String,
}

fn column_list(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let shown = names.iter().take(50).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 50 { format!("{shown}, ... ({} columns)", names.len()) } else { shown }
}

/// Dictionary columns become their value type, so every later step sees plain arrays.
fn plain_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Dictionary(_, v) => plain_type(v),
        other => other.clone(),
    }
}

impl RowPipeline {
    /// Build against the source schema; every reference to a column or value that does not
    /// fit the schema is reported.
    pub fn build(source: &Schema, spec: &ExportSpec) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let plain = Schema::new(source.fields().iter().map(|f| Field::new(f.name(), plain_type(f.data_type()), true)).collect::<Vec<_>>());
        let allowed = || format!("a column of the source: {}", column_list(&plain));
        let out_names: Vec<String> = if !spec.fields.is_empty() {
            let mut names = Vec::new();
            for (i, f) in spec.fields.iter().enumerate() {
                let Some(from) = &f.from else { continue };
                if plain.index_of(from).is_err() {
                    errs.push(format!("/fields/{i}/from"), from.as_str(), allowed());
                } else if !names.contains(from) {
                    names.push(from.clone());
                }
            }
            names
        } else if spec.columns.is_empty() {
            plain.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            for (i, c) in spec.columns.iter().enumerate() {
                if plain.index_of(c).is_err() {
                    errs.push(format!("/columns/{i}"), c.as_str(), allowed());
                }
            }
            spec.columns.clone()
        };
        let mut needed: Vec<&str> = out_names.iter().map(String::as_str).collect();
        needed.extend(spec.filters.iter().map(|f| f.column.as_str()));
        needed.extend(spec.time_range.iter().map(|t| t.column.as_str()));
        needed.extend(spec.sort.iter().map(|s| s.column.as_str()));
        let read_columns: Vec<String> = plain.fields().iter().map(|f| f.name().clone()).filter(|n| needed.contains(&n.as_str())).collect();
        let read_schema =
            Schema::new(read_columns.iter().map(|n| plain.field_with_name(n).expect("listed from the schema").clone()).collect::<Vec<_>>());
        let predicate = match filter::Predicate::build(&read_schema, spec) {
            Ok(p) => p,
            Err(e) => {
                errs.extend(e);
                filter::Predicate::default()
            }
        };
        if let Err(e) = sort::SortSpec::build(&read_schema, &spec.sort) {
            errs.extend(e);
        }
        let fields = if spec.fields.is_empty() {
            None
        } else {
            match fields::FieldPlan::build(&read_schema, &spec.fields) {
                Ok(plan) => Some(plan),
                Err(e) => {
                    errs.extend(e);
                    None
                }
            }
        };
        errs.into_result()?;
        let (output, output_schema) = match &fields {
            Some(plan) => (plan.source_indices(), Arc::new(plan.schema())),
            None => {
                let output: Vec<usize> = out_names.iter().map(|n| read_schema.index_of(n).expect("checked above")).collect();
                let schema = Arc::new(read_schema.project(&output).expect("indices from the schema"));
                (output, schema)
            }
        };
        Ok(Self {
            read_columns,
            predicate,
            output,
            output_schema,
            remaining: spec.max_rows,
            fields,
            projected: std::cell::Cell::new(0),
            place: "of the selected rows".into(),
        })
    }

    /// Whether the field mapping hashes values: then [`Self::set_hash_key`] must be called
    /// with the tenant's salt before the first `project`.
    pub fn needs_hash_key(&self) -> bool {
        self.fields.as_ref().is_some_and(fields::FieldPlan::needs_hash_key)
    }

    pub fn set_hash_key(&mut self, key: [u8; 32]) {
        if let Some(f) = &mut self.fields {
            f.set_hash_key(key);
        }
    }

    /// Say where the projected rows are counted, e.g. `of chunk 3 (...)`: an error names a row
    /// as `row N <place>`, N counting the rows this pipeline projected from 1.
    pub fn set_row_place(&mut self, place: impl Into<String>) {
        self.place = place.into();
    }

    /// Schema of the batches `apply` takes (the read columns, dictionaries unpacked).
    pub fn read_schema_of(&self, source: &Schema) -> Schema {
        Schema::new(
            self.read_columns
                .iter()
                .map(|n| {
                    let f = source.field_with_name(n).expect("read columns come from the source");
                    Field::new(n, plain_type(f.data_type()), true)
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Filter a read batch. Returns the rows that pass, all read columns kept (the sort
    /// needs its keys even when they are not exported). `None` once the row limit is reached.
    pub fn filter(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, ArrowError> {
        if self.remaining == Some(0) {
            return Ok(None);
        }
        let batch = unpack_dictionaries(batch)?;
        let mut batch = match self.predicate.evaluate(&batch)? {
            Some(mask) => filter_record_batch(&batch, &mask)?,
            None => batch,
        };
        if let Some(rem) = &mut self.remaining {
            if batch.num_rows() as u64 > *rem {
                batch = batch.slice(0, *rem as usize);
            }
            *rem -= batch.num_rows() as u64;
        }
        Ok(Some(batch))
    }

    /// The output columns of a filtered batch, in output order.
    pub fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let first = self.projected.get() + 1;
        self.projected.set(first - 1 + batch.num_rows() as u64);
        let columns: Vec<ArrayRef> = match &self.fields {
            Some(plan) => plan.apply(batch, first, &self.place)?,
            None => self.output.iter().map(|&i| Arc::clone(batch.column(i))).collect(),
        };
        RecordBatch::try_new(Arc::clone(&self.output_schema), columns)
    }

    /// Indices of the read columns the output columns come from, in output order (with
    /// `fields`: constants have none).
    pub fn output_indices(&self) -> &[usize] {
        &self.output
    }
}

/// Cast dictionary columns to their values and mark every field nullable, so batches from
/// files that differ only in those respects look alike.
fn unpack_dictionaries(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let needs = batch.schema().fields().iter().any(|f| matches!(f.data_type(), DataType::Dictionary(..)) || !f.is_nullable());
    if !needs {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let dt = plain_type(f.data_type());
        cols.push(if &dt != c.data_type() { arrow::compute::cast(c, &dt)? } else { Arc::clone(c) });
        fields.push(Field::new(f.name(), dt, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
}
