//! The two ways a message leaves: SMTP (lettre, tokio) and Amazon SES (`SendEmail` with the
//! raw message), with their failures classified as transient or permanent.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value, json};

use super::EmailConfig;
use crate::deliver::DeliverError;

/// How messages leave the service.
#[derive(Debug, Clone)]
pub enum EmailTransport {
    /// An SMTP relay (the local host).
    Smtp(SmtpSettings),
    /// Amazon SES v2 `SendEmail` (on AWS).
    Ses(Box<SesSettings>),
}

/// Connection security towards the SMTP relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text (a relay on the same host or network only).
    None,
    /// Plain connection upgraded with STARTTLS; refused when the relay does not offer it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// An SMTP relay.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password for `AUTH`, when the relay wants them.
    pub login: Option<(String, String)>,
    /// An extra trusted root certificate (PEM) for a relay with a private CA.
    pub root_certificate_pem: Option<String>,
    /// Time limit of each SMTP command.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("login", &self.login.as_ref().map(|(user, _)| (user, "<redacted>")))
            .field("root_certificate_pem", &self.root_certificate_pem.as_ref().map(|_| "<PEM>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Amazon SES: the SDK configuration (region, credentials, endpoint) of the host.
#[derive(Debug, Clone)]
pub struct SesSettings {
    pub config: aws_config::SdkConfig,
    /// SES configuration set for event publishing, if any.
    pub configuration_set: Option<String>,
}

/// What the transport said.
pub(super) struct Sent {
    pub transport: &'static str,
    pub details: Map<String, Value>,
}

pub(super) async fn send(transport: &EmailTransport, message: Message, cfg: &EmailConfig, from: &str) -> Result<Sent, DeliverError> {
    match transport {
        EmailTransport::Smtp(settings) => send_smtp(settings, message).await,
        EmailTransport::Ses(settings) => send_ses(settings, &message, cfg, from).await,
    }
}

async fn send_smtp(s: &SmtpSettings, message: Message) -> Result<Sent, DeliverError> {
    let target = format!("smtp://{}:{}", s.host, s.port);
    let tls = match s.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls | SmtpSecurity::Tls => {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.root_certificate_pem {
                let cert = Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| DeliverError::permanent(format!("{target}: the extra root certificate is not valid PEM: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build().map_err(|e| DeliverError::permanent(format!("{target}: TLS setup failed: {e}")))?;
            if s.security == SmtpSecurity::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
        }
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str()).port(s.port).tls(tls).timeout(Some(s.timeout));
    if let Some((user, password)) = &s.login {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let mailer = builder.build();
    let response = mailer.send(message).await.map_err(|e| {
        // lettre's message is the reply code and the server's text; it never holds the login.
        let message = format!("{target}: {e}");
        if e.is_permanent() { DeliverError::permanent(message) } else { DeliverError::transient(message) }
    })?;
    let reply = format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "));
    let mut details = Map::new();
    details.insert("smtp_response".into(), json!(reply.trim_end()));
    Ok(Sent { transport: "smtp", details })
}

async fn send_ses(s: &SesSettings, message: &Message, cfg: &EmailConfig, from: &str) -> Result<Sent, DeliverError> {
    use aws_sdk_sesv2::primitives::Blob;
    use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

    let client = aws_sdk_sesv2::Client::new(&s.config);
    let raw = RawMessage::builder()
        .data(Blob::new(message.formatted()))
        .build()
        .map_err(|e| DeliverError::permanent(format!("SES: the message could not be built: {e}")))?;
    let list = |v: &Vec<String>| if v.is_empty() { None } else { Some(v.clone()) };
    // Bcc recipients are not in the raw message's headers: the envelope names everyone.
    let destination =
        Destination::builder().set_to_addresses(list(&cfg.to)).set_cc_addresses(list(&cfg.cc)).set_bcc_addresses(list(&cfg.bcc)).build();
    let out = client
        .send_email()
        .from_email_address(from)
        .destination(destination)
        .content(EmailContent::builder().raw(raw).build())
        .set_configuration_set_name(s.configuration_set.clone())
        .send()
        .await
        .map_err(|e| ses_error(&e))?;
    let mut details = Map::new();
    if let Some(id) = out.message_id() {
        details.insert("ses_message_id".into(), json!(id));
    }
    Ok(Sent { transport: "ses", details })
}

/// Throttling and server-side failures are transient, as are timeouts and connection errors;
/// the rest (message rejected, identity not verified, sending paused) is permanent.
fn ses_error(
    e: &aws_sdk_sesv2::error::SdkError<aws_sdk_sesv2::operation::send_email::SendEmailError, aws_sdk_sesv2::config::http::HttpResponse>,
) -> DeliverError {
    use aws_sdk_sesv2::error::{ProvideErrorMetadata as _, SdkError};
    let message = format!("SES: {}", crate::aws::sdk_error(e));
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let status = se.raw().status().as_u16();
            if status >= 500
                || status == 429
                || matches!(code, "TooManyRequestsException" | "LimitExceededException" | "Throttling" | "ThrottlingException")
            {
                DeliverError::transient(message)
            } else {
                DeliverError::permanent(message)
            }
        }
        SdkError::ConstructionFailure(_) => DeliverError::permanent(message),
        _ => DeliverError::transient(message),
    }
}
