//! Avro and Arrow IPC (Feather v2) exports over the HTTP API, read back by independent readers
//! (fastavro and Polars for Avro; pyarrow's IPC and Feather readers and Polars for Arrow IPC)
//! and compared value by value with the source: a synthetic dataset read in several chunks
//! (so Avro parts are concatenated, and Arrow batches come from several parts), and an inline
//! source with nulls, unicode, decimals, dates, timestamps and booleans.

use crate::support;

use serde_json::{Value, json};
use support::{Fixture, dataset_spec};

const ROWS: u64 = 30_000;

fn fixture() -> Fixture {
    // Small chunks: six parts for the whole dataset.
    Fixture::new(ROWS, 5000)
}

/// Export `spec`, check the file's name and content type, and save it; returns the path and
/// the export.
fn export_file(f: &Fixture, spec: &Value, name: &str) -> (String, Value) {
    let e = f.server.export(&f.token, spec);
    assert_eq!(e["status"], "completed", "{e}");
    let file = &e["result"]["files"][0];
    let (ext, ct) = if name.ends_with(".avro") { (".avro", "application/avro") } else { (".arrow", "application/vnd.apache.arrow.file") };
    assert_eq!(file["content_type"], ct, "{e}");
    assert!(file["name"].as_str().unwrap().ends_with(ext), "{e}");
    let path = f.dir.path().join(name);
    std::fs::write(&path, f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    (path.to_str().unwrap().to_string(), e)
}

fn check(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_avro_arrow.py");
    let out = std::process::Command::new(support::python()).arg(script).args(args).output().expect("run check_avro_arrow.py");
    assert!(
        out.status.success(),
        "independent reader rejected the export:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const COLS: &str = "transaction_id,booked_at,value_date,amount,currency,flagged,risk_score,memo,reference";

#[test]
fn avro_matches_the_dataset_with_every_codec() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    for (codec, avro_codec) in [(None, "deflate"), (Some("snappy"), "snappy"), (Some("zstd"), "zstandard"), (Some("none"), "null")] {
        let mut format = json!({"type": "avro"});
        if let Some(c) = codec {
            format["compression"] = json!(c);
        }
        let spec = dataset_spec(
            &f,
            json!({"columns": COLS.split(',').collect::<Vec<_>>(), "filters": [{"column": "channel", "op": "!=", "value": "cash"}], "format": format}),
        );
        let (path, _) = export_file(&f, &spec, &format!("out-{avro_codec}.avro"));
        check(&["avro", &path, "--source", &source, "--columns", COLS, "--where", "channel != 'cash'", "--codec", avro_codec]);
    }
    // Sorted: the runs are merged through one encoder, which must end its last block.
    let spec = dataset_spec(
        &f,
        json!({"columns": ["transaction_id", "amount", "booked_at", "memo"], "sort": [{"column": "amount", "order": "desc"}, {"column": "transaction_id"}],
               "max_rows": 1000, "format": "avro"}),
    );
    let (path, e) = export_file(&f, &spec, "top.avro");
    assert_eq!(e["result"]["rows"], 1000, "{e}");
    check(&[
        "avro",
        &path,
        "--source",
        &source,
        "--columns",
        "transaction_id,amount,booked_at,memo",
        "--order-by",
        "amount DESC, transaction_id",
        "--limit",
        "1000",
        "--codec",
        "deflate",
    ]);
    // max_rows without sort cuts the part that crosses the limit: the file is still whole.
    let (path, e) = export_file(&f, &dataset_spec(&f, json!({"max_rows": 12345, "format": "avro"})), "cut.avro");
    assert_eq!(e["result"]["rows"], 12345, "{e}");
    check(&[
        "avro",
        &path,
        "--source",
        &source,
        "--columns",
        "transaction_id,account_id,counterparty_name,amount,currency,booked_at,value_date,country,channel,flagged,risk_score,memo,reference",
        "--limit",
        "12345",
        "--codec",
        "deflate",
    ]);
}

#[test]
fn arrow_ipc_keeps_the_schema_and_values_with_every_codec() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    for (kind, codec, want) in [("arrow", None, "lz4"), ("feather", Some("zstd"), "zstd"), ("ipc", Some("none"), "none")] {
        let mut format = json!({"type": kind});
        if let Some(c) = codec {
            format["compression"] = json!(c);
        }
        let spec = dataset_spec(
            &f,
            json!({"columns": COLS.split(',').collect::<Vec<_>>(), "filters": [{"column": "flagged", "op": "=", "value": true}], "format": format}),
        );
        let (path, _) = export_file(&f, &spec, &format!("out-{want}.arrow"));
        check(&["arrow", &path, "--source", &source, "--columns", COLS, "--where", "flagged", "--codec", want]);
    }
    let spec = dataset_spec(
        &f,
        json!({"columns": ["transaction_id", "amount", "value_date"], "sort": [{"column": "value_date"}, {"column": "transaction_id", "order": "desc"}],
               "max_rows": 777, "format": "arrow"}),
    );
    let (path, _) = export_file(&f, &spec, "sorted.arrow");
    check(&[
        "arrow",
        &path,
        "--source",
        &source,
        "--columns",
        "transaction_id,amount,value_date",
        "--order-by",
        "value_date, transaction_id DESC",
        "--limit",
        "777",
        "--codec",
        "lz4",
    ]);
}

#[test]
fn inline_rows_keep_nulls_unicode_and_types_in_both_formats() {
    let f = fixture();
    let source = json!({
        "type": "inline",
        "schema": [
            {"name": "id", "type": "int64"}, {"name": "name", "type": "string"}, {"name": "amount", "type": "decimal(38,4)"},
            {"name": "day", "type": "date"}, {"name": "at", "type": "timestamp"}, {"name": "ok", "type": "bool"},
            {"name": "score", "type": "float64"}, {"name": "unit price €", "type": "decimal(5,2)"}
        ],
        "rows": [
            {"id": 1, "name": "Zürich ✓ \"quoted\"\nnew line", "amount": "12345678901234567890123456789012.3456", "day": "2026-10-01",
             "at": "2026-10-01T12:34:56.789012Z", "ok": true, "score": 0.1, "unit price €": "-999.99"},
            {"id": -9223372036854775807i64, "name": null, "amount": "-0.0001", "day": "1969-12-31", "at": "1969-12-31T23:59:59.999999Z",
             "ok": false, "score": -1.5e300, "unit price €": "0.00"},
            {"id": 3, "name": "", "amount": null, "day": null, "at": null, "ok": null, "score": null, "unit price €": null},
            {"id": 9223372036854775807i64, "name": "日本語 🎉", "amount": "-99999999999999999999999999999999.9999", "day": "9999-12-31",
             "at": "2262-04-11T23:47:16.854775Z", "ok": true, "score": 5e-324, "unit price €": "999.99"}
        ]
    });
    let rows_file = f.dir.path().join("inline.json");
    std::fs::write(&rows_file, source.to_string()).unwrap();
    let rows_file = rows_file.to_str().unwrap();
    for (format, name, codec) in [
        (json!("avro"), "inline.avro", "deflate"),
        (json!({"type": "avro", "compression": "snappy"}), "inline-snappy.avro", "snappy"),
        (json!({"type": "avro", "compression": "zstd"}), "inline-zstd.avro", "zstandard"),
        (json!({"type": "avro", "compression": "none"}), "inline-null.avro", "null"),
        (json!("arrow"), "inline.arrow", "lz4"),
        (json!({"type": "arrow", "compression": "zstd"}), "inline-zstd.arrow", "zstd"),
    ] {
        let (path, e) = export_file(&f, &json!({"source": source, "format": format}), name);
        assert_eq!(e["result"]["rows"], 4, "{e}");
        let kind = if name.ends_with(".avro") { "avro" } else { "arrow" };
        check(&[kind, &path, "--inline", rows_file, "--codec", codec]);
    }
    // An empty export is a valid file too: the Avro header alone, an Arrow file without batches.
    for (format, name, codec) in [("avro", "empty.avro", "deflate"), ("arrow", "empty.arrow", "lz4")] {
        let spec = json!({"source": source, "filters": [{"column": "id", "op": "=", "value": 2}], "format": format});
        let (path, e) = export_file(&f, &spec, name);
        assert_eq!(e["result"]["rows"], 0, "{e}");
        let empty = f.dir.path().join("empty.json");
        let mut decl = source.clone();
        decl["rows"] = json!([]);
        std::fs::write(&empty, decl.to_string()).unwrap();
        check(&[format, &path, "--inline", empty.to_str().unwrap(), "--codec", codec]);
    }
}

#[test]
fn codecs_of_another_format_are_refused() {
    let f = fixture();
    let inline = json!({"type": "inline", "rows": [{"a": 1}]});
    for (format, codec, allowed) in [
        ("avro", "lz4", "one of deflate, snappy, zstd, none for avro"),
        ("avro", "gzip", "one of deflate, snappy, zstd, none for avro"),
        ("arrow", "snappy", "one of lz4, zstd, none for arrow"),
        ("feather", "deflate", "one of lz4, zstd, none for arrow"),
    ] {
        let body = json!({"source": inline, "format": {"type": format, "compression": codec}});
        let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
        assert_eq!(r.status, 422, "{}", r.text());
        let err = &r.json()["errors"][0];
        assert_eq!(
            (err["pointer"].as_str(), err["value"].as_str(), err["allowed"].as_str()),
            (Some("/format/compression"), Some(codec), Some(allowed))
        );
    }
    // A codec name that no format knows is refused when the body is read.
    let body = json!({"source": inline, "format": {"type": "avro", "compression": "brotli"}});
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["errors"][0]["allowed"].as_str().unwrap().contains("unknown variant `brotli`"), "{}", r.text());
    // Whole-file gzip is refused: both formats compress inside the file.
    for format in ["avro", "arrow"] {
        let body = json!({"source": inline, "format": format, "compression": "gzip"});
        let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
        assert_eq!((r.status, r.json()["errors"][0]["pointer"].as_str()), (422, Some("/compression")), "{}", r.text());
    }
}
