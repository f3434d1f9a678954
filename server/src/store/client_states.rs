//! The `client_states` table: each user's durable client state, sealed by their client
//! (docs/PROTOCOL.md section 11), with the version sealed inside it repeated in the clear.

use sqlx::{Executor, Sqlite, SqlitePool};

use crate::error::{ApiError, ApiResult};

/// The stored version and sealed state of `username`, or `None` before the first upload.
///
/// # Errors
/// A database error.
pub async fn find(pool: &SqlitePool, username: &str) -> ApiResult<Option<(u64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, sealed FROM client_states WHERE username = ?")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(version, sealed)| (u64::try_from(version).unwrap_or(0), sealed)))
}

/// Stores `sealed` at `version` for `username` if no state is stored yet or the stored one
/// has a lower version; `executor` is the pool or a transaction.
///
/// # Errors
/// [`ApiError::Conflict`] when the stored version is `version` or higher (the client should
/// fetch, merge and retry); a database error.
pub async fn store_if_newer<'e>(
    executor: impl Executor<'e, Database = Sqlite>,
    username: &str,
    version: u64,
    sealed: &[u8],
    now_ms: i64,
) -> ApiResult<()> {
    let version = i64::try_from(version)
        .map_err(|_| ApiError::bad_request("client state version is too large"))?;
    let stored = sqlx::query(
        "INSERT INTO client_states (username, sealed, updated_at, version) VALUES (?, ?, ?, ?) \
         ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
         updated_at = excluded.updated_at, version = excluded.version \
         WHERE excluded.version > client_states.version",
    )
    .bind(username)
    .bind(sealed)
    .bind(now_ms)
    .bind(version)
    .execute(executor)
    .await?;
    if stored.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "a newer client state is stored; fetch it, merge and upload a higher version",
        ));
    }
    Ok(())
}
