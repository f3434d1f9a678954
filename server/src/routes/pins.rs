//! `/api/me/pins`: the caller's trust-on-first-use pins, sealed by the client
//! ([`common::trust::seal_pins`]) so every browser of the user shares them; the server
//! stores bytes it cannot read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use common::api::PinsBody;
use common::wire::Base64;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::session::AuthUser;
use crate::store::{self, pins};
use crate::AppState;

/// Routes of this module (all need a session, else 401):
///
/// - `GET /api/me/pins` -> 200 [`PinsBody`]; `sealed` is `None` before the first upload.
/// - `PUT /api/me/pins` [`PinsBody`] -> 204, replacing the stored pins; 400 when `sealed`
///   is missing or empty, 413 for a body over [`crate::MAX_BODY_BYTES`] (256 KiB).
pub fn router() -> Router<AppState> {
    Router::new().route("/api/me/pins", get(get_pins).put(put_pins))
}

async fn get_pins(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<PinsBody>> {
    let sealed = pins::find(&state.pool, &user.username).await?;
    Ok(Json(PinsBody {
        sealed: sealed.map(Base64),
    }))
}

async fn put_pins(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): ApiJson<PinsBody>,
) -> ApiResult<StatusCode> {
    let sealed = request
        .sealed
        .filter(|sealed| !sealed.0.is_empty())
        .ok_or_else(|| ApiError::bad_request("sealed pins are required"))?;
    pins::upsert(&state.pool, &user.username, &sealed.0, store::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
