//! OpenSSH fingerprints of host keys written as text: the `TrustedHostKeys` of a Transfer
//! Family connector hold public keys as `ssh-keyscan` prints them (`[host] algorithm base64
//! [comment]`), and the destination pins a `SHA256:...` fingerprint.

use russh::keys::{HashAlg, PublicKey};

/// A trusted host key with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The 32 bytes of the SHA-256.
    pub digest: [u8; 32],
}

/// The key of one OpenSSH public key line: `algorithm base64 [comment]`, optionally after a
/// host name as `ssh-keyscan` and `known_hosts` write it. `None` when no part of the line is
/// a public key.
pub fn parse_key_line(line: &str) -> Option<TrustedKey> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    (0..tokens.len().min(2)).find_map(|skip| {
        let rest = tokens[skip..].join(" ");
        let key = PublicKey::from_openssh(&rest).ok()?;
        let fp = key.fingerprint(HashAlg::Sha256);
        let digest: [u8; 32] = fp.as_bytes().try_into().ok()?;
        Some(TrustedKey { algorithm: key.algorithm().as_str().to_string(), fingerprint: fp.to_string(), digest })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICc2KoPFd4lB/ScVaydMbS+bMdpZJj6MyXx9QWSWYer6";
    /// What `ssh-keygen -lf` prints for [`KEY`].
    const KEY_FINGERPRINT: &str = "SHA256:HClmBNDgoa9KXLV0+cO4tvv3vWYSHjXW+1KPz4DKSdg";

    #[test]
    fn key_lines_in_the_forms_openssh_writes() {
        let plain = parse_key_line(KEY).unwrap();
        assert_eq!(plain.algorithm, "ssh-ed25519");
        assert_eq!(plain.fingerprint, KEY_FINGERPRINT);
        assert_eq!(parse_key_line(&format!("{KEY} root@sftp")).unwrap(), plain);
        assert_eq!(parse_key_line(&format!("[sftp.example.com]:2222 {KEY}")).unwrap(), plain);
        assert_eq!(crate::deliver::sftp::parse_fingerprint(&plain.fingerprint), Some(plain.digest));
    }

    #[test]
    fn text_that_is_no_key_is_none() {
        for bad in ["", "ssh-ed25519", "ssh-ed25519 AAAA", "SHA256:abc", "host ssh-rsa notbase64!"] {
            assert_eq!(parse_key_line(bad), None, "{bad}");
        }
    }
}
