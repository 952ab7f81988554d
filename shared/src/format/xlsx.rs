//! Excel workbooks (`.xlsx`), written with rust_xlsxwriter in constant-memory mode: each row
//! goes to the sheet's temporary file as it is written, so memory stays flat whatever the row
//! count.
//!
//! Cells are typed: integers, floats and decimals are numbers (decimals with a format showing
//! their scale), dates and timestamps are date cells (`yyyy-mm-dd`, `yyyy-mm-dd hh:mm:ss`),
//! booleans are booleans, text is text, and null is an empty cell. The header row is bold and
//! frozen, with an autofilter over the written range; column widths come from the header and
//! the first batch. A sheet holds at most 1,048,576 rows (Excel's limit), so after 1,048,575
//! data rows the next rows go to a new sheet `Data (2)`, `Data (3)`, ... with its own header.
//! Without a header row there is no frozen pane or autofilter, and a sheet takes 1,048,576 rows.
//!
//! What Excel cannot hold, and what is written instead:
//! - NaN and ±infinity: an empty cell (Excel has no such numbers).
//! - Integers beyond 15 digits (|v| > 999,999,999,999,999): text with every digit. Excel keeps
//!   15 significant digits; as numbers they would be rounded.
//! - Decimals are numbers (binary floats), exact up to 15 significant digits.
//! - Dates and timestamps before 1900-03-01 or after 9999-12-31: ISO 8601 text (`1899-12-31`,
//!   `1850-01-01T00:00:00Z`). Excel has no dates before 1900, and its serial numbers for
//!   January and February 1900 count a 29 February that did not exist (so other programs read
//!   them a day off).
//! - Timestamps are written as wall time in UTC (Excel has no time zones), or in the column's
//!   fixed offset (`+02:00`) when it has one; a named zone is written in UTC.
//! - Empty text is an empty cell, like null.
//! - Text longer than 32,767 characters (a cell's limit) fails the export with the row, the
//!   column and the length.

use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::batches::{FileContext, FileEncoder, FormatError};
use super::cells::{Column, TypedColumn, typed_column, write_date, write_timestamp};
use crate::model::spec::FormatSpecObject;

/// Rows in an Excel sheet, the header row included.
pub const EXCEL_MAX_ROWS: u32 = 1_048_576;
/// Columns in an Excel sheet.
pub const EXCEL_MAX_COLUMNS: usize = 16_384;
/// Characters (UTF-16 code units) in one cell.
pub const MAX_CELL_CHARS: usize = 32_767;
/// Characters in a sheet name.
pub const MAX_SHEET_NAME_CHARS: usize = 31;
pub const DEFAULT_SHEET_NAME: &str = "Data";
pub const METADATA_SHEET_NAME: &str = "Metadata";
/// The largest integer Excel holds exactly (15 significant digits).
pub const MAX_EXACT_INTEGER: i64 = 999_999_999_999_999;
/// Excel's day number of 1970-01-01 (day 1 is 1900-01-01, counting 29 February 1900).
const UNIX_EPOCH_SERIAL: i64 = 25_569;
/// Days from 1970-01-01 to 1900-03-01 and to 9999-12-31: the dates written as date cells.
const FIRST_DAY: i64 = -25_508;
const LAST_DAY: i64 = 2_932_896;
/// Column widths, in characters of the default font.
const MIN_WIDTH: f64 = 8.0;
const MAX_WIDTH: f64 = 60.0;
/// Rows of the first batch looked at for the column widths.
const WIDTH_SAMPLE_ROWS: usize = 1_000;
/// Above this much sheet XML (estimated), the file is written with ZIP64 records (a zip entry
/// holds 4 GiB without them).
const ZIP64_ABOVE_BYTES: u64 = 3_500_000_000;
const CHARS_NOT_IN_SHEET_NAMES: &[char] = &['[', ']', ':', '*', '?', '/', '\\'];

/// Whether `name` can name a sheet: 1 to 31 characters, none of `[ ] : * ? / \`, not starting
/// or ending with an apostrophe, not `History` (Excel keeps it), and not `Metadata` when the
/// metadata sheet is written. Returns what is allowed otherwise.
pub fn check_sheet_name(name: &str, metadata_sheet: bool) -> Result<(), String> {
    let n = name.chars().count();
    let ok = (1..=MAX_SHEET_NAME_CHARS).contains(&n)
        && !name.contains(CHARS_NOT_IN_SHEET_NAMES)
        && !name.starts_with('\'')
        && !name.ends_with('\'')
        && !name.chars().any(char::is_control)
        && !name.eq_ignore_ascii_case("History");
    if !ok {
        return Err("an Excel sheet name: 1 to 31 characters, none of [ ] : * ? / \\ or control characters, \
                    not starting or ending with ', not History"
            .into());
    }
    if metadata_sheet && name.to_lowercase() == METADATA_SHEET_NAME.to_lowercase() {
        return Err("a name other than Metadata, which the metadata sheet takes".into());
    }
    Ok(())
}

/// The name of data sheet `index` (0-based): `Data`, then `Data (2)`, `Data (3)`, ...; the base
/// is shortened when the number would make the name longer than 31 characters.
pub fn sheet_name(base: &str, index: usize) -> String {
    if index == 0 {
        return base.to_string();
    }
    let suffix = format!(" ({})", index + 1);
    let keep = MAX_SHEET_NAME_CHARS - suffix.chars().count();
    let mut head: String = base.chars().take(keep).collect();
    // A shortened name must not end with an apostrophe either; it cannot end the whole name
    // here, but keep the rule simple and visible.
    while head.ends_with('\'') {
        head.pop();
    }
    head + &suffix
}

/// The options of an xlsx file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlsxOptions {
    pub sheet_name: String,
    pub header: bool,
    pub metadata_sheet: bool,
    /// Rows in a sheet, the header included ([`EXCEL_MAX_ROWS`]; tests lower it).
    pub sheet_rows: u32,
}

impl XlsxOptions {
    pub fn from_spec(o: &FormatSpecObject) -> Self {
        Self {
            sheet_name: o.sheet_name.clone().unwrap_or_else(|| DEFAULT_SHEET_NAME.to_string()),
            header: o.header.unwrap_or(true),
            metadata_sheet: o.metadata_sheet.unwrap_or(false),
            sheet_rows: EXCEL_MAX_ROWS,
        }
    }
}

/// The cell formats, made once.
struct Formats {
    header: Format,
    label: Format,
    datetime: Format,
    /// Per column: the number format of its cells (dates, timestamps, decimals), if any.
    columns: Vec<Option<Format>>,
}

impl Formats {
    fn new(schema: &SchemaRef) -> Self {
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let columns = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Date32 | DataType::Date64 => Some(date.clone()),
                DataType::Timestamp(..) => Some(datetime.clone()),
                DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => Some(Format::new().set_num_format(decimal_format(*s))),
                _ => None,
            })
            .collect();
        Self { header: Format::new().set_bold(), label: Format::new().set_bold(), datetime, columns }
    }
}

/// The number format that shows exactly `scale` decimals: `0`, `0.0`, `0.00`, ...
pub fn decimal_format(scale: i8) -> String {
    if scale <= 0 { "0".to_string() } else { format!("0.{}", "0".repeat(scale as usize)) }
}

/// Writes one workbook from the export's batches.
pub struct XlsxEncoder {
    workbook: Workbook,
    out: PathBuf,
    options: XlsxOptions,
    ctx: FileContext,
    names: Vec<String>,
    formats: Formats,
    /// The sheet being written, and the names of the sheets before it.
    sheet: Option<Worksheet>,
    sheet_names: Vec<String>,
    /// The next row of the current sheet.
    next_row: u32,
    /// Data rows written so far, all sheets.
    rows: u64,
    widths: Option<Vec<f64>>,
    /// A rough size of the largest sheet's XML, to decide on ZIP64.
    sheet_xml_bytes: u64,
    largest_sheet_xml_bytes: u64,
    text: String,
}

impl XlsxEncoder {
    pub fn new(options: XlsxOptions, schema: &SchemaRef, ctx: &FileContext, out: &Path) -> Result<Self, FormatError> {
        if schema.fields().len() > EXCEL_MAX_COLUMNS {
            return Err(FormatError::Invalid(format!(
                "{} columns; an Excel sheet holds at most {EXCEL_MAX_COLUMNS}",
                schema.fields().len()
            )));
        }
        check_sheet_name(&options.sheet_name, options.metadata_sheet)
            .map_err(|why| FormatError::Invalid(format!("sheet name `{}`: expected {why}", options.sheet_name)))?;
        if options.sheet_rows < 2 {
            return Err(FormatError::Internal("a sheet must hold at least two rows".into()));
        }
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        for name in &names {
            if let Some(n) = too_long(name) {
                return Err(FormatError::Invalid(format!(
                    "the column name `{}…` has {n} characters; an Excel cell holds at most {MAX_CELL_CHARS}",
                    name.chars().take(40).collect::<String>()
                )));
            }
        }
        let mut workbook = Workbook::new();
        workbook.set_tempdir(&ctx.work_dir).map_err(xlsx_error)?;
        Ok(Self {
            workbook,
            out: out.to_path_buf(),
            formats: Formats::new(schema),
            options,
            ctx: ctx.clone(),
            names,
            sheet: None,
            sheet_names: Vec::new(),
            next_row: 0,
            rows: 0,
            widths: None,
            sheet_xml_bytes: 0,
            largest_sheet_xml_bytes: 0,
            text: String::new(),
        })
    }

    /// Close the current sheet (its autofilter now that its rows are known) and add it to the
    /// workbook.
    fn close_sheet(&mut self) -> Result<(), FormatError> {
        let Some(mut sheet) = self.sheet.take() else { return Ok(()) };
        if self.options.header && !self.names.is_empty() {
            let last_row = self.next_row.saturating_sub(1);
            sheet.autofilter(0, 0, last_row, (self.names.len() - 1) as u16).map_err(xlsx_error)?;
        }
        self.workbook.push_worksheet(sheet);
        self.largest_sheet_xml_bytes = self.largest_sheet_xml_bytes.max(self.sheet_xml_bytes);
        Ok(())
    }

    /// Start the next data sheet: its name, widths, and the bold frozen header.
    fn open_sheet(&mut self) -> Result<(), FormatError> {
        self.close_sheet()?;
        let name = sheet_name(&self.options.sheet_name, self.sheet_names.len());
        let mut sheet = self.workbook.new_worksheet_with_constant_memory().map_err(xlsx_error)?;
        sheet.set_name(&name).map_err(xlsx_error)?;
        if let Some(widths) = &self.widths {
            for (c, w) in widths.iter().enumerate() {
                sheet.set_column_width(c as u16, *w).map_err(xlsx_error)?;
            }
        }
        self.next_row = 0;
        self.sheet_xml_bytes = 0;
        if self.options.header {
            for (c, name) in self.names.iter().enumerate() {
                sheet.write_string_with_format(0, c as u16, name, &self.formats.header).map_err(xlsx_error)?;
            }
            sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
            self.next_row = 1;
        }
        self.sheet_names.push(name);
        self.sheet = Some(sheet);
        Ok(())
    }

    /// The metadata sheet: what was exported, when, and how.
    fn metadata_sheet(&mut self) -> Result<(), FormatError> {
        let sheet = self.workbook.add_worksheet();
        sheet.set_name(METADATA_SHEET_NAME).map_err(xlsx_error)?;
        sheet.set_column_width(0, 20).map_err(xlsx_error)?;
        sheet.set_column_width(1, 100).map_err(xlsx_error)?;
        let label = &self.formats.label;
        let mut row = 0u32;
        let mut line = |sheet: &mut Worksheet, key: &str, value: &str| -> Result<(), FormatError> {
            if !key.is_empty() {
                sheet.write_string_with_format(row, 0, key, label).map_err(xlsx_error)?;
            }
            sheet.write_string(row, 1, value).map_err(xlsx_error)?;
            row += 1;
            Ok(())
        };
        line(sheet, "Export id", &self.ctx.export_id)?;
        line(sheet, "Title", &cut(&self.ctx.title, MAX_CELL_CHARS)[0])?;
        line(sheet, "Sheets", &cut(&self.sheet_names.join(", "), MAX_CELL_CHARS)[0])?;
        if self.ctx.filters.is_empty() {
            line(sheet, "Filters", "none")?;
        }
        for (i, f) in self.ctx.filters.iter().enumerate() {
            line(sheet, if i == 0 { "Filters" } else { "" }, &cut(f, MAX_CELL_CHARS)[0])?;
        }
        let spec = serde_json::to_string_pretty(&self.ctx.spec).map_err(|e| FormatError::Internal(e.to_string()))?;
        // A long spec (an inline source's rows) continues over the rows below.
        for (i, piece) in cut(&spec, MAX_CELL_CHARS).iter().enumerate() {
            line(sheet, if i == 0 { "Spec" } else { "" }, piece)?;
        }
        sheet.write_string_with_format(row, 0, "Rows", label).map_err(xlsx_error)?;
        sheet.write_number(row, 1, self.rows as f64).map_err(xlsx_error)?;
        row += 1;
        sheet.write_string_with_format(row, 0, "Generated at (UTC)", label).map_err(xlsx_error)?;
        let g = &self.ctx.generated_at;
        let micros = g.timestamp_micros();
        let serial = timestamp_serial(micros, 1_000_000, 0).ok_or_else(|| FormatError::Internal(format!("generated at {g}")))?;
        sheet.write_number_with_format(row, 1, serial, &self.formats.datetime).map_err(xlsx_error)?;
        Ok(())
    }

    /// Column widths from the header and the first rows.
    fn measure(&self, columns: &[TypedColumn<'_>], rows: usize) -> Vec<f64> {
        let sample = rows.min(WIDTH_SAMPLE_ROWS);
        self.names
            .iter()
            .zip(columns)
            .map(|(name, col)| {
                // The header's autofilter button takes about two characters.
                let mut widest = if self.options.header { name.chars().count() + 2 } else { 0 };
                for i in 0..sample {
                    if !col.is_null(i) {
                        widest = widest.max(display_width(col, i));
                    }
                }
                (widest as f64 + 1.0).clamp(MIN_WIDTH, MAX_WIDTH)
            })
            .collect()
    }
}

impl FileEncoder for XlsxEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let columns = batch.columns().iter().map(typed_column).collect::<Result<Vec<_>, _>>()?;
        if self.widths.is_none() {
            self.widths = Some(self.measure(&columns, n));
        }
        let capacity = self.options.sheet_rows;
        let mut text = std::mem::take(&mut self.text);
        for i in 0..n {
            if self.sheet.is_none() || self.next_row >= capacity {
                self.open_sheet()?;
            }
            let row = self.next_row;
            let data_row = self.rows + 1;
            let sheet = self.sheet.as_mut().expect("a sheet is open");
            for (c, col) in columns.iter().enumerate() {
                if col.is_null(i) {
                    continue;
                }
                let format = self.formats.columns[c].as_ref();
                self.sheet_xml_bytes +=
                    write_cell(sheet, row, c as u16, col, i, format, &mut text).map_err(|e| cell_error(e, data_row, &self.names[c]))?;
            }
            self.next_row += 1;
            self.rows += 1;
        }
        self.text = text;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), FormatError> {
        if self.sheet.is_none() && self.sheet_names.is_empty() {
            self.open_sheet()?;
        }
        self.close_sheet()?;
        if self.options.metadata_sheet {
            self.metadata_sheet()?;
        }
        if self.largest_sheet_xml_bytes > ZIP64_ABOVE_BYTES {
            self.workbook.use_zip_large_file(true);
        }
        let out = self.out.clone();
        self.workbook.save(&out).map_err(xlsx_error)?;
        Ok(())
    }
}

/// Why a cell could not be written.
enum CellError {
    TooLong(usize),
    Xlsx(XlsxError),
}

impl From<XlsxError> for CellError {
    fn from(e: XlsxError) -> Self {
        CellError::Xlsx(e)
    }
}

fn cell_error(e: CellError, data_row: u64, column: &str) -> FormatError {
    match e {
        CellError::TooLong(n) => FormatError::Invalid(format!(
            "row {data_row}, column `{column}`: a text of {n} characters; an Excel cell holds at most {MAX_CELL_CHARS}"
        )),
        CellError::Xlsx(e) => FormatError::Internal(format!("row {data_row}, column `{column}`: {e}")),
    }
}

fn xlsx_error(e: XlsxError) -> FormatError {
    match e {
        XlsxError::IoError(e) | XlsxError::TempFileError(_, e) => FormatError::Io(e),
        other => FormatError::Internal(other.to_string()),
    }
}

/// The length of `s` in UTF-16 code units when it is more than a cell holds.
#[inline]
fn too_long(s: &str) -> Option<usize> {
    // UTF-8 never takes fewer bytes than UTF-16 takes code units.
    if s.len() <= MAX_CELL_CHARS {
        return None;
    }
    let n = s.encode_utf16().count();
    (n > MAX_CELL_CHARS).then_some(n)
}

/// `s` in pieces of at most `max` UTF-16 code units.
fn cut(s: &str, max: usize) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut units = 0;
    for ch in s.chars() {
        if units + ch.len_utf16() > max {
            pieces.push(String::new());
            units = 0;
        }
        units += ch.len_utf16();
        pieces.last_mut().expect("one piece at least").push(ch);
    }
    pieces
}

/// Excel's serial number of a day counted from 1970-01-01, if Excel and other readers agree on
/// it (1900-03-01 to 9999-12-31).
#[inline]
pub fn date_serial(days: i64) -> Option<f64> {
    (FIRST_DAY..=LAST_DAY).contains(&days).then(|| (days + UNIX_EPOCH_SERIAL) as f64)
}

/// Excel's serial number of a timestamp (`value` in units of `1 / per_sec` seconds from the Unix
/// epoch, shown at `offset` seconds from UTC), if its day is in Excel's range.
#[inline]
pub fn timestamp_serial(value: i64, per_sec: i64, offset: i32) -> Option<f64> {
    let secs = value.div_euclid(per_sec) + offset as i64;
    let frac = value.rem_euclid(per_sec);
    let days = secs.div_euclid(86_400);
    let day = date_serial(days)?;
    let sod = secs.rem_euclid(86_400) as f64 + frac as f64 / per_sec as f64;
    Some(day + sod / 86_400.0)
}

/// Write one non-null cell; returns a rough size of its XML.
#[inline]
fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    c: u16,
    col: &TypedColumn<'_>,
    i: usize,
    format: Option<&Format>,
    text: &mut String,
) -> Result<u64, CellError> {
    const CELL: u64 = 32;
    let number = |sheet: &mut Worksheet, v: f64| -> Result<u64, CellError> {
        match format {
            Some(f) => sheet.write_number_with_format(row, c, v, f)?,
            None => sheet.write_number(row, c, v)?,
        };
        Ok(CELL)
    };
    let string = |sheet: &mut Worksheet, s: &str| -> Result<u64, CellError> {
        if let Some(n) = too_long(s) {
            return Err(CellError::TooLong(n));
        }
        sheet.write_string(row, c, s)?;
        Ok(CELL + s.len() as u64)
    };
    let integer = |sheet: &mut Worksheet, v: i64, text: &mut String| -> Result<u64, CellError> {
        if v.unsigned_abs() <= MAX_EXACT_INTEGER as u64 {
            number(sheet, v as f64)
        } else {
            text.clear();
            text.push_str(itoa::Buffer::new().format(v));
            string(sheet, text)
        }
    };
    match &col.column {
        Column::Int(v) => integer(sheet, v[i], text),
        Column::Int32(v) => number(sheet, v[i] as f64),
        Column::UInt(v) => match i64::try_from(v[i]) {
            Ok(x) if x <= MAX_EXACT_INTEGER => number(sheet, x as f64),
            _ => {
                text.clear();
                text.push_str(itoa::Buffer::new().format(v[i]));
                string(sheet, text)
            }
        },
        Column::Float64(v) if v[i].is_finite() => number(sheet, v[i]),
        Column::Float32(v) if v[i].is_finite() => number(sheet, v[i] as f64),
        // NaN and infinities: Excel has no such numbers; the cell stays empty.
        Column::Float64(_) | Column::Float32(_) => Ok(0),
        Column::Decimal(v, s) => number(sheet, decimal_to_f64(v[i], *s)),
        Column::Bool(a) => {
            sheet.write_boolean(row, c, a.value(i))?;
            Ok(CELL)
        }
        Column::Date32(v) => match date_serial(v[i] as i64) {
            Some(serial) => number(sheet, serial),
            None => {
                let mut b = Vec::with_capacity(12);
                write_date(&mut b, v[i] as i64);
                string(sheet, std::str::from_utf8(&b).unwrap_or_default())
            }
        },
        Column::Timestamp(v, per_sec, digits, off) => match timestamp_serial(v[i], *per_sec, *off) {
            Some(serial) => number(sheet, serial),
            None => {
                let mut b = Vec::with_capacity(36);
                write_timestamp(&mut b, v[i], *per_sec, *digits, *off);
                string(sheet, std::str::from_utf8(&b).unwrap_or_default())
            }
        },
        Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_) => string(sheet, col.text(i).unwrap_or_default()),
        Column::Other(f) => {
            use std::fmt::Write;
            text.clear();
            let _ = write!(text, "{}", f.value(i));
            string(sheet, text)
        }
        Column::Null => Ok(0),
    }
}

/// A decimal's nearest float. For values of up to 15 digits the integer and the power of ten
/// are exact floats, so the one division rounds correctly (the float nearest the decimal).
#[inline]
fn decimal_to_f64(v: i128, scale: i8) -> f64 {
    if scale >= 0 { v as f64 / 10f64.powi(scale as i32) } else { v as f64 * 10f64.powi(-(scale as i32)) }
}

/// How many characters the value at `i` shows as, roughly (for the column width).
fn display_width(col: &TypedColumn<'_>, i: usize) -> usize {
    let digits = |v: u128| if v == 0 { 1 } else { v.ilog10() as usize + 1 };
    match &col.column {
        Column::Int(v) => digits(v[i].unsigned_abs() as u128) + usize::from(v[i] < 0),
        Column::Int32(v) => digits(v[i].unsigned_abs() as u128) + usize::from(v[i] < 0),
        Column::UInt(v) => digits(v[i] as u128),
        // Excel shows at most 11 characters of a float in the General format.
        Column::Float64(v) => ryu::Buffer::new().format(v[i]).len().min(11),
        Column::Float32(v) => ryu::Buffer::new().format(v[i]).len().min(11),
        Column::Decimal(v, s) => digits(v[i].unsigned_abs()).max(*s as usize + 1) + usize::from(*s > 0) + usize::from(v[i] < 0),
        Column::Bool(_) => 5,
        Column::Date32(_) => 10,
        Column::Timestamp(..) => 19,
        Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_) => {
            col.text(i).unwrap_or_default().lines().map(|l| l.chars().count()).max().unwrap_or(0)
        }
        Column::Other(f) => f.value(i).to_string().chars().count(),
        Column::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn ctx(dir: &Path) -> FileContext {
        FileContext {
            title: "t".into(),
            export_id: "exp_1".into(),
            generated_at: chrono::Utc::now(),
            filters: vec![],
            spec: serde_json::json!({"format": "xlsx"}),
            work_dir: dir.to_path_buf(),
        }
    }

    fn options(sheet_rows: u32) -> XlsxOptions {
        XlsxOptions { sheet_name: "Data".into(), header: true, metadata_sheet: false, sheet_rows }
    }

    /// The XML of a part of the workbook at `path` (`xl/worksheets/sheet1.xml`).
    fn part(path: &Path, name: &str) -> String {
        use std::io::Read;
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut xml = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut xml).unwrap();
        xml
    }

    fn one_column(name: &str, array: ArrayRef) -> (SchemaRef, RecordBatch) {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(name, array.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array]).unwrap();
        (schema, batch)
    }

    #[test]
    fn sheet_names_follow_excel_rules() {
        for ok in ["Data", "Überweisungen 2026", "a", &"x".repeat(31), "it's"] {
            assert!(check_sheet_name(ok, true).is_ok(), "{ok}");
        }
        for bad in ["", &"x".repeat(32), "a/b", "a\\b", "[x]", "a:b", "a*", "a?", "'x", "x'", "History", "tab\there"] {
            assert!(check_sheet_name(bad, false).is_err(), "{bad}");
        }
        assert!(check_sheet_name("Metadata", false).is_ok());
        assert!(check_sheet_name("METADATA", true).is_err());
    }

    #[test]
    fn rolled_over_sheets_are_numbered_within_31_characters() {
        assert_eq!(sheet_name("Data", 0), "Data");
        assert_eq!(sheet_name("Data", 1), "Data (2)");
        assert_eq!(sheet_name("Data", 11), "Data (12)");
        let long = "y".repeat(31);
        assert_eq!(sheet_name(&long, 1), format!("{} (2)", "y".repeat(27)));
        assert_eq!(sheet_name(&long, 1).chars().count(), 31);
        assert!(check_sheet_name(&sheet_name("abcdefghijklmnopqrstuvwxyz'''''", 1), false).is_ok());
    }

    #[test]
    fn serials_follow_excel_and_leave_out_what_it_cannot_hold() {
        assert_eq!(date_serial(0), Some(25_569.0));
        // 1900-03-01 is day 61 (Excel counts a 29 February 1900); earlier days are text.
        assert_eq!(date_serial(FIRST_DAY), Some(61.0));
        assert_eq!(date_serial(FIRST_DAY - 1), None);
        assert_eq!(date_serial(LAST_DAY), Some(2_958_465.0));
        assert_eq!(date_serial(LAST_DAY + 1), None);
        assert_eq!(timestamp_serial(43_200_000_000, 1_000_000, 0), Some(25_569.5));
        assert_eq!(timestamp_serial(0, 1, 6 * 3600), Some(25_569.25));
        assert_eq!(timestamp_serial(-1, 1_000_000, 0).map(|s| s < 25_569.0), Some(true));
    }

    #[test]
    fn decimal_formats_show_the_scale() {
        assert_eq!(decimal_format(2), "0.00");
        assert_eq!(decimal_format(0), "0");
        assert_eq!(decimal_format(-3), "0");
        assert_eq!(decimal_to_f64(123_450, 2), 1234.5);
        assert_eq!(decimal_to_f64(-5, 2), -0.05);
        assert_eq!(decimal_to_f64(7, -2), 700.0);
    }

    #[test]
    fn rows_roll_over_to_new_sheets() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, batch) = one_column("n", Arc::new(Int64Array::from((0..10).collect::<Vec<i64>>())));
        let out = dir.path().join("x.xlsx");
        let mut enc = XlsxEncoder::new(options(4), &schema, &ctx(dir.path()), &out).unwrap();
        enc.write_batch(&batch.slice(0, 4)).unwrap();
        enc.write_batch(&batch.slice(4, 6)).unwrap();
        assert_eq!(enc.sheet_names, ["Data", "Data (2)", "Data (3)", "Data (4)"]);
        assert_eq!(enc.rows, 10);
        assert_eq!(enc.next_row, 2, "the last sheet holds its header and one row");
        Box::new(enc).finish().unwrap();
        assert!(std::fs::metadata(&out).unwrap().len() > 0);
    }

    #[test]
    fn an_empty_export_is_a_sheet_with_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, _) = one_column("n", Arc::new(Int64Array::from(Vec::<i64>::new())));
        let out = dir.path().join("x.xlsx");
        let mut enc = Box::new(XlsxEncoder::new(options(EXCEL_MAX_ROWS), &schema, &ctx(dir.path()), &out).unwrap());
        enc.write_batch(&RecordBatch::new_empty(schema.clone())).unwrap();
        enc.finish().unwrap();
        assert!(std::fs::metadata(&out).unwrap().len() > 0);
    }

    #[test]
    fn text_longer_than_a_cell_names_row_column_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let long = "é".repeat(MAX_CELL_CHARS + 1);
        let (schema, batch) = one_column("memo", Arc::new(StringArray::from(vec![Some("ok"), None, Some(long.as_str())])));
        let mut enc = XlsxEncoder::new(options(EXCEL_MAX_ROWS), &schema, &ctx(dir.path()), &dir.path().join("x.xlsx")).unwrap();
        match enc.write_batch(&batch) {
            Err(FormatError::Invalid(m)) => {
                assert_eq!(m, "row 3, column `memo`: a text of 32768 characters; an Excel cell holds at most 32767")
            }
            other => panic!("{other:?}"),
        }
        // Exactly the limit fits (counted in UTF-16 units, as Excel counts).
        assert_eq!(too_long(&"é".repeat(MAX_CELL_CHARS)), None);
        assert_eq!(too_long(&"😀".repeat(16_384)), Some(32_768));
    }

    #[test]
    fn nan_infinities_and_out_of_range_dates_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true), Field::new("d", DataType::Date32, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5])),
                Arc::new(Date32Array::from(vec![(FIRST_DAY - 1) as i32, FIRST_DAY as i32, LAST_DAY as i32 + 1, 0])),
            ],
        )
        .unwrap();
        let out = dir.path().join("x.xlsx");
        let mut enc = XlsxEncoder::new(options(EXCEL_MAX_ROWS), &schema, &ctx(dir.path()), &out).unwrap();
        enc.write_batch(&batch).unwrap();
        Box::new(enc).finish().unwrap();
        let xml = part(&out, "xl/worksheets/sheet1.xml");
        // Rows 2 to 4: NaN and the infinities leave no cell; the dates outside 1900-03-01 to
        // 9999-12-31 are text, the ones inside are day numbers with the date format.
        for (cell, absent) in [("A2", true), ("A3", true), ("A4", true), ("A5", false)] {
            assert_eq!(!xml.contains(&format!("r=\"{cell}\"")), absent, "{cell}: {xml}");
        }
        assert!(xml.contains(r#"<c r="B2" t="inlineStr"><is><t>1900-02-28</t></is></c>"#), "{xml}");
        assert!(xml.contains(r#"<c r="B4" t="inlineStr"><is><t>+10000-01-01</t></is></c>"#), "{xml}");
        assert!(xml.contains(r#"<c r="B3" s="2"><v>61.0</v></c>"#), "{xml}");
        assert!(xml.contains(r#"<c r="A5"><v>1.5</v></c>"#), "{xml}");
        assert!(xml.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#), "{xml}");
        assert!(xml.contains(r#"<autoFilter ref="A1:B5"/>"#), "{xml}");
        let styles = part(&out, "xl/styles.xml");
        assert!(styles.contains(r#"formatCode="yyyy-mm-dd""#) && styles.contains("<b/>"), "{styles}");
    }

    #[test]
    fn widths_come_from_the_header_and_the_data_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("a_long_column_name", DataType::Utf8, true),
            Field::new("memo", DataType::Utf8, true),
        ]));
        let long = "w".repeat(500);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(StringArray::from(vec![Some("short\nlines"), Some(long.as_str())])),
            ],
        )
        .unwrap();
        let enc = XlsxEncoder::new(options(EXCEL_MAX_ROWS), &schema, &ctx(dir.path()), &dir.path().join("x.xlsx")).unwrap();
        let cols = batch.columns().iter().map(typed_column).collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(enc.measure(&cols, 2), vec![MIN_WIDTH, 21.0, MAX_WIDTH]);
    }

    #[test]
    fn too_many_columns_or_a_bad_sheet_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fields: Vec<Field> = (0..EXCEL_MAX_COLUMNS + 1).map(|i| Field::new(format!("c{i}"), DataType::Int64, true)).collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let r = XlsxEncoder::new(options(EXCEL_MAX_ROWS), &schema, &ctx(dir.path()), &dir.path().join("x.xlsx"));
        assert!(matches!(r, Err(FormatError::Invalid(m)) if m.contains("16384")));
        let (schema, _) = one_column("n", Arc::new(Int64Array::from(vec![1])));
        let bad = XlsxOptions { sheet_name: "a:b".into(), ..options(EXCEL_MAX_ROWS) };
        assert!(matches!(XlsxEncoder::new(bad, &schema, &ctx(dir.path()), &dir.path().join("x.xlsx")), Err(FormatError::Invalid(_))));
    }
}
