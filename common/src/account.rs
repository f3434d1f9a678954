//! Account keys derived from the password in the browser (docs/PROTOCOL.md section 3):
//! Argon2id parameters and their bounds, `master -> auth_key / wrap_key`, and the wrapped
//! identity bundle.

use std::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::IdentitySecrets;
use crate::primitives::{self, PrimitiveError, KEY_LEN};

/// Length of the client-chosen Argon2id salt, in bytes.
pub const SALT_LEN: usize = 16;
/// HKDF `info` for the key sent to the server to log in.
pub const AUTH_INFO: &[u8] = b"e2ee-chat/v1/auth";
/// HKDF `info` for the key that wraps the identity bundle; it never leaves the client.
pub const WRAP_INFO: &[u8] = b"e2ee-chat/v1/wrap";
/// Domain-separation label of the identity bundle plaintext.
pub const BUNDLE_LABEL: &[u8] = b"e2ee-chat/v1/identity-bundle";
/// Version of the identity bundle layout this code writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// Something went wrong deriving keys or unwrapping the identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountError {
    /// The server offered Argon2id parameters outside the bounds of [`KdfParams::check`].
    #[error("key derivation parameters out of bounds: {0}")]
    KdfParamsOutOfBounds(&'static str),
    /// The salt is not [`SALT_LEN`] bytes.
    #[error("salt must be {SALT_LEN} bytes")]
    BadSalt,
    /// The wrapped bundle does not open under this wrap key: wrong password or tampering.
    #[error("identity bundle does not open: wrong password or tampered data")]
    WrongKeyOrTampered,
    /// The bundle opened but is not a bundle of a known version.
    #[error("identity bundle is malformed: {0}")]
    MalformedBundle(DecodeError),
    /// The bundle belongs to another username (the server swapped bundles).
    #[error("identity bundle was made for another user")]
    BundleForAnotherUser,
    /// The bundle has a version this client does not know.
    #[error("identity bundle version {0} is not supported")]
    UnsupportedBundleVersion(u32),
    /// The public keys the server publishes differ from the ones derived from the secrets.
    #[error("server publishes other public keys than this account's secrets")]
    PublicKeyMismatch,
    /// A primitive refused its input.
    #[error(transparent)]
    Primitive(#[from] PrimitiveError),
}

/// Argon2id cost parameters, chosen by the client at registration and stored by the server.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Time cost (passes over memory).
    pub t: u32,
    /// Parallelism (lanes).
    pub p: u32,
}

impl KdfParams {
    /// Default for new accounts: 64 MiB, 3 passes, 1 lane (design section 2).
    pub const DEFAULT: Self = Self {
        m_kib: 65_536,
        t: 3,
        p: 1,
    };
    /// Least memory a client accepts: 19 MiB, the OWASP Password Storage Cheat Sheet minimum.
    pub const MIN_M_KIB: u32 = 19_456;
    /// Most memory a client accepts: 1 GiB, so a server cannot exhaust the browser.
    pub const MAX_M_KIB: u32 = 1_048_576;
    /// Fewest passes a client accepts (OWASP minimum with 19 MiB).
    pub const MIN_T: u32 = 2;
    /// Most passes a client accepts, so a server cannot make logging in take minutes.
    pub const MAX_T: u32 = 10;
    /// Most lanes a client accepts; lanes run one after another in a browser.
    pub const MAX_P: u32 = 4;

    /// Checks the parameters against the client-side bounds, so a server can neither
    /// downgrade the derivation nor exhaust the client.
    ///
    /// # Errors
    /// [`AccountError::KdfParamsOutOfBounds`] naming the parameter.
    pub fn check(&self) -> Result<(), AccountError> {
        if self.m_kib < Self::MIN_M_KIB {
            return Err(AccountError::KdfParamsOutOfBounds("memory below 19456 KiB"));
        }
        if self.m_kib > Self::MAX_M_KIB {
            return Err(AccountError::KdfParamsOutOfBounds("memory above 1 GiB"));
        }
        if self.t < Self::MIN_T || self.t > Self::MAX_T {
            return Err(AccountError::KdfParamsOutOfBounds(
                "time cost outside 2..=10",
            ));
        }
        if self.p == 0 || self.p > Self::MAX_P {
            return Err(AccountError::KdfParamsOutOfBounds(
                "parallelism outside 1..=4",
            ));
        }
        Ok(())
    }
}

/// `Argon2id(password, salt)`: 32 bytes, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

/// The key sent to the server to log in (`HKDF(master, "e2ee-chat/v1/auth")`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuthKey([u8; KEY_LEN]);

/// The key that wraps the identity bundle (`HKDF(master, "e2ee-chat/v1/wrap")`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WrapKey([u8; KEY_LEN]);

macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    )*};
}
redacted_debug!(MasterKey, AuthKey, WrapKey);

impl WrapKey {
    /// The raw key, for deriving sub-keys inside this crate.
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl AuthKey {
    /// The 32 bytes to send to the server.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Derives the master key from the password after checking `params` and the salt length.
///
/// # Errors
/// [`AccountError::KdfParamsOutOfBounds`], [`AccountError::BadSalt`].
pub fn derive_master_key(
    password: &str,
    salt: &[u8],
    params: &KdfParams,
) -> Result<MasterKey, AccountError> {
    params.check()?;
    if salt.len() != SALT_LEN {
        return Err(AccountError::BadSalt);
    }
    let mut output = [0u8; KEY_LEN];
    primitives::argon2id(
        password.as_bytes(),
        salt,
        params.m_kib,
        params.t,
        params.p,
        &mut output,
    )?;
    let master = MasterKey(output);
    output.zeroize();
    Ok(master)
}

impl MasterKey {
    /// Wraps 32 bytes already derived elsewhere (tests and worked examples).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    fn expand(&self, info: &[u8]) -> [u8; KEY_LEN] {
        let mut output = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF's limit of 255 * 32, so expansion cannot fail.
        if primitives::hkdf_sha256(&self.0, &[], info, &mut output).is_err() {
            unreachable!("hkdf-sha256 expands 32 bytes");
        }
        output
    }

    /// `HKDF-SHA256(ikm = master, salt = empty, info = "e2ee-chat/v1/auth")`, 32 bytes.
    pub fn auth_key(&self) -> AuthKey {
        AuthKey(self.expand(AUTH_INFO))
    }

    /// `HKDF-SHA256(ikm = master, salt = empty, info = "e2ee-chat/v1/wrap")`, 32 bytes.
    pub fn wrap_key(&self) -> WrapKey {
        WrapKey(self.expand(WRAP_INFO))
    }
}

fn bundle_plaintext(username: &str, secrets: &IdentitySecrets) -> Zeroizing<Vec<u8>> {
    let x25519_secret = Zeroizing::new(secrets.x25519_secret_bytes());
    let ed25519_seed = Zeroizing::new(secrets.ed25519_seed());
    let mut encoder = Encoder::new(BUNDLE_LABEL);
    encoder
        .u32(BUNDLE_VERSION)
        .string(username)
        .fixed(x25519_secret.as_ref())
        .fixed(ed25519_seed.as_ref());
    Zeroizing::new(encoder.finish())
}

/// Wraps the identity secrets for storage on the server:
/// `nonce(24) || secretbox(wrap_key, nonce, label || version || username || x25519 || seed)`.
pub fn wrap_identity(
    wrap_key: &WrapKey,
    username: &str,
    secrets: &IdentitySecrets,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    primitives::secretbox_seal_random(&wrap_key.0, &bundle_plaintext(username, secrets), rng)
}

/// Unwraps the identity secrets and checks that the bundle names `username`.
///
/// # Errors
/// [`AccountError::WrongKeyOrTampered`] when it does not decrypt,
/// [`AccountError::MalformedBundle`], [`AccountError::UnsupportedBundleVersion`] or
/// [`AccountError::BundleForAnotherUser`] when it decrypts but does not fit.
pub fn unwrap_identity(
    wrap_key: &WrapKey,
    username: &str,
    wrapped: &[u8],
) -> Result<IdentitySecrets, AccountError> {
    let plaintext = primitives::secretbox_open_prefixed(&wrap_key.0, wrapped)
        .map_err(|_| AccountError::WrongKeyOrTampered)?;
    let mut decoder = Decoder::new(&plaintext);
    decoder
        .label(BUNDLE_LABEL)
        .map_err(AccountError::MalformedBundle)?;
    let version = decoder.u32().map_err(AccountError::MalformedBundle)?;
    if version != BUNDLE_VERSION {
        return Err(AccountError::UnsupportedBundleVersion(version));
    }
    let bundle_username = decoder.string().map_err(AccountError::MalformedBundle)?;
    if bundle_username != username {
        return Err(AccountError::BundleForAnotherUser);
    }
    let x25519_secret = Zeroizing::new(
        decoder
            .fixed::<KEY_LEN>()
            .map_err(AccountError::MalformedBundle)?,
    );
    let ed25519_seed = Zeroizing::new(
        decoder
            .fixed::<KEY_LEN>()
            .map_err(AccountError::MalformedBundle)?,
    );
    decoder.finish().map_err(AccountError::MalformedBundle)?;
    Ok(IdentitySecrets::from_bytes(*x25519_secret, *ed25519_seed))
}

/// Everything a client holds after logging in, derived from one password.
#[derive(Clone)]
pub struct AccountKeys {
    /// Sent to the server to log in.
    pub auth_key: AuthKey,
    /// Unwraps the identity bundle; stays on the client.
    pub wrap_key: WrapKey,
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKeys([redacted])")
    }
}

/// Runs Argon2id and HKDF: the whole password-to-keys step of registering or logging in.
///
/// # Errors
/// As [`derive_master_key`].
pub fn derive_account_keys(
    password: &str,
    salt: &[u8],
    params: &KdfParams,
) -> Result<AccountKeys, AccountError> {
    let master = derive_master_key(password, salt, params)?;
    Ok(AccountKeys {
        auth_key: master.auth_key(),
        wrap_key: master.wrap_key(),
    })
}

/// Checks that the public identity the server publishes for us equals the keys derived from
/// our own secrets, so a server cannot make others seal room keys to a key it holds.
///
/// # Errors
/// [`AccountError::PublicKeyMismatch`].
pub fn check_published_identity(
    secrets: &IdentitySecrets,
    published: &crate::identity::PublicIdentity,
) -> Result<(), AccountError> {
    if secrets.public_keys() == *published.keys() {
        Ok(())
    } else {
        Err(AccountError::PublicKeyMismatch)
    }
}
