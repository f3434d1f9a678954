//! The `messages` table: ciphertext with the server's id, time and authenticated sender.

use common::api::StoredMessage;
use common::membership::RoomId;
use common::primitives::NONCE_LEN;
use common::wire::{Base64, Base64Array};
use sqlx::{FromRow, SqlitePool};

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

/// Stores a message and returns it as clients see it.
///
/// # Errors
/// A database error.
pub async fn insert(pool: &SqlitePool, message: &NewMessage<'_>) -> ApiResult<StoredMessage> {
    let epoch =
        i64::try_from(message.epoch).map_err(|_| ApiError::bad_request("epoch is too large"))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (room_id, epoch, sender, received_at_ms, nonce, ciphertext) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(message.room_id.0.as_slice())
    .bind(epoch)
    .bind(message.sender)
    .bind(message.received_at_ms)
    .bind(message.nonce.as_slice())
    .bind(message.ciphertext)
    .fetch_one(pool)
    .await?;
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

/// One page of a room's messages: the `limit` newest with an id below `before` (all when
/// `None`), in ascending id order, and whether older ones remain.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn page(
    pool: &SqlitePool,
    room_id: &RoomId,
    before: Option<i64>,
    limit: u32,
) -> ApiResult<(Vec<StoredMessage>, bool)> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
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
