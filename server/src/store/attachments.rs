//! Queries of the `attachments` and `attachment_chunks` tables: which attachments a room
//! has, who uploaded them, their layout, which chunks are stored, whether a message names
//! them. The chunks' bytes are in the [`crate::blobs::BlobStore`].

use common::attachment::{ChunkLayout, ATTACHMENT_ID_LEN};
use common::membership::RoomId;
use sqlx::{AnyConnection, AnyPool};

use crate::error::{ApiError, ApiResult};

/// One attachment as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The room it belongs to.
    pub room_id: RoomId,
    /// Its id, chosen by the uploader.
    pub id: [u8; ATTACHMENT_ID_LEN],
    /// Who uploads it: the only one who may write its chunks.
    pub uploader: String,
    /// The file's layout (plaintext size and chunk size; ciphertext sizes follow).
    pub layout: ChunkLayout,
    /// The chunks stored so far, ascending.
    pub received: Vec<u32>,
    /// Whether a message names it (else it is collected once old).
    pub attached: bool,
}

impl Attachment {
    /// Whether every chunk is stored.
    pub fn complete(&self) -> bool {
        self.received.len() == self.layout.chunk_count() as usize
    }
}

/// An attachment to delete: its room, id and how many chunks it can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doomed {
    /// The room.
    pub room_id: RoomId,
    /// The attachment.
    pub id: [u8; ATTACHMENT_ID_LEN],
    /// Its chunk count.
    pub chunk_count: u32,
}

fn to_i64(value: u64, what: &str) -> ApiResult<i64> {
    i64::try_from(value).map_err(|_| ApiError::bad_request(format!("{what} is too large")))
}

fn id_from(bytes: &[u8]) -> ApiResult<[u8; ATTACHMENT_ID_LEN]> {
    bytes
        .try_into()
        .map_err(|_| ApiError::CorruptData("attachment id".into()))
}

/// The bytes `uploader`'s attachments take in the store (ciphertext), over every room.
///
/// # Errors
/// A database error.
pub async fn stored_bytes(pool: &AnyPool, uploader: &str) -> ApiResult<u64> {
    let total: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(ciphertext_size), 0) AS BIGINT) FROM attachments \
         WHERE uploader = $1",
    )
    .bind(uploader)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(total).unwrap_or_default())
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new attachment.
    New,
    /// The same uploader announced the same attachment before (a resumed upload).
    Existing,
}

/// Records a new attachment of `uploader` in a room, unless `uploader` announced the same
/// one (same id and layout) before, within `quota_bytes` of stored ciphertext per user.
///
/// # Errors
/// [`ApiError::Conflict`] when the id is taken by another attachment,
/// [`ApiError::TooLarge`] when the quota would be exceeded; a database error otherwise.
pub async fn create(
    pool: &AnyPool,
    room_id: &RoomId,
    id: &[u8; ATTACHMENT_ID_LEN],
    uploader: &str,
    layout: ChunkLayout,
    quota_bytes: u64,
    now_ms: i64,
) -> ApiResult<Created> {
    // It reads before it writes: on SQLite a deferred transaction would fail to upgrade
    // (a 500) when another connection wrote meanwhile.
    let mut connection = pool.acquire().await?;
    let (mut transaction, _) = super::begin_write(&mut connection).await?;
    let existing: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT uploader, size, chunk_size FROM attachments \
         WHERE room_id = $1 AND attachment_id = $2",
    )
    .bind(room_id.0.as_slice())
    .bind(id.as_slice())
    .fetch_optional(&mut *transaction)
    .await?;
    if let Some((owner, size, chunk_size)) = existing {
        let same = owner == uploader
            && u64::try_from(size).ok() == Some(layout.size)
            && u32::try_from(chunk_size).ok() == Some(layout.chunk_size);
        return if same {
            Ok(Created::Existing)
        } else {
            Err(ApiError::conflict("attachment id already in use"))
        };
    }
    let used: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(ciphertext_size), 0) AS BIGINT) FROM attachments \
         WHERE uploader = $1",
    )
    .bind(uploader)
    .fetch_one(&mut *transaction)
    .await?;
    let used = u64::try_from(used).unwrap_or_default();
    if used.saturating_add(layout.ciphertext_size()) > quota_bytes {
        return Err(ApiError::TooLarge {
            message: "attachment storage quota exceeded".into(),
            limit_bytes: quota_bytes,
        });
    }
    sqlx::query(
        "INSERT INTO attachments (room_id, attachment_id, uploader, size, chunk_size, \
         chunk_count, ciphertext_size, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(room_id.0.as_slice())
    .bind(id.as_slice())
    .bind(uploader)
    .bind(to_i64(layout.size, "size")?)
    .bind(i64::from(layout.chunk_size))
    .bind(i64::from(layout.chunk_count()))
    .bind(to_i64(layout.ciphertext_size(), "size")?)
    .bind(now_ms)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(Created::New)
}

/// One attachment of a room, with the chunks stored so far.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a stored layout out of bounds.
pub async fn get(
    pool: &AnyPool,
    room_id: &RoomId,
    id: &[u8; ATTACHMENT_ID_LEN],
) -> ApiResult<Option<Attachment>> {
    let row: Option<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT uploader, size, chunk_size, attached FROM attachments \
         WHERE room_id = $1 AND attachment_id = $2",
    )
    .bind(room_id.0.as_slice())
    .bind(id.as_slice())
    .fetch_optional(pool)
    .await?;
    let Some((uploader, size, chunk_size, attached)) = row else {
        return Ok(None);
    };
    let layout = u64::try_from(size)
        .ok()
        .zip(u32::try_from(chunk_size).ok())
        .and_then(|(size, chunk_size)| ChunkLayout::new(size, chunk_size).ok())
        .ok_or_else(|| ApiError::CorruptData("attachment layout".into()))?;
    let received: Vec<i64> = sqlx::query_scalar(
        "SELECT chunk_index FROM attachment_chunks WHERE room_id = $1 AND attachment_id = $2 \
         ORDER BY chunk_index",
    )
    .bind(room_id.0.as_slice())
    .bind(id.as_slice())
    .fetch_all(pool)
    .await?;
    Ok(Some(Attachment {
        room_id: *room_id,
        id: *id,
        uploader,
        layout,
        received: received
            .into_iter()
            .filter_map(|index| u32::try_from(index).ok())
            .collect(),
        attached: super::flag(attached),
    }))
}

/// Records that chunk `index` is stored. `false` when the attachment is gone meanwhile
/// (collected, or its room cleared): the caller then deletes what it wrote.
///
/// # Errors
/// A database error.
pub async fn record_chunk(
    pool: &AnyPool,
    room_id: &RoomId,
    id: &[u8; ATTACHMENT_ID_LEN],
    index: u32,
) -> ApiResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO attachment_chunks (room_id, attachment_id, chunk_index) \
         SELECT room_id, attachment_id, $1 FROM attachments \
         WHERE room_id = $2 AND attachment_id = $3 ON CONFLICT DO NOTHING",
    )
    .bind(i64::from(index))
    .bind(room_id.0.as_slice())
    .bind(id.as_slice())
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(true);
    }
    // Already recorded (a repeated upload of the chunk), or the attachment is gone.
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM attachments WHERE room_id = $1 AND attachment_id = $2")
            .bind(room_id.0.as_slice())
            .bind(id.as_slice())
            .fetch_optional(pool)
            .await?;
    Ok(exists.is_some())
}

/// Marks the attachments `ids` of a room as named by a message of `uploader`. Each must be
/// `uploader`'s and complete.
///
/// # Errors
/// [`ApiError::BadRequest`] naming an attachment that is unknown, another user's or
/// incomplete; a database error otherwise.
pub async fn mark_attached(
    pool: &AnyPool,
    room_id: &RoomId,
    uploader: &str,
    ids: &[[u8; ATTACHMENT_ID_LEN]],
) -> ApiResult<()> {
    for id in ids {
        let updated = sqlx::query(
            "UPDATE attachments SET attached = 1 WHERE room_id = $1 AND attachment_id = $2 \
             AND uploader = $3 AND chunk_count = (SELECT COUNT(*) FROM attachment_chunks \
             WHERE attachment_chunks.room_id = attachments.room_id \
             AND attachment_chunks.attachment_id = attachments.attachment_id)",
        )
        .bind(room_id.0.as_slice())
        .bind(id.as_slice())
        .bind(uploader)
        .execute(pool)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(ApiError::bad_request(format!(
                "attachment {} is not a complete upload of yours in this room",
                hex::encode(id)
            )));
        }
    }
    Ok(())
}

/// Deletes the rows of every attachment of a room (in the transaction that clears its
/// history or deletes it) and returns them, for the caller to delete their chunks once the
/// transaction is committed.
///
/// # Errors
/// A database error.
pub async fn take_room(connection: &mut AnyConnection, room_id: &RoomId) -> ApiResult<Vec<Doomed>> {
    let rows: Vec<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT attachment_id, chunk_count FROM attachments WHERE room_id = $1")
            .bind(room_id.0.as_slice())
            .fetch_all(&mut *connection)
            .await?;
    sqlx::query("DELETE FROM attachment_chunks WHERE room_id = $1")
        .bind(room_id.0.as_slice())
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM attachments WHERE room_id = $1")
        .bind(room_id.0.as_slice())
        .execute(&mut *connection)
        .await?;
    rows.into_iter()
        .map(|(id, chunk_count)| {
            Ok(Doomed {
                room_id: *room_id,
                id: id_from(&id)?,
                chunk_count: u32::try_from(chunk_count).unwrap_or_default(),
            })
        })
        .collect()
}

/// Deletes the rows of every attachment no message named that was announced before
/// `before_ms`, and returns them for the caller to delete their chunks.
///
/// # Errors
/// A database error.
pub async fn take_unattached(pool: &AnyPool, before_ms: i64) -> ApiResult<Vec<Doomed>> {
    // Reads before it writes, like `create`.
    let mut connection = pool.acquire().await?;
    let (mut transaction, _) = super::begin_write(&mut connection).await?;
    let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT room_id, attachment_id, chunk_count FROM attachments \
         WHERE attached = 0 AND created_at < $1",
    )
    .bind(before_ms)
    .fetch_all(&mut *transaction)
    .await?;
    let mut doomed = Vec::with_capacity(rows.len());
    for (room, id, chunk_count) in rows {
        sqlx::query("DELETE FROM attachment_chunks WHERE room_id = $1 AND attachment_id = $2")
            .bind(&room)
            .bind(&id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM attachments WHERE room_id = $1 AND attachment_id = $2")
            .bind(&room)
            .bind(&id)
            .execute(&mut *transaction)
            .await?;
        let room_id = RoomId(
            room.as_slice()
                .try_into()
                .map_err(|_| ApiError::CorruptData("room id".into()))?,
        );
        doomed.push(Doomed {
            room_id,
            id: id_from(&id)?,
            chunk_count: u32::try_from(chunk_count).unwrap_or_default(),
        });
    }
    transaction.commit().await?;
    Ok(doomed)
}
