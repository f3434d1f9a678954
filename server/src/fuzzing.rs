//! The server's request decoding as a fuzz target: `fuzz/fuzz_targets/server_request.rs`
//! drives [`check_request`] with cargo-fuzz, and `server/tests/fuzz_corpus.rs` replays the
//! committed corpus through it on stable Rust.
//!
//! [`decoding_router`] routes every endpoint of [`common::api::endpoints`] to a handler that
//! runs the server's extractors for it (path parameters, query, JSON or octet body, `Range`)
//! with the same refusals as its real handler, under the same layers as the real API (body
//! limit, JSON error bodies), and answers 204 when all of them pass. No database is
//! involved, so each input costs microseconds.
//!
//! The first byte of an input picks the endpoint by its index in [`ENDPOINTS`], so a new
//! endpoint shifts what older corpus inputs reach; they stay valid inputs all the same.

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, HeaderValue, Method as HttpMethod, StatusCode, Uri};
use axum::Router;
use common::api::endpoints::{
    visit_endpoints, BodyKind, Endpoint, EndpointInfo, EndpointVisitor, Method, ParamKind,
    ENDPOINTS,
};
use common::api::{ErrorBody, ErrorCode};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, RoomPath};
use crate::routes::attachments::{parse_id, requested_range, MAX_CHUNK_BODY};
use crate::routes::EndpointRouter;
use crate::MAX_BODY_BYTES;

/// Runs the extractors of endpoint `E` on `request`, in the order its handler does.
async fn decode<E: Endpoint>(request: Request) -> Result<StatusCode, ApiError> {
    let (mut parts, body) = request.into_parts();
    let info = E::INFO;
    if info
        .params
        .iter()
        .any(|param| param.kind == ParamKind::RoomId)
    {
        RoomPath::from_request_parts(&mut parts, &()).await?;
    }
    let values = if info.params.is_empty() {
        Vec::new()
    } else {
        match Path::<Vec<(String, String)>>::from_request_parts(&mut parts, &()).await {
            Ok(Path(values)) => values,
            Err(rejection) => return Err(ApiError::malformed_parameter(rejection.body_text())),
        }
    };
    for (param, (_, value)) in info.params.iter().zip(&values) {
        match param.kind {
            ParamKind::AttachmentId => {
                parse_id(value)?;
            }
            ParamKind::Index => {
                value
                    .parse::<u32>()
                    .map_err(|_| ApiError::malformed_parameter("malformed chunk index"))?;
            }
            ParamKind::RoomId | ParamKind::Username | ParamKind::Opaque => {}
        }
    }
    // Only the endpoints with a query read one (the others ignore the query string).
    if !info.query.is_empty() {
        ApiQuery::<E::Query>::from_request_parts(&mut parts, &()).await?;
    }
    if info.response_body == BodyKind::Octets {
        // The size of a stored 100-byte attachment of one chunk.
        requested_range(&parts.headers, 116)?;
    }
    let request = Request::from_parts(parts, body);
    match info.request_body {
        BodyKind::Json => {
            let ApiJson(body) = ApiJson::<E::Request>::from_request(request, &()).await?;
            crate::routes::passkeys::check_body(&body)?;
        }
        BodyKind::Octets => {
            // As `upload_chunk` answers a body it cannot read.
            Bytes::from_request(request, &())
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
                        message: "chunk body is too large".into(),
                        limit_bytes: MAX_CHUNK_BODY as u64,
                    },
                    _ => ApiError::bad_request("cannot read the chunk"),
                })?;
        }
        BodyKind::Empty | BodyKind::Text => {}
    }
    Ok(StatusCode::NO_CONTENT)
}

struct Decoders(Router);

impl EndpointVisitor for Decoders {
    fn visit<E: Endpoint + Default + Send + Sync + 'static>(&mut self) {
        let router = std::mem::take(&mut self.0);
        self.0 = if E::INFO.request_body == BodyKind::Octets {
            router.endpoint(
                E::default(),
                axum::handler::Handler::layer(decode::<E>, DefaultBodyLimit::max(MAX_CHUNK_BODY)),
            )
        } else {
            router.endpoint(E::default(), decode::<E>)
        };
    }
}

/// Every endpoint's decoders behind the API's layers (see the module documentation).
pub fn decoding_router() -> Router {
    let mut decoders = Decoders(Router::new());
    visit_endpoints(&mut decoders);
    decoders
        .0
        .layer(axum::middleware::map_response(
            crate::error::json_error_body,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// A request built from fuzz input, and the endpoint it is for.
struct FuzzRequest {
    endpoint: &'static EndpointInfo,
    request: Request,
}

/// Reads fuzz input: byte 0 picks the endpoint, byte 1 holds flags (bit 0: send
/// `Content-Type: application/json`, bit 1: send the `Range` line), then text up to the first
/// zero byte, whose lines are the path parameters, the query and the `Range` value; the rest
/// is the body. `None` for input that cannot become a request (an empty path parameter, which
/// no route matches, or a header value with control characters).
fn fuzz_request(data: &[u8]) -> Option<FuzzRequest> {
    let [selector, flags, rest @ ..] = data else {
        return None;
    };
    let endpoint = &ENDPOINTS[usize::from(*selector) % ENDPOINTS.len()];
    let (text, body) = match rest.iter().position(|&byte| byte == 0) {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let mut lines = text.split('\n');
    let values: Vec<&str> = lines.by_ref().take(endpoint.params.len()).collect();
    if values.len() < endpoint.params.len() || values.iter().any(|value| value.is_empty()) {
        return None;
    }
    let query = lines.next().unwrap_or_default();
    let range = lines.next().unwrap_or_default();
    // Values go in as written (only characters a URI cannot hold are escaped), so the server's
    // own percent-decoding of path parameters, invalid escapes included, is fuzzed too.
    let raw: Vec<String> = values
        .iter()
        .map(|value| percent_encoding::utf8_percent_encode(value, RAW_SEGMENT).to_string())
        .collect();
    let mut uri = String::new();
    let mut rest = endpoint.path;
    for value in &raw {
        let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else {
            break;
        };
        uri.push_str(&rest[..open]);
        uri.push_str(value);
        rest = &rest[close + 1..];
    }
    uri.push_str(rest);
    if !query.is_empty() {
        uri.push('?');
        uri.extend(percent_encoding::utf8_percent_encode(query, QUERY));
    }
    let uri: Uri = uri.parse().ok()?;
    let method = match endpoint.method {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Delete => HttpMethod::DELETE,
    };
    let mut request = Request::builder().method(method).uri(uri);
    if flags & 1 == 1 {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if flags & 2 == 2 {
        request = request.header(header::RANGE, HeaderValue::from_str(range).ok()?);
    }
    let request = request.body(Body::from(body.to_vec())).ok()?;
    Some(FuzzRequest { endpoint, request })
}

/// Bytes escaped in a fuzzed path parameter: controls, space, non-ASCII and the delimiters
/// that would end the segment (`/`, `?`, `#`); `%` stays, so escapes reach the server raw.
const RAW_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'/')
    .add(b'?')
    .add(b'#');

/// Bytes percent-encoded in the fuzzed query: all but those that give it its structure
/// (`=`, `&`) and RFC 3986's unreserved characters.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'=')
    .remove(b'&')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Sends the request in `data` (see [`fuzz_request`]) through [`decoding_router`] and checks
/// the answer: 204 when every decoder passed, else an error body whose code has the answer's
/// status and is one the endpoint's definition lists.
///
/// # Panics
/// On an answer that breaks that contract, which is what the fuzzer looks for.
pub fn check_request(data: &[u8]) {
    let _ = answer(data);
}

/// The status and error code of the answer to `data`, after checking it as
/// [`check_request`] does; `None` for input that makes no request.
fn answer(data: &[u8]) -> Option<(u16, Option<ErrorCode>)> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static ROUTER: OnceLock<Router> = OnceLock::new();
    let FuzzRequest { endpoint, request } = fuzz_request(data)?;
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    });
    let router = ROUTER.get_or_init(decoding_router).clone();
    runtime.block_on(async move {
        let response = router.oneshot(request).await.expect("routers do not fail");
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Some((status.as_u16(), None));
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a readable body");
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            panic!(
                "{} answered {status} without an error body ({error}): {}",
                endpoint.id,
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(
            body.code.status(),
            status.as_u16(),
            "{}: code {} with status {status}",
            endpoint.id,
            body.code
        );
        assert!(
            endpoint.errors().contains(&body.code) || body.code == ErrorCode::MethodNotAllowed,
            "{} answered {status} {}, which its definition does not list ({})",
            endpoint.id,
            body.code,
            body.error
        );
        Some((status.as_u16(), Some(body.code)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input for the endpoint `id`: path parameter lines, query, `Range`, then the body.
    fn input(id: &str, flags: u8, lines: &[&str], body: &[u8]) -> Vec<u8> {
        let index = ENDPOINTS
            .iter()
            .position(|endpoint| endpoint.id == id)
            .and_then(|index| u8::try_from(index).ok())
            .unwrap_or(u8::MAX);
        let mut data = vec![index, flags];
        data.extend_from_slice(lines.join("\n").as_bytes());
        data.push(0);
        data.extend_from_slice(body);
        data
    }

    #[test]
    fn well_formed_requests_pass_every_decoder() {
        let room = "ab".repeat(32);
        let log = input("get_log", 0, &[&room], b"");
        assert_eq!(answer(&log), Some((204, None)));
        let key_request = input("request_key", 1, &[&room], br#"{"epoch": 3}"#);
        assert_eq!(answer(&key_request), Some((204, None)));
        let page = input("list_messages", 0, &[&room, "limit=5&after=7"], b"");
        assert_eq!(answer(&page), Some((204, None)));
    }

    #[test]
    fn each_kind_of_bad_input_gets_its_code() {
        let room = "ab".repeat(32);
        let cases = [
            (
                input("get_log", 0, &["zz"], b""),
                400,
                ErrorCode::MalformedParameter,
            ),
            (
                input("request_key", 1, &[&room], b"{"),
                400,
                ErrorCode::MalformedJson,
            ),
            (
                input("request_key", 0, &[&room], b"{}"),
                415,
                ErrorCode::UnsupportedMediaType,
            ),
            (
                input("request_key", 1, &[&room], br#"{"epoch": "x"}"#),
                422,
                ErrorCode::InvalidBody,
            ),
            (
                input("list_messages", 0, &[&room, "limit=many"], b""),
                400,
                ErrorCode::MalformedParameter,
            ),
            (
                input(
                    "download_attachment",
                    2,
                    &[&room, &"cd".repeat(16), "", "bytes=500-600"],
                    b"",
                ),
                416,
                ErrorCode::RangeNotSatisfiable,
            ),
        ];
        for (data, status, code) in cases {
            assert_eq!(answer(&data), Some((status, Some(code))));
        }
    }
}
