//! age: X25519 recipients (`age1...`) and streaming encryption to them, binary or armored.

use std::io::{Read, Write};
use std::str::FromStr;

use ::age::armor::{ArmoredWriter, Format};
use ::age::x25519;

/// Bytes read from the source at a time.
const READ_BLOCK: usize = 1 << 20;

/// One recipient: an X25519 public key, `age1` followed by 58 bech32 characters.
#[derive(Clone)]
pub struct AgeRecipient {
    key: x25519::Recipient,
    text: String,
}

impl AgeRecipient {
    /// The recipient as it is written (`age1...`): public, it may be shown and logged.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AgeRecipient").field(&self.text).finish()
    }
}

/// Why a string is not an age recipient. Never quotes a secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientParseError {
    #[error("the recipient is empty: give an age X25519 recipient, `age1` followed by 58 characters (`age-keygen -y KEYFILE`)")]
    Empty,
    #[error(
        "this is an age secret key: register only its recipient (`age-keygen -y KEYFILE` prints it), and treat the secret key as exposed"
    )]
    SecretKey,
    #[error("SSH recipients (`{kind}`) are not supported: give an age X25519 recipient, `age1...` (`age-keygen -y KEYFILE`)")]
    Ssh { kind: String },
    #[error("`{given}` is not an age X25519 recipient ({why}): expected `age1` followed by 58 characters")]
    Invalid { given: String, why: String },
}

/// Errors of [`encrypt`].
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("no recipients: age encryption needs at least one recipient")]
    NoRecipients,
    #[error("reading the file or writing the age file: {0}")]
    Io(#[from] std::io::Error),
    #[error("age encryption failed: {0}")]
    Age(String),
}

/// Parse an X25519 recipient (`age1...`); surrounding whitespace is ignored.
pub fn parse_recipient(input: &str) -> Result<AgeRecipient, RecipientParseError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(RecipientParseError::Empty);
    }
    if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return Err(RecipientParseError::SecretKey);
    }
    if let Some(kind) = ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-"].into_iter().find(|k| s.starts_with(k)) {
        return Err(RecipientParseError::Ssh { kind: kind.trim_end_matches('-').to_string() });
    }
    // Quote at most a recipient's length of what was given (a recipient is public).
    let given: String = s.chars().take(80).collect();
    match x25519::Recipient::from_str(s) {
        Ok(key) => Ok(AgeRecipient { text: key.to_string(), key }),
        Err(why) => Err(RecipientParseError::Invalid { given, why: why.to_string() }),
    }
}

/// Encrypt everything `reader` gives to every recipient, streaming into `writer` (64 KiB
/// ChaCha20-Poly1305 chunks), binary or ASCII-armored. Memory stays bounded whatever the size.
pub fn encrypt<R: Read, W: Write>(mut reader: R, writer: W, recipients: &[AgeRecipient], armor: bool) -> Result<(), EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let encryptor = ::age::Encryptor::with_recipients(recipients.iter().map(|r| &r.key as &dyn ::age::Recipient))
        .map_err(|e| EncryptError::Age(e.to_string()))?;
    let format = if armor { Format::AsciiArmor } else { Format::Binary };
    let armored = ArmoredWriter::wrap_output(writer, format)?;
    let mut stream = encryptor.wrap_output(armored)?;
    let mut buf = vec![0u8; READ_BLOCK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        stream.write_all(&buf[..n])?;
    }
    let mut w = stream.finish()?.finish()?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_round_trips_its_text() {
        let identity = x25519::Identity::generate();
        let text = identity.to_public().to_string();
        let r = parse_recipient(&format!("  {text}\n")).unwrap();
        assert_eq!(r.as_str(), text);
    }

    #[test]
    fn secret_keys_and_ssh_keys_are_refused_without_quoting_them() {
        use ::age::secrecy::ExposeSecret;
        let secret = x25519::Identity::generate().to_string();
        let e = parse_recipient(secret.expose_secret()).unwrap_err();
        assert_eq!(e, RecipientParseError::SecretKey);
        assert!(!e.to_string().contains(&secret.expose_secret()[15..]));
        assert!(matches!(parse_recipient("ssh-ed25519 AAAAC3Nza... me@host").unwrap_err(), RecipientParseError::Ssh { .. }));
        assert!(matches!(parse_recipient("age1notreally").unwrap_err(), RecipientParseError::Invalid { .. }));
        assert_eq!(parse_recipient(" ").unwrap_err(), RecipientParseError::Empty);
    }

    #[test]
    fn encrypted_bytes_decrypt_with_the_identity() {
        let identity = x25519::Identity::generate();
        let r = parse_recipient(&identity.to_public().to_string()).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for armor in [false, true] {
            let mut out = Vec::new();
            encrypt(&data[..], &mut out, std::slice::from_ref(&r), armor).unwrap();
            assert_eq!(out.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), armor);
            let plain = ::age::decrypt(&identity, &out).unwrap();
            assert_eq!(plain, data);
        }
    }
}
