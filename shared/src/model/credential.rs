//! Credentials: the secrets destinations need (SFTP passwords and keys, cloud keys, webhook
//! secrets, SMTP logins, zip passwords). Given once to `POST /v1/credentials`, stored sealed
//! ([`crate::secrets`]), referenced by id (`cred_...`) in destinations, never returned.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ValidationErrors;

/// The secret of a credential, by type. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSecret {
    /// An SFTP or zip password.
    Password { password: String },
    /// An OpenSSH private key (PEM), optionally with its passphrase.
    SshPrivateKey {
        private_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase: Option<String>,
    },
    /// AWS access keys for an S3 destination in another account.
    AwsAccessKey {
        access_key_id: String,
        secret_access_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
    /// A Google service account's JSON key.
    GcpServiceAccount { key: Value },
    /// An Azure storage account key (SharedKey).
    AzureSharedKey { account_key: String },
    /// An Azure SAS token.
    AzureSas { sas_token: String },
    /// The signing secret of a webhook (`whsec_` + base64, the Standard Webhooks form).
    WebhookSecret { secret: String },
    /// An SMTP login.
    SmtpLogin { username: String, password: String },
}

pub const CREDENTIAL_TYPES: &str =
    "password, ssh_private_key, aws_access_key, gcp_service_account, azure_shared_key, azure_sas, webhook_secret, smtp_login";

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSecret({}, <redacted>)", self.kind())
    }
}

impl CredentialSecret {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Password { .. } => "password",
            Self::SshPrivateKey { .. } => "ssh_private_key",
            Self::AwsAccessKey { .. } => "aws_access_key",
            Self::GcpServiceAccount { .. } => "gcp_service_account",
            Self::AzureSharedKey { .. } => "azure_shared_key",
            Self::AzureSas { .. } => "azure_sas",
            Self::WebhookSecret { .. } => "webhook_secret",
            Self::SmtpLogin { .. } => "smtp_login",
        }
    }

    /// Check the secret's shape; errors point below `/secret` and never echo a secret value.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let mut need = |field: &str, v: &str, max: usize| {
            if v.is_empty() || v.len() > max {
                errs.push(format!("/secret/{field}"), Value::Null, format!("a non-empty string of at most {max} bytes"));
            }
        };
        match self {
            Self::Password { password } => need("password", password, 1024),
            Self::SshPrivateKey { private_key, passphrase } => {
                need("private_key", private_key, 64 << 10);
                if !private_key.trim_start().starts_with("-----BEGIN ") {
                    errs.push("/secret/private_key", Value::Null, "a PEM private key (`-----BEGIN OPENSSH PRIVATE KEY-----` ...)");
                }
                if passphrase.as_ref().is_some_and(|p| p.len() > 1024) {
                    errs.push("/secret/passphrase", Value::Null, "at most 1024 bytes");
                }
            }
            Self::AwsAccessKey { access_key_id, secret_access_key, .. } => {
                need("access_key_id", access_key_id, 128);
                need("secret_access_key", secret_access_key, 256);
                if !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    errs.push("/secret/access_key_id", Value::Null, "letters and digits (an AWS access key id)");
                }
            }
            Self::GcpServiceAccount { key } => {
                for field in ["client_email", "private_key", "token_uri"] {
                    if !key.get(field).is_some_and(Value::is_string) {
                        errs.push(format!("/secret/key/{field}"), Value::Null, "a service account JSON key with this field");
                    }
                }
            }
            Self::AzureSharedKey { account_key } => {
                use base64::Engine;
                if base64::engine::general_purpose::STANDARD.decode(account_key).map(|k| k.len()).unwrap_or(0) < 16 {
                    errs.push("/secret/account_key", Value::Null, "the storage account key, base64");
                }
            }
            Self::AzureSas { sas_token } => {
                need("sas_token", sas_token, 4096);
                if !sas_token.trim_start_matches('?').contains("sig=") {
                    errs.push("/secret/sas_token", Value::Null, "a SAS token with a `sig=` parameter");
                }
            }
            Self::WebhookSecret { secret } => {
                use base64::Engine;
                let ok = secret
                    .strip_prefix("whsec_")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .is_some_and(|k| (24..=64).contains(&k.len()));
                if !ok {
                    errs.push("/secret/secret", Value::Null, "`whsec_` followed by 24 to 64 bytes in base64 (the Standard Webhooks form)");
                }
            }
            Self::SmtpLogin { username, password } => {
                need("username", username, 256);
                need("password", password, 1024);
            }
        }
        errs.into_result()
    }
}

/// A new credential id, `cred_` + a UUID v7.
pub fn credential_id() -> String {
    format!("cred_{}", uuid::Uuid::now_v7().simple())
}

/// True when `id` can name a stored credential: `cred_` and 1 to 64 letters, digits, `_` or
/// `-` (every id [`credential_id`] makes is one).
pub fn is_credential_id(id: &str) -> bool {
    id.strip_prefix("cred_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// What [`is_credential_id`] accepts, for validation messages.
pub const CREDENTIAL_ID_ALLOWED: &str = "the id of a stored credential: `cred_` followed by 1 to 64 letters, digits, `_` or `-`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = CredentialSecret::SmtpLogin { username: "u".into(), password: "hunter2-secret".into() };
        assert_eq!(format!("{s:?}"), "CredentialSecret(smtp_login, <redacted>)");
    }

    #[test]
    fn shapes_are_checked_without_echoing_secrets() {
        let bad = CredentialSecret::WebhookSecret { secret: "plain-secret-value".into() };
        let errs = bad.validate().unwrap_err();
        assert_eq!(errs.0[0].pointer, "/secret/secret");
        assert_eq!(errs.0[0].value, Value::Null);
        assert!(CredentialSecret::WebhookSecret { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into() }.validate().is_ok());
        assert!(CredentialSecret::Password { password: String::new() }.validate().is_err());
        let parsed: CredentialSecret = serde_json::from_value(serde_json::json!({"type": "password", "password": "p"})).unwrap();
        assert_eq!(parsed.kind(), "password");
    }
}
