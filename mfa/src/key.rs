//! The key under which second factors are kept: 32 random bytes outside the database, under
//! which TOTP secrets are sealed and recovery codes MACed, so a copy of the database alone
//! reveals neither. In the chat server's own process it is the chat server's key
//! (`--server-key`, or the file `server.key` next to the SQLite file); `mfa-service` has its
//! own (`--key`, `--key-file`, by default `mfa.key` next to its database). A key file is
//! created with mode 0600 on first start.
//!
//! Each use derives its own subkey with HKDF-SHA256 (RFC 5869) and a label, so a sealing key
//! is never also a MAC key.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::primitives::{hkdf_sha256, secretbox_open_prefixed, secretbox_seal_random, KEY_LEN};
use common::OsRng;
use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    /// `--server-key` is not standard base64 of exactly 32 bytes.
    #[error("the server key must be 32 bytes in standard base64")]
    Malformed,
    /// The key file exists but does not hold exactly 32 bytes.
    #[error("the server key file {0} must hold exactly 32 bytes")]
    WrongLength(PathBuf),
    /// The key file could not be read or created.
    #[error("cannot read or create the server key file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// The 32-byte key. Cloning shares it; `Debug` never prints it; it is zeroed when
/// the last clone is dropped.
#[derive(Clone)]
pub struct ServerKey(Arc<Zeroizing<[u8; KEY_LEN]>>);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

impl FromStr for ServerKey {
    type Err = ServerKeyError;

    /// Parses 32 bytes of standard base64 (with padding), as `--server-key` takes them.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| ServerKeyError::Malformed)?,
        );
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ServerKeyError::Malformed)?;
        Ok(Self::from_bytes(key))
    }
}

impl ServerKey {
    /// Wraps 32 known bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Arc::new(Zeroizing::new(bytes)))
    }

    /// Reads the key from `path`, or creates the file with 32 random bytes and mode 0600
    /// when it does not exist. A file readable by others is used but warned about.
    ///
    /// # Errors
    /// [`ServerKeyError::Io`] when the file cannot be read or created,
    /// [`ServerKeyError::WrongLength`] when it does not hold 32 bytes.
    pub fn load_or_create(path: &Path) -> Result<Self, ServerKeyError> {
        let io_error = |source| ServerKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut candidate = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(candidate.as_mut());
        match create_private_file(path) {
            Ok(mut file) => {
                file.write_all(candidate.as_slice())
                    .and_then(|()| file.sync_all())
                    .map_err(io_error)?;
                tracing::info!(path = %path.display(), "created a new server key");
                return Ok(Self::from_bytes(*candidate));
            }
            // Another server made it first, or it was there all along: read it.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io_error(error)),
        }
        warn_if_readable_by_others(path);
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io_error)?);
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ServerKeyError::WrongLength(path.to_path_buf()))?;
        Ok(Self::from_bytes(key))
    }

    /// The subkey for one use: `HKDF-SHA256(ikm = server key, salt = "", info = label)`.
    fn subkey(&self, label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut subkey = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so this cannot fail.
        if hkdf_sha256(self.0.as_slice(), b"", label, subkey.as_mut()).is_err() {
            unreachable!("hkdf expands 32 bytes");
        }
        subkey
    }

    /// Seals `plaintext` under the subkey for `label` with XSalsa20-Poly1305 and a random
    /// nonce: `nonce(24) || tag(16) || ciphertext`.
    pub fn seal(&self, label: &[u8], plaintext: &[u8]) -> Vec<u8> {
        secretbox_seal_random(&self.subkey(label), plaintext, &mut OsRng)
    }

    /// Opens what [`ServerKey::seal`] made with the same label; `None` when it was made under
    /// another key or label, or was changed.
    pub fn open(&self, label: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        secretbox_open_prefixed(&self.subkey(label), sealed).ok()
    }

    /// HMAC-SHA256 (RFC 2104) under the subkey for `label` of the parts, each preceded by
    /// its length as 4 bytes big-endian so that no two part lists collide.
    pub fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.subkey(label).as_slice())
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        for part in parts {
            let length = u32::try_from(part.len()).unwrap_or(u32::MAX);
            mac.update(&length.to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Creates `path` (and its directory) for writing, failing when it exists; on Unix with mode
/// 0600, so only the server's user can read the key.
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the server key file is readable by others");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_read_back_the_same() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("nested").join("server.key");
        let first = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(first.0.as_slice(), second.0.as_slice());
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("server.key");
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path),
            Err(ServerKeyError::WrongLength(_))
        ));
    }

    #[test]
    fn base64_keys_parse_and_never_print() {
        let key: ServerKey = STANDARD.encode([9u8; 32]).parse().unwrap();
        assert_eq!(format!("{key:?}"), "ServerKey([redacted])");
        assert!("AAAA".parse::<ServerKey>().is_err());
        assert!("not base64!".parse::<ServerKey>().is_err());
    }

    #[test]
    fn sealing_is_bound_to_the_key_and_the_label() {
        let key = ServerKey::from_bytes([1; 32]);
        let sealed = key.seal(b"label", b"secret");
        assert_eq!(key.open(b"label", &sealed).unwrap().as_slice(), b"secret");
        assert!(key.open(b"other label", &sealed).is_none());
        assert!(ServerKey::from_bytes([2; 32])
            .open(b"label", &sealed)
            .is_none());
    }

    #[test]
    fn macs_separate_labels_and_part_boundaries() {
        let key = ServerKey::from_bytes([1; 32]);
        let mac = key.mac(b"label", &[b"ab", b"c"]);
        assert_eq!(mac, key.mac(b"label", &[b"ab", b"c"]));
        assert_ne!(mac, key.mac(b"label", &[b"a", b"bc"]));
        assert_ne!(mac, key.mac(b"other", &[b"ab", b"c"]));
    }
}
