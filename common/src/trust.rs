//! Trust on first use (docs/PROTOCOL.md section 9): the public keys a user has seen for each
//! contact, whether the user verified them by comparing safety numbers, and their encryption
//! for storage on the server, so every browser of the user shares them.
//!
//! A client pins a contact's keys the first time it sees them. When the keys it meets later
//! (in a room's log or in the server's directory) differ, it warns and seals nothing to the new
//! keys until the user accepts them.

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::account::WrapKey;
use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::{safety_number, validate_username, Fingerprint, MemberKeys};
use crate::primitives::{self, KEY_LEN};

/// Domain-separation label of the pins plaintext.
pub const PINS_LABEL: &[u8] = b"e2ee-chat/v1/pins";
/// HKDF `info` deriving the pins key from `wrap_key`.
pub const PINS_KEY_INFO: &[u8] = b"e2ee-chat/v1/pins-key";
/// Most contacts one user can pin.
pub const MAX_PINS: usize = 10_000;

/// A trust decision that went against the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrustError {
    /// The keys differ from the pinned ones: nothing may be sealed to them until the user
    /// accepts the change.
    #[error("the keys of {0} changed since you first saw them; compare safety numbers before trusting the new keys")]
    KeyChanged(String),
    /// The stored pins do not decrypt under this account's key.
    #[error("stored contact keys do not decrypt")]
    Decrypt,
    /// The stored pins decrypt but are malformed.
    #[error("stored contact keys are malformed: {0}")]
    Malformed(DecodeError),
}

/// What the user knows of one contact's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The keys first seen (or last accepted).
    pub keys: MemberKeys,
    /// Whether the user compared safety numbers and marked the contact verified.
    pub verified: bool,
}

/// How a contact's current keys compare with the pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Never seen before.
    New,
    /// Equal to the pin.
    Matches {
        /// Whether the contact is verified.
        verified: bool,
    },
    /// Different from the pin.
    Changed {
        /// The pinned keys.
        pinned: Box<MemberKeys>,
    },
}

/// The pins of one user, by contact username.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(BTreeMap<String, Pin>);

impl Pins {
    /// No pins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `keys` with the pin of `username`.
    pub fn check(&self, username: &str, keys: &MemberKeys) -> PinCheck {
        match self.0.get(username) {
            None => PinCheck::New,
            Some(pin) if pin.keys == *keys => PinCheck::Matches {
                verified: pin.verified,
            },
            Some(pin) => PinCheck::Changed {
                pinned: Box::new(pin.keys),
            },
        }
    }

    /// Pins `keys` for `username` if nothing is pinned yet (first use), and refuses keys that
    /// differ from the pin: the check before sealing anything to a contact. Returns whether
    /// the pins changed.
    ///
    /// # Errors
    /// [`TrustError::KeyChanged`] when other keys are pinned.
    pub fn pin_first_use(&mut self, username: &str, keys: &MemberKeys) -> Result<bool, TrustError> {
        match self.check(username, keys) {
            PinCheck::New => {
                self.0.insert(
                    username.to_owned(),
                    Pin {
                        keys: *keys,
                        verified: false,
                    },
                );
                Ok(true)
            }
            PinCheck::Matches { .. } => Ok(false),
            PinCheck::Changed { .. } => Err(TrustError::KeyChanged(username.to_owned())),
        }
    }

    /// Replaces the pin after the user accepted new keys; the contact is no longer verified.
    pub fn accept_new_keys(&mut self, username: &str, keys: &MemberKeys) {
        self.0.insert(
            username.to_owned(),
            Pin {
                keys: *keys,
                verified: false,
            },
        );
    }

    /// Marks a pinned contact verified (or not). Returns false if nothing is pinned.
    pub fn set_verified(&mut self, username: &str, verified: bool) -> bool {
        match self.0.get_mut(username) {
            Some(pin) => {
                pin.verified = verified;
                true
            }
            None => false,
        }
    }

    /// The pin of `username`.
    pub fn get(&self, username: &str) -> Option<&Pin> {
        self.0.get(username)
    }

    /// Number of pins.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every pin, by contact username in byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Pin)> {
        self.0
            .iter()
            .map(|(username, pin)| (username.as_str(), pin))
    }

    /// Sets the pin of `username`, replacing any earlier one (used when merging copies of
    /// the same user's pins; a contact's changed keys go through [`Pins::accept_new_keys`]).
    pub fn insert(&mut self, username: &str, pin: Pin) {
        self.0.insert(username.to_owned(), pin);
    }

    /// Appends `u32 count || (str(username) || x25519(32) || ed25519(32) || u8 verified)*`,
    /// in username byte order (docs/PROTOCOL.md section 9).
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.u32(self.0.len() as u32);
        for (username, pin) in &self.0 {
            encoder.string(username);
            pin.keys.encode(encoder);
            encoder.u8(u8::from(pin.verified));
        }
    }

    /// Reads what [`Pins::encode`] wrote.
    ///
    /// # Errors
    /// [`DecodeError`] for a truncated field, more than [`MAX_PINS`] pins, an invalid
    /// username or key, or a verified flag other than 0 or 1.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let count = decoder.u32()? as usize;
        if count > MAX_PINS {
            return Err(DecodeError::InvalidValue("pin count"));
        }
        let mut pins = BTreeMap::new();
        for _ in 0..count {
            let username = decoder.string()?.to_owned();
            validate_username(&username).map_err(|_| DecodeError::InvalidValue("username"))?;
            let keys = MemberKeys::decode(decoder)?;
            let verified = match decoder.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::InvalidValue("verified flag")),
            };
            pins.insert(username, Pin { keys, verified });
        }
        Ok(Self(pins))
    }

    /// `label || str(owner) || pins` (see [`Pins::encode`]).
    fn to_bytes(&self, owner: &str) -> Vec<u8> {
        let mut encoder = Encoder::new(PINS_LABEL);
        encoder.string(owner);
        self.encode(&mut encoder);
        encoder.finish()
    }

    fn from_bytes(owner: &str, bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        decoder.label(PINS_LABEL)?;
        if decoder.string()? != owner {
            return Err(DecodeError::InvalidValue("pins owner"));
        }
        let pins = Self::decode(&mut decoder)?;
        decoder.finish()?;
        Ok(pins)
    }
}

fn pins_key(wrap_key: &WrapKey) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF's limit, so expansion cannot fail.
    if primitives::hkdf_sha256(wrap_key.as_bytes(), &[], PINS_KEY_INFO, key.as_mut()).is_err() {
        unreachable!("hkdf-sha256 expands 32 bytes");
    }
    key
}

/// Encrypts the pins of `owner`: `nonce(24) || secretbox(HKDF(wrap_key, "e2ee-chat/v1/pins-key"),
/// nonce, pins bytes)`.
pub fn seal_pins(
    wrap_key: &WrapKey,
    owner: &str,
    pins: &Pins,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    primitives::secretbox_seal_random(&pins_key(wrap_key), &pins.to_bytes(owner), rng)
}

/// Opens pins sealed by [`seal_pins`] for `owner`.
///
/// # Errors
/// [`TrustError::Decrypt`] or [`TrustError::Malformed`].
pub fn open_pins(wrap_key: &WrapKey, owner: &str, sealed: &[u8]) -> Result<Pins, TrustError> {
    let plaintext = primitives::secretbox_open_prefixed(&pins_key(wrap_key), sealed)
        .map_err(|_| TrustError::Decrypt)?;
    Pins::from_bytes(owner, &plaintext).map_err(TrustError::Malformed)
}

/// The safety number of two users given their keys: what both read aloud to verify.
pub fn safety_number_of(
    first: &str,
    first_keys: &MemberKeys,
    second: &str,
    second_keys: &MemberKeys,
) -> String {
    safety_number(
        &Fingerprint::of(first, first_keys),
        &Fingerprint::of(second, second_keys),
    )
}
