//! Uploading and fetching key envelopes.

use common::api::EnvelopesResponse;
use common::membership::Role;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, spawn_app, TestApp};

#[tokio::test]
async fn each_member_fetches_only_their_own_envelopes() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Admin).await;
    app.add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    // Bob also seals the key to Carol, as a second distributor.
    let from_bob = TestApp::envelope(&room, &bob, &carol);
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![from_bob.clone()])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let alice_envelopes: EnvelopesResponse =
        json(app.get_envelopes(&alice.client, &room.hex()).await).await;
    assert_eq!(alice_envelopes.envelopes.len(), 1);
    assert!(alice_envelopes
        .envelopes
        .iter()
        .all(|envelope| envelope.recipient == "alice"));

    let carol_envelopes: EnvelopesResponse =
        json(app.get_envelopes(&carol.client, &room.hex()).await).await;
    let distributors: Vec<_> = carol_envelopes
        .envelopes
        .iter()
        .map(|envelope| envelope.distributor.as_str())
        .collect();
    assert_eq!(distributors, ["alice", "bob"]);
    // Each envelope opens for Carol to the room's key.
    for envelope in &carol_envelopes.envelopes {
        let key = envelope.open(&room.state, "carol", &carol.secrets).unwrap();
        assert_eq!(key, room.key);
    }
}

#[tokio::test]
async fn uploading_the_same_envelope_twice_is_harmless() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let again = TestApp::envelope(&room, &alice, &bob);
    let response = app
        .put_envelopes(&alice.client, &room.hex(), vec![again.clone(), again])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let bob_envelopes: EnvelopesResponse =
        json(app.get_envelopes(&bob.client, &room.hex()).await).await;
    assert_eq!(bob_envelopes.envelopes.len(), 1);
}

#[tokio::test]
async fn non_members_can_neither_upload_nor_fetch_envelopes() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let eve = app.register_user("eve").await;
    let room = app.create_test_room(&alice, "team").await;
    let envelope = TestApp::envelope(&room, &alice, &alice);
    let response = app
        .put_envelopes(&eve.client, &room.hex(), vec![envelope.clone()])
        .await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app.get_envelopes(&eve.client, &room.hex()).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app.get_envelopes(&app.anonymous, &room.hex()).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let response = app
        .put_envelopes(&app.anonymous, &room.hex(), vec![envelope])
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn envelopes_must_come_from_the_caller_and_verify() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;

    // Bob uploads an envelope that Alice distributed.
    let by_alice = TestApp::envelope(&room, &alice, &bob);
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![by_alice])
        .await;
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "envelopes must be distributed by the logged-in user"
    );

    let mut forged = TestApp::envelope(&room, &bob, &alice);
    forged.signature.0[5] ^= 1;
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![forged])
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "distributor signature does not verify"
    );

    let mut future_epoch = TestApp::envelope(&room, &bob, &alice);
    future_epoch.epoch = 5;
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![future_epoch])
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "key envelope names unknown epoch 5"
    );

    let other = app.create_test_room(&bob, "other").await;
    let wrong_room = TestApp::envelope(&other, &bob, &bob);
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![wrong_room])
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "key envelope is for another room"
    );
}
