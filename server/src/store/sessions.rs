//! The `sessions` table: login sessions keyed by the SHA-256 of their random token.
//!
//! The token itself only ever exists in the client's cookie and in the response that set
//! it, so a copy of the database cannot be used to take over a session.

use sqlx::SqlitePool;

use crate::error::ApiResult;

/// How stale `last_seen_at` may get before a request updates it, in milliseconds.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// A session that was found and is still valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The logged-in account.
    pub username: String,
    /// When the session ends, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// Stores a new session.
///
/// # Errors
/// A database error.
pub async fn insert(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    username: &str,
    now_ms: i64,
    expires_at: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, username, created_at, expires_at, last_seen_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(token_hash.as_slice())
    .bind(username)
    .bind(now_ms)
    .bind(expires_at)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Finds the session with this token hash and marks it as seen now (to the minute). An
/// expired session is deleted and reported as missing.
///
/// # Errors
/// A database error.
pub async fn find_and_touch(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now_ms: i64,
) -> ApiResult<Option<Session>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT username, expires_at FROM sessions WHERE token_hash = ?")
            .bind(token_hash.as_slice())
            .fetch_optional(pool)
            .await?;
    let Some((username, expires_at)) = row else {
        return Ok(None);
    };
    if expires_at <= now_ms {
        delete(pool, token_hash).await?;
        return Ok(None);
    }
    // Writing on every request would serialize all requests on SQLite's single writer, so
    // the time is only recorded when the stored one is older than a minute.
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?")
        .bind(now_ms)
        .bind(token_hash.as_slice())
        .bind(now_ms.saturating_sub(LAST_SEEN_RESOLUTION_MS))
        .execute(pool)
        .await?;
    Ok(Some(Session {
        username,
        expires_at,
    }))
}

/// Deletes one session (logout).
///
/// # Errors
/// A database error.
pub async fn delete(pool: &SqlitePool, token_hash: &[u8; 32]) -> ApiResult<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(token_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes every expired session; returns how many.
///
/// # Errors
/// A database error.
pub async fn delete_expired(pool: &SqlitePool, now_ms: i64) -> ApiResult<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(now_ms)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}
