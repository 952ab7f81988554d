//! Every destination through the whole service: `egress serve` and its HTTP API only, with the
//! secrets stored through `POST /v1/credentials` and referenced by id. SFTP on a real SFTP
//! server (asyncssh: password and key auth, the host key pinned), S3 on moto, email through a
//! real SMTP server (aiosmtpd); what arrived is read back there (the server's folder, the S3
//! API, Python's `email` package) and compared with the file the service itself serves. A
//! destination that refuses auth or shows another host key fails at once while the others
//! deliver; names come from the destination's filename template, and a file is never left
//! under a temporary name.

use crate::delivery;
use crate::moto;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use delivery::{PyServer, fingerprint_of, free_port, server_script, sha256_file, tree};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::Server;

const SFTP_USER: &str = "partner";
const SFTP_PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "hunter2-not-the-password";
const FROM: &str = "exports@egress.test";
const BUCKET: &str = "partner-inbox";
const TEMPLATE: &str = "{tenant}-{date}-{name}";

/// A real SFTP server over a folder, with its host key and a client key that it accepts.
struct Sftp {
    dir: tempfile::TempDir,
    server: PyServer,
}

impl Sftp {
    fn start() -> Sftp {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let key = dir.path().join("client_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "egress-e2e", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen is needed (openssh-client)");
        assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--root".into(),
            path("root"),
            "--host-key".into(),
            path("host_key"),
            "--user".into(),
            SFTP_USER.into(),
            "--password".into(),
            SFTP_PASSWORD.into(),
            "--authorized-key".into(),
            path("client_key.pub"),
            "--log".into(),
            path("events.jsonl"),
        ];
        let server = PyServer::start(&support::python(), &server_script("sftp_server.py"), port, &args);
        Sftp { dir, server }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The server's host key fingerprint as OpenSSH prints it (`SHA256:...`).
    fn fingerprint(&self) -> String {
        fingerprint_of(&self.dir.path().join("host_key"))
    }

    /// A fingerprint of another key (the client's): a pin the server does not match.
    fn other_fingerprint(&self) -> String {
        fingerprint_of(&self.dir.path().join("client_key.pub"))
    }

    fn private_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("client_key")).unwrap()
    }

    fn destination(&self, directory: &str, credential: &str, host_key: &str) -> Value {
        json!({"type": "sftp", "host": "127.0.0.1", "port": self.server.port, "username": SFTP_USER,
               "directory": directory, "host_key": host_key, "credential": credential,
               "filename": TEMPLATE, "retry": {"max_attempts": 4, "initial_delay_secs": 0.5, "max_delay_secs": 1.0}})
    }

    /// What the server logged: opens, closes, renames and auth attempts.
    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// A real SMTP server storing a Maildir.
fn start_smtp(maildir: &Path) -> PyServer {
    let port = free_port();
    let args: Vec<String> = vec!["--port".into(), port.to_string(), "--maildir".into(), maildir.display().to_string()];
    PyServer::start(&support::python(), &server_script("smtp_server.py"), port, &args)
}

/// Every message of the Maildir, as Python's `email` package reads it.
fn read_mail(maildir: &Path) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/read_email.py");
    let out = Command::new(support::python()).arg(script).arg("--maildir").arg(maildir).output().expect("run read_email.py");
    assert!(out.status.success(), "read_email.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// The service with the SMTP sender and S3 (moto, path style) configured for its process.
fn start_service(dir: &Path, smtp_port: Option<u16>, moto: Option<&moto::Moto>) -> Server {
    let datasets = dir.join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let smtp_port = smtp_port.map(|p| p.to_string());
    let mut env: Vec<(&str, &str)> = vec![("AWS_EC2_METADATA_DISABLED", "true")];
    if let Some(p) = &smtp_port {
        env.extend([("EGRESS_SMTP_HOST", "127.0.0.1"), ("EGRESS_SMTP_PORT", p.as_str()), ("EGRESS_SMTP_SECURITY", "none")]);
        env.push(("EGRESS_EMAIL_FROM", FROM));
    }
    if let Some(m) = moto {
        env.extend([("AWS_ENDPOINT_URL", m.endpoint.as_str()), ("AWS_REGION", "us-east-1"), ("EGRESS_S3_FORCE_PATH_STYLE", "1")]);
    }
    Server::start_with_env(&dir.join("data"), &datasets, &format!("127.0.0.1:{}", free_port()), &[], &env)
}

/// Store a credential through the API; returns its id.
fn credential(server: &Server, token: &str, name: &str, secret: Value) -> String {
    let r = server.req("POST", "/v1/credentials", Some(token), Some(&json!({"name": name, "secret": secret})));
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert!(body.get("secret").is_none(), "a credential is never returned: {body}");
    body["id"].as_str().unwrap().to_string()
}

/// An inline source of `n` rows and its CSV export spec with `destinations`.
fn spec(n: usize, destinations: Value) -> Value {
    let rows: Vec<Value> = (0..n).map(|i| json!({"id": i, "iban": format!("DE{:020}", i * 7919), "amount": i as f64 * 1.25})).collect();
    json!({"name": "daily-report", "source": {"type": "inline", "rows": rows}, "format": "csv", "destinations": destinations})
}

/// The export's one file as the service serves it (download route), with its SHA-256 checked
/// against the export's record.
fn downloaded(server: &Server, token: &str, export: &Value) -> (String, Vec<u8>) {
    let files = export["result"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{export}");
    let name = files[0]["name"].as_str().unwrap().to_string();
    let bytes = server.download(token, export["id"].as_str().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&bytes)), files[0]["sha256"].as_str().unwrap(), "the downloaded file is the recorded one");
    (name, bytes)
}

/// The name the template gives `name` for tenant acme: `acme-<YYYY-MM-DD>-<name>`, the date
/// being today's (UTC) when the export ran.
fn assert_templated(remote: &str, name: &str) {
    let date = remote.strip_prefix("acme-").and_then(|r| r.strip_suffix(&format!("-{name}"))).unwrap_or_else(|| {
        panic!("{remote:?} is not acme-<date>-{name}");
    });
    assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "{remote:?}: `{date}` is not a date");
}

/// The delivery receipts, by destination index.
fn deliveries(export: &Value) -> Vec<Value> {
    export["result"]["deliveries"].as_array().unwrap_or_else(|| panic!("no deliveries: {export}")).clone()
}

/// (action, outcome) of the export's delivery events in the audit trail.
fn delivery_audit(server: &Server, token: &str, id: &str) -> Vec<(String, String)> {
    let audit = server.req("GET", &format!("/v1/audit?target={id}&limit=100"), Some(token), None);
    assert_eq!(audit.status, 200, "{}", audit.text());
    audit.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("export.delivery") || e["action"] == "export.partial")
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect()
}

/// The SFTP receipt of a file delivered into `directory` of `sftp`: the file on the server is
/// the downloaded one, the receipt names the host key, the upload went through a temporary
/// name and a rename, and nothing else is in the folder.
fn assert_sftp_delivered(sftp: &Sftp, receipt: &Value, directory: &str, name: &str, bytes: &[u8]) -> String {
    assert_eq!((receipt["status"].as_str(), receipt["attempts"].as_u64()), (Some("delivered"), Some(1)), "{receipt}");
    assert_eq!(receipt["type"], "sftp");
    assert_eq!(receipt["location"], json!(format!("sftp://127.0.0.1:{}/{directory}/", sftp.server.port)), "{receipt}");
    let details = &receipt["evidence"]["details"];
    assert_eq!(details["host_key_fingerprint"], json!(sftp.fingerprint()), "{receipt}");
    assert_eq!(details["host_key_algorithm"], "ssh-ed25519");
    let remote = receipt["files"][0]["remote_name"].as_str().unwrap().to_string();
    assert_templated(&remote, name);
    let on_server = sftp.root().join(directory).join(&remote);
    assert_eq!(std::fs::read(&on_server).unwrap(), bytes, "the file on the SFTP server is the exported one");
    let remote_path = format!("/{directory}/{remote}");
    assert_eq!(receipt["evidence"]["files"][0]["remote_path"], json!(remote_path), "{receipt}");
    assert_eq!(receipt["evidence"]["files"][0]["sha256"], json!(sha256_file(&on_server)));
    // Never written under its final name: one rename of a complete temporary file onto it.
    let events = sftp.events();
    assert!(!events.iter().any(|e| e["op"] == "open" && e["path"] == json!(remote_path)), "{remote_path} was opened: {events:?}");
    let renames: Vec<&Value> = events.iter().filter(|e| e["op"] == "posix_rename" && e["new"] == json!(remote_path)).collect();
    assert_eq!(renames.len(), 1, "{events:?}");
    let closed = events.iter().find(|e| e["op"] == "close" && e["path"] == renames[0]["old"]).expect("temporary file closed");
    assert_eq!(closed["written"], json!(bytes.len()));
    remote
}

#[test]
fn sftp_with_stored_password_and_key_and_a_pinned_host_key() {
    let sftp = Sftp::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_service(dir.path(), None, None);
    let token = server.key("acme", "exports:admin");
    let password = credential(&server, &token, "partner-sftp", json!({"type": "password", "password": SFTP_PASSWORD}));
    let key = credential(&server, &token, "partner-key", json!({"type": "ssh_private_key", "private_key": sftp.private_key()}));

    let export = server.export(
        &token,
        &spec(
            2000,
            json!([
                sftp.destination("outbox/daily", &password, &sftp.fingerprint()),
                sftp.destination("keyed", &key, &sftp.fingerprint()),
                sftp.destination("pinned", &password, &sftp.other_fingerprint()),
            ]),
        ),
    );
    assert_eq!(export["status"], "partial", "{export}");
    let (name, bytes) = downloaded(&server, &token, &export);
    let receipts = deliveries(&export);
    assert_eq!(receipts.len(), 3, "{export}");

    let first = assert_sftp_delivered(&sftp, &receipts[0], "outbox/daily", &name, &bytes);
    let second = assert_sftp_delivered(&sftp, &receipts[1], "keyed", &name, &bytes);
    let auths: Vec<String> =
        sftp.events().iter().filter(|e| e["op"] == "auth" && e["ok"] == true).map(|e| e["method"].as_str().unwrap().to_string()).collect();
    assert!(auths.contains(&"password".to_string()) && auths.contains(&"publickey".to_string()), "{auths:?}");

    // Another host key than the pinned one: refused at once, before any credential is offered.
    let refused = &receipts[2];
    assert_eq!((refused["status"].as_str(), refused["attempts"].as_u64()), (Some("failed"), Some(1)), "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("host key mismatch"), "{error}");
    assert!(error.contains(&sftp.other_fingerprint()) && error.contains(&sftp.fingerprint()), "both fingerprints named: {error}");
    let passwords = sftp.events().iter().filter(|e| e["op"] == "auth" && e["method"] == "password").count();
    assert_eq!(passwords, 1, "one password login, none to the server showing another host key: {:?}", sftp.events());

    // Only the final files: no temporary file left, nothing in the refused destination's folder.
    assert_eq!(tree(&sftp.root()), [format!("keyed/{second}"), format!("outbox/daily/{first}")]);
    let text = export.to_string();
    assert!(!text.contains(SFTP_PASSWORD) && !text.contains("PRIVATE KEY"), "no secret in the export");
    let audit = delivery_audit(&server, &token, export["id"].as_str().unwrap());
    assert_eq!(audit.iter().filter(|a| *a == &("export.delivery.sftp".to_string(), "success".to_string())).count(), 2, "{audit:?}");
    assert!(audit.contains(&("export.delivery.sftp".into(), "failed".into())), "{audit:?}");
}

#[test]
fn sftp_s3_and_email_in_one_export_each_with_its_receipt() {
    let sftp = Sftp::start();
    let moto = moto::Moto::start();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&moto.config()).force_path_style(true).build());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(s3.create_bucket().bucket(BUCKET).send()).expect("create bucket");
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = start_smtp(&maildir);
    let server = start_service(dir.path(), Some(smtp.port), Some(&moto));
    let token = server.key("acme", "exports:admin");
    let password = credential(&server, &token, "partner-sftp", json!({"type": "password", "password": SFTP_PASSWORD}));
    let aws = credential(
        &server,
        &token,
        "partner-bucket",
        json!({"type": "aws_access_key", "access_key_id": "AKIAEGRESSTEST000001", "secret_access_key": "moto-accepts-any-secret-key"}),
    );

    let destinations = json!([
        sftp.destination("inbound", &password, &sftp.fingerprint()),
        {"type": "s3", "bucket": BUCKET, "prefix": "exports/daily", "credential": aws, "filename": TEMPLATE},
        {"type": "email", "to": ["ops@partner.example"], "subject": "Daily report", "body": "Attached.", "filename": TEMPLATE},
    ]);
    let export = server.export(&token, &spec(3000, destinations));
    assert_eq!(export["status"], "completed", "{export}");
    let id = export["id"].as_str().unwrap().to_string();
    let (name, bytes) = downloaded(&server, &token, &export);
    let receipts = deliveries(&export);
    assert_eq!(receipts.iter().map(|r| r["type"].as_str().unwrap()).collect::<Vec<_>>(), ["sftp", "s3", "email"], "{export}");
    for r in &receipts {
        assert_eq!((r["status"].as_str(), r["attempts"].as_u64()), (Some("delivered"), Some(1)), "{r}");
        assert_eq!(r["files"][0]["sha256"], export["result"]["files"][0]["sha256"], "{r}");
    }

    let remote = assert_sftp_delivered(&sftp, &receipts[0], "inbound", &name, &bytes);
    assert_eq!(tree(&sftp.root()), [format!("inbound/{remote}")]);

    // S3: the object read back with the SDK is the file; the receipt carries its ETag.
    let s3_receipt = &receipts[1];
    let s3_name = s3_receipt["files"][0]["remote_name"].as_str().unwrap();
    assert_templated(s3_name, &name);
    assert_eq!(s3_receipt["location"], json!(format!("s3://{BUCKET}/exports/daily/")));
    let key = format!("exports/daily/{s3_name}");
    let object = rt.block_on(s3.get_object().bucket(BUCKET).key(&key).send()).expect("the object is in the bucket");
    let etag = object.e_tag().expect("ETag").to_string();
    let body = rt.block_on(object.body.collect()).unwrap().into_bytes();
    assert_eq!(body.as_ref(), bytes.as_slice(), "the object is the exported file");
    assert_eq!(s3_receipt["evidence"]["files"][0]["etag"], json!(etag), "{s3_receipt}");
    let listed = rt.block_on(s3.list_objects_v2().bucket(BUCKET).send()).unwrap();
    assert_eq!(listed.contents().len(), 1, "one object, nothing left over from the upload");

    // Email: one message, its attachment decoded is the file.
    let mail = read_mail(&maildir);
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    assert_eq!(m["headers"]["subject"], "Daily report");
    assert_eq!(m["headers"]["from"], FROM);
    assert_eq!(m["headers"]["x-rcptto"], "ops@partner.example");
    let atts = m["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{m}");
    assert_templated(atts[0]["filename"].as_str().unwrap(), &name);
    assert_eq!(atts[0]["filename"], receipts[2]["files"][0]["remote_name"]);
    assert_eq!(atts[0]["size"], json!(bytes.len()));
    assert_eq!(atts[0]["sha256"], json!(hex::encode(Sha256::digest(&bytes))), "the attachment is the exported file");
    let message_id = receipts[2]["evidence"]["details"]["message_id"].as_str().unwrap();
    assert!(m["headers"]["message-id"].as_str().unwrap().contains(message_id.trim_matches(['<', '>'])), "{m} / {message_id}");

    // Lineage shows the three receipts; the audit trail has a delivery event for each type.
    let lineage = server.req("GET", &format!("/v1/exports/{id}/lineage"), Some(&token), None);
    assert_eq!(lineage.status, 200, "{}", lineage.text());
    assert_eq!(lineage.json()["deliveries"], json!(receipts), "lineage shows the receipts");
    let audit = delivery_audit(&server, &token, &id);
    for kind in ["sftp", "s3", "email"] {
        assert!(audit.contains(&(format!("export.delivery.{kind}"), "success".into())), "{kind}: {audit:?}");
    }
    assert!(!export.to_string().contains("moto-accepts-any-secret-key") && !export.to_string().contains(SFTP_PASSWORD));
}

#[test]
fn refused_sftp_auth_fails_at_once_while_the_others_deliver() {
    let sftp = Sftp::start();
    let moto = moto::Moto::start();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&moto.config()).force_path_style(true).build());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(s3.create_bucket().bucket(BUCKET).send()).expect("create bucket");
    let dir = tempfile::tempdir().unwrap();
    let server = start_service(dir.path(), None, Some(&moto));
    let token = server.key("acme", "exports:admin");
    let wrong = credential(&server, &token, "stale-sftp", json!({"type": "password", "password": WRONG_PASSWORD}));
    let aws = credential(
        &server,
        &token,
        "partner-bucket",
        json!({"type": "aws_access_key", "access_key_id": "AKIAEGRESSTEST000001", "secret_access_key": "moto-accepts-any-secret-key"}),
    );
    let destinations = json!([
        sftp.destination("inbound", &wrong, &sftp.fingerprint()),
        {"type": "s3", "bucket": BUCKET, "credential": aws, "filename": TEMPLATE},
        {"type": "download"},
    ]);

    let started = Instant::now();
    let export = server.export(&token, &spec(500, destinations));
    assert!(started.elapsed() < Duration::from_secs(60), "no retries of a refused login: {:?}", started.elapsed());
    assert_eq!(export["status"], "partial", "{export}");
    let receipts = deliveries(&export);
    let refused = &receipts[0];
    assert_eq!((refused["status"].as_str(), refused["attempts"].as_u64()), (Some("failed"), Some(1)), "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("refused password authentication"), "{refused}");
    let logins: Vec<Value> = sftp.events().into_iter().filter(|e| e["op"] == "auth").collect();
    assert_eq!(logins.len(), 1, "one login attempt, no retries: {logins:?}");
    assert_eq!(logins[0]["ok"], false);
    assert!(tree(&sftp.root()).is_empty(), "nothing written");

    assert_eq!((receipts[1]["status"].as_str(), receipts[1]["attempts"].as_u64()), (Some("delivered"), Some(1)), "{}", receipts[1]);
    assert_eq!((receipts[2]["status"].as_str(), receipts[2]["type"].as_str()), (Some("delivered"), Some("download")));
    let (name, bytes) = downloaded(&server, &token, &export);
    let s3_name = receipts[1]["files"][0]["remote_name"].as_str().unwrap();
    assert_templated(s3_name, &name);
    let object = rt.block_on(s3.get_object().bucket(BUCKET).key(s3_name).send()).expect("the object is in the bucket");
    assert_eq!(rt.block_on(object.body.collect()).unwrap().into_bytes().as_ref(), bytes.as_slice());

    let text = export.to_string();
    assert!(!text.contains(WRONG_PASSWORD), "the password is never shown: {text}");
    let audit = delivery_audit(&server, &token, export["id"].as_str().unwrap());
    assert!(audit.contains(&("export.delivery.sftp".into(), "failed".into())), "{audit:?}");
    assert!(audit.contains(&("export.delivery.s3".into(), "success".into())), "{audit:?}");
    assert!(audit.contains(&("export.partial".into(), "partial".into())), "{audit:?}");
}
