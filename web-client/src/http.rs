//! JSON over HTTP to the chat server with gloo-net, one call per endpoint definition of
//! [`common::api::endpoints`]; the session travels in an `HttpOnly` cookie that the browser
//! attaches to same-origin requests.

use common::api::endpoints::{
    AttachmentParams, BodyKind, ChunkParams, DownloadAttachment, Endpoint, Method, QueryParams,
    UploadChunk,
};
use common::api::{ErrorBody, ErrorCode};
use gloo_net::http::{Request, RequestBuilder, Response};
use thiserror::Error;

/// A request to the server failed.
#[derive(Debug, Clone, Error)]
pub enum HttpError {
    /// The request did not reach the server or the answer was not read.
    #[error("network error: {0}")]
    Network(String),
    /// The server answered with an error status and message.
    #[error("{message}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// The server's `code` ([`ErrorCode::Unknown`] for an answer without one).
        code: ErrorCode,
        /// The server's `error` text.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl HttpError {
    /// Whether the server said the session is missing or expired.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Server { status: 401, .. })
    }
}

async fn check(response: Response) -> Result<Response, HttpError> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let (code, message) = match response.json::<ErrorBody>().await {
        Ok(body) => (body.code, body.error),
        Err(_) => (ErrorCode::Unknown, format!("server answered {status}")),
    };
    Err(HttpError::Server {
        status,
        code,
        message,
    })
}

async fn send(request: Request) -> Result<Response, HttpError> {
    let response = request
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    check(response).await
}

/// The request builder of endpoint `E` for `path`.
fn builder<E: Endpoint>(path: &str) -> RequestBuilder {
    match E::INFO.method {
        Method::Get => Request::get(path),
        Method::Post => Request::post(path),
        Method::Put => Request::put(path),
        Method::Delete => Request::delete(path),
    }
}

/// Calls endpoint `E` with its path parameters and request body, and decodes its answer
/// (`()` for an endpoint answering without a body).
///
/// # Errors
/// [`HttpError::Network`] when the server is not reached, [`HttpError::Server`] for an error
/// status, [`HttpError::Decode`] for an answer that is not `E::Response`.
pub async fn call<E: Endpoint>(
    params: &E::Params,
    body: &E::Request,
) -> Result<E::Response, HttpError> {
    call_with_query::<E>(params, &E::Query::default(), body).await
}

/// [`call`] with a query.
///
/// # Errors
/// As [`call`].
pub async fn call_with_query<E: Endpoint>(
    params: &E::Params,
    query: &E::Query,
    body: &E::Request,
) -> Result<E::Response, HttpError> {
    let path = format!("{}{}", E::path(params), query.to_query());
    let request = match E::INFO.request_body {
        BodyKind::Json => builder::<E>(&path)
            .json(body)
            .map_err(|error| HttpError::Decode(error.to_string()))?,
        _ => builder::<E>(&path)
            .build()
            .map_err(|error| HttpError::Decode(error.to_string()))?,
    };
    let response = send(request).await?;
    if E::INFO.response_body == BodyKind::Json {
        response
            .json::<E::Response>()
            .await
            .map_err(|error| HttpError::Decode(error.to_string()))
    } else {
        // `()`, the type of every answer without a JSON body that this client calls.
        serde_json::from_value(serde_json::Value::Null)
            .map_err(|error| HttpError::Decode(error.to_string()))
    }
}

/// `PUT` one chunk of an attachment ([`UploadChunk`]) as `application/octet-stream`.
///
/// # Errors
/// As [`call`].
pub async fn put_chunk(params: &ChunkParams, sealed: &[u8]) -> Result<(), HttpError> {
    let request = builder::<UploadChunk>(&UploadChunk::path(params))
        .header("Content-Type", "application/octet-stream")
        .body(js_sys::Uint8Array::from(sealed))
        .map_err(|error| HttpError::Decode(error.to_string()))?;
    send(request).await.map(|_| ())
}

/// The bytes `first..=last` of an attachment's ciphertext ([`DownloadAttachment`], an HTTP
/// range), refusing an answer of another length.
///
/// # Errors
/// As [`call`].
pub async fn get_range(
    params: &AttachmentParams,
    first: u64,
    last: u64,
) -> Result<Vec<u8>, HttpError> {
    let request = builder::<DownloadAttachment>(&DownloadAttachment::path(params))
        .header("Range", &format!("bytes={first}-{last}"))
        .build()
        .map_err(|error| HttpError::Decode(error.to_string()))?;
    let bytes = send(request)
        .await?
        .binary()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    if bytes.len() as u64 != last - first + 1 {
        return Err(HttpError::Decode(format!(
            "asked for {} bytes, got {}",
            last - first + 1,
            bytes.len()
        )));
    }
    Ok(bytes)
}
