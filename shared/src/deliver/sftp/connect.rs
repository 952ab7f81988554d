//! The SSH side of an SFTP delivery: connect, check the server's host key against the pin,
//! authenticate, and start the SFTP subsystem.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use russh::client::{self, AuthResult};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;

use super::{SftpAuth, SftpConfig, SftpTimeouts, parse_fingerprint};
use crate::deliver::DeliverError;

/// The key the server presented.
#[derive(Debug, Clone)]
pub(super) struct HostKey {
    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
}

/// SFTP extensions the server announced that the upload uses.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Extensions {
    /// `posix-rename@openssh.com`: rename over an existing file atomically.
    pub posix_rename: bool,
    /// `fsync@openssh.com`: flush a file to stable storage before the rename.
    pub fsync: bool,
    /// `limits@openssh.com`: the largest write the server accepts.
    pub max_write_len: Option<u64>,
}

/// An authenticated SSH connection with an SFTP session on it.
pub(super) struct Session {
    handle: client::Handle<PinnedHostKey>,
    pub sftp: RawSftpSession,
    pub host_key: HostKey,
    /// The server's SSH identification string (`SSH-2.0-OpenSSH_9.6`).
    pub banner: Option<String>,
    pub extensions: Extensions,
}

impl Session {
    /// End the SFTP session and the connection; failures here change nothing delivered.
    pub async fn close(&self) {
        let _ = self.sftp.close_session();
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Accepts the server only when its host key has the pinned fingerprint; remembers what it saw
/// so that a refusal can name both fingerprints.
struct PinnedHostKey {
    pin: [u8; 32],
    seen: Arc<Mutex<Option<HostKey>>>,
    banner: Arc<Mutex<Option<String>>>,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let data = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key(),
        };
        let fingerprint = data.fingerprint(HashAlg::Sha256);
        let matches = fingerprint.as_bytes() == self.pin;
        let seen = HostKey { fingerprint: fingerprint.to_string(), algorithm: data.algorithm().as_str().to_string() };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        Ok(matches)
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        _names: &russh::Names,
        session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if let Ok(mut slot) = self.banner.lock() {
            *slot = Some(String::from_utf8_lossy(session.remote_sshid()).trim().to_string());
        }
        Ok(())
    }
}

/// Connect, check the host key, log in and open the SFTP subsystem.
pub(super) async fn open(cfg: &SftpConfig, auth: &SftpAuth, timeouts: SftpTimeouts, target: &str) -> Result<Session, DeliverError> {
    let pin = parse_fingerprint(&cfg.host_key)
        .ok_or_else(|| DeliverError::permanent(format!("{target}: the pinned host key {:?} is not a SHA256 fingerprint", cfg.host_key)))?;
    let seen = Arc::new(Mutex::new(None::<HostKey>));
    let banner = Arc::new(Mutex::new(None::<String>));
    let handler = PinnedHostKey { pin, seen: seen.clone(), banner: banner.clone() };
    let config = Arc::new(client::Config {
        // A server that stops answering without closing the connection is noticed within
        // about three keepalive intervals.
        keepalive_interval: Some(timeouts.request.min(std::time::Duration::from_secs(15))),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let seen_key = || seen.lock().ok().and_then(|s| s.clone());

    let connected = tokio::time::timeout(timeouts.connect, client::connect(config, (cfg.host.as_str(), cfg.port), handler)).await;
    let mut handle = match connected {
        Err(_) => {
            return Err(DeliverError::transient(format!("{target}: no SSH connection within {} s", timeouts.connect.as_secs_f64())));
        }
        Ok(Err(err)) => {
            if let Some(key) = seen_key().filter(|k| parse_fingerprint(&k.fingerprint) != Some(pin)) {
                return Err(host_key_mismatch(target, &cfg.host_key, &key));
            }
            return Err(ssh_error(target, "SSH connection failed", &err));
        }
        Ok(Ok(handle)) => handle,
    };
    let host_key = seen_key().ok_or_else(|| DeliverError::transient(format!("{target}: the server presented no host key")))?;
    if parse_fingerprint(&host_key.fingerprint) != Some(pin) {
        return Err(host_key_mismatch(target, &cfg.host_key, &host_key));
    }
    let banner = banner.lock().ok().and_then(|b| b.clone());

    let step = |what: &'static str| {
        move |_| DeliverError::transient(format!("{target}: {what}: no answer within {} s", timeouts.request.as_secs_f64()))
    };
    let result = match auth {
        SftpAuth::Password(password) => tokio::time::timeout(timeouts.request, handle.authenticate_password(&cfg.username, password))
            .await
            .map_err(step("password authentication"))?,
        SftpAuth::PrivateKey { openssh_pem, passphrase } => {
            // The key parser's messages are not repeated: nothing of the key reaches an error.
            let key = russh::keys::decode_secret_key(openssh_pem, passphrase.as_deref()).map_err(|_| {
                DeliverError::permanent(format!(
                    "{target}: the credential's private key could not be read (not an OpenSSH or PEM private key, or a wrong passphrase)"
                ))
            })?;
            let hash = if key.algorithm().is_rsa() {
                tokio::time::timeout(timeouts.request, handle.best_supported_rsa_hash())
                    .await
                    .map_err(step("RSA signature negotiation"))?
                    .map_err(|e| ssh_error(target, "RSA signature negotiation failed", &e))?
                    .flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            tokio::time::timeout(timeouts.request, handle.authenticate_publickey(&cfg.username, key))
                .await
                .map_err(step("public key authentication"))?
        }
    };
    match result.map_err(|e| ssh_error(target, "authentication failed", &e))? {
        AuthResult::Success => {}
        AuthResult::Failure { remaining_methods, .. } => {
            let methods: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            return Err(DeliverError::permanent(format!(
                "{target}: the server refused {} authentication for user {:?} (methods it accepts: {})",
                auth.method(),
                cfg.username,
                if methods.is_empty() { "none named".to_string() } else { methods.join(", ") }
            )));
        }
    }

    let channel = tokio::time::timeout(timeouts.request, handle.channel_open_session())
        .await
        .map_err(step("opening a session channel"))?
        .map_err(|e| ssh_error(target, "opening a session channel failed", &e))?;
    tokio::time::timeout(timeouts.request, channel.request_subsystem(true, "sftp"))
        .await
        .map_err(step("starting the SFTP subsystem"))?
        .map_err(|e| ssh_error(target, "starting the SFTP subsystem failed", &e))?;
    let sftp_config = russh_sftp::client::Config { request_timeout_secs: timeouts.request.as_secs().max(1), ..Default::default() };
    let sftp = RawSftpSession::new_with_config(channel.into_stream(), sftp_config);
    let version = sftp.init().await.map_err(|e| super::sftp_error(target, "SFTP start", e))?;
    let mut extensions = extensions(&version.extensions);
    if version.extensions.get(russh_sftp::extensions::LIMITS).is_some_and(|v| v == "1")
        && let Ok(limits) = sftp.limits().await
        && limits.max_write_len > 0
    {
        extensions.max_write_len = Some(limits.max_write_len);
    }
    Ok(Session { handle, sftp, host_key, banner, extensions })
}

fn extensions(announced: &HashMap<String, String>) -> Extensions {
    let has = |name: &str| announced.get(name).is_some_and(|v| v == "1");
    Extensions { posix_rename: has("posix-rename@openssh.com"), fsync: has(russh_sftp::extensions::FSYNC), max_write_len: None }
}

fn host_key_mismatch(target: &str, pinned: &str, seen: &HostKey) -> DeliverError {
    DeliverError::permanent(format!(
        "{target}: host key mismatch: the server presented {} key {}, the destination pins {}; \
         if the server's key was changed on purpose, pin the new fingerprint",
        seen.algorithm, seen.fingerprint, pinned
    ))
}

/// Classify an SSH-level failure: algorithm mismatches and refused keys are permanent;
/// refused or reset connections, timeouts and disconnects are transient.
fn ssh_error(target: &str, what: &str, err: &russh::Error) -> DeliverError {
    use russh::Error as E;
    let message = format!("{target}: {what}: {err}");
    match err {
        E::NoCommonAlgo { .. } | E::UnknownKey | E::WrongServerSig | E::UnsupportedAuthMethod | E::NoAuthMethod | E::CouldNotReadKey => {
            DeliverError::permanent(message)
        }
        _ => DeliverError::transient(message),
    }
}
