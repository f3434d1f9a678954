//! `/api/totp/*`: setting up, enabling and disabling TOTP (RFC 6238) as the second login
//! factor, and the check of a TOTP or recovery code that the login and re-authentication
//! share.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::api::{RecoveryCodesResponse, TotpCodeRequest, TotpSetupResponse};

use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::session::AuthUser;
use crate::store::{self, totp as totp_store};
use crate::throttle::Endpoint;
use crate::totp::{self, TotpSecret};
use crate::AppState;

/// Routes of this module (all need a session, else 401; code checks count against the
/// user's and the address's throttle, 429 beyond it):
///
/// - `POST /api/totp/setup` -> 200 [`TotpSetupResponse`]: a new pending secret (replacing an
///   earlier pending one), its `otpauth://` URI and QR code; 409 `totp is already enabled`.
/// - `POST /api/totp/enable` [`TotpCodeRequest`] -> 200 [`RecoveryCodesResponse`] with ten
///   fresh recovery codes, shown only now; 401 `invalid code` for a code that does not match
///   the pending secret, 409 `no totp setup in progress` or `totp is already enabled`.
/// - `POST /api/totp/disable` [`TotpCodeRequest`] (a current TOTP code or an unused recovery
///   code) -> 204, deleting the secret and the recovery codes; 401 `invalid code`, 409
///   `totp is not enabled`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/totp/setup", post(setup))
        .route("/api/totp/enable", post(enable))
        .route("/api/totp/disable", post(disable))
}

/// The current Unix time in whole seconds.
fn now_seconds() -> u64 {
    u64::try_from(store::now_ms() / 1000).unwrap_or_default()
}

fn secret_does_not_open() -> ApiError {
    ApiError::CorruptData("a totp secret does not open under the server key".to_owned())
}

/// Checks `code` as a second factor of `username`: a 6-digit TOTP code of the active secret
/// within one step of now and later than the last accepted one (its step is then recorded),
/// or an unused recovery code (which is then spent). `Ok(false)` for a wrong or reused code
/// and for a user without TOTP.
///
/// # Errors
/// A database error, or [`ApiError::CorruptData`] for a secret sealed under another key.
pub async fn verify_code(state: &AppState, username: &str, code: &str) -> ApiResult<bool> {
    let Some(record) = totp_store::find(&state.pool, username).await? else {
        return Ok(false);
    };
    let Some(sealed_secret) = record.sealed_secret else {
        return Ok(false);
    };
    if totp::is_totp_code(code) {
        let secret = TotpSecret::open(&state.server_key, username, &sealed_secret)
            .ok_or_else(secret_does_not_open)?;
        let Some(step) = totp::matching_step(&secret, code, now_seconds(), record.last_step) else {
            return Ok(false);
        };
        return totp_store::advance_step(&state.pool, username, step).await;
    }
    match totp::recovery_code_mac(&state.server_key, username, code) {
        Some(code_mac) => totp_store::spend_recovery_code(&state.pool, username, &code_mac).await,
        None => Ok(false),
    }
}

/// Checks a code sent by a logged-in user (disable, re-authentication) after counting the
/// attempt against the throttle.
///
/// # Errors
/// 429 [`ApiError::TooManyAttempts`], 401 [`ApiError::InvalidCode`], or as [`verify_code`].
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
    if verify_code(state, username, code).await? {
        Ok(())
    } else {
        Err(ApiError::InvalidCode)
    }
}

async fn setup(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<TotpSetupResponse>> {
    if totp_store::is_enabled(&state.pool, &user.username).await? {
        return Err(ApiError::conflict("totp is already enabled"));
    }
    let secret = TotpSecret::generate();
    let otpauth_uri = secret.otpauth_uri(&user.username);
    let qr_svg = totp::qr_svg(&otpauth_uri)?;
    let sealed = secret.seal(&state.server_key, &user.username);
    totp_store::set_pending(&state.pool, &user.username, &sealed).await?;
    Ok(Json(TotpSetupResponse {
        secret_base32: secret.to_base32(),
        otpauth_uri,
        qr_svg,
    }))
}

async fn enable(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): ApiJson<TotpCodeRequest>,
) -> ApiResult<Json<RecoveryCodesResponse>> {
    state
        .throttle
        .attempt(&state.pool, Endpoint::Code, Some(&user.username), client.ip)
        .await?;
    let record = totp_store::find(&state.pool, &user.username).await?;
    let pending = match record {
        Some(record) if record.sealed_secret.is_some() => {
            return Err(ApiError::conflict("totp is already enabled"));
        }
        Some(record) => record.sealed_pending_secret,
        None => None,
    };
    let sealed_pending = pending.ok_or_else(|| ApiError::conflict("no totp setup in progress"))?;
    let secret = TotpSecret::open(&state.server_key, &user.username, &sealed_pending)
        .ok_or_else(secret_does_not_open)?;
    let step = totp::matching_step(&secret, &request.code, now_seconds(), 0)
        .ok_or(ApiError::InvalidCode)?;
    let codes = totp::generate_recovery_codes();
    let code_macs: Vec<[u8; 32]> = codes
        .iter()
        .filter_map(|code| totp::recovery_code_mac(&state.server_key, &user.username, code))
        .collect();
    totp_store::enable(
        &state.pool,
        &user.username,
        &sealed_pending,
        step,
        &code_macs,
    )
    .await?;
    tracing::info!(username = %user.username, "totp enabled");
    Ok(Json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(|code| code.as_str().to_owned()).collect(),
    }))
}

async fn disable(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): ApiJson<TotpCodeRequest>,
) -> ApiResult<StatusCode> {
    if !totp_store::is_enabled(&state.pool, &user.username).await? {
        return Err(ApiError::conflict("totp is not enabled"));
    }
    require_user_code(&state, &user.username, &client, &request.code).await?;
    totp_store::disable(&state.pool, &user.username).await?;
    tracing::info!(username = %user.username, "totp disabled");
    Ok(StatusCode::NO_CONTENT)
}
