//! XML over the HTTP API: generic XML read back against the source, and files mapped onto the
//! three regulatory schemas in tests/schemas (goAML 5.0.1, ISO 20022 pain.001.001.03, OECD CRS
//! v2.0 with its imports) that `xmllint --schema` accepts and whose rows match the source; a
//! wrong mapping refused at creation, and a wrong value caught by `validate: true`.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::Fixture;

const ROWS: u64 = 6_000;

fn fixture() -> Fixture {
    let f = Fixture::new(ROWS, 2000);
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/schemas")), &f.dir.path().join("datasets/schemas"));
    f
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            copy_dir(&p, &to.join(p.file_name().unwrap()));
        } else {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn mapping(name: &str) -> Value {
    let p = format!("{}/../tests/xml/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// What the XML tests ask of the fixture.
trait XmlFixture {
    fn spec(&self, extra: Value) -> Value;
    fn xsd(&self, rel: &str) -> String;
    fn export_file(&self, spec: &Value, name: &str) -> String;
}

impl XmlFixture for Fixture {
    fn spec(&self, extra: Value) -> Value {
        support::dataset_spec(self, extra)
    }

    fn xsd(&self, rel: &str) -> String {
        self.dir.path().join("datasets/schemas").join(rel).to_str().unwrap().to_string()
    }

    /// Export, expect completion, download; returns the file's path.
    fn export_file(&self, spec: &Value, name: &str) -> String {
        let e = self.server.export(&self.token, spec);
        assert_eq!(e["status"], "completed", "{e}");
        let file = &e["result"]["files"][0];
        assert_eq!(file["content_type"], "application/xml", "{e}");
        self.save(name, &self.server.download(&self.token, e["id"].as_str().unwrap()))
    }
}

/// `xmllint --noout --schema` must accept the file (a missing xmllint fails the test).
fn xmllint_accepts(xsd: &str, file: &str) {
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema", xsd, file])
        .output()
        .expect("xmllint must be installed (libxml2-utils)");
    assert!(
        out.status.success(),
        "xmllint rejects {file}:\n{}",
        String::from_utf8_lossy(&out.stderr).chars().take(3000).collect::<String>()
    );
}

fn check_xml(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/check_xml.py");
    let out = Command::new(support::python()).arg(script).args(args).output().expect("run check_xml.py");
    assert!(
        out.status.success(),
        "the XML does not match its source:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generic_xml_matches_the_source() {
    let f = fixture();
    let spec =
        f.spec(json!({"format": {"type": "xml", "root_element": "transactions", "row_element": "tx", "namespace": "urn:example:tx"}}));
    let path = f.export_file(&spec, "generic.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<transactions xmlns=\"urn:example:tx\">\n"), "{}", &text[..200]);
    check_xml(&[
        "--xml",
        &path,
        "--source",
        &f.source(),
        "--row",
        "tx",
        "--field",
        "transaction_id=transaction_id",
        "--field",
        "amount=amount",
        "--field",
        "value_date=value_date",
        "--field",
        "flagged=flagged",
        "--field",
        "reference=reference",
        "--field",
        "counterparty_name=counterparty_name",
        "--field",
        "memo=memo",
    ]);
    // A name that is not an XML name is refused, naming the option.
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&f.spec(json!({"format": {"type": "xml", "row_element": "a row"}}))));
    assert_eq!(r.status, 422);
    assert!(r.text().contains("/format/row_element"), "{}", r.text());
}

#[test]
fn goaml_report_of_flagged_transactions_validates_and_matches() {
    let f = fixture();
    let xsd = f.xsd("goaml-5.0.1/goAMLSchema.xsd");
    let spec = f.spec(json!({
        "name": "goAML CTR October",
        "filters": [{"column": "flagged", "op": "=", "value": true}],
        "format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": mapping("goaml.json"), "validate": true}
    }));
    let path = f.export_file(&spec, "goaml.xml");
    xmllint_accepts(&xsd, &path);
    check_xml(&[
        "--xml",
        &path,
        "--source",
        &f.source(),
        "--row",
        "transaction",
        "--where",
        "flagged",
        "--field",
        "transactionnumber=transaction_id",
        "--field",
        "amount_local=amount",
        "--field",
        "date_transaction=strftime(booked_at, '%Y-%m-%dT%H:%M:%S')",
        "--field",
        "transmode_code=CASE channel WHEN 'card' THEN 'A' WHEN 'sepa' THEN 'B' WHEN 'swift' THEN 'C' WHEN 'cash' THEN 'D' WHEN 'online' THEN 'E' ELSE 'F' END",
        "--field",
        "t_from/from_person/last_name=counterparty_name",
        "--field",
        "t_from/from_country=country",
        "--field",
        "t_to/to_account/account=account_id",
        "--field",
        "internal_ref_number='REF-' || reference",
        "--expect",
        "rentity_id=SELECT '1234'",
    ]);
}

#[test]
fn pain001_groups_transfers_per_debtor_account_with_totals() {
    let f = fixture();
    let xsd = f.xsd("iso20022/pain.001.001.03.xsd");
    let spec = f.spec(json!({
        "filters": [{"column": "amount", "op": ">", "value": 0}],
        "sort": [{"column": "account_id"}, {"column": "transaction_id"}],
        "format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": mapping("pain001.json"), "validate": true}
    }));
    let path = f.export_file(&spec, "pain001.xml");
    xmllint_accepts(&xsd, &path);
    check_xml(&[
        "--xml",
        &path,
        "--source",
        &f.source(),
        "--row",
        "CdtTrfTxInf",
        "--where",
        "amount > 0",
        "--field",
        "PmtId/EndToEndId=transaction_id",
        "--field",
        "Amt/InstdAmt=amount",
        "--field",
        "Amt/InstdAmt/@Ccy=currency",
        "--field",
        "Cdtr/Nm=counterparty_name",
        "--expect",
        "CstmrCdtTrfInitn/GrpHdr/NbOfTxs=SELECT count(*) FROM SOURCE WHERE amount > 0",
        "--expect",
        "CstmrCdtTrfInitn/GrpHdr/CtrlSum=SELECT CAST(sum(amount) AS VARCHAR) FROM SOURCE WHERE amount > 0",
    ]);
    check_xml(&[
        "--xml",
        &path,
        "--source",
        &f.source(),
        "--row",
        "PmtInf",
        "--where",
        "amount > 0 GROUP BY account_id",
        "--field",
        "PmtInfId=account_id",
        "--field",
        "NbOfTxs=count(*)",
        "--field",
        "CtrlSum=sum(amount)",
    ]);
    // Group levels need rows sorted by their keys.
    let unsorted = f.spec(json!({"format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": mapping("pain001.json")}}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&unsorted));
    assert_eq!(r.status, 422);
    assert!(r.text().contains("\"/sort\""), "{}", r.text());
}

#[test]
fn crs_report_with_imported_namespaces_validates() {
    let f = fixture();
    let xsd = f.xsd("crs/CrsXML_v2.0.xsd");
    let spec = f.spec(json!({
        "max_rows": 500,
        "format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": mapping("crs.json"), "validate": true}
    }));
    let path = f.export_file(&spec, "crs.xml");
    xmllint_accepts(&xsd, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("<crs:CRS_OECD") && text.contains("xmlns:cfc=\"urn:oecd:ties:commontypesfatcacrs:v2\""), "{}", &text[..600]);
    assert!(text.contains("<stf:DocTypeIndic>OECD1</stf:DocTypeIndic>"), "elements of imported schemas carry their namespace");
    assert_eq!(text.matches("<crs:AccountReport>").count(), 500);
}

#[test]
fn a_wrong_mapping_is_refused_and_a_wrong_value_fails_validation() {
    let f = fixture();
    let xsd = f.xsd("goaml-5.0.1/goAMLSchema.xsd");
    // A path the schema does not have, and a required element left out: refused at creation.
    let mut m = mapping("goaml.json");
    m["values"].as_object_mut().unwrap().remove("report/transaction/amount_local");
    m["values"]["report/transaction/amount"] = json!({"column": "amount"});
    let spec = f.spec(json!({"format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": m}}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&spec));
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.text();
    assert!(body.contains("report~1transaction~1amount_local") && body.contains("requires"), "{body}");
    assert!(body.contains("report~1transaction~1amount\""), "{body}");
    // A code the schema's enumeration does not have: the file is written, validation fails
    // the export with the line, the element path and libxml2's message.
    let mut m = mapping("goaml.json");
    m["values"]["report/transaction/transmode_code"] = json!({"column": "channel", "map": {"card": "A"}, "map_default": "ZZ"});
    let spec = f.spec(json!({"max_rows": 100, "format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": m, "validate": true}}));
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "failed", "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("does not validate")
            && msg.contains("/report/transaction/transmode_code")
            && msg.contains("ZZ")
            && msg.contains("line "),
        "{msg}"
    );
    // A DTD in a schema is refused.
    let evil = f.dir.path().join("datasets/schemas/evil.xsd");
    std::fs::write(&evil, r#"<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">&x;</xs:schema>"#).unwrap();
    let spec = f.spec(json!({"format": {"type": "xml", "xsd": {"local_path": evil.to_str().unwrap()}, "validate": true}}));
    let r = f.server.req("POST", "/v1/exports", Some(&f.token), Some(&spec));
    assert_eq!(r.status, 422);
    assert!(r.text().contains("DTD"), "{}", r.text());
}

#[test]
fn split_exports_make_numbered_files_each_valid_on_its_own() {
    let f = fixture();
    // CSV by rows: every file has its header; together they are the source.
    let e = f.server.export(&f.token, &f.spec(json!({"name": "split", "max_rows_per_file": 2500, "format": "csv"})));
    assert_eq!(e["status"], "completed", "{e}");
    let files = e["result"]["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["split-part-00001.csv", "split-part-00002.csv", "split-part-00003.csv"]);
    let rows: Vec<u64> = files.iter().map(|x| x["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows, [2500, 2500, 1000]);
    let id = e["id"].as_str().unwrap();
    let mut all = String::new();
    for (i, n) in names.iter().enumerate() {
        let text = String::from_utf8(f.server.download_file(&f.token, id, n)).unwrap();
        assert!(text.starts_with("transaction_id,"), "part {} has its header", i + 1);
        all.push_str(if i == 0 { &text } else { text.split_once('\n').unwrap().1 });
    }
    let joined = f.dir.path().join("joined.csv");
    std::fs::write(&joined, all).unwrap();
    support::check_export(&["--source", &f.source(), "--export", joined.to_str().unwrap(), "--format", "csv"]);
    // JSON by bytes: each file a whole JSON array under the limit.
    let e = f.server.export(&f.token, &f.spec(json!({"name": "by size", "max_bytes_per_file": 400_000, "format": "json"})));
    assert_eq!(e["status"], "completed", "{e}");
    let files = e["result"]["files"].as_array().unwrap();
    assert!(files.len() >= 3, "{e}");
    let mut total = 0;
    for x in files {
        assert!(x["size"].as_u64().unwrap() <= 400_000, "{x}");
        let bytes = f.server.download_file(&f.token, e["id"].as_str().unwrap(), x["name"].as_str().unwrap());
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        total += v.as_array().unwrap().len() as u64;
    }
    assert_eq!(total, ROWS);
    // Mapped XML by rows: each file a whole document that validates, with its own totals.
    let xsd = f.xsd("iso20022/pain.001.001.03.xsd");
    let spec = f.spec(json!({
        "name": "transfers",
        "filters": [{"column": "amount", "op": ">", "value": 0}],
        "sort": [{"column": "account_id"}, {"column": "transaction_id"}],
        "max_rows_per_file": 1500,
        "format": {"type": "xml", "xsd": {"local_path": xsd}, "xml_mapping": mapping("pain001.json"), "validate": true}
    }));
    let e = f.server.export(&f.token, &spec);
    assert_eq!(e["status"], "completed", "{e}");
    let files = e["result"]["files"].as_array().unwrap();
    assert!(files.len() >= 2, "{e}");
    for x in files {
        let p = f.dir.path().join(x["name"].as_str().unwrap());
        std::fs::write(&p, f.server.download_file(&f.token, e["id"].as_str().unwrap(), x["name"].as_str().unwrap())).unwrap();
        xmllint_accepts(&xsd, p.to_str().unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(&format!("<NbOfTxs>{}</NbOfTxs>", x["rows"])), "the group header counts this file's rows");
    }
    // Limits are checked.
    let r = f.server.req(
        "POST",
        "/v1/exports",
        Some(&f.token),
        Some(&f.spec(json!({"max_rows_per_file": 0, "max_bytes_per_file": 10, "format": "csv"}))),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("/max_rows_per_file") && r.text().contains("/max_bytes_per_file"), "{}", r.text());
}
