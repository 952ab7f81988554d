//! `manifest.json`: what was delivered (names, sizes, rows, SHA-256 before and after packaging),
//! how it was packaged, from which spec and sources. Delivered beside the data, in clear, so a
//! recipient can check every file before decrypting it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::spec::Compression;

/// The manifest's name beside the data.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Version of the manifest's shape.
pub const MANIFEST_VERSION: u32 = 1;

/// The manifest of one export's delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Version of this document's shape (1).
    pub manifest_version: u32,
    pub export_id: String,
    pub tenant: String,
    pub created_at: DateTime<Utc>,
    /// Version of egress that made the files.
    pub egress_version: String,
    /// SHA-256 (hex) of the export spec as canonical JSON (see [`spec_sha256`]).
    pub spec_sha256: String,
    /// Where the rows came from (datasets, files, snapshots), as the source stage describes it.
    pub source_lineage: Value,
    /// The delivered files, in delivery order.
    pub files: Vec<ManifestFile>,
    pub packaging: PackagingSummary,
}

/// One delivered file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    /// Bytes delivered.
    pub size: u64,
    /// Data rows in it (all files of an archive together).
    pub rows: u64,
    pub content_type: String,
    /// SHA-256 (hex) of the bytes delivered.
    pub sha256: String,
    /// SHA-256 (hex) of the file before packaging (encryption); absent for an archive, whose
    /// files are listed in `contents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Size of the file before packaging; absent for an archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_size: Option<u64>,
    /// The files inside an archive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<ContainedFile>,
}

/// A file inside an archive, as it is after extraction (and decryption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainedFile {
    pub name: String,
    pub size: u64,
    pub rows: u64,
    pub content_type: String,
    pub sha256: String,
}

/// How the files were packaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagingSummary {
    /// The spec's compression: `none`, `gzip`, `zstd` or `zip`.
    pub compression: Compression,
    /// `openpgp`, `age` or `zip_aes`; absent when the files are not encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// Whom the files are encrypted to: OpenPGP primary key fingerprints or age recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Encrypted files are ASCII-armored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub armor: bool,
}

impl Manifest {
    /// The manifest as pretty JSON: fields in declaration order, objects of `source_lineage`
    /// with sorted keys, a final newline.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_else(|_| b"{}".to_vec());
        v.push(b'\n');
        v
    }
}

/// The canonical JSON of a value: object keys sorted, no whitespace, numbers and strings as
/// serde_json writes them. Equal specs give equal bytes whatever the order they were sent in.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// SHA-256 (hex) of a spec's canonical JSON.
pub fn spec_sha256(spec: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(spec)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": null, "p": "x"}], "x": true}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":true,"y":[1,{"p":"x","q":null}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), br#"{"a":{"x":true,"y":[1,{"p":"x","q":null}]},"b":1}"#);
        assert_eq!(spec_sha256(&a), spec_sha256(&b));
        assert_ne!(spec_sha256(&a), spec_sha256(&json!({"b": 2})));
    }

    #[test]
    fn manifest_json_round_trips_and_leaves_out_what_is_absent() {
        let m = Manifest {
            manifest_version: MANIFEST_VERSION,
            export_id: "exp_1".into(),
            tenant: "acme".into(),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            egress_version: env!("CARGO_PKG_VERSION").into(),
            spec_sha256: spec_sha256(&json!({})),
            source_lineage: json!({"dataset": "transactions"}),
            files: vec![ManifestFile {
                name: "a.csv.gpg".into(),
                size: 10,
                rows: 2,
                content_type: "application/pgp-encrypted".into(),
                sha256: "ab".into(),
                source_sha256: Some("cd".into()),
                source_size: Some(8),
                contents: vec![],
            }],
            packaging: PackagingSummary { compression: Compression::Gzip, encryption: None, recipients: vec![], armor: false },
        };
        let bytes = m.to_json_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("contents") && !text.contains("recipients") && !text.contains("armor"), "{text}");
        assert!(text.find("manifest_version").unwrap() < text.find("export_id").unwrap());
        let back: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
    }
}
