//! `GET /api/openapi.json`: the OpenAPI 3.1 description of this API, generated from the
//! endpoint definitions ([`common::api::openapi::document_json`]), byte for byte the same as
//! `docs/openapi.json`.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;
use common::api::endpoints::OpenApi;

use super::EndpointRouter;
use crate::AppState;

/// The description, serialized once; each answer shares these bytes.
static DOCUMENT: LazyLock<Bytes> =
    LazyLock::new(|| Bytes::from(common::api::openapi::document_json()));

/// `GET /api/openapi.json` -> 200 the description (public: it holds nothing of anyone's).
pub fn router() -> Router<AppState> {
    Router::new().endpoint(OpenApi, description)
}

async fn description() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.clone(),
    )
}
