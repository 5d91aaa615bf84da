//! Encryption at rest for the users' LiteLLM keys: ChaCha20-Poly1305 with a key derived from
//! the server secret. A sealed value is `nonce (12 bytes) || ciphertext+tag`; a database dump
//! without the secret reveals no key, and a tampered value fails to open.

use crate::server::error::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From any secret text (hashed to a 256-bit key).
    pub fn new(secret: &str) -> Self {
        let key = Sha256::digest(secret.as_bytes());
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// From `TOKENMETER_SECRET` when set, else from the key file, which is created (random,
    /// mode 0600) on first start. Several instances on one database must share the secret.
    pub fn load(secret: Option<&str>, file: &Path) -> Result<Self> {
        if let Some(secret) = secret {
            return Ok(Self::new(secret));
        }
        match std::fs::read_to_string(file) {
            Ok(text) if !text.trim().is_empty() => return Ok(Self::new(text.trim())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::internal(format!(
                    "cannot read {}: {e}",
                    file.display()
                )))
            }
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        write_private(file, &secret)
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", file.display())))?;
        // Read back: when two processes start at once, the file that won is the secret.
        let stored = std::fs::read_to_string(file)
            .map_err(|e| Error::internal(format!("cannot read {}: {e}", file.display())))?;
        tracing::info!(file = %file.display(), "server secret ready");
        Ok(Self::new(stored.trim()))
    }

    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = nonce.to_vec();
        sealed.extend(
            self.cipher
                .encrypt(Nonce::from_slice(&nonce), plain)
                .expect("ChaCha20-Poly1305 encryption does not fail for in-memory input"),
        );
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return Err(Error::internal("sealed value too short"));
        }
        let (nonce, body) = sealed.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| {
                Error::internal("cannot decrypt a stored key: was TOKENMETER_SECRET changed?")
            })
    }
}

fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(mut f) => f.write_all(text.as_bytes()),
        // Another instance created it a moment ago: fine, the caller reads it next time.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering_or_another_secret() {
        let a = SecretBox::new("one secret");
        let sealed = a.seal(b"sk-abc");
        assert_ne!(&sealed[12..], b"sk-abc");
        assert_ne!(a.seal(b"sk-abc"), sealed, "a fresh nonce each time");
        assert_eq!(a.open(&sealed).unwrap(), b"sk-abc");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(a.open(&tampered).is_err());
        assert!(SecretBox::new("another").open(&sealed).is_err());
        assert!(a.open(b"short").is_err());
    }

    #[test]
    fn creates_the_key_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/secret.key");
        let first = SecretBox::load(None, &file).unwrap();
        let sealed = first.seal(b"k");
        let again = SecretBox::load(None, &file).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let explicit = SecretBox::load(Some("s"), &file).unwrap();
        assert!(explicit.open(&sealed).is_err());
    }
}
