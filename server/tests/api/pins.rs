//! `/api/me/pins`: each user's sealed trust-on-first-use pins.

use common::account::derive_account_keys;
use common::api::PinsBody;
use common::trust::{open_pins, seal_pins, Pins};
use common::wire::Base64;
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::{expect_status, Cast, Who};
use crate::helpers::{error_message, json, spawn_app, TestUser, TEST_KDF};

/// The pins of `user` sealed under their wrap key, as their client would upload them.
fn sealed_pins(user: &TestUser, pins: &Pins) -> Vec<u8> {
    let keys = derive_account_keys(&user.password, &[7u8; 16], &TEST_KDF).unwrap();
    seal_pins(&keys.wrap_key, &user.username, pins, &mut OsRng)
}

#[tokio::test]
async fn pins_round_trip_and_stay_private_to_their_owner() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let before: PinsBody = json(app.get_pins(&alice.client).await).await;
    assert!(before.sealed.is_none());

    let mut pins = Pins::new();
    pins.pin_first_use("bob", &bob.secrets.public_keys())
        .unwrap();
    let sealed = sealed_pins(&alice, &pins);
    let body = PinsBody {
        sealed: Some(Base64(sealed.clone())),
    };
    expect_status(
        app.put_pins(&alice.client, &body).await,
        StatusCode::NO_CONTENT,
        "put",
    )
    .await;
    let after: PinsBody = json(app.get_pins(&alice.client).await).await;
    assert_eq!(after.sealed.as_ref().map(|sealed| &sealed.0), Some(&sealed));
    let keys = derive_account_keys(&alice.password, &[7u8; 16], &TEST_KDF).unwrap();
    assert_eq!(
        open_pins(&keys.wrap_key, "alice", &after.sealed.unwrap().0).unwrap(),
        pins
    );

    // A second upload replaces the first; bob's pins are his own.
    let replacement = PinsBody {
        sealed: Some(Base64(sealed_pins(&alice, &Pins::new()))),
    };
    expect_status(
        app.put_pins(&alice.client, &replacement).await,
        StatusCode::NO_CONTENT,
        "again",
    )
    .await;
    let after: PinsBody = json(app.get_pins(&alice.client).await).await;
    assert_eq!(after.sealed.unwrap().0, replacement.sealed.unwrap().0);
    let bobs: PinsBody = json(app.get_pins(&bob.client).await).await;
    assert!(bobs.sealed.is_none());
}

#[tokio::test]
async fn pins_need_a_session_a_body_and_a_reasonable_size() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let response = app.get_pins(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let body = PinsBody {
        sealed: Some(Base64(vec![1; 64])),
    };
    let response = app.put_pins(&app.anonymous, &body).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    for missing in [
        PinsBody { sealed: None },
        PinsBody {
            sealed: Some(Base64(Vec::new())),
        },
    ] {
        let response = app.put_pins(&alice.client, &missing).await;
        assert_eq!(
            error_message(response, StatusCode::BAD_REQUEST).await,
            "sealed pins are required"
        );
    }
    let huge = PinsBody {
        sealed: Some(Base64(vec![0; 256 * 1024])),
    };
    let response = app.put_pins(&alice.client, &huge).await;
    assert_eq!(
        error_message(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "request body is too large"
    );
    let stored: PinsBody = json(app.get_pins(&alice.client).await).await;
    assert!(stored.sealed.is_none());
}

#[tokio::test]
async fn every_role_keeps_its_own_pins() {
    let cast = Cast::new().await;
    for who in Who::ALL {
        let body = PinsBody {
            sealed: Some(Base64(format!("{who:?}'s sealed pins").into_bytes())),
        };
        let response = cast.app.put_pins(cast.client(who), &body).await;
        if who == Who::Anonymous {
            error_message(response, StatusCode::UNAUTHORIZED).await;
            continue;
        }
        expect_status(response, StatusCode::NO_CONTENT, &format!("{who:?}")).await;
        let stored: PinsBody = json(cast.app.get_pins(cast.client(who)).await).await;
        assert_eq!(stored.sealed.unwrap().0, body.sealed.unwrap().0, "{who:?}");
    }
}
