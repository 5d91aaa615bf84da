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
    /// The file appears whole or not at all (written aside, then linked into place), so a
    /// process starting beside another never reads it half-written; an empty one is refused
    /// rather than used as a secret.
    pub fn load(secret: Option<&str>, file: &Path) -> Result<Self> {
        if let Some(secret) = secret {
            return Ok(Self::new(secret));
        }
        if let Some(stored) = read_key_file(file)? {
            return Ok(Self::new(&stored));
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        write_private(file, &hex::encode(bytes))
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", file.display())))?;
        // Read back: when two processes start at once, the file that won is the secret.
        let stored = read_key_file(file)?
            .ok_or_else(|| Error::internal(format!("{} vanished", file.display())))?;
        tracing::info!(file = %file.display(), "server secret ready");
        Ok(Self::new(&stored))
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

/// The key file's secret; `None` when there is no file. An empty file is an error: using it
/// would make every sealed key depend on an empty secret.
fn read_key_file(file: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Err(Error::internal(format!(
            "the key file {} is empty: set TOKENMETER_SECRET, or delete the file to have a new \
             secret made (LiteLLM keys sealed with the old one then cannot be opened)",
            file.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::internal(format!(
            "cannot read {}: {e}",
            file.display()
        ))),
    }
}

/// Writes `text` to a private file beside `file`, then links it into place: `file` appears
/// complete or not at all, and an existing one (another instance's) is never replaced.
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let aside = file.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&aside).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&aside, file) {
        // Another instance linked its file first: that one is the secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&aside);
    linked
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
        // Only the key file is left in the folder (nothing written aside remains).
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.key")]);
    }

    #[test]
    fn an_empty_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        std::fs::write(&file, "  \n").unwrap();
        let err = SecretBox::load(None, &file).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "  \n",
            "left as it was"
        );
    }

    #[test]
    fn processes_starting_together_share_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.key");
        let boxes: Vec<SecretBox> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| SecretBox::load(None, &file).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = boxes[0].seal(b"k");
        for b in &boxes {
            assert_eq!(b.open(&sealed).unwrap(), b"k");
        }
    }
}
