//! `/api/me/state`: the caller's durable client state (pins, accepted log heads, KDF record),
//! sealed by the client (docs/PROTOCOL.md section 11) so every browser of the user starts
//! from what the others have seen; the server stores bytes it cannot read and refuses an
//! upload that does not raise the version.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use common::api::endpoints::{GetClientState, PutClientState};
use common::api::{ClientStateBody, ServerEvent};
use common::wire::Base64;

use super::{EndpointRouter, Reply, Request};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::session::AuthUser;
use crate::store::{self, client_states};
use crate::AppState;

/// Routes of this module (all need a session, else 401):
///
/// - `GET /api/me/state` -> 200 [`ClientStateBody`]; `version` 0 and no `sealed` before the
///   first upload.
/// - `PUT /api/me/state` [`PutClientStateRequest`] -> 204, replacing the stored state, and
///   [`ServerEvent::ClientStateChanged`] to every connection of the user; 400
///   when `sealed` is empty or `version` is not above `base_version`, 409 when the stored
///   version is not `base_version` (another browser saved meanwhile), 413 for a body over
///   [`crate::MAX_BODY_BYTES`] (256 KiB).
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(GetClientState, get_state)
        .endpoint(PutClientState, put_state)
}

async fn get_state(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Reply<GetClientState>> {
    let stored = client_states::find(&state.pool, &user.username).await?;
    Ok(Json(match stored {
        Some((version, sealed)) => ClientStateBody {
            version,
            sealed: Some(Base64(sealed)),
        },
        None => ClientStateBody {
            version: 0,
            sealed: None,
        },
    }))
}

async fn put_state(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): Request<PutClientState>,
) -> ApiResult<StatusCode> {
    if request.sealed.0.is_empty() {
        return Err(ApiError::bad_request("sealed client state is required"));
    }
    client_states::compare_and_store(
        &state.pool,
        &user.username,
        request.base_version,
        request.version,
        &request.sealed.0,
        store::now_ms(),
    )
    .await?;
    // The account's other browsers fetch it (they learn nothing the sealed blob does not
    // already say, and the server nothing it did not already see).
    state.hub.send_to_user(
        &user.username,
        &ServerEvent::ClientStateChanged {
            version: request.version,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}
