//! The `key_envelopes` table: room keys sealed by one member to another, stored as JSON.

use common::membership::RoomId;
use common::room_key::KeyEnvelope;
use sqlx::{AnyConnection, AnyPool};

use crate::error::{ApiError, ApiResult};

/// Stores an envelope; storing the same (room, epoch, recipient, distributor) again replaces
/// the earlier one, so a client that retries an upload does no harm.
///
/// # Errors
/// A database error.
pub async fn upsert(
    connection: &mut AnyConnection,
    envelope: &KeyEnvelope,
    now_ms: i64,
) -> ApiResult<()> {
    let json = serde_json::to_string(envelope)
        .map_err(|error| ApiError::CorruptData(format!("envelope does not serialize: {error}")))?;
    let epoch = i64::try_from(envelope.epoch)
        .map_err(|_| ApiError::bad_request("envelope epoch is too large"))?;
    sqlx::query(
        "INSERT INTO key_envelopes (room_id, epoch, recipient, distributor, envelope, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (room_id, epoch, recipient, distributor) \
         DO UPDATE SET envelope = excluded.envelope",
    )
    .bind(envelope.room_id.0.as_slice())
    .bind(epoch)
    .bind(&envelope.recipient)
    .bind(&envelope.distributor)
    .bind(json)
    .bind(now_ms)
    .execute(connection)
    .await?;
    Ok(())
}

/// Stores several envelopes in one transaction (see [`upsert`]).
///
/// # Errors
/// A database error.
pub async fn upsert_all(pool: &AnyPool, envelopes: &[KeyEnvelope], now_ms: i64) -> ApiResult<()> {
    let mut transaction = pool.begin().await?;
    for envelope in envelopes {
        upsert(&mut transaction, envelope, now_ms).await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// The envelopes of a room addressed to `recipient`, by epoch then upload order.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for stored JSON that does not parse.
pub async fn for_recipient(
    pool: &AnyPool,
    room_id: &RoomId,
    recipient: &str,
) -> ApiResult<Vec<KeyEnvelope>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT envelope FROM key_envelopes WHERE room_id = $1 AND recipient = $2 \
         ORDER BY epoch, id",
    )
    .bind(room_id.0.as_slice())
    .bind(recipient)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|json| {
            serde_json::from_str(json).map_err(|error| {
                ApiError::CorruptData(format!("key_envelopes.envelope does not parse: {error}"))
            })
        })
        .collect()
}
