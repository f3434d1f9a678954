//! Second factors from the chat server's side: which [`SecondFactors`] this server uses
//! (the in-process store of the `mfa` crate, or the remote `mfa-service` with `--mfa-url`),
//! and the `users.second_factor` flag that keeps logins of accounts without a second factor
//! away from the store, so that they keep working while a remote store is down.
//!
//! The flag is set before a factor is enabled and cleared only once the store says no
//! factor is left, so no account has a factor while its flag is clear. A set flag only
//! means "ask the store"; the store has the last word.

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
        let factors = Factors::open(&config.mfa_database_url(), server_key).await?;
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
    factors.import(&old).await?;
    let usernames: Vec<String> = old.into_iter().map(|user| user.username).collect();
    legacy_factors::delete(pool, &usernames)
        .await
        .map_err(StartupError::Legacy)?;
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
/// turned off).
///
/// # Errors
/// A database error, or the store's.
pub async fn clear_flag_if_none_left(state: &AppState, username: &str) -> ApiResult<()> {
    if !state.factors.status(username).await?.any() {
        users::set_second_factor(&state.pool, username, false).await?;
    }
    Ok(())
}

/// Whether an error of the store means it could not be asked (so the request fails closed).
pub fn is_unavailable(error: &MfaError) -> bool {
    matches!(error, MfaError::Unavailable(_))
}
