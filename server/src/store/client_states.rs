//! The `client_states` table: each user's durable client state, sealed by their client
//! (docs/PROTOCOL.md section 11), with the version sealed inside it repeated in the clear.

use sqlx::{Any, AnyPool, Executor};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// The stored version and sealed state of `username`, or `None` before the first upload.
///
/// # Errors
/// A database error.
pub async fn find(pool: &AnyPool, username: &str) -> ApiResult<Option<(u64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, sealed FROM client_states WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(version, sealed)| (u64::try_from(version).unwrap_or(0), sealed)))
}

/// Stores `sealed` at `version` for `username` if the stored state is still at
/// `base_version` (0: none stored, or a protocol-1 pins blob); `executor` is the pool or a
/// transaction.
///
/// # Errors
/// [`ApiError::BadRequest`] when `version` is not above `base_version` or does not fit the
/// database; 409 [`ErrorCode::StateVersionConflict`] when the stored version is not `base_version` (the
/// client should fetch, merge and retry); a database error.
pub async fn compare_and_store<'e>(
    executor: impl Executor<'e, Database = Any>,
    username: &str,
    base_version: u64,
    version: u64,
    sealed: &[u8],
    now_ms: i64,
) -> ApiResult<()> {
    let too_large = || ApiError::bad_request("client state version is too large");
    let base = i64::try_from(base_version).map_err(|_| too_large())?;
    let version = i64::try_from(version).map_err(|_| too_large())?;
    if version <= base {
        return Err(ApiError::bad_request(
            "client state version must be above base_version",
        ));
    }
    // One statement each, so two uploads built on the same base cannot both win: with base
    // 0 the insert, or the update of a protocol-1 pins blob (version 0); otherwise the update
    // of the row while it is still at the base.
    let stored = if base == 0 {
        sqlx::query(
            "INSERT INTO client_states (username, sealed, updated_at, version) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
             updated_at = excluded.updated_at, version = excluded.version \
             WHERE client_states.version = 0",
        )
        .bind(username)
        .bind(sealed)
        .bind(now_ms)
        .bind(version)
        .execute(executor)
        .await?
    } else {
        sqlx::query(
            "UPDATE client_states SET sealed = $1, updated_at = $2, version = $3 \
             WHERE username = $4 AND version = $5",
        )
        .bind(sealed)
        .bind(now_ms)
        .bind(version)
        .bind(username)
        .bind(base)
        .execute(executor)
        .await?
    };
    if stored.rows_affected() == 1 {
        return Ok(());
    }
    Err(ApiError::refused(
        ErrorCode::StateVersionConflict,
        "the stored client state is not the one this upload was built on; fetch it, merge and upload again",
    ))
}
