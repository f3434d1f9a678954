//! The `login_challenges` table: logins whose password step succeeded and that wait for a
//! TOTP or recovery code, keyed by the SHA-256 of the random challenge the client holds.

use sqlx::AnyPool;

use crate::error::ApiResult;

/// Stores a challenge for `username` that expires at `expires_at` (milliseconds since the
/// Unix epoch) and allows `attempts` wrong codes; expired challenges of every user are swept
/// at the same time.
///
/// # Errors
/// A database error.
pub async fn create(
    pool: &AnyPool,
    challenge_hash: &[u8; 32],
    username: &str,
    now_ms: i64,
    expires_at: i64,
    attempts: u32,
) -> ApiResult<()> {
    sqlx::query("DELETE FROM login_challenges WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO login_challenges (challenge_hash, username, expires_at, attempts_left) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(challenge_hash.as_slice())
    .bind(username)
    .bind(expires_at)
    .bind(i64::from(attempts))
    .execute(pool)
    .await?;
    Ok(())
}

/// The username of a live challenge with attempts left; `None` for an unknown, expired or
/// used-up one.
///
/// # Errors
/// A database error.
pub async fn find(
    pool: &AnyPool,
    challenge_hash: &[u8; 32],
    now_ms: i64,
) -> ApiResult<Option<String>> {
    let username = sqlx::query_scalar(
        "SELECT username FROM login_challenges \
         WHERE challenge_hash = $1 AND expires_at > $2 AND attempts_left > 0",
    )
    .bind(challenge_hash.as_slice())
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    Ok(username)
}

/// Counts a wrong code against a challenge, deleting it when no attempt is left.
///
/// # Errors
/// A database error.
pub async fn record_wrong_code(pool: &AnyPool, challenge_hash: &[u8; 32]) -> ApiResult<()> {
    sqlx::query(
        "UPDATE login_challenges SET attempts_left = attempts_left - 1 \
         WHERE challenge_hash = $1 AND attempts_left > 0",
    )
    .bind(challenge_hash.as_slice())
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM login_challenges WHERE challenge_hash = $1 AND attempts_left = 0")
        .bind(challenge_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes a challenge once its login succeeded; returns whether it was still there, so
/// that of two requests completing the same challenge only one starts a session.
///
/// # Errors
/// A database error.
pub async fn consume(pool: &AnyPool, challenge_hash: &[u8; 32]) -> ApiResult<bool> {
    let deleted = sqlx::query("DELETE FROM login_challenges WHERE challenge_hash = $1")
        .bind(challenge_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}
