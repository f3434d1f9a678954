//! Accounts: register, logout, the caller's own record, and other users' public
//! identities. Logging in is in [`crate::routes::login`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use common::api::endpoints::{Logout, Me, Register, Session, UserIdentity};
use common::api::{MeResponse, SessionResponse, SessionStatus};
use common::identity::validate_username;
use common::wire::{Base64, Base64Array};

use super::{EndpointRouter, Reply, Request};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::ApiJson;
use crate::password;
use crate::session::{self, AuthUser};
use crate::store::{self, login_events, sessions, users};
use crate::throttle::Endpoint;
use crate::AppState;

/// Routes of this module:
///
/// - `POST /api/register` [`RegisterRequest`] -> 201 [`SessionResponse`] and the session
///   cookie; 400 for a bad username, an identity for another name or weak KDF parameters,
///   409 for a taken username, 429 beyond `--register-attempts` registrations per client
///   address within the login window (counted before anything else). The client's network becomes the account's first known
///   network.
/// - `POST /api/logout` -> 204, ends the session (closing its sockets) and clears the
///   cookie; 401 without one.
/// - `GET /api/me` -> 200 [`MeResponse`]; 401 without a session.
/// - `GET /api/users/{username}` -> 200 [`PublicIdentity`]; 401 without a session, 404 for an
///   unknown user.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(Register, register)
        .endpoint(Logout, logout)
        .endpoint(Me, me)
        .endpoint(Session, session_status)
        .endpoint(UserIdentity, user_identity)
}

async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(request): Request<Register>,
) -> ApiResult<impl IntoResponse> {
    // Counted first, per address, so that probing names or filling the database costs the
    // server no hash and no query beyond the counter's.
    state
        .throttle
        .attempt(&state.pool, Endpoint::Register, None, client.ip)
        .await?;
    validate_username(&request.username)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    if request.identity.username() != request.username {
        return Err(ApiError::bad_request("identity belongs to another user"));
    }
    request
        .kdf
        .check()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    if request.wrapped_identity.0.is_empty() {
        return Err(ApiError::bad_request("wrapped identity is empty"));
    }
    // Refuse a taken name before spending time on the hash; the insert still catches a race.
    if users::find_identity(&state.pool, &request.username)
        .await?
        .is_some()
    {
        return Err(ApiError::refused(
            ErrorCode::UsernameTaken,
            "username is already taken",
        ));
    }
    let auth_hash = password::hash_auth_key(request.auth_key.0).await?;
    let new_user = users::NewUser {
        username: &request.username,
        kdf: request.kdf,
        salt: &request.salt.0,
        auth_hash: &auth_hash,
        identity: &request.identity,
        wrapped_identity: &request.wrapped_identity.0,
    };
    let now_ms = store::now_ms();
    users::insert(&state.pool, &new_user, now_ms).await?;
    tracing::info!(username = %request.username, "registered");
    let network = client.network().to_string();
    login_events::remember_network(&state.pool, &request.username, &network, now_ms).await?;
    let cookie = session::start(&state, &request.username, &client).await?;
    let body = SessionResponse {
        username: request.username,
    };
    Ok((StatusCode::CREATED, [cookie], Json(body)))
}

async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<impl IntoResponse> {
    sessions::delete(&state.pool, &user.token_hash).await?;
    state
        .hub
        .close_sessions(&user.username, std::slice::from_ref(&user.session_id));
    Ok((StatusCode::NO_CONTENT, [session::clearing_cookie(&state)]))
}

/// `GET /api/session`: 200 with the username of a live session, or `None`; never 401, so a
/// page can probe at start-up without an error. Database failures still answer 500.
async fn session_status(user: Result<AuthUser, ApiError>) -> ApiResult<Reply<Session>> {
    match user {
        Ok(user) => Ok(Json(SessionStatus {
            username: Some(user.username),
        })),
        Err(ApiError::NotLoggedIn) => Ok(Json(SessionStatus { username: None })),
        Err(error) => Err(error),
    }
}

async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Reply<Me>> {
    // The session's user always exists: deleting a user would delete their sessions.
    let record = users::find(&state.pool, &user.username)
        .await?
        .ok_or(ApiError::NotLoggedIn)?;
    Ok(Json(MeResponse {
        username: record.username,
        kdf: record.kdf,
        salt: Base64Array(record.salt),
        identity: record.identity,
        wrapped_identity: Base64(record.wrapped_identity),
    }))
}

async fn user_identity(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(username): Path<String>,
) -> ApiResult<Reply<UserIdentity>> {
    let identity = match validate_username(&username) {
        Ok(()) => users::find_identity(&state.pool, &username).await?,
        Err(_) => None,
    };
    identity
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user not found"))
}
