//! The `user_pins` table: each user's trust-on-first-use pins, sealed by their client.

use sqlx::{Executor, Sqlite, SqlitePool};

use crate::error::ApiResult;

/// The sealed pins of `username`, or `None` before the first upload.
///
/// # Errors
/// A database error.
pub async fn find(pool: &SqlitePool, username: &str) -> ApiResult<Option<Vec<u8>>> {
    let sealed = sqlx::query_scalar("SELECT sealed FROM user_pins WHERE username = ?")
        .bind(username)
        .fetch_optional(pool)
        .await?;
    Ok(sealed)
}

/// Stores the sealed pins of `username`, replacing earlier ones; `executor` is the pool or
/// a transaction.
///
/// # Errors
/// A database error.
pub async fn upsert<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    username: &str,
    sealed: &[u8],
    now_ms: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO user_pins (username, sealed, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
         updated_at = excluded.updated_at",
    )
    .bind(username)
    .bind(sealed)
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}
