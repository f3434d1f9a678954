//! Second factors from the chat server's side: which [`SecondFactors`] this server uses
//! (the in-process store of the `mfa` crate, or the remote `mfa-service` with `--mfa-url`),
//! and the `users.second_factor` flag that keeps logins of accounts without a second factor
//! away from the store, so that they keep working while a remote store is down.
//!
//! The flag is set before a factor is enabled and cleared only once the store says no
//! factor is left and no enabling is under way ([`enabling`], [`clear_flag_if_none_left`]),
//! so no account has a factor while its flag is clear. A set flag means "ask the store",
//! which has the last word, except that a store which never heard of the account fails the
//! login closed (`MfaError::UnknownUser`): it is the wrong, an emptied or a restored one.

use std::sync::Arc;

use mfa::api::FactorStatus;
use mfa::{Factors, MfaError, RemoteFactors, SecondFactors, ServerKey};
use sqlx::AnyPool;

use crate::config::Config;
use crate::error::ApiResult;
use crate::store::{legacy_factors, users};
use crate::{AppState, StartupError};

/// The second factors of this server's configuration: [`RemoteFactors`] with `--mfa-url`
/// (a chat database that still holds factors of an older version is then refused), else
/// [`Factors`] in `--mfa-database-url` sealed under the server key (`--server-key`, or the
/// key file, created when missing), after moving in what an
/// older version left in the chat database.
///
/// # Errors
/// [`StartupError`] for unusable certificates, a store that cannot be opened, or old
/// factors that a remote store cannot take.
pub async fn start(
    config: &Config,
    pool: &AnyPool,
) -> Result<Arc<dyn SecondFactors>, StartupError> {
    let (Some(url), Some(ca), Some(cert), Some(key)) = (
        &config.mfa_url,
        &config.mfa_ca,
        &config.mfa_client_cert,
        &config.mfa_client_key,
    ) else {
        // A 32-byte file read once at startup: blocking the runtime briefly is harmless.
        let server_key = match &config.server_key {
            Some(key) => key.clone(),
            None => ServerKey::load_or_create(&config.server_key_path())?,
        };
        let relying_party = mfa::factors::RelyingParty {
            id: config.webauthn_rp_id.clone(),
            origin: config.webauthn_origin.clone(),
        };
        let factors = Factors::open(&config.mfa_database_url(), server_key, &relying_party).await?;
        move_old_factors(pool, &factors).await?;
        return Ok(Arc::new(factors));
    };
    let left = legacy_factors::count(pool)
        .await
        .map_err(StartupError::Legacy)?;
    if left > 0 {
        return Err(StartupError::OldFactors(left));
    }
    let remote = RemoteFactors::new(url, ca, cert, key)?;
    // A service that is down now may be up by the first login that needs it.
    if let Err(error) = remote.health().await {
        tracing::warn!(%error, "the second-factor service does not answer yet");
    }
    Ok(Arc::new(remote))
}

/// Moves the factors an older version kept in the chat database into `factors` (sealed
/// under the same key, so they open there), then deletes them from the chat database.
async fn move_old_factors(pool: &AnyPool, factors: &Factors) -> Result<(), StartupError> {
    let old = legacy_factors::load(pool)
        .await
        .map_err(StartupError::Legacy)?;
    if old.is_empty() {
        return Ok(());
    }
    let imported = factors.import(&old).await?;
    let enabled: Vec<String> = old
        .iter()
        .filter(|user| user.totp.sealed_secret.is_some() && imported.contains(&user.username))
        .map(|user| user.username.clone())
        .collect();
    // The flag first: an account whose factor has moved must never be without it.
    users::mark_second_factor(pool, &enabled)
        .await
        .map_err(StartupError::Legacy)?;
    for user in &old {
        if !imported.contains(&user.username) {
            tracing::error!(
                username = %user.username,
                "the second-factor store holds factors of this account already: its older \
                 factors stay in the chat database (user_totp, recovery_codes) until an \
                 operator decides"
            );
        }
    }
    legacy_factors::delete(pool, &imported)
        .await
        .map_err(StartupError::Legacy)?;
    let usernames = imported;
    tracing::info!(
        accounts = usernames.len(),
        "moved second factors into the second-factor store"
    );
    Ok(())
}

/// The factors of `username`: none without asking the store when the account's flag is
/// clear.
///
/// # Errors
/// A database error, or the store's error ([`MfaError::Unavailable`] becomes 503).
pub async fn status(state: &AppState, username: &str) -> ApiResult<FactorStatus> {
    if !users::second_factor(&state.pool, username)
        .await?
        .unwrap_or(false)
    {
        return Ok(FactorStatus::default());
    }
    Ok(state.factors.status(username).await?)
}

/// Clears the account's flag when the store says no factor is left (after a factor was
/// turned off), unless an enabling is under way or began meanwhile (see
/// [`users::clear_second_factor`]).
///
/// # Errors
/// A database error, or the store's.
pub async fn clear_flag_if_none_left(state: &AppState, username: &str) -> ApiResult<()> {
    // The epoch is read before the store is asked: an enabling that begins after this read
    // changes it, and one under way keeps `second_factor_pending` raised.
    let epoch = users::factor_epoch(&state.pool, username).await?;
    if !state.factors.status(username).await?.any() {
        users::clear_second_factor(&state.pool, username, epoch).await?;
    }
    Ok(())
}

/// Runs `enabling` (a call to the store that may add a factor) between
/// [`users::begin_factor_change`] and [`users::end_factor_change`], so that the account's
/// flag is set before the factor can exist and cannot be cleared while it is being added.
/// A request given up half-way, or a mark that cannot be lowered (logged), leaves the
/// change marked as pending: the flag stays set.
///
/// # Errors
/// A database error before the store is asked, or `enabling`'s.
pub async fn enabling<T>(
    state: &AppState,
    username: &str,
    enabling: impl std::future::Future<Output = Result<T, MfaError>>,
) -> ApiResult<T> {
    users::begin_factor_change(&state.pool, username).await?;
    let result = enabling.await;
    // The store's answer matters more than the mark: fresh recovery codes are shown only
    // now. A mark left raised keeps the flag set, the safe side.
    if let Err(error) = users::end_factor_change(&state.pool, username).await {
        tracing::warn!(%username, %error, "an enabling stays marked as under way");
    }
    Ok(result?)
}
