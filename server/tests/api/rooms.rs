//! Creating rooms, listing them, and reading and extending membership logs.

use common::api::{
    CreateRoomRequest, CreateRoomResponse, LogResponse, RoomListResponse, RoomSummary,
};
use common::identity::IdentitySecrets;
use common::membership::{replay_bytes, LogAction, Role};
use common::room_key::{create_room, RoomMetadata};
use common::wire::Base64;
use common::OsRng;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, now_ms, spawn_app, TestApp};

#[tokio::test]
async fn a_created_room_is_listed_and_its_log_replays() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let new_room = create_room(
        "alice",
        &alice.secrets,
        &RoomMetadata::named("book club"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let body = CreateRoomRequest {
        genesis: Base64(new_room.genesis.as_bytes().to_vec()),
        key_envelope: new_room.creator_envelope.clone(),
    };
    let response = app.create_room(&alice.client, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: CreateRoomResponse = json(response).await;
    assert_eq!(created.room_id, new_room.state.room_id());

    let list: RoomListResponse = json(app.list_rooms(&alice.client).await).await;
    assert_eq!(
        list.rooms,
        vec![RoomSummary {
            room_id: created.room_id,
            role: Role::Owner,
            epoch: 0,
            log_length: 1,
            rotation_pending: false,
        }]
    );

    let log: LogResponse = json(app.get_log(&alice.client, &created.room_id.to_hex()).await).await;
    let entries: Vec<Vec<u8>> = log.entries.into_iter().map(|entry| entry.0).collect();
    assert_eq!(replay_bytes(&entries).unwrap(), new_room.state);

    // Creating the same room again is a conflict.
    let response = app.create_room(&alice.client, &body).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "room already exists"
    );
}

#[tokio::test]
async fn rooms_are_listed_only_for_their_members_in_creation_order() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let first = app.create_test_room(&alice, "first").await;
    let mut second = app.create_test_room(&alice, "second").await;
    app.add_member(&mut second, &alice, &bob, Role::Admin).await;

    let alice_rooms: RoomListResponse = json(app.list_rooms(&alice.client).await).await;
    let ids: Vec<_> = alice_rooms.rooms.iter().map(|room| room.room_id).collect();
    assert_eq!(ids, vec![first.room_id, second.room_id]);
    let bob_rooms: RoomListResponse = json(app.list_rooms(&bob.client).await).await;
    assert_eq!(
        bob_rooms.rooms,
        vec![RoomSummary {
            room_id: second.room_id,
            role: Role::Admin,
            epoch: 0,
            log_length: 2,
            rotation_pending: false,
        }]
    );
    let response = app.list_rooms(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn a_genesis_signed_by_someone_else_is_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let new_room = create_room(
        "alice",
        &alice.secrets,
        &RoomMetadata::named("alice's"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let body = CreateRoomRequest {
        genesis: Base64(new_room.genesis.as_bytes().to_vec()),
        key_envelope: new_room.creator_envelope,
    };
    let response = app.create_room(&bob.client, &body).await;
    let message = error_message(response, StatusCode::FORBIDDEN).await;
    assert!(message.contains("logged-in user"), "{message}");
}

#[tokio::test]
async fn a_genesis_with_keys_other_than_the_registered_ones_is_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let impostor_keys = IdentitySecrets::generate(&mut OsRng);
    let new_room = create_room(
        "alice",
        &impostor_keys,
        &RoomMetadata::named("fake"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let body = CreateRoomRequest {
        genesis: Base64(new_room.genesis.as_bytes().to_vec()),
        key_envelope: new_room.creator_envelope,
    };
    let response = app.create_room(&alice.client, &body).await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("registered identity"), "{message}");
}

#[tokio::test]
async fn create_refuses_a_malformed_genesis_or_a_foreign_envelope() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = create_room(
        "alice",
        &alice.secrets,
        &RoomMetadata::named("one"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let other = create_room(
        "alice",
        &alice.secrets,
        &RoomMetadata::named("two"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();

    let garbage = CreateRoomRequest {
        genesis: Base64(vec![1, 2, 3]),
        key_envelope: room.creator_envelope.clone(),
    };
    let response = app.create_room(&alice.client, &garbage).await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(message.starts_with("malformed genesis entry"), "{message}");

    let mismatched = CreateRoomRequest {
        genesis: Base64(room.genesis.as_bytes().to_vec()),
        key_envelope: other.creator_envelope,
    };
    let response = app.create_room(&alice.client, &mismatched).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "key envelope is for another room"
    );

    let mut forged = room.creator_envelope.clone();
    forged.signature.0[0] ^= 1;
    let bad_signature = CreateRoomRequest {
        genesis: Base64(room.genesis.as_bytes().to_vec()),
        key_envelope: forged,
    };
    let response = app.create_room(&alice.client, &bad_signature).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "distributor signature does not verify"
    );
    let response = app.create_room(&app.anonymous, &garbage).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn the_log_is_hidden_from_non_members_and_anonymous_users() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let eve = app.register_user("eve").await;
    let room = app.create_test_room(&alice, "private").await;
    let response = app.get_log(&eve.client, &room.hex()).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app.get_log(&app.anonymous, &room.hex()).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn unknown_and_malformed_room_ids_are_404_and_400() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let unknown = "ab".repeat(32);
    let response = app.get_log(&alice.client, &unknown).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    for malformed in ["xyz", "abcd", &"g".repeat(64), &"ab".repeat(33)] {
        let response = app.get_log(&alice.client, malformed).await;
        assert_eq!(
            error_message(response, StatusCode::BAD_REQUEST).await,
            "malformed room id",
            "{malformed}"
        );
    }
}

#[tokio::test]
async fn an_admin_adds_a_member_and_the_new_member_reads_the_log() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Admin).await;
    // Bob, an admin, may add members too.
    app.add_member(&mut room, &bob, &carol, Role::Member).await;
    let log: LogResponse = json(app.get_log(&carol.client, &room.hex()).await).await;
    let entries: Vec<Vec<u8>> = log.entries.into_iter().map(|entry| entry.0).collect();
    let state = replay_bytes(&entries).unwrap();
    assert_eq!(state, room.state);
    assert_eq!(state.member("carol").unwrap().role, Role::Member);
}

#[tokio::test]
async fn a_plain_member_may_not_add_anyone() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let entry = TestApp::add_member_entry(&room, &bob, &carol, Role::Member);
    let response = app.append_log(&bob.client, &room.hex(), &entry).await;
    let message = error_message(response, StatusCode::FORBIDDEN).await;
    assert!(message.contains("may not add a member"), "{message}");
}

#[tokio::test]
async fn entries_with_a_broken_prev_hash_or_a_stale_seq_are_conflicts() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;

    let mut broken = room.state.next_entry(
        "alice",
        now_ms(),
        LogAction::AddMember {
            username: "bob".to_owned(),
            keys: bob.secrets.public_keys(),
            role: Role::Member,
        },
    );
    broken.prev = [9u8; 32];
    let response = app
        .append_log(&alice.client, &room.hex(), &broken.sign(&alice.secrets))
        .await;
    let message = error_message(response, StatusCode::CONFLICT).await;
    assert!(message.contains("prev hash"), "{message}");

    // An entry built on the genesis, sent after another entry took its place.
    let stale = TestApp::add_member_entry(&room, &alice, &carol, Role::Member);
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let response = app.append_log(&alice.client, &room.hex(), &stale).await;
    let message = error_message(response, StatusCode::CONFLICT).await;
    assert!(
        message.contains("expected sequence number 2, found 1"),
        "{message}"
    );

    // Adding someone twice is a conflict as well.
    let twice = TestApp::add_member_entry(&room, &alice, &bob, Role::Member);
    let response = app.append_log(&alice.client, &room.hex(), &twice).await;
    let message = error_message(response, StatusCode::CONFLICT).await;
    assert!(message.contains("already a member"), "{message}");
}

#[tokio::test]
async fn an_entry_with_keys_other_than_the_registered_ones_is_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    app.register_user("bob").await;
    let room = app.create_test_room(&alice, "team").await;
    let server_chosen_keys = IdentitySecrets::generate(&mut OsRng).public_keys();
    let entry = room
        .state
        .next_entry(
            "alice",
            now_ms(),
            LogAction::AddMember {
                username: "bob".to_owned(),
                keys: server_chosen_keys,
                role: Role::Member,
            },
        )
        .sign(&alice.secrets);
    let response = app.append_log(&alice.client, &room.hex(), &entry).await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("registered identity of bob"), "{message}");

    let ghost = room
        .state
        .next_entry(
            "alice",
            now_ms(),
            LogAction::AddMember {
                username: "ghost".to_owned(),
                keys: server_chosen_keys,
                role: Role::Member,
            },
        )
        .sign(&alice.secrets);
    let response = app.append_log(&alice.client, &room.hex(), &ghost).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "user ghost does not exist"
    );
}

#[tokio::test]
async fn entries_by_someone_else_or_badly_signed_or_from_outsiders_are_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let eve = app.register_user("eve").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Admin).await;
    let carol = app.register_user("carol").await;

    // Bob sends an entry that names Alice as its author.
    let as_alice = TestApp::add_member_entry(&room, &alice, &carol, Role::Member);
    let response = app.append_log(&bob.client, &room.hex(), &as_alice).await;
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "log entries must be signed by the logged-in user"
    );

    // Bob names himself but signs with someone else's key.
    let forged = room
        .state
        .next_entry(
            "bob",
            now_ms(),
            LogAction::AddMember {
                username: "carol".to_owned(),
                keys: carol.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&eve.secrets);
    let response = app.append_log(&bob.client, &room.hex(), &forged).await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(
        message.contains("signature of bob does not verify"),
        "{message}"
    );

    // Eve is not a member: the room does not exist for her.
    let by_eve = TestApp::add_member_entry(&room, &eve, &carol, Role::Member);
    let response = app.append_log(&eve.client, &room.hex(), &by_eve).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );

    let response = app.append_log(&app.anonymous, &room.hex(), &by_eve).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );

    // An entry for another room sent to this one.
    let other = app.create_test_room(&bob, "other").await;
    let wrong_room = TestApp::add_member_entry(&other, &bob, &carol, Role::Member);
    let response = app.append_log(&bob.client, &room.hex(), &wrong_room).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "log entry is for another room"
    );
}
