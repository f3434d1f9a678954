//! Same-origin checks on requests a browser may send from another site's page.
//!
//! The session cookie is `SameSite=Strict`, so a browser does not attach it to requests that
//! another site starts. This check is the second wall: a state-changing request (any method
//! but `GET`, `HEAD` and `OPTIONS`) and the WebSocket handshake must not carry an `Origin`
//! that names another host than the one the request was sent to. Body-less `POST`s
//! (`/api/logout`, `/api/sessions/revoke-others`, `/api/totp/setup`) are "simple requests"
//! that browsers send cross-site without a CORS preflight, so without this check only the
//! cookie attribute would stop them. Requests without `Origin` (command-line clients,
//! tests) pass: browsers always send it on such requests (Fetch standard, "append a request
//! `Origin` header").

use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// Refuses (403 with `refusal`) a request whose `Origin` header is not
/// `scheme://HOST` for the host it was sent to (the `Host` header, or the URI's authority
/// under HTTP/2). Hosts compare without regard to ASCII case; an `Origin` of `null` or one
/// without a scheme is refused.
///
/// # Errors
/// 403 [`ErrorCode::OriginRefused`] with `refusal` as its message.
pub fn check(headers: &HeaderMap, uri: &Uri, refusal: &'static str) -> ApiResult<()> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let refuse = || ApiError::refused(ErrorCode::OriginRefused, refusal);
    let origin = origin.to_str().map_err(|_| refuse())?;
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .ok_or_else(refuse)?;
    let host = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
        .ok_or_else(refuse)?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// Middleware: [`check`]s every request whose method is not `GET`, `HEAD` or `OPTIONS`,
/// answering 403 `cross-origin request refused` before the handler runs.
pub async fn require_same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        if let Err(refusal) = check(
            request.headers(),
            request.uri(),
            "cross-origin request refused",
        ) {
            return refusal.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    fn checked(origin: Option<&'static str>, host: &'static str) -> ApiResult<()> {
        check(
            &headers(origin, host),
            &Uri::from_static("/api/logout"),
            "refused",
        )
    }

    #[test]
    fn same_origin_and_no_origin_pass() {
        assert!(checked(None, "127.0.0.1:8080").is_ok());
        assert!(checked(Some("http://127.0.0.1:8080"), "127.0.0.1:8080").is_ok());
        assert!(checked(Some("https://Chat.Example"), "chat.example").is_ok());
    }

    #[test]
    fn other_origins_are_refused() {
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:9999",
            "null",
            "127.0.0.1:8080",
        ] {
            let result = checked(Some(origin), "127.0.0.1:8080");
            assert!(
                matches!(result, Err(ref error) if error.code() == ErrorCode::OriginRefused),
                "{origin} passed"
            );
        }
    }

    #[test]
    fn the_authority_stands_in_for_a_missing_host() {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://chat.example"));
        let uri = Uri::from_static("https://chat.example/api/logout");
        assert!(check(&headers, &uri, "refused").is_ok());
        let other = Uri::from_static("https://other.example/api/logout");
        assert!(check(&headers, &other, "refused").is_err());
        assert!(check(&headers, &Uri::from_static("/api/logout"), "refused").is_err());
    }
}
