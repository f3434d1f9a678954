//! The one error type of the API and its JSON responses.
//!
//! Every error a client sees is `{"code": "...", "error": "..."}` ([`common::api::ErrorBody`])
//! with a 4xx or 5xx status, a stable [`ErrorCode`] and a lowercase message without a final
//! period; a 429 also carries `"retry_after_s"` and a `Retry-After` header. Internal errors
//! (database, task, hashing) become a generic 500
//! `{"code": "internal", "error": "internal error"}`; their cause chain is logged once, when
//! the response is built.

use std::error::Error as _;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use common::api::ErrorBody;
pub use common::api::ErrorCode;

use crate::password::PasswordError;
use crate::throttle::Throttled;

/// Result of a handler or a step of one.
pub type ApiResult<T> = Result<T, ApiError>;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or fails a check.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session cookie.
    #[error("not logged in")]
    NotLoggedIn,
    /// 401: wrong auth key or unknown username; the two are indistinguishable on purpose.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// 401: a logged-in user re-authenticating sent the wrong auth key.
    #[error("invalid password")]
    InvalidPassword,
    /// 401: a wrong, reused or missing TOTP or recovery code.
    #[error("invalid code")]
    InvalidCode,
    /// 401: the login challenge is unknown, expired or out of attempts.
    #[error("login expired, start again")]
    LoginExpired,
    /// 403: the account's trusted networks do not include the client's address.
    #[error("login from this network is not allowed for this account")]
    NetworkRefused,
    /// 403: the caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource, or one the caller may not know about.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state (duplicate, stale epoch or seq).
    #[error("{0}")]
    Conflict(String),
    /// A refusal with a particular code (its status is the code's): a stale epoch, a taken
    /// username, an expired invite and the like.
    #[error("{message}")]
    Refused {
        /// What went wrong, for machines.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
    /// 413: the request body is larger than [`crate::MAX_BODY_BYTES`].
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 413: an attachment over the room's limit or the uploader's quota, or a chunk over
    /// the largest size; the body carries `limit_bytes`.
    #[error("{message}")]
    TooLarge {
        /// What was too large, in words.
        message: String,
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// 416: a `Range` outside the `size` bytes of the resource; answered with
    /// `Content-Range: bytes */size`.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// The resource's size in bytes.
        size: u64,
    },
    /// 415: a JSON body without `Content-Type: application/json`.
    #[error("expected content-type application/json")]
    UnsupportedMediaType,
    /// 422: well-formed JSON of the wrong shape (wrong types, bad base64, missing fields).
    #[error("{0}")]
    Unprocessable(String),
    /// 429: the caller posted `limit` messages in the last minute; a retry may succeed after
    /// `retry_after_s` seconds (at least 1), also sent as `Retry-After`.
    #[error("rate limit: {limit} messages per minute")]
    RateLimited {
        /// The room's messages per minute.
        limit: u32,
        /// Whole seconds until the oldest counted message leaves the one-minute window.
        retry_after_s: u64,
    },
    /// 429: too many login attempts for this username or from this address; a retry may
    /// succeed after `retry_after_s` seconds (at least 1), also sent as `Retry-After`.
    #[error("too many attempts, try again later")]
    TooManyAttempts {
        /// Whole seconds until the oldest counted attempt leaves the window.
        retry_after_s: u64,
    },
    /// 503: the server cannot take the request now (its message queue is full, or a batch
    /// of messages failed); the message says so, and the client may try again.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 503: second factors cannot be checked now (a login that needs one fails closed).
    #[error("two-factor authentication is unavailable right now, try again later")]
    SecondFactorsUnavailable,
    /// 500: the database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// 500: password hashing failed.
    #[error("password hashing failed")]
    Password(#[from] PasswordError),
    /// 500: a blocking task panicked or was cancelled.
    #[error("background task failed")]
    Task(#[from] tokio::task::JoinError),
    /// 500: a value read back from the database is not what was written.
    #[error("corrupt stored data: {0}")]
    CorruptData(String),
    /// 500: the attachment store failed.
    #[error("attachment store failed")]
    Blob(#[from] crate::blobs::BlobError),
}

impl From<Throttled> for ApiError {
    fn from(throttled: Throttled) -> Self {
        Self::TooManyAttempts {
            retry_after_s: throttled.retry_after_s,
        }
    }
}

impl From<mfa::MfaError> for ApiError {
    /// A wrong code stays 401 `invalid code`, a conflict 409 and a bad request 400 with the
    /// store's message; a store that cannot be reached, or does not know an account it
    /// should, is 503 [`ApiError::SecondFactorsUnavailable`] (the request fails closed);
    /// corrupt data and database errors are 500.
    fn from(error: mfa::MfaError) -> Self {
        match error {
            mfa::MfaError::InvalidCode => Self::InvalidCode,
            mfa::MfaError::Conflict(message) => Self::Conflict(message),
            mfa::MfaError::BadRequest(message) => Self::BadRequest(message),
            mfa::MfaError::Unavailable(_) => Self::SecondFactorsUnavailable,
            mfa::MfaError::UnknownUser => {
                tracing::error!(
                    "the second-factor store does not know an account whose flag says it has \
                     a second factor: is it the wrong, an emptied or a restored database? \
                     Logins of that account fail until it is fixed (or, once checked, \
                     users.second_factor is cleared)"
                );
                Self::SecondFactorsUnavailable
            }
            mfa::MfaError::Corrupt(message) => Self::CorruptData(message),
            mfa::MfaError::Database(error) => Self::Database(error),
        }
    }
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// A 403 with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// A 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// A 409 with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// A refusal with `code` (and its status) and `message`.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// A 400 [`ErrorCode::MalformedParameter`] with `message`: a path parameter or query
    /// that does not parse.
    pub fn malformed_parameter(message: impl Into<String>) -> Self {
        Self::refused(ErrorCode::MalformedParameter, message)
    }

    /// The machine-readable code this error is answered with; its status is
    /// [`ApiError::status`].
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::NotLoggedIn => ErrorCode::NotLoggedIn,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::InvalidPassword => ErrorCode::InvalidPassword,
            Self::InvalidCode => ErrorCode::InvalidCode,
            Self::LoginExpired => ErrorCode::LoginExpired,
            Self::NetworkRefused => ErrorCode::NetworkRefused,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Refused { code, .. } => *code,
            Self::PayloadTooLarge | Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::Unprocessable(_) => ErrorCode::InvalidBody,
            Self::RateLimited { .. } | Self::TooManyAttempts { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::SecondFactorsUnavailable => ErrorCode::SecondFactorsUnavailable,
            Self::Database(_)
            | Self::Password(_)
            | Self::Task(_)
            | Self::CorruptData(_)
            | Self::Blob(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused { code, .. } => {
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotLoggedIn
            | Self::InvalidCredentials
            | Self::InvalidPassword
            | Self::InvalidCode
            | Self::LoginExpired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NetworkRefused => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge | Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::TooManyAttempts { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable(_) | Self::SecondFactorsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Database(_)
            | Self::Password(_)
            | Self::Task(_)
            | Self::CorruptData(_)
            | Self::Blob(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Writes an error and its sources as `error: source: source`.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = if code == ErrorCode::Internal {
            tracing::error!(error = %cause_chain(&self), "request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let retry_after_s = match self {
            Self::RateLimited { retry_after_s, .. } | Self::TooManyAttempts { retry_after_s } => {
                Some(retry_after_s)
            }
            _ => None,
        };
        let limit_bytes = match self {
            Self::TooLarge { limit_bytes, .. } => Some(limit_bytes),
            _ => None,
        };
        let body = Json(ErrorBody {
            code,
            error: message,
            retry_after_s,
            limit_bytes,
        });
        if let Self::RangeNotSatisfiable { size } = self {
            return (
                status,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                body,
            )
                .into_response();
        }
        match retry_after_s {
            Some(seconds) => {
                (status, [(header::RETRY_AFTER, seconds.to_string())], body).into_response()
            }
            None => (status, body).into_response(),
        }
    }
}

impl ApiError {
    /// A WebAuthn object in a request (`field`, carried as JSON text) that is not the
    /// webauthn-rs type expected: 422 `invalid_body`, as the JSON extractor answers any other
    /// body of the wrong shape.
    pub fn webauthn_shape(field: &str, error: &serde_json::Error) -> Self {
        Self::Unprocessable(format!("invalid request body: {field}: {error}"))
    }

    /// webauthn-rs' options did not serialize (never seen: they are plain data): 500.
    pub fn webauthn_encoding(error: serde_json::Error) -> Self {
        Self::CorruptData(format!("webauthn options do not serialize: {error}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // The source of a data or syntax error is serde's message with the field path and
        // position, e.g. "auth_key: invalid base64 at line 1 column 20".
        let detail = rejection
            .source()
            .map(ToString::to_string)
            .unwrap_or_default();
        match rejection {
            JsonRejection::JsonDataError(_) => {
                Self::Unprocessable(format!("invalid request body: {detail}"))
            }
            JsonRejection::JsonSyntaxError(_) => Self::refused(
                ErrorCode::MalformedJson,
                format!("request body is not valid json: {detail}"),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::BytesRejection(bytes)
                if bytes.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::PayloadTooLarge
            }
            _ => Self::bad_request("cannot read request body"),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let detail = rejection
            .source()
            .map(ToString::to_string)
            .unwrap_or_default();
        Self::malformed_parameter(format!("invalid query string: {detail}"))
    }
}

/// The answer to an unknown path under `/api`: a JSON 404 rather than the web client.
pub async fn api_not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Gives every error response of the API a JSON body: responses that axum or tower-http
/// produce themselves (405 method not allowed, 408 timeout, a path that does not decode)
/// come with an empty or plain-text body, which this replaces with
/// `{"code": "<code of the status>", "error": "<reason phrase>"}`.
pub async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_error || is_json {
        return response;
    }
    let reason = status
        .canonical_reason()
        .unwrap_or("request failed")
        .to_lowercase();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = Json(ErrorBody {
        code: ErrorCode::for_status(status.as_u16()),
        error: reason,
        retry_after_s: None,
        limit_bytes: None,
    })
    .into_response();
    let (body_parts, body) = body.into_parts();
    parts.headers.extend(body_parts.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::to_bytes;

    use super::*;

    async fn body_of(response: Response) -> (StatusCode, ErrorBody) {
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1024).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let error = ApiError::Database(sqlx::Error::RowNotFound);
        let (status, body) = body_of(error.into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.error, "internal error");
        assert_eq!(body.code, ErrorCode::Internal);
    }

    #[tokio::test]
    async fn client_errors_carry_their_message() {
        let (status, body) = body_of(ApiError::conflict("stale epoch").into_response()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body.error, "stale epoch");
        assert_eq!(body.code, ErrorCode::Conflict);
        let refusal = ApiError::refused(ErrorCode::StaleEpoch, "stale epoch").into_response();
        let (status, body) = body_of(refusal).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body.code, ErrorCode::StaleEpoch);
    }

    #[tokio::test]
    async fn a_rate_limit_names_the_wait_in_the_header_and_the_body() {
        let error = ApiError::RateLimited {
            limit: 2,
            retry_after_s: 17,
        };
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "17");
        let (status, body) = body_of(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body.error, "rate limit: 2 messages per minute");
        assert_eq!(body.retry_after_s, Some(17));
    }

    #[tokio::test]
    async fn bodiless_error_responses_get_a_json_body() {
        let timeout = StatusCode::REQUEST_TIMEOUT.into_response();
        let (status, body) = body_of(json_error_body(timeout).await).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body.error, "request timeout");
        assert_eq!(body.code, ErrorCode::Timeout);
        let success = json_error_body("ok".into_response()).await;
        assert_eq!(success.status(), StatusCode::OK);
    }

    #[test]
    fn the_cause_chain_names_every_source() {
        let error = ApiError::Password(PasswordError::Argon2(
            argon2::password_hash::Error::Password,
        ));
        assert!(cause_chain(&error).starts_with("password hashing failed: argon2 error"));
    }
}
