//! Messages: posting ciphertext to a room and paging through a room's history.
//!
//! Like every room route, a caller who is not a member (never was, or was removed, banned or
//! left) gets 404 `room not found`, and only current members are sent new messages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{ListMessages, PageQuery, PostMessage};
use common::api::MessagesResponse;
use common::message::{MAX_CIPHERTEXT_LEN, PADDING_BUCKET};
use common::primitives::TAG_LEN;

use super::{EndpointRouter, Reply, Request};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, ApiQuery, RoomPath};
use crate::membership_cache::RoomSnapshot;
use crate::routes::rooms::require_member;
use crate::session::AuthUser;
use crate::store::{self, attachments, messages};
use crate::AppState;

/// Page size when the query names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size; larger requests are served this many.
pub const MAX_PAGE_SIZE: u32 = 200;
/// Shortest ciphertext a message can have: the tag and one padding bucket.
pub const MIN_CIPHERTEXT_LEN: usize = TAG_LEN + PADDING_BUCKET;

/// Routes of this module (all need a session, else 401):
///
/// - `GET /api/rooms/{room_id}/messages?before=ID&limit=N` -> 200 [`MessagesResponse`]: the
///   `limit` (default 50, at most 200) newest messages with an id below `before` (all when
///   absent), in ascending id order, and `has_more` when older ones remain.
/// - `GET /api/rooms/{room_id}/messages?after=ID&limit=N` -> 200 [`MessagesResponse`]: the
///   `limit` oldest messages with an id above `after`, in ascending id order, and `has_more`
///   when newer ones remain: how a client resumes from the last id it saw (after a lost
///   connection, through any instance) with no gap and no duplicate. 400 for `before` and
///   `after` together.
/// - `POST /api/rooms/{room_id}/messages` [`PostMessageRequest`] -> 201 [`StoredMessage`];
///   400 for a ciphertext whose length is not a padded message's, 409 `stale epoch` when the
///   epoch is not the room's current one, 409 `key rotation pending` while the log leaves a
///   rotation pending (a member left and nobody has rotated yet: the current key is one the
///   former member holds), 429 `rate limit: N messages per minute` when the
///   room's policy allows N > 0 messages per member per minute and the caller posted N in
///   the last 60 s (by the server's `received_at_ms`), with a `Retry-After` header and
///   `retry_after_s` in the body: whole seconds, at least 1, until the oldest of those leaves
///   the window. Every connected member is sent a [`ServerEvent::Message`].
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(ListMessages, list_messages)
        .endpoint(PostMessage, post_message)
}

/// Whether `length` is a ciphertext length [`common::message::seal_message`] can produce:
/// the 16-byte tag plus a whole number (at least one) of 256-byte padding buckets, and at
/// most [`MAX_CIPHERTEXT_LEN`].
fn valid_ciphertext_len(length: usize) -> bool {
    (MIN_CIPHERTEXT_LEN..=MAX_CIPHERTEXT_LEN).contains(&length)
        && (length - TAG_LEN).is_multiple_of(PADDING_BUCKET)
}

/// Whether `room` (as cached) lets `username` post in `epoch` now.
fn may_post(room: Option<&RoomSnapshot>, username: &str, epoch: u64) -> bool {
    room.is_some_and(|room| {
        room.is_member(username)
            && room.rules.current_epoch == epoch
            && !room.rules.rotation_pending
    })
}

async fn list_messages(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Reply<ListMessages>> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if limit == 0 {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let limit = limit.min(MAX_PAGE_SIZE);
    let (messages, has_more) = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give before or after, not both"));
        }
        (before, None) => messages::page(&state.pool, &room_id, before, limit).await?,
        (None, Some(after)) => messages::after(&state.pool, &room_id, after, limit).await?,
    };
    Ok(Json(MessagesResponse { messages, has_more }))
}

async fn post_message(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<PostMessage>,
) -> ApiResult<(StatusCode, Reply<PostMessage>)> {
    // The membership cache answers; a refusal is confirmed by a fresh read first, and what
    // it allows the insert checks again.
    let mut room = state.membership.room(&state.pool, &room_id).await?;
    if !may_post(room.as_deref(), &user.username, request.epoch) {
        room = state.membership.fresh(&state.pool, &room_id).await?;
    }
    let rules = room
        .filter(|room| room.is_member(&user.username))
        .ok_or_else(|| ApiError::not_found("room not found"))?
        .rules;
    if !valid_ciphertext_len(request.ciphertext.0.len()) {
        return Err(ApiError::bad_request(format!(
            "ciphertext must be 16 bytes plus a multiple of 256, at most {MAX_CIPHERTEXT_LEN}"
        )));
    }
    if request.epoch != rules.current_epoch {
        return Err(ApiError::refused(ErrorCode::StaleEpoch, "stale epoch"));
    }
    if rules.rotation_pending {
        return Err(ApiError::refused(
            ErrorCode::KeyRotationPending,
            "key rotation pending",
        ));
    }
    // Kept from collection from now on; marked before the message is stored, so a message
    // never names an attachment the collector may take.
    let named: Vec<_> = request.attachments.iter().map(|id| id.0).collect();
    attachments::mark_attached(&state.pool, &room_id, &user.username, &named).await?;
    let new_message = messages::NewMessage {
        room_id,
        epoch: request.epoch,
        sender: user.username,
        received_at_ms: store::now_ms(),
        nonce: request.nonce.0,
        ciphertext: request.ciphertext.0,
    };
    let stored = state.writer.post(new_message).await.inspect_err(|error| {
        if matches!(
            error.code(),
            ErrorCode::NotFound | ErrorCode::StaleEpoch | ErrorCode::KeyRotationPending
        ) {
            // The batch refused what the cache allowed: the cache was stale.
            state.membership.invalidate([room_id]);
        }
    })?;
    Ok((StatusCode::CREATED, Json(stored)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_lengths_follow_the_padding() {
        assert!(valid_ciphertext_len(16 + 256));
        assert!(valid_ciphertext_len(16 + 256 * 3));
        assert!(valid_ciphertext_len(MAX_CIPHERTEXT_LEN));
        assert!(!valid_ciphertext_len(16));
        assert!(!valid_ciphertext_len(16 + 255));
        assert!(!valid_ciphertext_len(MAX_CIPHERTEXT_LEN + 256));
    }
}
