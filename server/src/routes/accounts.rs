//! Accounts and sessions: register, prelogin, login, logout, the caller's own record, and
//! other users' public identities.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::account::KdfParams;
use common::api::{
    LoginRequest, MeResponse, PreloginRequest, PreloginResponse, RegisterRequest, SessionResponse,
};
use common::identity::{validate_username, PublicIdentity};
use common::wire::{Base64, Base64Array};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::password;
use crate::session::{self, AuthUser};
use crate::store::{self, sessions, users};
use crate::AppState;

/// Routes of this module:
///
/// - `POST /api/register` [`RegisterRequest`] -> 201 [`SessionResponse`] and the session
///   cookie; 400 for a bad username, an identity for another name or weak KDF parameters,
///   409 for a taken username.
/// - `POST /api/prelogin` [`PreloginRequest`] -> 200 [`PreloginResponse`]; an unknown name
///   gets default parameters and a stable fake salt.
/// - `POST /api/login` [`LoginRequest`] -> 200 [`SessionResponse`] and the session cookie;
///   401 `invalid username or password` for a wrong key or an unknown name alike.
/// - `POST /api/logout` -> 204, ends the session and clears the cookie; 401 without one.
/// - `GET /api/me` -> 200 [`MeResponse`]; 401 without a session.
/// - `GET /api/users/{username}` -> 200 [`PublicIdentity`]; 401 without a session, 404 for an
///   unknown user.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/register", post(register))
        .route("/api/prelogin", post(prelogin))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/users/{username}", get(user_identity))
}

async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
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
        return Err(ApiError::conflict("username is already taken"));
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
    users::insert(&state.pool, &new_user, store::now_ms()).await?;
    tracing::info!(username = %request.username, "registered");
    let cookie = session::start(&state, &request.username).await?;
    let body = SessionResponse {
        username: request.username,
    };
    Ok((StatusCode::CREATED, [cookie], Json(body)))
}

async fn prelogin(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PreloginRequest>,
) -> ApiResult<Json<PreloginResponse>> {
    let known = match validate_username(&request.username) {
        Ok(()) => users::find(&state.pool, &request.username).await?,
        Err(_) => None,
    };
    let response = match known {
        Some(user) => PreloginResponse {
            kdf: user.kdf,
            salt: Base64Array(user.salt),
        },
        None => PreloginResponse {
            kdf: KdfParams::DEFAULT,
            salt: Base64Array(state.secret.fake_salt(&request.username)),
        },
    };
    Ok(Json(response))
}

async fn login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let user = match validate_username(&request.username) {
        Ok(()) => users::find(&state.pool, &request.username).await?,
        Err(_) => None,
    };
    // An unknown name is checked against a dummy hash, so both failures take as long.
    let stored_hash = user.as_ref().map_or_else(
        || state.dummy_auth_hash.to_string(),
        |user| user.auth_hash.clone(),
    );
    let key_matches = password::verify_auth_key(request.auth_key.0, stored_hash).await?;
    let Some(user) = user.filter(|_| key_matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    let cookie = session::start(&state, &user.username).await?;
    Ok((
        [cookie],
        Json(SessionResponse {
            username: user.username,
        }),
    ))
}

async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<impl IntoResponse> {
    sessions::delete(&state.pool, &user.token_hash).await?;
    Ok((StatusCode::NO_CONTENT, [session::clearing_cookie()]))
}

async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<MeResponse>> {
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
) -> ApiResult<Json<PublicIdentity>> {
    let identity = match validate_username(&username) {
        Ok(()) => users::find_identity(&state.pool, &username).await?,
        Err(_) => None,
    };
    identity
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user not found"))
}
