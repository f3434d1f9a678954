//! The `join_requests` and `invite_uses` tables: pending requests to join a room with an
//! invite, and how many requests each invite has admitted.

use common::api::PendingJoinRequest;
use common::membership::RoomId;
use common::primitives::KEY_LEN;
use sqlx::{AnyConnection, AnyPool, FromRow};

use super::is_unique_violation;
use super::users::identity_from_parts;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// A join request to store.
#[derive(Debug)]
pub struct NewJoinRequest<'a> {
    /// The room.
    pub room_id: RoomId,
    /// Who asks (the session's user).
    pub username: &'a str,
    /// `invite_token_hash(token)` of the invite used.
    pub token_hash: [u8; KEY_LEN],
    /// The invite's `max_uses` from the log.
    pub max_uses: u32,
    /// When the server received the request, milliseconds since the Unix epoch.
    pub requested_at_ms: i64,
}

/// Stores a join request and counts one use of its invite, in one transaction.
///
/// # Errors
/// [`ApiError::Conflict`] `a join request is already pending` when the user has one for
/// this room; [`ErrorCode::InviteUsedUp`] `invite used up` when the invite has admitted `max_uses`
/// requests already (nothing is stored then); a database error otherwise.
pub async fn create(pool: &AnyPool, request: &NewJoinRequest<'_>) -> ApiResult<()> {
    let room_id = request.room_id.0.as_slice();
    let mut transaction = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO join_requests (room_id, username, token_hash, requested_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(room_id)
    .bind(request.username)
    .bind(request.token_hash.as_slice())
    .bind(request.requested_at_ms)
    .execute(&mut *transaction)
    .await;
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => {
            return Err(ApiError::conflict("a join request is already pending"));
        }
        Err(error) => return Err(error.into()),
    }
    // One statement both checks and counts, so concurrent requests cannot overspend.
    let counted = sqlx::query(
        "INSERT INTO invite_uses (room_id, token_hash, uses) VALUES ($1, $2, 1) \
         ON CONFLICT (room_id, token_hash) DO UPDATE SET uses = invite_uses.uses + 1 WHERE invite_uses.uses < $3",
    )
    .bind(room_id)
    .bind(request.token_hash.as_slice())
    .bind(i64::from(request.max_uses))
    .execute(&mut *transaction)
    .await?;
    if counted.rows_affected() == 0 {
        // Dropping the transaction rolls the request back.
        return Err(ApiError::refused(ErrorCode::InviteUsedUp, "invite used up"));
    }
    transaction.commit().await?;
    Ok(())
}

/// Deletes the join request of `username` for a room. Returns whether there was one.
///
/// # Errors
/// A database error.
pub async fn delete(
    connection: &mut AnyConnection,
    room_id: &RoomId,
    username: &str,
) -> ApiResult<bool> {
    let deleted = sqlx::query("DELETE FROM join_requests WHERE room_id = $1 AND username = $2")
        .bind(room_id.0.as_slice())
        .bind(username)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

#[derive(FromRow)]
struct PendingRow {
    username: String,
    requested_at_ms: i64,
    x25519_public: Vec<u8>,
    ed25519_public: Vec<u8>,
    identity_signature: Vec<u8>,
}

/// The pending join requests of a room, oldest first, with each requester's published
/// identity.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for an identity that does not verify.
pub async fn list(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Vec<PendingJoinRequest>> {
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT join_requests.username, join_requests.requested_at_ms, users.x25519_public, \
         users.ed25519_public, users.identity_signature \
         FROM join_requests JOIN users ON users.username = join_requests.username \
         WHERE join_requests.room_id = $1 \
         ORDER BY join_requests.requested_at_ms, join_requests.rowid",
    )
    .bind(room_id.0.as_slice())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let identity = identity_from_parts(
                &row.username,
                &row.x25519_public,
                &row.ed25519_public,
                &row.identity_signature,
            )?;
            Ok(PendingJoinRequest {
                username: row.username,
                identity,
                requested_at_ms: row.requested_at_ms,
            })
        })
        .collect()
}
