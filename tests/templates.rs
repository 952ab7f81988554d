//! Templates over real HTTP against a running `egress serve`: create, list with filters and
//! pages, get, edit into new versions (and refuse a stale one), delete; exports made from a
//! template by name with parameters, whose files hold the rows the parameters select and which
//! record the template version they ran.

use crate::support;

use serde_json::{Value, json};
use support::Server;

struct Env {
    server: Server,
    token: String,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
    let server = Server::start(&dir.path().join("data"), &dir.path().join("datasets"), &[]);
    let token = server.key("acme", "exports:admin");
    Env { server, token, _dir: dir }
}

/// Ten inline rows, `n` from 1 to 10 and `kind` alternating `a` and `b`.
fn rows() -> Value {
    Value::Array((1..=10).map(|n| json!({"n": n, "kind": if n % 2 == 0 { "b" } else { "a" }})).collect())
}

/// A template whose rows are those with `n >= min_n`, in the format `fmt` (default csv).
fn threshold_template(name: &str) -> Value {
    json!({
        "name": name,
        "description": "rows from a threshold on",
        "parameters": [
            {"name": "min_n", "type": "integer", "min": 0, "description": "the smallest n"},
            {"name": "fmt", "type": "string", "enum": ["csv", "jsonl"], "default": "csv"}
        ],
        "spec": {
            "name": "from {{min_n}}",
            "source": {"type": "inline", "rows": rows(), "schema": [{"name": "n", "type": "int64"}, {"name": "kind", "type": "string"}]},
            "filters": [{"column": "n", "op": ">=", "value": "{{min_n}}"}],
            "sort": [{"column": "n"}],
            "format": "{{fmt}}"
        }
    })
}

fn post(e: &Env, path: &str, body: &Value) -> support::Resp {
    e.server.req("POST", path, Some(&e.token), Some(body))
}

fn get(e: &Env, path: &str) -> Value {
    let r = e.server.req("GET", path, Some(&e.token), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The pointers of a 422's errors.
fn pointers(r: &support::Resp) -> Vec<String> {
    assert_eq!(r.status, 422, "{}", r.text());
    r.json()["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap().to_string()).collect()
}

#[test]
fn templates_are_created_listed_paged_versioned_and_deleted() {
    let e = env();
    // GIVEN three templates: two CSV over inline rows, one JSON Lines.
    let r = post(&e, "/v1/templates", &threshold_template("monthly-large"));
    assert_eq!(r.status, 201, "{}", r.text());
    let first = r.json();
    let id = first["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("tpl_"), "{first}");
    assert_eq!(r.header("location"), Some(format!("/v1/templates/{id}").as_str()));
    assert_eq!((first["version"].as_u64(), first["format"].as_str(), first["source"].as_str()), (Some(1), Some("csv"), Some("inline")));
    assert_eq!(post(&e, "/v1/templates", &threshold_template("weekly-small")).status, 201);
    let mut jsonl = threshold_template("monthly-lines");
    jsonl["parameters"][1]["default"] = json!("jsonl");
    assert_eq!(post(&e, "/v1/templates", &jsonl).status, 201);

    // A name is unique per tenant.
    let dup = post(&e, "/v1/templates", &threshold_template("monthly-large"));
    assert_eq!(dup.status, 409, "{}", dup.text());
    assert_eq!(dup.problem_code(), "CONFLICT");

    // WHEN listed with filters and pages.
    let names =
        |v: &Value| -> Vec<String> { v["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect() };
    assert_eq!(names(&get(&e, "/v1/templates")), ["monthly-lines", "weekly-small", "monthly-large"]);
    assert_eq!(names(&get(&e, "/v1/templates?format=csv")), ["weekly-small", "monthly-large"]);
    assert_eq!(names(&get(&e, "/v1/templates?format=jsonl")), ["monthly-lines"]);
    assert_eq!(names(&get(&e, "/v1/templates?name=MONTHLY")), ["monthly-lines", "monthly-large"]);
    assert_eq!(names(&get(&e, "/v1/templates?source=dataset")), Vec::<String>::new());
    let p1 = get(&e, "/v1/templates?name=monthly&limit=1");
    assert_eq!(names(&p1), ["monthly-lines"]);
    let cursor = p1["next_cursor"].as_str().expect("a next page");
    let p2 = get(&e, &format!("/v1/templates?name=monthly&limit=1&cursor={cursor}"));
    assert_eq!(names(&p2), ["monthly-large"]);
    if let Some(c) = p2["next_cursor"].as_str() {
        assert_eq!(names(&get(&e, &format!("/v1/templates?name=monthly&limit=1&cursor={c}"))), Vec::<String>::new());
    }
    let bad = e.server.req("GET", "/v1/templates?format=docx&source=table", Some(&e.token), None);
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = bad.json();
    assert_eq!(bad["errors"][0]["pointer"], "/query/format");
    assert_eq!(bad["errors"][1]["pointer"], "/query/source");

    // THEN get by id and by name; edit into version 2; a stale edit is refused.
    assert_eq!(get(&e, "/v1/templates/monthly-large")["id"], id.as_str());
    let mut v2 = threshold_template("monthly-large");
    v2["description"] = json!("second edition");
    v2["version"] = json!(1);
    let r = e.server.req("PUT", &format!("/v1/templates/{id}"), Some(&e.token), Some(&v2));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 2);
    let stale = e.server.req("PUT", &format!("/v1/templates/{id}"), Some(&e.token), Some(&v2));
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(stale.problem_code(), "CONFLICT");
    let renamed = e.server.req(
        "PUT",
        &format!("/v1/templates/{id}"),
        Some(&e.token),
        Some(&json!({"name": "other", "spec": v2["spec"], "parameters": v2["parameters"]})),
    );
    assert_eq!(pointers(&renamed), ["/name"]);
    let now = get(&e, &format!("/v1/templates/{id}"));
    assert_eq!((now["version"].as_u64(), now["description"].as_str()), (Some(2), Some("second edition")));
    let old = get(&e, &format!("/v1/templates/{id}?version=1"));
    assert_eq!((old["version"].as_u64(), old["latest_version"].as_u64()), (Some(1), Some(2)));
    assert_eq!(old["description"], "rows from a threshold on");
    assert_eq!(e.server.req("GET", &format!("/v1/templates/{id}?version=3"), Some(&e.token), None).status, 404);

    // Another tenant sees none of them.
    let other = e.server.key("globex", "exports:admin");
    assert_eq!(e.server.req("GET", &format!("/v1/templates/{id}"), Some(&other), None).status, 404);
    assert_eq!(e.server.req("GET", "/v1/templates", Some(&other), None).json()["items"], json!([]));
    // Creating needs exports:admin.
    let viewer = e.server.key("acme", "exports:view");
    assert_eq!(e.server.req("POST", "/v1/templates", Some(&viewer), Some(&threshold_template("x"))).problem_code(), "FORBIDDEN");

    // Delete frees the name, and the audit log has each change.
    assert_eq!(e.server.req("DELETE", &format!("/v1/templates/{id}"), Some(&e.token), None).status, 204);
    assert_eq!(e.server.req("GET", &format!("/v1/templates/{id}"), Some(&e.token), None).status, 404);
    assert_eq!(e.server.req("DELETE", &format!("/v1/templates/{id}"), Some(&e.token), None).status, 404);
    assert_eq!(post(&e, "/v1/templates", &threshold_template("monthly-large")).status, 201);
    let audit = get(&e, &format!("/v1/audit?target={id}&limit=100"));
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for a in ["template.create", "template.update", "template.delete"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[test]
fn bad_templates_are_refused_with_pointers() {
    let e = env();
    let mut t = threshold_template("broken");
    t["spec"]["filters"][0]["value"] = json!("{{min}}");
    t["spec"]["max_rows"] = json!(0);
    t["parameters"][1]["default"] = json!("docx");
    let r = post(&e, "/v1/templates", &t);
    let errs = r.json()["errors"].clone();
    assert_eq!(pointers(&r), ["/parameters/1/default", "/spec/filters/0/value"], "{errs}");
    assert_eq!(errs[1]["value"], "{{min}}");
    assert!(errs[1]["allowed"].as_str().unwrap().contains("fmt, min_n"), "{errs}");
    // A declared parameter the spec never uses.
    let mut t = threshold_template("unused");
    t["parameters"].as_array_mut().unwrap().push(json!({"name": "region", "type": "string", "default": "eu"}));
    assert_eq!(pointers(&post(&e, "/v1/templates", &t)), ["/parameters/2/name"]);
    // The spec with its defaults must be a valid export.
    let mut t = threshold_template("broken");
    t["spec"]["max_rows"] = json!(0);
    t["spec"]["format"] = json!("csv");
    t["parameters"] = json!([{"name": "min_n", "type": "integer"}]);
    assert_eq!(pointers(&post(&e, "/v1/templates", &t)), ["/spec/max_rows"]);
}

#[test]
fn exports_from_a_template_use_its_parameters_and_record_the_version() {
    let e = env();
    let id = post(&e, "/v1/templates", &threshold_template("threshold")).json()["id"].as_str().unwrap().to_string();

    // WHEN an export names the template with a parameter.
    let first = e.server.export(&e.token, &json!({"template": "threshold", "parameters": {"min_n": 7}}));
    assert_eq!(first["status"], "completed", "{first}");
    // THEN its file holds exactly the rows the parameter selects, in the default format.
    let text = String::from_utf8(e.server.download(&e.token, first["id"].as_str().unwrap())).unwrap();
    assert_eq!(text.replace("\r\n", "\n"), "n,kind\n7,a\n8,b\n9,a\n10,b\n");
    assert_eq!(first["result"]["files"][0]["name"], "from-7.csv");
    assert_eq!(first["template"], json!({"id": id, "name": "threshold", "version": 1, "parameters": {"min_n": 7, "fmt": "csv"}}));
    assert_eq!(first["spec"]["filters"][0]["value"], 7);
    let lineage = get(&e, &format!("/v1/exports/{}/lineage", first["id"].as_str().unwrap()));
    assert_eq!(lineage["template"]["version"], 1);
    assert_eq!(lineage["template"]["id"], id.as_str());

    // WHEN the template is edited (only kind `b`) and used again by id, as JSON Lines.
    let mut v2 = threshold_template("threshold");
    v2["spec"]["filters"].as_array_mut().unwrap().push(json!({"column": "kind", "op": "=", "value": "b"}));
    assert_eq!(e.server.req("PUT", &format!("/v1/templates/{id}"), Some(&e.token), Some(&v2)).status, 200);
    let second = e.server.export(&e.token, &json!({"template": id, "parameters": {"min_n": 3, "fmt": "jsonl"}}));
    assert_eq!(second["status"], "completed", "{second}");
    let text = String::from_utf8(e.server.download(&e.token, second["id"].as_str().unwrap())).unwrap();
    assert_eq!(text, "{\"n\":4,\"kind\":\"b\"}\n{\"n\":6,\"kind\":\"b\"}\n{\"n\":8,\"kind\":\"b\"}\n{\"n\":10,\"kind\":\"b\"}\n");
    assert_eq!(second["template"]["version"], 2);
    // The first export still names version 1; a pinned version 1 runs the old spec.
    assert_eq!(get(&e, &format!("/v1/exports/{}", first["id"].as_str().unwrap()))["template"]["version"], 1);
    let pinned = e.server.export(&e.token, &json!({"template": "threshold", "template_version": 1, "parameters": {"min_n": 9}}));
    let text = String::from_utf8(e.server.download(&e.token, pinned["id"].as_str().unwrap())).unwrap();
    assert_eq!(text.replace("\r\n", "\n"), "n,kind\n9,a\n10,b\n");
    assert_eq!(pinned["template"]["version"], 1);
}

#[test]
fn bad_parameters_are_refused_with_pointers() {
    let e = env();
    assert_eq!(post(&e, "/v1/templates", &threshold_template("threshold")).status, 201);
    let r = post(&e, "/v1/exports", &json!({"template": "threshold", "parameters": {"min_n": "seven", "fmt": "xml", "colour": "red"}}));
    let body = r.json();
    assert_eq!(pointers(&r), ["/parameters/colour", "/parameters/min_n", "/parameters/fmt"], "{body}");
    assert_eq!(body["errors"][1]["value"], "seven");
    assert!(body["errors"][1]["allowed"].as_str().unwrap().contains("an integer"), "{body}");
    assert!(body["errors"][2]["allowed"].as_str().unwrap().contains("\"csv\", \"jsonl\""), "{body}");
    let missing = post(&e, "/v1/exports", &json!({"template": "threshold"}));
    let body = missing.json();
    assert_eq!(pointers(&missing), ["/parameters/min_n"]);
    assert!(body["errors"][0]["allowed"].as_str().unwrap().contains("required"), "{body}");
    assert_eq!(pointers(&post(&e, "/v1/exports", &json!({"template": "threshold", "parameters": {"min_n": -1}}))), ["/parameters/min_n"]);
    assert_eq!(pointers(&post(&e, "/v1/exports", &json!({"template": "nope", "parameters": {}}))), ["/template"]);
    assert_eq!(
        pointers(&post(&e, "/v1/exports", &json!({"template": "threshold", "template_version": 5, "parameters": {"min_n": 1}}))),
        ["/template_version"]
    );
    assert_eq!(
        pointers(&post(&e, "/v1/exports", &json!({"template": "threshold", "format": "csv", "parameters": {"min_n": 1}}))),
        ["/format"]
    );
    // Using a template needs exports:generate, not admin.
    let generator = e.server.key("acme", "exports:generate");
    let r = e.server.req("POST", "/v1/exports", Some(&generator), Some(&json!({"template": "threshold", "parameters": {"min_n": 1}})));
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn a_time_range_beside_the_template_replaces_its_own() {
    let e = env();
    let rows: Vec<Value> = (1..=9).map(|d| json!({"day": d, "at": format!("2026-10-0{d}T12:00:00Z")})).collect();
    let template = json!({
        "name": "daily",
        "parameters": [],
        "spec": {
            "source": {"type": "inline", "rows": rows, "schema": [{"name": "day", "type": "int64"}, {"name": "at", "type": "timestamp"}]},
            "time_range": {"column": "at", "from": "2026-10-01T00:00:00Z"},
            "columns": ["day"],
            "format": "csv"
        }
    });
    assert_eq!(post(&e, "/v1/templates", &template).status, 201);
    // A schedule's window arrives as `time_range` beside the template reference.
    let body = json!({"template": "daily", "time_range": {"column": "at", "from": "2026-10-03T00:00:00Z", "to": "2026-10-05T00:00:00Z"}});
    let export = e.server.export(&e.token, &body);
    assert_eq!(export["status"], "completed", "{export}");
    let text = String::from_utf8(e.server.download(&e.token, export["id"].as_str().unwrap())).unwrap();
    assert_eq!(text.replace("\r\n", "\n"), "day\n3\n4\n");
    assert_eq!(export["spec"]["time_range"]["to"], "2026-10-05T00:00:00Z");
}
