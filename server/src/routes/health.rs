//! `GET /healthz`: a liveness probe that answers `ok`.

use axum::routing::get;
use axum::Router;

use crate::AppState;

/// `GET /healthz` -> 200 `ok` (text/plain).
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
