//! The `messages` table: ciphertext with the server's id, time and authenticated sender.

use common::api::StoredMessage;
use common::membership::RoomId;
use common::primitives::NONCE_LEN;
use common::wire::{Base64, Base64Array};
use sqlx::{AnyPool, FromRow};

use super::Backend;
use crate::error::{ApiError, ApiResult};

/// A message to store; the id is assigned by the database.
#[derive(Debug)]
pub struct NewMessage<'a> {
    /// The room.
    pub room_id: RoomId,
    /// The epoch whose key encrypts it.
    pub epoch: u64,
    /// The authenticated sender (the session's user).
    pub sender: &'a str,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The 24-byte nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext.
    pub ciphertext: &'a [u8],
}

#[derive(FromRow)]
struct MessageRow {
    id: i64,
    epoch: i64,
    sender: String,
    received_at_ms: i64,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl MessageRow {
    fn into_message(self, room_id: RoomId) -> ApiResult<StoredMessage> {
        let corrupt = |what: &str| ApiError::CorruptData(format!("messages.{what}"));
        Ok(StoredMessage {
            id: self.id,
            room_id,
            epoch: u64::try_from(self.epoch).map_err(|_| corrupt("epoch"))?,
            sender: self.sender,
            received_at_ms: self.received_at_ms,
            nonce: Base64Array(
                self.nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("nonce"))?,
            ),
            ciphertext: Base64(self.ciphertext),
        })
    }
}

/// The window of the per-member rate limit, in milliseconds.
pub const RATE_WINDOW_MS: i64 = 60_000;

/// Stores a message and returns it as clients see it, unless its epoch is no longer the
/// room's current one or the log leaves a rotation pending, or its sender already posted
/// `messages_per_minute` messages in the room within the [`RATE_WINDOW_MS`] before
/// `received_at_ms` (0 means no limit). The checks and the insert are one statement (on
/// PostgreSQL under a lock of the room's row), so neither concurrent posts nor an entry
/// appended meanwhile can get past them.
///
/// # Errors
/// [`ApiError::Conflict`] `stale epoch` or `key rotation pending`; [`ApiError::RateLimited`]
/// with the whole seconds (at least 1) until the oldest counted message leaves the window;
/// a database error otherwise.
pub async fn insert(
    pool: &AnyPool,
    message: &NewMessage<'_>,
    messages_per_minute: u32,
) -> ApiResult<StoredMessage> {
    let epoch =
        i64::try_from(message.epoch).map_err(|_| ApiError::bad_request("epoch is too large"))?;
    let room_id = message.room_id.0.as_slice();
    let window_start = message.received_at_ms.saturating_sub(RATE_WINDOW_MS);
    let limit = i64::from(messages_per_minute);
    let mut transaction = pool.begin().await?;
    if Backend::of_connection(&transaction) == Backend::Postgres {
        // SQLite runs one writer at a time; PostgreSQL needs the room's row locked, so that
        // an entry appended meanwhile (which updates the row) waits for this message or this
        // message for it, and so that the room's messages commit in id order: a client that
        // asks for what follows the last id it saw never skips one committed later.
        sqlx::query("SELECT 1 FROM rooms WHERE room_id = $1 FOR NO KEY UPDATE")
            .bind(room_id)
            .execute(&mut *transaction)
            .await?;
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO messages (room_id, epoch, sender, received_at_ms, nonce, ciphertext) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE EXISTS (SELECT 1 FROM rooms WHERE room_id = $7 AND current_epoch = $8 \
             AND log_rotation_pending = 0) \
         AND ($9 = 0 OR (SELECT COUNT(*) FROM messages \
             WHERE room_id = $10 AND sender = $11 AND received_at_ms > $12) < $13) \
         RETURNING id",
    )
    .bind(room_id)
    .bind(epoch)
    .bind(message.sender)
    .bind(message.received_at_ms)
    .bind(message.nonce.as_slice())
    .bind(message.ciphertext)
    .bind(room_id)
    .bind(epoch)
    .bind(limit)
    .bind(room_id)
    .bind(message.sender)
    .bind(window_start)
    .bind(limit)
    .fetch_optional(&mut *transaction)
    .await?;
    if let (Some(id), Backend::Postgres) = (id, Backend::of_connection(&transaction)) {
        // Delivered at commit, in commit order: the instances push the message from here
        // (crate::relay).
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::relay::CHANNEL)
            .bind(crate::relay::message_payload(&message.room_id, id))
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    let Some(id) = id else {
        // The room's epoch moved on or a rotation became pending since the caller checked
        // (an entry was appended meanwhile), or the sender is over the rate limit.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT current_epoch, log_rotation_pending FROM rooms WHERE room_id = $1",
        )
        .bind(room_id)
        .fetch_optional(pool)
        .await?;
        return Err(match row {
            None => ApiError::not_found("room not found"),
            Some((current, _)) if current != epoch => ApiError::conflict("stale epoch"),
            Some((_, pending)) if super::flag(pending) => {
                ApiError::conflict("key rotation pending")
            }
            Some(_) => rate_limited(pool, message, messages_per_minute).await?,
        });
    };
    Ok(StoredMessage {
        id,
        room_id: message.room_id,
        epoch: message.epoch,
        sender: message.sender.to_owned(),
        received_at_ms: message.received_at_ms,
        nonce: Base64Array(message.nonce),
        ciphertext: Base64(message.ciphertext.to_vec()),
    })
}

/// The refusal of a message over the limit: the limit-th newest message of the sender in the
/// window is the one whose leaving makes room for another.
async fn rate_limited(
    pool: &AnyPool,
    message: &NewMessage<'_>,
    messages_per_minute: u32,
) -> ApiResult<ApiError> {
    let oldest_counted: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(received_at_ms) FROM (SELECT received_at_ms FROM messages \
         WHERE room_id = $1 AND sender = $2 AND received_at_ms > $3 \
         ORDER BY received_at_ms DESC LIMIT $4) AS counted",
    )
    .bind(message.room_id.0.as_slice())
    .bind(message.sender)
    .bind(message.received_at_ms.saturating_sub(RATE_WINDOW_MS))
    .bind(i64::from(messages_per_minute))
    .fetch_one(pool)
    .await?;
    let wait_ms = oldest_counted.map_or(0, |oldest| {
        oldest.saturating_add(RATE_WINDOW_MS) - message.received_at_ms
    });
    Ok(ApiError::RateLimited {
        limit: messages_per_minute,
        retry_after_s: retry_after_seconds(wait_ms),
    })
}

/// Whole seconds covering `wait_ms`, at least 1.
fn retry_after_seconds(wait_ms: i64) -> u64 {
    u64::try_from(wait_ms.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// The message `id` of a room, if it is stored.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn by_id(pool: &AnyPool, room_id: &RoomId, id: i64) -> ApiResult<Option<StoredMessage>> {
    let row: Option<MessageRow> = sqlx::query_as(
        "SELECT id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         WHERE room_id = $1 AND id = $2",
    )
    .bind(room_id.0.as_slice())
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| row.into_message(*room_id)).transpose()
}

/// One page of a room's messages: the `limit` newest with an id below `before` (all when
/// `None`), in ascending id order, and whether older ones remain.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn page(
    pool: &AnyPool,
    room_id: &RoomId,
    before: Option<i64>,
    limit: u32,
) -> ApiResult<(Vec<StoredMessage>, bool)> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         WHERE room_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(room_id.0.as_slice())
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    rows.reverse();
    let messages = rows
        .into_iter()
        .map(|row| row.into_message(*room_id))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((messages, has_more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(retry_after_seconds(-5), 1);
        assert_eq!(retry_after_seconds(0), 1);
        assert_eq!(retry_after_seconds(1), 1);
        assert_eq!(retry_after_seconds(1000), 1);
        assert_eq!(retry_after_seconds(1001), 2);
        assert_eq!(retry_after_seconds(59_999), 60);
    }
}
