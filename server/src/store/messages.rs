//! The `messages` table: ciphertext with the server's id, time and authenticated sender.

use common::api::StoredMessage;
use common::membership::RoomId;
use common::primitives::NONCE_LEN;
use common::wire::{Base64, Base64Array};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sqlx::{AnyConnection, AnyPool, FromRow};

use super::rooms::PostingRules;
use super::Backend;
use crate::error::{ApiError, ApiResult, ErrorCode};

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
/// earlier messages count).
///
/// The checks read what they need once per room of the batch ([`RoomChecks::read`]: three
/// queries at most), decide every message, and the admitted ones are stored by one
/// multi-row insert, all inside the batch's write transaction: SQLite runs one writer at a
/// time, and on PostgreSQL the batch first locks the rows of its rooms (in room id order, so
/// two instances' batches never deadlock), so neither concurrent posts nor an entry appended
/// meanwhile can change what the checks read before the batch commits, and a room's
/// messages commit in id order. On PostgreSQL the transaction also announces the stored
/// messages to every instance ([`crate::relay`]), delivered at commit in commit order.
///
/// # Errors
/// A database error, which fails the whole batch (nothing of it is stored). A refusal is
/// per message: [`ErrorCode::StaleEpoch`] `stale epoch` or [`ErrorCode::KeyRotationPending`] `key rotation pending`,
/// [`ApiError::RateLimited`] with the whole seconds (at least 1) until the oldest counted
/// message leaves the window, [`ApiError::NotFound`] for a room deleted meanwhile or a
/// sender removed meanwhile.
pub async fn insert_batch(
    pool: &AnyPool,
    batch: &[NewMessage],
) -> ApiResult<Vec<ApiResult<StoredMessage>>> {
    let mut connection = pool.acquire().await?;
    let (mut transaction, backend) = super::begin_write(&mut connection).await?;
    let mut rooms: BTreeMap<[u8; 32], Vec<&NewMessage>> = BTreeMap::new();
    for message in batch {
        rooms.entry(message.room_id.0).or_default().push(message);
    }
    let mut checks = HashMap::with_capacity(rooms.len());
    for (room_id, messages) in &rooms {
        let read = RoomChecks::read(&mut transaction, &RoomId(*room_id), messages).await?;
        checks.insert(*room_id, read);
    }
    let verdicts: Vec<ApiResult<()>> = batch
        .iter()
        .map(|message| match checks.get_mut(&message.room_id.0) {
            Some(room) => room.admit(message),
            None => Err(ApiError::not_found("room not found")),
        })
        .collect();
    let admitted: Vec<&NewMessage> = batch
        .iter()
        .zip(&verdicts)
        .filter(|(_, verdict)| verdict.is_ok())
        .map(|(message, _)| message)
        .collect();
    let mut ids = insert_rows(&mut transaction, &admitted).await?.into_iter();
    if backend == Backend::Postgres {
        let stored: Vec<(RoomId, i64)> = admitted
            .iter()
            .zip(ids.clone())
            .map(|(message, id)| (message.room_id, id))
            .collect();
        for payload in crate::relay::message_payloads(&stored) {
            crate::relay::notify(&mut *transaction, &payload).await?;
        }
    }
    transaction.commit().await?;
    drop(connection);
    let mut results = Vec::with_capacity(batch.len());
    for (message, verdict) in batch.iter().zip(verdicts) {
        results.push(verdict.and_then(|()| {
            let id = ids
                .next()
                .ok_or_else(|| ApiError::CorruptData("fewer ids than messages".to_owned()))?;
            Ok(StoredMessage {
                id,
                room_id: message.room_id,
                epoch: message.epoch,
                sender: message.sender.clone(),
                received_at_ms: message.received_at_ms,
                nonce: Base64Array(message.nonce),
                ciphertext: Base64(message.ciphertext.clone()),
            })
        }));
    }
    Ok(results)
}

/// What the checks of a batch read of one of its rooms, inside the batch's transaction.
struct RoomChecks {
    /// The room's current epoch, pending rotation and messages per minute; `None` when the
    /// room is gone.
    rules: Option<PostingRules>,
    /// The batch's senders who are members.
    members: HashSet<String>,
    /// For each of the batch's senders, when their messages in the rate window were
    /// received (only read when the room has a limit); admitted messages are added.
    recent: HashMap<String, Vec<i64>>,
}

impl RoomChecks {
    /// Reads the rules of `room_id` (locking its row on PostgreSQL), which of the senders
    /// of `messages` are members, and, under a rate limit, their messages in the window of
    /// the earliest of `messages`.
    async fn read(
        connection: &mut AnyConnection,
        room_id: &RoomId,
        messages: &[&NewMessage],
    ) -> ApiResult<Self> {
        let Some(rules) = super::rooms::posting_rules_for_writing(connection, room_id).await?
        else {
            return Ok(Self {
                rules: None,
                members: HashSet::new(),
                recent: HashMap::new(),
            });
        };
        let senders: Vec<&str> = messages
            .iter()
            .map(|message| message.sender.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The senders' names are bound, never written into the statement.
        let names = placeholders(2, senders.len());
        let statement = format!(
            "SELECT username FROM room_members WHERE room_id = $1 AND username IN ({names})"
        );
        let mut query = sqlx::query_scalar(&statement)
            .persistent(false)
            .bind(room_id.0.as_slice());
        for sender in &senders {
            query = query.bind(*sender);
        }
        let members: HashSet<String> = query
            .fetch_all(&mut *connection)
            .await?
            .into_iter()
            .collect();
        let mut recent: HashMap<String, Vec<i64>> = HashMap::new();
        if rules.messages_per_minute > 0 {
            let window_start = messages
                .iter()
                .map(|message| message.received_at_ms.saturating_sub(RATE_WINDOW_MS))
                .min()
                .unwrap_or(i64::MAX);
            let names = placeholders(3, senders.len());
            let statement = format!(
                "SELECT sender, received_at_ms FROM messages \
                 WHERE room_id = $1 AND received_at_ms > $2 AND sender IN ({names})"
            );
            let mut query = sqlx::query_as(&statement)
                .persistent(false)
                .bind(room_id.0.as_slice())
                .bind(window_start);
            for sender in &senders {
                query = query.bind(*sender);
            }
            let rows: Vec<(String, i64)> = query.fetch_all(&mut *connection).await?;
            for (sender, received_at_ms) in rows {
                recent.entry(sender).or_default().push(received_at_ms);
            }
        }
        Ok(Self {
            rules: Some(rules),
            members,
            recent,
        })
    }

    /// Decides whether `message` may be stored, in the order of [`insert_batch`]'s
    /// refusals; an admitted message counts against its sender's limit from then on.
    fn admit(&mut self, message: &NewMessage) -> ApiResult<()> {
        let Some(PostingRules {
            current_epoch: epoch,
            rotation_pending,
            messages_per_minute: limit,
        }) = self.rules
        else {
            return Err(ApiError::not_found("room not found"));
        };
        if !self.members.contains(&message.sender) {
            return Err(ApiError::not_found("room not found"));
        }
        if message.epoch != epoch {
            return Err(ApiError::refused(ErrorCode::StaleEpoch, "stale epoch"));
        }
        if rotation_pending {
            return Err(ApiError::refused(
                ErrorCode::KeyRotationPending,
                "key rotation pending",
            ));
        }
        if limit > 0 {
            let recent = self.recent.entry(message.sender.clone()).or_default();
            let window_start = message.received_at_ms.saturating_sub(RATE_WINDOW_MS);
            let mut counted: Vec<i64> = recent
                .iter()
                .copied()
                .filter(|received_at_ms| *received_at_ms > window_start)
                .collect();
            if counted.len() >= limit as usize {
                // The limit-th newest message in the window is the one whose leaving makes
                // room for another.
                counted.sort_unstable_by(|a, b| b.cmp(a));
                let oldest_counted = counted[limit as usize - 1];
                let wait_ms =
                    oldest_counted.saturating_add(RATE_WINDOW_MS) - message.received_at_ms;
                return Err(ApiError::RateLimited {
                    limit,
                    retry_after_s: retry_after_seconds(wait_ms),
                });
            }
            recent.push(message.received_at_ms);
        }
        Ok(())
    }
}

/// `$first, $first+1, ...`: `count` numbered placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|number| format!("${number}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts `messages` with one statement and returns their ids, in the order given.
///
/// Both SQLite and PostgreSQL give the rows of one `INSERT ... VALUES` increasing ids in the
/// order of the values (the transaction holds the write lock, or the rooms' row locks, so
/// nothing else writes these rooms meanwhile); `RETURNING` does not promise an order, so the
/// ids are sorted and each row's room, sender and nonce are compared with its message's.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] when the returned rows do not match.
async fn insert_rows(
    connection: &mut AnyConnection,
    messages: &[&NewMessage],
) -> ApiResult<Vec<i64>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let rows = (0..messages.len())
        .map(|row| format!("({})", placeholders(row * 6 + 1, 6)))
        .collect::<Vec<_>>()
        .join(", ");
    let statement = format!(
        "INSERT INTO messages (room_id, epoch, sender, received_at_ms, nonce, ciphertext) \
         VALUES {rows} RETURNING id, room_id, sender, nonce"
    );
    let mut query = sqlx::query_as(&statement).persistent(false);
    for message in messages {
        let epoch = i64::try_from(message.epoch)
            .map_err(|_| ApiError::bad_request("epoch is too large"))?;
        query = query
            .bind(message.room_id.0.as_slice())
            .bind(epoch)
            .bind(message.sender.as_str())
            .bind(message.received_at_ms)
            .bind(message.nonce.as_slice())
            .bind(message.ciphertext.as_slice());
    }
    let mut returned: Vec<(i64, Vec<u8>, String, Vec<u8>)> =
        query.fetch_all(&mut *connection).await?;
    returned.sort_unstable_by_key(|(id, ..)| *id);
    let matches = |(_, room_id, sender, nonce): &(i64, Vec<u8>, String, Vec<u8>),
                   message: &&NewMessage| {
        room_id.as_slice() == message.room_id.0.as_slice()
            && *sender == message.sender
            && nonce.as_slice() == message.nonce.as_slice()
    };
    if returned.len() != messages.len()
        || returned
            .iter()
            .zip(messages)
            .any(|(row, message)| !matches(row, message))
    {
        return Err(ApiError::CorruptData(
            "the stored messages do not match the batch".to_owned(),
        ));
    }
    Ok(returned.into_iter().map(|(id, ..)| id).collect())
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
