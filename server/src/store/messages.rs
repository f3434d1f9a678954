//! The `messages` table: ciphertext with the server's id, time and authenticated sender.

use common::api::StoredMessage;
use common::membership::RoomId;
use common::primitives::NONCE_LEN;
use common::wire::{Base64, Base64Array};
use std::collections::BTreeSet;

use sqlx::{AnyConnection, AnyPool, FromRow};

use super::Backend;
use crate::error::{ApiError, ApiResult};

/// A message to store; the id is assigned by the database.
#[derive(Debug)]
pub struct NewMessage {
    /// The room.
    pub room_id: RoomId,
    /// The epoch whose key encrypts it.
    pub epoch: u64,
    /// The authenticated sender (the session's user).
    pub sender: String,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The 24-byte nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
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

/// Stores a batch of messages in one transaction (one fsync) and returns, for each in
/// order, the message as clients see it or its refusal. A message is refused when its
/// sender is no longer a member (removed while the message waited), when its epoch is no
/// longer the room's current one or the log leaves a rotation pending, or when its
/// sender already posted the room policy's messages per minute (`rooms.messages_per_minute`,
/// 0 for no limit) within the [`RATE_WINDOW_MS`] before its `received_at_ms` (the batch's
/// earlier messages count). Each message's checks and insert are one statement, and on PostgreSQL
/// the batch first locks the rows of its rooms (in room id order, so two instances' batches
/// never deadlock): neither concurrent posts nor an entry appended meanwhile get past the
/// checks, and a room's messages commit in id order. On PostgreSQL the transaction also
/// announces the stored messages to every instance ([`crate::relay`]), delivered at commit
/// in commit order.
///
/// # Errors
/// A database error, which fails the whole batch (nothing of it is stored). A refusal is
/// per message: [`ApiError::Conflict`] `stale epoch` or `key rotation pending`,
/// [`ApiError::RateLimited`] with the whole seconds (at least 1) until the oldest counted
/// message leaves the window, [`ApiError::NotFound`] for a room deleted meanwhile or a
/// sender removed meanwhile, [`ApiError::Unavailable`] when the reason cannot be read.
pub async fn insert_batch(
    pool: &AnyPool,
    batch: &[NewMessage],
) -> ApiResult<Vec<ApiResult<StoredMessage>>> {
    let mut connection = pool.acquire().await?;
    let (mut transaction, backend) = super::begin_write(&mut connection).await?;
    let rooms: BTreeSet<[u8; 32]> = batch.iter().map(|message| message.room_id.0).collect();
    for room_id in rooms {
        super::rooms::lock_for_writing(&mut transaction, &RoomId(room_id)).await?;
    }
    let mut ids = Vec::with_capacity(batch.len());
    for message in batch {
        ids.push(insert_one(&mut transaction, message).await?);
    }
    if backend == Backend::Postgres {
        let stored: Vec<(RoomId, i64)> = batch
            .iter()
            .zip(&ids)
            .filter_map(|(message, id)| id.map(|id| (message.room_id, id)))
            .collect();
        for payload in crate::relay::message_payloads(&stored) {
            crate::relay::notify(&mut *transaction, &payload).await?;
        }
    }
    transaction.commit().await?;
    drop(connection);
    let mut results = Vec::with_capacity(batch.len());
    for (message, id) in batch.iter().zip(ids) {
        results.push(match id {
            Some(id) => Ok(StoredMessage {
                id,
                room_id: message.room_id,
                epoch: message.epoch,
                sender: message.sender.clone(),
                received_at_ms: message.received_at_ms,
                nonce: Base64Array(message.nonce),
                ciphertext: Base64(message.ciphertext.clone()),
            }),
            // Not stored: a failure to say why must not fail the messages that were.
            None => Err(refusal(pool, message).await.unwrap_or_else(|error| {
                tracing::error!(%error, "cannot tell why a message was refused");
                ApiError::Unavailable("the message was not stored, try again")
            })),
        });
    }
    Ok(results)
}

/// Inserts one message if its checks pass, returning its id.
async fn insert_one(
    connection: &mut AnyConnection,
    message: &NewMessage,
) -> ApiResult<Option<i64>> {
    let epoch =
        i64::try_from(message.epoch).map_err(|_| ApiError::bad_request("epoch is too large"))?;
    let window_start = message.received_at_ms.saturating_sub(RATE_WINDOW_MS);
    let id = sqlx::query_scalar(
        "INSERT INTO messages (room_id, epoch, sender, received_at_ms, nonce, ciphertext) \
         SELECT $1, $2, $3, $4, $5, $6 FROM rooms \
         WHERE rooms.room_id = $1 AND rooms.current_epoch = $2 \
         AND rooms.log_rotation_pending = 0 \
         AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND username = $3) \
         AND (rooms.messages_per_minute = 0 OR (SELECT COUNT(*) FROM messages \
             WHERE room_id = $1 AND sender = $3 AND received_at_ms > $7) \
             < rooms.messages_per_minute) \
         RETURNING id",
    )
    .bind(message.room_id.0.as_slice())
    .bind(epoch)
    .bind(&message.sender)
    .bind(message.received_at_ms)
    .bind(message.nonce.as_slice())
    .bind(message.ciphertext.as_slice())
    .bind(window_start)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(id)
}

/// Why a message of a committed batch was not stored: the room is gone or the sender is no
/// longer a member, the room's epoch moved on or a rotation became pending (an entry was
/// appended while the message waited), or the sender is over the rate limit.
async fn refusal(pool: &AnyPool, message: &NewMessage) -> ApiResult<ApiError> {
    let epoch = i64::try_from(message.epoch).unwrap_or(i64::MAX);
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT current_epoch, log_rotation_pending, messages_per_minute FROM rooms \
         WHERE room_id = $1",
    )
    .bind(message.room_id.0.as_slice())
    .fetch_optional(pool)
    .await?;
    let member: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM room_members WHERE room_id = $1 AND username = $2")
            .bind(message.room_id.0.as_slice())
            .bind(&message.sender)
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        None => ApiError::not_found("room not found"),
        Some(_) if member.is_none() => ApiError::not_found("room not found"),
        Some((current, _, _)) if current != epoch => ApiError::conflict("stale epoch"),
        Some((_, pending, _)) if super::flag(pending) => ApiError::conflict("key rotation pending"),
        Some((_, _, messages_per_minute)) => {
            let limit = u32::try_from(messages_per_minute)
                .map_err(|_| ApiError::CorruptData("rooms.messages_per_minute".to_owned()))?;
            rate_limited(pool, message, limit).await?
        }
    })
}

/// The refusal of a message over the limit: the limit-th newest message of the sender in the
/// window is the one whose leaving makes room for another.
async fn rate_limited(
    pool: &AnyPool,
    message: &NewMessage,
    messages_per_minute: u32,
) -> ApiResult<ApiError> {
    let oldest_counted: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(received_at_ms) FROM (SELECT received_at_ms FROM messages \
         WHERE room_id = $1 AND sender = $2 AND received_at_ms > $3 \
         ORDER BY received_at_ms DESC LIMIT $4) AS counted",
    )
    .bind(message.room_id.0.as_slice())
    .bind(&message.sender)
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

/// The stored messages among `wanted` (room and id), in id order; those deleted since are
/// left out. One query, over the range of the ids.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn by_ids(pool: &AnyPool, wanted: &[(RoomId, i64)]) -> ApiResult<Vec<StoredMessage>> {
    let (Some(first), Some(last)) = (
        wanted.iter().map(|(_, id)| *id).min(),
        wanted.iter().map(|(_, id)| *id).max(),
    ) else {
        return Ok(Vec::new());
    };
    let wanted: BTreeSet<(i64, [u8; 32])> = wanted.iter().map(|(room, id)| (*id, room.0)).collect();
    let rows: Vec<(Vec<u8>, MessageRow)> = sqlx::query_as::<_, RoomMessageRow>(
        "SELECT room_id, id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         WHERE id >= $1 AND id <= $2 ORDER BY id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.room_id, row.message))
    .collect();
    let mut messages = Vec::with_capacity(wanted.len());
    for (room, row) in rows {
        let room: [u8; 32] = room
            .try_into()
            .map_err(|_| ApiError::CorruptData("messages.room_id".into()))?;
        if wanted.contains(&(row.id, room)) {
            messages.push(row.into_message(RoomId(room))?);
        }
    }
    Ok(messages)
}

#[derive(FromRow)]
struct RoomMessageRow {
    room_id: Vec<u8>,
    #[sqlx(flatten)]
    message: MessageRow,
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
    rows.reverse();
    into_page(rows, room_id, limit, true)
}

/// A page from up to `limit + 1` rows in ascending id order: the `limit` nearest the start
/// of the query (the newest for a page back, `from_end`; the oldest for a resume) and
/// whether a row was left over.
fn into_page(
    mut rows: Vec<MessageRow>,
    room_id: &RoomId,
    limit: u32,
    from_end: bool,
) -> ApiResult<(Vec<StoredMessage>, bool)> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    if has_more {
        if from_end {
            rows.drain(..rows.len() - limit);
        } else {
            rows.truncate(limit);
        }
    }
    let messages = rows
        .into_iter()
        .map(|row| row.into_message(*room_id))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((messages, has_more))
}

/// The `limit` oldest messages of a room with an id above `after`, in ascending id order,
/// and whether newer ones remain.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn after(
    pool: &AnyPool,
    room_id: &RoomId,
    after: i64,
    limit: u32,
) -> ApiResult<(Vec<StoredMessage>, bool)> {
    let rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         WHERE room_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(room_id.0.as_slice())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    into_page(rows, room_id, limit, false)
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
