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

use async_trait::async_trait;
use common::primitives::sha256;
use common::wire::Base64;
use common::OsRng;
use rand_core::RngCore;
use sqlx::AnyPool;
use zeroize::Zeroizing;

use crate::api::{Challenge, FactorStatus, LoginOutcome, RecoveryCodes, TotpSetup};
use crate::error::{MfaError, MfaResult};
use crate::key::ServerKey;
use crate::store::{self, ImportedFactors};
use crate::totp::{self, TotpSecret};

/// How long a login challenge stays valid, in milliseconds (5 minutes).
pub const CHALLENGE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// How many codes may be tried against one login challenge.
pub const CHALLENGE_ATTEMPTS: u32 = 5;

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

    /// Starts the second step of a login whose password was right: a challenge when the
    /// user has a second factor, `None` when they have none.
    async fn begin_login(&self, username: &str) -> MfaResult<Option<Challenge>>;

    /// The user a live challenge (with attempts left) belongs to, if any.
    async fn challenge_owner(&self, challenge: &[u8]) -> MfaResult<Option<String>>;

    /// Checks `code` against the challenge's user. Of two requests completing one challenge
    /// at most one is [`LoginOutcome::Accepted`].
    async fn complete_login(&self, challenge: &[u8], code: &str) -> MfaResult<LoginOutcome>;

    /// Forgets everything of the user (their account is being deleted).
    async fn delete_user(&self, username: &str) -> MfaResult<()>;
}

/// Second factors kept in a database of their own, sealed under a key of their own.
#[derive(Clone)]
pub struct Factors {
    pool: AnyPool,
    key: ServerKey,
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

impl Factors {
    /// Factors over an open, migrated pool (see [`store::connect`]), sealed under `key`.
    pub fn new(pool: AnyPool, key: ServerKey) -> Self {
        Self { pool, key }
    }

    /// Opens (creating and migrating) the database at `database_url`.
    ///
    /// # Errors
    /// As [`store::connect`].
    pub async fn open(database_url: &str, key: ServerKey) -> MfaResult<Self> {
        Ok(Self::new(store::connect(database_url).await?, key))
    }

    /// The database (tests, diagnostics).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Takes in the factors an older chat database held, sealed under this store's key
    /// (the chat server's `server.key`, which the in-process store shares). Users already in
    /// the store keep what they have.
    ///
    /// # Errors
    /// A database error.
    pub async fn import(&self, users: &[ImportedFactors]) -> MfaResult<()> {
        store::import(&self.pool, users).await
    }
}

#[async_trait]
impl SecondFactors for Factors {
    async fn status(&self, username: &str) -> MfaResult<FactorStatus> {
        let totp_enabled = store::find_totp(&self.pool, username)
            .await?
            .is_some_and(|record| record.sealed_secret.is_some());
        Ok(FactorStatus {
            totp_enabled,
            recovery_codes_left: store::recovery_codes_left(&self.pool, username).await?,
        })
    }

    async fn totp_setup(&self, username: &str) -> MfaResult<TotpSetup> {
        if self.status(username).await?.totp_enabled {
            return Err(MfaError::conflict("totp is already enabled"));
        }
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
        tracing::info!(%username, "totp disabled");
        Ok(())
    }

    async fn verify_code(&self, username: &str, code: &str) -> MfaResult<bool> {
        let Some(record) = store::find_totp(&self.pool, username).await? else {
            return Ok(false);
        };
        let Some(sealed_secret) = record.sealed_secret else {
            return Ok(false);
        };
        if totp::is_totp_code(code) {
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

    async fn begin_login(&self, username: &str) -> MfaResult<Option<Challenge>> {
        if !self.status(username).await?.any() {
            return Ok(None);
        }
        let mut challenge = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(challenge.as_mut());
        let now_ms = store::now_ms();
        store::create_challenge(
            &self.pool,
            &challenge_hash(challenge.as_slice()),
            username,
            now_ms,
            now_ms.saturating_add(CHALLENGE_LIFETIME_MS),
            CHALLENGE_ATTEMPTS,
        )
        .await?;
        Ok(Some(Challenge(challenge)))
    }

    async fn challenge_owner(&self, challenge: &[u8]) -> MfaResult<Option<String>> {
        store::challenge_owner(&self.pool, &challenge_hash(challenge), store::now_ms()).await
    }

    async fn complete_login(&self, challenge: &[u8], code: &str) -> MfaResult<LoginOutcome> {
        let hash = challenge_hash(challenge);
        let Some(username) = store::challenge_owner(&self.pool, &hash, store::now_ms()).await?
        else {
            return Ok(LoginOutcome::Expired);
        };
        if !self.verify_code(&username, code).await? {
            store::record_wrong_code(&self.pool, &hash).await?;
            return Ok(LoginOutcome::WrongCode);
        }
        // Of two requests that complete the same challenge, only one is accepted.
        if store::consume_challenge(&self.pool, &hash).await? {
            Ok(LoginOutcome::Accepted)
        } else {
            Ok(LoginOutcome::Expired)
        }
    }

    async fn delete_user(&self, username: &str) -> MfaResult<()> {
        store::delete_user(&self.pool, username).await
    }
}

/// A challenge as it travels in JSON.
pub fn challenge_to_wire(challenge: &Challenge) -> Base64 {
    Base64(challenge.0.to_vec())
}
