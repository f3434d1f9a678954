//! Asking the other members for a missing epoch key, and a member's client answering.

use common::api::ServerEvent;
use common::room_key::KeyEnvelope;
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::{expect_status, Cast, Who, QUIET};
use crate::helpers::error_message;
use crate::ws_client::{event_within, next_event};

#[tokio::test]
async fn every_role_against_the_key_request_endpoint() {
    let cast = Cast::new().await;
    for who in Who::ALL {
        let response = cast.app.request_key(cast.client(who), &cast.hex(), 0).await;
        match who {
            Who::Owner | Who::Admin | Who::Member => {
                expect_status(response, StatusCode::ACCEPTED, &format!("{who:?}")).await;
            }
            Who::Pending | Who::Removed | Who::Banned => {
                let message = error_message(response, StatusCode::NOT_FOUND).await;
                assert_eq!(message, "room not found", "{who:?}");
            }
            Who::Anonymous => {
                error_message(response, StatusCode::UNAUTHORIZED).await;
            }
        }
    }
    let response = cast
        .app
        .request_key(&cast.carol.client, &cast.hex(), 5)
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "unknown epoch 5"
    );
}

#[tokio::test]
async fn a_key_request_reaches_the_other_members_and_one_answers() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let mut bob_socket = app.connect_ws(&cast.bob).await;
    let mut carol_socket = app.connect_ws(&cast.carol).await;
    let mut erin_socket = app.connect_ws(&cast.erin).await;
    let response = app.request_key(&cast.carol.client, &cast.hex(), 0).await;
    expect_status(response, StatusCode::ACCEPTED, "carol asks for epoch 0").await;
    let (username, epoch) = match next_event(&mut bob_socket).await {
        ServerEvent::KeyRequested {
            room_id,
            username,
            epoch,
        } => {
            assert_eq!(room_id, cast.room.room_id);
            (username, epoch)
        }
        other => panic!("expected a key request, got {other:?}"),
    };
    assert_eq!((username.as_str(), epoch), ("carol", 0));
    for (name, socket) in [("carol", &mut carol_socket), ("erin", &mut erin_socket)] {
        let event = event_within(socket, QUIET).await;
        assert!(event.is_none(), "{name} was sent {event:?}");
    }

    // Bob's client holds the key and seals it to carol again; the envelope reaches her.
    let envelope = KeyEnvelope::seal(
        &cast.room.state,
        epoch,
        &cast.room.keys[&epoch],
        &username,
        "bob",
        &cast.bob.secrets,
        &mut OsRng,
    )
    .unwrap();
    let response = app
        .put_envelopes(&cast.bob.client, &cast.hex(), vec![envelope])
        .await;
    expect_status(response, StatusCode::NO_CONTENT, "bob answers").await;
    match next_event(&mut carol_socket).await {
        ServerEvent::KeyEnvelope { envelope } => {
            let key = envelope
                .open(&cast.room.state, "carol", &cast.carol.secrets)
                .unwrap();
            assert_eq!(key, cast.room.keys[&0]);
        }
        other => panic!("expected an envelope, got {other:?}"),
    }
}
