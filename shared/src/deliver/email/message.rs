//! The message itself: headers, a text body listing the files (size and SHA-256), and the
//! attachments or download links.

use std::fmt::Write as _;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::{AttachmentMode, EmailConfig, EmailMessage};
use crate::deliver::{DeliverError, OutgoingFile};

/// A message ready for a transport.
pub(super) struct Built {
    pub message: Message,
    /// The `Message-ID` header, with its angle brackets.
    pub message_id: String,
}

fn mailbox(field: &str, address: &str) -> Result<Mailbox, DeliverError> {
    address.parse().map_err(|e| DeliverError::permanent(format!("email: {field} address {address:?} is not valid: {e}")))
}

pub(super) async fn build(cfg: &EmailConfig, msg: &EmailMessage, mode: AttachmentMode, from: &str) -> Result<Built, DeliverError> {
    let from = mailbox("from", from)?;
    let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), from.email.domain());
    let mut builder = Message::builder().from(from).subject(cfg.subject.as_str()).message_id(Some(message_id.clone())).date_now();
    for a in &cfg.to {
        builder = builder.to(mailbox("to", a)?);
    }
    for a in &cfg.cc {
        builder = builder.cc(mailbox("cc", a)?);
    }
    for a in &cfg.bcc {
        builder = builder.bcc(mailbox("bcc", a)?);
    }
    for f in &msg.files {
        if f.remote_name.is_empty() || f.remote_name.chars().any(char::is_control) {
            return Err(DeliverError::permanent(format!("email: {:?} is not a file name", f.remote_name)));
        }
    }

    let text = body_text(cfg, msg, mode)?;
    let message = match mode {
        AttachmentMode::Links => builder.singlepart(SinglePart::plain(text)),
        AttachmentMode::Attached => {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(text));
            for f in &msg.files {
                let bytes = read_checked(f).await?;
                let content_type =
                    ContentType::parse(&f.content_type).unwrap_or(ContentType::parse("application/octet-stream").expect("valid"));
                parts = parts.singlepart(Attachment::new(f.remote_name.clone()).body(attachment_body(bytes), content_type));
            }
            builder.multipart(parts)
        }
    }
    .map_err(|e| DeliverError::permanent(format!("email: the message could not be built: {e}")))?;
    Ok(Built { message, message_id })
}

/// An attachment's body, always base64: the recipient decodes exactly the bytes sent. (Left
/// to choose, lettre would send a text file of short ASCII lines as `7bit` with its bare LF
/// line endings, which SMTP servers refuse and which would not survive transport unchanged.)
fn attachment_body(bytes: Vec<u8>) -> Body {
    // Base64 is accepted for any bytes; lettre gives them back only for 7bit/8bit.
    Body::new_with_encoding(bytes, ContentTransferEncoding::Base64).unwrap_or_else(Body::new)
}

/// A plain-text message with `cfg.body` as its text and a given Message-ID
/// (`<{id}@{the sender's domain}>`).
pub(super) fn build_notice(cfg: &EmailConfig, id: &str, from: &str) -> Result<Built, DeliverError> {
    if id.is_empty() || id.len() > 200 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return Err(DeliverError::permanent(format!("email: message id {id:?}: allowed are 1 to 200 letters, digits, _, - or .")));
    }
    let from = mailbox("from", from)?;
    let message_id = format!("<{id}@{}>", from.email.domain());
    let mut builder = Message::builder().from(from).subject(cfg.subject.as_str()).message_id(Some(message_id.clone())).date_now();
    for a in &cfg.to {
        builder = builder.to(mailbox("to", a)?);
    }
    let text = cfg.body.clone().unwrap_or_default();
    let message = builder
        .singlepart(SinglePart::plain(text))
        .map_err(|e| DeliverError::permanent(format!("email: the message could not be built: {e}")))?;
    Ok(Built { message, message_id })
}

/// The file's bytes, after checking they are the ones announced (size and SHA-256). Only
/// files within `max_attachment_bytes` (25 MiB at most) are read.
async fn read_checked(f: &OutgoingFile) -> Result<Vec<u8>, DeliverError> {
    let bytes = tokio::fs::read(&f.path)
        .await
        .map_err(|e| DeliverError::permanent(format!("email: cannot read the file to attach {}: {e}", f.path.display())))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if bytes.len() as u64 != f.size || !digest.eq_ignore_ascii_case(&f.sha256) {
        return Err(DeliverError::permanent(format!(
            "email: the file to attach {} changed: {} bytes with SHA-256 {digest}, expected {} bytes with {}",
            f.path.display(),
            bytes.len(),
            f.size,
            f.sha256
        )));
    }
    Ok(bytes)
}

fn body_text(cfg: &EmailConfig, msg: &EmailMessage, mode: AttachmentMode) -> Result<String, DeliverError> {
    let mut text = String::new();
    match cfg.body.as_deref().map(str::trim_end) {
        Some(body) if !body.is_empty() => text.push_str(body),
        _ => text.push_str("Your export is ready."),
    }
    text.push_str("\n\n");
    text.push_str(match mode {
        AttachmentMode::Attached => "Files (attached):\n",
        AttachmentMode::Links => "Files (download links):\n",
    });
    for f in &msg.files {
        let _ = writeln!(text, "\n- {} ({} bytes)\n  SHA-256 {}", f.remote_name, f.size, f.sha256);
        if mode == AttachmentMode::Links {
            let link = msg
                .links
                .iter()
                .find(|l| l.name == f.remote_name)
                .ok_or_else(|| DeliverError::permanent(format!("email: no download link was given for {:?}", f.remote_name)))?;
            let _ = writeln!(text, "  {}\n  (valid until {})", link.url, link.expires_at.format("%Y-%m-%d %H:%M UTC"));
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_attachment_with_bare_line_feeds_is_base64() {
        let body = attachment_body(b"id,amount\n1,2.50\n".to_vec());
        assert_eq!(body.encoding(), ContentTransferEncoding::Base64);
        assert_eq!(String::from_utf8(body.into_vec()).unwrap().trim_end(), "aWQsYW1vdW50CjEsMi41MAo=");
    }
}
