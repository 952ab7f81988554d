//! OpenPGP: recipients' public keys (checked when they are registered and again before use) and
//! streaming encryption to them.
//!
//! Messages are what GnuPG 2.2 (and every bank's and FIU's SFTP tooling) reads: a v3 PKESK per
//! recipient and a SEIPD v1 packet (AES-256, with the modification detection code), no inner
//! compression (the data is compressed already when the spec asks), partial-length packets so
//! the size never has to be known up front.

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use pgp::composed::{ArmorOptions, MessageBuilder, PublicOrSecret, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{KeyFlags, Signature, SignatureType};
use pgp::types::{KeyDetails, PublicParams, Tag, Timestamp};
use serde::Serialize;

/// Largest key file accepted (a key with many user IDs and signatures is a few hundred KB).
pub const MAX_KEY_BYTES: usize = 1 << 20;

/// Size of the partial-length packets of a message.
const PARTIAL_CHUNK: u32 = 1 << 20;

/// What a registered public key is, for people and for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKeyInfo {
    /// The primary key's fingerprint, upper-case hex (40 digits for a v4 key).
    pub fingerprint: String,
    /// The primary key's 64-bit key id, upper-case hex.
    pub key_id: String,
    /// User IDs with a valid self-signature, e.g. `FIU Reports <reports@fiu.example>`.
    pub user_ids: Vec<String>,
    /// The primary key's algorithm, e.g. `RSA 3072` or `EdDSA Ed25519`.
    pub algorithm: String,
    /// When the primary key was made.
    pub created: DateTime<Utc>,
    /// When the key stops being valid; `None` if never.
    pub expires: Option<DateTime<Utc>>,
    /// The key or one of its subkeys can encrypt (always true for a key that was accepted).
    pub can_encrypt: bool,
    /// Fingerprint of the (sub)key messages are encrypted to.
    pub encryption_fingerprint: String,
    /// Algorithm of that (sub)key, e.g. `ECDH Curve25519` or `RSA 3072`.
    pub encryption_algorithm: String,
    /// When that (sub)key stops being valid; `None` if never.
    pub encryption_expires: Option<DateTime<Utc>>,
}

/// A parsed, checked recipient: the public key and the (sub)key messages are encrypted to.
#[derive(Clone)]
pub struct RecipientKey {
    info: PublicKeyInfo,
    key: SignedPublicKey,
    target: Target,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Primary,
    Subkey(usize),
}

impl RecipientKey {
    /// What the key is.
    pub fn info(&self) -> &PublicKeyInfo {
        &self.info
    }

    /// The primary key's fingerprint (upper-case hex).
    pub fn fingerprint(&self) -> &str {
        &self.info.fingerprint
    }

    /// The earliest time the key or its encryption (sub)key expires.
    fn expires(&self) -> Option<DateTime<Utc>> {
        match (self.info.expires, self.info.encryption_expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey").field("fingerprint", &self.info.fingerprint).field("user_ids", &self.info.user_ids).finish()
    }
}

/// Why a key cannot be registered (or used). Messages never quote the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("the key is empty: give an OpenPGP public key, armored (`gpg --armor --export`) or binary")]
    Empty,
    #[error("the key is {size} bytes: at most {MAX_KEY_BYTES} bytes are accepted for one public key")]
    TooLarge { size: usize },
    #[error("not an OpenPGP public key ({reason}): give the output of `gpg --export` or `gpg --armor --export`")]
    NotOpenPgp { reason: String },
    #[error("this is a secret key: register only the public key (`gpg --armor --export FINGERPRINT`), and treat the secret key as exposed")]
    SecretKey,
    #[error("{count} keys were given: register one public key at a time")]
    SeveralKeys { count: usize },
    #[error("the key {fingerprint} has no valid self-signature: it is damaged or was not made by its own primary key")]
    NoSelfSignature { fingerprint: String },
    #[error("the key {fingerprint} was revoked by its owner")]
    Revoked { fingerprint: String },
    #[error("the key {fingerprint} expired on {expired}: ask the recipient for a key that is valid (or extended)")]
    Expired { fingerprint: String, expired: DateTime<Utc> },
    #[error("the key {fingerprint} cannot encrypt: {why}")]
    CannotEncrypt { fingerprint: String, why: String },
}

/// Errors of [`encrypt`].
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("no recipients: OpenPGP encryption needs at least one public key")]
    NoRecipients,
    #[error("the key {fingerprint} expired on {expired}: the recipient must register a valid key")]
    KeyExpired { fingerprint: String, expired: DateTime<Utc> },
    #[error("reading the file or writing the message: {0}")]
    Io(#[from] std::io::Error),
    #[error("OpenPGP encryption failed: {0}")]
    OpenPgp(String),
}

impl From<pgp::errors::Error> for EncryptError {
    fn from(e: pgp::errors::Error) -> Self {
        match e {
            pgp::errors::Error::IO { source, .. } => EncryptError::Io(source),
            other => EncryptError::OpenPgp(other.to_string()),
        }
    }
}

/// Parse and check a transferable public key (armored or binary), valid now.
pub fn parse_public_key(input: &[u8]) -> Result<RecipientKey, KeyParseError> {
    parse_public_key_at(input, Utc::now())
}

/// Parse and check a transferable public key (armored or binary) as of `now`: exactly one
/// public key, self-signed, not revoked, not expired, with a (sub)key that can encrypt.
pub fn parse_public_key_at(input: &[u8], now: DateTime<Utc>) -> Result<RecipientKey, KeyParseError> {
    if input.len() > MAX_KEY_BYTES {
        return Err(KeyParseError::TooLarge { size: input.len() });
    }
    let start = input.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(input.len());
    let input = &input[start..];
    if input.is_empty() {
        return Err(KeyParseError::Empty);
    }
    // rpgp's messages name packets and lengths, never key material; still, they are kept short.
    let not_pgp = |e: pgp::errors::Error| KeyParseError::NotOpenPgp { reason: short(&e.to_string()) };
    // A secret key is refused before it is parsed, so that no parser message can quote it.
    if input.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----") || first_packet_is_secret_key(input[0]) {
        return Err(KeyParseError::SecretKey);
    }
    if input[0] & 0x80 == 0 && !input.starts_with(b"-----BEGIN PGP") {
        return Err(KeyParseError::NotOpenPgp { reason: "neither binary OpenPGP packets nor an armored `-----BEGIN PGP` block".into() });
    }
    let (keys, _) = PublicOrSecret::from_reader_many(input).map_err(not_pgp)?;
    let mut found = Vec::new();
    for k in keys {
        found.push(k.map_err(not_pgp)?);
        if found.len() > 100 {
            break;
        }
    }
    if found.iter().any(PublicOrSecret::is_secret) {
        return Err(KeyParseError::SecretKey);
    }
    let key = match found.len() {
        0 => return Err(KeyParseError::NotOpenPgp { reason: "no public key packet found".into() }),
        1 => match found.pop().map(SignedPublicKey::try_from) {
            Some(Ok(k)) => k,
            _ => return Err(KeyParseError::SecretKey),
        },
        count => return Err(KeyParseError::SeveralKeys { count }),
    };
    check(key, now)
}

/// The packet tag of a binary packet header (RFC 9580 4.2): 5 is a secret key, 7 a secret subkey.
fn first_packet_is_secret_key(ctb: u8) -> bool {
    if ctb & 0x80 == 0 {
        return false;
    }
    let tag = if ctb & 0x40 != 0 { ctb & 0x3f } else { (ctb >> 2) & 0x0f };
    tag == 5 || tag == 7
}

/// Keep an upstream message to one short line.
fn short(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(160).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

fn time(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(t.as_secs()), 0).unwrap_or_default()
}

/// `created + validity`, when the signature limits the key's life (0 means "never").
fn expiry(created: Timestamp, sig: &Signature) -> Option<DateTime<Utc>> {
    let secs = sig.key_expiration_time()?.as_secs();
    (secs > 0).then(|| time(created) + chrono::Duration::seconds(i64::from(secs)))
}

fn created(sig: &Signature) -> u32 {
    sig.created().map(|t| t.as_secs()).unwrap_or(0)
}

/// Human name of a key's algorithm and size.
fn algorithm_name(alg: PublicKeyAlgorithm, params: &PublicParams) -> String {
    match params {
        PublicParams::RSA(_) => {
            // The public parameters start with the MPI `n`, whose first two bytes are its bit count.
            let bits = pgp::ser::Serialize::to_bytes(params).ok().filter(|b| b.len() >= 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            match bits {
                Some(bits) => format!("RSA {bits}"),
                None => "RSA".into(),
            }
        }
        PublicParams::ECDH(p) => format!("ECDH {}", p.curve().name().trim_end_matches("Legacy")),
        PublicParams::ECDSA(p) => format!("ECDSA {}", p.curve().name()),
        PublicParams::EdDSALegacy(_) => "EdDSA Ed25519".into(),
        _ => format!("{alg:?}"),
    }
}

/// Whether flags (from the newest binding or self-signature) and the algorithm allow encryption.
fn may_encrypt(alg: PublicKeyAlgorithm, flags: &KeyFlags, has_flags: bool) -> bool {
    alg.can_encrypt() && (!has_flags || flags.encrypt_comms() || flags.encrypt_storage())
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| c.hashed_subpackets().any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_))))
}

/// Check the key as of `now` and choose the (sub)key to encrypt to: the newest valid subkey that
/// may encrypt (what GnuPG picks), else the primary key if it may.
fn check(key: SignedPublicKey, now: DateTime<Utc>) -> Result<RecipientKey, KeyParseError> {
    let primary = &key.primary_key;
    let fingerprint = format!("{:X}", primary.fingerprint());
    let key_id = hex::encode_upper(primary.legacy_key_id().as_ref());

    // Self-signatures that verify: user ID certifications and direct-key signatures.
    let mut user_ids = Vec::new();
    let mut self_sigs: Vec<(&Signature, bool)> = Vec::new();
    for user in &key.details.users {
        let verified: Vec<&Signature> =
            user.signatures.iter().filter(|s| s.verify_certification(primary, Tag::UserId, &user.id).is_ok()).collect();
        let (revocations, certs): (Vec<&Signature>, Vec<&Signature>) =
            verified.into_iter().partition(|s| s.typ() == Some(SignatureType::CertRevocation));
        let newest_cert = certs.iter().map(|s| created(s)).max();
        // A user ID its owner revoked after certifying it no longer speaks for the key.
        if newest_cert.is_none_or(|c| revocations.iter().any(|r| created(r) >= c)) {
            continue;
        }
        user_ids.push(String::from_utf8_lossy(user.id.id()).into_owned());
        self_sigs.extend(certs.into_iter().map(|s| (s, s.is_primary())));
    }
    let direct: Vec<&Signature> = key.details.direct_signatures.iter().filter(|s| s.verify_key(primary).is_ok()).collect();
    if self_sigs.is_empty() && direct.is_empty() {
        return Err(KeyParseError::NoSelfSignature { fingerprint });
    }
    if key.details.revocation_signatures.iter().any(|s| s.verify_key(primary).is_ok()) {
        return Err(KeyParseError::Revoked { fingerprint });
    }
    // The newest self-signature speaks for the key (one on the primary user ID first).
    let newest_uid = self_sigs.iter().max_by_key(|(s, is_primary)| (*is_primary, created(s))).map(|(s, _)| *s);
    let newest_direct = direct.iter().copied().max_by_key(|s| created(s));
    let expires =
        newest_uid.and_then(|s| expiry(primary.created_at(), s)).or_else(|| newest_direct.and_then(|s| expiry(primary.created_at(), s)));
    if let Some(expired) = expires.filter(|e| *e <= now) {
        return Err(KeyParseError::Expired { fingerprint, expired });
    }
    let algorithm = algorithm_name(primary.algorithm(), primary.public_params());

    // Subkeys: the newest valid binding decides flags and expiry; a valid revocation ends it.
    let mut why_not = Vec::new();
    let mut best: Option<(usize, &SignedPublicSubKey, Option<DateTime<Utc>>)> = None;
    for (i, sub) in key.public_subkeys.iter().enumerate() {
        let sub_fp = format!("{:X}", sub.key.fingerprint());
        let valid: Vec<&Signature> = sub.signatures.iter().filter(|s| s.verify_subkey_binding(primary, &sub.key).is_ok()).collect();
        if valid.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation)) {
            why_not.push(format!("subkey {sub_fp} is revoked"));
            continue;
        }
        let Some(binding) = valid.iter().filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)).max_by_key(|s| created(s)) else {
            continue;
        };
        if !may_encrypt(sub.key.algorithm(), &binding.key_flags(), has_key_flags(binding)) {
            continue;
        }
        let sub_expires = expiry(sub.key.created_at(), binding);
        if let Some(e) = sub_expires.filter(|e| *e <= now) {
            why_not.push(format!("encryption subkey {sub_fp} expired on {e}"));
            continue;
        }
        if best.as_ref().is_none_or(|(_, b, _)| sub.key.created_at().as_secs() >= b.key.created_at().as_secs()) {
            best = Some((i, sub, sub_expires));
        }
    }
    let (target, encryption_fingerprint, encryption_algorithm, encryption_expires) = match best {
        Some((i, sub, e)) => {
            (Target::Subkey(i), format!("{:X}", sub.key.fingerprint()), algorithm_name(sub.key.algorithm(), sub.key.public_params()), e)
        }
        None => {
            let flags_sig = newest_uid.or(newest_direct);
            let (flags, has) = flags_sig.map(|s| (s.key_flags(), has_key_flags(s))).unwrap_or_default();
            if !may_encrypt(primary.algorithm(), &flags, has) {
                if why_not.is_empty() {
                    why_not.push(format!("neither the primary key ({algorithm}) nor a subkey is marked for encryption"));
                }
                return Err(KeyParseError::CannotEncrypt { fingerprint, why: why_not.join("; ") });
            }
            (Target::Primary, fingerprint.clone(), algorithm.clone(), None)
        }
    };
    let info = PublicKeyInfo {
        fingerprint,
        key_id,
        user_ids,
        algorithm,
        created: time(primary.created_at()),
        expires,
        can_encrypt: true,
        encryption_fingerprint,
        encryption_algorithm,
        encryption_expires,
    };
    Ok(RecipientKey { info, key, target })
}

/// Encrypt everything `reader` gives to every recipient, streaming into `writer`: one SEIPD v1
/// message (AES-256), binary or ASCII-armored. Memory stays bounded whatever the size.
pub fn encrypt<R: Read, W: Write>(reader: R, writer: W, recipients: &[RecipientKey], armor: bool) -> Result<(), EncryptError> {
    encrypt_at(reader, writer, recipients, armor, Utc::now())
}

/// [`encrypt`], with the keys' validity judged as of `now`.
pub fn encrypt_at<R: Read, W: Write>(
    reader: R,
    writer: W,
    recipients: &[RecipientKey],
    armor: bool,
    now: DateTime<Utc>,
) -> Result<(), EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    for r in recipients {
        if let Some(expired) = r.expires().filter(|e| *e <= now) {
            return Err(EncryptError::KeyExpired { fingerprint: r.info.fingerprint.clone(), expired });
        }
    }
    let mut rng = aes_gcm::aead::OsRng;
    let mut builder = MessageBuilder::from_reader("", reader).seipd_v1(rng, SymmetricKeyAlgorithm::AES256);
    builder.partial_chunk_size(PARTIAL_CHUNK)?;
    for r in recipients {
        match r.target {
            Target::Primary => builder.encrypt_to_key(&mut rng, &r.key.primary_key)?,
            Target::Subkey(i) => builder.encrypt_to_key(&mut rng, &r.key.public_subkeys[i].key)?,
        };
    }
    if armor {
        builder.to_armored_writer(rng, ArmorOptions::default(), writer)?
    } else {
        builder.to_writer(rng, writer)?
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_key() {
        for input in
            [&b"hello, this is not a key"[..], b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"]
        {
            let e = parse_public_key(input).unwrap_err();
            assert!(matches!(e, KeyParseError::NotOpenPgp { .. }), "{e:?}");
        }
        assert_eq!(parse_public_key(b"  \n").unwrap_err(), KeyParseError::Empty);
        let big = vec![b'a'; MAX_KEY_BYTES + 1];
        assert_eq!(parse_public_key(&big).unwrap_err(), KeyParseError::TooLarge { size: MAX_KEY_BYTES + 1 });
    }

    #[test]
    fn upstream_messages_are_cut_to_one_short_line() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        let s = short(&long);
        assert_eq!(s.chars().count(), 161);
        assert!(!s.contains('\n'));
    }

    #[test]
    fn no_recipients_is_an_error() {
        let e = encrypt(&b"data"[..], Vec::new(), &[], false).unwrap_err();
        assert!(matches!(e, EncryptError::NoRecipients));
    }

    #[test]
    fn secret_key_packets_are_known_by_their_first_byte() {
        // Old-format headers (0x95: tag 5, two-byte length; 0x9d: tag 7) and new-format ones.
        for ctb in [0x95, 0x94, 0x9d, 0xc5, 0xc7] {
            assert!(first_packet_is_secret_key(ctb), "{ctb:#x}");
            assert_eq!(parse_public_key(&[ctb, 0, 0, 0]).unwrap_err(), KeyParseError::SecretKey);
        }
        // Public key (tag 6), public subkey (14), and text.
        for ctb in [0x99, 0x98, 0xc6, 0xce, b'-'] {
            assert!(!first_packet_is_secret_key(ctb), "{ctb:#x}");
        }
    }
}
