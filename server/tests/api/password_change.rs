//! Changing the password: re-authentication, one transaction for everything derived from
//! the password, the same public identity, and every other session signed out.

use common::api::{ClientStateBody, MeResponse, PreloginResponse, PutClientStateRequest};
use common::identity::PublicIdentity;
use common::wire::Base64;
use reqwest::StatusCode;

use crate::helpers::{client_with_jar, error_message, json, spawn_app, TEST_KDF};
use crate::security_client::{assert_session_ended, password_change, HOME_IP};

#[tokio::test]
async fn a_password_change_rewraps_the_same_identity_and_signs_out_other_sessions() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    // The client state is sealed under a key from the identity secrets, which a password
    // change keeps: the server leaves it as it is.
    let state = PutClientStateRequest {
        base_version: 0,
        version: 3,
        sealed: Base64(b"state sealed under the identity's state key".to_vec()),
    };
    assert_eq!(
        app.put_client_state(&alice.client, &state).await.status(),
        StatusCode::NO_CONTENT
    );
    let phone = app.new_browser(&alice, HOME_IP, None).await;
    let mut phone_socket = app.connect_browser_ws(&phone).await;
    let identity_before: PublicIdentity = json(app.user_identity(&bob.client, "alice").await).await;

    let (mut request, new_auth_key) = password_change(&alice, "a brand new passphrase", None);
    request.current_auth_key.0[0] ^= 1;
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    app.assert_logged_in(&phone.client, "after a refused change")
        .await;

    request.current_auth_key.0[0] ^= 1;
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // The public identity is the same; what the password wraps is new.
    let identity_after: PublicIdentity = json(app.user_identity(&bob.client, "alice").await).await;
    assert_eq!(identity_after, identity_before);
    let me: MeResponse = json(app.me(&alice.client).await).await;
    assert_eq!(me.identity, identity_before);
    assert_eq!(me.salt, request.new_salt);
    assert_eq!(me.wrapped_identity, request.new_wrapped_identity);
    let prelogin: PreloginResponse = json(app.prelogin(&app.anonymous, "alice").await).await;
    assert_eq!(prelogin.salt, request.new_salt);
    assert_eq!(prelogin.kdf, TEST_KDF);
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert_eq!(stored.version, 3);
    assert_eq!(stored.sealed.unwrap().0, state.sealed.0);

    // Other sessions are signed out, their sockets closed; the caller's stays.
    app.assert_logged_out(&phone.client, "the other session")
        .await;
    assert_session_ended(&mut phone_socket).await;
    app.assert_logged_in(&alice.client, "the caller").await;
    app.assert_logged_in(&bob.client, "another user").await;

    // The old auth key no longer logs in; the new one does.
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid username or password"
    );
    let client = client_with_jar(Default::default());
    let response = app
        .login_from(&client, "alice", new_auth_key, HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.assert_logged_in(&client, "with the new password").await;
}

#[tokio::test]
async fn bad_password_change_input_is_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (mut request, _) = password_change(&alice, "another passphrase", None);
    request.new_kdf.m_kib = 1024;
    let response = app.change_password(&alice.client, &request).await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(
        message.starts_with("key derivation parameters"),
        "{message}"
    );
    request.new_kdf = TEST_KDF;
    let wrapped = std::mem::replace(&mut request.new_wrapped_identity, Base64(Vec::new()));
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "wrapped identity is empty"
    );
    request.new_wrapped_identity = wrapped;
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn with_totp_a_password_change_needs_a_code() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, _) = app.enable_totp(&alice).await;
    let (mut request, _) = password_change(&alice, "another passphrase", None);
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    request.totp_code = Some(authenticator.wrong_code());
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    request.totp_code = Some(authenticator.next_code());
    let response = app.change_password(&alice.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
