//! `/api/account`: the caller's security settings and login history, trusted networks,
//! password change and account deletion. Changes re-authenticate: the current auth key,
//! and a TOTP or recovery code when TOTP is enabled.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use common::api::endpoints::{
    Account, ChangePassword, DeleteAccount, DismissNotices, SetTrustedNetworks,
};
use common::api::AccountResponse;
use ipnet::IpNet;

use super::{EndpointRouter, Reply, Request};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::factors;
use crate::password;
use crate::routes::totp::require_user_code;
use crate::session::{self, AuthUser};
use crate::store::{login_events, trusted_networks, users};
use crate::throttle::Endpoint;
use crate::AppState;

/// Most login events `GET /api/account` lists.
pub const LOGIN_HISTORY_LENGTH: i64 = 50;
/// Most trusted networks an account may list.
pub const MAX_TRUSTED_NETWORKS: usize = 64;

/// Routes of this module (all need a session, else 401). Re-authentication answers 401
/// `invalid password` for a wrong `auth_key`, 401 `invalid code` for a missing, wrong or
/// reused code when TOTP is enabled, and 429 beyond the throttle.
///
/// - `GET /api/account` -> 200 [`AccountResponse`]: TOTP state, unused recovery codes,
///   trusted networks, the latest 50 login attempts (newest first) and the undismissed
///   new-network notices.
/// - `POST /api/account/notices/dismiss` -> 204: dismisses every new-network notice.
/// - `PUT /api/account/trusted-networks` [`TrustedNetworksRequest`] -> 204, replacing the
///   list (empty allows any network); 400 `invalid network: ...` for a block that is not
///   CIDR, 400 for more than 64 blocks.
/// - `POST /api/account/password` [`PasswordChangeRequest`] -> 204: in one transaction the
///   new salt, KDF parameters, auth key hash, wrapped identity, and every other session of the user ends (their sockets are closed); the public identity
///   stays. 400 for weak KDF parameters or an empty wrapped identity.
/// - `POST /api/account/delete` [`DeleteAccountRequest`] -> 204 and a clearing cookie: the
///   account and every row of it are deleted (see [`users::delete_account`]), its sockets
///   are closed, and its rooms are marked as needing a key rotation.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(Account, account)
        .endpoint(DismissNotices, dismiss_notices)
        .endpoint(SetTrustedNetworks, set_trusted_networks)
        .endpoint(ChangePassword, change_password)
        .endpoint(DeleteAccount, delete_account)
}

/// Re-authenticates the caller before a sensitive change: `auth_key` must match the stored
/// hash (checked in `spawn_blocking`), and when TOTP is enabled `totp_code` must be a valid
/// TOTP or recovery code. Each call counts against the user's code throttle.
///
/// # Errors
/// 401 [`ApiError::InvalidPassword`] or [`ApiError::InvalidCode`], 429
/// [`ApiError::TooManyAttempts`], or a database or hashing error.
pub async fn reauthenticate(
    state: &AppState,
    user: &AuthUser,
    client: &ClientInfo,
    auth_key: [u8; 32],
    totp_code: Option<&str>,
) -> ApiResult<()> {
    state
        .throttle
        .attempt(
            &state.pool,
            Endpoint::Reauthenticate,
            Some(&user.username),
            client.ip,
        )
        .await?;
    // The session's user always exists: deleting a user deletes their sessions.
    let record = users::find(&state.pool, &user.username)
        .await?
        .ok_or(ApiError::NotLoggedIn)?;
    if !password::verify_auth_key(auth_key, record.auth_hash).await? {
        return Err(ApiError::InvalidPassword);
    }
    // A code when TOTP is on. Accounts whose only factors are passkeys re-authenticate
    // with the password (a passkey assertion here is not built yet), so that adding a
    // second passkey does not spend a recovery code.
    if factors::status(state, &user.username).await?.totp_enabled {
        let code = totp_code.ok_or(ApiError::InvalidCode)?;
        require_user_code(state, &user.username, client, code).await?;
    }
    Ok(())
}

async fn account(State(state): State<AppState>, user: AuthUser) -> ApiResult<Reply<Account>> {
    let username = user.username.as_str();
    let factors = factors::status(&state, username).await?;
    Ok(Json(AccountResponse {
        totp_enabled: factors.totp_enabled,
        recovery_codes_left: factors.recovery_codes_left,
        trusted_networks: trusted_networks::list(&state.pool, username)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect(),
        login_history: login_events::history(&state.pool, username, LOGIN_HISTORY_LENGTH).await?,
        new_network_notices: login_events::new_network_notices(&state.pool, username).await?,
        passkeys: factors.passkeys,
    }))
}

async fn dismiss_notices(State(state): State<AppState>, user: AuthUser) -> ApiResult<StatusCode> {
    login_events::dismiss_notices(&state.pool, &user.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses CIDR blocks (`192.0.2.0/24`, `2001:db8::/32`), keeping each block's network
/// address (`10.1.2.7/24` becomes `10.1.2.0/24`), without duplicates.
fn parse_networks(texts: &[String]) -> ApiResult<Vec<IpNet>> {
    if texts.len() > MAX_TRUSTED_NETWORKS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_TRUSTED_NETWORKS} trusted networks"
        )));
    }
    let mut networks = texts
        .iter()
        .map(|text| {
            IpNet::from_str(text.trim())
                .map(|network| network.trunc())
                .map_err(|_| ApiError::bad_request(format!("invalid network: {text:?}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    networks.sort();
    networks.dedup();
    Ok(networks)
}

async fn set_trusted_networks(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<SetTrustedNetworks>,
) -> ApiResult<StatusCode> {
    let networks = parse_networks(&request.networks)?;
    reauthenticate(
        &state,
        &user,
        &client,
        request.auth_key.0,
        request.totp_code.as_deref(),
    )
    .await?;
    trusted_networks::replace(&state.pool, &user.username, &networks).await?;
    tracing::info!(username = %user.username, count = networks.len(), "trusted networks set");
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<ChangePassword>,
) -> ApiResult<StatusCode> {
    // Checked before re-authenticating, so a refused request does not spend the code.
    request
        .new_kdf
        .check()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    if request.new_wrapped_identity.0.is_empty() {
        return Err(ApiError::bad_request("wrapped identity is empty"));
    }
    reauthenticate(
        &state,
        &user,
        &client,
        request.current_auth_key.0,
        request.totp_code.as_deref(),
    )
    .await?;
    let auth_hash = password::hash_auth_key(request.new_auth_key.0).await?;
    let change = users::PasswordChange {
        kdf: request.new_kdf,
        salt: &request.new_salt.0,
        auth_hash: &auth_hash,
        wrapped_identity: &request.new_wrapped_identity.0,
    };
    let signed_out =
        users::change_password(&state.pool, &user.username, &change, &user.session_id).await?;
    state.hub.close_sessions(&user.username, &signed_out);
    tracing::info!(
        username = %user.username,
        signed_out = signed_out.len(),
        "password changed"
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_account(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<DeleteAccount>,
) -> ApiResult<impl IntoResponse> {
    reauthenticate(
        &state,
        &user,
        &client,
        request.auth_key.0,
        request.totp_code.as_deref(),
    )
    .await?;
    // The second factors go first, whatever the flag says (a pending TOTP setup has none):
    // an account deleted while its factors stayed behind would hand them to whoever
    // registers the name next. While the store cannot be reached, the deletion waits (503).
    state.factors.delete_user(&user.username).await?;
    let rooms_before = users::room_ids(&state.pool, &user.username).await?;
    let (pool, membership, username) = (
        state.pool.clone(),
        state.membership.clone(),
        user.username.clone(),
    );
    let signed_out = state
        .membership
        .apply_change(rooms_before, async move {
            let (signed_out, room_ids) = users::delete_account(&pool, &username).await?;
            // Also a room joined since the rooms were read.
            membership.invalidate(room_ids);
            Ok(signed_out)
        })
        .await?;
    state.hub.close_sessions(&user.username, &signed_out);
    tracing::info!(username = %user.username, "account deleted");
    Ok((StatusCode::NO_CONTENT, [session::clearing_cookie(&state)]))
}
