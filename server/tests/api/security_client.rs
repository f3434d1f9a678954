//! The account security side of the test client: one method per endpoint (login steps,
//! TOTP, sessions, account settings), TOTP codes computed as an authenticator app would,
//! and checks on sessions and sockets.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::account::{derive_account_keys, wrap_identity};
use common::api::endpoints::{
    Account, ChangePassword, DeleteAccount, DismissNotices, Endpoint, Login, LoginTotp, Prelogin,
    RevokeOtherSessions, RevokeSession, Sessions, SetTrustedNetworks, TotpDisable, TotpEnable,
    TotpSetup,
};
use common::api::{
    DeleteAccountRequest, LoginRequest, LoginResponse, PasswordChangeRequest,
    RecoveryCodesResponse, TotpCodeRequest, TotpLoginRequest, TotpSetupResponse,
    TrustedNetworksRequest,
};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use futures_util::StreamExt;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, Response, StatusCode};
use serde::Serialize;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{client_with_jar, error_message, json, TestApp, TestUser, TEST_KDF};
use crate::ws_client::Socket;

/// The address tests log in from unless they say otherwise (another network than the
/// 127.0.0.1 that registrations come from).
pub const HOME_IP: &str = "127.0.0.1";

/// One logged-in browser of a user: its own client and cookie jar.
pub struct Browser {
    /// A client with this browser's cookies.
    pub client: Client,
    /// Its cookie jar.
    pub jar: Arc<Jar>,
}

/// An authenticator app holding a user's TOTP secret.
pub struct Authenticator {
    totp: TOTP,
    /// The step whose code enabled TOTP, so the server refuses it from then on (0 when
    /// this authenticator did not enable it).
    pub enabled_step: u64,
}

/// The current Unix time in seconds.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The current TOTP time step (30 seconds).
pub fn current_step() -> u64 {
    unix_seconds() / 30
}

impl Authenticator {
    /// An authenticator for the base32 secret the server showed at setup.
    pub fn new(secret_base32: &str) -> Self {
        let secret = Secret::Encoded(secret_base32.to_owned())
            .to_bytes()
            .expect("the secret is base32");
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new())
            .expect("valid totp parameters");
        Self {
            totp,
            enabled_step: 0,
        }
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        self.totp.generate(step * 30)
    }

    /// The code of the current step shifted by `offset` steps.
    pub fn code(&self, offset: i64) -> String {
        self.code_at_step(current_step().saturating_add_signed(offset))
    }

    /// The code of the step after the one that enabled TOTP: the server accepts it once,
    /// for the next 30 to 60 seconds.
    pub fn next_code(&self) -> String {
        self.code_at_step(self.enabled_step + 1)
    }

    /// A 6-digit code that matches no step near now.
    pub fn wrong_code(&self) -> String {
        let near: Vec<String> = (-2..=2).map(|offset| self.code(offset)).collect();
        (10..)
            .map(|offset| self.code(offset))
            .find(|code| !near.contains(code))
            .expect("some code differs")
    }
}

impl TestApp {
    /// `method path` with a JSON body and `X-Forwarded-For: ip`.
    async fn send_from(
        &self,
        client: &Client,
        method: reqwest::Method,
        path: &str,
        ip: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Response {
        let mut request = client
            .request(method, self.url(path))
            .header("x-forwarded-for", ip)
            .header(reqwest::header::USER_AGENT, "test-browser/1.0");
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request is sent")
    }

    /// Calls endpoint `E` (path parameters `values`) with `X-Forwarded-For: ip`.
    pub async fn call_from<E: Endpoint>(
        &self,
        client: &Client,
        values: &[&str],
        ip: &str,
        body: &E::Request,
    ) -> Response {
        self.request::<E>(client, &E::INFO.render_path(values), body)
            .header("x-forwarded-for", ip)
            .header(reqwest::header::USER_AGENT, "test-browser/1.0")
            .send()
            .await
            .expect("request is sent")
    }

    /// `POST /api/login` from `ip`.
    pub async fn login_from(
        &self,
        client: &Client,
        username: &str,
        auth_key: [u8; 32],
        ip: &str,
    ) -> Response {
        let body = LoginRequest {
            username: username.to_owned(),
            auth_key: Base64Array(auth_key),
        };
        self.call_from::<Login>(client, &[], ip, &body).await
    }

    /// `POST /api/prelogin` from `ip`.
    pub async fn prelogin_from(&self, username: &str, ip: &str) -> Response {
        let body = common::api::PreloginRequest {
            username: username.to_owned(),
        };
        self.call_from::<Prelogin>(&self.anonymous, &[], ip, &body)
            .await
    }

    /// `POST /api/login/totp` from `ip`.
    pub async fn login_totp(
        &self,
        client: &Client,
        challenge: &Base64,
        code: &str,
        ip: &str,
    ) -> Response {
        let body = TotpLoginRequest {
            challenge: challenge.clone(),
            code: code.to_owned(),
        };
        self.call_from::<LoginTotp>(client, &[], ip, &body).await
    }

    /// The password step of a login of `user` (who has TOTP enabled) from [`HOME_IP`]:
    /// returns the challenge for the code step.
    pub async fn password_step(&self, client: &Client, user: &TestUser) -> Base64 {
        let response = self
            .login_from(client, &user.username, user.auth_key, HOME_IP)
            .await;
        let body: LoginResponse = json(response).await;
        assert!(body.totp_required, "{} has totp enabled", user.username);
        body.challenge.expect("a challenge")
    }

    /// Logs `user` in from `ip` in a new browser (a new session), answering the TOTP step
    /// with `code` when the server asks for one.
    pub async fn new_browser(&self, user: &TestUser, ip: &str, code: Option<&str>) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = client_with_jar(jar.clone());
        let response = self
            .login_from(&client, &user.username, user.auth_key, ip)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login of {}",
            user.username
        );
        let body: LoginResponse = json(response).await;
        if body.totp_required {
            let challenge = body.challenge.expect("a challenge");
            let code = code.expect("the test brought a code");
            let response = self.login_totp(&client, &challenge, code, ip).await;
            assert_eq!(response.status(), StatusCode::OK, "totp step");
        }
        Browser { client, jar }
    }

    /// `POST path` as a logged-in client, with a JSON body.
    pub async fn post_as(&self, client: &Client, path: &str, body: &impl Serialize) -> Response {
        self.send_from(client, reqwest::Method::POST, path, HOME_IP, Some(body))
            .await
    }

    /// `POST /api/totp/setup`.
    pub async fn totp_setup(&self, client: &Client) -> Response {
        self.call_from::<TotpSetup>(client, &[], HOME_IP, &()).await
    }

    /// `POST /api/totp/enable` as `user` with `code` and their auth key.
    pub async fn totp_enable(&self, user: &TestUser, code: &str) -> Response {
        self.totp_enable_with_key(user, code, user.auth_key).await
    }

    /// `POST /api/totp/enable` as `user` with `code` and `auth_key`.
    pub async fn totp_enable_with_key(
        &self,
        user: &TestUser,
        code: &str,
        auth_key: [u8; 32],
    ) -> Response {
        let body = TotpCodeRequest {
            code: code.to_owned(),
            auth_key: Base64Array(auth_key),
        };
        self.call_from::<TotpEnable>(&user.client, &[], HOME_IP, &body)
            .await
    }

    /// `POST /api/totp/disable` as `user` with `code` and their auth key.
    pub async fn totp_disable(&self, user: &TestUser, code: &str) -> Response {
        self.totp_disable_with_key(user, code, user.auth_key).await
    }

    /// `POST /api/totp/disable` as `user` with `code` and `auth_key`.
    pub async fn totp_disable_with_key(
        &self,
        user: &TestUser,
        code: &str,
        auth_key: [u8; 32],
    ) -> Response {
        let body = TotpCodeRequest {
            code: code.to_owned(),
            auth_key: Base64Array(auth_key),
        };
        self.call_from::<TotpDisable>(&user.client, &[], HOME_IP, &body)
            .await
    }

    /// Sets TOTP up for `user` and enables it with the current code; returns the
    /// authenticator and the recovery codes.
    pub async fn enable_totp(&self, user: &TestUser) -> (Authenticator, Vec<String>) {
        let setup: TotpSetupResponse = json(self.totp_setup(&user.client).await).await;
        let mut authenticator = Authenticator::new(&setup.secret_base32);
        authenticator.enabled_step = current_step();
        let code = authenticator.code_at_step(authenticator.enabled_step);
        let response = self.totp_enable(user, &code).await;
        let codes: RecoveryCodesResponse = json(response).await;
        (authenticator, codes.recovery_codes)
    }

    /// `GET /api/sessions`.
    pub async fn sessions(&self, client: &Client) -> Response {
        self.call::<Sessions>(client, &[], &()).await
    }

    /// `DELETE /api/sessions/{id}`.
    pub async fn revoke_session(&self, client: &Client, id: &str) -> Response {
        self.call::<RevokeSession>(client, &[id], &()).await
    }

    /// `POST /api/sessions/revoke-others`.
    pub async fn revoke_other_sessions(&self, client: &Client) -> Response {
        self.call_from::<RevokeOtherSessions>(client, &[], HOME_IP, &())
            .await
    }

    /// `GET /api/account`.
    pub async fn account(&self, client: &Client) -> Response {
        self.call::<Account>(client, &[], &()).await
    }

    /// `POST /api/account/notices/dismiss`.
    pub async fn dismiss_notices(&self, client: &Client) -> Response {
        self.call_from::<DismissNotices>(client, &[], HOME_IP, &())
            .await
    }

    /// `PUT /api/account/trusted-networks`.
    pub async fn set_trusted_networks(
        &self,
        client: &Client,
        body: &TrustedNetworksRequest,
    ) -> Response {
        self.call_from::<SetTrustedNetworks>(client, &[], HOME_IP, body)
            .await
    }

    /// `POST /api/account/password`.
    pub async fn change_password(&self, client: &Client, body: &PasswordChangeRequest) -> Response {
        self.call_from::<ChangePassword>(client, &[], HOME_IP, body)
            .await
    }

    /// `POST /api/account/delete`.
    pub async fn delete_account(&self, client: &Client, body: &DeleteAccountRequest) -> Response {
        self.call_from::<DeleteAccount>(client, &[], HOME_IP, body)
            .await
    }

    /// The `Cookie` header a browser with `jar` would send to this app.
    pub fn jar_cookie(&self, jar: &Jar) -> HeaderValue {
        let url = self.address.parse().expect("url");
        let cookie = jar.cookies(&url).expect("the browser has a session cookie");
        HeaderValue::from_bytes(cookie.as_bytes()).expect("cookie header")
    }

    /// Opens a WebSocket with the session of `browser`.
    pub async fn connect_browser_ws(&self, browser: &Browser) -> Socket {
        let origin = self.address.clone();
        self.try_connect_ws(Some(self.jar_cookie(&browser.jar)), Some(&origin))
            .await
            .expect("websocket connects")
    }

    /// Asserts that `GET /api/me` with `client` is 401 `not logged in`.
    pub async fn assert_logged_out(&self, client: &Client, what: &str) {
        let response = self.me(client).await;
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "not logged in",
            "{what}"
        );
    }

    /// Asserts that `GET /api/me` with `client` succeeds.
    pub async fn assert_logged_in(&self, client: &Client, what: &str) {
        assert_eq!(self.me(client).await.status(), StatusCode::OK, "{what}");
    }
}

/// Asserts that the server closes `socket` within five seconds with a close frame of code
/// 4401 `session ended`, after which the stream ends.
pub async fn assert_session_ended(socket: &mut Socket) {
    assert_closed_with(socket, 4401, "session ended").await;
}

/// Asserts that the server closes `socket` within five seconds with a close frame of `code`
/// and `reason`, after which the stream ends.
pub async fn assert_closed_with(socket: &mut Socket, code: u16, reason: &str) {
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the socket is closed within five seconds")
    .expect("the close frame has a code");
    assert_eq!(u16::from(frame.code), code);
    assert_eq!(frame.reason.as_str(), reason);
    let rest = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the stream ends");
    assert!(
        rest.as_ref().is_none_or(|item| item.is_err()),
        "a frame after the close: {rest:?}"
    );
}

/// What a client sends to change `user`'s password to `new_password`.
pub fn password_change(
    user: &TestUser,
    new_password: &str,
    totp_code: Option<String>,
) -> (PasswordChangeRequest, [u8; 32]) {
    let new_salt = [9u8; 16];
    let keys = derive_account_keys(new_password, &new_salt, &TEST_KDF).expect("keys derive");
    let wrapped = wrap_identity(&keys.wrap_key, &user.username, &user.secrets, &mut OsRng);
    let request = PasswordChangeRequest {
        current_auth_key: Base64Array(user.auth_key),
        totp_code,
        new_kdf: TEST_KDF,
        new_salt: Base64Array(new_salt),
        new_auth_key: Base64Array(*keys.auth_key.as_bytes()),
        new_wrapped_identity: Base64(wrapped),
    };
    (request, *keys.auth_key.as_bytes())
}
