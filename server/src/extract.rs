//! Request extractors whose failures are [`ApiError`]s, so every refusal is a JSON body.

use std::collections::HashMap;

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

/// The `{room_id}` path parameter: 64 hex digits, else a 400 `malformed room id`. Works on
/// routes with further parameters too.
#[derive(Debug, Clone, Copy)]
pub struct RoomPath(pub RoomId);

/// The path parameters of a route, by name.
async fn path_parameters<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Option<HashMap<String, String>> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .ok()
        .map(|Path(parameters)| parameters)
}

fn parse_room_id(parameters: Option<&HashMap<String, String>>) -> Result<RoomId, ApiError> {
    parameters
        .and_then(|parameters| parameters.get("room_id"))
        .and_then(|text| RoomId::from_hex(text).ok())
        .ok_or_else(|| ApiError::malformed_parameter("malformed room id"))
}

impl<S: Send + Sync> FromRequestParts<S> for RoomPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let parameters = path_parameters(parts, state).await;
        parse_room_id(parameters.as_ref()).map(Self)
    }
}

/// The `{room_id}` and `{username}` path parameters of a route about one user of a room: a
/// 400 `malformed room id` as for [`RoomPath`]; the username is passed on unchecked (an
/// invalid name simply matches nothing).
#[derive(Debug, Clone)]
pub struct RoomUserPath {
    /// The room.
    pub room_id: RoomId,
    /// The user, as written in the path.
    pub username: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RoomUserPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut parameters = path_parameters(parts, state).await;
        let room_id = parse_room_id(parameters.as_ref())?;
        let username = parameters
            .as_mut()
            .and_then(|parameters| parameters.remove("username"))
            .ok_or_else(|| ApiError::bad_request("missing username"))?;
        Ok(Self { room_id, username })
    }
}
