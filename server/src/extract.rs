//! Request extractors whose failures are [`ApiError`]s, so every refusal is a JSON body.

use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use common::membership::RoomId;

use crate::error::ApiError;

/// A JSON request body. Malformed JSON is a 400, a missing `Content-Type` a 415, a body over
/// [`crate::MAX_BODY_BYTES`] a 413, and JSON of the wrong shape (wrong types, bad base64,
/// missing or unknown fields) a 422, each with `{"error": "..."}`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A query string; one that does not parse is a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The `{room_id}` path parameter: 64 hex digits, else a 400 `malformed room id`.
#[derive(Debug, Clone, Copy)]
pub struct RoomPath(pub RoomId);

impl<S: Send + Sync> FromRequestParts<S> for RoomPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let malformed = || ApiError::bad_request("malformed room id");
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| malformed())?;
        RoomId::from_hex(&text).map(Self).map_err(|_| malformed())
    }
}
