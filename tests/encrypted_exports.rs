//! Encrypted exports through the whole service: recipient keys registered over the API (OpenPGP
//! armored and binary, age), exports encrypted to them, a password-protected zip of several
//! files, and the manifest beside the files. What egress delivers is opened with the tools a
//! recipient uses (`gpg --decrypt`, `age -d`, `7z x -p`) and checked against the manifest; the
//! encoded files in clear text do not outlive the export's run. A missing tool fails the test.

use crate::support;
use crate::tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};
use support::Server;
use tools::{Gpg, ok, run, sha256_hex};

struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    token: String,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let datasets = dir.path().join("datasets");
        std::fs::create_dir_all(&datasets).unwrap();
        let server = Server::start(&dir.path().join("data"), &datasets, &[]);
        let token = server.key("acme", "exports:admin");
        Fixture { dir, server, token }
    }

    fn post(&self, path: &str, body: &Value) -> support::Resp {
        self.server.req("POST", path, Some(&self.token), Some(body))
    }

    fn register(&self, body: Value) -> Value {
        let r = self.post("/v1/recipient-keys", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// Every file of the export, downloaded into a folder of its own: (name, path).
    fn download_all(&self, export: &Value) -> Vec<(String, PathBuf)> {
        let id = export["id"].as_str().unwrap();
        let out = self.dir.path().join(format!("download-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        export["result"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let name = f["name"].as_str().unwrap().to_string();
                let bytes = self.server.download_file(&self.token, id, &name);
                assert_eq!(sha256_hex(&bytes), f["sha256"].as_str().unwrap(), "{name} as recorded");
                let path = out.join(&name);
                std::fs::write(&path, bytes).unwrap();
                (name, path)
            })
            .collect()
    }

    /// Names of the files the data folder keeps for an export.
    fn stored_files(&self, export_id: &str) -> Vec<String> {
        fn walk(dir: &Path, needle: &str, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, needle, out);
                } else if p.to_string_lossy().contains(needle) {
                    out.push(p.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("data"), &format!("/exports/{export_id}/"), &mut out);
        out.sort();
        out
    }
}

fn rows(n: u64) -> Vec<Value> {
    (0..n).map(|i| json!({"id": i, "account": format!("AT{:018}", i * 7919), "amount": format!("{}.{:02}", i * 13, i % 100)})).collect()
}

fn manifest_of(files: &[(String, PathBuf)]) -> Value {
    let (_, path) = files.iter().find(|(n, _)| n == "manifest.json").expect("manifest.json delivered");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn recipient_keys_are_checked_and_exports_decrypt_with_gpg() {
    let fx = Fixture::start();
    let gpg = Gpg::new();
    let fpr = gpg.make_rsa_key("FIU Reports <reports@fiu.example>", "2y");
    let armored = String::from_utf8(gpg.export(&fpr, true)).unwrap();

    let key = fx.register(json!({"name": "fiu", "type": "openpgp", "key": armored, "description": "goAML submissions"}));
    let key_id = key["id"].as_str().unwrap().to_string();
    assert!(key_id.starts_with("rk_"), "{key}");
    assert_eq!(key["details"]["fingerprint"], fpr.as_str(), "{key}");
    assert_eq!(key["details"]["user_ids"], json!(["FIU Reports <reports@fiu.example>"]), "{key}");
    assert!(key.get("key_base64").is_none() && !key.to_string().contains("BEGIN PGP"), "the key's bytes are not echoed: {key}");
    // The same key in binary form is accepted too; the name is unique (409).
    let binary = base64::engine::general_purpose::STANDARD.encode(gpg.export(&fpr, false));
    let bin_key = fx.register(json!({"name": "fiu-binary", "type": "openpgp", "key_base64": binary}));
    assert_eq!(bin_key["details"]["fingerprint"], fpr.as_str());
    let dup = fx.post("/v1/recipient-keys", &json!({"name": "fiu", "type": "openpgp", "key": armored}));
    assert_eq!(dup.status, 409, "{}", dup.text());

    // Bad keys are named by field, and the bytes given are not quoted back.
    for (body, pointer) in [
        (json!({"name": "junk", "type": "openpgp", "key": "not a key at all"}), "/key"),
        (
            json!({"name": "secret", "type": "age", "key": "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"}),
            "/key",
        ),
        (json!({"name": "kind", "type": "pgp", "key": armored}), "/type"),
        (json!({"name": "none", "type": "age"}), "/key"),
        (json!({"name": "both", "type": "openpgp", "key": armored, "key_base64": binary}), "/key_base64"),
    ] {
        let r = fx.post("/v1/recipient-keys", &body);
        assert_eq!((r.status, r.problem_code().as_str()), (422, "VALIDATION_ERROR"), "{}", r.text());
        let p = r.json();
        assert!(p["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == pointer), "{pointer}: {p}");
        assert!(!r.text().contains("AGE-SECRET-KEY"), "a secret key is never echoed: {}", r.text());
    }
    let listed = fx.server.req("GET", "/v1/recipient-keys", Some(&fx.token), None).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    let got = fx.server.req("GET", &format!("/v1/recipient-keys/{key_id}"), Some(&fx.token), None);
    assert_eq!((got.status, got.json()["name"].clone()), (200, json!("fiu")));

    // An export encrypted to the key, with its manifest.
    let spec = json!({"name": "Transactions 2026-10", "source": {"type": "inline", "rows": rows(1000)}, "format": "csv",
        "encryption": {"type": "openpgp", "recipients": [key_id]}, "manifest": true});
    let export = fx.server.export(&fx.token, &spec);
    assert_eq!(export["status"], "completed", "{export}");
    let names: Vec<&str> = export["result"]["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["transactions-2026-10.csv.gpg", "manifest.json"]);
    let files = fx.download_all(&export);
    let clear = gpg.decrypt(&files[0].1);
    let text = String::from_utf8(clear.clone()).unwrap();
    assert_eq!(text.lines().count(), 1001, "header and 1000 rows");
    assert!(text.starts_with("account,amount,id\nAT000000000000000000,0.00,0\n"), "{}", &text[..80]);
    let manifest = manifest_of(&files);
    let m0 = &manifest["files"][0];
    assert_eq!(m0["name"], "transactions-2026-10.csv.gpg");
    assert_eq!(m0["source_sha256"].as_str().unwrap(), sha256_hex(&clear), "the manifest names the clear file's hash");
    assert_eq!(m0["sha256"].as_str().unwrap(), sha256_hex(&std::fs::read(&files[0].1).unwrap()));
    assert_eq!(m0["rows"], 1000);
    assert_eq!(export["result"]["files"][0]["source_sha256"], m0["source_sha256"]);
    assert_eq!(manifest["packaging"]["encryption"], "openpgp", "{manifest}");
    assert_eq!(manifest["source_lineage"]["source"]["rows"], 1000, "an inline source by its row count: {manifest}");
    let lineage = fx.server.req("GET", &format!("/v1/exports/{}/lineage", export["id"].as_str().unwrap()), Some(&fx.token), None).json();
    assert_eq!(manifest["spec_sha256"], lineage["spec_hash"], "one spec hash");
    // Only the delivered files are kept: the clear CSV is gone.
    assert_eq!(fx.stored_files(export["id"].as_str().unwrap()), ["manifest.json", "transactions-2026-10.csv.gpg"]);

    // Create-time checks: an unknown key, a key of the other kind, zip_aes without zip.
    let age_key =
        fx.register(json!({"name": "analyst", "type": "age", "key": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}));
    for (encryption, compression, pointer) in [
        (json!({"type": "openpgp", "recipients": ["rk_0000"]}), "none", "/encryption/recipients/0"),
        (json!({"type": "openpgp", "recipients": [age_key["id"]]}), "none", "/encryption/recipients/0"),
        (json!({"type": "zip_aes", "password_credential": "cred_nothere"}), "none", "/encryption/type"),
        (json!({"type": "zip_aes", "password_credential": "cred_nothere"}), "zip", "/encryption/password_credential"),
    ] {
        let r = fx.post(
            "/v1/exports",
            &json!({"source": {"type": "inline", "rows": rows(1)}, "format": "csv", "compression": compression, "encryption": encryption}),
        );
        assert_eq!(r.status, 422, "{}", r.text());
        let p = r.json();
        assert!(p["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == pointer), "{pointer}: {p}");
    }

    // A key that a schedule or a template names cannot be deleted: each of their runs would fail.
    let encrypted =
        json!({"source": {"type": "inline", "rows": rows(1)}, "format": "csv", "encryption": {"type": "openpgp", "recipients": [key_id]}});
    let schedule =
        fx.post("/v1/schedules", &json!({"name": "monthly", "cron": "0 6 2 * *", "timezone": "Europe/Vienna", "export": encrypted}));
    assert_eq!(schedule.status, 201, "{}", schedule.text());
    let template = fx.post("/v1/templates", &json!({"name": "fiu-monthly", "spec": encrypted}));
    assert_eq!(template.status, 201, "{}", template.text());
    let (schedule, template) = (schedule.json(), template.json());
    let del = fx.server.req("DELETE", &format!("/v1/recipient-keys/{key_id}"), Some(&fx.token), None);
    assert_eq!((del.status, del.problem_code().as_str()), (409, "CONFLICT"), "{}", del.text());
    let detail = del.json()["detail"].as_str().unwrap().to_string();
    for id in [&schedule["id"], &template["id"]] {
        assert!(detail.contains(id.as_str().unwrap()), "{detail}");
    }
    for path in
        [format!("/v1/schedules/{}", schedule["id"].as_str().unwrap()), format!("/v1/templates/{}", template["id"].as_str().unwrap())]
    {
        assert_eq!(fx.server.req("DELETE", &path, Some(&fx.token), None).status, 204, "{path}");
    }
    assert_eq!(fx.server.req("DELETE", &format!("/v1/recipient-keys/{key_id}"), Some(&fx.token), None).status, 204);

    // A deleted key cannot be named any more.
    let del = fx.server.req("DELETE", &format!("/v1/recipient-keys/{}", bin_key["id"].as_str().unwrap()), Some(&fx.token), None);
    assert_eq!(del.status, 204);
    let r = fx.post(
        "/v1/exports",
        &json!({"source": {"type": "inline", "rows": rows(1)}, "format": "csv", "encryption": {"type": "openpgp", "recipients": [bin_key["id"]]}}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
}

#[test]
fn a_password_zip_of_several_files_opens_with_7z_and_an_age_export_with_age() {
    let fx = Fixture::start();
    let cred =
        fx.post("/v1/credentials", &json!({"name": "analyst-zip", "secret": {"type": "password", "password": "c0rrect horse battery"}}));
    assert_eq!(cred.status, 201, "{}", cred.text());
    let spec = json!({"name": "Q3 ledger", "source": {"type": "inline", "rows": rows(1000)}, "format": "csv", "max_rows_per_file": 400,
        "compression": "zip", "encryption": {"type": "zip_aes", "password_credential": cred.json()["id"]}, "manifest": true});
    let export = fx.server.export(&fx.token, &spec);
    assert_eq!(export["status"], "completed", "{export}");
    let files = fx.download_all(&export);
    assert_eq!(files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["q3-ledger.zip", "manifest.json"]);
    let manifest = manifest_of(&files);
    let contents = manifest["files"][0]["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{manifest}");
    assert!(
        !export.to_string().contains("c0rrect horse") && !manifest.to_string().contains("c0rrect horse"),
        "the password is never shown"
    );

    let out = fx.dir.path().join("unzipped");
    ok(Command::new("7z").args(["x", "-y", "-pc0rrect horse battery"]).arg(format!("-o{}", out.display())).arg(&files[0].1));
    let mut total = 0;
    for c in contents {
        let bytes = std::fs::read(out.join(c["name"].as_str().unwrap())).unwrap();
        assert_eq!(sha256_hex(&bytes), c["sha256"].as_str().unwrap(), "{c}");
        total += String::from_utf8(bytes).unwrap().lines().count() - 1;
    }
    assert_eq!(total, 1000);
    let wrong =
        run(Command::new("7z").args(["x", "-y", "-pwrong"]).arg(format!("-o{}", fx.dir.path().join("wrong").display())).arg(&files[0].1));
    assert!(!wrong.status.success(), "a wrong password opens nothing");
    assert_eq!(fx.stored_files(export["id"].as_str().unwrap()), ["manifest.json", "q3-ledger.zip"]);

    // age, each file gzipped first.
    let keydir = tempfile::tempdir().unwrap();
    let identity = keydir.path().join("key.txt");
    let made = ok(Command::new("age-keygen").arg("-o").arg(&identity));
    let stderr = String::from_utf8_lossy(&made.stderr).into_owned();
    let recipient =
        stderr.split_whitespace().find(|w| w.starts_with("age1")).unwrap_or_else(|| panic!("age-keygen printed no recipient: {stderr}"));
    let key = fx.register(json!({"name": "analyst", "type": "age", "key": recipient}));
    let spec = json!({"name": "daily", "source": {"type": "inline", "rows": rows(500)}, "format": "csv", "compression": "gzip",
        "encryption": {"type": "age", "recipients": [key["id"]]}});
    let export = fx.server.export(&fx.token, &spec);
    assert_eq!(export["status"], "completed", "{export}");
    let files = fx.download_all(&export);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "daily.csv.gz.age");
    let gz = ok(Command::new("age").arg("-d").arg("-i").arg(&identity).arg(&files[0].1)).stdout;
    assert_eq!(sha256_hex(&gz), export["result"]["files"][0]["source_sha256"].as_str().unwrap(), "the clear file's hash is recorded");
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut csv).unwrap();
    assert_eq!(csv.lines().count(), 501);
}
