//! How an export's files are protected on their way: the spec's `encryption` object. Recipient
//! keys and passwords are not in the spec: it names them by id (`rk_...`, `cred_...`), and the
//! Encrypt stage loads them from the tenant's registry and the credential store.

use serde::{Deserialize, Serialize};

use super::spec::Compression;
use super::validation::ValidationErrors;

/// Most recipients one export may be encrypted to.
pub const MAX_RECIPIENTS: usize = 10;

/// Encryption of the delivered files.
///
/// ```json
/// {"type": "openpgp", "recipients": ["rk_0193..."], "armor": false}
/// {"type": "age", "recipients": ["rk_0193..."], "armor": false}
/// {"type": "zip_aes", "password_credential": "cred_0193..."}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EncryptionSpec {
    /// OpenPGP to the tenant's registered public keys: each file (or the zip archive) becomes
    /// `NAME.gpg` (`NAME.asc` when armored); GnuPG reads it with `gpg --decrypt`.
    #[serde(rename = "openpgp")]
    OpenPgp {
        /// Ids of registered OpenPGP keys (`rk_...`), 1 to 10; anyone of them can decrypt.
        recipients: Vec<String>,
        /// ASCII armor instead of binary.
        #[serde(default)]
        armor: bool,
    },
    /// age to the tenant's registered X25519 recipients: each file (or the archive) becomes
    /// `NAME.age`; read with `age -d -i KEY`.
    Age {
        /// Ids of registered age recipients (`rk_...`), 1 to 10.
        recipients: Vec<String>,
        /// ASCII armor instead of binary.
        #[serde(default)]
        armor: bool,
    },
    /// A zip archive with AES-256 (WinZip AE-2) under a password kept in the credential store;
    /// needs `compression: "zip"`. The password is never stored in clear, logged or returned.
    ZipAes {
        /// Id of the credential holding the password (`cred_...`).
        password_credential: String,
    },
}

impl EncryptionSpec {
    /// The name of the kind, as in JSON: `openpgp`, `age`, `zip_aes`.
    pub fn kind(&self) -> &'static str {
        match self {
            EncryptionSpec::OpenPgp { .. } => "openpgp",
            EncryptionSpec::Age { .. } => "age",
            EncryptionSpec::ZipAes { .. } => "zip_aes",
        }
    }

    /// Check the fields; `pointer` is where this object is in the request (e.g. `/encryption`)
    /// and `compression` the export's compression.
    pub fn validate(&self, pointer: &str, compression: Compression, errs: &mut ValidationErrors) {
        match self {
            EncryptionSpec::OpenPgp { recipients, .. } | EncryptionSpec::Age { recipients, .. } => {
                let p = format!("{pointer}/recipients");
                if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
                    errs.push(
                        p.as_str(),
                        serde_json::json!(recipients),
                        format!("1 to {MAX_RECIPIENTS} registered recipient key ids (`rk_...`), got {}", recipients.len()),
                    );
                }
                for (i, id) in recipients.iter().enumerate() {
                    if !is_id(id, "rk_") {
                        errs.push(format!("{p}/{i}"), id.as_str(), "a recipient key id: `rk_` followed by 1 to 64 letters or digits");
                    } else if recipients[..i].contains(id) {
                        errs.push(format!("{p}/{i}"), id.as_str(), "each recipient once");
                    }
                }
            }
            EncryptionSpec::ZipAes { password_credential } => {
                if !crate::model::credential::is_credential_id(password_credential) {
                    errs.push(
                        format!("{pointer}/password_credential"),
                        password_credential.as_str(),
                        crate::model::credential::CREDENTIAL_ID_ALLOWED,
                    );
                }
                if compression != Compression::Zip {
                    errs.push(
                        format!("{pointer}/type"),
                        "zip_aes",
                        format!(
                            "openpgp or age with compression `{}`; zip_aes protects a zip archive, so it needs compression `zip`",
                            compression_name(compression)
                        ),
                    );
                }
            }
        }
    }
}

fn compression_name(c: Compression) -> String {
    serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// `prefix` followed by 1 to 64 ASCII letters or digits.
fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<EncryptionSpec, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn errors(spec: &EncryptionSpec, c: Compression) -> Vec<(String, String)> {
        let mut errs = ValidationErrors::new();
        spec.validate("/encryption", c, &mut errs);
        errs.0.into_iter().map(|e| (e.pointer, e.value.to_string())).collect()
    }

    #[test]
    fn the_three_shapes_parse_and_round_trip() {
        for v in [
            json!({"type": "openpgp", "recipients": ["rk_01"], "armor": true}),
            json!({"type": "age", "recipients": ["rk_01", "rk_02"], "armor": false}),
            json!({"type": "zip_aes", "password_credential": "cred_01"}),
        ] {
            let spec = parse(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&spec).unwrap(), v);
        }
        assert_eq!(
            parse(json!({"type": "age", "recipients": ["rk_1"]})).unwrap(),
            EncryptionSpec::Age { recipients: vec!["rk_1".into()], armor: false }
        );
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        assert!(parse(json!({"type": "pgp", "recipients": ["rk_1"]})).unwrap_err().contains("unknown variant"));
        assert!(parse(json!({"type": "age", "recipients": ["rk_1"], "armour": true})).unwrap_err().contains("unknown field"));
        assert!(parse(json!({"type": "zip_aes", "password": "hunter2hunter2"})).is_err());
    }

    #[test]
    fn recipients_are_counted_and_checked() {
        let none = EncryptionSpec::OpenPgp { recipients: vec![], armor: false };
        assert_eq!(errors(&none, Compression::Gzip)[0].0, "/encryption/recipients");
        let many = EncryptionSpec::Age { recipients: (0..11).map(|i| format!("rk_{i}")).collect(), armor: false };
        assert_eq!(errors(&many, Compression::None)[0].0, "/encryption/recipients");
        let bad = EncryptionSpec::Age { recipients: vec!["rk_ok".into(), "key-2".into(), "rk_ok".into(), "rk_".into()], armor: false };
        let e = errors(&bad, Compression::None);
        let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/encryption/recipients/1", "/encryption/recipients/2", "/encryption/recipients/3"]);
        assert!(errors(&EncryptionSpec::OpenPgp { recipients: vec!["rk_0193abc".into()], armor: true }, Compression::Zip).is_empty());
    }

    #[test]
    fn zip_aes_needs_zip_and_a_credential_id() {
        let ok = EncryptionSpec::ZipAes { password_credential: "cred_01".into() };
        assert!(errors(&ok, Compression::Zip).is_empty());
        assert_eq!(errors(&ok, Compression::Gzip), [("/encryption/type".to_string(), "\"zip_aes\"".to_string())]);
        let bad = EncryptionSpec::ZipAes { password_credential: "hunter2".into() };
        assert_eq!(errors(&bad, Compression::Zip)[0].0, "/encryption/password_credential");
    }
}
