//! Requests another site's page could send: a state-changing request or a WebSocket
//! handshake with a foreign `Origin` is refused before it acts; and the session cookie's
//! `Secure` flag behind a TLS-terminating proxy.

use common::api::MeResponse;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, spawn_app, spawn_app_with};

#[tokio::test]
async fn body_less_posts_from_another_origin_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let own_origin = format!("http://127.0.0.1:{}", app.port);
    for path in [
        "/api/logout",
        "/api/sessions/revoke-others",
        "/api/totp/setup",
        "/api/account/notices/dismiss",
    ] {
        for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
            let response = alice
                .client
                .post(app.url(path))
                .header(reqwest::header::ORIGIN, origin)
                .send()
                .await
                .unwrap();
            assert_eq!(
                error_message(response, StatusCode::FORBIDDEN).await,
                "cross-origin request refused",
                "{path} from {origin}"
            );
        }
    }
    // Still logged in: the logout from another origin did nothing.
    let me: MeResponse = json(app.get(&alice.client, "/api/me").await).await;
    assert_eq!(me.username, "alice");
    // The same requests from the page's own origin work.
    let response = alice
        .client
        .post(app.url("/api/totp/setup"))
        .header(reqwest::header::ORIGIN, &own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = alice
        .client
        .post(app.url("/api/logout"))
        .header(reqwest::header::ORIGIN, &own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&alice.client, "/api/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn json_requests_and_deletes_from_another_origin_are_refused_too() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (request, _, _) = crate::helpers::TestApp::registration("mallory", "long passphrase!");
    let response = app
        .anonymous
        .post(app.url("/api/register"))
        .header(reqwest::header::ORIGIN, "http://evil.example")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = alice
        .client
        .delete(app.url("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA"))
        .header(reqwest::header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Reads carry no such check: a cross-origin page cannot read the answer anyway.
    let response = alice
        .client
        .get(app.url("/api/me"))
        .header(reqwest::header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_a_tls_proxy_when_asked() {
    for (secure, expected) in [(false, false), (true, true)] {
        let app = spawn_app_with(|config| config.cookie_secure = secure).await;
        let (request, _, _) = crate::helpers::TestApp::registration("alice", "long passphrase!");
        let response = app.register(&app.anonymous, &request).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let cookie = response.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(cookie.contains("; Secure"), expected, "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    }
}
