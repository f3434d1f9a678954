//! `/api/passkeys/*`: registering and removing passkeys (WebAuthn) as a second login factor,
//! through the second-factor store ([`crate::factors`]). Logging in with one is
//! `POST /api/login/passkey` ([`crate::routes::login`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{PasskeyBegin, PasskeyFinish, PasskeyRemove};
use common::api::{
    PasskeyChangeRequest, PasskeyCreationOptions, PasskeyFinishRequest, PasskeyLoginRequest,
    WebAuthnJson,
};
use webauthn_rs_proto::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{EndpointRouter, Reply, Request};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::factors;
use crate::routes::account::reauthenticate;
use crate::session::AuthUser;
use crate::AppState;

/// Routes of this module (all need a session, else 401; 503 while the second-factor store
/// cannot be reached):
///
/// - `POST /api/passkeys/begin` [`PasskeyChangeRequest`] (re-authentication) -> 200 the
///   options for `navigator.credentials.create()` (webauthn-rs' `CreationChallengeResponse`:
///   user verification required, the account's passkeys excluded), valid 5 minutes; 401
///   `invalid password` or `invalid code`, 409 beyond 16 passkeys.
/// - `POST /api/passkeys/finish` [`PasskeyFinishRequest`] -> 200 [`PasskeyFinishResponse`]
///   (recovery codes when this is the account's first second factor); 401 `invalid code` for
///   a credential that does not answer the registration, 422 `invalid_body` for one that is
///   not a `RegisterPublicKeyCredential`, 400 for a name that is empty or over 64
///   characters, 409 `no passkey registration in progress` or `this passkey is registered
///   already`.
/// - `POST /api/passkeys/{id}/remove` [`PasskeyChangeRequest`] -> 204; 401 as for begin,
///   409 `no such passkey`.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(PasskeyBegin, begin)
        .endpoint(PasskeyFinish, finish)
        .endpoint(PasskeyRemove, remove)
}

/// Re-authenticates the caller with the body of a passkey change.
async fn reauthenticate_for(
    state: &AppState,
    user: &AuthUser,
    client: &ClientInfo,
    request: &PasskeyChangeRequest,
) -> ApiResult<()> {
    reauthenticate(
        state,
        user,
        client,
        request.auth_key.0,
        request.totp_code.as_deref(),
    )
    .await
}

async fn begin(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    ApiJson(request): Request<PasskeyBegin>,
) -> ApiResult<Reply<PasskeyBegin>> {
    reauthenticate_for(&state, &user, &client, &request).await?;
    let options = state.factors.passkey_register_begin(&user.username).await?;
    let options = WebAuthnJson::encode(&options).map_err(ApiError::webauthn_encoding)?;
    Ok(Json(PasskeyCreationOptions(options)))
}

async fn finish(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): Request<PasskeyFinish>,
) -> ApiResult<Reply<PasskeyFinish>> {
    // The shape is checked here, as the JSON extractor checks every other body; whether it
    // answers the ceremony is the store's to say. The store gets the credential as read,
    // without fields webauthn-rs does not know.
    let credential: RegisterPublicKeyCredential = credential(&request.credential)?;
    let request = PasskeyFinishRequest {
        name: request.name,
        credential: WebAuthnJson::encode(&credential).map_err(ApiError::webauthn_encoding)?,
    };
    let registered = factors::enabling(
        &state,
        &user.username,
        state
            .factors
            .passkey_register_finish(&user.username, &request),
    )
    .await?;
    tracing::info!(username = %user.username, "passkey registered");
    Ok(Json(registered))
}

async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
    ApiJson(request): Request<PasskeyRemove>,
) -> ApiResult<StatusCode> {
    reauthenticate_for(&state, &user, &client, &request).await?;
    state.factors.passkey_remove(&user.username, &id).await?;
    factors::clear_flag_if_none_left(&state, &user.username).await?;
    tracing::info!(username = %user.username, "passkey removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A request's `credential` read as webauthn-rs' `T`: `PublicKeyCredential` for a passkey
/// login, `RegisterPublicKeyCredential` for a registration.
///
/// # Errors
/// 422 `invalid_body` naming the field, as the JSON extractor answers any other body of the
/// wrong shape.
pub(crate) fn credential<T: serde::de::DeserializeOwned>(json: &WebAuthnJson) -> ApiResult<T> {
    json.decode()
        .map_err(|error| ApiError::webauthn_shape("credential", &error))
}

/// The checks of the handlers above that go beyond the JSON extractor, for any request body:
/// the WebAuthn credentials' shapes. Used by the request-decoding fuzz target
/// ([`crate::fuzzing`]), so that it refuses what the handlers refuse.
///
/// # Errors
/// As [`credential`].
pub(crate) fn check_body(body: &dyn std::any::Any) -> ApiResult<()> {
    if let Some(request) = body.downcast_ref::<PasskeyLoginRequest>() {
        credential::<PublicKeyCredential>(&request.credential)?;
    } else if let Some(request) = body.downcast_ref::<PasskeyFinishRequest>() {
        credential::<RegisterPublicKeyCredential>(&request.credential)?;
    }
    Ok(())
}
