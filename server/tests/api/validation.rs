//! Malformed requests: each gets a JSON 4xx with an `error` field, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_message, spawn_app, TestApp};

#[tokio::test]
async fn bad_base64_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let body = json!({"username": "alice", "auth_key": "not base64!"});
    let response = app.post_json(&app.anonymous, "/api/login", &body).await;
    let message = error_message(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(message.contains("auth_key"), "{message}");
    assert!(message.contains("invalid base64"), "{message}");

    let short_key = json!({"username": "alice", "auth_key": "AAAA"});
    let response = app
        .post_json(&app.anonymous, "/api/login", &short_key)
        .await;
    let message = error_message(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(message.contains("expected 32 bytes"), "{message}");
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            &app.anonymous,
            "/api/login",
            "{\"username\": ",
            Some("application/json"),
        )
        .await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(
        message.starts_with("request body is not valid json"),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_json_types_and_unknown_or_missing_fields_are_422s() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let bodies = [
        ("/api/prelogin".to_owned(), json!({"username": 42})),
        ("/api/prelogin".to_owned(), json!({})),
        (
            "/api/prelogin".to_owned(),
            json!({"username": "alice", "extra": true}),
        ),
        ("/api/prelogin".to_owned(), json!([1, 2, 3])),
        (
            format!("/api/rooms/{}/messages", room.hex()),
            json!({"epoch": "zero", "nonce": "", "ciphertext": ""}),
        ),
        (
            format!("/api/rooms/{}/messages", room.hex()),
            json!({"epoch": -1, "nonce": "", "ciphertext": ""}),
        ),
        (
            format!("/api/rooms/{}/envelopes", room.hex()),
            json!({"envelopes": [{"room_id": "zz"}]}),
        ),
    ];
    for (path, body) in bodies {
        let response = app.post_json(&alice.client, &path, &body).await;
        let message = error_message(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            message.starts_with("invalid request body"),
            "{body}: {message}"
        );
    }
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            &app.anonymous,
            "/api/prelogin",
            "{\"username\": \"alice\"}",
            None,
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "expected content-type application/json"
    );
    let response = app
        .post_raw(
            &app.anonymous,
            "/api/prelogin",
            "{\"username\": \"alice\"}",
            Some("text/plain"),
        )
        .await;
    error_message(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn a_body_over_256_kib_is_a_json_413() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let mut body = TestApp::sealed_text(&room, &alice, 1, "x");
    body.ciphertext.0 = vec![0u8; 300 * 1024];
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    assert_eq!(
        error_message(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "request body is too large"
    );
    // A large body that is not even JSON is refused for its size, before it is parsed.
    let response = app
        .post_raw(
            &app.anonymous,
            "/api/prelogin",
            vec![b'x'; 257 * 1024],
            Some("application/json"),
        )
        .await;
    error_message(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}
