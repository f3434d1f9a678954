//! Time-based one-time passwords (TOTP, RFC 6238: HOTP of RFC 4226 over the time step) and
//! recovery codes: the pure parts, with no database or clock of their own.
//!
//! Codes are HMAC-SHA1, 6 digits, 30-second steps, and a code of the step before or after
//! the current one is accepted too (RFC 6238 section 5.2 recommends at most one step of
//! drift). [`matching_step`] says which step matched so the caller can refuse any code of
//! that step or an earlier one from then on: a code cannot be used twice.

use std::fmt;

use common::OsRng;
use rand_core::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::key::ServerKey;

/// Digits of a code (RFC 4226 section 5.3 allows 6 to 8).
pub const DIGITS: usize = 6;
/// Length of a time step, in seconds (RFC 6238 section 5.2).
pub const STEP_SECONDS: u64 = 30;
/// Steps of drift accepted on either side of the current one.
pub const SKEW_STEPS: u64 = 1;
/// Length of a generated secret, in bytes: 160 bits, the length RFC 4226 section 4
/// recommends.
pub const SECRET_LEN: usize = 20;
/// The issuer named in the `otpauth://` URI and shown by authenticator apps.
pub const ISSUER: &str = "e2ee-chat";
/// How many recovery codes a user gets when enabling TOTP.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code without its dashes: 12 characters of 5 bits, 60 bits.
pub const RECOVERY_CODE_CHARS: usize = 12;
/// The alphabet of recovery codes: Crockford's base32 in lowercase (no `i`, `l`, `o`, `u`,
/// so a code read aloud or copied by hand is not mistyped).
pub const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// HKDF label of the server subkey that seals TOTP secrets.
const SEAL_LABEL: &[u8] = b"e2ee-chat/v1/totp-secret";
/// HKDF label of the server subkey that MACs recovery codes.
const RECOVERY_MAC_LABEL: &[u8] = b"e2ee-chat/v1/recovery-code";

/// A code could not be computed for these parameters.
#[derive(Debug, thiserror::Error)]
#[error("invalid totp parameters: {0}")]
pub struct TotpParamsError(String);

/// A user's TOTP secret. `Debug` never prints it; it is zeroed when dropped.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<[u8; SECRET_LEN]>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A fresh random secret from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// Wraps 20 known bytes (tests, test vectors).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret in base32 (RFC 4648, no padding), as users type it into an authenticator.
    pub fn to_base32(&self) -> String {
        self.totp(String::new()).get_secret_base32()
    }

    /// The `otpauth://totp/e2ee-chat:USERNAME?secret=...&issuer=e2ee-chat` URI (SHA-1,
    /// 6 digits and 30 s are the URI defaults, so they are not spelled out).
    pub fn otpauth_uri(&self, username: &str) -> String {
        self.totp(username.to_owned()).get_url()
    }

    fn totp(&self, account_name: String) -> TOTP {
        // The parameters are this module's constants, which `TOTP::new` would accept.
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECONDS,
            self.0.to_vec(),
            Some(ISSUER.to_owned()),
            account_name,
        )
    }

    /// The code of time step `step`.
    pub fn code_for_step(&self, step: u64) -> Zeroizing<String> {
        Zeroizing::new(
            self.totp(String::new())
                .generate(step.saturating_mul(STEP_SECONDS)),
        )
    }

    /// Seals the secret under the server key, bound to `username`: the sealed plaintext is
    /// `secret(20) || username`.
    pub fn seal(&self, server_key: &ServerKey, username: &str) -> Vec<u8> {
        let mut plaintext = Zeroizing::new(self.0.to_vec());
        plaintext.extend_from_slice(username.as_bytes());
        server_key.seal(SEAL_LABEL, &plaintext)
    }

    /// Opens a secret sealed by [`TotpSecret::seal`] for `username`; `None` when it was
    /// sealed under another key, for another user, or changed.
    pub fn open(server_key: &ServerKey, username: &str, sealed: &[u8]) -> Option<Self> {
        let plaintext = server_key.open(SEAL_LABEL, sealed)?;
        let (secret, owner) = plaintext.split_at_checked(SECRET_LEN)?;
        if owner != username.as_bytes() {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        bytes.copy_from_slice(secret);
        Some(Self(bytes))
    }
}

/// The time step of a Unix time in seconds (RFC 6238 section 4: `T = floor(time / 30)`).
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The code for any secret, digit count and step length at `unix_seconds` (HMAC-SHA1), as
/// RFC 6238 appendix B and authenticator apps compute it.
///
/// # Errors
/// [`TotpParamsError`] for fewer than 6 or more than 8 digits, a secret under 128 bits, or
/// a zero step length.
pub fn code_at(
    secret: &[u8],
    digits: usize,
    step_seconds: u64,
    unix_seconds: u64,
) -> Result<String, TotpParamsError> {
    if step_seconds == 0 {
        return Err(TotpParamsError("the step length is zero".to_owned()));
    }
    let totp = TOTP::new(
        Algorithm::SHA1,
        digits,
        0,
        step_seconds,
        secret.to_vec(),
        None,
        String::new(),
    )
    .map_err(|error| TotpParamsError(error.to_string()))?;
    Ok(totp.generate(unix_seconds))
}

/// The URI as a QR code (ISO/IEC 18004), an SVG document at least 200 pixels wide.
///
/// # Errors
/// The `qrcode` crate's error when the text does not fit in a QR code (URIs here are far
/// below the limit of 2953 bytes).
pub fn qr_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::new(text.as_bytes())?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build())
}

/// Whether `code` looks like a TOTP code (6 ASCII digits, ignoring surrounding spaces)
/// rather than a recovery code.
pub fn is_totp_code(code: &str) -> bool {
    let code = code.trim();
    code.len() == DIGITS && code.bytes().all(|byte| byte.is_ascii_digit())
}

/// The time step whose code equals `code`, among the steps from one before to one after the
/// step of `unix_seconds`, skipping steps at or before `last_used_step` (already used).
/// Comparisons are constant-time. `None` when no allowed step matches.
pub fn matching_step(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    last_used_step: u64,
) -> Option<u64> {
    let code = code.trim();
    if !is_totp_code(code) {
        return None;
    }
    let current = step_of(unix_seconds);
    let first = current.saturating_sub(SKEW_STEPS);
    let last = current.saturating_add(SKEW_STEPS);
    // Check every candidate step, so the time taken does not depend on which one matched.
    let mut matched = None;
    for step in first..=last {
        let expected = secret.code_for_step(step);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if equal && step > last_used_step && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// Ten fresh recovery codes, each `xxxx-xxxx-xxxx` of [`RECOVERY_ALPHABET`] (60 random
/// bits).
pub fn generate_recovery_codes() -> Vec<Zeroizing<String>> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let mut random = Zeroizing::new([0u8; RECOVERY_CODE_CHARS]);
            OsRng.fill_bytes(random.as_mut());
            let mut code = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS + 2));
            for (index, byte) in random.iter().enumerate() {
                if index > 0 && index % 4 == 0 {
                    code.push('-');
                }
                // 32 symbols: the low five bits of a uniform byte are uniform.
                code.push(char::from(RECOVERY_ALPHABET[usize::from(byte & 31)]));
            }
            code
        })
        .collect()
}

/// The canonical form of a typed recovery code: lowercase, without dashes or spaces, with
/// Crockford's look-alikes mapped (`o` to `0`, `i` and `l` to `1`). `None` unless it is
/// then exactly 12 characters of [`RECOVERY_ALPHABET`].
pub fn normalize_recovery_code(typed: &str) -> Option<Zeroizing<String>> {
    let mut canonical = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS));
    for character in typed.chars() {
        let character = match character.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        };
        if !character.is_ascii() || !RECOVERY_ALPHABET.contains(&(character as u8)) {
            return None;
        }
        canonical.push(character);
    }
    (canonical.len() == RECOVERY_CODE_CHARS).then_some(canonical)
}

/// What the database stores of a recovery code: HMAC-SHA256 under the server's recovery
/// subkey of `username` and the canonical code. `None` for input that is not a recovery
/// code.
pub fn recovery_code_mac(server_key: &ServerKey, username: &str, typed: &str) -> Option<[u8; 32]> {
    let canonical = normalize_recovery_code(typed)?;
    Some(server_key.mac(
        RECOVERY_MAC_LABEL,
        &[username.as_bytes(), canonical.as_bytes()],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn recovery_codes_have_the_documented_shape_and_differ() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            assert_eq!(code.len(), 14, "{}", code.as_str());
            assert_eq!(&code[4..5], "-");
            assert_eq!(&code[9..10], "-");
            assert_eq!(
                normalize_recovery_code(code).unwrap().len(),
                RECOVERY_CODE_CHARS
            );
        }
        let distinct: std::collections::BTreeSet<&str> =
            codes.iter().map(|code| code.as_str()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
    }

    #[test]
    fn typed_recovery_codes_are_normalized() {
        let canonical = normalize_recovery_code("ab1c-0def-ghjk").unwrap();
        for typed in [
            "AB1C-0DEF-GHJK",
            "ablc o def ghjk",
            "abIc-Odef-ghjk",
            "ab1c0defghjk",
        ] {
            assert_eq!(
                normalize_recovery_code(typed).unwrap().as_str(),
                canonical.as_str(),
                "{typed}"
            );
        }
        for invalid in [
            "",
            "123456",
            "ab1c-0def-ghj",
            "ab1c-0def-ghjku",
            "ab1c-0def-ghj!",
        ] {
            assert!(normalize_recovery_code(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn sealed_secrets_are_bound_to_their_user() {
        let key = ServerKey::from_bytes([3; 32]);
        let secret = TotpSecret::generate();
        let sealed = secret.seal(&key, "alice");
        let opened = TotpSecret::open(&key, "alice", &sealed).unwrap();
        assert_eq!(opened.to_base32(), secret.to_base32());
        assert!(TotpSecret::open(&key, "alicf", &sealed).is_none());
        assert!(TotpSecret::open(&key, "alic", &sealed).is_none());
        assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account() {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri("alice");
        assert!(uri.starts_with("otpauth://totp/e2ee-chat:alice?"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", secret.to_base32())),
            "{uri}"
        );
        assert!(uri.contains("issuer=e2ee-chat"), "{uri}");
    }
}
