//! The `rooms`, `room_log` and `room_members` tables: rooms, their signed membership logs,
//! and what the server derives by replaying each log (members and roles, current epoch,
//! whether a rotation is pending, the message rate limit); and the side effects of log
//! entries on the other tables (join requests, messages, deleting a room).

use common::api::RoomSummary;
use common::membership::{LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::room_key::KeyEnvelope;
use sqlx::{AnyConnection, AnyPool};

use super::is_unique_violation;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Parses a role as stored in `room_members.role`.
fn parse_role(text: &str) -> ApiResult<Role> {
    match text {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(ApiError::CorruptData(format!("room_members.role {text:?}"))),
    }
}

fn to_u64(value: i64, what: &str) -> ApiResult<u64> {
    u64::try_from(value).map_err(|_| ApiError::CorruptData(what.to_owned()))
}

fn to_i64(value: u64, what: &str) -> ApiResult<i64> {
    i64::try_from(value).map_err(|_| ApiError::bad_request(format!("{what} is too large")))
}

/// Replaces the member rows of a room with the members of `state` who still have an
/// account with the Ed25519 key the log records for them. A deleted account stays a member
/// in the signed log until someone removes it, but gets no row here; nor does a new account
/// registered later under the same name, whose keys differ.
async fn write_members(
    connection: &mut AnyConnection,
    room_id: &RoomId,
    state: &RoomState,
) -> ApiResult<()> {
    sqlx::query("DELETE FROM room_members WHERE room_id = $1")
        .bind(room_id.0.as_slice())
        .execute(&mut *connection)
        .await?;
    for (username, record) in state.members() {
        sqlx::query(
            "INSERT INTO room_members (room_id, username, role) \
             SELECT $1, username, $2 FROM users WHERE username = $3 AND ed25519_public = $4",
        )
        .bind(room_id.0.as_slice())
        .bind(record.role.as_str())
        .bind(username)
        .bind(record.keys.ed25519.as_bytes().as_slice())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Writes what the `rooms` row mirrors of `state`: current epoch, rotation pending (as the
/// log says it, and merged with the server's own flag) and the policy's messages per minute. A pending rotation set by the server itself (an account
/// deletion) stays set until the epoch changes, even though the log does not show it.
async fn write_room_row(
    connection: &mut AnyConnection,
    room_id: &RoomId,
    state: &RoomState,
) -> ApiResult<()> {
    let epoch = to_i64(state.current_epoch(), "epoch")?;
    // In an UPDATE every expression sees the row as it was before the update.
    sqlx::query(
        "UPDATE rooms SET current_epoch = $1, \
         rotation_pending = CASE WHEN $2 = 1 OR (current_epoch = $3 AND rotation_pending = 1) \
         THEN 1 ELSE 0 END, \
         log_rotation_pending = $4, messages_per_minute = $5, max_attachment_bytes = $6 \
         WHERE room_id = $7",
    )
    .bind(epoch)
    .bind(i64::from(state.rotation_pending()))
    .bind(epoch)
    .bind(i64::from(state.rotation_pending()))
    .bind(i64::from(state.policy().messages_per_minute))
    .bind(i64::try_from(state.policy().max_attachment_bytes).unwrap_or(i64::MAX))
    .bind(room_id.0.as_slice())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Locks a room's row for the rest of the transaction on PostgreSQL (`FOR NO KEY UPDATE`,
/// which foreign-key checks do not wait for): what appends an entry and what stores
/// messages take, so that the two never interleave in one room and a room's messages commit
/// in id order. SQLite needs nothing: it runs one writer at a time.
///
/// # Errors
/// A database error.
pub async fn lock_for_writing(connection: &mut AnyConnection, room_id: &RoomId) -> ApiResult<()> {
    if super::Backend::of_connection(connection) == super::Backend::Postgres {
        sqlx::query("SELECT 1 FROM rooms WHERE room_id = $1 FOR NO KEY UPDATE")
            .bind(room_id.0.as_slice())
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// On PostgreSQL, has the transaction on `connection` announce at commit that `room_ids`
/// changed, so that every instance forgets them from its membership cache
/// ([`crate::relay::Notice::RoomsChanged`]); SQLite has one instance, which forgets them
/// itself.
///
/// # Errors
/// A database error.
pub async fn announce_changes(
    connection: &mut AnyConnection,
    room_ids: &[RoomId],
) -> ApiResult<()> {
    if super::Backend::of_connection(connection) == super::Backend::Postgres {
        for payload in crate::relay::rooms_changed_payloads(room_ids) {
            crate::relay::notify(&mut *connection, &payload).await?;
        }
    }
    Ok(())
}

/// Every table that holds rows of a room, children first: what deleting a room empties.
pub const ROOM_TABLES: [&str; 9] = [
    "attachment_chunks",
    "attachments",
    "join_requests",
    "invite_uses",
    "key_envelopes",
    "messages",
    "room_members",
    "room_log",
    "rooms",
];

/// Deletes every row of a room from every table in [`ROOM_TABLES`].
async fn delete_room_rows(connection: &mut AnyConnection, room_id: &RoomId) -> ApiResult<()> {
    for table in ROOM_TABLES {
        // The table names are the constants above, never input.
        sqlx::query(&format!("DELETE FROM {table} WHERE room_id = $1"))
            .bind(room_id.0.as_slice())
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Stores a new room in one transaction: the room, its genesis entry, its members (the
/// creator) and the creator's key envelope.
///
/// # Errors
/// 409 [`ErrorCode::RoomExists`] when a room with this id exists; a database error otherwise.
pub async fn create(
    pool: &AnyPool,
    genesis: &SignedLogEntry,
    state: &RoomState,
    envelope: &KeyEnvelope,
    now_ms: i64,
) -> ApiResult<()> {
    let room_id = state.room_id();
    let mut transaction = pool.begin().await?;
    let inserted =
        sqlx::query("INSERT INTO rooms (room_id, created_at, current_epoch) VALUES ($1, $2, $3)")
            .bind(room_id.0.as_slice())
            .bind(now_ms)
            .bind(to_i64(state.current_epoch(), "epoch")?)
            .execute(&mut *transaction)
            .await;
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => {
            return Err(ApiError::refused(
                ErrorCode::RoomExists,
                "room already exists",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    sqlx::query("INSERT INTO room_log (room_id, seq, entry) VALUES ($1, 0, $2)")
        .bind(room_id.0.as_slice())
        .bind(genesis.as_bytes())
        .execute(&mut *transaction)
        .await?;
    write_room_row(&mut transaction, &room_id, state).await?;
    write_members(&mut transaction, &room_id, state).await?;
    super::envelopes::upsert(&mut transaction, envelope, now_ms).await?;
    transaction.commit().await?;
    Ok(())
}

/// The signed entries of a room's log, in order from genesis; empty for an unknown room.
///
/// # Errors
/// A database error.
pub async fn load_log(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Vec<Vec<u8>>> {
    let entries = sqlx::query_scalar("SELECT entry FROM room_log WHERE room_id = $1 ORDER BY seq")
        .bind(room_id.0.as_slice())
        .fetch_all(pool)
        .await?;
    Ok(entries)
}

/// Appends one entry (already checked against the replayed log) and applies its side
/// effects, all in one transaction:
///
/// - the `rooms` row (current epoch, rotation pending, messages per minute) and the member
///   rows are rewritten from `new_state`, so removed, banned and leaving users lose access;
/// - an add entry deletes the added user's join request, and a ban the banned user's;
/// - a clear-history entry deletes every stored message of the room;
/// - the envelopes sent with the entry (already checked against `new_state`) are stored;
/// - a delete-room entry deletes every row of the room from every table
///   ([`ROOM_TABLES`]), the entry itself included: the room is gone.
///
/// On PostgreSQL the transaction announces the change to every instance
/// ([`announce_changes`]); the caller forgets the room from its own membership cache once
/// this returns. Returns the attachments whose rows a clear-history or delete-room entry
/// removed, for the caller to delete their chunks once the entry is stored.
///
/// # Errors
/// 409 [`ErrorCode::LogOutOfDate`] when another entry with this sequence number was stored first;
/// a database error otherwise.
pub async fn append(
    pool: &AnyPool,
    entry: &SignedLogEntry,
    new_state: &RoomState,
    envelopes: &[KeyEnvelope],
) -> ApiResult<Vec<super::attachments::Doomed>> {
    let room_id = new_state.room_id();
    let mut transaction = pool.begin().await?;
    // A batch of messages in progress finishes before this entry's checks and deletions
    // see the room, and a batch that comes later sees the entry (its new epoch, its pending
    // rotation).
    lock_for_writing(&mut transaction, &room_id).await?;
    announce_changes(&mut transaction, &[room_id]).await?;
    // Inserting first makes a concurrent append of the same seq fail here, before any side
    // effect, even for a deletion.
    let inserted = sqlx::query("INSERT INTO room_log (room_id, seq, entry) VALUES ($1, $2, $3)")
        .bind(room_id.0.as_slice())
        .bind(to_i64(entry.entry().seq, "seq")?)
        .bind(entry.as_bytes())
        .execute(&mut *transaction)
        .await;
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => {
            return Err(ApiError::refused(
                ErrorCode::LogOutOfDate,
                "the log changed while this entry was checked; fetch it and retry",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let mut doomed = Vec::new();
    match &entry.entry().action {
        LogAction::DeleteRoom => {
            let doomed = super::attachments::take_room(&mut transaction, &room_id).await?;
            delete_room_rows(&mut transaction, &room_id).await?;
            transaction.commit().await?;
            return Ok(doomed);
        }
        action => {
            let joined_or_banned = action
                .added_member()
                .map(|(username, _)| username)
                .or(action.banned_user());
            if let Some(username) = joined_or_banned {
                super::join_requests::delete(&mut transaction, &room_id, username).await?;
            }
            if action.clears_history() {
                sqlx::query("DELETE FROM messages WHERE room_id = $1")
                    .bind(room_id.0.as_slice())
                    .execute(&mut *transaction)
                    .await?;
                doomed = super::attachments::take_room(&mut transaction, &room_id).await?;
            }
        }
    }
    write_room_row(&mut transaction, &room_id, new_state).await?;
    write_members(&mut transaction, &room_id, new_state).await?;
    let now = super::now_ms();
    for envelope in envelopes {
        super::envelopes::upsert(&mut transaction, envelope, now).await?;
    }
    transaction.commit().await?;
    Ok(doomed)
}

/// The room policy's largest attachment, in bytes, or `None` for an unknown room.
///
/// # Errors
/// A database error.
pub async fn max_attachment_bytes(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Option<u64>> {
    let limit: Option<i64> =
        sqlx::query_scalar("SELECT max_attachment_bytes FROM rooms WHERE room_id = $1")
            .bind(room_id.0.as_slice())
            .fetch_optional(pool)
            .await?;
    Ok(limit.map(|limit| u64::try_from(limit).unwrap_or_default()))
}

/// The role of `username` in a room, or `None` when they are not a member (or the room
/// does not exist).
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for an unknown stored role.
pub async fn member_role(
    pool: &AnyPool,
    room_id: &RoomId,
    username: &str,
) -> ApiResult<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM room_members WHERE room_id = $1 AND username = $2")
            .bind(room_id.0.as_slice())
            .bind(username)
            .fetch_optional(pool)
            .await?;
    role.as_deref().map(parse_role).transpose()
}

/// The usernames of a room's current members.
///
/// # Errors
/// A database error.
pub async fn member_usernames(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Vec<String>> {
    let usernames = sqlx::query_scalar(
        "SELECT username FROM room_members WHERE room_id = $1 ORDER BY username",
    )
    .bind(room_id.0.as_slice())
    .fetch_all(pool)
    .await?;
    Ok(usernames)
}

/// The usernames of a room's current owners and admins.
///
/// # Errors
/// A database error.
pub async fn admin_usernames(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Vec<String>> {
    let usernames = sqlx::query_scalar(
        "SELECT username FROM room_members WHERE room_id = $1 AND role IN ('owner', 'admin') \
         ORDER BY username",
    )
    .bind(room_id.0.as_slice())
    .fetch_all(pool)
    .await?;
    Ok(usernames)
}

/// What posting a message to a room depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingRules {
    /// The epoch every new message must be sealed in.
    pub current_epoch: u64,
    /// Whether the log leaves a rotation pending: no message is accepted until it is done.
    pub rotation_pending: bool,
    /// Messages one member may post per minute; 0 means no limit.
    pub messages_per_minute: u32,
}

/// The posting rules of a room, or `None` for an unknown room.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored value out of range.
pub async fn posting_rules(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Option<PostingRules>> {
    let row = sqlx::query_as(POSTING_RULES)
        .bind(room_id.0.as_slice())
        .fetch_optional(pool)
        .await?;
    row.map(decode_posting_rules).transpose()
}

/// The posting rules of a room as a write transaction on `connection` sees them, its row
/// locked on PostgreSQL as [`lock_for_writing`] locks it (SQLite runs one writer at a
/// time): what a batch of messages is checked against.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored value out of range.
pub async fn posting_rules_for_writing(
    connection: &mut AnyConnection,
    room_id: &RoomId,
) -> ApiResult<Option<PostingRules>> {
    let statement = match super::Backend::of_connection(connection) {
        super::Backend::Postgres => format!("{POSTING_RULES} FOR NO KEY UPDATE"),
        super::Backend::Sqlite => POSTING_RULES.to_owned(),
    };
    let row = sqlx::query_as(&statement)
        .bind(room_id.0.as_slice())
        .fetch_optional(&mut *connection)
        .await?;
    row.map(decode_posting_rules).transpose()
}

/// The query of [`posting_rules`], for the room `$1`.
const POSTING_RULES: &str = "SELECT current_epoch, log_rotation_pending, messages_per_minute \
     FROM rooms WHERE room_id = $1";

fn decode_posting_rules(
    (epoch, rotation_pending, messages_per_minute): (i64, i64, i64),
) -> ApiResult<PostingRules> {
    Ok(PostingRules {
        current_epoch: to_u64(epoch, "rooms.current_epoch")?,
        rotation_pending: super::flag(rotation_pending),
        messages_per_minute: u32::try_from(messages_per_minute)
            .map_err(|_| ApiError::CorruptData("rooms.messages_per_minute".to_owned()))?,
    })
}

/// The rooms `username` is a member of, oldest first, with their role, epoch, log length and
/// whether a rotation is pending.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a row that does not decode.
pub async fn list_for_user(pool: &AnyPool, username: &str) -> ApiResult<Vec<RoomSummary>> {
    let rows: Vec<(Vec<u8>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT rooms.room_id, room_members.role, rooms.current_epoch, \
         (SELECT COUNT(*) FROM room_log WHERE room_log.room_id = rooms.room_id), \
         rooms.rotation_pending \
         FROM room_members JOIN rooms ON rooms.room_id = room_members.room_id \
         WHERE room_members.username = $1 ORDER BY rooms.created_at, rooms.rowid",
    )
    .bind(username)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(room_id, role, epoch, log_length, rotation_pending)| {
            let room_id = RoomId(
                room_id
                    .try_into()
                    .map_err(|_| ApiError::CorruptData("rooms.room_id".to_owned()))?,
            );
            Ok(RoomSummary {
                room_id,
                role: parse_role(&role)?,
                epoch: to_u64(epoch, "rooms.current_epoch")?,
                log_length: to_u64(log_length, "room_log count")?,
                rotation_pending: super::flag(rotation_pending),
            })
        })
        .collect()
}
