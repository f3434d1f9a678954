//! Thin, typed wrappers over the RustCrypto primitives the protocol uses.
//!
//! Nothing here implements a primitive: each function calls the crate named in
//! docs/PROTOCOL.md section 1 and fixes the shapes (key and nonce sizes, output layout) so the
//! rest of the crate cannot get them wrong. Layouts follow libsodium: a secretbox ciphertext is
//! `tag(16) || encrypted bytes`, a sealed box is `ephemeral_public(32) || tag(16) || encrypted
//! bytes` (libsodium `crypto_secretbox_easy` and `crypto_box_seal` documentation).

use argon2::{Algorithm, Argon2, Params, Version};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use xsalsa20poly1305::aead::{Aead, KeyInit};
use xsalsa20poly1305::XSalsa20Poly1305;
use zeroize::Zeroizing;

/// Length of every symmetric key, X25519 key and SHA-256 digest, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an XSalsa20 nonce, in bytes.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the ephemeral public key and tag a sealed box adds to its plaintext, in bytes.
pub const SEAL_OVERHEAD: usize = KEY_LEN + TAG_LEN;

/// A primitive refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrimitiveError {
    /// Authentication failed: wrong key, or the ciphertext or nonce was changed.
    #[error("decryption failed: wrong key or tampered ciphertext")]
    Decrypt,
    /// The input is shorter than the fixed overhead of its format.
    #[error("ciphertext is too short")]
    TooShort,
    /// An X25519 public key is of low order, so Diffie-Hellman with it yields no secret.
    #[error("x25519 public key has low order")]
    LowOrderKey,
    /// Argon2id parameters the `argon2` crate refuses (for example a salt under 8 bytes).
    #[error("argon2id parameters are invalid")]
    Argon2Params,
}

/// SHA-256 of `input` (FIPS 180-4).
pub fn sha256(input: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(input).into()
}

/// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and `info`, filling `output`.
///
/// An empty `salt` is the RFC's default of 32 zero bytes (HMAC pads keys with zeros).
/// `output` may be at most 255 * 32 bytes; longer requests are a programming error and
/// return [`PrimitiveError::TooShort`].
pub fn hkdf_sha256(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    output: &mut [u8],
) -> Result<(), PrimitiveError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, output)
        .map_err(|_| PrimitiveError::TooShort)
}

/// Argon2id version 0x13 (RFC 9106) of `password` and `salt`, filling `output`.
///
/// `memory_kib` is in KiB, `iterations` is the time cost `t`, `parallelism` the lanes `p`.
/// This applies no policy of its own: callers enforce the protocol's bounds
/// ([`crate::account::KdfParams::check`]).
pub fn argon2id(
    password: &[u8],
    salt: &[u8],
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    output: &mut [u8],
) -> Result<(), PrimitiveError> {
    let params = Params::new(memory_kib, iterations, parallelism, Some(output.len()))
        .map_err(|_| PrimitiveError::Argon2Params)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, output)
        .map_err(|_| PrimitiveError::Argon2Params)
}

/// XSalsa20-Poly1305 with an explicit nonce: returns `tag(16) || encrypted bytes`.
pub fn secretbox_encrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = XSalsa20Poly1305::new(key.into());
    // XSalsa20-Poly1305 over a growable Vec fails only if the buffer cannot grow, which Vec
    // reports by aborting instead; an Err here would be a bug in the crate. Fail loudly
    // rather than hand back an empty "ciphertext" that would silently lose the data.
    cipher
        .encrypt(nonce.into(), plaintext)
        .unwrap_or_else(|_| unreachable!("xsalsa20poly1305 encryption into a Vec cannot fail"))
}

/// Opens `tag(16) || encrypted bytes` made by [`secretbox_encrypt`].
///
/// # Errors
/// [`PrimitiveError::TooShort`] under 16 bytes, [`PrimitiveError::Decrypt`] when the tag
/// does not verify.
pub fn secretbox_decrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    if ciphertext.len() < TAG_LEN {
        return Err(PrimitiveError::TooShort);
    }
    XSalsa20Poly1305::new(key.into())
        .decrypt(nonce.into(), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| PrimitiveError::Decrypt)
}

/// Encrypts with a fresh random nonce and returns `nonce(24) || tag(16) || encrypted bytes`.
pub fn secretbox_seal_random(
    key: &[u8; KEY_LEN],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    out.extend(secretbox_encrypt(key, &nonce, plaintext));
    out
}

/// Opens `nonce(24) || tag(16) || encrypted bytes` made by [`secretbox_seal_random`].
///
/// # Errors
/// As [`secretbox_decrypt`].
pub fn secretbox_open_prefixed(
    key: &[u8; KEY_LEN],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(PrimitiveError::TooShort);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut nonce_array = [0u8; NONCE_LEN];
    nonce_array.copy_from_slice(nonce);
    secretbox_decrypt(key, &nonce_array, ciphertext)
}

/// Checks that an X25519 public key is not of low order (RFC 7748 section 6.1).
///
/// The key is multiplied by a fixed clamped scalar, which is a multiple of the cofactor 8:
/// the result is the all-zero point exactly when the key lies in the small subgroup (the
/// points libsodium lists in `crypto_scalarmult/curve25519/ref10/x25519_ref10.c`, and their
/// non-canonical encodings), which are the keys whose Diffie-Hellman output is all zero.
///
/// # Errors
/// [`PrimitiveError::LowOrderKey`] for such a key.
pub fn check_x25519_public_key(key: &[u8; KEY_LEN]) -> Result<(), PrimitiveError> {
    const PROBE_SCALAR: [u8; KEY_LEN] = [0x5a; KEY_LEN];
    let product = MontgomeryPoint(*key).mul_clamped(PROBE_SCALAR);
    if product.to_bytes() == [0u8; KEY_LEN] {
        Err(PrimitiveError::LowOrderKey)
    } else {
        Ok(())
    }
}

/// libsodium `crypto_box_seal`: seals `plaintext` to `recipient` with a fresh ephemeral key.
///
/// # Errors
/// [`PrimitiveError::LowOrderKey`] when `recipient` is of low order.
pub fn sealed_box_seal(
    recipient: &[u8; KEY_LEN],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, PrimitiveError> {
    check_x25519_public_key(recipient)?;
    crypto_box::PublicKey::from(*recipient)
        .seal(rng, plaintext)
        .map_err(|_| PrimitiveError::Decrypt)
}

/// libsodium `crypto_box_seal_open`: opens a sealed box with the recipient's secret key.
///
/// The ephemeral public key in the first 32 bytes is checked for low order first, because
/// `crypto_box` 0.9 would otherwise accept it and derive a key known to anyone.
///
/// # Errors
/// [`PrimitiveError::TooShort`], [`PrimitiveError::LowOrderKey`] or
/// [`PrimitiveError::Decrypt`].
pub fn sealed_box_open(
    recipient_secret: &crypto_box::SecretKey,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(PrimitiveError::TooShort);
    }
    let mut ephemeral = [0u8; KEY_LEN];
    ephemeral.copy_from_slice(&sealed[..KEY_LEN]);
    check_x25519_public_key(&ephemeral)?;
    recipient_secret
        .unseal(sealed)
        .map(Zeroizing::new)
        .map_err(|_| PrimitiveError::Decrypt)
}

/// libsodium `crypto_box_easy`: authenticated encryption from `secret` to `public` with an
/// explicit nonce, returning `tag(16) || encrypted bytes`. Used only to check the box
/// primitive beneath the sealed box against libsodium's vectors.
///
/// # Errors
/// [`PrimitiveError::LowOrderKey`] when `public` is of low order.
pub fn box_encrypt(
    public: &[u8; KEY_LEN],
    secret: &crypto_box::SecretKey,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, PrimitiveError> {
    check_x25519_public_key(public)?;
    let salsa_box = crypto_box::SalsaBox::new(&crypto_box::PublicKey::from(*public), secret);
    salsa_box
        .encrypt(nonce.into(), plaintext)
        .map_err(|_| PrimitiveError::Decrypt)
}

/// Opens the output of [`box_encrypt`] (libsodium `crypto_box_open_easy`).
///
/// # Errors
/// [`PrimitiveError::LowOrderKey`], [`PrimitiveError::TooShort`] or [`PrimitiveError::Decrypt`].
pub fn box_decrypt(
    public: &[u8; KEY_LEN],
    secret: &crypto_box::SecretKey,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    check_x25519_public_key(public)?;
    if ciphertext.len() < TAG_LEN {
        return Err(PrimitiveError::TooShort);
    }
    let salsa_box = crypto_box::SalsaBox::new(&crypto_box::PublicKey::from(*public), secret);
    salsa_box
        .decrypt(nonce.into(), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| PrimitiveError::Decrypt)
}

/// Fills a fresh array with random bytes from `rng`.
pub fn random_bytes<const N: usize>(rng: &mut impl CryptoRngCore) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

/// X25519 Diffie-Hellman (RFC 7748 section 5): `secret` (clamped) times `public`.
///
/// # Errors
/// [`PrimitiveError::LowOrderKey`] when the output is all zero, as libsodium's
/// `crypto_scalarmult` does.
pub fn x25519(
    secret: &[u8; KEY_LEN],
    public: &[u8; KEY_LEN],
) -> Result<[u8; KEY_LEN], PrimitiveError> {
    let shared = MontgomeryPoint(*public).mul_clamped(*secret).to_bytes();
    if shared == [0u8; KEY_LEN] {
        Err(PrimitiveError::LowOrderKey)
    } else {
        Ok(shared)
    }
}

/// The X25519 public key of `secret` (RFC 7748: the clamped scalar times the base point 9).
pub fn x25519_public(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    *crypto_box::SecretKey::from(*secret).public_key().as_bytes()
}
