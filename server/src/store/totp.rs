//! The `user_totp` and `recovery_codes` tables: each user's sealed TOTP secrets, the last
//! time step a code was accepted for, and the MACs of their unused recovery codes.

use sqlx::{AnyPool, FromRow};

use crate::error::{ApiError, ApiResult};

/// A user's TOTP row.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The active secret, sealed; `None` while TOTP is not enabled.
    pub sealed_secret: Option<Vec<u8>>,
    /// The secret shown by the latest setup, sealed; `None` when there is none.
    pub sealed_pending_secret: Option<Vec<u8>>,
    /// The last time step whose code was accepted (0: none yet).
    pub last_step: u64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("enabled", &self.sealed_secret.is_some())
            .field("pending", &self.sealed_pending_secret.is_some())
            .field("last_step", &self.last_step)
            .finish()
    }
}

fn to_i64(step: u64) -> ApiResult<i64> {
    i64::try_from(step).map_err(|_| ApiError::CorruptData("totp step out of range".to_owned()))
}

#[derive(FromRow)]
struct TotpRow {
    sealed_secret: Option<Vec<u8>>,
    sealed_pending_secret: Option<Vec<u8>>,
    last_step: i64,
}

/// The TOTP row of `username`, if they ever set TOTP up.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a negative stored step.
pub async fn find(pool: &AnyPool, username: &str) -> ApiResult<Option<TotpRecord>> {
    let row: Option<TotpRow> = sqlx::query_as(
        "SELECT sealed_secret, sealed_pending_secret, last_step FROM user_totp \
         WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(TotpRecord {
            sealed_secret: row.sealed_secret,
            sealed_pending_secret: row.sealed_pending_secret,
            last_step: u64::try_from(row.last_step)
                .map_err(|_| ApiError::CorruptData("user_totp.last_step".to_owned()))?,
        })
    })
    .transpose()
}

/// Whether `username` has TOTP enabled.
///
/// # Errors
/// A database error.
pub async fn is_enabled(pool: &AnyPool, username: &str) -> ApiResult<bool> {
    let enabled: Option<i64> = sqlx::query_scalar(
        "SELECT CASE WHEN sealed_secret IS NOT NULL THEN 1 ELSE 0 END FROM user_totp \
         WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    Ok(enabled.is_some_and(super::flag))
}

/// Stores a pending secret for `username`, replacing an earlier pending one. The active
/// secret, if any, is left alone.
///
/// # Errors
/// A database error.
pub async fn set_pending(pool: &AnyPool, username: &str, sealed: &[u8]) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO user_totp (username, sealed_pending_secret) VALUES ($1, $2) \
         ON CONFLICT (username) DO UPDATE SET \
         sealed_pending_secret = excluded.sealed_pending_secret",
    )
    .bind(username)
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes the pending secret `sealed_pending` the active one, records `step` as used, and
/// replaces the user's recovery codes with `recovery_code_macs`, in one transaction.
///
/// # Errors
/// [`ApiError::Conflict`] when the pending secret changed meanwhile (another setup) or TOTP
/// was enabled meanwhile; a database error otherwise.
pub async fn enable(
    pool: &AnyPool,
    username: &str,
    sealed_pending: &[u8],
    step: u64,
    recovery_code_macs: &[[u8; 32]],
) -> ApiResult<()> {
    let mut transaction = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE user_totp SET sealed_secret = sealed_pending_secret, \
         sealed_pending_secret = NULL, last_step = $1 \
         WHERE username = $2 AND sealed_pending_secret = $3 AND sealed_secret IS NULL",
    )
    .bind(to_i64(step)?)
    .bind(username)
    .bind(sealed_pending)
    .execute(&mut *transaction)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ApiError::conflict("totp setup changed, start again"));
    }
    sqlx::query("DELETE FROM recovery_codes WHERE username = $1")
        .bind(username)
        .execute(&mut *transaction)
        .await?;
    for mac in recovery_code_macs {
        sqlx::query("INSERT INTO recovery_codes (username, code_mac) VALUES ($1, $2)")
            .bind(username)
            .bind(mac.as_slice())
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// Records that a code of `step` was accepted for `username`, unless a code of this step or
/// a later one was accepted already; returns whether it was recorded. This is the check that
/// makes a code single-use even when two requests carry it at once.
///
/// # Errors
/// A database error.
pub async fn advance_step(pool: &AnyPool, username: &str, step: u64) -> ApiResult<bool> {
    let step = to_i64(step)?;
    let updated = sqlx::query(
        "UPDATE user_totp SET last_step = $1 \
         WHERE username = $2 AND sealed_secret IS NOT NULL AND last_step < $3",
    )
    .bind(step)
    .bind(username)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Spends the recovery code with this MAC; returns whether it was there (unused).
///
/// # Errors
/// A database error.
pub async fn spend_recovery_code(
    pool: &AnyPool,
    username: &str,
    code_mac: &[u8; 32],
) -> ApiResult<bool> {
    let deleted = sqlx::query("DELETE FROM recovery_codes WHERE username = $1 AND code_mac = $2")
        .bind(username)
        .bind(code_mac.as_slice())
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// How many unused recovery codes `username` has.
///
/// # Errors
/// A database error.
pub async fn recovery_codes_left(pool: &AnyPool, username: &str) -> ApiResult<u32> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE username = $1")
        .bind(username)
        .fetch_one(pool)
        .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Turns TOTP off for `username`: deletes their TOTP row and recovery codes.
///
/// # Errors
/// A database error.
pub async fn disable(pool: &AnyPool, username: &str) -> ApiResult<()> {
    let mut transaction = pool.begin().await?;
    for table in ["recovery_codes", "user_totp"] {
        // The table names are the constants above, never input.
        sqlx::query(&format!("DELETE FROM {table} WHERE username = $1"))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
