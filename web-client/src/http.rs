//! JSON over HTTP to the chat server with gloo-net; the session travels in an `HttpOnly`
//! cookie that the browser attaches to same-origin requests.

use common::api::ErrorBody;
use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
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
    let message = match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => format!("server answered {status}"),
    };
    Err(HttpError::Server { status, message })
}

async fn decode<R: DeserializeOwned>(response: Response) -> Result<R, HttpError> {
    response
        .json::<R>()
        .await
        .map_err(|error| HttpError::Decode(error.to_string()))
}

/// `GET path` and decodes the JSON answer.
pub async fn get<R: DeserializeOwned>(path: &str) -> Result<R, HttpError> {
    let response = Request::get(path)
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    decode(check(response).await?).await
}

async fn send_json<T: Serialize>(
    method: &str,
    path: &str,
    body: &T,
) -> Result<Response, HttpError> {
    let builder = match method {
        "PUT" => Request::put(path),
        _ => Request::post(path),
    };
    let request = builder
        .json(body)
        .map_err(|error| HttpError::Decode(error.to_string()))?;
    let response = request
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    check(response).await
}

/// `POST path` with a JSON body and decodes the JSON answer.
pub async fn post<T: Serialize, R: DeserializeOwned>(path: &str, body: &T) -> Result<R, HttpError> {
    decode(send_json("POST", path, body).await?).await
}

/// `POST path` with a JSON body, ignoring the answer's body.
pub async fn post_no_content<T: Serialize>(path: &str, body: &T) -> Result<(), HttpError> {
    send_json("POST", path, body).await.map(|_| ())
}

/// `PUT path` with a JSON body, ignoring the answer's body.
pub async fn put_no_content<T: Serialize>(path: &str, body: &T) -> Result<(), HttpError> {
    send_json("PUT", path, body).await.map(|_| ())
}

/// `PUT path` with raw bytes (`application/octet-stream`), ignoring the answer's body.
pub async fn put_bytes(path: &str, bytes: &[u8]) -> Result<(), HttpError> {
    let request = Request::put(path)
        .header("Content-Type", "application/octet-stream")
        .body(js_sys::Uint8Array::from(bytes))
        .map_err(|error| HttpError::Decode(error.to_string()))?;
    let response = request
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    check(response).await.map(|_| ())
}

/// `GET path` for the bytes `first..=last` (an HTTP range), refusing an answer of another
/// length.
pub async fn get_range(path: &str, first: u64, last: u64) -> Result<Vec<u8>, HttpError> {
    let response = Request::get(path)
        .header("Range", &format!("bytes={first}-{last}"))
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    let bytes = check(response)
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

/// `DELETE path`, ignoring the answer's body.
pub async fn delete(path: &str) -> Result<(), HttpError> {
    let response = Request::delete(path)
        .send()
        .await
        .map_err(|error| HttpError::Network(error.to_string()))?;
    check(response).await.map(|_| ())
}
