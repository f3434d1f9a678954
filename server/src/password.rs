//! Server-side hashing of the clients' auth keys with Argon2id.
//!
//! The client never sends its password: it sends `auth_key`, 32 bytes derived from the
//! password with Argon2id and HKDF. The server stores `Argon2id(auth_key)` with its own random
//! salt as a PHC string, so a copy of the database is not enough to log in. Parameters follow
//! the OWASP Password Storage Cheat Sheet minimum (19 MiB, 2 passes, 1 lane): the input is
//! already a high-entropy key, so this hash guards against reuse of a leaked database rather
//! than against guessing. Hashing runs in `spawn_blocking` to keep the async runtime free.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use common::OsRng;
use rand_core::RngCore;
use zeroize::Zeroizing;

/// Memory cost of the server's Argon2id, in KiB.
pub const SERVER_M_KIB: u32 = 19_456;
/// Time cost (passes) of the server's Argon2id.
pub const SERVER_T: u32 = 2;
/// Parallelism (lanes) of the server's Argon2id.
pub const SERVER_P: u32 = 1;

/// Hashing failed: bad parameters, a malformed stored hash, or a lost blocking task.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 crate refused its input.
    #[error("argon2 error: {0}")]
    Argon2(argon2::password_hash::Error),
    /// The blocking task panicked or was cancelled.
    #[error("hashing task failed")]
    Task(#[from] tokio::task::JoinError),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(SERVER_M_KIB, SERVER_T, SERVER_P, None)
        .map_err(|error| PasswordError::Argon2(error.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(auth_key: &[u8]) -> Result<String, PasswordError> {
    let mut salt_bytes = [0u8; 16];
    OsRng.fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(PasswordError::Argon2)?;
    let hash = hasher()?
        .hash_password(auth_key, &salt)
        .map_err(PasswordError::Argon2)?;
    Ok(hash.to_string())
}

fn verify_blocking(auth_key: &[u8], stored_hash: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored_hash).map_err(PasswordError::Argon2)?;
    match hasher()?.verify_password(auth_key, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(error) => Err(PasswordError::Argon2(error)),
    }
}

/// Hashes a 32-byte auth key into an Argon2id PHC string with a fresh random salt.
///
/// # Errors
/// [`PasswordError`] when hashing fails.
pub async fn hash_auth_key(auth_key: [u8; 32]) -> Result<String, PasswordError> {
    let auth_key = Zeroizing::new(auth_key);
    tokio::task::spawn_blocking(move || hash_blocking(auth_key.as_ref())).await?
}

/// Checks an auth key against a stored PHC string; `Ok(false)` for a wrong key.
///
/// # Errors
/// [`PasswordError`] when the stored string is malformed or hashing fails.
pub async fn verify_auth_key(
    auth_key: [u8; 32],
    stored_hash: String,
) -> Result<bool, PasswordError> {
    let auth_key = Zeroizing::new(auth_key);
    tokio::task::spawn_blocking(move || verify_blocking(auth_key.as_ref(), &stored_hash)).await?
}

/// A hash of a random key, to verify against when the username is unknown.
///
/// # Errors
/// [`PasswordError`] when hashing fails.
pub async fn dummy_hash() -> Result<String, PasswordError> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    hash_auth_key(*key).await
}
