//! Field mapping over real HTTP against a running `egress serve`: exports with `fields` (rename,
//! casts with patterns and the Europe/Vienna zone, exact decimals, a value map, masks,
//! constants) to CSV and to Parquet (sorted, so the mapping runs after the merge too), checked
//! by an independent reader that computes every expected value from the source with DuckDB;
//! hashes stable within a tenant and different across tenants; a failing cast that fails the
//! export naming row, column and value, and the same with `on_error: null` giving nulls;
//! validation errors with field pointers.

use crate::support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::Server;

const ROWS: u64 = 12_000;

struct Fixture {
    server: Server,
    dataset: PathBuf,
    acme: String,
    globex: String,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("datasets/transactions");
    support::write_dataset(&dataset, ROWS);
    // Small chunks, so that the mapping runs in several parts.
    let server = Server::start(&dir.path().join("data"), &dir.path().join("datasets"), &["--chunk-rows", "5000"]);
    let acme = server.key("acme", "exports:admin");
    let globex = server.key("globex", "exports:admin");
    Fixture { server, dataset, acme, globex, dir }
}

impl Fixture {
    fn save(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn spec(&self, extra: Value) -> Value {
        let mut spec = json!({"source": {"type": "dataset", "local_path": self.dataset.to_str().unwrap()}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    }

    /// Export with `extra`, download, and save the file as `name`.
    fn export_to(&self, token: &str, extra: Value, name: &str) -> String {
        let e = self.server.export(token, &self.spec(extra));
        assert_eq!(e["status"], "completed", "{e}");
        self.save(name, &self.server.download(token, e["id"].as_str().unwrap()))
    }
}

fn fields() -> Value {
    json!([
        {"name": "id", "from": "transaction_id"},
        {"name": "booked_vienna", "from": "booked_at", "cast": {"to": "string", "format": "%d.%m.%Y %H:%M:%S", "time_zone": "Europe/Vienna"}},
        {"name": "booked_day", "from": "booked_at", "cast": {"to": "date", "time_zone": "Europe/Vienna"}},
        {"name": "amount_text", "from": "amount", "cast": {"to": "string"}},
        {"name": "amount4", "from": "amount", "cast": {"to": "decimal(20,4)"}},
        {"name": "ref_text", "from": "reference", "cast": {"to": "string"}},
        {"name": "channel_code", "from": "channel", "value_map": {"values": {"card": "C", "cash": "K"}, "default": "other"}},
        {"name": "account", "from": "account_id", "mask": {"type": "keep_last", "n": 4}},
        {"name": "counterparty", "from": "counterparty_name", "mask": {"type": "hash"}},
        {"name": "memo", "from": "memo", "mask": {"type": "redact"}},
        {"name": "value_date_text", "from": "value_date", "cast": {"to": "string", "format": "%d/%m/%Y"}},
        {"name": "system", "constant": "core-banking"},
        {"name": "version", "constant": 2, "type": "int64"}
    ])
}

fn check_fields(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_fields.py");
    let out = std::process::Command::new(support::python()).arg(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "independent reader rejected the export:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mapped_fields_reach_csv_and_parquet_with_their_types() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    let filter = json!([{"column": "channel", "op": "!=", "value": "atm"}]);

    let csv = f.export_to(&f.acme, json!({"fields": fields(), "filters": filter, "format": "csv"}), "acme.csv");
    check_fields(&[&source, &csv, &f.path("acme-csv.json")]);

    // Sorted on a column that is not exported: runs keep the read columns, the merge maps them.
    let sort = json!([{"column": "amount", "order": "desc"}, {"column": "transaction_id"}]);
    let parquet = f.export_to(&f.acme, json!({"fields": fields(), "filters": filter, "sort": sort, "format": "parquet"}), "acme.parquet");
    check_fields(&[&source, &parquet, &f.path("acme-parquet.json"), "--sorted"]);
    check_fields(&["--same", &f.path("acme-csv.json"), &f.path("acme-parquet.json")]);

    // Another tenant, same data: no hash in common.
    let other = f.export_to(&f.globex, json!({"fields": fields(), "filters": filter, "format": "csv"}), "globex.csv");
    check_fields(&[&source, &other, &f.path("globex.json")]);
    check_fields(&["--differ", &f.path("acme-csv.json"), &f.path("globex.json")]);

    // The export's spec is returned as given, `fields` included.
    let list = f.server.req("GET", "/v1/exports", Some(&f.acme), None).json();
    let shown = list.to_string();
    assert!(shown.contains("\"booked_vienna\"") && shown.contains("Europe/Vienna"), "{shown}");
}

fn inline(fields: Value) -> Value {
    let rows: Vec<Value> = ["12.50", "7", "1,5", "0.05", "-3.10"]
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"id": i + 1, "amount_text": a, "day": "31/12/2026"}))
        .collect();
    json!({"source": {"type": "inline", "rows": rows}, "fields": fields, "format": "csv"})
}

#[test]
fn a_failed_cast_fails_the_export_or_becomes_null() {
    let f = fixture();
    let cast = json!([
        {"name": "id", "from": "id"},
        {"name": "amount", "from": "amount_text", "cast": {"to": "decimal(18,2)"}},
        {"name": "day", "from": "day", "cast": {"to": "date", "format": "%d/%m/%Y"}}
    ]);
    let e = f.server.export(&f.acme, &inline(cast.clone()));
    assert_eq!(e["status"], "failed", "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    for part in ["row 3 ", "source rows 1 to 5", "column `amount`", "source column `amount_text`", "\"1,5\"", "decimal(18,2)"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(e["error"]["code"], "INVALID_SOURCE_DATA", "{e}");

    let mut with_null = cast;
    with_null[1]["on_error"] = json!("null");
    let e = f.server.export(&f.acme, &inline(with_null));
    assert_eq!(e["status"], "completed", "{e}");
    let path = f.save("nulls.csv", &f.server.download(&f.acme, e["id"].as_str().unwrap()));
    let script = r#"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
want = [["id", "amount", "day"], ["1", "12.50", "2026-12-31"], ["2", "7.00", "2026-12-31"], ["3", "", "2026-12-31"],
        ["4", "0.05", "2026-12-31"], ["5", "-3.10", "2026-12-31"]]
assert rows == want, rows
print("OK")
"#;
    let out = std::process::Command::new(support::python()).args(["-c", script, &path]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_fields_are_rejected_with_pointers() {
    let f = fixture();
    let spec = f.spec(json!({"format": "csv", "fields": [
        {"name": "a", "from": "no_such_column"},
        {"name": "b", "from": "booked_at", "cast": {"to": "string", "format": "%d.%Q", "time_zone": "Europe/Vienn"}},
        {"name": "c", "from": "flagged", "cast": {"to": "date"}},
        {"name": "c", "constant": "x", "type": "int64"}
    ]}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.acme), Some(&spec));
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json();
    let errors = body["errors"].as_array().unwrap();
    let pointers: Vec<&str> = errors.iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    for p in ["/fields/1/cast/format", "/fields/1/cast/time_zone", "/fields/3/name", "/fields/3/constant"] {
        assert!(pointers.contains(&p), "{p} missing: {body}");
    }
    assert_eq!(errors.iter().find(|e| e["pointer"] == "/fields/1/cast/time_zone").unwrap()["value"], "Europe/Vienn");

    // With the shape right, the checks against the schema.
    let spec = f.spec(json!({"format": "csv", "fields": [
        {"name": "a", "from": "no_such_column"},
        {"name": "c", "from": "flagged", "cast": {"to": "date"}}
    ]}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.acme), Some(&spec));
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json();
    assert_eq!(body["errors"][0]["pointer"], "/fields/0/from", "{body}");
    assert!(body["errors"][0]["allowed"].as_str().unwrap().contains("transaction_id"), "{body}");
    assert_eq!(body["errors"][1]["pointer"], "/fields/1/cast/to", "{body}");

    let spec = f.spec(json!({"format": "csv", "columns": ["amount"], "fields": [{"name": "a", "from": "amount"}]}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.acme), Some(&spec));
    assert_eq!((r.status, r.json()["errors"][0]["pointer"].as_str().unwrap()), (422, "/fields"));
}
