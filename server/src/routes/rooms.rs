//! Rooms: creating one, listing the caller's, reading or extending a room's membership log,
//! key envelopes, and asking the other members for a missing epoch key.
//!
//! Authorization failures on a room are reported as 404 `room not found`, whether the room
//! does not exist (or was deleted) or the caller is not a member (never was, or was removed,
//! banned or left), so non-members learn nothing about which rooms exist. A member who may
//! not do something (append as someone else, distribute as someone else, administer without
//! the role) gets 403.
//!
//! Every authority rule of the log comes from [`RoomState::apply`]; the server adds only
//! what it alone knows (the added user's registered keys) and the side effects of storing
//! an entry ([`rooms::append`]).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{
    AppendLog, CreateRoom, GetEnvelopes, GetLog, ListRooms, PutEnvelopes, RequestKey,
};
use common::api::{
    CreateRoomResponse, EnvelopesResponse, LogResponse, RoomListResponse, ServerEvent,
};
use common::membership::{
    replay, replay_bytes, LogAction, LogErrorKind, Role, RoomId, RoomState, SignedLogEntry,
};
use common::room_key::KeyEnvelope;
use common::wire::Base64;
use sqlx::AnyPool;

use super::{EndpointRouter, Reply, Request};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, RoomPath};
use crate::session::AuthUser;
use crate::store::{self, envelopes, rooms, users};
use crate::AppState;

/// Routes of this module (all need a session, else 401):
///
/// - `POST /api/rooms` [`CreateRoomRequest`] -> 201 [`CreateRoomResponse`]; 400 for a genesis
///   or envelope that fails a check, 403 for a genesis by someone else, 409 for an existing
///   room id.
/// - `GET /api/rooms` -> 200 [`RoomListResponse`] (with `rotation_pending`).
/// - `GET /api/rooms/{room_id}/log` -> 200 [`LogResponse`].
/// - `POST /api/rooms/{room_id}/log` [`AppendLogRequest`] -> 201 (no body), or 204 for a
///   delete-room entry (the room and every row of it are gone); 400 for a malformed entry,
///   a bad signature, an invalid invite or keys that differ from the added user's
///   identity, 403 for an author who is not the caller, lacks the role, targets themselves
///   or is the owner leaving, 409 when the caller's view of the log is out of date (stale
///   `seq` or `prev`, wrong rotation epoch, target already a member, not a member, or
///   banned); see [`log_error`]. The entry is pushed as [`ServerEvent::LogEntry`] to the
///   members before and after it (so a removed, banned or leaving member learns of it, and
///   an added one sees the room appear); a deletion is followed by
///   [`ServerEvent::RoomDeleted`] to everyone who was a member.
/// - `POST /api/rooms/{room_id}/envelopes` [`PutEnvelopesRequest`] -> 204; 400 for an
///   envelope that fails [`common::room_key::KeyEnvelope::verify`] or names another room,
///   403 for an envelope distributed by someone else.
/// - `GET /api/rooms/{room_id}/envelopes` -> 200 [`EnvelopesResponse`] with only the
///   caller's envelopes.
/// - `POST /api/rooms/{room_id}/key-requests` [`KeyRequestBody`] -> 202 (no body); 400 for
///   an epoch the log does not have. Every other connected member is sent
///   [`ServerEvent::KeyRequested`]; a client holding the key answers by uploading envelopes.
///
/// Every `{room_id}` route answers 400 `malformed room id` for anything but 64 hex digits
/// and 404 `room not found` for an unknown room or a caller who is not a member.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(CreateRoom, create_room)
        .endpoint(ListRooms, list_rooms)
        .endpoint(GetLog, get_log)
        .endpoint(AppendLog, append_log)
        .endpoint(PutEnvelopes, put_envelopes)
        .endpoint(GetEnvelopes, get_envelopes)
        .endpoint(RequestKey, request_key)
}

/// The caller's role in a room, or 404 `room not found` when the room does not exist or the
/// caller is not a member (the same answer for both, see the module documentation).
///
/// # Errors
/// [`ApiError::NotFound`], or a database error.
pub async fn require_member(pool: &AnyPool, room_id: &RoomId, username: &str) -> ApiResult<Role> {
    rooms::member_role(pool, room_id, username)
        .await?
        .ok_or_else(|| ApiError::not_found("room not found"))
}

/// Replays a room's stored log. The log was checked entry by entry when it was stored, so a
/// failure here means the database was changed behind the server's back.
///
/// # Errors
/// [`ApiError::NotFound`] `room not found` for a room without a log,
/// [`ApiError::CorruptData`] for a stored log that does not replay, or a database error.
pub async fn load_state(pool: &AnyPool, room_id: &RoomId) -> ApiResult<RoomState> {
    let entries = rooms::load_log(pool, room_id).await?;
    if entries.is_empty() {
        return Err(ApiError::not_found("room not found"));
    }
    replay_bytes(&entries).map_err(|error| ApiError::CorruptData(format!("room log: {error}")))
}

/// The status of a refused log entry: 409 [`ErrorCode::LogOutOfDate`] when the caller's view
/// of the log is out of date (they should fetch the log, replay it and decide again), 409
/// [`ErrorCode::AlreadyMember`] for adding a member, 403 when the author may not do
/// this, 404 for a deleted room (as every route answers for it), 400 for an entry that can
/// never be valid.
pub fn log_error(kind: LogErrorKind) -> ApiError {
    let message = format!("log entry refused: {kind}");
    match kind {
        LogErrorKind::AlreadyMember(_) => ApiError::refused(ErrorCode::AlreadyMember, message),
        LogErrorKind::SequenceGap { .. }
        | LogErrorKind::PrevHashMismatch
        | LogErrorKind::EpochGap { .. }
        | LogErrorKind::NotAMember(_)
        | LogErrorKind::Banned(_) => ApiError::refused(ErrorCode::LogOutOfDate, message),
        LogErrorKind::AuthorNotMember(_)
        | LogErrorKind::NotAuthorized { .. }
        | LogErrorKind::TargetsAuthor
        | LogErrorKind::OwnerCannotLeave => ApiError::Forbidden(message),
        LogErrorKind::RoomDeleted => ApiError::not_found("room not found"),
        LogErrorKind::Empty
        | LogErrorKind::Malformed(_)
        | LogErrorKind::MisplacedCreate
        | LogErrorKind::RoomIdMismatch
        | LogErrorKind::GenesisAuthorMismatch
        | LogErrorKind::BadSignature(_)
        | LogErrorKind::InvalidInvite(_)
        | LogErrorKind::InvalidSchedule(_)
        | LogErrorKind::Truncated { .. }
        | LogErrorKind::Forked(_) => ApiError::BadRequest(message),
    }
}

/// Checks that the keys a log entry records for `username` are the ones `username`
/// registered, so nobody can slip another key into a room under a member's name.
async fn require_registered_keys(
    pool: &AnyPool,
    username: &str,
    keys: &common::identity::MemberKeys,
) -> ApiResult<()> {
    let identity = users::find_identity(pool, username)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("user {username} does not exist")))?;
    if identity.keys() != keys {
        return Err(ApiError::bad_request(format!(
            "keys in the entry differ from the registered identity of {username}"
        )));
    }
    Ok(())
}

async fn create_room(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): Request<CreateRoom>,
) -> ApiResult<(StatusCode, Reply<CreateRoom>)> {
    let genesis = SignedLogEntry::from_bytes(&request.genesis.0)
        .map_err(|error| ApiError::bad_request(format!("malformed genesis entry: {error}")))?;
    let room_state = replay(std::slice::from_ref(&genesis))
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let author = &genesis.entry().author;
    if *author != user.username {
        return Err(ApiError::forbidden(
            "the genesis entry must be signed by the logged-in user",
        ));
    }
    check_entry_time(genesis.entry().time_ms)?;
    if let LogAction::Create { owner_keys, .. } = &genesis.entry().action {
        require_registered_keys(&state.pool, author, owner_keys).await?;
    }
    let envelope = &request.key_envelope;
    if envelope.room_id != room_state.room_id() {
        return Err(ApiError::bad_request("key envelope is for another room"));
    }
    if envelope.epoch != 0 {
        return Err(ApiError::bad_request("key envelope must be for epoch 0"));
    }
    if envelope.recipient != user.username || envelope.distributor != user.username {
        return Err(ApiError::bad_request(
            "key envelope must be sealed by the creator to the creator",
        ));
    }
    envelope
        .verify(&room_state)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    rooms::create(
        &state.pool,
        &genesis,
        &room_state,
        envelope,
        store::now_ms(),
    )
    .await?;
    tracing::info!(room_id = %room_state.room_id(), creator = %user.username, "room created");
    Ok((
        StatusCode::CREATED,
        Json(CreateRoomResponse {
            room_id: room_state.room_id(),
        }),
    ))
}

async fn list_rooms(State(state): State<AppState>, user: AuthUser) -> ApiResult<Reply<ListRooms>> {
    let rooms = rooms::list_for_user(&state.pool, &user.username).await?;
    Ok(Json(RoomListResponse { rooms }))
}

async fn get_log(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
) -> ApiResult<Reply<GetLog>> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let entries = rooms::load_log(&state.pool, &room_id).await?;
    Ok(Json(LogResponse {
        entries: entries.into_iter().map(Base64).collect(),
    }))
}

async fn append_log(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<AppendLog>,
) -> ApiResult<StatusCode> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let entry = SignedLogEntry::from_bytes(&request.entry.0)
        .map_err(|error| ApiError::bad_request(format!("malformed log entry: {error}")))?;
    if entry.entry().room_id != room_id {
        return Err(ApiError::bad_request("log entry is for another room"));
    }
    if entry.entry().author != user.username {
        return Err(ApiError::forbidden(
            "log entries must be signed by the logged-in user",
        ));
    }
    check_entry_time(entry.entry().time_ms)?;
    let mut room_state = load_state(&state.pool, &room_id).await?;
    let members_before: BTreeSet<String> = room_state.members().keys().cloned().collect();
    room_state.apply(&entry).map_err(log_error)?;
    if let Some((username, keys)) = entry.entry().action.added_member() {
        require_registered_keys(&state.pool, username, keys).await?;
    }
    if room_state.deleted() && !request.envelopes.is_empty() {
        return Err(ApiError::bad_request(
            "a delete entry carries no key envelopes",
        ));
    }
    for envelope in &request.envelopes {
        check_envelope(&room_state, &user.username, &room_id, envelope)?;
    }
    let doomed = {
        let (pool, entry, room_state) = (state.pool.clone(), entry.clone(), room_state.clone());
        let envelopes = request.envelopes.clone();
        state
            .membership
            .apply_change([room_id], async move {
                rooms::append(&pool, &entry, &room_state, &envelopes).await
            })
            .await?
    };
    // The entry cleared the history or deleted the room: its attachments' chunks go too.
    crate::routes::attachments::delete_blobs(&state, &doomed).await;
    let seq = entry.entry().seq;
    tracing::info!(
        %room_id,
        seq,
        author = %user.username,
        action = entry.entry().action.name(),
        "log entry appended"
    );
    // Everyone who was a member before or is one after: a removed, banned or leaving member
    // learns of their own removal, an added member sees the room appear.
    let mut recipients = members_before.clone();
    recipients.extend(room_state.members().keys().cloned());
    let event = ServerEvent::LogEntry {
        room_id,
        seq,
        entry: Base64(entry.as_bytes().to_vec()),
    };
    state
        .hub
        .send_to_users(recipients.iter().map(String::as_str), &event);
    send_envelope_events(&state, request.envelopes);
    if room_state.deleted() {
        state.hub.send_to_users(
            members_before.iter().map(String::as_str),
            &ServerEvent::RoomDeleted { room_id },
        );
        return Ok(StatusCode::NO_CONTENT);
    }
    Ok(StatusCode::CREATED)
}

async fn put_envelopes(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<PutEnvelopes>,
) -> ApiResult<StatusCode> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let room_state = load_state(&state.pool, &room_id).await?;
    for envelope in &request.envelopes {
        check_envelope(&room_state, &user.username, &room_id, envelope)?;
    }
    envelopes::upsert_all(&state.pool, &request.envelopes, store::now_ms()).await?;
    send_envelope_events(&state, request.envelopes);
    Ok(StatusCode::NO_CONTENT)
}

/// Largest lead of an entry's signed time over the server's clock: 10 minutes, in
/// milliseconds. An epoch's scheduled rotation counts from the signed time of the entry that
/// started it, so an entry dated far ahead would put off rotation indefinitely.
pub const MAX_ENTRY_CLOCK_LEAD_MS: u64 = 10 * 60 * 1000;

/// Refuses an entry dated more than [`MAX_ENTRY_CLOCK_LEAD_MS`] ahead of the server's clock.
///
/// # Errors
/// 400 `entry time is in the future`.
fn check_entry_time(time_ms: u64) -> ApiResult<()> {
    let now = u64::try_from(store::now_ms()).unwrap_or(0);
    if time_ms > now.saturating_add(MAX_ENTRY_CLOCK_LEAD_MS) {
        return Err(ApiError::bad_request("entry time is in the future"));
    }
    Ok(())
}

/// Runs every check of an envelope the server can make without the secret key, against
/// `room_state`: distributed by the caller, for this room, valid for the log
/// ([`KeyEnvelope::verify`]) and sealed at a log head the server's log has.
///
/// # Errors
/// 403 for an envelope distributed by someone else, 400 for any other failed check.
fn check_envelope(
    room_state: &RoomState,
    caller: &str,
    room_id: &RoomId,
    envelope: &KeyEnvelope,
) -> ApiResult<()> {
    if envelope.distributor != caller {
        return Err(ApiError::forbidden(
            "envelopes must be distributed by the logged-in user",
        ));
    }
    if envelope.room_id != *room_id {
        return Err(ApiError::bad_request("key envelope is for another room"));
    }
    envelope
        .verify(room_state)
        .and_then(|()| envelope.check_log_head(room_state))
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// Tells each envelope's recipient, if connected, that it was stored.
fn send_envelope_events(state: &AppState, envelopes: Vec<KeyEnvelope>) {
    for envelope in envelopes {
        let recipient = envelope.recipient.clone();
        state
            .hub
            .send_to_user(&recipient, &ServerEvent::KeyEnvelope { envelope });
    }
}

async fn get_envelopes(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
) -> ApiResult<Reply<GetEnvelopes>> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let envelopes = envelopes::for_recipient(&state.pool, &room_id, &user.username).await?;
    Ok(Json(EnvelopesResponse { envelopes }))
}

async fn request_key(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<RequestKey>,
) -> ApiResult<StatusCode> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let room_state = load_state(&state.pool, &room_id).await?;
    if room_state.epoch(request.epoch).is_none() {
        return Err(ApiError::bad_request(format!(
            "unknown epoch {}",
            request.epoch
        )));
    }
    let others = room_state
        .members()
        .keys()
        .filter(|member| **member != user.username);
    let event = ServerEvent::KeyRequested {
        room_id,
        username: user.username.clone(),
        epoch: request.epoch,
    };
    state.hub.send_to_users(others.map(String::as_str), &event);
    Ok(StatusCode::ACCEPTED)
}
