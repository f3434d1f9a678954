//! The `sessions` table: login sessions keyed by the SHA-256 of their random token, each
//! with a random public id (for listing and revoking), the client's address and user agent,
//! and when it was created and last used.
//!
//! The token itself only ever exists in the client's cookie and in the response that set
//! it, so a copy of the database cannot be used to take over a session. A session ends at
//! `expires_at` (absolute) or when it has not been used for the idle time (measured from
//! `last_seen_at`, which is only written when it is a minute old, so a session may end up
//! to a minute early).

use common::api::SessionInfo;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::error::ApiResult;

/// How stale `last_seen_at` may get before a request updates it, in milliseconds.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// A new session as login or register stores it.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// SHA-256 of the token.
    pub token_hash: &'a [u8; 32],
    /// The random public id.
    pub public_id: &'a str,
    /// The logged-in account.
    pub username: &'a str,
    /// The client's IP address.
    pub ip: &'a str,
    /// The client's user agent.
    pub user_agent: &'a str,
    /// When the session ends at the latest, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// A session that was found and is still valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The logged-in account.
    pub username: String,
    /// The session's public id.
    pub public_id: String,
    /// When the session ends at the latest, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// Stores a new session, created and last seen at `now_ms`.
///
/// # Errors
/// A database error.
pub async fn insert(pool: &AnyPool, session: &NewSession<'_>, now_ms: i64) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, public_id, username, ip, user_agent, created_at, \
         expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(session.token_hash.as_slice())
    .bind(session.public_id)
    .bind(session.username)
    .bind(session.ip)
    .bind(session.user_agent)
    .bind(now_ms)
    .bind(session.expires_at)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Finds the session with this token hash and marks it as seen now (to the minute). A
/// session past its absolute expiry, or unused for `idle_ms` or longer, is deleted and
/// reported as missing.
///
/// # Errors
/// A database error.
pub async fn find_and_touch(
    pool: &AnyPool,
    token_hash: &[u8; 32],
    now_ms: i64,
    idle_ms: i64,
) -> ApiResult<Option<Session>> {
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT username, public_id, expires_at, last_seen_at FROM sessions \
         WHERE token_hash = $1",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(pool)
    .await?;
    let Some((username, public_id, expires_at, last_seen_at)) = row else {
        return Ok(None);
    };
    if expires_at <= now_ms || last_seen_at.saturating_add(idle_ms) <= now_ms {
        delete(pool, token_hash).await?;
        return Ok(None);
    }
    // Writing on every request would serialize all requests on SQLite's single writer (an
    // UPDATE takes the write lock even when it matches no row, and then waits for the
    // message writer's transactions), so the time is only recorded when the stored one is
    // older than a minute, and the statement only runs then.
    let stale_before = now_ms.saturating_sub(LAST_SEEN_RESOLUTION_MS);
    if last_seen_at < stale_before {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $3",
        )
        .bind(now_ms)
        .bind(token_hash.as_slice())
        .bind(stale_before)
        .execute(pool)
        .await?;
    }
    Ok(Some(Session {
        username,
        public_id,
        expires_at,
    }))
}

/// Deletes one session (logout).
///
/// # Errors
/// A database error.
pub async fn delete(pool: &AnyPool, token_hash: &[u8; 32]) -> ApiResult<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes every session past its absolute expiry or unused for `idle_ms`; returns how
/// many.
///
/// # Errors
/// A database error.
pub async fn delete_expired(pool: &AnyPool, now_ms: i64, idle_ms: i64) -> ApiResult<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now_ms)
        .bind(now_ms.saturating_sub(idle_ms))
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

#[derive(FromRow)]
struct SessionRow {
    public_id: String,
    created_at: i64,
    last_seen_at: i64,
    ip: String,
    user_agent: String,
}

/// The live sessions of `username`, newest first, with `current` set on the one whose
/// public id is `current_id`.
///
/// # Errors
/// A database error.
pub async fn list(
    pool: &AnyPool,
    username: &str,
    current_id: &str,
    now_ms: i64,
    idle_ms: i64,
) -> ApiResult<Vec<SessionInfo>> {
    let rows: Vec<SessionRow> = sqlx::query_as(
        "SELECT public_id, created_at, last_seen_at, ip, user_agent FROM sessions \
         WHERE username = $1 AND expires_at > $2 AND last_seen_at > $3 \
         ORDER BY created_at DESC, rowid DESC",
    )
    .bind(username)
    .bind(now_ms)
    .bind(now_ms.saturating_sub(idle_ms))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionInfo {
            current: row.public_id == current_id,
            id: row.public_id,
            created_at_ms: row.created_at,
            last_seen_at_ms: row.last_seen_at,
            ip: row.ip,
            user_agent: row.user_agent,
        })
        .collect())
}

/// Deletes the session of `username` with this public id; returns whether there was one.
///
/// # Errors
/// A database error.
pub async fn delete_by_public_id(
    pool: &AnyPool,
    username: &str,
    public_id: &str,
) -> ApiResult<bool> {
    let result = sqlx::query("DELETE FROM sessions WHERE username = $1 AND public_id = $2")
        .bind(username)
        .bind(public_id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes every session of `username` except the one with public id `keep` (`None`: all of
/// them); returns the public ids of the deleted sessions, whose sockets are to be closed.
///
/// # Errors
/// A database error.
pub async fn delete_all_of_user(
    connection: &mut AnyConnection,
    username: &str,
    keep: Option<&str>,
) -> ApiResult<Vec<String>> {
    let deleted = sqlx::query_scalar(
        "DELETE FROM sessions WHERE username = $1 AND public_id IS DISTINCT FROM $2 RETURNING public_id",
    )
    .bind(username)
    .bind(keep)
    .fetch_all(connection)
    .await?;
    Ok(deleted)
}
