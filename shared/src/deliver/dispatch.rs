//! One delivery attempt to one destination: resolve its credential (opened only here, never
//! kept), call the destination's module, and return its evidence. The Deliver stage retries
//! what comes back [`DeliverError::Transient`].

use std::time::Duration;

use chrono::Utc;

use super::azure_blob::{self, AzureCredential};
use super::email::{
    self, AttachmentMode, DownloadLink, EmailMessage, EmailSender, EmailTransport, SesSettings, SmtpSecurity, SmtpSettings,
};
use super::endpoints::Endpoints;
use super::gcs::{self, ServiceAccountKey};
use super::net_guard::AllowList;
use super::s3::{self, AwsKeys};
use super::sftp::transfer::{self, TransferRun, TransferWait};
use super::sftp::{self, SftpAuth, SftpTimeouts};
use super::signing::WebhookSecret;
use super::webhook::{self, FileLink, WebhookMode, WebhookPayload};
use super::{DeliverError, Evidence, OutgoingFile};
use crate::blob::BlobStore;
use crate::kms::KeyService;
use crate::model::credential::CredentialSecret;
use crate::model::destination::Destination;
use crate::secrets::{SecretError, load_credential};
use crate::store::JobStore;

/// What an attempt needs besides the destination and the files.
pub struct AttemptContext<'a> {
    pub store: &'a dyn JobStore,
    pub keys: &'a dyn KeyService,
    pub blobs: &'a dyn BlobStore,
    pub tenant: &'a str,
    pub export_id: &'a str,
    /// Blob keys of the files, in the order of the outgoing files (for download links).
    pub blob_keys: &'a [String],
    /// How long download links in webhooks and emails stay valid.
    pub link_ttl: Duration,
}

async fn credential(cx: &AttemptContext<'_>, id: &str) -> Result<CredentialSecret, DeliverError> {
    match load_credential(cx.store, cx.keys, cx.tenant, id).await {
        Ok(s) => Ok(s),
        Err(SecretError::NotFound(_)) => Err(DeliverError::permanent(format!("the credential `{id}` does not exist (deleted?)"))),
        Err(SecretError::Corrupt(_)) => Err(DeliverError::permanent(format!("the credential `{id}` could not be opened"))),
        Err(e) => Err(DeliverError::transient(format!("the credential `{id}` could not be read now: {e}"))),
    }
}

fn wrong_type(id: &str, got: &CredentialSecret, want: &str) -> DeliverError {
    DeliverError::permanent(format!("the credential `{id}` is of type {}; this destination needs {want}", got.kind()))
}

fn endpoints() -> Result<Endpoints, DeliverError> {
    Endpoints::from_env().map_err(|e| DeliverError::permanent(format!("the service's endpoint settings are not valid: {e}")))
}

/// The Transfer Family client of the service's own AWS identity; `EGRESS_TRANSFER_ENDPOINT`
/// (see [`Endpoints`]) points it elsewhere (an emulator).
async fn transfer_client() -> Result<aws_sdk_transfer::Client, DeliverError> {
    let endpoints = endpoints()?;
    let config = match endpoints.aws {
        Some(c) => c,
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    };
    Ok(transfer::client(&config, endpoints.transfer_endpoint.as_deref()))
}

async fn links(cx: &AttemptContext<'_>, files: &[OutgoingFile]) -> Result<Vec<FileLink>, DeliverError> {
    let expires_at = Utc::now() + chrono::Duration::from_std(cx.link_ttl).unwrap_or_default();
    let mut out = Vec::new();
    for (f, key) in files.iter().zip(cx.blob_keys) {
        let url = cx
            .blobs
            .presign_get(key, &f.remote_name, &f.content_type, cx.link_ttl)
            .await
            .map_err(|e| DeliverError::transient(format!("a download link could not be made: {e}")))?;
        out.push(FileLink { name: f.remote_name.clone(), size: f.size, sha256: f.sha256.clone(), url, expires_at });
    }
    Ok(out)
}

/// The tenant's allowed hosts (its settings), for webhook addresses.
pub async fn allow_list(store: &dyn JobStore, tenant: &str) -> Result<AllowList, DeliverError> {
    let (settings, _) = crate::api::settings::load(store, tenant)
        .await
        .map_err(|e| DeliverError::transient(format!("the tenant's settings could not be read: {e}")))?;
    AllowList::new(settings.allowed_hosts).map_err(|e| DeliverError::permanent(format!("the tenant's allowed_hosts: {e}")))
}

/// The email sender the operator configured: `EGRESS_EMAIL_FROM`, and `EGRESS_SMTP_HOST`
/// (`EGRESS_SMTP_PORT`, `EGRESS_SMTP_SECURITY` none|starttls|tls, `EGRESS_SMTP_USERNAME`,
/// `EGRESS_SMTP_PASSWORD`) or `EGRESS_EMAIL_TRANSPORT=ses`.
pub async fn email_sender() -> Result<EmailSender, DeliverError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let not_set = |what: &str| DeliverError::permanent(format!("email delivery is not configured on this service: {what} is not set"));
    let from = var("EGRESS_EMAIL_FROM").ok_or_else(|| not_set("EGRESS_EMAIL_FROM"))?;
    let timeout = Duration::from_secs(60);
    let transport = if var("EGRESS_EMAIL_TRANSPORT").as_deref() == Some("ses") {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        EmailTransport::Ses(Box::new(SesSettings { config, configuration_set: var("EGRESS_SES_CONFIGURATION_SET") }))
    } else {
        let host = var("EGRESS_SMTP_HOST").ok_or_else(|| not_set("EGRESS_SMTP_HOST"))?;
        let security = match var("EGRESS_SMTP_SECURITY").as_deref() {
            None | Some("starttls") => SmtpSecurity::Starttls,
            Some("tls") => SmtpSecurity::Tls,
            Some("none") => SmtpSecurity::None,
            Some(other) => return Err(DeliverError::permanent(format!("EGRESS_SMTP_SECURITY `{other}`: none, starttls or tls"))),
        };
        let port = var("EGRESS_SMTP_PORT").and_then(|p| p.parse().ok()).unwrap_or(match security {
            SmtpSecurity::Tls => 465,
            _ => 587,
        });
        let login = var("EGRESS_SMTP_USERNAME").zip(var("EGRESS_SMTP_PASSWORD"));
        EmailTransport::Smtp(SmtpSettings { host, port, security, login, root_certificate_pem: None, timeout })
    };
    Ok(EmailSender { from, transport, timeout })
}

/// One attempt. `Download` is checked by the caller (the files stay in the blob store).
pub fn attempt<'a>(
    cx: &'a AttemptContext<'a>,
    target: &'a Destination,
    files: &'a [OutgoingFile],
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Evidence, DeliverError>> + Send + 'a>> {
    Box::pin(attempt_inner(cx, target, files))
}

async fn attempt_inner(cx: &AttemptContext<'_>, target: &Destination, files: &[OutgoingFile]) -> Result<Evidence, DeliverError> {
    match target {
        Destination::Download => Ok(Evidence { location: format!("/v1/exports/{}/download", cx.export_id), ..Default::default() }),
        Destination::S3(cfg) => {
            let keys = match &cfg.credential {
                Some(id) => match credential(cx, id).await? {
                    CredentialSecret::AwsAccessKey { access_key_id, secret_access_key, session_token } => {
                        Some(AwsKeys { access_key_id, secret_access_key, session_token })
                    }
                    other => return Err(wrong_type(id, &other, "aws_access_key")),
                },
                None => None,
            };
            s3::deliver(cfg, keys.as_ref(), &endpoints()?, cx.export_id, files).await
        }
        Destination::Gcs(cfg) => {
            let key = match &cfg.credential {
                Some(id) => match credential(cx, id).await? {
                    CredentialSecret::GcpServiceAccount { key } => Some(
                        ServiceAccountKey::from_json(&key.to_string())
                            .map_err(|e| DeliverError::permanent(format!("the credential `{id}`: {e}")))?,
                    ),
                    other => return Err(wrong_type(id, &other, "gcp_service_account")),
                },
                None => None,
            };
            gcs::deliver(cfg, key.as_ref(), &endpoints()?, files).await
        }
        Destination::AzureBlob(cfg) => {
            let id = &cfg.credential;
            let cred = match credential(cx, id).await? {
                CredentialSecret::AzureSharedKey { account_key } => AzureCredential::shared_key(&account_key),
                CredentialSecret::AzureSas { sas_token } => AzureCredential::sas(&sas_token),
                other => return Err(wrong_type(id, &other, "azure_shared_key or azure_sas")),
            }
            .map_err(|e| DeliverError::permanent(format!("the credential `{id}`: {e}")))?;
            azure_blob::deliver(cfg, &cred, &endpoints()?, files).await
        }
        Destination::Sftp(cfg) if cfg.transfer_connector.is_some() => {
            let client = transfer_client().await?;
            let run = TransferRun {
                client: &client,
                blobs: cx.blobs,
                staging: format!("{}transfer/{}/", crate::blob::keys::staging(cx.tenant, cx.export_id), crate::model::ids::random_hex(8)),
                wait: TransferWait::default(),
            };
            transfer::deliver(cfg, &run, files, cx.blob_keys).await
        }
        Destination::Sftp(cfg) => {
            let Some(id) = &cfg.credential else {
                return Err(DeliverError::permanent("the SFTP destination names no credential"));
            };
            let auth = match credential(cx, id).await? {
                CredentialSecret::Password { password } => SftpAuth::Password(password),
                CredentialSecret::SshPrivateKey { private_key, passphrase } => {
                    SftpAuth::PrivateKey { openssh_pem: private_key, passphrase }
                }
                other => return Err(wrong_type(id, &other, "password or ssh_private_key")),
            };
            sftp::deliver(cfg, &auth, files, SftpTimeouts::default()).await
        }
        Destination::Webhook(cfg) => {
            let secret = match &cfg.secret_credential {
                Some(id) => match credential(cx, id).await? {
                    CredentialSecret::WebhookSecret { secret } => {
                        Some(WebhookSecret::parse(&secret).map_err(|e| DeliverError::permanent(format!("the credential `{id}`: {e}")))?)
                    }
                    other => return Err(wrong_type(id, &other, "webhook_secret")),
                },
                None => None,
            };
            let allow = allow_list(cx.store, cx.tenant).await?;
            let payload = match cfg.mode {
                WebhookMode::File => WebhookPayload::Files { export_id: cx.export_id.to_string(), files: files.to_vec() },
                WebhookMode::Link => WebhookPayload::Links {
                    export_id: cx.export_id.to_string(),
                    tenant: cx.tenant.to_string(),
                    files: links(cx, files).await?,
                },
            };
            webhook::deliver(cfg, secret.as_ref(), &allow, payload).await
        }
        Destination::Email(cfg) => {
            let sender = email_sender().await?;
            let links = match cfg.attachment_mode(files)? {
                AttachmentMode::Attached => Vec::new(),
                AttachmentMode::Links => links(cx, files)
                    .await?
                    .into_iter()
                    .map(|l| DownloadLink { name: l.name, url: l.url, expires_at: l.expires_at })
                    .collect(),
            };
            email::deliver(cfg, &EmailMessage { files: files.to_vec(), links }, &sender).await
        }
    }
}
