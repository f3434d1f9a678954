//! A user's identity: X25519 and Ed25519 key pairs, the self-signed public identity record,
//! fingerprints and safety numbers (docs/PROTOCOL.md sections 4 and 9).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::primitives::{self, KEY_LEN};
use crate::wire::{Base64, Base64Array};

/// Domain-separation label of the public identity self-signature.
pub const IDENTITY_LABEL: &[u8] = b"e2ee-chat/v1/identity";
/// Domain-separation label of the fingerprint hash.
pub const FINGERPRINT_LABEL: &[u8] = b"e2ee-chat/v1/fingerprint";
/// Longest allowed username, in bytes.
pub const MAX_USERNAME_LEN: usize = 32;
/// Shortest allowed username, in bytes.
pub const MIN_USERNAME_LEN: usize = 3;

/// A key or signature from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// An X25519 public key of low order (RFC 7748 section 6.1).
    #[error("x25519 public key has low order")]
    LowOrderX25519,
    /// Bytes that are not a valid, non-weak Ed25519 public key.
    #[error("invalid ed25519 public key")]
    InvalidEd25519,
    /// A signature that does not verify under `verify_strict`.
    #[error("signature does not verify")]
    BadSignature,
    /// A username outside the allowed alphabet or length.
    #[error("username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'")]
    InvalidUsername,
    /// The record names another user than expected.
    #[error("identity belongs to another user")]
    WrongUser,
}

/// Checks a username: 3 to 32 bytes of lowercase ASCII letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit. The narrow alphabet keeps names unambiguous when read
/// aloud and rules out look-alike characters.
///
/// # Errors
/// [`KeyError::InvalidUsername`].
pub fn validate_username(username: &str) -> Result<(), KeyError> {
    let length_ok = (MIN_USERNAME_LEN..=MAX_USERNAME_LEN).contains(&username.len());
    let alphabet_ok = username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let first_ok = username
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if length_ok && alphabet_ok && first_ok {
        Ok(())
    } else {
        Err(KeyError::InvalidUsername)
    }
}

/// An X25519 public key that has been checked not to be of low order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; KEY_LEN]);

impl X25519PublicKey {
    /// Validates 32 bytes from outside.
    ///
    /// # Errors
    /// [`KeyError::LowOrderX25519`].
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Result<Self, KeyError> {
        primitives::check_x25519_public_key(&bytes).map_err(|_| KeyError::LowOrderX25519)?;
        Ok(Self(bytes))
    }

    /// The 32 raw bytes (RFC 7748 u-coordinate encoding).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey({})", hex::encode(self.0))
    }
}

/// Parses and validates an Ed25519 public key: on the curve and not of small order.
///
/// # Errors
/// [`KeyError::InvalidEd25519`].
pub fn ed25519_public_key(bytes: &[u8; KEY_LEN]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidEd25519)?;
    if key.is_weak() {
        return Err(KeyError::InvalidEd25519);
    }
    Ok(key)
}

/// Verifies an Ed25519 signature with `verify_strict` (rejects non-canonical encodings and
/// small-order components; see the ed25519-dalek documentation).
///
/// # Errors
/// [`KeyError::BadSignature`].
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), KeyError> {
    key.verify_strict(message, signature)
        .map_err(|_| KeyError::BadSignature)
}

/// A member's two public keys as a membership log records them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MemberKeys {
    /// Receives sealed room keys.
    pub x25519: X25519PublicKey,
    /// Verifies the member's log entries, key envelopes and messages.
    pub ed25519: VerifyingKey,
}

impl MemberKeys {
    /// Appends `x25519(32) || ed25519(32)` to `encoder`.
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder
            .fixed(self.x25519.as_bytes())
            .fixed(self.ed25519.as_bytes());
    }

    /// Reads the layout written by [`MemberKeys::encode`], validating both keys.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let x25519 = X25519PublicKey::from_bytes(decoder.fixed()?)
            .map_err(|_| DecodeError::InvalidValue("x25519 public key"))?;
        let ed25519 = ed25519_public_key(&decoder.fixed()?)
            .map_err(|_| DecodeError::InvalidValue("ed25519 public key"))?;
        Ok(Self { x25519, ed25519 })
    }
}

impl fmt::Debug for MemberKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberKeys")
            .field("x25519", &self.x25519)
            .field("ed25519", &hex::encode(self.ed25519.as_bytes()))
            .finish()
    }
}

/// A user's secret keys. Both are zeroized on drop; `Debug` prints no secret.
#[derive(Clone)]
pub struct IdentitySecrets {
    x25519: crypto_box::SecretKey,
    ed25519: SigningKey,
}

impl IdentitySecrets {
    /// Generates a fresh X25519 and Ed25519 key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            x25519: crypto_box::SecretKey::generate(rng),
            ed25519: SigningKey::generate(rng),
        }
    }

    /// Rebuilds the keys from their 32-byte X25519 secret scalar and Ed25519 seed.
    pub fn from_bytes(x25519_secret: [u8; KEY_LEN], ed25519_seed: [u8; KEY_LEN]) -> Self {
        Self {
            x25519: crypto_box::SecretKey::from(x25519_secret),
            ed25519: SigningKey::from_bytes(&ed25519_seed),
        }
    }

    /// The X25519 secret scalar (32 bytes). Handle with care: wrap it in `Zeroizing`.
    pub fn x25519_secret_bytes(&self) -> [u8; KEY_LEN] {
        self.x25519.to_bytes()
    }

    /// The Ed25519 seed (32 bytes). Handle with care: wrap it in `Zeroizing`.
    pub fn ed25519_seed(&self) -> [u8; KEY_LEN] {
        self.ed25519.to_bytes()
    }

    /// The X25519 secret, for opening sealed boxes.
    pub fn x25519_secret(&self) -> &crypto_box::SecretKey {
        &self.x25519
    }

    /// Both public keys.
    ///
    /// The X25519 public key of a clamped secret is never of low order, so this cannot fail.
    pub fn public_keys(&self) -> MemberKeys {
        MemberKeys {
            x25519: X25519PublicKey(*self.x25519.public_key().as_bytes()),
            ed25519: self.ed25519.verifying_key(),
        }
    }

    /// Signs `message` with the Ed25519 key (RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.ed25519.sign(message)
    }

    /// Builds and self-signs the public identity record for `username`.
    pub fn public_identity(&self, username: &str) -> PublicIdentity {
        let keys = self.public_keys();
        let signature = self.sign(&PublicIdentity::signed_bytes(username, &keys));
        PublicIdentity {
            username: username.to_owned(),
            keys,
            signature,
        }
    }
}

impl fmt::Debug for IdentitySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySecrets")
            .field("public", &self.public_keys())
            .finish_non_exhaustive()
    }
}

/// A user's published identity: username, both public keys and an Ed25519 self-signature
/// over `label || username || x25519 || ed25519`. Deserializing one verifies it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PublicIdentityWire", into = "PublicIdentityWire")]
pub struct PublicIdentity {
    username: String,
    keys: MemberKeys,
    signature: Signature,
}

/// JSON form of [`PublicIdentity`]: base64 fields.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct PublicIdentityWire {
    /// The account name.
    pub username: String,
    /// X25519 public key, 32 bytes.
    pub x25519_public: Base64Array<32>,
    /// Ed25519 public key, 32 bytes.
    pub ed25519_public: Base64Array<32>,
    /// Ed25519 self-signature, 64 bytes.
    pub signature: Base64,
}

impl TryFrom<PublicIdentityWire> for PublicIdentity {
    type Error = KeyError;

    fn try_from(wire: PublicIdentityWire) -> Result<Self, KeyError> {
        let signature =
            Signature::from_slice(&wire.signature.0).map_err(|_| KeyError::BadSignature)?;
        PublicIdentity::verify(
            &wire.username,
            &wire.x25519_public.0,
            &wire.ed25519_public.0,
            &signature,
        )
    }
}

impl From<PublicIdentity> for PublicIdentityWire {
    fn from(identity: PublicIdentity) -> Self {
        Self {
            username: identity.username,
            x25519_public: Base64Array(*identity.keys.x25519.as_bytes()),
            ed25519_public: Base64Array(identity.keys.ed25519.to_bytes()),
            signature: Base64(identity.signature.to_bytes().to_vec()),
        }
    }
}

impl PublicIdentity {
    /// The bytes the self-signature covers.
    pub fn signed_bytes(username: &str, keys: &MemberKeys) -> Vec<u8> {
        let mut encoder = Encoder::new(IDENTITY_LABEL);
        encoder.string(username);
        keys.encode(&mut encoder);
        encoder.finish()
    }

    /// Validates a record from outside: username, both keys and the self-signature.
    ///
    /// # Errors
    /// [`KeyError`] naming the first check that failed.
    pub fn verify(
        username: &str,
        x25519_public: &[u8; KEY_LEN],
        ed25519_public: &[u8; KEY_LEN],
        signature: &Signature,
    ) -> Result<Self, KeyError> {
        validate_username(username)?;
        let keys = MemberKeys {
            x25519: X25519PublicKey::from_bytes(*x25519_public)?,
            ed25519: ed25519_public_key(ed25519_public)?,
        };
        verify_signature(
            &keys.ed25519,
            &Self::signed_bytes(username, &keys),
            signature,
        )?;
        Ok(Self {
            username: username.to_owned(),
            keys,
            signature: *signature,
        })
    }

    /// The account name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Both public keys.
    pub fn keys(&self) -> &MemberKeys {
        &self.keys
    }

    /// The self-signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The user's fingerprint (see [`Fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.username, &self.keys)
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("username", &self.username)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Number of five-digit groups in one user's fingerprint.
pub const FINGERPRINT_GROUPS: usize = 6;

/// A human-comparable code for one user's keys: 30 decimal digits in six groups of five.
///
/// `digest = SHA-256(label || username || x25519 || ed25519)`; group `i` is the big-endian
/// integer of digest bytes `5i .. 5i+5` modulo 100000, written with leading zeros. This
/// follows the shape of Signal's numeric fingerprints (five bytes per five digits, about
/// 99.7 bits in all).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u32; FINGERPRINT_GROUPS]);

impl Fingerprint {
    /// Computes the fingerprint of `username` holding `keys`.
    pub fn of(username: &str, keys: &MemberKeys) -> Self {
        let mut encoder = Encoder::new(FINGERPRINT_LABEL);
        encoder.string(username);
        keys.encode(&mut encoder);
        let digest = primitives::sha256(&encoder.finish());
        let mut groups = [0u32; FINGERPRINT_GROUPS];
        for (index, group) in groups.iter_mut().enumerate() {
            let chunk = &digest[index * 5..index * 5 + 5];
            let value = chunk
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            *group = (value % 100_000) as u32;
        }
        Self(groups)
    }

    /// The groups as five-digit strings.
    pub fn groups(&self) -> Vec<String> {
        self.0.iter().map(|group| format!("{group:05}")).collect()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.groups().join(" "))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The safety number two users compare: both fingerprints, the smaller first, so both sides
/// compute the same 60 digits (12 groups of five).
pub fn safety_number(first: &Fingerprint, second: &Fingerprint) -> String {
    let (low, high) = if first <= second {
        (first, second)
    } else {
        (second, first)
    };
    format!("{low} {high}")
}

/// The OpenAPI schema of a [`PublicIdentity`]: that of its JSON form.
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::{PublicIdentity, PublicIdentityWire};

    impl PartialSchema for PublicIdentity {
        fn schema() -> RefOr<Schema> {
            PublicIdentityWire::schema()
        }
    }

    impl ToSchema for PublicIdentity {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            PublicIdentityWire::schemas(schemas);
        }
    }
}
