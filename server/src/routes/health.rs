//! `GET /healthz`: whether this instance can serve, for load balancers and orchestrators.

use axum::extract::State;
use axum::Router;
use common::api::endpoints::Health;

use super::EndpointRouter;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// `GET /healthz` -> 200 `ok` (text/plain) when the database answers, 503 `unavailable`
/// `database unavailable` (JSON, as every error) when it does not (so a load balancer sends requests to another instance).
pub fn router() -> Router<AppState> {
    Router::new().endpoint(Health, health)
}

async fn health(State(state): State<AppState>) -> ApiResult<&'static str> {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => Ok("ok"),
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            Err(ApiError::Unavailable("database unavailable"))
        }
    }
}
