//! A month of bank transactions, as a compliance team would export them: text with commas,
//! quotes, line breaks and non-Latin letters; exact decimal amounts; UTC timestamps; value
//! dates; nullable risk scores; memos some of which start with `=` (formula injection bait);
//! and references above 2^53 (which a careless JSON writer would round).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::Rng;

/// The month the data covers: October 2026 (UTC).
pub const MONTH_START_US: i64 = 1_790_812_800_000_000; // 2026-10-01T00:00:00Z
pub const MONTH_US: i64 = 31 * 86_400 * 1_000_000;
pub const SEED: u64 = 20_261_001;
/// Rows per Parquet file, and per row group.
pub const ROWS_PER_FILE: u64 = 1_000_000;
pub const ROW_GROUP_ROWS: usize = 131_072;
const BATCH: usize = 65_536;

pub const COUNTERPARTIES: &[&str] = &[
    "Müller & Söhne, GmbH",
    "\"Kowalski\" Sp. z o.o.",
    "Ελληνική Τράπεζα Α.Ε.",
    "ООО \"Ромашка\"",
    "Café Łódź",
    "O'Brien, Ltd.",
    "株式会社テスト",
    "Dvořák & Novák s.r.o.",
    "Østergaard ApS",
    "Šťastný, a.s.",
    "Acme Corp",
    "Globex Corporation",
    "Initech LLC",
    "Umbrella Holdings; Ltd",
    "Wayne Enterprises",
    "Stark Industries",
    "Nordbank AG",
    "Österreichische Post AG",
    "Zürich Versicherung",
    "Société Générale",
    "Iberdrola, S.A.",
    "Fjällräven AB",
    "Çelik Yapı A.Ş.",
    "Київстар",
    "İş Bankası",
    "Tesco PLC",
];

const CURRENCIES: &[&str] = &["EUR", "EUR", "EUR", "EUR", "USD", "GBP", "CHF", "PLN", "CZK"];
const COUNTRIES: &[&str] = &["AT", "AT", "DE", "DE", "CH", "IT", "FR", "PL", "CZ", "HU", "GB", "US", "GR", "UA"];
const CHANNELS: &[&str] = &["card", "sepa", "swift", "cash", "online", "atm"];
const MEMOS: &[&str] = &[
    "Invoice 2026-10",
    "Rent, October",
    "Gehalt \"Oktober\"",
    "Zahlung für Bücher",
    "Refund\nsee ticket 4711",
    "=HYPERLINK(\"http://example.invalid\",\"click\")",
    "+49 30 1234567",
    "-12.50",
    "@SUM(A1:A9)",
    "Überweisung",
    "Λογαριασμός",
    "Оплата по счёту",
    "\tindented",
    "-fee reversal",
];

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("counterparty_name", DataType::Utf8, false),
        Field::new("amount", DataType::Decimal128(18, 2), false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("booked_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("value_date", DataType::Date32, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("flagged", DataType::Boolean, false),
        Field::new("risk_score", DataType::Float64, true),
        Field::new("memo", DataType::Utf8, true),
        Field::new("reference", DataType::Int64, false),
    ]))
}

/// Rows `start..start+len` of the dataset of `total` rows. Row `i` depends on `i` and `total`
/// only, so any slice can be made on its own.
pub fn batch(start: u64, len: usize, total: u64) -> RecordBatch {
    let mut tx = StringBuilder::with_capacity(len, len * 14);
    let mut acct = StringBuilder::with_capacity(len, len * 11);
    let mut cp = StringBuilder::with_capacity(len, len * 20);
    let mut amount = Decimal128Builder::with_capacity(len);
    let mut cur = StringBuilder::with_capacity(len, len * 3);
    let mut booked = TimestampMicrosecondBuilder::with_capacity(len);
    let mut vdate = Date32Builder::with_capacity(len);
    let mut country = StringBuilder::with_capacity(len, len * 2);
    let mut channel = StringBuilder::with_capacity(len, len * 5);
    let mut flagged = BooleanBuilder::with_capacity(len);
    let mut risk = Float64Builder::with_capacity(len);
    let mut memo = StringBuilder::with_capacity(len, len * 10);
    let mut reference = Int64Builder::with_capacity(len);
    let step = MONTH_US / total.max(1) as i64;
    for i in start..start + len as u64 {
        let mut r = Rng::new(SEED ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
        tx.append_value(format!("TX{:012}", i + 1));
        acct.append_value(format!("ACC{:08}", r.below(50_000)));
        cp.append_value(r.pick(COUNTERPARTIES));
        // Mostly small amounts, a long tail of large ones; a third are debits.
        let cents = match r.below(100) {
            0..=69 => r.below(50_000) as i128,
            70..=97 => r.below(5_000_000) as i128,
            _ => r.below(2_000_000_000) as i128,
        };
        amount.append_value(if r.below(3) == 0 { -cents } else { cents });
        cur.append_value(r.pick(CURRENCIES));
        let at = MONTH_START_US + i as i64 * step + r.below(step.max(1) as u64) as i64;
        booked.append_value(at);
        vdate.append_value((at.div_euclid(86_400_000_000) + r.below(3) as i64) as i32);
        country.append_value(r.pick(COUNTRIES));
        channel.append_value(r.pick(CHANNELS));
        flagged.append_value(r.below(100) < 3);
        if r.below(5) == 0 {
            risk.append_null();
        } else {
            risk.append_value(r.below(10_000) as f64 / 100.0);
        }
        match r.below(10) {
            0..=2 => memo.append_null(),
            3 => memo.append_value(r.pick(MEMOS)),
            _ => memo.append_value(format!("Payment {}", r.below(1_000_000))),
        }
        reference.append_value(9_007_199_254_740_993 + i as i64 * 7919);
    }
    let amount = amount.finish().with_precision_and_scale(18, 2).expect("valid decimal type");
    let booked = booked.finish().with_timezone("UTC");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(tx.finish()),
        Arc::new(acct.finish()),
        Arc::new(cp.finish()),
        Arc::new(amount),
        Arc::new(cur.finish()),
        Arc::new(booked),
        Arc::new(vdate.finish()),
        Arc::new(country.finish()),
        Arc::new(channel.finish()),
        Arc::new(flagged.finish()),
        Arc::new(risk.finish()),
        Arc::new(memo.finish()),
        Arc::new(reference.finish()),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

/// Write the dataset of `rows` rows as Parquet files (`part-00000.parquet`, ...) into `dir`,
/// calling `progress(rows_written)` as it goes. Returns the files.
pub fn write_parquet(dir: &Path, rows: u64, progress: impl FnMut(u64)) -> Result<Vec<PathBuf>, parquet::errors::ParquetError> {
    write_parquet_with(dir, rows, ROWS_PER_FILE, ROW_GROUP_ROWS, progress)
}

/// As [`write_parquet`], with the file and row group sizes given (tests use small ones to get
/// many files and chunks from little data).
pub fn write_parquet_with(
    dir: &Path,
    rows: u64,
    rows_per_file: u64,
    row_group_rows: usize,
    mut progress: impl FnMut(u64),
) -> Result<Vec<PathBuf>, parquet::errors::ParquetError> {
    std::fs::create_dir_all(dir)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(row_group_rows)).build();
    let mut files = Vec::new();
    let mut start = 0u64;
    let mut part = 0;
    while start < rows {
        let n = rows_per_file.min(rows - start);
        let path = dir.join(format!("part-{part:05}.parquet"));
        let tmp = dir.join(format!(".part-{part:05}.parquet.tmp"));
        let mut w = ArrowWriter::try_new(File::create(&tmp)?, schema(), Some(props.clone()))?;
        let mut off = 0u64;
        while off < n {
            let len = (BATCH as u64).min(n - off) as usize;
            w.write(&batch(start + off, len, rows))?;
            off += len as u64;
            progress(start + off);
        }
        w.close()?;
        std::fs::rename(&tmp, &path)?;
        files.push(path);
        start += n;
        part += 1;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_deterministic_and_independent() {
        let whole = batch(0, 1000, 1000);
        let tail = batch(600, 400, 1000);
        assert_eq!(whole.slice(600, 400), tail);
        assert_eq!(batch(0, 1000, 1000), whole);
    }

    #[test]
    fn month_start_is_october_first() {
        let t = chrono::DateTime::from_timestamp_micros(MONTH_START_US).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-10-01T00:00:00+00:00");
    }
}
