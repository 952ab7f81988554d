//! PDF/A-3b reports: the export as a paginated table, with the data itself attached inside the
//! file as CSV, so that the archived copy carries the machine-readable rows.
//!
//! Pages are A4, landscape when the columns do not fit portrait (see [`layout`]). Each page has
//! a header (the title, the generation time in UTC, the export id and the filters), the table's
//! header row, as many rows as fit, and a footer with the title and `page N` (pages are finished
//! as they fill, before the total is known, so the footer does not say "of M"; PDF viewers
//! show the count). Column widths come from the header and the first batch's texts, scaled to
//! the page; numbers are right-aligned; a cell too long for its column is cut with an ellipsis
//! (the attached CSV has it whole). Values are written as in the CSV export: decimals with
//! their scale, dates ISO 8601, timestamps RFC 3339 in UTC, nulls empty.
//!
//! The attachment is the CSV export of the same data with default options, written by
//! [`CsvEncoder`] to a temporary file as batches arrive and embedded at the end as an
//! associated file (`/AF`, `AFRelationship /Data`, MIME `text/csv`). Rows are held only until
//! their page is drawn. krilla writes the file and checks it against PDF/A-3b: fonts embedded
//! and subset, XMP metadata with `pdfaid:part 3` and `pdfaid:conformance B`, an sRGB output
//! intent.

mod fonts;
pub mod layout;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, Timelike};
use krilla::color::rgb;
use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::surface::Surface;
use krilla::{Document, SerializeSettings};

use super::cells::{TypedColumn, typed_column, write_plain};
use super::csv::{CsvEncoder, CsvOptions};
use super::{FileContext, FileEncoder, FormatError, RowEncoder};
use crate::model::spec::{FormatSpecObject, PdfAttachment, PdfOrientation};
use fonts::{Face, Line, fonts};
use layout::*;

/// Rows of the first batch measured for the column widths.
const MEASURED_ROWS: usize = 1000;

/// The options of a PDF report.
#[derive(Debug, Clone)]
pub struct PdfOptions {
    pub title: String,
    pub orientation: PdfOrientation,
    pub attachment: PdfAttachment,
}

impl PdfOptions {
    pub fn from_spec(o: &FormatSpecObject, ctx: &FileContext) -> Self {
        Self {
            title: o.title.clone().unwrap_or_else(|| ctx.title.clone()),
            orientation: o.orientation.unwrap_or_default(),
            attachment: o.attachment.unwrap_or_default(),
        }
    }
}

/// The CSV copy of the data, written as batches arrive.
struct Attachment {
    encoder: CsvEncoder,
    file: BufWriter<File>,
    /// Removed when dropped.
    tmp: tempfile::TempPath,
    buf: Vec<u8>,
}

/// The table's geometry, fixed by the first batch.
struct Table {
    page: Page,
    /// Left edge and width of each column.
    columns: Vec<(f32, f32)>,
}

/// Writes the report. krilla's document is not `Send`, so it lives on a thread of its own
/// that draws pages from the batches it is sent (a bounded channel: at most two batches wait),
/// while the CSV attachment is written on the caller's thread.
pub struct PdfEncoder {
    sender: Option<SyncSender<Message>>,
    worker: Option<JoinHandle<Result<(), FormatError>>>,
    attachment: Option<Attachment>,
    rows: u64,
}

enum Message {
    Batch(RecordBatch),
    /// No more rows: embed this CSV file (with this many rows) and write the file.
    Finish(Option<(PathBuf, u64)>),
}

impl PdfEncoder {
    pub fn new(opts: PdfOptions, schema: &SchemaRef, ctx: &FileContext, out: &Path) -> Result<Self, FormatError> {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let attachment = match opts.attachment {
            PdfAttachment::None => None,
            PdfAttachment::Csv => {
                let tmp = tempfile::Builder::new().prefix("pdf-data-").suffix(".csv").tempfile_in(&ctx.work_dir)?;
                let (file, tmp) = tmp.into_parts();
                let encoder = CsvEncoder::new(CsvOptions::default());
                let mut file = BufWriter::with_capacity(1 << 20, file);
                file.write_all(&encoder.header(&names))?;
                Some(Attachment { encoder, file, tmp, buf: Vec::new() })
            }
        };
        let (sender, receiver) = sync_channel::<Message>(2);
        let (schema, ctx, out) = (schema.clone(), ctx.clone(), out.to_path_buf());
        let worker = std::thread::Builder::new().name("pdf-report".into()).spawn(move || {
            let mut report = Report::new(opts, &schema, ctx, out)?;
            for message in receiver {
                match message {
                    Message::Batch(batch) => report.add(&batch)?,
                    Message::Finish(attachment) => return report.finish(attachment),
                }
            }
            Err(FormatError::Internal("the PDF report was dropped before it was finished".into()))
        })?;
        Ok(Self { sender: Some(sender), worker: Some(worker), attachment, rows: 0 })
    }

    /// The worker's result, once it has stopped.
    fn join(&mut self) -> Result<(), FormatError> {
        self.sender = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(FormatError::Internal("the PDF report's thread panicked".into())),
            None => Err(FormatError::Internal("the PDF report was already finished".into())),
        }
    }

    fn send(&mut self, message: Message) -> Result<(), FormatError> {
        let sent = self.sender.as_ref().map(|s| s.send(message).is_ok()).unwrap_or(false);
        if sent {
            return Ok(());
        }
        // The worker stopped early: its error says why.
        self.join()?;
        Err(FormatError::Internal("the PDF report stopped early".into()))
    }
}

impl FileEncoder for PdfEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if let Some(a) = &mut self.attachment {
            a.buf.clear();
            a.encoder.encode_batch(batch, &mut a.buf)?;
            a.file.write_all(&a.buf)?;
        }
        self.rows += batch.num_rows() as u64;
        self.send(Message::Batch(batch.clone()))
    }

    fn finish(mut self: Box<Self>) -> Result<(), FormatError> {
        let csv = match self.attachment.take() {
            Some(Attachment { mut file, tmp, .. }) => {
                // Everything buffered must be on disk before the worker reads the file.
                file.flush()?;
                drop(file);
                Some(tmp)
            }
            None => None,
        };
        let rows = self.rows;
        self.send(Message::Finish(csv.as_ref().map(|t| (t.to_path_buf(), rows))))?;
        let result = self.join();
        drop(csv);
        result
    }
}

/// The document being drawn, on the worker thread.
struct Report {
    doc: Document,
    out: PathBuf,
    opts: PdfOptions,
    ctx: FileContext,
    names: Vec<String>,
    /// Right-aligned columns.
    numeric: Vec<bool>,
    /// Columns that keep their natural width when the page is too narrow (not text).
    fixed: Vec<bool>,
    /// The generation line and the filter lines of the page header.
    meta_lines: Vec<String>,
    table: Option<Table>,
    /// Rows of the page being filled, as the texts of their cells.
    pending: Vec<Vec<String>>,
    pages: usize,
}

impl Report {
    fn new(opts: PdfOptions, schema: &SchemaRef, ctx: FileContext, out: PathBuf) -> Result<Self, FormatError> {
        let configuration = ConfigurationBuilder::new()
            .with_archival_validator(Archival::A3_B)
            .finish()
            .map_err(|e| FormatError::Internal(format!("PDF/A-3b configuration: {e:?}")))?;
        let settings = SerializeSettings { configuration, enable_tagging: false, ..SerializeSettings::default() };
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let numeric = schema.fields().iter().map(|f| is_numeric(f.data_type())).collect();
        let fixed =
            schema.fields().iter().map(|f| !matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)).collect();
        let generated = format!(
            "Generated {} UTC · export {} · {}",
            ctx.generated_at.format("%Y-%m-%d %H:%M:%S"),
            ctx.export_id,
            match opts.attachment {
                PdfAttachment::Csv => "the data is attached as CSV",
                PdfAttachment::None => "no data attached",
            }
        );
        let filters = if ctx.filters.is_empty() { "Filters: none".to_string() } else { format!("Filters: {}", ctx.filters.join("; ")) };
        let mut meta_lines = vec![generated];
        // Wrapped to the narrower (portrait) width, so the header's height does not depend on
        // the orientation chosen later.
        let usable = Page::new(false, 1).usable_width() / META_SIZE;
        meta_lines.extend(wrap(&fonts().regular, &filters, usable, MAX_FILTER_LINES));
        Ok(Self {
            doc: Document::new_with(settings),
            out,
            opts,
            ctx,
            names,
            numeric,
            fixed,
            meta_lines,
            table: None,
            pending: Vec::new(),
            pages: 0,
        })
    }

    /// Fix the page and the column widths from the header and the rows of the first batch.
    fn plan(&self, sample: &[Vec<String>]) -> Result<Table, FormatError> {
        let f = fonts();
        let natural: Vec<f32> = self
            .names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let header = f.bold.measure(name);
                let widest = sample.iter().map(|row| f.regular.measure(&row[c])).fold(0.0f32, f32::max);
                header.max(widest) * CELL_SIZE + 2.0 * CELL_PAD + 1.0
            })
            .collect();
        let landscape = choose_landscape(self.opts.orientation, &natural);
        let page = Page::new(landscape, self.meta_lines.len() - 1);
        let widths = column_widths(&natural, &self.fixed, page.usable_width()).ok_or_else(|| {
            FormatError::Invalid(format!(
                "{} columns do not fit on a {} A4 page (at most {} at {FLOOR_COLUMN} points each); select fewer columns",
                self.names.len(),
                if landscape { "landscape" } else { "portrait" },
                (page.usable_width() / FLOOR_COLUMN) as usize
            ))
        })?;
        let mut x = MARGIN;
        let columns = widths
            .iter()
            .map(|w| {
                let col = (x, *w);
                x += w;
                col
            })
            .collect();
        Ok(Table { page, columns })
    }

    /// Draw the pending rows as the next page.
    fn draw_page(&mut self) -> Result<(), FormatError> {
        let table = self.table.as_ref().ok_or_else(|| FormatError::Internal("a page drawn before its layout".into()))?;
        let p = table.page;
        let size = Size::from_wh(p.width, p.height).ok_or_else(|| FormatError::Internal("page size".into()))?;
        self.pages += 1;
        let f = fonts();
        let mut page = self.doc.start_page_with(PageSettings::new(size));
        let mut s = page.surface();
        let usable = p.usable_width();

        // Page header.
        let mut y = MARGIN + TITLE_SIZE;
        draw(&mut s, &f.bold, MARGIN, y, TITLE_SIZE, &f.bold.line(&self.opts.title, usable / TITLE_SIZE));
        y += 4.0;
        for line in &self.meta_lines {
            y += META_LINE;
            draw(&mut s, &f.regular, MARGIN, y, META_SIZE, &f.regular.line(line, usable / META_SIZE));
        }

        // Header row on a tinted band, a rule under it, and every other row shaded.
        let top = p.table_top;
        let body = top + HEADER_ROW_HEIGHT;
        fill_rects(&mut s, rgb::Color::new(222, 228, 238), &[(MARGIN, top, usable, HEADER_ROW_HEIGHT)]);
        let stripes: Vec<_> =
            (0..self.pending.len()).filter(|r| r % 2 == 1).map(|r| (MARGIN, body + r as f32 * ROW_HEIGHT, usable, ROW_HEIGHT)).collect();
        fill_rects(&mut s, rgb::Color::new(244, 245, 247), &stripes);
        fill_rects(&mut s, rgb::Color::new(90, 90, 90), &[(MARGIN, body - 0.4, usable, 0.8)]);
        let bottom = body + self.pending.len() as f32 * ROW_HEIGHT;
        fill_rects(&mut s, rgb::Color::new(150, 150, 150), &[(MARGIN, bottom, usable, 0.5)]);
        s.set_fill(Some(Fill::default()));

        for (c, name) in self.names.iter().enumerate() {
            cell(&mut s, &f.bold, table.columns[c], top + HEADER_ROW_HEIGHT - 3.5, name, self.numeric[c]);
        }
        for (r, row) in self.pending.iter().enumerate() {
            let baseline = body + (r + 1) as f32 * ROW_HEIGHT - 2.8;
            for (c, text) in row.iter().enumerate() {
                if !text.is_empty() {
                    cell(&mut s, &f.regular, table.columns[c], baseline, text, self.numeric[c]);
                }
            }
        }
        if self.pending.is_empty() {
            draw(&mut s, &f.regular, MARGIN + CELL_PAD, body + ROW_HEIGHT - 2.8, CELL_SIZE, &f.regular.line("No rows.", usable));
        }

        // Footer.
        let number = f.regular.line(&format!("page {}", self.pages), usable / META_SIZE);
        let right = MARGIN + usable - number.width_at(META_SIZE);
        let title = f.regular.line(&self.opts.title, (right - MARGIN - 12.0).max(0.0) / META_SIZE);
        draw(&mut s, &f.regular, MARGIN, p.footer_baseline, META_SIZE, &title);
        draw(&mut s, &f.regular, right, p.footer_baseline, META_SIZE, &number);
        s.finish();
        page.finish();
        self.pending.clear();
        Ok(())
    }

    /// The metadata PDF/A asks for (a creation date) and the title.
    fn metadata(&self) -> Metadata {
        let date = self.metadata_date();
        Metadata::new()
            .title(self.opts.title.clone())
            .creator("egress".to_string())
            .description(format!("Export {}", self.ctx.export_id))
            .creation_date(date)
    }
}

impl Report {
    /// Lay out the rows of `batch`, drawing each page as it fills.
    fn add(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let cols: Vec<TypedColumn<'_>> = batch.columns().iter().map(typed_column).collect::<Result<_, _>>()?;
        let mut buf = Vec::new();
        let mut row = 0;
        while row < batch.num_rows() {
            if self.table.is_none() {
                let n = batch.num_rows().min(MEASURED_ROWS);
                let sample: Vec<Vec<String>> = (0..n).map(|r| texts(&cols, r, &mut buf)).collect();
                self.table = Some(self.plan(&sample)?);
            }
            let per_page = self.table.as_ref().map_or(1, |t| t.page.rows_per_page);
            self.pending.push(texts(&cols, row, &mut buf));
            row += 1;
            if self.pending.len() == per_page {
                self.draw_page()?;
            }
        }
        Ok(())
    }

    /// Draw the last page, embed the CSV file `attachment` (holding `rows` rows) and write the
    /// PDF.
    fn finish(mut self, attachment: Option<(PathBuf, u64)>) -> Result<(), FormatError> {
        if self.table.is_none() {
            self.table = Some(self.plan(&[])?);
        }
        if !self.pending.is_empty() || self.pages == 0 {
            self.draw_page()?;
        }
        let metadata = self.metadata();
        let mut doc = std::mem::take(&mut self.doc);
        doc.set_metadata(metadata);
        if let Some((path, rows)) = attachment {
            let data = std::fs::read(&path)?;
            let date = self.metadata_date();
            let file = EmbeddedFile {
                path: format!("{}.csv", self.ctx.export_id),
                mime_type: MimeType::new("text/csv"),
                description: Some(format!("The {} rows of this report as a CSV export (UTF-8, comma-separated, header row)", rows)),
                association_kind: AssociationKind::Data,
                data: data.into(),
                modification_date: Some(date),
                compress: Some(true),
                location: None,
            };
            doc.embed_file(file).ok_or_else(|| FormatError::Internal("the CSV attachment was embedded twice".into()))?;
        }
        let bytes = doc.finish().map_err(|e| FormatError::Internal(format!("PDF/A-3b: {e:?}")))?;
        std::fs::write(&self.out, bytes)?;
        Ok(())
    }
}

impl Report {
    /// The generation time, for the document and the attachment.
    fn metadata_date(&self) -> DateTime {
        let t = self.ctx.generated_at;
        DateTime::new(t.year().clamp(0, 9999) as u16)
            .month(t.month() as u8)
            .day(t.day() as u8)
            .hour(t.hour() as u8)
            .minute(t.minute() as u8)
            .second(t.second() as u8)
            .utc_offset_hour(0)
            .utc_offset_minute(0)
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer()
        || t.is_floating()
        || matches!(t, DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// The texts of row `r`'s cells, as the CSV export writes the values (null as empty).
fn texts(cols: &[TypedColumn<'_>], r: usize, buf: &mut Vec<u8>) -> Vec<String> {
    cols.iter()
        .map(|col| {
            if col.is_null(r) {
                String::new()
            } else if let Some(s) = col.text(r) {
                s.to_string()
            } else {
                buf.clear();
                write_plain(&col.column, r, buf);
                String::from_utf8_lossy(buf).into_owned()
            }
        })
        .collect()
}

/// `text` in at most `max_lines` lines of at most `max` ems, broken at spaces; the last line is
/// cut with an ellipsis when the text goes on.
fn wrap(face: &Face, text: &str, max: f32, max_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if lines.len() + 1 == max_lines || face.measure(rest) <= max {
            lines.push(face.line(rest, max).text);
            break;
        }
        // The longest prefix ending before a space that fits; a word longer than the line is cut.
        let mut end = 0;
        let mut width = 0.0;
        for (i, c) in rest.char_indices() {
            width += face.measure(c.encode_utf8(&mut [0; 4]));
            if width > max {
                break;
            }
            if c == ' ' {
                end = i;
            }
        }
        if end == 0 {
            let line = face.line(rest, max).text;
            let kept = line.trim_end_matches('…').len();
            lines.push(line);
            rest = rest[kept..].trim_start();
            continue;
        }
        lines.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// Draw a laid-out line with its baseline at (`x`, `baseline`).
fn draw(s: &mut Surface<'_>, face: &Face, x: f32, baseline: f32, size: f32, line: &Line) {
    if !line.glyphs.is_empty() {
        s.draw_glyphs(Point::from_xy(x, baseline), &line.glyphs, face.font.clone(), &line.text, size, false);
    }
}

/// One cell's text inside its column (`left`, `width`), cut to fit; numbers right-aligned.
fn cell(s: &mut Surface<'_>, face: &Face, (left, width): (f32, f32), baseline: f32, text: &str, right: bool) {
    let room = (width - 2.0 * CELL_PAD).max(0.0);
    let line = face.line(text, room / CELL_SIZE);
    let x = if right { left + width - CELL_PAD - line.width_at(CELL_SIZE) } else { left + CELL_PAD };
    draw(s, face, x, baseline, CELL_SIZE, &line);
}

/// Fill rectangles (`x`, `y`, `width`, `height`) in one colour, as one path.
fn fill_rects(s: &mut Surface<'_>, color: rgb::Color, rects: &[(f32, f32, f32, f32)]) {
    let mut pb = PathBuilder::new();
    for &(x, y, w, h) in rects {
        if let Some(r) = Rect::from_xywh(x, y, w, h) {
            pb.push_rect(r);
        }
    }
    if let Some(path) = pb.finish() {
        s.set_fill(Some(Fill { paint: color.into(), opacity: NormalizedF32::ONE, rule: FillRule::NonZero }));
        s.draw_path(&path);
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn context(dir: &Path) -> FileContext {
        FileContext {
            title: "Ledger ΑΒΓ".into(),
            export_id: "exp_1".into(),
            generated_at: "2026-11-24T10:00:00Z".parse().unwrap(),
            filters: vec!["amount >= 10".into(), "country in [DE, GR]".into()],
            spec: serde_json::Value::Null,
            work_dir: dir.to_path_buf(),
        }
    }

    fn batch(from: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<Option<String>> =
            ids.iter().map(|i| if i % 7 == 0 { None } else { Some(format!("Σωκράτης Жуков {i} 漢")) }).collect();
        let amounts: Vec<i128> = ids.iter().map(|i| *i as i128 * 1005).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Decimal128Array::from(amounts).with_precision_and_scale(18, 2).unwrap()),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn tool(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} must be installed: {e}"));
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write(dir: &Path, opts: PdfOptions, batches: &[RecordBatch]) -> PathBuf {
        let out = dir.join("r.pdf");
        let schema = batch(0, 1).schema();
        let mut enc: Box<dyn FileEncoder> = Box::new(PdfEncoder::new(opts, &schema, &context(dir), &out).unwrap());
        for b in batches {
            enc.write_batch(b).unwrap();
        }
        enc.finish().unwrap();
        out
    }

    fn options() -> PdfOptions {
        PdfOptions { title: "Ledger ΑΒΓ".into(), orientation: PdfOrientation::Auto, attachment: PdfAttachment::Csv }
    }

    #[test]
    fn rows_fill_pages_in_order_and_the_file_passes_qpdf() {
        let dir = tempfile::tempdir().unwrap();
        let per_page = Page::new(false, 1).rows_per_page as i64;
        let out = write(dir.path(), options(), &[batch(0, per_page - 3), batch(per_page - 3, per_page + 10)]);
        tool(Command::new("qpdf").arg("--check").arg(&out));
        let info = tool(Command::new("pdfinfo").arg(&out));
        assert!(info.contains("Pages:           3"), "{info}");
        let text = tool(Command::new("pdftotext").args(["-layout"]).arg(&out).arg("-"));
        assert!(text.contains("Σωκράτης Жуков 1 \u{FFFD}"), "{text}");
        assert!(text.contains("page 3") && text.contains("Ledger ΑΒΓ"));
        assert!(text.contains("Filters: amount >= 10; country in [DE, GR]"));
        assert!(text.contains("10.05"), "decimals keep their scale");
    }

    #[test]
    fn the_attachment_is_the_csv_export_of_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let batches = [batch(0, 30), batch(30, 5)];
        let out = write(dir.path(), options(), &batches);
        let saved = dir.path().join("saved.csv");
        tool(Command::new("pdfdetach").args(["-save", "1", "-o"]).arg(&saved).arg(&out));
        let mut enc = CsvEncoder::new(CsvOptions::default());
        let mut expected = enc.header(&["id".into(), "name".into(), "amount".into()]);
        for b in &batches {
            enc.encode_batch(b, &mut expected).unwrap();
        }
        assert_eq!(std::fs::read(&saved).unwrap(), expected);
        let no = PdfOptions { attachment: PdfAttachment::None, ..options() };
        let out = write(dir.path(), no, &batches);
        assert!(tool(Command::new("pdfdetach").arg("-list").arg(&out)).contains("0 embedded files"));
    }

    #[test]
    fn an_empty_export_is_one_page_with_the_header_row() {
        let dir = tempfile::tempdir().unwrap();
        let out = write(dir.path(), options(), &[]);
        let info = tool(Command::new("pdfinfo").arg(&out));
        assert!(info.contains("Pages:           1"), "{info}");
        let text = tool(Command::new("pdftotext").arg(&out).arg("-"));
        assert!(text.contains("No rows.") && text.contains("amount"), "{text}");
    }

    #[test]
    fn filters_wrap_to_at_most_three_lines() {
        let f = &fonts().regular;
        let long = (0..60).map(|i| format!("column_{i} = {i}")).collect::<Vec<_>>().join("; ");
        let lines = wrap(f, &long, 300.0 / META_SIZE, MAX_FILTER_LINES);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'));
        assert!(lines.iter().all(|l| f.measure(l) * META_SIZE <= 300.0 + 1e-3));
        assert_eq!(wrap(f, "a b", 100.0, 3), vec!["a b".to_string()]);
    }
}
