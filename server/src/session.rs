//! Login sessions: the random token in an `HttpOnly` cookie, its SHA-256 in the database,
//! and the [`AuthUser`] extractor that turns the cookie into a username and session.
//!
//! Cookies rather than bearer tokens: script cannot read an `HttpOnly` cookie, `SameSite=Strict`
//! keeps other sites from making requests with it, and browsers send cookies on WebSocket
//! handshakes, where they cannot set headers. When the server speaks TLS itself the cookie
//! is also `Secure`.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::OsRng;
use rand_core::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, sessions};
use crate::AppState;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = common::api::SESSION_COOKIE;

/// The logged-in user of a request. Extracting it checks the session cookie against the
/// database and records the time it was seen; a missing, unknown, expired or idle session
/// is a 401 `not logged in`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The account name.
    pub username: String,
    /// SHA-256 of the session token, to end this session on logout.
    pub token_hash: [u8; 32],
    /// The session's public id (see [`common::api::SessionInfo::id`]).
    pub session_id: String,
}

/// SHA-256 of a session token: what the database stores.
pub fn token_hash(token: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Reads the session token from the `Cookie` headers, if one of them carries a well-formed
/// `chat_session` cookie (32 bytes of unpadded base64url).
pub fn token_from_headers(headers: &HeaderMap) -> Option<Zeroizing<[u8; 32]>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .find_map(|(_, value)| {
            let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(value).ok()?);
            let token: [u8; 32] = bytes.as_slice().try_into().ok()?;
            Some(Zeroizing::new(token))
        })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = token_from_headers(&parts.headers).ok_or(ApiError::NotLoggedIn)?;
        let token_hash = token_hash(&token);
        let session = sessions::find_and_touch(
            &state.pool,
            &token_hash,
            store::now_ms(),
            duration_ms(state.config.session_idle()),
        )
        .await?
        .ok_or(ApiError::NotLoggedIn)?;
        Ok(Self {
            username: session.username,
            token_hash,
            session_id: session.public_id,
        })
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Starts a session for `username` from `client` and returns the `Set-Cookie` header that
/// hands its token to the browser. The session gets a random 16-byte public id (unpadded
/// base64url), unrelated to the token. Expired and idle sessions of every user are swept at
/// the same time.
///
/// # Errors
/// A database error.
pub async fn start(
    state: &AppState,
    username: &str,
    client: &ClientInfo,
) -> ApiResult<(axum::http::HeaderName, HeaderValue)> {
    let mut token = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(token.as_mut());
    let mut public_id = [0u8; 16];
    OsRng.fill_bytes(&mut public_id);
    let now_ms = store::now_ms();
    let ttl = state.config.session_ttl();
    sessions::delete_expired(
        &state.pool,
        now_ms,
        duration_ms(state.config.session_idle()),
    )
    .await?;
    let new_session = sessions::NewSession {
        token_hash: &token_hash(&token),
        public_id: &URL_SAFE_NO_PAD.encode(public_id),
        username,
        ip: &client.ip.to_string(),
        user_agent: &client.user_agent,
        expires_at: now_ms.saturating_add(duration_ms(ttl)),
    };
    sessions::insert(&state.pool, &new_session, now_ms).await?;
    let encoded = Zeroizing::new(URL_SAFE_NO_PAD.encode(token.as_ref()));
    let secure = state.config.cookie_secure();
    Ok((SET_COOKIE, cookie_header(&encoded, ttl, secure)))
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn clearing_cookie(state: &AppState) -> (axum::http::HeaderName, HeaderValue) {
    let secure = state.config.cookie_secure();
    (SET_COOKIE, cookie_header("", Duration::ZERO, secure))
}

fn cookie_header(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    );
    // The value is unpadded base64url and the rest is fixed ASCII, so this always parses.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
