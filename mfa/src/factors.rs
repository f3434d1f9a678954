//! [`SecondFactors`], the one interface the chat server uses for second factors, and
//! [`Factors`], its implementation over a database: linked into the chat server (the
//! embedded default) or serving [`crate::service`] in its own process, where
//! [`crate::RemoteFactors`] reaches it.
//!
//! A login with a second factor has two steps. After the password step the chat server asks
//! for a challenge ([`SecondFactors::begin_login`]: 32 random bytes, valid
//! [`CHALLENGE_LIFETIME_MS`], for at most [`CHALLENGE_ATTEMPTS`] codes, stored only as their
//! SHA-256); the client sends it back with a code, and
//! [`SecondFactors::complete_login`] says whether the login may finish.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::primitives::sha256;
use common::wire::Base64;
use common::OsRng;
use rand_core::RngCore;
use sqlx::AnyPool;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration as Ceremony,
    PublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};
use zeroize::Zeroizing;

use crate::api::{
    Challenge, FactorStatus, LoginChallenge, LoginOutcome, PasskeyInfo, PasskeyRegistered,
    PasskeyRegistration, RecoveryCodes, TotpSetup,
};
use crate::error::{MfaError, MfaResult};
use crate::key::ServerKey;
use crate::store::{self, ImportedFactors, NewChallenge};
use crate::totp::{self, TotpSecret};

/// How long a login challenge stays valid, in milliseconds (5 minutes).
pub const CHALLENGE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// How many codes may be tried against one login challenge.
pub const CHALLENGE_ATTEMPTS: u32 = 5;
/// How long the second half of a passkey registration may wait, in milliseconds (5 minutes).
pub const REGISTRATION_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// Most passkeys one user may register.
pub const MAX_PASSKEYS: usize = 16;
/// Longest passkey name, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;
/// HKDF label of the key's subkey that derives each user's WebAuthn user handle.
const USER_HANDLE_LABEL: &[u8] = b"e2ee-chat/v1/webauthn-user-handle";

/// The WebAuthn relying party (W3C Web Authentication, section 5.4.2): its id, a registrable
/// domain such as `chat.example.org` (never an IP address: browsers refuse those), and the
/// origin pages run at, such as `https://chat.example.org`. With the id `localhost`, any
/// port of the origin is accepted (development and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The relying party id.
    pub id: String,
    /// The origin of the web client.
    pub origin: Url,
}

impl RelyingParty {
    /// `localhost` and `http://localhost:8080`: `cargo xtask run` opened at
    /// <http://localhost:8080>.
    pub fn localhost() -> Self {
        Self {
            id: "localhost".to_owned(),
            origin: Url::parse("http://localhost:8080").unwrap_or_else(|_| unreachable!()),
        }
    }

    fn webauthn(&self) -> MfaResult<Webauthn> {
        let invalid = |error| {
            MfaError::BadRequest(format!(
                "invalid webauthn relying party {} at {}: {error}",
                self.id, self.origin
            ))
        };
        WebauthnBuilder::new(&self.id, &self.origin)
            .map_err(invalid)?
            .rp_name(totp::ISSUER)
            .allow_any_port(self.id == "localhost")
            .build()
            .map_err(invalid)
    }
}
/// Everything the chat server asks of second factors. Usernames are the chat's; the
/// implementation never sees a password, an auth key, or anything of the end-to-end
/// encryption.
///
/// Every method may fail with [`MfaError::Unavailable`] (the remote service cannot be
/// reached or answered badly) or a database error; the others are listed per method.
#[async_trait]
pub trait SecondFactors: Send + Sync + std::fmt::Debug {
    /// The user's factors (none for an unknown user).
    async fn status(&self, username: &str) -> MfaResult<FactorStatus>;

    /// A new pending TOTP secret (replacing an earlier pending one), its URI and QR code.
    /// [`MfaError::Conflict`] `totp is already enabled`.
    async fn totp_setup(&self, username: &str) -> MfaResult<TotpSetup>;

    /// Makes the pending secret active when `code` matches it, and returns ten fresh recovery
    /// codes. [`MfaError::InvalidCode`]; [`MfaError::Conflict`] `no totp setup in progress`,
    /// `totp is already enabled` or `totp setup changed, start again`.
    async fn totp_enable(&self, username: &str, code: &str) -> MfaResult<RecoveryCodes>;

    /// Turns TOTP off, deleting the secret, the recovery codes and pending logins. The
    /// caller has re-authenticated the user. [`MfaError::Conflict`] `totp is not enabled`.
    async fn totp_disable(&self, username: &str) -> MfaResult<()>;

    /// Checks a code of a logged-in user (re-authentication): a TOTP code within one step of
    /// now and later than the last accepted one, or an unused recovery code. A match uses
    /// the code up. `false` for a wrong or reused code and for a user without TOTP.
    async fn verify_code(&self, username: &str, code: &str) -> MfaResult<bool>;

    /// Starts the second step of a login whose password was right: a challenge (with
    /// passkey options when the user has passkeys) when the user has a second factor, `None`
    /// when they have none; [`MfaError::UnknownUser`] when the store never heard of them
    /// (the chat server asks only about accounts it believes have one).
    async fn begin_login(&self, username: &str) -> MfaResult<Option<LoginChallenge>>;

    /// The user a live challenge (with attempts left) belongs to, if any.
    async fn challenge_owner(&self, challenge: &[u8]) -> MfaResult<Option<String>>;

    /// Checks `code` against the challenge's user. Of two requests completing one challenge
    /// at most one is [`LoginOutcome::Accepted`].
    async fn complete_login(&self, challenge: &[u8], code: &str) -> MfaResult<LoginOutcome>;

    /// Checks a passkey assertion against the WebAuthn challenge of the login challenge
    /// (W3C Web Authentication, section 7.2): signed by one of the user's passkeys, over this
    /// relying party and origin, with user verification. A failed check counts as a wrong
    /// code.
    async fn complete_login_passkey(
        &self,
        challenge: &[u8],
        credential: &PublicKeyCredential,
    ) -> MfaResult<LoginOutcome>;

    /// Starts registering a passkey: the options for `navigator.credentials.create()`
    /// (user verification required, the user's passkeys excluded), valid 5 minutes.
    /// [`MfaError::Conflict`] when the user has [`MAX_PASSKEYS`] already.
    async fn passkey_register_begin(&self, username: &str) -> MfaResult<CreationChallengeResponse>;

    /// Finishes the registration with what the browser returned, and stores the passkey.
    /// [`MfaError::InvalidCode`] for a credential that does not answer the registration
    /// (or none in progress); [`MfaError::BadRequest`] for a bad name or a credential that is
    /// not a `RegisterPublicKeyCredential` (the registration stays);
    /// [`MfaError::Conflict`] for a credential registered already. Fresh recovery codes
    /// come back when this is the user's first second factor.
    async fn passkey_register_finish(
        &self,
        username: &str,
        registration: &PasskeyRegistration,
    ) -> MfaResult<PasskeyRegistered>;

    /// Removes a passkey (by [`PasskeyInfo::id`]); the caller has re-authenticated the user.
    /// [`MfaError::Conflict`] `no such passkey`.
    async fn passkey_remove(&self, username: &str, id: &str) -> MfaResult<()>;

    /// Forgets everything of the user (their account is being deleted).
    async fn delete_user(&self, username: &str) -> MfaResult<()>;
}

/// Second factors kept in a database of their own, sealed under a key of their own.
#[derive(Clone)]
pub struct Factors {
    pool: AnyPool,
    key: ServerKey,
    webauthn: Arc<Webauthn>,
}

impl std::fmt::Debug for Factors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factors").finish_non_exhaustive()
    }
}

/// The current Unix time in whole seconds.
fn now_seconds() -> u64 {
    u64::try_from(store::now_ms() / 1000).unwrap_or_default()
}

fn secret_does_not_open() -> MfaError {
    MfaError::Corrupt("a totp secret does not open under the store's key".to_owned())
}

fn challenge_hash(challenge: &[u8]) -> [u8; 32] {
    sha256(challenge)
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> MfaError {
    MfaError::Corrupt(format!("{what}: {error}"))
}

fn passkey_info(row: &store::PasskeyRow) -> PasskeyInfo {
    PasskeyInfo {
        id: URL_SAFE_NO_PAD.encode(&row.credential_id),
        name: row.name.clone(),
        created_at_ms: row.created_at,
        last_used_at_ms: row.last_used_at,
    }
}

impl Factors {
    /// Factors over an open, migrated pool (see [`store::connect`]), sealed under `key`, with
    /// passkeys for `relying_party`.
    ///
    /// # Errors
    /// [`MfaError::BadRequest`] for a relying party webauthn-rs refuses (an IP address, an
    /// origin outside the id's domain).
    pub fn new(pool: AnyPool, key: ServerKey, relying_party: &RelyingParty) -> MfaResult<Self> {
        Ok(Self {
            pool,
            key,
            webauthn: Arc::new(relying_party.webauthn()?),
        })
    }

    /// Opens (creating and migrating) the database at `database_url`.
    ///
    /// # Errors
    /// As [`store::connect`] and [`Factors::new`].
    pub async fn open(
        database_url: &str,
        key: ServerKey,
        relying_party: &RelyingParty,
    ) -> MfaResult<Self> {
        Self::new(store::connect(database_url).await?, key, relying_party)
    }

    /// The WebAuthn user handle of `username`: 16 bytes of HMAC-SHA256 under the key, so it
    /// is stable, reveals nothing of the name, and needs no table.
    fn user_handle(&self, username: &str) -> Uuid {
        let mac = self.key.mac(USER_HANDLE_LABEL, &[username.as_bytes()]);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&mac[..16]);
        Uuid::from_bytes(bytes)
    }

    /// The user's passkeys, decoded.
    async fn passkeys(&self, username: &str) -> MfaResult<Vec<(store::PasskeyRow, Passkey)>> {
        store::passkeys(&self.pool, username)
            .await?
            .into_iter()
            .map(|row| {
                let passkey: Passkey = serde_json::from_str(&row.passkey)
                    .map_err(|error| corrupt("passkey", error))?;
                Ok((row, passkey))
            })
            .collect()
    }

    /// Ten fresh recovery codes, stored as MACs in place of any earlier ones.
    async fn new_recovery_codes(&self, username: &str) -> MfaResult<Vec<String>> {
        let codes = totp::generate_recovery_codes();
        let code_macs: Vec<[u8; 32]> = codes
            .iter()
            .filter_map(|code| totp::recovery_code_mac(&self.key, username, code))
            .collect();
        store::replace_recovery_codes(&self.pool, username, &code_macs).await?;
        Ok(codes.iter().map(|code| code.as_str().to_owned()).collect())
    }

    /// Deletes the recovery codes and pending logins once no factor is left.
    async fn forget_codes_if_no_factor_left(&self, username: &str) -> MfaResult<()> {
        if !self.status(username).await?.any() {
            store::delete_recovery_codes(&self.pool, username).await?;
            store::delete_login_challenges(&self.pool, username).await?;
        }
        Ok(())
    }

    /// Takes in the factors an older chat database held, sealed under this store's key
    /// (the chat server's `server.key`, which the in-process store shares). Users already in
    /// the store keep what they have; returns the users taken in.
    ///
    /// # Errors
    /// A database error.
    pub async fn import(&self, users: &[ImportedFactors]) -> MfaResult<Vec<String>> {
        store::import(&self.pool, users).await
    }
}

#[async_trait]
impl SecondFactors for Factors {
    async fn status(&self, username: &str) -> MfaResult<FactorStatus> {
        let totp_enabled = store::find_totp(&self.pool, username)
            .await?
            .is_some_and(|record| record.sealed_secret.is_some());
        let passkeys = store::passkeys(&self.pool, username).await?;
        Ok(FactorStatus {
            totp_enabled,
            recovery_codes_left: store::recovery_codes_left(&self.pool, username).await?,
            passkeys: passkeys.iter().map(passkey_info).collect(),
        })
    }

    async fn totp_setup(&self, username: &str) -> MfaResult<TotpSetup> {
        if self.status(username).await?.totp_enabled {
            return Err(MfaError::conflict("totp is already enabled"));
        }
        store::mark_enrolled(&self.pool, username, store::now_ms()).await?;
        let secret = TotpSecret::generate();
        let otpauth_uri = secret.otpauth_uri(username);
        let qr_svg = totp::qr_svg(&otpauth_uri)
            .map_err(|error| MfaError::Corrupt(format!("qr code: {error}")))?;
        let sealed = secret.seal(&self.key, username);
        store::set_pending(&self.pool, username, &sealed).await?;
        Ok(TotpSetup {
            secret_base32: secret.to_base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    async fn totp_enable(&self, username: &str, code: &str) -> MfaResult<RecoveryCodes> {
        store::mark_enrolled(&self.pool, username, store::now_ms()).await?;
        let pending = match store::find_totp(&self.pool, username).await? {
            Some(record) if record.sealed_secret.is_some() => {
                return Err(MfaError::conflict("totp is already enabled"));
            }
            Some(record) => record.sealed_pending_secret,
            None => None,
        };
        let sealed_pending =
            pending.ok_or_else(|| MfaError::conflict("no totp setup in progress"))?;
        let secret = TotpSecret::open(&self.key, username, &sealed_pending)
            .ok_or_else(secret_does_not_open)?;
        let step =
            totp::matching_step(&secret, code, now_seconds(), 0).ok_or(MfaError::InvalidCode)?;
        let codes = totp::generate_recovery_codes();
        let code_macs: Vec<[u8; 32]> = codes
            .iter()
            .filter_map(|code| totp::recovery_code_mac(&self.key, username, code))
            .collect();
        store::enable_totp(&self.pool, username, &sealed_pending, step, &code_macs).await?;
        tracing::info!(%username, "totp enabled");
        Ok(RecoveryCodes {
            recovery_codes: codes.iter().map(|code| code.as_str().to_owned()).collect(),
        })
    }

    async fn totp_disable(&self, username: &str) -> MfaResult<()> {
        if !self.status(username).await?.totp_enabled {
            return Err(MfaError::conflict("totp is not enabled"));
        }
        store::disable_totp(&self.pool, username).await?;
        self.forget_codes_if_no_factor_left(username).await?;
        tracing::info!(%username, "totp disabled");
        Ok(())
    }

    async fn verify_code(&self, username: &str, code: &str) -> MfaResult<bool> {
        if totp::is_totp_code(code) {
            let Some(record) = store::find_totp(&self.pool, username).await? else {
                return Ok(false);
            };
            let Some(sealed_secret) = record.sealed_secret else {
                return Ok(false);
            };
            let secret = TotpSecret::open(&self.key, username, &sealed_secret)
                .ok_or_else(secret_does_not_open)?;
            let Some(step) = totp::matching_step(&secret, code, now_seconds(), record.last_step)
            else {
                return Ok(false);
            };
            return store::advance_step(&self.pool, username, step).await;
        }
        match totp::recovery_code_mac(&self.key, username, code) {
            Some(code_mac) => store::spend_recovery_code(&self.pool, username, &code_mac).await,
            None => Ok(false),
        }
    }

    async fn begin_login(&self, username: &str) -> MfaResult<Option<LoginChallenge>> {
        if !self.status(username).await?.any() {
            return if store::is_enrolled(&self.pool, username).await? {
                Ok(None)
            } else {
                Err(MfaError::UnknownUser)
            };
        }
        let passkeys: Vec<Passkey> = self
            .passkeys(username)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey)
            .collect();
        let (passkey_options, passkey_state) = if passkeys.is_empty() {
            (None, None)
        } else {
            let (options, state) = self
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|error| corrupt("passkey authentication", error))?;
            let state =
                serde_json::to_string(&state).map_err(|error| corrupt("passkey state", error))?;
            (Some(options), Some(state))
        };
        let mut challenge = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(challenge.as_mut());
        let now_ms = store::now_ms();
        let hash = challenge_hash(challenge.as_slice());
        let new = NewChallenge {
            challenge_hash: &hash,
            username,
            expires_at: now_ms.saturating_add(CHALLENGE_LIFETIME_MS),
            attempts: CHALLENGE_ATTEMPTS,
            passkey_state: passkey_state.as_deref(),
        };
        store::create_challenge(&self.pool, &new, now_ms).await?;
        Ok(Some(LoginChallenge {
            challenge: Challenge(challenge),
            passkey_options,
        }))
    }

    async fn challenge_owner(&self, challenge: &[u8]) -> MfaResult<Option<String>> {
        store::challenge_owner(&self.pool, &challenge_hash(challenge), store::now_ms()).await
    }

    async fn complete_login(&self, challenge: &[u8], code: &str) -> MfaResult<LoginOutcome> {
        let hash = challenge_hash(challenge);
        let Some((username, _)) = store::take_attempt(&self.pool, &hash, store::now_ms()).await?
        else {
            return Ok(LoginOutcome::Expired);
        };
        if !self.verify_code(&username, code).await? {
            store::delete_if_used_up(&self.pool, &hash).await?;
            return Ok(LoginOutcome::WrongCode);
        }
        // Of two requests that complete the same challenge, only one is accepted.
        if store::consume_challenge(&self.pool, &hash).await? {
            Ok(LoginOutcome::Accepted)
        } else {
            Ok(LoginOutcome::Expired)
        }
    }

    async fn complete_login_passkey(
        &self,
        challenge: &[u8],
        credential: &PublicKeyCredential,
    ) -> MfaResult<LoginOutcome> {
        let hash = challenge_hash(challenge);
        let now_ms = store::now_ms();
        let Some((username, state)) = store::take_attempt(&self.pool, &hash, now_ms).await? else {
            return Ok(LoginOutcome::Expired);
        };
        let verified = match state {
            Some(state) => {
                let state: PasskeyAuthentication = serde_json::from_str(&state)
                    .map_err(|error| corrupt("passkey state", error))?;
                self.webauthn
                    .finish_passkey_authentication(credential, &state)
                    .map_err(|error| tracing::info!(%username, %error, "passkey refused"))
                    .ok()
            }
            None => None,
        };
        let owned = match verified {
            Some(result) => self
                .passkeys(&username)
                .await?
                .into_iter()
                .find(|(_, passkey)| passkey.cred_id() == result.cred_id())
                .map(|found| (found, result)),
            None => None,
        };
        let Some(((row, mut passkey), result)) = owned else {
            store::delete_if_used_up(&self.pool, &hash).await?;
            return Ok(LoginOutcome::WrongCode);
        };
        // Of two requests that complete the same challenge, only one is accepted.
        if !store::consume_challenge(&self.pool, &hash).await? {
            return Ok(LoginOutcome::Expired);
        }
        // The signature counter (and backup state) move on with each use.
        passkey.update_credential(&result);
        let stored = serde_json::to_string(&passkey).map_err(|error| corrupt("passkey", error))?;
        store::passkey_used(&self.pool, &username, &row.credential_id, &stored, now_ms).await?;
        Ok(LoginOutcome::Accepted)
    }

    async fn passkey_register_begin(&self, username: &str) -> MfaResult<CreationChallengeResponse> {
        store::mark_enrolled(&self.pool, username, store::now_ms()).await?;
        let existing = self.passkeys(username).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(MfaError::conflict(format!(
                "at most {MAX_PASSKEYS} passkeys per account"
            )));
        }
        let exclude = existing
            .iter()
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                self.user_handle(username),
                username,
                username,
                Some(exclude),
            )
            .map_err(|error| corrupt("passkey registration", error))?;
        let state =
            serde_json::to_string(&state).map_err(|error| corrupt("passkey state", error))?;
        let expires_at = store::now_ms().saturating_add(REGISTRATION_LIFETIME_MS);
        store::set_registration(&self.pool, username, &state, expires_at).await?;
        Ok(options)
    }

    async fn passkey_register_finish(
        &self,
        username: &str,
        registration: &PasskeyRegistration,
    ) -> MfaResult<PasskeyRegistered> {
        let name = registration.name.trim();
        if name.is_empty() || name.chars().count() > MAX_PASSKEY_NAME_CHARS {
            return Err(MfaError::BadRequest(format!(
                "a passkey name has 1 to {MAX_PASSKEY_NAME_CHARS} characters"
            )));
        }
        // Read before the registration in progress is taken, so that a malformed answer
        // leaves it for a good one.
        let credential: webauthn_rs_proto::RegisterPublicKeyCredential = registration
            .credential
            .decode()
            .map_err(|error| MfaError::BadRequest(format!("credential: {error}")))?;
        let now_ms = store::now_ms();
        store::mark_enrolled(&self.pool, username, now_ms).await?;
        let state = store::take_registration(&self.pool, username, now_ms)
            .await?
            .ok_or_else(|| MfaError::conflict("no passkey registration in progress"))?;
        let state: Ceremony =
            serde_json::from_str(&state).map_err(|error| corrupt("passkey state", error))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|error| {
                tracing::info!(%username, %error, "passkey registration refused");
                MfaError::InvalidCode
            })?;
        let first_factor = !self.status(username).await?.any();
        let stored = serde_json::to_string(&passkey).map_err(|error| corrupt("passkey", error))?;
        store::insert_passkey(
            &self.pool,
            username,
            passkey.cred_id().as_ref(),
            name,
            &stored,
            now_ms,
        )
        .await?;
        tracing::info!(%username, "passkey registered");
        let recovery_codes = if first_factor {
            Some(self.new_recovery_codes(username).await?)
        } else {
            None
        };
        Ok(PasskeyRegistered { recovery_codes })
    }

    async fn passkey_remove(&self, username: &str, id: &str) -> MfaResult<()> {
        let no_such = || MfaError::conflict("no such passkey");
        let credential_id = URL_SAFE_NO_PAD.decode(id).map_err(|_| no_such())?;
        if !store::delete_passkey(&self.pool, username, &credential_id).await? {
            return Err(no_such());
        }
        self.forget_codes_if_no_factor_left(username).await?;
        tracing::info!(%username, "passkey removed");
        Ok(())
    }

    async fn delete_user(&self, username: &str) -> MfaResult<()> {
        store::delete_user(&self.pool, username).await
    }
}

/// A challenge as it travels in JSON.
pub fn challenge_to_wire(challenge: &Challenge) -> Base64 {
    Base64(challenge.0.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn factors() -> Factors {
        Factors::open(
            "sqlite::memory:",
            ServerKey::from_bytes([5; 32]),
            &RelyingParty::localhost(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_user_handle_matches_the_worked_example() {
        // docs/PROTOCOL.md section 12: key 00..1f, "alice" (computed independently with
        // Python's hmac module: HKDF-SHA256, then HMAC-SHA256 of the length-prefixed name).
        let factors = Factors::open(
            "sqlite::memory:",
            ServerKey::from_bytes(std::array::from_fn(|index| index as u8)),
            &RelyingParty::localhost(),
        )
        .await
        .unwrap();
        assert_eq!(
            factors.user_handle("alice").as_bytes().as_slice(),
            hex_decode("23752430b84fd755b55c1dfed9184eb7").as_slice()
        );
    }

    fn hex_decode(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn user_handles_are_stable_and_differ_between_users() {
        let factors = factors().await;
        assert_eq!(factors.user_handle("alice"), factors.user_handle("alice"));
        assert_ne!(factors.user_handle("alice"), factors.user_handle("bob"));
    }

    #[test]
    fn an_ip_address_is_no_relying_party() {
        let party = RelyingParty {
            id: "127.0.0.1".to_owned(),
            origin: Url::parse("http://127.0.0.1:8080").unwrap(),
        };
        assert!(party.webauthn().is_err());
        assert!(RelyingParty::localhost().webauthn().is_ok());
    }

    #[tokio::test]
    async fn recovery_codes_outlive_totp_while_a_passkey_is_left() {
        let factors = factors().await;
        // A passkey row as a registration stores it (its JSON is not read here).
        store::insert_passkey(&factors.pool, "alice", b"credential", "laptop", "{}", 1)
            .await
            .unwrap();
        let codes = factors.new_recovery_codes("alice").await.unwrap();
        assert_eq!(codes.len(), 10);
        assert!(factors.status("alice").await.unwrap().any());
        assert!(factors.verify_code("alice", &codes[0]).await.unwrap());
        let id = URL_SAFE_NO_PAD.encode(b"credential");
        let wrong = factors
            .passkey_remove("alice", "bm90LWhlcmU")
            .await
            .unwrap_err();
        assert!(matches!(wrong, MfaError::Conflict(_)), "{wrong:?}");
        assert_eq!(
            factors.status("alice").await.unwrap().recovery_codes_left,
            9
        );
        factors.passkey_remove("alice", &id).await.unwrap();
        let status = factors.status("alice").await.unwrap();
        assert!(!status.any());
        assert_eq!(status.recovery_codes_left, 0, "no factor left to recover");
    }
}
