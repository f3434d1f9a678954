//! `/api/me/state`: each user's sealed client state, replaced only by an upload built on the
//! stored version (compare-and-swap); and what a client makes of a server that wipes it,
//! rolls it back or rolls back a room's log behind it (the client refuses with the exact
//! warning).

use client::state::reconcile;
use client::{ClientState, LocalCopy, RemoteState, StateKey, TrustWarning};
use common::api::{ClientStateBody, PutClientStateRequest};
use common::membership::{replay_bytes, LogAction, Role, RoomState};
use common::wire::Base64;
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::{expect_status, Cast, Who};
use crate::helpers::{error_message, json, now_ms, spawn_app, TestApp, TestUser};

fn body(base_version: u64, version: u64, sealed: &[u8]) -> PutClientStateRequest {
    PutClientStateRequest {
        base_version,
        version,
        sealed: Base64(sealed.to_vec()),
    }
}

/// Seals `state` as `user`'s client would and uploads it at its version on `base_version`.
async fn upload(app: &TestApp, user: &TestUser, base_version: u64, state: &ClientState) {
    let sealed = state.seal(&StateKey::derive(&user.secrets), &user.username, &mut OsRng);
    expect_status(
        app.put_client_state(&user.client, &body(base_version, state.version, &sealed))
            .await,
        StatusCode::NO_CONTENT,
        "upload",
    )
    .await;
}

/// What `user`'s client reads back from the server, as [`RemoteState`].
async fn fetch(app: &TestApp, user: &TestUser) -> RemoteState {
    let stored: ClientStateBody = json(app.get_client_state(&user.client).await).await;
    match stored.sealed {
        None => RemoteState::Missing,
        Some(sealed) => {
            match ClientState::open(&StateKey::derive(&user.secrets), &user.username, &sealed.0) {
                Ok(state) => RemoteState::Opened(state),
                Err(error) => RemoteState::Unreadable(error),
            }
        }
    }
}

#[tokio::test]
async fn the_state_round_trips_and_only_an_upload_on_the_stored_version_replaces_it() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let before: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert_eq!(before.version, 0);
    assert!(before.sealed.is_none());

    let mut state = ClientState {
        version: 1,
        ..ClientState::default()
    };
    state
        .pins
        .pin_first_use("bob", &bob.secrets.public_keys())
        .unwrap();
    upload(&app, &alice, 0, &state).await;
    let RemoteState::Opened(opened) = fetch(&app, &alice).await else {
        panic!("the state opens");
    };
    assert_eq!(opened, state);
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert_eq!(stored.version, 1);

    // A second browser that did not see version 1 builds on 0, and one that builds on a
    // version that is not stored, are both refused and change nothing.
    for (base, version) in [(0, 2), (2, 3), (5, 9)] {
        let response = app
            .put_client_state(&alice.client, &body(base, version, b"stale"))
            .await;
        error_message(response, StatusCode::CONFLICT).await;
    }
    let RemoteState::Opened(unchanged) = fetch(&app, &alice).await else {
        panic!("still opens");
    };
    assert_eq!(unchanged, state);

    state.version = 2;
    upload(&app, &alice, 1, &state).await;
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert_eq!(stored.version, 2);
    // Bob's state is his own.
    let bobs: ClientStateBody = json(app.get_client_state(&bob.client).await).await;
    assert!(bobs.sealed.is_none());
}

#[tokio::test]
async fn a_protocol_1_pins_blob_is_replaced_by_an_upload_on_version_0() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    sqlx::query(
        "INSERT INTO client_states (username, sealed, updated_at, version) \
         VALUES ('alice', $1, 0, 0)",
    )
    .bind(b"pins sealed under the wrap key".to_vec())
    .execute(&app.database().await)
    .await
    .unwrap();
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert_eq!(stored.version, 0);
    assert!(stored.sealed.is_some());
    let state = ClientState {
        version: 1,
        ..ClientState::default()
    };
    upload(&app, &alice, 0, &state).await;
    let RemoteState::Opened(opened) = fetch(&app, &alice).await else {
        panic!("the new state opens");
    };
    assert_eq!(opened, state);
}

#[tokio::test]
async fn the_state_needs_a_session_a_body_and_a_reasonable_size() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let response = app.get_client_state(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let response = app
        .put_client_state(&app.anonymous, &body(0, 1, &[1; 64]))
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let response = app.put_client_state(&alice.client, &body(0, 1, &[])).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "sealed client state is required"
    );
    for (base, version) in [(0, 0), (3, 3), (4, 2)] {
        let response = app
            .put_client_state(&alice.client, &body(base, version, b"x"))
            .await;
        assert_eq!(
            error_message(response, StatusCode::BAD_REQUEST).await,
            "client state version must be above base_version"
        );
    }
    let response = app
        .put_client_state(&alice.client, &body(0, u64::MAX, b"x"))
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "client state version is too large"
    );
    let response = app
        .put_client_state(&alice.client, &body(0, 1, &vec![0; 256 * 1024]))
        .await;
    assert_eq!(
        error_message(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "request body is too large"
    );
    // Malformed JSON and a missing field are refused with a clear 4xx.
    let response = alice
        .client
        .put(app.url("/api/me/state"))
        .header("content-type", "application/json")
        .body("{\"version\": 1, \"sealed\": ")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let response = alice
        .client
        .put(app.url("/api/me/state"))
        .json(&serde_json::json!({"version": 1, "sealed": "AAAA"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    assert!(stored.sealed.is_none());
}

#[tokio::test]
async fn every_role_keeps_its_own_state() {
    let cast = Cast::new().await;
    for who in Who::ALL {
        let sent = body(0, 1, format!("{who:?}'s sealed state").as_bytes());
        let response = cast.app.put_client_state(cast.client(who), &sent).await;
        if who == Who::Anonymous {
            error_message(response, StatusCode::UNAUTHORIZED).await;
            continue;
        }
        expect_status(response, StatusCode::NO_CONTENT, &format!("{who:?}")).await;
        let stored: ClientStateBody = json(cast.app.get_client_state(cast.client(who)).await).await;
        assert_eq!(stored.sealed.unwrap().0, sent.sealed.0, "{who:?}");
    }
}

/// Malicious server: the operator deletes the stored state, or puts back an older copy it
/// kept; a browser that holds its own copy says "pins rolled back" and keeps its own.
#[tokio::test]
async fn a_wiped_or_rolled_back_state_is_a_trust_warning() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut state = ClientState {
        version: 1,
        ..ClientState::default()
    };
    upload(&app, &alice, 0, &state).await;
    let database = app.database().await;
    let (old_sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT sealed FROM client_states WHERE username = 'alice'")
            .fetch_one(&database)
            .await
            .unwrap();
    state
        .pins
        .pin_first_use("bob", &bob.secrets.public_keys())
        .unwrap();
    state.pins.set_verified("bob", true);
    state.version = 2;
    upload(&app, &alice, 1, &state).await;
    // What alice's browser keeps: its copy, and that the server confirmed version 2.
    let local = || {
        Some(LocalCopy {
            state: state.clone(),
            confirmed_version: 2,
        })
    };

    // Rolled back: version 1, without bob, served again.
    sqlx::query("UPDATE client_states SET sealed = $1, version = 1 WHERE username = 'alice'")
        .bind(&old_sealed)
        .execute(&database)
        .await
        .unwrap();
    let reconciled = reconcile(local(), fetch(&app, &alice).await);
    assert_eq!(
        reconciled.warnings,
        vec![TrustWarning::PinsRolledBack {
            seen_version: 2,
            served_version: Some(1)
        }]
    );
    assert_eq!(reconciled.state, state, "bob stays pinned and verified");
    assert!(reconciled.upload);

    // Wiped.
    sqlx::query("DELETE FROM client_states WHERE username = 'alice'")
        .execute(&database)
        .await
        .unwrap();
    let reconciled = reconcile(local(), fetch(&app, &alice).await);
    assert_eq!(
        reconciled.warnings,
        vec![TrustWarning::PinsRolledBack {
            seen_version: 2,
            served_version: None
        }]
    );
    assert_eq!(reconciled.state, state);

    // Replaced by bytes that do not open: unreadable, and this browser's copy is kept.
    sqlx::query(
        "INSERT INTO client_states (username, sealed, updated_at, version) \
         VALUES ('alice', $1, 0, 9)",
    )
    .bind(vec![7u8; 120])
    .execute(&database)
    .await
    .unwrap();
    let reconciled = reconcile(local(), fetch(&app, &alice).await);
    assert_eq!(reconciled.warnings, vec![TrustWarning::StateUnreadable]);
    assert_eq!(reconciled.state, state);
    assert!(reconciled.hold_uploads && !reconciled.upload);
}

/// Malicious server: after alice's client accepted a log that removes carol, the operator
/// deletes that entry so carol looks like a member again; alice's client, starting from its
/// stored state (as after a reload), says "log rolled back" instead of writing to carol.
#[tokio::test]
async fn an_older_log_after_a_removal_is_a_rollback() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    let hex = room.room_id.to_hex();
    let removal = room
        .state
        .next_entry(
            "alice",
            now_ms(),
            LogAction::RemoveMember {
                username: "carol".to_owned(),
            },
        )
        .sign(&alice.secrets);
    expect_status(
        app.append_log(&alice.client, &hex, &removal).await,
        StatusCode::CREATED,
        "removal",
    )
    .await;

    let served = fetched_state(&app, &alice, &hex).await;
    assert!(served.member("carol").is_none());
    let mut state = ClientState::default();
    assert_eq!(state.check_log(&room.room_id, &served), Ok(()));
    assert!(state.remember_log(room.room_id, &served));

    let removal_seq = i64::try_from(served.length() - 1).unwrap();
    sqlx::query("DELETE FROM room_log WHERE room_id = $1 AND seq = $2")
        .bind(room.room_id.0.as_slice())
        .bind(removal_seq)
        .execute(&app.database().await)
        .await
        .unwrap();
    let rolled_back = fetched_state(&app, &alice, &hex).await;
    assert!(rolled_back.member("carol").is_some(), "carol is back");
    assert_eq!(
        state.check_log(&room.room_id, &rolled_back),
        Err(TrustWarning::LogRolledBack {
            room_id: room.room_id,
            seen_length: served.length(),
            served_length: served.length() - 1,
        })
    );
}

/// The log of `room` as `user`'s client fetches and replays it.
async fn fetched_state(app: &TestApp, user: &TestUser, room: &str) -> RoomState {
    let log: common::api::LogResponse = json(app.get_log(&user.client, room).await).await;
    let entries: Vec<Vec<u8>> = log.entries.into_iter().map(|entry| entry.0).collect();
    replay_bytes(&entries).expect("the served log replays")
}

#[tokio::test]
async fn an_upload_tells_the_users_other_connections_and_no_one_else() {
    use crate::ws_client::{event_within, next_event};
    use common::api::ServerEvent;
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut alices_other_browser = app.connect_ws(&alice).await;
    let mut bobs = app.connect_ws(&bob).await;
    let state = ClientState {
        version: 3,
        ..ClientState::default()
    };
    upload(&app, &alice, 0, &state).await;
    match next_event(&mut alices_other_browser).await {
        ServerEvent::ClientStateChanged { version } => assert_eq!(version, 3),
        other => panic!("expected the state change, got {other:?}"),
    }
    let stray = event_within(&mut bobs, std::time::Duration::from_millis(300)).await;
    assert!(stray.is_none(), "bob heard of alice's state: {stray:?}");
    // A refused upload tells no one.
    let refused = app
        .put_client_state(&alice.client, &body(0, 4, b"sealed"))
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let stray = event_within(
        &mut alices_other_browser,
        std::time::Duration::from_millis(300),
    )
    .await;
    assert!(stray.is_none(), "a refused upload was announced: {stray:?}");
}
