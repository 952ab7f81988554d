//! The HTTP API over real HTTP against a running `egress serve`: exports created, polled,
//! downloaded through signed URLs and checked by an independent reader; tenant isolation,
//! permissions, idempotency, validation errors, signed URL tampering and expiry.

use crate::support;

use serde_json::{Value, json};
use support::{Fixture, check_export, dataset_spec};

const ROWS: u64 = 30_000;

fn fixture() -> Fixture {
    // Small chunks, so that even this dataset is read in parallel parts.
    Fixture::new(ROWS, 5000)
}

fn save(f: &Fixture, name: &str, bytes: &[u8]) -> String {
    f.save(name, bytes)
}

#[test]
fn csv_export_matches_the_source_with_filters_and_time_range() {
    let f = fixture();
    let spec = dataset_spec(
        &f,
        json!({
            "name": "flagged October, first half",
            "columns": ["transaction_id", "booked_at", "value_date", "counterparty_name", "amount", "risk_score", "memo", "reference"],
            "filters": [{"column": "flagged", "op": "=", "value": true}, {"column": "currency", "op": "in", "value": ["EUR", "USD"]}],
            "time_range": {"column": "booked_at", "from": "2026-10-01T00:00:00Z", "to": "2026-10-16T00:00:00Z"},
            "format": "csv"
        }),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["progress"]["percent"], 100.0);
    assert!(e["progress"]["chunks_total"].as_u64().unwrap() >= 6, "{e}");
    let file = &e["result"]["files"][0];
    assert_eq!(file["name"], "flagged-october-first-half.csv");
    assert!(file.get("key").is_none(), "internal blob keys must not be shown");
    let bytes = f.server.download(&f.token, e["id"].as_str().unwrap());
    assert_eq!(bytes.len() as u64, file["size"].as_u64().unwrap());
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)), file["sha256"].as_str().unwrap());
    let path = save(&f, "out.csv", &bytes);
    let source = format!("{}/*.parquet", f.dataset.display());
    check_export(&[
        "--source",
        &source,
        "--export",
        &path,
        "--format",
        "csv",
        "--columns",
        "transaction_id,booked_at,value_date,counterparty_name,amount,risk_score,memo,reference",
        "--where",
        "flagged AND currency IN ('EUR', 'USD') AND booked_at >= TIMESTAMPTZ '2026-10-01 00:00:00+00' AND booked_at < TIMESTAMPTZ '2026-10-16 00:00:00+00'",
    ]);
    assert_eq!(file["rows"].as_u64().unwrap(), e["result"]["rows"].as_u64().unwrap());
}

#[test]
fn jsonl_gzip_and_sorted_json_exports_match_the_source() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    let e = f.server.export(&f.token, &dataset_spec(&f, json!({"format": "jsonl", "compression": "gzip"})));
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["rows"], ROWS);
    assert_eq!(e["result"]["files"][0]["content_type"], "application/gzip");
    let path = save(&f, "all.jsonl.gz", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check_export(&["--source", &source, "--export", &path, "--format", "jsonl", "--gzip"]);

    let spec = dataset_spec(
        &f,
        json!({
            "columns": ["transaction_id", "amount", "booked_at", "memo"],
            "filters": [{"column": "amount", "op": "<", "value": "-1000.00"}],
            "sort": [{"column": "amount"}, {"column": "transaction_id", "order": "desc"}],
            "max_rows": 250,
            "format": {"type": "json", "decimals_as": "number"}
        }),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["rows"], 250);
    let path = save(&f, "top.json", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check_export(&[
        "--source",
        &source,
        "--export",
        &path,
        "--format",
        "json",
        "--columns",
        "transaction_id,amount,booked_at,memo",
        "--where",
        "amount < -1000.00",
        "--order-by",
        "amount ASC, transaction_id DESC",
        "--limit",
        "250",
    ]);
}

#[test]
fn max_rows_without_sort_keeps_the_first_rows_in_source_order() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    // 7,500 rows cross the second 5,000-row chunk: the encode stage cuts it short.
    let e = f
        .server
        .export(&f.token, &dataset_spec(&f, json!({"max_rows": 7500, "format": {"type": "csv", "delimiter": ";", "null": "NULL"}})));
    assert_eq!(e["result"]["rows"], 7500, "{e}");
    let path = save(&f, "first.csv", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check_export(&[
        "--source",
        &source,
        "--export",
        &path,
        "--format",
        "csv",
        "--limit",
        "7500",
        "--csv-delimiter",
        ";",
        "--csv-null",
        "NULL",
    ]);
}

#[test]
fn inline_rows_keep_their_types() {
    let f = fixture();
    let spec = json!({
        "source": {"type": "inline",
            "schema": [{"name": "amount", "type": "decimal(20,4)"}, {"name": "at", "type": "timestamp"}, {"name": "day", "type": "date"}],
            "rows": [
                {"id": 12345678901234567i64, "amount": "1234567890123456.1234", "at": "2026-03-29T01:30:00+02:00", "day": "2026-03-29", "note": "=1+1", "ok": true},
                {"id": 2, "amount": -0.5, "at": "2026-10-25T00:59:59.123456Z", "day": null, "note": null, "ok": false}
            ]},
        "format": "jsonl"
    });
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    let text = String::from_utf8(f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"amount":1234567890123456.1234,"at":"2026-03-28T23:30:00Z","day":"2026-03-29","id":12345678901234567,"note":"=1+1","ok":true}"#
    );
    assert_eq!(lines[1], r#"{"amount":-0.5000,"at":"2026-10-25T00:59:59.123456Z","day":null,"id":2,"note":null,"ok":false}"#);
}

#[test]
fn tenants_never_see_each_other() {
    let f = fixture();
    let other = f.server.key("globex", "exports:admin");
    let e = f.server.export(&f.token, &json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"}));
    let id = e["id"].as_str().unwrap();
    for (method, path) in
        [("GET", format!("/v1/exports/{id}")), ("GET", format!("/v1/exports/{id}/download")), ("DELETE", format!("/v1/exports/{id}"))]
    {
        let r = f.server.req(method, &path, Some(&other), None);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert_eq!(r.problem_code(), "EXPORT_NOT_FOUND");
    }
    let list = f.server.req("GET", "/v1/exports", Some(&other), None).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // The owner still has it.
    assert_eq!(f.server.req("GET", &format!("/v1/exports/{id}"), Some(&f.token), None).status, 200);
}

#[test]
fn every_route_checks_its_permission() {
    let f = fixture();
    let e = f.server.export(&f.token, &json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"}));
    let id = e["id"].as_str().unwrap();
    let viewer = f.server.key("acme", "exports:view");
    let generator = f.server.key("acme", "exports:generate");
    let body = json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"});
    assert_eq!(f.server.req("POST", "/v1/exports", Some(&viewer), Some(&body)).problem_code(), "FORBIDDEN");
    assert_eq!(f.server.req("GET", &format!("/v1/exports/{id}/download"), Some(&viewer), None).problem_code(), "FORBIDDEN");
    assert_eq!(f.server.req("DELETE", &format!("/v1/exports/{id}"), Some(&viewer), None).problem_code(), "FORBIDDEN");
    assert_eq!(f.server.req("GET", &format!("/v1/exports/{id}"), Some(&generator), None).problem_code(), "FORBIDDEN");
    assert_eq!(f.server.req("GET", "/v1/exports", Some(&generator), None).problem_code(), "FORBIDDEN");
    assert_eq!(f.server.req("GET", &format!("/v1/exports/{id}"), Some(&viewer), None).status, 200);
    let r = f.server.req("GET", "/v1/exports", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.problem_code(), "UNAUTHORIZED");
    let last = if f.token.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &f.token[..f.token.len() - 1]);
    assert_eq!(f.server.req("GET", "/v1/exports", Some(&forged), None).problem_code(), "UNAUTHORIZED");
    assert_eq!(f.server.req("GET", "/v1/health", None, None).status, 200);
}

#[test]
fn idempotency_key_replays_and_refuses_a_different_body() {
    let f = fixture();
    let body = json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"});
    let bytes = body.to_string();
    let send = |b: &str| {
        f.server
            .try_request(
                "POST",
                "/v1/exports",
                Some(&f.token),
                &[("content-type", "application/json"), ("idempotency-key", "\"order-42\"")],
                Some(b.as_bytes()),
            )
            .unwrap()
    };
    let first = send(&bytes);
    assert_eq!(first.status, 202, "{}", first.text());
    // The same request, formatted differently, is the same request.
    let again = send(&serde_json::to_string_pretty(&body).unwrap());
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(again.header("location"), first.header("location"));
    let other = send(&json!({"source": {"type": "inline", "rows": [{"a": 2}]}, "format": "csv"}).to_string());
    assert_eq!(other.status, 422);
    assert_eq!(other.problem_code(), "IDEMPOTENCY_KEY_REUSED");
    let list = f.server.req("GET", "/v1/exports", Some(&f.token), None).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "one export, however often it was sent");
}

/// Each kind of bad input gets its status, its code and a pointer to the field.
#[test]
fn validation_errors_name_the_field_the_value_and_what_is_allowed() {
    let f = fixture();
    let ds = f.dataset.to_str().unwrap();
    // A folder inside a dataset root whose file links to a file outside every root.
    let link = f.server.dataset_root.join("escape");
    std::fs::create_dir_all(&link).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", link.join("host.csv")).unwrap();
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"source": {"type": "inline", "rows": []}, "format": "csv", "colour": "red"}), 422, "VALIDATION_ERROR", "/colour"),
        (json!({"source": {"type": "inline", "rows": []}, "format": "xlsx9"}), 422, "INVALID_FORMAT", "/format"),
        (
            json!({"source": {"type": "inline", "rows": []}, "format": {"type": "csv", "delimiter": "ab"}}),
            422,
            "VALIDATION_ERROR",
            "/format/delimiter",
        ),
        (
            json!({"source": {"type": "inline", "rows": []}, "format": {"type": "jsonl", "bom": true}}),
            422,
            "VALIDATION_ERROR",
            "/format/bom",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "columns": ["amount", "nope"]}),
            422,
            "VALIDATION_ERROR",
            "/columns/1",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "filters": [{"column": "amount", "op": ">", "value": "lots"}]}),
            422,
            "VALIDATION_ERROR",
            "/filters/0/value",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "filters": [{"column": "amount", "op": "~", "value": 1}]}),
            422,
            "VALIDATION_ERROR",
            "/filters/0/op",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "filters": [{"column": "amount", "op": "contains", "value": "1"}]}),
            422,
            "VALIDATION_ERROR",
            "/filters/0/op",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "time_range": {"column": "memo", "from": "2026-10-01T00:00:00Z"}}),
            422,
            "VALIDATION_ERROR",
            "/time_range/column",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "time_range": {"column": "booked_at", "from": "yesterday"}}),
            422,
            "VALIDATION_ERROR",
            "/time_range/from",
        ),
        (
            json!({"source": {"type": "dataset", "local_path": ds}, "format": "csv", "sort": [{"column": "nope"}]}),
            422,
            "VALIDATION_ERROR",
            "/sort/0/column",
        ),
        (json!({"source": {"type": "dataset", "local_path": "/etc"}, "format": "csv"}), 422, "VALIDATION_ERROR", "/source/local_path"),
        (
            json!({"source": {"type": "dataset", "local_path": link.to_str().unwrap()}, "format": "csv"}),
            422,
            "VALIDATION_ERROR",
            "/source/local_path",
        ),
        (json!({"source": {"type": "dataset", "path": "../secrets"}, "format": "csv"}), 422, "VALIDATION_ERROR", "/source/path"),
        (json!({"source": {"type": "dataset", "path": "no/such/dataset"}, "format": "csv"}), 422, "VALIDATION_ERROR", "/source/path"),
        (json!({"source": {"type": "inline", "rows": []}, "format": "csv", "max_rows": 0}), 422, "VALIDATION_ERROR", "/max_rows"),
        (json!({"source": {"type": "inline", "rows": []}, "format": "csv", "max_rows": -1}), 422, "VALIDATION_ERROR", "/max_rows"),
        (json!({"source": {"type": "inline", "rows": []}, "format": "csv", "expires_in": 1}), 422, "VALIDATION_ERROR", "/expires_in"),
        (json!({"source": {"type": "inline", "rows": []}, "format": "csv", "compression": "rar"}), 422, "VALIDATION_ERROR", "/compression"),
        (
            json!({"source": {"type": "inline", "rows": []}, "format": "csv", "destinations": [{"type": "ftp"}]}),
            422,
            "VALIDATION_ERROR",
            "/destinations/0",
        ),
        (
            json!({"source": {"type": "inline", "schema": [{"name": "n", "type": "int64"}], "rows": [{"n": "x"}]}, "format": "csv"}),
            422,
            "VALIDATION_ERROR",
            "/source/rows/0/n",
        ),
        (json!({"source": {"type": "inline", "rows": []}}), 422, "VALIDATION_ERROR", "/"),
    ];
    for (body, status, code, pointer) in cases {
        let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&body));
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.problem_code(), code, "{body}: {}", r.text());
        let p = r.json();
        let errors = p["errors"].as_array().unwrap_or_else(|| panic!("no errors list: {p}"));
        let e = errors.iter().find(|e| e["pointer"] == pointer).unwrap_or_else(|| panic!("no error at {pointer}: {p}"));
        assert!(!e["allowed"].as_str().unwrap().is_empty(), "{p}");
        assert_eq!(p["status"], status);
    }
    // A body that is not JSON at all.
    let r =
        f.server.try_request("POST", "/v1/exports", Some(&f.token), &[("content-type", "application/json")], Some(b"{not json")).unwrap();
    assert_eq!((r.status, r.problem_code().as_str()), (400, "BAD_REQUEST"));
    // Several bad fields at once are all listed.
    let r = f.server.req(
        "POST",
        "/v1/exports",
        Some(&f.token),
        Some(&json!({"source": {"type": "inline", "rows": []}, "format": {"type": "csv", "delimiter": "ab", "null": "\""}, "max_rows": 0})),
    );
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 3, "{}", r.text());
    // Too large, wrong media type, bad query, unknown route.
    let big = vec![b' '; 7 * 1024 * 1024];
    let r = f.server.try_request("POST", "/v1/exports", Some(&f.token), &[("content-type", "application/json")], Some(&big)).unwrap();
    assert_eq!((r.status, r.problem_code().as_str()), (413, "PAYLOAD_TOO_LARGE"));
    let r = f.server.try_request("POST", "/v1/exports", Some(&f.token), &[("content-type", "text/csv")], Some(b"a,b")).unwrap();
    assert_eq!((r.status, r.problem_code().as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    let r = f.server.req("GET", "/v1/exports?status=done&limit=500&colour=red", Some(&f.token), None);
    assert_eq!((r.status, r.problem_code().as_str()), (400, "INVALID_PARAMETER"));
    let r = f.server.req("GET", "/v1/exports?status=done&limit=500", Some(&f.token), None);
    let pointers: Vec<String> = r.json()["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap().to_string()).collect();
    assert_eq!(pointers, ["/query/status", "/query/limit"]);
    assert_eq!(f.server.req("GET", "/v1/nothing", Some(&f.token), None).problem_code(), "NOT_FOUND");
    assert_eq!(f.server.req("PUT", "/v1/exports", Some(&f.token), None).problem_code(), "METHOD_NOT_ALLOWED");
    assert_eq!(f.server.req("GET", "/v1/exports/exp_nope", Some(&f.token), None).problem_code(), "EXPORT_NOT_FOUND");
}

#[test]
fn signed_urls_refuse_tampering_and_expire() {
    let f = fixture();
    let e = f.server.export(&f.token, &json!({"source": {"type": "inline", "rows": [{"a": 1}]}, "format": "csv"}));
    let id = e["id"].as_str().unwrap();
    let r = f.server.req("GET", &format!("/v1/exports/{id}/download?expires_in=1"), Some(&f.token), None);
    assert_eq!(r.status, 302);
    let url = r.header("location").unwrap().strip_prefix(&f.server.base).unwrap().to_string();
    let ok = f.server.req("GET", &url, None, None);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "a\n1\n");
    assert!(ok.header("content-disposition").unwrap().contains("attachment"));
    let tampered = [
        url.replace("/exports/", "/exports/x"),
        {
            let i = url.find("sig=").unwrap() + 4;
            let mut u = url.clone();
            let c = if &u[i..i + 1] == "0" { "1" } else { "0" };
            u.replace_range(i..i + 1, c);
            u
        },
        url.replace("expires=", "expires=9"),
        url.split("&sig=").next().unwrap().to_string(),
    ];
    for t in tampered {
        let r = f.server.req("GET", &t, None, None);
        assert_eq!((r.status, r.problem_code().as_str()), (403, "SIGNATURE_INVALID"), "{t}");
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = f.server.req("GET", &url, None, None);
    assert_eq!((r.status, r.problem_code().as_str()), (403, "URL_EXPIRED"));
}

#[test]
fn get_with_wait_seconds_answers_when_the_export_ends() {
    let f = fixture();
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&dataset_spec(&f, json!({"format": "parquet"}))));
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("location").unwrap().to_string();
    // One request, answered when the export has ended (not at once, not after the whole wait).
    let started = std::time::Instant::now();
    let r = f.server.req("GET", &format!("{location}?wait_seconds=20"), Some(&f.token), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["rows"], ROWS);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "answered after {:?}", started.elapsed());
    // An ended export is answered at once.
    let started = std::time::Instant::now();
    let again = f.server.req("GET", &format!("{location}?wait_seconds=20"), Some(&f.token), None);
    assert_eq!((again.status, again.json()["status"].clone()), (200, json!("completed")));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered after {:?}", started.elapsed());
    for bad in ["21", "-1", "soon", "1.5"] {
        let r = f.server.req("GET", &format!("{location}?wait_seconds={bad}"), Some(&f.token), None);
        assert_eq!((r.status, r.problem_code().as_str()), (400, "INVALID_PARAMETER"), "{bad}: {}", r.text());
        let p = r.json();
        assert_eq!(p["errors"][0]["pointer"], "/query/wait_seconds", "{p}");
        assert_eq!(p["errors"][0]["value"], bad, "{p}");
        assert!(p["errors"][0]["allowed"].as_str().unwrap().contains("0 to 20"), "{p}");
    }
    let r = f.server.req("GET", &format!("{location}?wait=5"), Some(&f.token), None);
    assert_eq!((r.status, r.problem_code().as_str()), (400, "INVALID_PARAMETER"), "{}", r.text());
}

#[test]
fn listing_filters_and_pages_and_delete_removes_files() {
    let f = fixture();
    let mut ids = Vec::new();
    for (i, fmt) in ["csv", "jsonl", "csv", "json", "csv"].iter().enumerate() {
        let e = f.server.export(&f.token, &json!({"source": {"type": "inline", "rows": [{"i": i}]}, "format": fmt}));
        ids.push(e["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/exports?limit=2".to_string();
    loop {
        let page = f.server.req("GET", &path, Some(&f.token), None).json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/exports?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let csv = f.server.req("GET", "/v1/exports?format=csv&status=completed", Some(&f.token), None).json();
    assert_eq!(csv["items"].as_array().unwrap().len(), 3);
    let none = f.server.req("GET", "/v1/exports?created_after=2999-01-01T00:00:00Z", Some(&f.token), None).json();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    let id = &ids[0];
    let r = f.server.req("GET", &format!("/v1/exports/{id}/download"), Some(&f.token), None);
    let url = r.header("location").unwrap().strip_prefix(&f.server.base).unwrap().to_string();
    assert_eq!(f.server.req("DELETE", &format!("/v1/exports/{id}"), Some(&f.token), None).status, 204);
    assert_eq!(f.server.req("GET", &format!("/v1/exports/{id}"), Some(&f.token), None).status, 404);
    assert_eq!(f.server.req("GET", &url, None, None).status, 404, "the file goes with the export");
    let folder = f.server.data_dir.join(format!("blobs/tenants/acme/exports/{id}"));
    assert!(!folder.exists() || std::fs::read_dir(&folder).unwrap().next().is_none());
}

#[test]
fn csv_and_jsonl_datasets_are_read_with_their_types() {
    let f = fixture();
    let root = f.server.dataset_root.join("text");
    std::fs::create_dir_all(root.join("csv")).unwrap();
    std::fs::write(root.join("csv/a.csv"), "id,name,amount,ok\n1,\"Müller, Hans\",12.5,true\n2,Ωmega,-3,false\n").unwrap();
    std::fs::write(root.join("csv/b.csv"), "id,name,amount,ok\n3,\"say \"\"hi\"\"\",0.25,true\n").unwrap();
    std::fs::write(root.join("csv/_SUCCESS"), "").unwrap();
    std::fs::write(
        root.join("rows.jsonl"),
        "{\"id\": 1, \"tags\": \"x\", \"at\": \"2026-10-01T00:00:00Z\"}\n{\"id\": 9007199254740993, \"tags\": null, \"at\": null}\n",
    )
    .unwrap();

    let spec = json!({"source": {"type": "dataset", "local_path": root.join("csv").to_str().unwrap()},
                      "filters": [{"column": "ok", "op": "=", "value": true}], "format": "jsonl"});
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["progress"]["chunks_total"], 2, "one chunk per CSV file");
    let text = String::from_utf8(f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    assert_eq!(
        text,
        "{\"id\":1,\"name\":\"Müller, Hans\",\"amount\":12.5,\"ok\":true}\n{\"id\":3,\"name\":\"say \\\"hi\\\"\",\"amount\":0.25,\"ok\":true}\n"
    );

    let spec = json!({"source": {"type": "dataset", "local_path": root.join("rows.jsonl").to_str().unwrap()}, "format": "csv"});
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    let text = String::from_utf8(f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    assert_eq!(text, "id,tags,at\n1,x,2026-10-01T00:00:00Z\n9007199254740993,,\n");
}

#[test]
fn tsv_and_yaml_exports_match_the_source() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    let e = f
        .server
        .export(&f.token, &dataset_spec(&f, json!({"format": "tsv", "time_range": {"column": "booked_at", "to": "2026-10-11T00:00:00Z"}})));
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["result"]["files"][0]["content_type"], "text/tab-separated-values; charset=utf-8");
    let path = save(&f, "out.tsv", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check_export(&[
        "--source",
        &source,
        "--export",
        &path,
        "--format",
        "tsv",
        "--where",
        "booked_at < TIMESTAMPTZ '2026-10-11 00:00:00+00'",
    ]);

    let e = f.server.export(&f.token, &dataset_spec(&f, json!({"format": "yaml", "max_rows": 4000})));
    assert_eq!(e["status"], "completed", "{e}");
    let path = save(&f, "out.yaml", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check_export(&["--source", &source, "--export", &path, "--format", "yaml", "--limit", "4000"]);

    // Strings YAML would mistype come back as the same strings; an empty export is an empty list.
    let tricky = json!({"source": {"type": "inline", "rows": [
        {"s": "no"}, {"s": "on"}, {"s": "1e3"}, {"s": "~"}, {"s": "0123"}, {"s": "2026-10-01"}, {"s": "a: b"}, {"s": " x"}, {"s": "null"}, {"s": "Müller, GmbH"}
    ]}, "format": "yaml"});
    let e = f.server.export(&f.token, &tricky);
    let text = String::from_utf8(f.server.download(&f.token, e["id"].as_str().unwrap())).unwrap();
    let path = save(&f, "tricky.yaml", text.as_bytes());
    let script = "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print('|'.join(r['s'] for r in d))";
    let out = std::process::Command::new(support::python()).args(["-c", script, &path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), "no|on|1e3|~|0123|2026-10-01|a: b| x|null|Müller, GmbH");
    let empty = json!({"source": {"type": "inline", "rows": []}, "format": "yaml"});
    let e = f.server.export(&f.token, &empty);
    assert_eq!(f.server.download(&f.token, e["id"].as_str().unwrap()), b"[]\n");
}

#[test]
fn parquet_keeps_arrow_types_and_merges_row_groups() {
    let f = fixture();
    let source = format!("{}/*.parquet", f.dataset.display());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_parquet.py");
    let check = |args: &[&str]| {
        let out = std::process::Command::new(support::python()).arg(script).args(args).output().unwrap();
        assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    let cols = "transaction_id,booked_at,value_date,amount,currency,flagged,risk_score,memo,reference";
    let spec = dataset_spec(
        &f,
        json!({"columns": cols.split(',').collect::<Vec<_>>(), "filters": [{"column": "channel", "op": "!=", "value": "cash"}],
               "format": {"type": "parquet", "row_group_size": 2048}}),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    let file = &e["result"]["files"][0];
    assert_eq!(file["content_type"], "application/vnd.apache.parquet");
    assert!(file["name"].as_str().unwrap().ends_with(".parquet"));
    let path = save(&f, "out.parquet", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check(&[&source, &path, cols, "channel != 'cash'", "--min-row-groups", "6"]);

    // Growing integers in row groups too large for a dictionary: delta-encoded, read back by
    // pyarrow and DuckDB through it; amounts at random stay plain.
    let cols = "transaction_id,booked_at,amount,reference";
    let e = f.server.export(&f.token, &dataset_spec(&f, json!({"columns": cols.split(',').collect::<Vec<_>>(), "format": "parquet"})));
    assert_eq!(e["status"], "completed", "{e}");
    let path = save(&f, "delta.parquet", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check(&[&source, &path, cols, "true", "--delta", "booked_at,reference"]);

    // Text read as string views (Parquet into Parquet): filters on it, short and long values,
    // stored as strings with their statistics.
    let cols = "transaction_id,account_id,counterparty_name,currency,country,memo";
    let spec = dataset_spec(
        &f,
        json!({"columns": cols.split(',').collect::<Vec<_>>(),
               "filters": [{"column": "counterparty_name", "op": "contains", "value": "o"},
                           {"column": "currency", "op": "in", "value": ["EUR", "CHF"]},
                           {"column": "country", "op": ">=", "value": "CZ"}],
               "format": "parquet"}),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    assert!(e["result"]["rows"].as_u64().unwrap() > 0, "{e}");
    let path = save(&f, "text.parquet", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check(&[&source, &path, cols, "counterparty_name LIKE '%o%' AND currency IN ('EUR', 'CHF') AND country >= 'CZ'"]);

    let spec = dataset_spec(
        &f,
        json!({"columns": ["transaction_id", "amount", "booked_at"], "sort": [{"column": "amount", "order": "desc"}, {"column": "transaction_id"}],
               "max_rows": 1000, "format": {"type": "parquet", "compression": "snappy"}}),
    );
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["result"]["rows"], 1000, "{e}");
    let path = save(&f, "top.parquet", &f.server.download(&f.token, e["id"].as_str().unwrap()));
    check(&[&source, &path, "transaction_id,amount,booked_at", "true", "amount DESC, transaction_id", "1000", "--codec", "SNAPPY"]);

    // max_rows without sort cuts the crossing part; file compression is refused for Parquet.
    let e = f.server.export(&f.token, &dataset_spec(&f, json!({"max_rows": 12345, "format": "parquet"})));
    assert_eq!(e["result"]["rows"], 12345, "{e}");
    let r =
        f.server.req("POST", "/v1/exports", Some(&f.token), Some(&dataset_spec(&f, json!({"format": "parquet", "compression": "gzip"}))));
    assert_eq!((r.status, r.json()["errors"][0]["pointer"].as_str().unwrap()), (422, "/compression"));
}
