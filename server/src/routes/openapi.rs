//! `GET /api/openapi.json`: the OpenAPI 3.1 description of this API, generated from the
//! endpoint definitions ([`common::api::openapi::document`]), the same as
//! `docs/openapi.json`.

use std::sync::LazyLock;

use axum::{Json, Router};
use common::api::endpoints::OpenApi;
use common::api::OpenApiDocument;

use super::{EndpointRouter, Reply};
use crate::AppState;

/// The description, generated once.
static DOCUMENT: LazyLock<OpenApiDocument> = LazyLock::new(|| {
    OpenApiDocument(serde_json::to_value(common::api::openapi::document()).unwrap_or_default())
});

/// `GET /api/openapi.json` -> 200 the description (public: it holds nothing of anyone's).
pub fn router() -> Router<AppState> {
    Router::new().endpoint(OpenApi, description)
}

async fn description() -> Reply<OpenApi> {
    Json(DOCUMENT.clone())
}
