//! Passkeys over the API without an authenticator: registration needs re-authentication
//! and offers the configured relying party with user verification required; answers that
//! are not real WebAuthn credentials are refused as wrong codes; unknown passkeys and
//! registrations out of order are conflicts. (The ceremonies with a real authenticator run
//! in the browser end-to-end test, with Chromium's virtual authenticator.)

use common::api::{
    AccountResponse, ErrorCode, LoginResponse, PasskeyChangeRequest, PasskeyLoginRequest,
    WebAuthnJson,
};
use common::wire::Base64Array;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_body, error_message, json, spawn_app, TestApp, TestUser};
use crate::security_client::HOME_IP;

fn change(auth_key: [u8; 32], totp_code: Option<String>) -> PasskeyChangeRequest {
    PasskeyChangeRequest {
        auth_key: Base64Array(auth_key),
        totp_code,
    }
}

/// A passkey assertion of the right shape that answers no challenge.
pub fn bogus_assertion() -> WebAuthnJson {
    WebAuthnJson::encode(&json!({
        "id": "AAAA",
        "rawId": "AAAA",
        "response": {
            "authenticatorData": "AAAA",
            "clientDataJSON": "AAAA",
            "signature": "AAAA",
            "userHandle": null
        },
        "type": "public-key",
        "extensions": {}
    }))
    .expect("an assertion")
}

/// A passkey registration of the right shape that answers no ceremony.
pub fn bogus_registration() -> Value {
    json!({
        "name": "laptop",
        "credential": {
            "id": "AAAA",
            "rawId": "AAAA",
            "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" },
            "type": "public-key",
            "extensions": {}
        }
    })
}

async fn begin(app: &TestApp, user: &TestUser, body: &PasskeyChangeRequest) -> reqwest::Response {
    app.post_as(&user.client, "/api/passkeys/begin", body).await
}

#[tokio::test]
async fn registration_needs_the_password_and_offers_the_relying_party() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let mut wrong_key = alice.auth_key;
    wrong_key[3] ^= 1;
    let response = begin(&app, &alice, &change(wrong_key, None)).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    let response = app
        .post_as(
            &app.anonymous,
            "/api/passkeys/begin",
            &change(alice.auth_key, None),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let options: Value = json(begin(&app, &alice, &change(alice.auth_key, None)).await).await;
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost", "{options}");
    assert_eq!(public_key["user"]["name"], "alice");
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"], "required",
        "{options}"
    );
    assert!(public_key["challenge"]
        .as_str()
        .is_some_and(|c| c.len() >= 43));
    // The user handle does not carry the name.
    assert_ne!(public_key["user"]["id"], "alice");

    // An answer of the wrong shape is an invalid body and leaves the registration alone.
    let mut shapeless = bogus_registration();
    shapeless["credential"]["rawId"] = json!(7);
    let response = app
        .post_as(&alice.client, "/api/passkeys/finish", &shapeless)
        .await;
    let refused = error_body(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused.code, ErrorCode::InvalidBody);
    assert!(refused.error.contains("credential"), "{}", refused.error);

    // A bogus answer is a wrong code, and uses the registration up.
    let response = app
        .post_as(&alice.client, "/api/passkeys/finish", &bogus_registration())
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    let response = app
        .post_as(&alice.client, "/api/passkeys/finish", &bogus_registration())
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "no passkey registration in progress"
    );
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(account.passkeys.is_empty());
    assert!(!account.totp_enabled);
    // Nothing was enabled, so logging in still needs no second step.
    let login: LoginResponse = json(
        app.login_from(&app.anonymous, "alice", alice.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(!login.totp_required);
}

#[tokio::test]
async fn bad_names_unknown_passkeys_and_malformed_bodies_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    json::<Value>(begin(&app, &alice, &change(alice.auth_key, None)).await).await;
    let mut long_name = bogus_registration();
    long_name["name"] = json!("x".repeat(65));
    let response = app
        .post_as(&alice.client, "/api/passkeys/finish", &long_name)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = app
        .post_as(
            &alice.client,
            "/api/passkeys/finish",
            &json!({ "name": "laptop", "credential": "not a credential" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .post_as(
            &alice.client,
            "/api/passkeys/bm8tc3VjaC1rZXk/remove",
            &change(alice.auth_key, None),
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "no such passkey"
    );
}

#[tokio::test]
async fn a_bogus_assertion_is_a_wrong_code_and_spends_an_attempt() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, _) = app.enable_totp(&alice).await;
    let login: LoginResponse = json(
        app.login_from(&app.anonymous, "alice", alice.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(login.totp_required);
    assert!(login.passkey_options.is_none(), "alice has no passkey");
    let challenge = login.challenge.unwrap();
    let shapeless = json!({ "challenge": challenge, "credential": { "id": [] } });
    let response = app
        .post_as(&app.anonymous, "/api/login/passkey", &shapeless)
        .await;
    let refused = error_body(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused.code, ErrorCode::InvalidBody);
    let body = PasskeyLoginRequest {
        challenge: challenge.clone(),
        credential: bogus_assertion(),
    };
    for _ in 0..5 {
        let response = app
            .post_as(&app.anonymous, "/api/login/passkey", &body)
            .await;
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "invalid code"
        );
    }
    // Five wrong answers use the challenge up, whatever the sixth is.
    let response = app
        .login_totp(
            &app.anonymous,
            &challenge,
            &authenticator.next_code(),
            HOME_IP,
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
}
