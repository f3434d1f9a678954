//! The service's JSON API, spoken only by chat servers over mutual TLS (see
//! [`crate::service`]), and the values [`crate::SecondFactors`] returns. None of these types
//! prints a secret, a code or a challenge in its `Debug` output.
//!
//! Byte strings are standard base64 with padding (RFC 4648 section 4).

use std::fmt;

use common::wire::Base64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The chat API's own types, used as they are where the service carries the same thing, so
/// that the chat server hands them on unchanged: a pending TOTP secret
/// (`POST /v1/users/{username}/totp/setup`), fresh recovery codes (`.../totp/enable`), and a
/// login challenge with the code or the passkey assertion answering it
/// (`POST /v1/logins/complete`, `POST /v1/logins/complete-passkey`). None prints a secret in
/// its `Debug` output.
pub use common::api::{
    PasskeyFinishRequest as PasskeyRegistration, PasskeyFinishResponse as PasskeyRegistered,
    PasskeyLoginRequest, RecoveryCodesResponse as RecoveryCodes,
    TotpLoginRequest as CompleteLoginRequest, TotpSetupResponse as TotpSetup,
};

/// A user's second factors: `GET /v1/users/{username}/factors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorStatus {
    /// Whether TOTP is on.
    pub totp_enabled: bool,
    /// Unused recovery codes left.
    pub recovery_codes_left: u32,
    /// The user's passkeys, oldest first.
    #[serde(default)]
    pub passkeys: Vec<PasskeyInfo>,
}

impl FactorStatus {
    /// Whether the user has any second factor, so that logging in needs one.
    pub fn any(&self) -> bool {
        self.totp_enabled || !self.passkeys.is_empty()
    }
}

/// One passkey, as its owner sees it listed: the chat API's own type, so that the chat
/// server hands the list on as it is.
pub use common::api::PasskeySummary as PasskeyInfo;

/// A login's second step as the store starts it: the challenge, and the WebAuthn request
/// options when the user has passkeys.
#[derive(Clone)]
pub struct LoginChallenge {
    /// The challenge the client sends back.
    pub challenge: Challenge,
    /// Options for `navigator.credentials.get()`, whose WebAuthn challenge is bound to this
    /// login.
    pub passkey_options: Option<webauthn_rs_proto::RequestChallengeResponse>,
}

impl fmt::Debug for LoginChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginChallenge")
            .field("challenge", &self.challenge)
            .field("passkey", &self.passkey_options.is_some())
            .finish()
    }
}

/// A body carrying one code: `POST .../totp/enable`, `.../codes/verify`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A 6-digit TOTP code or a recovery code.
    pub code: String,
}

impl fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeRequest([redacted])")
    }
}

/// Whether a code was accepted: the answer to `.../codes/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `true` when the code matched (and was then used up).
    pub valid: bool,
}

/// The answer to `POST /v1/users/{username}/logins`: a challenge when the user has a second
/// factor, `None` when the login needs none.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginStart {
    /// 32 random bytes the client sends back with its code; the store keeps only their
    /// SHA-256.
    pub challenge: Option<Base64>,
    /// Options for `navigator.credentials.get()` when the user has passkeys.
    #[serde(default)]
    pub passkey_options: Option<webauthn_rs_proto::RequestChallengeResponse>,
}

impl fmt::Debug for LoginStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginStart")
            .field("challenge", &self.challenge.as_ref().map(|_| "[redacted]"))
            .field("passkey", &self.passkey_options.is_some())
            .finish()
    }
}

/// A body naming a login challenge: `POST /v1/logins/owner`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The challenge of [`LoginStart`].
    pub challenge: Base64,
}

impl fmt::Debug for ChallengeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeRequest([redacted])")
    }
}

/// Who a live challenge belongs to: the answer to `POST /v1/logins/owner`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeOwner {
    /// `None` for an unknown, expired or used-up challenge.
    pub username: Option<String>,
}

/// How a login's second step ended: the answer to `POST /v1/logins/complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LoginOutcome {
    /// The code matched: the challenge is used up and the login may finish.
    Accepted,
    /// The code did not match; the challenge has one attempt fewer.
    WrongCode,
    /// The challenge is unknown, expired, used up, or was completed by another request.
    Expired,
}

/// The body of every error answer of the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A message for people.
    pub error: String,
    /// Stable and machine-readable: `invalid_code`, `conflict`, `bad_request`, `not_found`,
    /// `too_large`, `internal` (see [`crate::MfaError::code`]).
    pub code: String,
}

/// A login challenge's 32 bytes, zeroed when dropped and never printed.
#[derive(Clone)]
pub struct Challenge(pub Zeroizing<[u8; 32]>);

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Challenge([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_output_holds_no_secret() {
        let printed = [
            format!(
                "{:?}",
                TotpSetup {
                    secret_base32: "JBSWY3DPEHPK3PXP".to_owned(),
                    otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".to_owned(),
                    qr_svg: "<svg/>".to_owned(),
                }
            ),
            format!(
                "{:?}",
                CodeRequest {
                    code: "123456".to_owned()
                }
            ),
            format!(
                "{:?}",
                RecoveryCodes {
                    recovery_codes: vec!["abcd-efgh-jkmn".to_owned()]
                }
            ),
            format!(
                "{:?}",
                LoginStart {
                    challenge: Some(Base64(b"challenge-bytes".to_vec())),
                    passkey_options: None,
                }
            ),
            format!(
                "{:?}",
                CompleteLoginRequest {
                    challenge: Base64(b"challenge-bytes".to_vec()),
                    code: "123456".to_owned()
                }
            ),
            format!("{:?}", Challenge(Zeroizing::new([7; 32]))),
        ];
        for text in printed {
            for secret in ["JBSWY3DPEHPK3PXP", "123456", "abcd", "Y2hhbGxlbmdl", "7, 7"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[test]
    fn outcomes_are_tagged() {
        let text = serde_json::to_string(&LoginOutcome::WrongCode).unwrap();
        assert_eq!(text, r#"{"outcome":"wrong_code"}"#);
    }
}
