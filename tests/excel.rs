//! Excel exports over real HTTP against a running `egress serve`: the workbook downloaded and
//! read back by openpyxl and by LibreOffice headless (tests/readers/check_xlsx.py), every value
//! and type against the source; the sheet rollover at a lowered row limit; validation of the
//! xlsx options; text longer than a cell holds.

use crate::support;

use std::path::Path;

use egress::format::FileEncoder;
use egress::format::xlsx::{XlsxEncoder, XlsxOptions};
use egress::synthetic::transactions;
use serde_json::{Value, json};
use support::{Fixture, dataset_spec};

const ROWS: u64 = 12_000;
const CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn fixture() -> Fixture {
    // Small chunks, so that the workbook is made from several parts in order.
    Fixture::new(ROWS, 5000)
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// Run tests/readers/check_xlsx.py; it must print `OK`.
fn check_xlsx(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_xlsx.py");
    let out = std::process::Command::new(support::python()).arg(script).args(args).output().expect("run check_xlsx.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK"),
        "the readers rejected the workbook:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dataset_export_reads_back_in_openpyxl_and_libreoffice() {
    let f = fixture();
    let cols = "transaction_id,counterparty_name,amount,currency,booked_at,value_date,flagged,risk_score,memo,reference";
    let spec = dataset_spec(
        &f,
        json!({"name": "October, not cash", "columns": cols.split(',').collect::<Vec<_>>(),
               "filters": [{"column": "channel", "op": "!=", "value": "cash"}],
               "format": {"type": "excel", "metadata_sheet": true}}),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    let file = &e["result"]["files"][0];
    assert_eq!(file["content_type"], CONTENT_TYPE);
    assert!(file["name"].as_str().unwrap().ends_with(".xlsx"), "{file}");
    let id = e["id"].as_str().unwrap();
    let path = save(f.dir.path(), "out.xlsx", &f.server.download(&f.token, id));
    let source = format!("{}/*.parquet", f.dataset.display());
    let filters = json!(["channel != \"cash\""]).to_string();
    check_xlsx(&[
        &path,
        "--source",
        &source,
        "--where",
        "channel != 'cash'",
        "--columns",
        cols,
        "--metadata",
        id,
        "--filters",
        &filters,
        "--soffice",
    ]);
}

#[test]
fn inline_types_nulls_and_unicode_read_back() {
    let f = fixture();
    let long = "Ж".repeat(5000);
    let source = json!({
        "type": "inline",
        "schema": [
            {"name": "name", "type": "string"}, {"name": "n", "type": "int64"}, {"name": "x", "type": "float64"},
            {"name": "ok", "type": "bool"}, {"name": "day", "type": "date"}, {"name": "at", "type": "timestamp"},
            {"name": "price", "type": "decimal(12,2)"}, {"name": "rate", "type": "decimal(10,4)"}, {"name": "whole", "type": "decimal(9,0)"}
        ],
        "rows": [
            {"name": "Zürich Versicherung", "n": 42, "x": 0.1, "ok": true, "day": "2026-10-05", "at": "2026-10-05T14:03:07.250Z",
             "price": "1234.50", "rate": "-0.0001", "whole": "7"},
            {"name": null, "n": null, "x": null, "ok": null, "day": null, "at": null, "price": null, "rate": null, "whole": null},
            {"name": "株式会社テスト\nline two", "n": -999999999999999i64, "x": -1.5e300, "ok": false, "day": "1900-03-01",
             "at": "1900-03-01T00:00:00Z", "price": "-0.05", "rate": "12345.6789", "whole": "-123456789"},
            {"name": "=HYPERLINK(\"http://example.invalid\")", "n": 9007199254740993i64, "x": 3.0, "ok": true, "day": "1899-12-31",
             "at": "1850-06-01T12:00:00Z", "price": "0", "rate": "0.5", "whole": "0"},
            {"name": "  spaced  ", "n": 1000000000000000i64, "x": -0.0, "ok": false, "day": "9999-12-31",
             "at": "9999-12-31T23:59:59Z", "price": "9999999999.99", "rate": "1", "whole": "1"},
            {"name": long, "n": 0, "x": 2.5e-8, "ok": true, "day": "1970-01-01", "at": "2026-03-29T01:30:00+02:00",
             "price": "1.10", "rate": "2", "whole": "2"}
        ]
    });
    let cols = "name,n,x,ok,day,at,price,rate,whole";
    let spec = json!({"source": source, "columns": cols.split(',').collect::<Vec<_>>(),
                      "format": {"type": "xlsx", "sheet_name": "Überweisungen 2026"}});
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["rows"], 6, "{e}");
    let path = save(f.dir.path(), "inline.xlsx", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    let src = save(f.dir.path(), "inline.json", source.to_string().as_bytes());
    check_xlsx(&[&path, "--inline", &src, "--columns", cols, "--sheet-name", "Überweisungen 2026", "--soffice"]);
}

/// The rollover at a lowered limit (3 data rows a sheet), the encoder called directly: the
/// sheets `Data`, `Data (2)`, ... each with its header, freeze pane and autofilter.
#[test]
fn rows_beyond_a_sheet_go_to_the_next_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 10u64;
    let dataset = dir.path().join("ds");
    transactions::write_parquet_with(&dataset, rows, 10, 10, |_| {}).unwrap();
    let ctx = egress::format::FileContext {
        title: "rollover".into(),
        export_id: "exp_rollover".into(),
        generated_at: chrono::Utc::now(),
        filters: vec!["amount >= 0".into(), "sorted by amount asc".into()],
        spec: json!({"format": {"type": "xlsx", "metadata_sheet": true}}),
        work_dir: dir.path().to_path_buf(),
    };
    let options = XlsxOptions { sheet_name: "Data".into(), header: true, metadata_sheet: true, sheet_rows: 4 };
    let out = dir.path().join("rolled.xlsx");
    let mut enc = Box::new(XlsxEncoder::new(options, &transactions::schema(), &ctx, &out).unwrap());
    // Batches that cross the sheet boundaries in different places.
    enc.write_batch(&transactions::batch(0, 2, rows)).unwrap();
    enc.write_batch(&transactions::batch(2, 5, rows)).unwrap();
    enc.write_batch(&transactions::batch(7, 3, rows)).unwrap();
    enc.finish().unwrap();
    let cols: Vec<String> = transactions::schema().fields().iter().map(|f| f.name().clone()).collect();
    let source = format!("{}/*.parquet", dataset.display());
    let filters = json!(ctx.filters).to_string();
    check_xlsx(&[
        out.to_str().unwrap(),
        "--source",
        &source,
        "--columns",
        &cols.join(","),
        "--sheet-rows",
        "3",
        "--metadata",
        "exp_rollover",
        "--filters",
        &filters,
        "--soffice",
    ]);
}

#[test]
fn bad_xlsx_options_are_refused_naming_the_field() {
    let f = fixture();
    let refused = |extra: Value| -> (u16, Value) {
        let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&dataset_spec(&f, extra)));
        (r.status, r.json())
    };
    for (format, pointer) in [
        (json!({"type": "xlsx", "sheet_name": "a/b"}), "/format/sheet_name"),
        (json!({"type": "xlsx", "sheet_name": "x".repeat(32)}), "/format/sheet_name"),
        (json!({"type": "xlsx", "sheet_name": "'quoted'"}), "/format/sheet_name"),
        (json!({"type": "xlsx", "sheet_name": ""}), "/format/sheet_name"),
        (json!({"type": "xlsx", "sheet_name": "metadata", "metadata_sheet": true}), "/format/sheet_name"),
        (json!({"type": "xlsx", "delimiter": ";"}), "/format/delimiter"),
        (json!({"type": "xlsx", "metadata_sheet": "yes"}), "/format"),
    ] {
        let (status, body) = refused(json!({"format": format}));
        assert_eq!(status, 422, "{format}: {body}");
        let err = &body["errors"][0];
        assert!(err["pointer"].as_str().unwrap().starts_with(pointer), "{format}: {body}");
        if pointer == "/format/sheet_name" {
            assert_eq!(err["value"], format["sheet_name"], "{body}");
            assert!(
                err["allowed"].as_str().unwrap().contains("sheet name") || err["allowed"].as_str().unwrap().contains("Metadata"),
                "{body}"
            );
        }
    }
    let (status, body) = refused(json!({"format": "xlsx", "compression": "gzip"}));
    assert_eq!((status, body["errors"][0]["pointer"].as_str().unwrap()), (422, "/compression"), "{body}");
    // The options of xlsx are accepted together.
    let (status, body) =
        refused(json!({"format": {"type": "xlsx", "sheet_name": "Data 2026", "metadata_sheet": false, "header": false}, "max_rows": 5}));
    assert_eq!(status, 202, "{body}");
}

#[test]
fn text_longer_than_a_cell_fails_naming_row_and_column() {
    let f = fixture();
    let spec = json!({
        "source": {"type": "inline", "rows": [{"id": 1, "memo": "short"}, {"id": 2, "memo": "x".repeat(32_768)}]},
        "columns": ["id", "memo"],
        "format": "xlsx"
    });
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "failed", "{e}");
    let text = e.to_string();
    assert!(text.contains("row 2") && text.contains("`memo`") && text.contains("32768") && text.contains("32767"), "{e}");
}
