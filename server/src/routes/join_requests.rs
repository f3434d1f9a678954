//! Join requests: a logged-in user who holds an invite token asks to join a room, and the
//! room's owners and admins list and refuse the requests. Approving one is an ordinary add
//! entry appended to the log, which also deletes the request.
//!
//! The server checks the token against the invites published in the replayed log: it sees
//! the token only when someone uses it, and the log holds only its hash.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{ListJoinRequests, RefuseJoinRequest, RequestToJoin};
use common::api::{JoinRequestsResponse, ServerEvent};
use common::membership::{invite_token_hash, replay_bytes, Role, RoomId};
use sqlx::AnyPool;

use super::{EndpointRouter, Reply, Request};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, RoomPath, RoomUserPath};
use crate::routes::rooms::require_member;
use crate::session::AuthUser;
use crate::store::{self, join_requests, rooms};
use crate::AppState;

/// Routes of this module (all need a session, else 401):
///
/// - `POST /api/rooms/{room_id}/join-requests` [`JoinRequestBody`] -> 202 (no body), by a
///   user who is not a member. Checked in this order: 404 `invite not found` for an unknown
///   room or a token whose hash no invite in the log has (the same answer, so neither rooms
///   nor tokens can be probed), 403 `you are banned from this room`, 409 `you are already a
///   member`, 410 `invite expired` when the server's clock has reached the invite's
///   `expires_at_ms`, 409 `a join request is already pending`, 410 `invite used up` when the
///   invite has admitted `max_uses` requests (each accepted request uses one, and refusing
///   it does not give it back). The room's connected owners and admins are sent
///   [`ServerEvent::JoinRequested`].
/// - `GET /api/rooms/{room_id}/join-requests` -> 200 [`JoinRequestsResponse`], oldest first,
///   with each requester's published identity; owners and admins only (403 for a plain
///   member).
/// - `DELETE /api/rooms/{room_id}/join-requests/{username}` -> 204, refuses the request;
///   owners and admins only (403 for a plain member); 404 `join request not found` when
///   there is none.
///
/// The last two answer 404 `room not found` to non-members, as every room route does.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(RequestToJoin, request_to_join)
        .endpoint(ListJoinRequests, list_join_requests)
        .endpoint(RefuseJoinRequest, refuse_join_request)
}

/// The caller's role when it is owner or admin.
///
/// # Errors
/// 404 `room not found` for a non-member, 403 for a plain member, or a database error.
async fn require_admin(pool: &AnyPool, room_id: &RoomId, username: &str) -> ApiResult<Role> {
    let role = require_member(pool, room_id, username).await?;
    if role >= Role::Admin {
        Ok(role)
    } else {
        Err(ApiError::forbidden(
            "only owners and admins may manage join requests",
        ))
    }
}

async fn request_to_join(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<RequestToJoin>,
) -> ApiResult<StatusCode> {
    let invite_not_found = || ApiError::not_found("invite not found");
    let entries = rooms::load_log(&state.pool, &room_id).await?;
    if entries.is_empty() {
        return Err(invite_not_found());
    }
    let room_state = replay_bytes(&entries)
        .map_err(|error| ApiError::CorruptData(format!("room log: {error}")))?;
    let token_hash = invite_token_hash(&request.token.0);
    let invite = room_state
        .invites()
        .get(&token_hash)
        .ok_or_else(invite_not_found)?;
    if room_state.banned().contains(&user.username) {
        return Err(ApiError::refused(
            ErrorCode::Banned,
            "you are banned from this room",
        ));
    }
    if room_state.member(&user.username).is_some() {
        return Err(ApiError::refused(
            ErrorCode::AlreadyMember,
            "you are already a member",
        ));
    }
    let now_ms = store::now_ms();
    if u64::try_from(now_ms).unwrap_or(0) >= invite.expires_at_ms {
        return Err(ApiError::refused(
            ErrorCode::InviteExpired,
            "invite expired",
        ));
    }
    let new_request = join_requests::NewJoinRequest {
        room_id,
        username: &user.username,
        token_hash,
        max_uses: invite.max_uses,
        requested_at_ms: now_ms,
    };
    join_requests::create(&state.pool, &new_request).await?;
    tracing::info!(%room_id, username = %user.username, "join requested");
    let admins = rooms::admin_usernames(&state.pool, &room_id).await?;
    let event = ServerEvent::JoinRequested {
        room_id,
        username: user.username,
    };
    state
        .hub
        .send_to_users(admins.iter().map(String::as_str), &event);
    Ok(StatusCode::ACCEPTED)
}

async fn list_join_requests(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
) -> ApiResult<Reply<ListJoinRequests>> {
    require_admin(&state.pool, &room_id, &user.username).await?;
    let requests = join_requests::list(&state.pool, &room_id).await?;
    Ok(Json(JoinRequestsResponse { requests }))
}

async fn refuse_join_request(
    State(state): State<AppState>,
    user: AuthUser,
    path: RoomUserPath,
) -> ApiResult<StatusCode> {
    require_admin(&state.pool, &path.room_id, &user.username).await?;
    let mut connection = state.pool.acquire().await?;
    if join_requests::delete(&mut connection, &path.room_id, &path.username).await? {
        tracing::info!(
            room_id = %path.room_id,
            username = %path.username,
            by = %user.username,
            "join request refused"
        );
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("join request not found"))
    }
}
