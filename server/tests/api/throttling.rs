//! Login throttling: per username and per client address, on prelogin, login and the TOTP
//! step, with `Retry-After`, ending when the window has passed.

use std::time::Duration;

use common::api::{AccountResponse, ErrorBody, LoginResponse};
use reqwest::{Response, StatusCode};

use crate::helpers::{client_with_jar, error_message, json, spawn_app_with, TestApp};
use crate::security_client::HOME_IP;

/// The throttling window of these tests, in seconds: short, yet long enough that a loaded
/// machine gets through the attempts that fill a counter before the first one expires.
const WINDOW_SECS: u64 = 4;

/// Two attempts per username (six per address) in a window of [`WINDOW_SECS`].
async fn strict_app() -> TestApp {
    spawn_app_with(|config| {
        config.login_attempts = 2;
        config.login_window_secs = WINDOW_SECS;
    })
    .await
}

/// Asserts a 429 with the right message and a `Retry-After` within the window, equal to
/// the body's `retry_after_s`.
async fn assert_throttled(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry_after: u64 = response.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=WINDOW_SECS).contains(&retry_after),
        "{what}: {retry_after}"
    );
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, "too many attempts, try again later", "{what}");
    assert_eq!(body.retry_after_s, Some(retry_after), "{what}");
}

#[tokio::test]
async fn a_username_gets_its_attempts_then_429_until_the_window_ends() {
    let app = strict_app().await;
    let alice = app.register_user("alice").await;
    let mut wrong_key = alice.auth_key;
    wrong_key[0] ^= 1;
    for attempt in 0..2 {
        // Each attempt from another address: only the username counter fills up.
        let ip = format!("192.0.2.{attempt}");
        let response = app
            .login_from(&app.anonymous, "alice", wrong_key, &ip)
            .await;
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "invalid username or password"
        );
    }
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "192.0.2.9")
        .await;
    assert_throttled(response, "even the right key").await;
    // Unknown names are counted the same way and answer the same.
    for _ in 0..2 {
        let response = app
            .login_from(&app.anonymous, "nobody", wrong_key, "192.0.2.20")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .login_from(&app.anonymous, "nobody", wrong_key, "192.0.2.21")
        .await;
    assert_throttled(response, "an unknown name").await;
    // Prelogin has its own counter.
    for _ in 0..2 {
        let response = app.prelogin_from("alice", "192.0.2.30").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_throttled(app.prelogin_from("alice", "192.0.2.31").await, "prelogin").await;

    tokio::time::sleep(Duration::from_secs(WINDOW_SECS) + Duration::from_millis(100)).await;
    let client = client_with_jar(Default::default());
    let response = app
        .login_from(&client, "alice", alice.auth_key, HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the window has passed");
    let _: LoginResponse = json(response).await;

    let account: AccountResponse = json(app.account(&client).await).await;
    let results: Vec<&str> = account
        .login_history
        .iter()
        .map(|event| event.result.as_str())
        .collect();
    assert_eq!(
        results,
        ["success", "throttled", "wrong_password", "wrong_password"]
    );
    assert_eq!(account.login_history[1].ip, "192.0.2.9");
}

#[tokio::test]
async fn an_address_gets_three_times_the_attempts_of_a_username() {
    let app = strict_app().await;
    let (_, auth_key, _) = TestApp::registration("unused", "a long passphrase");
    for index in 0..6 {
        let username = format!("user{index}");
        let response = app
            .login_from(&app.anonymous, &username, auth_key, "203.0.113.5")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
    }
    let response = app
        .login_from(&app.anonymous, "fresh", auth_key, "203.0.113.5")
        .await;
    assert_throttled(response, "a seventh name from one address").await;
    let response = app
        .login_from(&app.anonymous, "fresh", auth_key, "203.0.113.6")
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "another address"
    );
}

#[tokio::test]
async fn the_totp_step_is_throttled_per_address() {
    let app = strict_app().await;
    let unknown = common::wire::Base64(vec![1; 32]);
    for _ in 0..6 {
        let response = app
            .login_totp(&app.anonymous, &unknown, "123456", "203.0.113.7")
            .await;
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "login expired, start again"
        );
    }
    let response = app
        .login_totp(&app.anonymous, &unknown, "123456", "203.0.113.7")
        .await;
    assert_throttled(response, "the totp step").await;
}

/// `POST /api/register` of a fresh account named `username` from `ip`.
async fn register_from(app: &TestApp, username: &str, ip: &str) -> Response {
    let (request, _, _) = TestApp::registration(username, "a long enough passphrase");
    app.anonymous
        .post(app.url("/api/register"))
        .header("x-forwarded-for", ip)
        .json(&request)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn registrations_are_counted_per_address_before_any_other_work() {
    let app = spawn_app_with(|config| {
        config.register_attempts = 2;
        config.login_window_secs = WINDOW_SECS;
    })
    .await;
    for name in ["alice", "bob"] {
        let response = register_from(&app, name, "198.51.100.7").await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
    }
    // Refused before the name is looked at: a taken name gets the same 429, so the
    // throttle also bounds how fast names can be probed.
    for name in ["carol", "alice"] {
        let response = register_from(&app, name, "198.51.100.7").await;
        assert_throttled(response, name).await;
    }
    let response = register_from(&app, "carol", "198.51.100.8").await;
    assert_eq!(response.status(), StatusCode::CREATED, "another address");
    // Logins from the throttled address have counters of their own.
    let response = app.prelogin_from("alice", "198.51.100.7").await;
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(WINDOW_SECS)).await;
    let response = register_from(&app, "dave", "198.51.100.7").await;
    assert_eq!(response.status(), StatusCode::CREATED, "after the window");
}
