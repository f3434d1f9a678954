//! `/api/totp/*`: setting up, enabling and disabling TOTP (RFC 6238) as the second login
//! factor, through the second-factor store ([`crate::factors`]), and the check of a TOTP or
//! recovery code that re-authentication uses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{TotpDisable, TotpEnable, TotpSetup};

use super::{EndpointRouter, Reply, Request};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::factors;
use crate::routes::account::reauthenticate;
use crate::session::AuthUser;
use crate::throttle::Endpoint;
use crate::AppState;

/// Routes of this module (all need a session, else 401; code checks count against the
/// user's and the address's throttle, 429 beyond it; 503 while the second-factor store
/// cannot be reached):
///
/// - `POST /api/totp/setup` -> 200 [`TotpSetupResponse`]: a new pending secret (replacing an
///   earlier pending one), its `otpauth://` URI and QR code; 409 `totp is already enabled`.
/// - `POST /api/totp/enable` [`TotpCodeRequest`] (a code of the pending secret and the
///   current auth key) -> 200 [`RecoveryCodesResponse`] with ten fresh recovery codes, shown
///   only now; 401 `invalid password` for a wrong auth key, 401 `invalid code` for a code
///   that does not match the pending secret, 409 `no totp setup in progress` or `totp is
///   already enabled`.
/// - `POST /api/totp/disable` [`TotpCodeRequest`] (a current TOTP code or an unused recovery
///   code, and the current auth key) -> 204, deleting the secret and the recovery codes; 401
///   `invalid password` or `invalid code`, 409 `totp is not enabled`.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(TotpSetup, setup)
        .endpoint(TotpEnable, enable)
        .endpoint(TotpDisable, disable)
}

/// Checks a code sent by a logged-in user (re-authentication) after counting the attempt
/// against the throttle: a TOTP code of the active secret, or an unused recovery code, which
/// is then used up.
///
/// # Errors
/// 429 [`ApiError::TooManyAttempts`], 401 [`ApiError::InvalidCode`], 503 while the store
/// cannot be reached, or a database error.
pub async fn require_user_code(
    state: &AppState,
    username: &str,
    client: &ClientInfo,
    code: &str,
) -> ApiResult<()> {
    state
        .throttle
        .attempt(&state.pool, Endpoint::Code, Some(username), client.ip)
        .await?;
    if state.factors.verify_code(username, code).await? {
        Ok(())
    } else {
        Err(ApiError::InvalidCode)
    }
}

async fn setup(State(state): State<AppState>, user: AuthUser) -> ApiResult<Reply<TotpSetup>> {
    Ok(Json(state.factors.totp_setup(&user.username).await?))
}

async fn enable(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<TotpEnable>,
) -> ApiResult<Reply<TotpEnable>> {
    if factors::status(&state, &user.username).await?.totp_enabled {
        return Err(ApiError::conflict("totp is already enabled"));
    }
    // No code of an active factor: TOTP is the only one, and it is not on yet.
    reauthenticate(&state, &user, &client, request.auth_key.0, None).await?;
    state
        .throttle
        .attempt(&state.pool, Endpoint::Code, Some(&user.username), client.ip)
        .await?;
    let codes = factors::enabling(
        &state,
        &user.username,
        state
            .factors
            .totp_enable(&user.username, request.code.trim()),
    )
    .await?;
    tracing::info!(username = %user.username, "totp enabled");
    Ok(Json(codes))
}

async fn disable(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<TotpDisable>,
) -> ApiResult<StatusCode> {
    if !factors::status(&state, &user.username).await?.totp_enabled {
        return Err(ApiError::conflict("totp is not enabled"));
    }
    reauthenticate(
        &state,
        &user,
        &client,
        request.auth_key.0,
        Some(request.code.as_str()),
    )
    .await?;
    state.factors.totp_disable(&user.username).await?;
    factors::clear_flag_if_none_left(&state, &user.username).await?;
    tracing::info!(username = %user.username, "totp disabled");
    Ok(StatusCode::NO_CONTENT)
}
