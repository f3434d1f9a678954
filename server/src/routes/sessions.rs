//! `/api/sessions`: the caller's login sessions, and revoking them. A revoked session's
//! WebSockets are closed at once (see [`crate::hub::Hub::close_sessions`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use common::api::endpoints::{RevokeOtherSessions, RevokeSession, Sessions};
use common::api::SessionsResponse;

use super::{EndpointRouter, Reply};
use crate::error::{ApiError, ApiResult};
use crate::session::{self, duration_ms, AuthUser};
use crate::store::{self, sessions};
use crate::AppState;

/// Routes of this module (all need a session, else 401):
///
/// - `GET /api/sessions` -> 200 [`SessionsResponse`]: the caller's live sessions, newest
///   first, `current` set on the one making the request.
/// - `DELETE /api/sessions/{id}` -> 204: ends one of the caller's sessions (revoking the
///   current one also clears its cookie); 404 `session not found` for an id that is not one
///   of the caller's live sessions.
/// - `POST /api/sessions/revoke-others` -> 204: ends every other session of the caller.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(Sessions, list)
        .endpoint(RevokeOtherSessions, revoke_others)
        .endpoint(RevokeSession, revoke)
}

async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Reply<Sessions>> {
    let sessions = sessions::list(
        &state.pool,
        &user.username,
        &user.session_id,
        store::now_ms(),
        duration_ms(state.config.session_idle()),
    )
    .await?;
    Ok(Json(SessionsResponse { sessions }))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !sessions::delete_by_public_id(&state.pool, &user.username, &id).await? {
        return Err(ApiError::not_found("session not found"));
    }
    state
        .hub
        .close_sessions(&user.username, std::slice::from_ref(&id));
    tracing::info!(username = %user.username, "session revoked");
    if id == user.session_id {
        return Ok((StatusCode::NO_CONTENT, [session::clearing_cookie(&state)]).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_others(State(state): State<AppState>, user: AuthUser) -> ApiResult<StatusCode> {
    let mut connection = state.pool.acquire().await?;
    let revoked =
        sessions::delete_all_of_user(&mut connection, &user.username, Some(&user.session_id))
            .await?;
    drop(connection);
    state.hub.close_sessions(&user.username, &revoked);
    tracing::info!(username = %user.username, count = revoked.len(), "other sessions revoked");
    Ok(StatusCode::NO_CONTENT)
}
