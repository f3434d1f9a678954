//! `GET /api/ws`: the WebSocket over which the server pushes [`common::api::ServerEvent`]s.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Router;
use common::api::endpoints::Connect;
use futures_util::StreamExt;

use super::EndpointRouter;
use crate::error::{ApiError, ApiResult};
use crate::hub::{serve_connection, PING_INTERVAL};
use crate::session::AuthUser;
use crate::AppState;

/// Largest frame or message a client may send, in bytes (64 KiB).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;
/// The read buffer of a connection, allocated up front: clients only send control frames,
/// so 4 KiB rather than tungstenite's 128 KiB (which made an idle connection cost 140 KiB).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes of outgoing frames gathered before they are written (the hub's writer flushes what
/// it gathered when no more events wait): events that arrive together go out in a few
/// writes of up to about this size rather than one write each, and the buffer an active
/// connection keeps stays small.
pub const WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /api/ws` -> 101 and a WebSocket of JSON [`common::api::ServerEvent`] text frames;
/// 403 for a handshake from another origin, 401 without a session, 400 for a request that
/// is not a WebSocket upgrade.
pub fn router() -> Router<AppState> {
    Router::new().endpoint(Connect, connect)
}

async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    user: Result<AuthUser, ApiError>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Browsers send cookies on cross-site WebSocket handshakes when `SameSite` allows it and
    // do not apply CORS to them: this check keeps another site's script from opening a
    // socket as the user.
    crate::origin::check(&headers, &uri, "cross-origin websocket refused")?;
    let user = user?;
    let upgrade =
        upgrade.map_err(|_| ApiError::bad_request("expected a websocket upgrade request"))?;
    // Register before answering the handshake, so no event sent after the client sees the
    // socket open is missed; the events wait in the channel until the socket is served.
    let (registration, events) = state.hub.register(&user.username, &user.session_id);
    // The session may have ended between the check above and the registration (revoked
    // through another instance, say), and its close would then have missed this socket:
    // look again now that the socket is registered.
    let still_valid = crate::store::sessions::find_and_touch(
        &state.pool,
        &user.token_hash,
        crate::store::now_ms(),
        crate::session::duration_ms(state.config.session_idle()),
    )
    .await?
    .is_some();
    if !still_valid {
        return Err(ApiError::NotLoggedIn);
    }
    tracing::debug!(username = %user.username, "websocket connected");
    Ok(upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            serve_connection(sink, stream, registration, events, PING_INTERVAL)
        }))
}
