//! ExportSpec: what a user asks for. Parsed strictly (unknown fields are errors) and then
//! checked as a whole ([`ExportSpec::validate`]) so that every bad field is reported at once.
//! Checks that need the source's schema (do the columns exist, does a filter value fit the
//! column's type) live in `source` and `transform`, which know the schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::validation::ValidationErrors;

/// Most rows an `inline` source may carry in the request itself.
pub const MAX_INLINE_ROWS: usize = 10_000;
/// Default lifetime of an export's files.
pub const DEFAULT_EXPIRES_IN: u64 = 7 * 24 * 3600;
/// Bounds of `expires_in`, in seconds.
pub const MIN_EXPIRES_IN: u64 = 60;
pub const MAX_EXPIRES_IN: u64 = 30 * 24 * 3600;

/// One export request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// A name for people; defaults to one derived from the format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the rows come from.
    pub source: SourceSpec,
    /// Columns to export, in this order; all columns of the source when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The output columns, in order, each from a source column (renamed, value-mapped, cast,
    /// masked) or a constant; instead of `columns`. See [`super::fields`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<super::fields::FieldSpec>,
    /// Row filters, all of which must hold (AND).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// A half-open time window `[from, to)` on one timestamp or date column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Sort keys, most significant first. Sorting costs a spill and a merge: see the README.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    /// Stop after this many rows (after filtering, in source or sort order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Split into numbered files (`name-part-00001.csv`, ...) of at most this many rows each;
    /// each file is valid on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_per_file: Option<u64>,
    /// Split into numbered files of about this many bytes at most (exact for row formats
    /// without compression; others start a new file once this size is reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_file: Option<u64>,
    /// File format and its options: `"csv"` or `{"type": "csv", "delimiter": ";"}`.
    pub format: FormatSpec,
    /// Compression of the delivered file.
    #[serde(default)]
    pub compression: Compression,
    /// Encryption of the delivered files: to registered recipients' OpenPGP or age keys, or a
    /// password on the zip archive (`zip_aes`, with `compression: "zip"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::packaging::EncryptionSpec>,
    /// Deliver `manifest.json` beside the files: names, sizes, rows, SHA-256 before and after
    /// packaging, the spec's hash and the sources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manifest: bool,
    /// Where the file goes; a download link when not given.
    #[serde(default = "default_destinations")]
    pub destinations: Vec<DestinationSpec>,
    /// A signed webhook and/or an email when the export completes, fails or partly fails
    /// (instead of the tenant's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::notify::NotificationSpec>,
    /// Seconds the files are kept (60 to 2,592,000; default 604,800 = 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Free key/value labels, returned with the export.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn default_destinations() -> Vec<DestinationSpec> {
    vec![DestinationSpec::download()]
}

/// Kinds of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Rows carried in the request (at most 10,000).
    Inline,
    /// Parquet, CSV or JSONL files: one file or a folder of them.
    Dataset,
}

/// File formats a dataset can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    Parquet,
    Csv,
    Jsonl,
}

impl DatasetFormat {
    /// The format a file name implies, by its extension.
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Some(Self::Parquet)
        } else if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(Self::Jsonl)
        } else {
            None
        }
    }
}

/// Where rows come from. One object for every kind; fields that do not belong to the kind are
/// rejected by [`ExportSpec::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// inline: the rows, one JSON object each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Map<String, Value>>>,
    /// inline: declared column types (otherwise inferred from the values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Vec<ColumnDecl>>,
    /// dataset: a file or folder in the tenant's dataset area of the blob store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// dataset: an absolute file or folder path on the host, allowed only under the host's
    /// `--dataset-root` folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
    /// dataset: the files' format, when their extension does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_format: Option<DatasetFormat>,
}

/// A declared column of an inline source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecl {
    pub name: String,
    /// `string`, `int64`, `float64`, `bool`, `date`, `timestamp` (UTC) or `decimal(P,S)`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// One filter: `column op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub column: String,
    pub op: FilterOp,
    /// A scalar; an array for `in` (one or more) and `between` (exactly two, inclusive);
    /// absent for `is_null` and `is_not_null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterOp {
    #[serde(rename = "=", alias = "eq")]
    Eq,
    #[serde(rename = "!=", alias = "ne")]
    Ne,
    #[serde(rename = "<", alias = "lt")]
    Lt,
    #[serde(rename = "<=", alias = "le")]
    Le,
    #[serde(rename = ">", alias = "gt")]
    Gt,
    #[serde(rename = ">=", alias = "ge")]
    Ge,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "is_null")]
    IsNull,
    #[serde(rename = "is_not_null")]
    IsNotNull,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "between")]
    Between,
}

pub const FILTER_OPS: &str = "=, !=, <, <=, >, >=, in, is_null, is_not_null, contains, between";

/// A half-open window `[from, to)` on a timestamp or date column, RFC 3339 instants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    pub column: String,
    #[serde(default)]
    pub order: SortOrder,
    /// Where nulls go; `last` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<NullsOrder>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NullsOrder {
    First,
    Last,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatKind {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Yaml,
    Parquet,
    Xml,
    Pdf,
    /// Arrow IPC file format (Feather v2).
    Arrow,
    Avro,
    /// Excel workbook (Office Open XML).
    Xlsx,
}

pub const FORMAT_KINDS: &str = "csv, tsv, json, jsonl, yaml, parquet, xml, pdf, arrow, avro, xlsx";

impl FormatKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "tsv" => Some(Self::Tsv),
            "json" => Some(Self::Json),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "yaml" | "yml" => Some(Self::Yaml),
            "parquet" => Some(Self::Parquet),
            "xml" => Some(Self::Xml),
            "pdf" => Some(Self::Pdf),
            "arrow" | "ipc" | "feather" => Some(Self::Arrow),
            "avro" => Some(Self::Avro),
            "xlsx" | "excel" => Some(Self::Xlsx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Json => "json",
            Self::Jsonl => "jsonl",
            Self::Yaml => "yaml",
            Self::Parquet => "parquet",
            Self::Xml => "xml",
            Self::Pdf => "pdf",
            Self::Arrow => "arrow",
            Self::Avro => "avro",
            Self::Xlsx => "xlsx",
        }
    }

    /// The options this format takes.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Self::Csv => &["header", "delimiter", "bom", "null", "line_ending", "quote_all", "formula_guard"],
            Self::Tsv => &["header", "bom", "null", "line_ending", "formula_guard"],
            Self::Json | Self::Jsonl | Self::Yaml => &["decimals_as"],
            Self::Parquet => &["compression", "row_group_size"],
            Self::Xml => &["root_element", "row_element", "namespace", "xsd", "xml_mapping", "validate"],
            Self::Pdf => &["title", "orientation", "attachment"],
            Self::Arrow | Self::Avro => &["compression"],
            Self::Xlsx => &["sheet_name", "metadata_sheet", "header"],
        }
    }

    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Tsv => "text/tab-separated-values; charset=utf-8",
            Self::Json => "application/json",
            Self::Jsonl => "application/x-ndjson",
            Self::Yaml => "application/yaml",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Xml => "application/xml",
            Self::Pdf => "application/pdf",
            Self::Arrow => "application/vnd.apache.arrow.file",
            // Avro's specification names `application/avro` (and `avro/binary`), neither
            // registered with IANA; `application/avro` is the one the spec calls standard.
            Self::Avro => "application/avro",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

impl<'de> Deserialize<'de> for FormatKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FormatKind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown format `{s}`, expected one of {FORMAT_KINDS}")))
    }
}

/// Line endings for CSV.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    /// `\n`
    #[default]
    Lf,
    /// `\r\n`, as RFC 4180 writes it.
    Crlf,
}

/// How JSON and JSONL write decimals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalsAs {
    /// As JSON numbers with every digit (`1234.50`): exact in the text.
    #[default]
    Number,
    /// As strings (`"1234.50"`), for readers that would parse numbers into binary floats.
    String,
}

/// The format and its options. Written as `"csv"` or as an object with `type` and options;
/// options that do not belong to the format are rejected by [`ExportSpec::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatSpecObject {
    #[serde(rename = "type")]
    pub kind: FormatKind,
    /// csv, tsv, xlsx: write a header row (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// csv: one character between fields (default `,`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// csv, tsv: start the file with a UTF-8 byte order mark, for Excel (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<bool>,
    /// csv: how a null is written (default: an empty field); tsv: the same (default `\\N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
    /// csv, tsv: `lf` (default) or `crlf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<LineEnding>,
    /// csv: quote every field, not only those that need it (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_all: Option<bool>,
    /// csv, tsv: defuse text cells that a spreadsheet would run as a formula (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula_guard: Option<bool>,
    /// json, jsonl, yaml: `number` (default) or `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals_as: Option<DecimalsAs>,
    /// parquet: the codec of the column chunks, `zstd` (default), `snappy`, `gzip` or `none`;
    /// arrow: of the record batches' buffers, `lz4` (default), `zstd` or `none`; avro: of the
    /// blocks, `deflate` (default), `snappy`, `zstd` or `none` ([`Codec::allowed_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Codec>,
    /// parquet: rows per row group (1,024 to 10,000,000; default 131,072).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_size: Option<u64>,
    /// xml (generic): the document element (default `rows`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_element: Option<String>,
    /// xml (generic): the element of each row (default `row`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_element: Option<String>,
    /// xml (generic): a default namespace URI for the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// xml: the XML Schema the file follows (needed by `xml_mapping` and `validate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xsd: Option<super::xml::XsdSource>,
    /// xml: place columns, constants and computed values onto the schema's elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml_mapping: Option<Box<super::xml::XmlMapping>>,
    /// xml: check the file against `xsd` before it is delivered; the export fails with the
    /// first errors (line, path, message) when it does not validate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<bool>,
    /// pdf: the report's title (default: the export's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// pdf: `auto` (default: landscape when the columns do not fit portrait), `portrait` or
    /// `landscape`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<PdfOrientation>,
    /// pdf: `csv` (default: the data as a CSV export, attached inside the PDF) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<PdfAttachment>,
    /// xlsx: the name of the data sheet (default `Data`); further sheets are `<name> (2)`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet_name: Option<String>,
    /// xlsx: add a sheet `Metadata` with the export's id, title, generation time, filters, row
    /// count and spec (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_sheet: Option<bool>,
}

/// Page orientation of a PDF report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdfOrientation {
    /// Landscape when the columns do not fit portrait at their minimum width.
    #[default]
    Auto,
    Portrait,
    Landscape,
}

/// The machine-readable copy of the data a PDF report carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdfAttachment {
    /// The CSV export of the same data (default options), as a PDF/A-3 associated file.
    #[default]
    Csv,
    None,
}

/// Codecs inside a file: of Parquet column chunks, Arrow IPC buffers, Avro blocks. Each
/// format takes some of them ([`Codec::allowed_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    Zstd,
    Snappy,
    Gzip,
    Deflate,
    Lz4,
    None,
}

impl Codec {
    /// The codecs `kind` can write, its default first; empty for a format without codecs.
    pub fn allowed_for(kind: FormatKind) -> &'static [Codec] {
        match kind {
            FormatKind::Parquet => &[Codec::Zstd, Codec::Snappy, Codec::Gzip, Codec::None],
            // LZ4 (frame) is Feather's default in pyarrow: fast to write and to read.
            FormatKind::Arrow => &[Codec::Lz4, Codec::Zstd, Codec::None],
            // Deflate is one of the two codecs every Avro reader must support (with `null`).
            FormatKind::Avro => &[Codec::Deflate, Codec::Snappy, Codec::Zstd, Codec::None],
            _ => &[],
        }
    }

    /// The codec of format `o`: the one it names, or the format's default.
    pub fn of(o: &FormatSpecObject) -> Codec {
        o.compression.or_else(|| Self::allowed_for(o.kind).first().copied()).unwrap_or(Codec::None)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Snappy => "snappy",
            Codec::Gzip => "gzip",
            Codec::Deflate => "deflate",
            Codec::Lz4 => "lz4",
            Codec::None => "none",
        }
    }
}

/// Format and options, accepting the short string form too.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FormatSpec(pub FormatSpecObject);

impl FormatSpec {
    pub fn kind(&self) -> FormatKind {
        self.0.kind
    }

    pub fn of(kind: FormatKind) -> Self {
        FormatSpec(FormatSpecObject {
            kind,
            header: None,
            delimiter: None,
            bom: None,
            null: None,
            line_ending: None,
            quote_all: None,
            formula_guard: None,
            decimals_as: None,
            compression: None,
            row_group_size: None,
            root_element: None,
            row_element: None,
            namespace: None,
            xsd: None,
            xml_mapping: None,
            validate: None,
            title: None,
            orientation: None,
            attachment: None,
            sheet_name: None,
            metadata_sheet: None,
        })
    }
}

impl<'de> Deserialize<'de> for FormatSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => match FormatKind::parse(&s) {
                Some(kind) => Ok(FormatSpec::of(kind)),
                None => Err(serde::de::Error::custom(format!("unknown format `{s}`, expected one of {FORMAT_KINDS}"))),
            },
            Value::Object(_) => serde_json::from_value(v).map(FormatSpec).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!("invalid type: {other}, expected a format name or an object with `type`"))),
        }
    }
}

/// Compression of the delivered files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    /// Each row-format file gzipped (level 6): `.gz`.
    Gzip,
    /// Each row-format file compressed with Zstandard (level 3): `.zst`.
    Zstd,
    /// All of an export's files in one zip archive (deflate), made when the files are
    /// packaged; any format. The only compression a password (`zip_aes`) can protect.
    Zip,
}

impl Compression {
    /// The suffix this compression adds to a name: `.gz` and `.zst` to each file's, `.zip` to
    /// the archive's.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::Zip => ".zip",
        }
    }

    /// How the bytes of each encoded file are compressed while its rows are written: `zip`
    /// archives whole files afterwards, so its files are written plain.
    pub fn of_rows(self) -> Compression {
        match self {
            Compression::Zip => Compression::None,
            c => c,
        }
    }
}

pub use super::destination::DestinationSpec;

impl ExportSpec {
    /// The export is written as several files.
    pub fn splits(&self) -> bool {
        self.max_rows_per_file.is_some() || self.max_bytes_per_file.is_some()
    }

    /// The row selection in words, one line each (`amount >= 1000`, `booked_at in [from, to)`),
    /// for the header of a report or a workbook's metadata sheet.
    pub fn selection_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .filters
            .iter()
            .map(|f| {
                let op = serde_json::to_value(f.op).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                match &f.value {
                    Some(v) => format!("{} {op} {v}", f.column),
                    None => format!("{} {op}", f.column),
                }
            })
            .collect();
        if let Some(tr) = &self.time_range {
            let from = tr.from.as_deref().unwrap_or("the beginning");
            let to = tr.to.as_deref().unwrap_or("now");
            lines.push(format!("{} from {from} (included) to {to} (excluded)", tr.column));
        }
        if !self.sort.is_empty() {
            let keys: Vec<String> =
                self.sort.iter().map(|k| format!("{} {}", k.column, if k.order == SortOrder::Desc { "desc" } else { "asc" })).collect();
            lines.push(format!("sorted by {}", keys.join(", ")));
        }
        if let Some(m) = self.max_rows {
            lines.push(format!("at most {m} rows"));
        }
        lines
    }

    /// Parse a request body, reporting the first structural error with its JSON pointer.
    pub fn from_json(value: &Value) -> Result<Self, ValidationErrors> {
        super::validation::from_json(value)
    }

    /// The outbound policy for the tenant that creates the export: a webhook destination or
    /// notification on an address the policy forbids is refused now unless the tenant's allowed
    /// hosts name it.
    pub fn check_outbound(&self, allow: &crate::deliver::net_guard::AllowList, errs: &mut ValidationErrors) {
        for (i, d) in self.destinations.iter().enumerate() {
            if let super::destination::Destination::Webhook(c) = &d.target {
                c.check_policy(&format!("/destinations/{i}"), allow, errs);
            }
        }
        if let Some(n) = &self.notifications {
            n.check_outbound("/notifications", allow, errs);
        }
    }

    /// Every check that needs no source schema, all errors at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            errs.push("/name", name.as_str(), "1 to 200 characters, not only spaces");
        }
        self.validate_source(&mut errs);
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            if c.is_empty() {
                errs.push(format!("/columns/{i}"), c.as_str(), "a column name");
            } else if !seen.insert(c) {
                errs.push(format!("/columns/{i}"), c.as_str(), "each column once");
            }
        }
        super::fields::validate_fields(&self.fields, !self.columns.is_empty(), &mut errs);
        for (i, f) in self.filters.iter().enumerate() {
            validate_filter_shape(i, f, &mut errs);
        }
        if let Some(tr) = &self.time_range {
            if tr.from.is_none() && tr.to.is_none() {
                errs.push("/time_range", serde_json::to_value(tr).unwrap_or(Value::Null), "`from`, `to` or both");
            }
            let from = tr.from.as_deref().map(|s| (s, chrono::DateTime::parse_from_rfc3339(s)));
            let to = tr.to.as_deref().map(|s| (s, chrono::DateTime::parse_from_rfc3339(s)));
            for (field, v) in [("from", &from), ("to", &to)] {
                if let Some((s, Err(_))) = v {
                    errs.push(format!("/time_range/{field}"), *s, "an RFC 3339 timestamp with offset, e.g. 2026-10-01T00:00:00Z");
                }
            }
            if let (Some((_, Ok(f))), Some((s, Ok(t)))) = (&from, &to)
                && f >= t
            {
                errs.push("/time_range/to", *s, "a timestamp after `from`");
            }
        }
        if let Some(n) = self.max_rows_per_file
            && n == 0
        {
            errs.push("/max_rows_per_file", n, "a positive number of rows per file");
        }
        if let Some(n) = self.max_bytes_per_file
            && n < 1024
        {
            errs.push("/max_bytes_per_file", n, "bytes per file, at least 1,024");
        }
        if self.max_rows == Some(0) {
            errs.push("/max_rows", 0, "a positive integer");
        }
        self.validate_format(&mut errs);
        if let Some(e) = &self.encryption {
            e.validate("/encryption", self.compression, &mut errs);
        }
        if self.destinations.is_empty() || self.destinations.len() > 10 {
            errs.push("/destinations", serde_json::to_value(&self.destinations).unwrap_or(Value::Null), "1 to 10 destinations");
        }
        for (i, d) in self.destinations.iter().enumerate() {
            d.validate(i, &mut errs);
        }
        if let Some(n) = &self.notifications {
            n.validate("/notifications", &mut errs);
        }
        if let Some(e) = self.expires_in
            && !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&e)
        {
            errs.push("/expires_in", e, format!("seconds from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} (30 days)"));
        }
        if self.metadata.len() > 50 {
            errs.push("/metadata", self.metadata.len(), "at most 50 entries");
        }
        for (k, v) in &self.metadata {
            let p = format!("/metadata/{}", super::validation::pointer_token(k));
            if k.is_empty() || k.len() > 64 {
                errs.push(p.clone(), k.as_str(), "keys of 1 to 64 bytes");
            }
            if v.len() > 512 {
                errs.push(p, v.as_str(), "values of at most 512 bytes");
            }
        }
        errs.into_result()
    }

    fn validate_source(&self, errs: &mut ValidationErrors) {
        let s = &self.source;
        let given = |name: &str| match name {
            "rows" => s.rows.is_some(),
            "schema" => s.schema.is_some(),
            "path" => s.path.is_some(),
            "local_path" => s.local_path.is_some(),
            "file_format" => s.file_format.is_some(),
            _ => false,
        };
        let (own, foreign): (&[&str], &[&str]) = match s.kind {
            SourceKind::Inline => (&["rows", "schema"], &["path", "local_path", "file_format"]),
            SourceKind::Dataset => (&["path", "local_path", "file_format"], &["rows", "schema"]),
        };
        for f in foreign {
            if given(f) {
                errs.push(
                    format!("/source/{f}"),
                    Value::Null,
                    format!("not an option of a {} source; its options are {}", kind_name(s.kind), own.join(", ")),
                );
            }
        }
        match s.kind {
            SourceKind::Inline => match &s.rows {
                None => errs.push("/source/rows", Value::Null, "an array of row objects"),
                Some(rows) if rows.len() > MAX_INLINE_ROWS => {
                    errs.push("/source/rows", rows.len(), format!("at most {MAX_INLINE_ROWS} rows; use a dataset source for more"))
                }
                Some(_) => {
                    if let Some(schema) = &s.schema {
                        for (i, c) in schema.iter().enumerate() {
                            if crate::source::inline::parse_decl_type(&c.data_type).is_none() {
                                errs.push(
                                    format!("/source/schema/{i}/type"),
                                    c.data_type.as_str(),
                                    "string, int64, float64, bool, date, timestamp or decimal(P,S) with 1 <= P <= 38, 0 <= S <= P",
                                );
                            }
                        }
                    }
                }
            },
            SourceKind::Dataset => match (&s.path, &s.local_path) {
                (None, None) => errs.push("/source/path", Value::Null, "a dataset path (or `local_path`)"),
                (Some(_), Some(p)) => errs.push("/source/local_path", p.as_str(), "either `path` or `local_path`, not both"),
                (Some(p), None) => {
                    if !crate::blob::is_safe_relative_key(p) {
                        errs.push("/source/path", p.as_str(), "a relative path without `..`, `.` or empty segments");
                    }
                }
                (None, Some(p)) => {
                    if !std::path::Path::new(p).is_absolute() {
                        errs.push("/source/local_path", p.as_str(), "an absolute path");
                    }
                }
            },
        }
    }

    fn validate_format(&self, errs: &mut ValidationErrors) {
        let f = &self.format.0;
        let own = f.kind.options();
        // The options given are the fields the object serializes (unset ones are skipped).
        let given =
            serde_json::to_value(f).ok().and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>())).unwrap_or_default();
        for name in given.iter().filter(|k| *k != "type") {
            if !own.contains(&name.as_str()) {
                errs.push(
                    format!("/format/{name}"),
                    Value::Null,
                    format!("not an option of {}; its options are {}", f.kind.as_str(), own.join(", ")),
                );
            }
        }
        if let Some(d) = &f.delimiter {
            let ok = d.len() == 1 && !matches!(d.as_bytes()[0], b'"' | b'\r' | b'\n') && d.is_ascii();
            if !ok {
                errs.push(
                    "/format/delimiter",
                    d.as_str(),
                    "one ASCII character other than a double quote, CR or LF (e.g. `,` `;` `|` or a tab)",
                );
            }
        }
        if let Some(n) = f.row_group_size
            && !(1024..=10_000_000).contains(&n)
        {
            errs.push("/format/row_group_size", n, "rows per row group, from 1,024 to 10,000,000");
        }
        if f.kind == FormatKind::Xml {
            crate::format::xml::validate_options(f, errs);
        }
        if let Some(t) = &f.title
            && (t.trim().is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control))
        {
            errs.push("/format/title", t.as_str(), "1 to 200 characters, not blank, without control characters or line breaks");
        }
        if let Some(c) = f.compression {
            let allowed = Codec::allowed_for(f.kind);
            if !allowed.contains(&c) {
                let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
                errs.push("/format/compression", c.as_str(), format!("one of {} for {}", names.join(", "), f.kind.as_str()));
            }
        }
        if let Some(name) = &f.sheet_name
            && let Err(why) = crate::format::xlsx::check_sheet_name(name, f.metadata_sheet.unwrap_or(false))
        {
            errs.push("/format/sheet_name", name.as_str(), why);
        }
        let inner = Codec::allowed_for(f.kind);
        // `zip` archives whole files of any format; gzip and zstd compress a row format's bytes.
        let rows_compressed = self.compression.of_rows() != Compression::None;
        if (crate::format::layout(f) != crate::format::Layout::Rows || !inner.is_empty()) && rows_compressed {
            let why = if !inner.is_empty() {
                let names: Vec<&str> = inner.iter().map(|c| c.as_str()).collect();
                format!("none or zip for {}: it compresses inside the file (set format.compression: {})", f.kind.as_str(), names.join(", "))
            } else {
                format!("none or zip for {}: only the row formats are compressed as a whole file", f.kind.as_str())
            };
            errs.push("/compression", serde_json::to_value(self.compression).unwrap_or(Value::Null), why);
        }
        if let Some(n) = &f.null {
            let delim = if f.kind == FormatKind::Tsv { "\t" } else { f.delimiter.as_deref().unwrap_or(",") };
            if n.contains(['"', '\r', '\n']) || (!delim.is_empty() && n.contains(delim)) || n.len() > 32 {
                errs.push("/format/null", n.as_str(), "at most 32 characters without quotes, line breaks or the delimiter");
            }
        }
    }
}

fn kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Inline => "inline",
        SourceKind::Dataset => "dataset",
    }
}

fn validate_filter_shape(i: usize, f: &Filter, errs: &mut ValidationErrors) {
    let p = format!("/filters/{i}/value");
    let v = f.value.clone().unwrap_or(Value::Null);
    match f.op {
        FilterOp::IsNull | FilterOp::IsNotNull => {
            if f.value.is_some() {
                errs.push(p, v, "no value with is_null / is_not_null");
            }
        }
        FilterOp::In => match &f.value {
            Some(Value::Array(a)) if !a.is_empty() && a.len() <= 1000 && a.iter().all(is_scalar) => {}
            _ => errs.push(p, v, "an array of 1 to 1000 scalar values"),
        },
        FilterOp::Between => match &f.value {
            Some(Value::Array(a)) if a.len() == 2 && a.iter().all(|x| is_scalar(x) && !x.is_null()) => {}
            _ => errs.push(p, v, "an array of exactly two values [low, high], both inclusive"),
        },
        FilterOp::Contains => match &f.value {
            Some(Value::String(_)) => {}
            _ => errs.push(p, v, "a string"),
        },
        _ => match &f.value {
            Some(x) if is_scalar(x) && !x.is_null() => {}
            _ => errs.push(p, v, "a string, number or boolean (use is_null to match nulls)"),
        },
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

impl ExportSpec {
    /// The export's display name.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("{} export", self.format.kind().as_str()))
    }

    pub fn expires_in_secs(&self) -> u64 {
        self.expires_in.unwrap_or(DEFAULT_EXPIRES_IN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ExportSpec, ValidationErrors> {
        let s = ExportSpec::from_json(&v)?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn short_format_form() {
        let s = parse(json!({"source": {"type": "inline", "rows": []}, "format": "jsonl"})).unwrap();
        assert_eq!(s.format.kind(), FormatKind::Jsonl);
        assert_eq!(s.destinations.len(), 1);
    }

    #[test]
    fn every_bad_field_is_listed() {
        let err = parse(json!({
            "source": {"type": "inline", "rows": [], "path": "x"},
            "format": {"type": "json", "delimiter": ";"},
            "max_rows": 0,
            "expires_in": 5,
            "filters": [{"column": "a", "op": "in", "value": 3}]
        }))
        .unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/source/path", "/filters/0/value", "/max_rows", "/format/delimiter", "/expires_in"]);
    }

    #[test]
    fn unknown_format_names_the_choices() {
        let err = parse(json!({"source": {"type": "inline", "rows": []}, "format": "xlsx2"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/format");
        assert!(err.0[0].allowed.contains("csv, tsv, json, jsonl, yaml"));
    }

    #[test]
    fn unknown_format_option_is_rejected() {
        let err = parse(json!({"source": {"type": "inline", "rows": []}, "format": {"type": "csv", "delimitr": ";"}})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/format/delimitr");
    }

    #[test]
    fn codecs_are_checked_per_format() {
        for (format, codec, allowed) in [
            ("avro", "lz4", "one of deflate, snappy, zstd, none for avro"),
            ("arrow", "snappy", "one of lz4, zstd, none for arrow"),
            ("parquet", "deflate", "one of zstd, snappy, gzip, none for parquet"),
        ] {
            let err =
                parse(json!({"source": {"type": "inline", "rows": []}, "format": {"type": format, "compression": codec}})).unwrap_err();
            assert_eq!(
                (err.0[0].pointer.as_str(), &err.0[0].value, err.0[0].allowed.as_str()),
                ("/format/compression", &json!(codec), allowed)
            );
        }
        for (format, codec) in [("avro", "zstd"), ("avro", "none"), ("arrow", "lz4"), ("ipc", "zstd"), ("feather", "none")] {
            parse(json!({"source": {"type": "inline", "rows": []}, "format": {"type": format, "compression": codec}})).unwrap();
        }
        // Avro and Arrow compress inside the file, as Parquet does.
        let err = parse(json!({"source": {"type": "inline", "rows": []}, "format": "avro", "compression": "gzip"})).unwrap_err();
        assert_eq!(err.0[0].pointer, "/compression");
        assert!(err.0[0].allowed.contains("deflate, snappy, zstd, none"), "{}", err.0[0].allowed);
    }

    #[test]
    fn time_range_must_be_ordered() {
        let err = parse(json!({"source": {"type": "inline", "rows": []}, "format": "csv",
            "time_range": {"column": "t", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}))
        .unwrap_err();
        assert_eq!(err.0[0].pointer, "/time_range/to");
    }
}
