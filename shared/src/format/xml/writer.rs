//! Writing a document by its [`Plan`], in bounded memory. Rows arrive in export order; each
//! becomes one element of the last repeat level, written into the body of the level above it.
//! A group level's element is written when its group ends (its totals are known then), around
//! the body its rows made; the document element is written at the end around everything.
//! Bodies are held in memory up to a few megabytes and spill to a temporary file beyond that.
//!
//! The output is indented, one element per line, so that a validation error's line number
//! names one element.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use super::mapping::{Body, Node, Plan, Source, TemplatePart, Value};
use super::text::{escape_attr, escape_text, forbidden_char};
use crate::format::cells::{TypedColumn, typed_column, write_plain};
use crate::format::{FileContext, FileEncoder, FormatError};
use crate::model::xml::Generated;

/// Bytes of a body kept in memory before it spills to disk.
const SPILL_BYTES: usize = 8 << 20;

/// A body of elements: in memory, then in a temporary file.
struct Spool {
    buf: Vec<u8>,
    file: Option<File>,
    dir: std::path::PathBuf,
}

impl Spool {
    fn new(dir: &Path) -> Self {
        Self { buf: Vec::new(), file: None, dir: dir.to_path_buf() }
    }

    fn flush_if_big(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= SPILL_BYTES {
            let f = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(tempfile::tempfile_in(&self.dir)?),
            };
            f.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Copy the body to `out` and empty it.
    fn drain_into(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.seek(SeekFrom::Start(0))?;
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.write_all(&chunk[..n])?;
            }
        }
        out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.flush_if_big()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Totals of one open level: its rows, and the sums its values ask for.
#[derive(Default, Clone)]
struct Totals {
    rows: u64,
    /// Per value index that is a sum: (decimal sum scaled by the column's scale, float sum).
    sums: Vec<(i128, f64)>,
}

/// The texts of one group's element, fixed when the group starts: its group_by values.
struct OpenGroup {
    key: Vec<Option<String>>,
    texts: Vec<Option<String>>,
    totals: Totals,
}

pub struct MappedXml {
    plan: Plan,
    schema: SchemaRef,
    ctx: FileContext,
    out: Option<BufWriter<File>>,
    /// `spools[k]` holds the written elements of level `k + 1`.
    spools: Vec<Spool>,
    /// Open groups, per group level (levels 1 to n-1).
    groups: Vec<Option<OpenGroup>>,
    totals: Totals,
    rows: u64,
    /// Nodes per level (level l's repeated element), found once.
    level_nodes: Vec<Node>,
    names: Names,
}

/// Element and attribute names with their prefixes.
struct Names {
    ns: Vec<(String, String)>,
}

impl Names {
    fn of(&self, q: &super::xsd::QName) -> String {
        match &q.ns {
            Some(ns) => match self.ns.iter().find(|(_, u)| u == ns) {
                Some((p, _)) if !p.is_empty() => format!("{p}:{}", q.local),
                _ => q.local.clone(),
            },
            None => q.local.clone(),
        }
    }
}

impl MappedXml {
    pub fn create(plan: Plan, schema: SchemaRef, ctx: &FileContext, out: &Path) -> Result<Self, FormatError> {
        let levels = plan.levels();
        let mut level_nodes = Vec::new();
        for l in 1..=levels {
            level_nodes
                .push(find_level(&plan.root, l).cloned().ok_or_else(|| FormatError::Internal(format!("no element for repeat level {l}")))?);
        }
        let sums = plan.values.len();
        let totals = Totals { rows: 0, sums: vec![(0, 0.0); sums] };
        let names = Names { ns: plan.namespaces.clone() };
        Ok(Self {
            spools: (0..levels).map(|_| Spool::new(&ctx.work_dir)).collect(),
            groups: (1..levels).map(|_| None).collect(),
            totals,
            plan,
            schema,
            ctx: ctx.clone(),
            out: Some(BufWriter::with_capacity(1 << 20, File::create(out)?)),
            rows: 0,
            level_nodes,
            names,
        })
    }

    fn invalid(&self, row: u64, v: &Value, what: impl std::fmt::Display) -> FormatError {
        FormatError::Invalid(format!("row {row}, {}: {what}", v.path))
    }

    /// The text of value `vi` for row `i` of `cols`, or `None` for a null.
    fn row_text(&self, vi: usize, cols: &[TypedColumn], arrays: &[ArrayRef], i: usize, row: u64) -> Result<Option<String>, FormatError> {
        let v = &self.plan.values[vi];
        let raw = match &v.source {
            Source::Column(c) => column_text(v, &cols[*c], arrays[*c].data_type(), i),
            Source::Template(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        TemplatePart::Text(t) => s.push_str(t),
                        TemplatePart::Column(c) => s.push_str(&column_text(v, &cols[*c], arrays[*c].data_type(), i).unwrap_or_default()),
                    }
                }
                Some(s)
            }
            Source::Generated(Generated::RowNumber) => Some(row.to_string()),
            _ => self.fixed_text(vi, &self.totals),
        };
        self.finish_text(vi, raw, row)
    }

    /// Texts that do not depend on a row: constants, generated values, totals.
    fn fixed_text(&self, vi: usize, totals: &Totals) -> Option<String> {
        let v = &self.plan.values[vi];
        match &v.source {
            Source::Constant(c) => Some(c.clone()),
            Source::Generated(Generated::GeneratedAt) => Some(format_instant(self.ctx.generated_at, v.format.as_deref())),
            Source::Generated(Generated::ExportId) => Some(self.ctx.export_id.clone()),
            Source::Count => Some(totals.rows.to_string()),
            Source::Sum(c) => {
                let (d, f) = totals.sums[vi];
                Some(match self.schema.field(*c).data_type() {
                    DataType::Float64 | DataType::Float32 | DataType::Float16 => match v.scale {
                        Some(s) => format!("{f:.*}", s as usize),
                        None => f.to_string(),
                    },
                    DataType::Decimal128(_, s) => decimal_text(d, *s, v.scale),
                    _ => decimal_text(d, 0, v.scale),
                })
            }
            _ => None,
        }
    }

    /// Apply the value map and check the characters.
    fn finish_text(&self, vi: usize, raw: Option<String>, row: u64) -> Result<Option<String>, FormatError> {
        let v = &self.plan.values[vi];
        let Some(text) = raw else {
            if v.required {
                return Err(self.invalid(row, v, "the value is null, but the schema requires it"));
            }
            return Ok(None);
        };
        let text = match &v.map {
            Some(map) => match (map.get(&text), &v.map_default) {
                (Some(m), _) => m.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    keys.truncate(20);
                    return Err(self.invalid(
                        row,
                        v,
                        format!("the value `{}` is not in the map (it has {})", clip(&text), keys.join(", ")),
                    ));
                }
            },
            None => text,
        };
        if let Some(c) = forbidden_char(&text) {
            return Err(self.invalid(row, v, format!("the value {:?} holds U+{:04X}, which XML 1.0 cannot carry", clip(&text), c as u32)));
        }
        Ok(Some(text))
    }

    /// Write `node` (and what is inside it) at `depth`. `text` gives each value's text;
    /// `insert` writes the body of the repeated element below, where it belongs.
    fn render(
        &self,
        node: &Node,
        depth: usize,
        text: &mut dyn FnMut(usize) -> Result<Option<String>, FormatError>,
        insert: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
        out: &mut dyn Write,
        top: bool,
    ) -> Result<bool, FormatError> {
        if node.repeat.is_some() && !top {
            insert(out)?;
            return Ok(true);
        }
        let name = self.names.of(&node.name);
        let mut open = Vec::with_capacity(64);
        open.extend(std::iter::repeat_n(b' ', depth * 2));
        open.push(b'<');
        open.extend_from_slice(name.as_bytes());
        if depth == 0 && top && node.level == 0 {
            for (p, u) in &self.plan.namespaces {
                open.extend_from_slice(if p.is_empty() { b" xmlns=\"".to_vec() } else { format!(" xmlns:{p}=\"").into_bytes() }.as_slice());
                escape_attr(&mut open, u);
                open.push(b'"');
            }
        }
        let mut any = false;
        for (a, vi) in &node.attrs {
            if let Some(t) = text(*vi)? {
                open.push(b' ');
                open.extend_from_slice(self.names.of(a).as_bytes());
                open.extend_from_slice(b"=\"");
                escape_attr(&mut open, &t);
                open.push(b'"');
                any = true;
            }
        }
        match &node.body {
            Body::Text(vi) => {
                let Some(t) = text(*vi)? else {
                    if any || !node.optional {
                        open.extend_from_slice(b"/>\n");
                        out.write_all(&open)?;
                        return Ok(true);
                    }
                    return Ok(false);
                };
                open.push(b'>');
                escape_text(&mut open, &t);
                open.extend_from_slice(format!("</{name}>\n").as_bytes());
                out.write_all(&open)?;
                Ok(true)
            }
            Body::Empty => {
                if !any && node.optional {
                    return Ok(false);
                }
                open.extend_from_slice(b"/>\n");
                out.write_all(&open)?;
                Ok(true)
            }
            Body::Children(children) => {
                open.extend_from_slice(b">\n");
                let close = format!("{}</{name}>\n", " ".repeat(depth * 2));
                if children.iter().any(|c| c.holds_repeat || c.repeat.is_some()) {
                    // Always written; streams straight out (the body may be large).
                    out.write_all(&open)?;
                    for c in children {
                        self.render(c, depth + 1, text, insert, out, false)?;
                    }
                    out.write_all(close.as_bytes())?;
                    return Ok(true);
                }
                let mut inner = Vec::new();
                let mut wrote = false;
                for c in children {
                    wrote |= self.render(c, depth + 1, text, insert, &mut inner, false)?;
                }
                if !wrote && !any && node.optional {
                    return Ok(false);
                }
                if !wrote {
                    open.truncate(open.len() - 2);
                    open.extend_from_slice(b"/>\n");
                    out.write_all(&open)?;
                    return Ok(true);
                }
                out.write_all(&open)?;
                out.write_all(&inner)?;
                out.write_all(close.as_bytes())?;
                Ok(true)
            }
        }
    }

    /// Close the open group of level `l` (and the deeper ones), writing its element into the
    /// body of the level above.
    fn close_group(&mut self, l: usize) -> Result<(), FormatError> {
        if l + 1 < self.plan.levels() {
            self.close_group(l + 1)?;
        }
        let Some(group) = self.groups[l - 1].take() else { return Ok(()) };
        let node = self.level_nodes[l - 1].clone();
        let row = self.rows;
        let mut below = std::mem::replace(&mut self.spools[l], Spool::new(&self.ctx.work_dir));
        let mut parent = std::mem::replace(&mut self.spools[l - 1], Spool::new(&self.ctx.work_dir));
        {
            let this = &*self;
            let mut text = |vi: usize| -> Result<Option<String>, FormatError> {
                let raw = match &this.plan.values[vi].source {
                    Source::Column(_) => group.texts[vi].clone(),
                    _ => this.fixed_text(vi, &group.totals),
                };
                this.finish_text(vi, raw, row)
            };
            let mut insert = |out: &mut dyn Write| below.drain_into(out);
            self.render(&node, depth_of(&self.plan.root, &node), &mut text, &mut insert, &mut parent, true)?;
        }
        self.spools[l - 1] = parent;
        Ok(())
    }

    fn add_totals(totals: &mut Totals, plan: &Plan, cols: &[TypedColumn], arrays: &[ArrayRef], i: usize) {
        totals.rows += 1;
        for (vi, v) in plan.values.iter().enumerate() {
            if let Source::Sum(c) = v.source {
                let col = &cols[c];
                if col.is_null(i) {
                    continue;
                }
                let _ = &arrays[c];
                use crate::format::cells::Column;
                let (d, f) = &mut totals.sums[vi];
                match &col.column {
                    Column::Decimal(vals, _) => *d += vals[i],
                    Column::Int(vals) => *d += vals[i] as i128,
                    Column::Int32(vals) => *d += vals[i] as i128,
                    Column::UInt(vals) => *d += vals[i] as i128,
                    Column::Float64(vals) => *f += vals[i],
                    Column::Float32(vals) => *f += vals[i] as f64,
                    _ => {}
                }
            }
        }
    }
}

fn find_level(n: &Node, l: usize) -> Option<&Node> {
    if n.repeat == Some(l) {
        return Some(n);
    }
    match &n.body {
        Body::Children(c) => c.iter().find_map(|c| find_level(c, l)),
        _ => None,
    }
}

fn depth_of(root: &Node, target: &Node) -> usize {
    fn walk(n: &Node, t: Option<usize>, d: usize) -> Option<usize> {
        if n.repeat.is_some() && n.repeat == t {
            return Some(d);
        }
        match &n.body {
            Body::Children(c) => c.iter().find_map(|c| walk(c, t, d + 1)),
            _ => None,
        }
    }
    walk(root, target.repeat, 0).unwrap_or(0)
}

/// A value as the row formats write it (for group keys).
fn plain_text(col: &TypedColumn, i: usize) -> Option<String> {
    if col.is_null(i) {
        return None;
    }
    let mut out = Vec::new();
    if write_plain(&col.column, i, &mut out) { Some(String::from_utf8(out).unwrap_or_default()) } else { col.text(i).map(str::to_string) }
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// A column's value as text: with the value's `format` for dates and timestamps and `scale`
/// for numbers; `None` for a null.
fn column_text(v: &Value, col: &TypedColumn, ty: &DataType, i: usize) -> Option<String> {
    use crate::format::cells::Column;
    if col.is_null(i) {
        return None;
    }
    match (&col.column, v.format.as_deref(), v.scale) {
        (Column::Timestamp(vals, per_sec, _, _), Some(f), _) => {
            let t = DateTime::<Utc>::from_timestamp(
                vals[i].div_euclid(*per_sec),
                (vals[i].rem_euclid(*per_sec) * (1_000_000_000 / per_sec)) as u32,
            )?;
            Some(t.format(f).to_string())
        }
        (Column::Date32(vals), Some(f), _) => {
            let d = chrono::NaiveDate::from_num_days_from_ce_opt(vals[i] + 719_163)?;
            Some(d.format(f).to_string())
        }
        (Column::Decimal(vals, s), _, Some(scale)) => Some(decimal_text(vals[i], *s, Some(scale))),
        (Column::Int(vals), _, Some(scale)) => Some(decimal_text(vals[i] as i128, 0, Some(scale))),
        (Column::Float64(vals), _, Some(scale)) => Some(format!("{:.*}", scale as usize, vals[i])),
        _ => {
            let _ = ty;
            plain_text(col, i)
        }
    }
}

/// A decimal `v` at scale `s` written with `want` fraction digits (rounded half away from
/// zero) or its own.
pub fn decimal_text(v: i128, s: i8, want: Option<u8>) -> String {
    let (mut v, mut s) = (v, s as i32);
    if let Some(w) = want {
        let w = w as i32;
        while s < w {
            v = v.saturating_mul(10);
            s += 1;
        }
        if s > w {
            let div = 10i128.pow((s - w) as u32);
            let q = v / div;
            let r = v % div;
            v = if r.abs() * 2 >= div { q + v.signum() } else { q };
            s = w;
        }
    }
    let mut out = Vec::new();
    crate::format::cells::write_decimal(&mut out, v, s as i8);
    String::from_utf8(out).unwrap_or_default()
}

fn format_instant(t: DateTime<Utc>, f: Option<&str>) -> String {
    match f {
        Some(f) => t.format(f).to_string(),
        None => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

impl FileEncoder for MappedXml {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let arrays: Vec<ArrayRef> = batch.columns().to_vec();
        let cols = arrays.iter().map(typed_column).collect::<Result<Vec<_>, _>>()?;
        let levels = self.plan.levels();
        let row_node = self.level_nodes[levels - 1].clone();
        let row_depth = depth_of(&self.plan.root, &row_node);
        for i in 0..batch.num_rows() {
            self.rows += 1;
            let row = self.rows;
            // A changed key closes that group (and the ones inside it) and opens new ones.
            for l in 1..levels {
                let key: Vec<Option<String>> = self.plan.group_by[l - 1].iter().map(|&c| plain_text(&cols[c], i)).collect();
                let same = self.groups[l - 1].as_ref().is_some_and(|g| g.key == key);
                if !same {
                    self.close_group(l)?;
                    let mut texts = vec![None; self.plan.values.len()];
                    for (vi, v) in self.plan.values.iter().enumerate() {
                        if v.level == l
                            && let Source::Column(c) = v.source
                        {
                            texts[vi] = column_text(v, &cols[c], arrays[c].data_type(), i);
                        }
                    }
                    let sums = vec![(0, 0.0); self.plan.values.len()];
                    self.groups[l - 1] = Some(OpenGroup { key, texts, totals: Totals { rows: 0, sums } });
                }
            }
            Self::add_totals(&mut self.totals, &self.plan, &cols, &arrays, i);
            for g in self.groups.iter_mut().flatten() {
                Self::add_totals(&mut g.totals, &self.plan, &cols, &arrays, i);
            }
            let mut spool = std::mem::replace(&mut self.spools[levels - 1], Spool::new(&self.ctx.work_dir));
            let rendered = {
                let this = &*self;
                let mut text = |vi: usize| this.row_text(vi, &cols, &arrays, i, row);
                let mut insert = |_: &mut dyn Write| Ok(());
                this.render(&row_node, row_depth, &mut text, &mut insert, &mut spool, true)
            };
            self.spools[levels - 1] = spool;
            rendered?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), FormatError> {
        if self.plan.levels() > 1 {
            self.close_group(1)?;
        }
        let root = self.plan.root.clone();
        let mut body = std::mem::replace(&mut self.spools[0], Spool::new(&self.ctx.work_dir));
        let mut out = self.out.take().ok_or_else(|| FormatError::Internal("finished twice".into()))?;
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        {
            let this = &*self;
            let rows = this.rows;
            let mut text = |vi: usize| this.finish_text(vi, this.fixed_text(vi, &this.totals), rows);
            let mut insert = |o: &mut dyn Write| body.drain_into(o);
            this.render(&root, 0, &mut text, &mut insert, &mut out, true)?;
        }
        out.into_inner().map_err(|e| FormatError::Io(e.into_error()))?.sync_all()?;
        Ok(())
    }
}
