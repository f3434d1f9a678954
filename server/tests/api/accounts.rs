//! Register, prelogin, login, logout, `me` and public identities.

use common::account::KdfParams;
use common::api::{LoginResponse, MeResponse, PreloginResponse, SessionResponse, SessionStatus};
use common::identity::PublicIdentity;
use common::wire::Base64;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, spawn_app, spawn_app_with, TestApp, TEST_KDF};

#[tokio::test]
async fn register_sets_a_session_cookie_and_me_returns_the_account() {
    let app = spawn_app().await;
    let (request, _, secrets) = TestApp::registration("alice", "a long passphrase");
    let user = app.register_user("bob").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = crate::helpers::client_with_jar(jar);
    let response = app.register(&client, &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("chat_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let body: SessionResponse = json(response).await;
    assert_eq!(body.username, "alice");

    let me: MeResponse = json(app.me(&client).await).await;
    assert_eq!(me.username, "alice");
    assert_eq!(me.kdf, TEST_KDF);
    assert_eq!(me.salt, request.salt);
    assert_eq!(me.identity, secrets.public_identity("alice"));
    assert_eq!(me.wrapped_identity, request.wrapped_identity);

    let bob_me: MeResponse = json(app.me(&user.client).await).await;
    assert_eq!(bob_me.username, "bob");
}

#[tokio::test]
async fn register_refuses_invalid_usernames() {
    let app = spawn_app().await;
    for username in [
        "Alice",
        "al",
        "has space",
        "-leading",
        "ünïcode",
        &"a".repeat(33),
    ] {
        let (mut request, _, _) = TestApp::registration("valid", "a long passphrase");
        request.username = username.to_owned();
        let response = app.register(&app.anonymous, &request).await;
        let message = error_message(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.starts_with("username must be"),
            "{username}: {message}"
        );
    }
}

#[tokio::test]
async fn register_refuses_an_identity_made_for_another_name() {
    let app = spawn_app().await;
    let (mut request, _, _) = TestApp::registration("alice", "a long passphrase");
    let (other, _, _) = TestApp::registration("mallory", "another passphrase");
    request.identity = other.identity;
    let response = app.register(&app.anonymous, &request).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "identity belongs to another user"
    );
}

#[tokio::test]
async fn register_refuses_weak_or_excessive_kdf_parameters() {
    let app = spawn_app().await;
    let weak = [
        KdfParams {
            m_kib: 1024,
            t: 2,
            p: 1,
        },
        KdfParams {
            m_kib: 19_456,
            t: 1,
            p: 1,
        },
        KdfParams {
            m_kib: 19_456,
            t: 2,
            p: 0,
        },
        KdfParams {
            m_kib: 2_000_000,
            t: 2,
            p: 1,
        },
    ];
    for kdf in weak {
        let (mut request, _, _) = TestApp::registration("alice", "a long passphrase");
        request.kdf = kdf;
        let response = app.register(&app.anonymous, &request).await;
        let message = error_message(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.starts_with("key derivation parameters"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn register_refuses_a_tampered_identity_signature() {
    let app = spawn_app().await;
    let (request, _, _) = TestApp::registration("alice", "a long passphrase");
    let mut body = serde_json::to_value(&request).unwrap();
    body["identity"]["username"] = "alicf".into();
    body["username"] = "alicf".into();
    let response = app.post_json(&app.anonymous, "/api/register", &body).await;
    let message = error_message(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(message.contains("signature"), "{message}");
}

#[tokio::test]
async fn register_refuses_a_taken_username_with_409() {
    let app = spawn_app().await;
    app.register_user("alice").await;
    let (request, _, _) = TestApp::registration("alice", "a different passphrase");
    let response = app.register(&app.anonymous, &request).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "username is already taken"
    );
}

#[tokio::test]
async fn prelogin_returns_the_registered_parameters_and_salt() {
    let app = spawn_app().await;
    app.register_user("alice").await;
    let body: PreloginResponse = json(app.prelogin(&app.anonymous, "alice").await).await;
    assert_eq!(body.kdf, TEST_KDF);
    assert_eq!(body.salt.0, [7u8; 16]);
}

#[tokio::test]
async fn prelogin_for_an_unknown_user_returns_defaults_and_a_stable_fake_salt() {
    let app = spawn_app().await;
    let first: PreloginResponse = json(app.prelogin(&app.anonymous, "nobody").await).await;
    let second: PreloginResponse = json(app.prelogin(&app.anonymous, "nobody").await).await;
    let other: PreloginResponse = json(app.prelogin(&app.anonymous, "someone").await).await;
    assert_eq!(first.kdf, KdfParams::DEFAULT);
    assert_eq!(first.salt, second.salt);
    assert_ne!(first.salt, other.salt);
}

#[tokio::test]
async fn login_with_the_right_key_starts_a_session() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let client = crate::helpers::client_with_jar(Default::default());
    let response = app.login(&client, "alice", alice.auth_key).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: LoginResponse = json(response).await;
    assert_eq!(body.username, "alice");
    assert!(!body.totp_required);
    assert!(body.challenge.is_none());
    assert!(!body.new_network, "alice registered from this network");
    let me: MeResponse = json(app.me(&client).await).await;
    assert_eq!(me.username, "alice");
}

#[tokio::test]
async fn a_wrong_key_and_an_unknown_user_get_identical_401s() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let mut wrong_key = alice.auth_key;
    wrong_key[0] ^= 1;
    let wrong = app.login(&app.anonymous, "alice", wrong_key).await;
    assert!(wrong.headers().get(reqwest::header::SET_COOKIE).is_none());
    let wrong = error_message(wrong, StatusCode::UNAUTHORIZED).await;
    let unknown = app.login(&app.anonymous, "nobody", alice.auth_key).await;
    let unknown = error_message(unknown, StatusCode::UNAUTHORIZED).await;
    let invalid = app
        .login(&app.anonymous, "Not A Name", alice.auth_key)
        .await;
    let invalid = error_message(invalid, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong, "invalid username or password");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, invalid);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let cookie = app.session_cookie(&alice);
    let response = app.logout(&alice.client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.starts_with("chat_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old token no longer works even when a client keeps sending it.
    let response = app
        .anonymous
        .get(app.url("/api/me"))
        .header("cookie", cookie.to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let response = app.logout(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn me_without_a_valid_session_is_401() {
    let app = spawn_app().await;
    let response = app.me(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    for cookie in [
        "chat_session=garbage",
        "chat_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = app
            .anonymous
            .get(app.url("/api/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "not logged in"
        );
    }
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let app = spawn_app_with(|config| config.session_ttl_hours = 0).await;
    let (request, _, _) = TestApp::registration("alice", "a long passphrase");
    let response = app.register(&app.anonymous, &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // A cookie jar would drop a cookie with `Max-Age=0` at once, so send it by hand, as a
    // client that ignores the expiry would.
    let set_cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let response = app
        .anonymous
        .get(app.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn public_identities_are_served_to_logged_in_users() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let identity: PublicIdentity = json(app.user_identity(&alice.client, "bob").await).await;
    assert_eq!(identity, bob.secrets.public_identity("bob"));

    let response = app.user_identity(&alice.client, "nobody").await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "user not found"
    );
    let response = app.user_identity(&app.anonymous, "bob").await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn register_refuses_an_empty_wrapped_identity() {
    let app = spawn_app().await;
    let (mut request, _, _) = TestApp::registration("alice", "a long passphrase");
    request.wrapped_identity = Base64(Vec::new());
    let response = app.register(&app.anonymous, &request).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "wrapped identity is empty"
    );
}

#[tokio::test]
async fn the_session_probe_answers_200_with_or_without_a_session() {
    let app = spawn_app().await;
    let anonymous = app.session_status(&app.anonymous).await;
    assert_eq!(anonymous.status(), StatusCode::OK);
    let status: SessionStatus = json(anonymous).await;
    assert_eq!(status.username, None);
    let user = app.register_user("alice").await;
    let status: SessionStatus = json(app.session_status(&user.client).await).await;
    assert_eq!(status.username.as_deref(), Some("alice"));
    assert_eq!(
        app.logout(&user.client).await.status(),
        StatusCode::NO_CONTENT
    );
    let status: SessionStatus = json(app.session_status(&user.client).await).await;
    assert_eq!(status.username, None);
}
