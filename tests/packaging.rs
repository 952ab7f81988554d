//! Packaging against the real tools recipients use: GnuPG reads the OpenPGP messages, `age`
//! the age files, 7-Zip the AES archives and Python's zipfile the plain ones. Keys are made by
//! `gpg` and `age-keygen` in temporary homes; every tool must be on PATH (a missing tool fails
//! the test).

use crate::support;
use crate::tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use egress::model::Compression;
use egress::package::age::parse_recipient;
use egress::package::manifest::{MANIFEST_NAME, Manifest, spec_sha256};
use egress::package::openpgp::{self, KeyParseError, RecipientKey, parse_public_key, parse_public_key_at};
use egress::package::{Encryption, InputFile, ManifestContext, PackageError, PackagingOptions, PackedFile, Secret, ZipOptions, package};
use serde_json::json;
use sha2::{Digest, Sha256};
use tools::{Gpg, ok, run, sha256_hex};

/// Sample files: a few MB of CSV, an empty file and a gzip stream (binary bytes).
fn sample_inputs(dir: &Path) -> Vec<InputFile> {
    let mut csv = String::from("id,account,amount,currency,booked_at\n");
    let mut i: u64 = 0;
    while csv.len() < 3_500_000 {
        let amount = (i * 7919) % 1_000_000;
        csv.push_str(&format!(
            "{i},DE{:020},{}.{:02},EUR,2026-10-{:02}T12:{:02}:00Z\n",
            i * 31,
            amount / 100,
            amount % 100,
            1 + i % 28,
            i % 60
        ));
        i += 1;
    }
    let rows = i;
    let mut gz = flate2_like_bytes(&csv);
    gz.truncate(200_000);
    let files: Vec<(&str, Vec<u8>, u64, &str)> = vec![
        ("transactions-2026-10.csv", csv.into_bytes(), rows, "text/csv"),
        ("empty.csv", Vec::new(), 0, "text/csv"),
        ("part-00002.csv.gz", gz, 1000, "application/gzip"),
    ];
    files
        .into_iter()
        .map(|(name, bytes, rows, ct)| {
            let path = dir.join(format!("encoded-{name}"));
            std::fs::write(&path, &bytes).unwrap();
            InputFile { name: name.into(), path, rows, size: bytes.len() as u64, sha256: sha256_hex(&bytes), content_type: ct.into() }
        })
        .collect()
}

/// Bytes that do not compress (a stand-in for an already-compressed part).
fn flate2_like_bytes(seed: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(seed.len());
    let mut h = Sha256::digest(seed.as_bytes());
    while out.len() < seed.len() {
        out.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    out
}

fn by_name(files: &[PackedFile]) -> BTreeMap<&str, &PackedFile> {
    files.iter().map(|f| (f.name.as_str(), f)).collect()
}

/// The delivered bytes are what the packer says they are.
fn assert_hashes_match(files: &[PackedFile]) {
    for f in files {
        let bytes = std::fs::read(&f.path).unwrap();
        assert_eq!(bytes.len() as u64, f.size, "{}", f.name);
        assert_eq!(sha256_hex(&bytes), f.sha256, "{}", f.name);
    }
}

fn manifest_context() -> ManifestContext {
    ManifestContext {
        export_id: "exp_0193a1b2c3d4e5f60718293a4b5c6d7e".into(),
        tenant: "acme".into(),
        spec_sha256: spec_sha256(&json!({"format": "csv", "source": {"type": "dataset", "path": "tx/"}})),
        source_lineage: json!({"dataset": "tx/", "files": [{"path": "tx/part-0.parquet", "sha256": "00"}]}),
        compression: Compression::None,
    }
}

fn read_manifest(files: &[PackedFile]) -> Manifest {
    let m = files.last().expect("files");
    assert_eq!(m.name, MANIFEST_NAME);
    serde_json::from_slice(&std::fs::read(&m.path).unwrap()).unwrap()
}

#[test]
fn openpgp_keys_are_parsed_and_checked_like_gpg_sees_them() {
    let gpg = Gpg::new();
    let rsa = gpg.make_rsa_key("RSA Recipient <rsa@fiu.example>", "2y");
    let ed = gpg.make_key("Ed Recipient <ed@bank.example>", "future-default", "default", "never", None);

    for (uid, fpr, algorithm, encryption_algorithm) in [
        ("RSA Recipient <rsa@fiu.example>", &rsa, "RSA 3072", "RSA 3072"),
        ("Ed Recipient <ed@bank.example>", &ed, "EdDSA Ed25519", "ECDH Curve25519"),
    ] {
        let listed = gpg.list(uid);
        for armor in [true, false] {
            let key = parse_public_key(&gpg.export(fpr, armor)).unwrap_or_else(|e| panic!("{uid} (armor {armor}): {e}"));
            let info = key.info();
            assert_eq!(&info.fingerprint, fpr);
            assert_eq!(info.key_id, listed.key_id);
            assert_eq!(info.user_ids, [uid]);
            assert_eq!(info.created, listed.created);
            assert_eq!(info.expires, listed.expires, "{uid}");
            assert!(info.can_encrypt);
            assert_eq!(info.algorithm, algorithm);
            assert_eq!(info.encryption_algorithm, encryption_algorithm);
            assert_eq!(Some(&info.encryption_fingerprint), listed.encryption_fingerprint.as_ref(), "{uid}");
        }
    }
    assert!(gpg.list("RSA Recipient <rsa@fiu.example>").expires.is_some(), "the RSA key was made to expire in 2 years");

    // An old-style key whose primary key encrypts itself (no subkey).
    let single = gpg.make_key("Single Key <single@bank.example>", "rsa2048", "sign,encr", "never", None);
    let key = parse_public_key(&gpg.export(&single, true)).unwrap();
    assert_eq!((key.info().encryption_fingerprint.as_str(), key.info().algorithm.as_str()), (single.as_str(), "RSA 2048"));

    // A key that expired (made in 2020, valid for a day) is refused now, accepted as of then.
    let old = gpg.make_key("Old Recipient <old@fiu.example>", "future-default", "default", "1d", Some("20200101T000000!"));
    let old_key = gpg.export(&old, true);
    match parse_public_key(&old_key).unwrap_err() {
        KeyParseError::Expired { fingerprint, expired } => {
            assert_eq!(fingerprint, old);
            assert_eq!(expired, Utc.with_ymd_and_hms(2020, 1, 2, 0, 0, 0).unwrap());
        }
        e => panic!("expected Expired, got {e:?}"),
    }
    parse_public_key_at(&old_key, Utc.with_ymd_and_hms(2020, 1, 1, 12, 0, 0).unwrap()).unwrap();

    // A signing-only key cannot encrypt.
    let signer = gpg.make_key("Signer <signer@fiu.example>", "ed25519", "sign", "never", None);
    let e = parse_public_key(&gpg.export(&signer, true)).unwrap_err();
    assert!(matches!(e, KeyParseError::CannotEncrypt { .. }), "{e:?}");

    // A revoked key (its owner imported the revocation certificate gpg made with it).
    let revoked = gpg.make_key("Revoked <revoked@fiu.example>", "future-default", "default", "never", None);
    let rev = std::fs::read_to_string(gpg.home.path().join(format!("openpgp-revocs.d/{revoked}.rev"))).unwrap();
    let rev_path = gpg.home.path().join("revocation.asc");
    std::fs::write(&rev_path, rev.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")).unwrap();
    gpg.gpg(&["--import", rev_path.to_str().unwrap()]);
    assert_eq!(parse_public_key(&gpg.export(&revoked, true)).unwrap_err(), KeyParseError::Revoked { fingerprint: revoked.clone() });

    // A secret key is refused, and the refusal quotes nothing of it.
    let secret = gpg.gpg(&["--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", &ed]).stdout;
    assert!(String::from_utf8_lossy(&secret).contains("PRIVATE KEY BLOCK"));
    let e = parse_public_key(&secret).unwrap_err();
    assert_eq!(e, KeyParseError::SecretKey);
    let secret_binary = gpg.gpg(&["--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", &ed]).stdout;
    assert_eq!(parse_public_key(&secret_binary).unwrap_err(), KeyParseError::SecretKey);

    // Two keys in one upload, garbage, a truncated key.
    let two = gpg.gpg(&["--armor", "--export", &rsa, &ed]).stdout;
    assert_eq!(parse_public_key(&two).unwrap_err(), KeyParseError::SeveralKeys { count: 2 });
    assert!(matches!(parse_public_key(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA me@host").unwrap_err(), KeyParseError::NotOpenPgp { .. }));
    let binary = gpg.export(&ed, false);
    let e = parse_public_key(&binary[..binary.len() / 3]).unwrap_err();
    assert!(matches!(e, KeyParseError::NotOpenPgp { .. } | KeyParseError::NoSelfSignature { .. }), "{e:?}");
}

#[test]
fn openpgp_files_decrypt_with_gpg_for_every_recipient() {
    let (rsa_home, ed_home, single_home) = (Gpg::new(), Gpg::new(), Gpg::new());
    let rsa = rsa_home.make_rsa_key("Bank SFTP <sftp@bank.example>", "never");
    let ed = ed_home.make_key("FIU Reports <reports@fiu.example>", "future-default", "default", "never", None);
    let single = single_home.make_key("Old Style <old-style@bank.example>", "rsa2048", "sign,encr", "never", None);
    let keys: Vec<RecipientKey> = vec![
        parse_public_key(&rsa_home.export(&rsa, false)).unwrap(),
        parse_public_key(&ed_home.export(&ed, true)).unwrap(),
        parse_public_key(&single_home.export(&single, true)).unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let inputs = sample_inputs(dir.path());

    // Binary, one message per file, and the manifest.
    let opts = PackagingOptions {
        zip: None,
        encryption: Some(Encryption::OpenPgp { keys: keys.clone(), armor: false }),
        manifest: Some(manifest_context()),
    };
    let out = package(&inputs, &opts, &dir.path().join("out")).unwrap();
    assert_eq!(out.len(), inputs.len() + 1);
    assert_hashes_match(&out);
    let packed = by_name(&out);
    for input in &inputs {
        let f = packed[format!("{}.gpg", input.name).as_str()];
        assert_eq!((f.rows, f.content_type.as_str()), (input.rows, "application/pgp-encrypted"));
        assert_eq!((f.source_sha256.as_deref(), f.source_size), (Some(input.sha256.as_str()), Some(input.size)));
        for home in [&rsa_home, &ed_home, &single_home] {
            let plain = home.decrypt(&f.path);
            assert_eq!(plain.len() as u64, input.size, "{}", f.name);
            assert_eq!(sha256_hex(&plain), input.sha256, "{}", f.name);
        }
    }
    // What GnuPG sees: one v3 session key packet per recipient, SEIPD v1 with MDC, AES-256, no
    // compression layer.
    let big = packed["transactions-2026-10.csv.gpg"];
    let listing = rsa_home.gpg(&["--verbose", "--list-packets", big.path.to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&listing.stdout), String::from_utf8_lossy(&listing.stderr));
    assert_eq!(text.matches(":pubkey enc packet: version 3").count(), 3, "{text}");
    assert!(text.contains(":encrypted data packet:") && text.contains("mdc_method: 2"), "{text}");
    assert!(text.contains("AES256"), "{text}");
    assert!(!text.contains(":compressed packet:"), "{text}");
    let encrypted = std::fs::read(&big.path).unwrap();
    assert!(encrypted.len() as u64 > big.source_size.unwrap() && (encrypted.len() as u64) < big.source_size.unwrap() + 4096);

    let manifest = read_manifest(&out);
    assert_eq!(manifest.packaging.encryption.as_deref(), Some("openpgp"));
    assert_eq!(manifest.packaging.recipients, [rsa.clone(), ed.clone(), single.clone()]);
    assert_eq!(manifest.files.len(), inputs.len());
    for (m, f) in manifest.files.iter().zip(&out) {
        assert_eq!((&m.name, m.size, &m.sha256, m.rows), (&f.name, f.size, &f.sha256, f.rows));
        assert_eq!(m.source_sha256, f.source_sha256);
    }
    assert_eq!(manifest.export_id, "exp_0193a1b2c3d4e5f60718293a4b5c6d7e");
    assert_eq!(manifest.egress_version, env!("CARGO_PKG_VERSION"));

    // Armored, the files zipped first: one `.zip.asc` that gpg decrypts to a zip Python reads.
    let opts = PackagingOptions {
        zip: Some(ZipOptions { archive_name: "transactions-2026-10.zip".into(), password: None }),
        encryption: Some(Encryption::OpenPgp { keys: keys[1..].to_vec(), armor: true }),
        manifest: None,
    };
    let out = package(&inputs, &opts, &dir.path().join("armored")).unwrap();
    assert_eq!(out.len(), 1);
    assert_hashes_match(&out);
    let f = &out[0];
    assert_eq!(f.name, "transactions-2026-10.zip.asc");
    assert_eq!(f.rows, inputs.iter().map(|i| i.rows).sum::<u64>());
    assert!(std::fs::read_to_string(&f.path).unwrap().starts_with("-----BEGIN PGP MESSAGE-----"));
    let zip = ed_home.decrypt(&f.path);
    let zip_path = dir.path().join("decrypted.zip");
    std::fs::write(&zip_path, zip).unwrap();
    assert_eq!(python_zip_listing(&zip_path), inputs.iter().map(|i| (i.name.clone(), i.sha256.clone())).collect::<Vec<_>>());
    assert_eq!(
        f.contents.iter().map(|c| c.sha256.as_str()).collect::<Vec<_>>(),
        inputs.iter().map(|i| i.sha256.as_str()).collect::<Vec<_>>()
    );
}

#[test]
fn an_openpgp_key_that_expires_before_packaging_is_refused() {
    let gpg = Gpg::new();
    let fpr = gpg.make_key("Short Lived <short@fiu.example>", "future-default", "default", "2y", None);
    let key = parse_public_key(&gpg.export(&fpr, true)).unwrap();
    let later = Utc::now() + chrono::Duration::days(3 * 365);
    let e = openpgp::encrypt_at(&b"rows"[..], Vec::new(), std::slice::from_ref(&key), false, later).unwrap_err();
    assert!(matches!(&e, openpgp::EncryptError::KeyExpired { fingerprint, .. } if *fingerprint == fpr), "{e:?}");
    let mut out = Vec::new();
    openpgp::encrypt(&b"rows"[..], &mut out, &[key], false).unwrap();
    let path = gpg.home.path().join("small.gpg");
    std::fs::write(&path, out).unwrap();
    assert_eq!(gpg.decrypt(&path), b"rows");
}

/// Name and SHA-256 of every entry of a zip archive, read by Python's zipfile.
fn python_zip_listing(path: &Path) -> Vec<(String, String)> {
    let script = "import hashlib, json, sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  assert z.testzip() is None\n\
                  print(json.dumps([[i.filename, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))\n";
    let out = ok(Command::new(support::python()).arg("-c").arg(script).arg(path));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn age_files_decrypt_with_age() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sample_inputs(dir.path());
    let mut identities = Vec::new();
    let mut recipients = Vec::new();
    for i in 0..2 {
        let key = dir.path().join(format!("age-{i}.key"));
        ok(Command::new("age-keygen").arg("-o").arg(&key));
        let public = ok(Command::new("age-keygen").arg("-y").arg(&key)).stdout;
        recipients.push(parse_recipient(std::str::from_utf8(&public).unwrap()).unwrap());
        identities.push(key);
    }
    for armor in [false, true] {
        let opts = PackagingOptions {
            zip: None,
            encryption: Some(Encryption::Age { recipients: recipients.clone(), armor }),
            manifest: Some(manifest_context()),
        };
        let out = package(&inputs, &opts, &dir.path().join(format!("out-{armor}"))).unwrap();
        assert_hashes_match(&out);
        let packed = by_name(&out);
        for input in &inputs {
            let f = packed[format!("{}.age", input.name).as_str()];
            let head = std::fs::read(&f.path).unwrap();
            let expected_head: &[u8] = if armor { b"-----BEGIN AGE ENCRYPTED FILE-----" } else { b"age-encryption.org/v1" };
            assert!(head.starts_with(expected_head), "{}", f.name);
            for identity in &identities {
                // To stdout: `age -o` creates no file for an empty plaintext.
                let plain = ok(Command::new("age").arg("-d").arg("-i").arg(identity).arg(&f.path)).stdout;
                assert_eq!(sha256_hex(&plain), input.sha256, "{}", f.name);
            }
        }
        let manifest = read_manifest(&out);
        assert_eq!(manifest.packaging.encryption.as_deref(), Some("age"));
        assert_eq!(manifest.packaging.armor, armor);
        assert_eq!(manifest.packaging.recipients, recipients.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>());
    }
}

#[test]
fn zip_archives_open_in_7z_and_python_and_a_wrong_password_fails() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sample_inputs(dir.path());

    // Plain zip: Python's zipfile reads every entry back.
    let opts = PackagingOptions {
        zip: Some(ZipOptions { archive_name: "export.zip".into(), password: None }),
        encryption: None,
        manifest: Some(ManifestContext { compression: Compression::Zip, ..manifest_context() }),
    };
    let out = package(&inputs, &opts, &dir.path().join("plain")).unwrap();
    assert_hashes_match(&out);
    assert_eq!(out.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["export.zip", "manifest.json"]);
    assert_eq!(out[0].content_type, "application/zip");
    assert_eq!(python_zip_listing(&out[0].path), inputs.iter().map(|i| (i.name.clone(), i.sha256.clone())).collect::<Vec<_>>());
    let manifest = read_manifest(&out);
    assert_eq!(manifest.files[0].contents.len(), inputs.len());
    assert_eq!(manifest.packaging.compression, Compression::Zip);
    assert_eq!(manifest.packaging.encryption, None);
    let deflated = std::fs::metadata(&out[0].path).unwrap().len();
    assert!(deflated < inputs.iter().map(|i| i.size).sum::<u64>() / 2, "the CSV was deflated: {deflated} bytes");

    // AES-256: 7-Zip opens it with the password, refuses a wrong one.
    let password = "correct horse battery staple 2026";
    let opts = PackagingOptions {
        zip: Some(ZipOptions { archive_name: "export.zip".into(), password: Some(Secret::new(password)) }),
        encryption: None,
        manifest: Some(ManifestContext { compression: Compression::Zip, ..manifest_context() }),
    };
    assert!(!format!("{opts:?}").contains("horse"), "the options' Debug shows no password");
    let out = package(&inputs, &opts, &dir.path().join("aes")).unwrap();
    assert_hashes_match(&out);
    let archive = &out[0].path;
    let listing = ok(Command::new("7z").args(["l", "-slt", &format!("-p{password}")]).arg(archive));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        listing.matches("Method = AES-256 Deflate").count() + listing.matches("Method = AES-256 Store").count(),
        inputs.len(),
        "{listing}"
    );
    assert!(listing.contains("Encrypted = +"), "{listing}");
    let extracted = dir.path().join("extracted");
    ok(Command::new("7z").args(["x", "-y", &format!("-p{password}"), &format!("-o{}", extracted.display())]).arg(archive));
    for input in &inputs {
        let bytes = std::fs::read(extracted.join(&input.name)).unwrap();
        assert_eq!(sha256_hex(&bytes), input.sha256, "{}", input.name);
    }
    let wrong = dir.path().join("wrong");
    let out_wrong = run(Command::new("7z").args(["x", "-y", "-pnot-the-password", &format!("-o{}", wrong.display())]).arg(archive));
    assert!(!out_wrong.status.success(), "7z accepted a wrong password");
    let text = String::from_utf8_lossy(&out_wrong.stdout).to_string() + &String::from_utf8_lossy(&out_wrong.stderr);
    assert!(text.contains("Wrong password"), "{text}");
    let manifest = read_manifest(&out);
    assert_eq!(manifest.packaging.encryption.as_deref(), Some("zip_aes"));
    assert!(!String::from_utf8_lossy(&std::fs::read(&out[1].path).unwrap()).contains("horse"));
}

#[test]
fn a_file_changed_after_encode_is_refused_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sample_inputs(dir.path());
    let mut bytes = std::fs::read(&inputs[0].path).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&inputs[0].path, &bytes).unwrap();
    let identity = dir.path().join("age.key");
    ok(Command::new("age-keygen").arg("-o").arg(&identity));
    let public = ok(Command::new("age-keygen").arg("-y").arg(&identity)).stdout;
    let recipient = parse_recipient(std::str::from_utf8(&public).unwrap()).unwrap();
    let out_dir = dir.path().join("out");
    for zip in [None, Some(ZipOptions { archive_name: "all.zip".into(), password: None })] {
        let opts = PackagingOptions {
            zip,
            encryption: Some(Encryption::Age { recipients: vec![recipient.clone()], armor: false }),
            manifest: None,
        };
        match package(&inputs, &opts, &out_dir).unwrap_err() {
            PackageError::SourceChanged { name, expected_sha256, actual_sha256, .. } => {
                assert_eq!(name, inputs[0].name);
                assert_eq!(expected_sha256, inputs[0].sha256);
                assert_eq!(actual_sha256, sha256_hex(&bytes));
            }
            e => panic!("expected SourceChanged, got {e:?}"),
        }
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "partial outputs were removed");
    }
    // Bad names are refused before anything is written.
    let mut bad = inputs.clone();
    bad[1].name = "../escape.csv".into();
    let e = package(&bad, &PackagingOptions::default(), &out_dir).unwrap_err();
    assert!(matches!(e, PackageError::Name { .. }), "{e:?}");
    assert!(matches!(package(&[], &PackagingOptions::default(), &out_dir).unwrap_err(), PackageError::NoInputs));
}

#[test]
fn without_zip_or_encryption_the_files_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = sample_inputs(dir.path());
    let out = package(&inputs, &PackagingOptions::default(), &dir.path().join("out")).unwrap();
    let expected: Vec<(String, PathBuf, String)> = inputs.iter().map(|i| (i.name.clone(), i.path.clone(), i.sha256.clone())).collect();
    assert_eq!(out.iter().map(|f| (f.name.clone(), f.path.clone(), f.sha256.clone())).collect::<Vec<_>>(), expected);
    assert_hashes_match(&out);
}
