//! PDF/A-3b reports over the HTTP API, checked by independent tools: `qpdf --check`,
//! poppler (`pdfinfo -meta`, `pdfdetach`, `pdftotext`, `pdftoppm`) and pikepdf
//! (tests/readers/check_pdf.py). The attachment must be byte for byte the CSV export of the
//! same spec, downloaded from the same server.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use egress::format::pdf::layout::Page;
use serde_json::{Value, json};
use support::Fixture;

const ROWS: u64 = 4_000;

fn fixture() -> Fixture {
    // Small chunks: the report is fed from several parts, in order.
    Fixture::new(ROWS, 1500)
}

fn with(mut spec: Value, format: Value) -> Value {
    spec["format"] = format;
    spec
}

/// Export `spec`, check it completed, and save the file; returns its path and the rows.
fn export(f: &Fixture, spec: &Value, name: &str) -> (PathBuf, u64) {
    let e = f.server.export(&f.token, spec);
    assert_eq!(e["status"], "completed", "{e}");
    let path = f.dir.path().join(name);
    std::fs::write(&path, f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    (path, e["result"]["rows"].as_u64().unwrap())
}

/// Run a tool that must be installed and succeed; its stdout.
fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("`{program}` must be installed: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The checks every report gets: qpdf, XMP identification, the attachment equal to `csv`,
/// pikepdf's structure checks with `pages` pages, page 1 rendered and not blank. Returns the
/// text pdftotext finds.
fn check_report(pdf: &Path, csv: &Path, pages: usize) -> String {
    let check = tool("qpdf", &["--check", s(pdf)]);
    assert!(check.contains("No syntax or stream encoding errors found"), "{check}");
    let meta = tool("pdfinfo", &["-meta", s(pdf)]);
    let part = meta.contains("<pdfaid:part>3</pdfaid:part>") || meta.contains("pdfaid:part=\"3\"");
    let conformance = meta.contains("<pdfaid:conformance>B</pdfaid:conformance>") || meta.contains("pdfaid:conformance=\"B\"");
    assert!(part && conformance, "XMP without PDF/A-3b identification:\n{meta}");

    let list = tool("pdfdetach", &["-list", s(pdf)]);
    assert!(list.starts_with("1 embedded files"), "{list}");
    let saved = pdf.with_extension("attached.csv");
    tool("pdfdetach", &["-save", "1", "-o", s(&saved), s(pdf)]);
    let (attached, expected) = (std::fs::read(&saved).unwrap(), std::fs::read(csv).unwrap());
    assert!(attached == expected, "the attachment ({} bytes) differs from the CSV export ({} bytes)", attached.len(), expected.len());

    let prefix = pdf.with_extension("page");
    tool("pdftoppm", &["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", s(pdf), s(&prefix)]);
    let png = PathBuf::from(format!("{}.png", s(&prefix)));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_pdf.py");
    let out = Command::new(support::python()).arg(script).args([s(pdf), &pages.to_string(), "--png", s(&png)]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if let Ok(dir) = std::env::var("EGRESS_TEST_KEEP_PDF") {
        let name = pdf.file_name().unwrap().to_str().unwrap();
        std::fs::copy(pdf, Path::new(&dir).join(name)).unwrap();
        std::fs::copy(&png, Path::new(&dir).join(format!("{name}.png"))).unwrap();
    }
    tool("pdftotext", &["-layout", s(pdf), "-"])
}

#[test]
fn synthetic_dataset_report_is_pdf_a_3b_with_its_csv_attached() {
    let f = fixture();
    let spec = json!({
        "source": {"type": "dataset", "local_path": f.dataset.to_str().unwrap()},
        "filters": [{"column": "channel", "op": "!=", "value": "cash"}],
        "sort": [{"column": "booked_at"}, {"column": "transaction_id"}],
    });
    let (csv, csv_rows) = export(&f, &with(spec.clone(), json!("csv")), "t.csv");
    let (pdf, rows) = export(&f, &with(spec, json!({"type": "pdf", "title": "Transactions — Q4 report"})), "t.pdf");
    assert_eq!(rows, csv_rows);
    assert!(rows > 2000, "{rows}");

    // Thirteen columns do not fit portrait: landscape, one filter line in the page header.
    let info = tool("pdfinfo", &[s(&pdf)]);
    assert!(info.contains("Page size:       841.89 x 595.28 pts"), "{info}");
    let per_page = Page::new(true, 1).rows_per_page;
    let pages = (rows as usize).div_ceil(per_page);
    let text = check_report(&pdf, &csv, pages);

    assert!(text.contains("Transactions — Q4 report"), "{text}");
    assert!(text.contains("Filters: channel != 'cash'") || text.contains("Filters: channel"), "{text}");
    assert!(text.contains("page 1") && text.contains(&format!("page {pages}")));
    assert!(text.contains("transaction_id") && text.contains("counterparty"));
    // Every page repeats the header row.
    let headers = text.lines().filter(|l| l.trim_start().starts_with("transaction_id")).count();
    assert_eq!(headers, pages, "header row on every page");
    // The first data row as the CSV has it (its amount with two decimals, its ISO date).
    let first = std::fs::read_to_string(&csv).unwrap().lines().nth(1).unwrap().to_string();
    let id = first.split(',').next().unwrap();
    assert!(text.contains(id), "first transaction {id} is on page 1");
}

#[test]
fn greek_and_cyrillic_text_is_drawn_and_searchable_in_portrait() {
    let f = fixture();
    let spec = json!({
        "source": {"type": "inline",
            "schema": [{"name": "amount", "type": "decimal(12,2)"}, {"name": "day", "type": "date"}],
            "rows": [
                {"city": "Αθήνα", "note": "Καλημέρα κόσμε", "amount": "1234.5", "day": "2026-03-29"},
                {"city": "Москва", "note": "Съешь же ещё этих мягких французских булок", "amount": -7, "day": null},
                {"city": "Zürich", "note": "naïve café, 漢字 outside the font", "amount": null, "day": "2026-01-02"}
            ]},
        "name": "Städte"
    });
    let (csv, _) = export(&f, &with(spec.clone(), json!("csv")), "c.csv");
    let (pdf, rows) = export(&f, &with(spec, json!("pdf")), "c.pdf");
    assert_eq!(rows, 3);
    let info = tool("pdfinfo", &[s(&pdf)]);
    assert!(info.contains("Page size:       595.28 x 841.89 pts"), "{info}");
    let text = check_report(&pdf, &csv, 1);
    for want in ["Αθήνα", "Καλημέρα κόσμε", "Москва", "Съешь", "Zürich", "1234.50", "-7.00", "2026-03-29", "page 1", "Städte"]
    {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // Characters outside the font are drawn as the replacement character, not dropped.
    assert!(text.contains("\u{FFFD}\u{FFFD} outside"), "{text}");
}

#[test]
fn pdf_options_are_checked() {
    let f = fixture();
    let post = |format: Value| {
        let body = json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": format});
        let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
        (r.status, r.json())
    };
    let (status, body) = post(json!({"type": "pdf", "title": "  "}));
    assert_eq!((status, body["errors"][0]["pointer"].as_str()), (422, Some("/format/title")), "{body}");
    let (status, body) = post(json!({"type": "pdf", "delimiter": ";"}));
    assert_eq!((status, body["errors"][0]["pointer"].as_str()), (422, Some("/format/delimiter")), "{body}");
    let (status, body) = post(json!({"type": "pdf", "orientation": "sideways"}));
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(body.to_string().contains("sideways") || body.to_string().contains("orientation"), "{body}");
    let body = json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "pdf", "compression": "gzip"});
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
    assert_eq!((r.status, r.json()["errors"][0]["pointer"].as_str().map(String::from)), (422, Some("/compression".to_string())));

    // Without an attachment, landscape as asked.
    let spec = json!({"source": {"type": "inline", "rows": [{"a": 1, "b": "x"}]},
                      "format": {"type": "pdf", "attachment": "none", "orientation": "landscape"}});
    let (pdf, _) = export(&f, &spec, "n.pdf");
    assert!(tool("pdfdetach", &["-list", s(&pdf)]).starts_with("0 embedded files"));
    assert!(tool("pdfinfo", &[s(&pdf)]).contains("841.89 x 595.28"));
}
