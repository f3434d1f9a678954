//! A malicious server that shows people what it likes: another account's wrapped identity
//! or published keys, a room it made up with an impostor in it, and two members who are
//! shown different logs. Each test edits the database as the operator could, then plays the
//! client (the `common` and `client` checks a browser runs) against the real API, and
//! asserts the exact refusal or warning.

use client::{ClientState, TrustWarning};
use common::account::{
    check_published_identity, derive_account_keys, unwrap_identity, AccountError,
};
use common::api::{LogResponse, MeResponse, MessagesResponse, RoomListResponse};
use common::identity::IdentitySecrets;
use common::membership::{invite_token_hash, replay_bytes, LogAction, Role, RoomState};
use common::message::open_message;
use common::trust::{PinCheck, Pins};
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::expect_status;
use crate::helpers::{json, now_ms, spawn_app, TestApp, TestUser, TEST_KDF};

/// The log of `room` as `user`'s client fetches and replays it.
async fn replayed_log(app: &TestApp, user: &TestUser, room: &str) -> RoomState {
    let log: LogResponse = json(app.get_log(&user.client, room).await).await;
    let entries: Vec<Vec<u8>> = log.entries.into_iter().map(|entry| entry.0).collect();
    replay_bytes(&entries).expect("the served log replays")
}

/// What `user`'s client unwraps at log-in: the identity secrets from `/api/me`, checked
/// against the keys the server publishes for the account.
async fn unlock(app: &TestApp, user: &TestUser) -> Result<IdentitySecrets, AccountError> {
    let me: MeResponse = json(app.me(&user.client).await).await;
    let keys = derive_account_keys(&user.password, &me.salt.0, &me.kdf).expect("keys derive");
    let secrets = unwrap_identity(&keys.wrap_key, &user.username, &me.wrapped_identity.0)?;
    check_published_identity(&secrets, &me.identity)?;
    Ok(secrets)
}

#[tokio::test]
async fn a_swapped_wrapped_bundle_or_published_identity_is_refused_at_unlock() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    assert_eq!(
        unlock(&app, &alice)
            .await
            .expect("alice unlocks")
            .public_keys(),
        alice.secrets.public_keys()
    );
    let database = app.database().await;

    // The operator serves alice bob's wrapped identity: it does not open under her key.
    sqlx::query(
        "UPDATE users SET wrapped_identity = \
         (SELECT wrapped_identity FROM users WHERE username = 'bob') WHERE username = 'alice'",
    )
    .execute(&database)
    .await
    .unwrap();
    assert_eq!(
        unlock(&app, &alice).await.err(),
        Some(AccountError::WrongKeyOrTampered)
    );

    // Bob's bundle, sealed under alice's key (as a server that once saw her wrap key could
    // not do, but a client bug might): it opens and names bob, and is refused.
    let keys = derive_account_keys(&alice.password, &[7; 16], &TEST_KDF).expect("keys");
    let renamed = common::account::wrap_identity(&keys.wrap_key, "bob", &bob.secrets, &mut OsRng);
    sqlx::query("UPDATE users SET wrapped_identity = $1 WHERE username = 'alice'")
        .bind(&renamed)
        .execute(&database)
        .await
        .unwrap();
    assert_eq!(
        unlock(&app, &alice).await.err(),
        Some(AccountError::BundleForAnotherUser)
    );

    // Her own bundle back, but other keys published as hers, self-signed under her name by
    // the operator: the secrets she unwraps do not match what everyone else is shown.
    let own = common::account::wrap_identity(&keys.wrap_key, "alice", &alice.secrets, &mut OsRng);
    sqlx::query("UPDATE users SET wrapped_identity = $1 WHERE username = 'alice'")
        .bind(&own)
        .execute(&database)
        .await
        .unwrap();
    unlock(&app, &alice).await.expect("her own bundle opens");
    let impostor = IdentitySecrets::generate(&mut OsRng).public_identity("alice");
    sqlx::query(
        "UPDATE users SET x25519_public = $1, ed25519_public = $2, identity_signature = $3 \
         WHERE username = 'alice'",
    )
    .bind(impostor.keys().x25519.as_bytes().as_slice())
    .bind(impostor.keys().ed25519.as_bytes().as_slice())
    .bind(impostor.signature().to_bytes().as_slice())
    .execute(&database)
    .await
    .unwrap();
    assert_eq!(
        unlock(&app, &alice).await.err(),
        Some(AccountError::PublicKeyMismatch)
    );
}

#[tokio::test]
async fn a_room_the_server_made_up_with_an_impostor_raises_a_key_change() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mallory = app.register_user("mallory").await;
    // alice wrote to bob before: her client pinned his keys.
    let mut alice_state = ClientState::default();
    alice_state
        .pins
        .pin_first_use("bob", &bob.secrets.public_keys())
        .expect("first pin");

    // The operator, through an account of its own, makes a room with alice in it, and puts
    // an impostor in it under bob's name. The API refuses keys bob never registered...
    let mut room = app.create_test_room(&mallory, "bob's group").await;
    app.add_member(&mut room, &mallory, &alice, Role::Member)
        .await;
    let impostor = IdentitySecrets::generate(&mut OsRng);
    let add_impostor = room.entry(
        &mallory,
        LogAction::AddMember {
            username: "bob".to_owned(),
            keys: impostor.public_keys(),
            role: Role::Admin,
        },
    );
    let response = app
        .append_log(&mallory.client, &room.hex(), &add_impostor)
        .await;
    expect_status(response, StatusCode::BAD_REQUEST, "the impostor's add").await;
    // ...so the operator writes the entry into the database itself.
    let database = app.database().await;
    sqlx::query("INSERT INTO room_log (room_id, seq, entry) VALUES ($1, $2, $3)")
        .bind(room.room_id.0.as_slice())
        .bind(i64::try_from(room.state.length()).unwrap())
        .bind(add_impostor.as_bytes())
        .execute(&database)
        .await
        .unwrap();
    sqlx::query("INSERT INTO room_members (room_id, username, role) VALUES ($1, 'bob', 'admin')")
        .bind(room.room_id.0.as_slice())
        .execute(&database)
        .await
        .unwrap();

    // alice's client sees a room whose log is valid (mallory signed it) and records her own
    // keys, but names a "bob" whose keys differ from her pin: a key change, never a pin.
    let rooms: RoomListResponse = json(app.list_rooms(&alice.client).await).await;
    assert!(rooms
        .rooms
        .iter()
        .any(|summary| summary.room_id == room.room_id));
    let state = replayed_log(&app, &alice, &room.hex()).await;
    ClientState::check_own_keys(&state, "alice", &alice.secrets.public_keys())
        .expect("alice's own keys are the ones she has");
    let claimed = state.member("bob").expect("the log names a bob").keys;
    assert!(matches!(
        alice_state.pins.check("bob", &claimed),
        PinCheck::Changed { pinned } if *pinned == bob.secrets.public_keys()
    ));
    // A browser that never met bob sees a first contact: nothing to compare with (it pins
    // nobody from a room sync, only when the user acts).
    assert_eq!(Pins::new().check("bob", &claimed), PinCheck::New);
}

#[tokio::test]
async fn two_members_shown_different_logs_find_out_at_the_next_message() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Admin).await;
    let position = room.state.length();
    let before = room.state.clone();

    // alice and bob each append an invite at the same position. The server stores alice's
    // and keeps bob's to show him (here: swaps it in after alice has seen hers).
    let alices_invite = room.entry(
        &alice,
        LogAction::Invite {
            token_hash: invite_token_hash(b"alice's invite"),
            expires_at_ms: now_ms() + 60_000,
            max_uses: 1,
        },
    );
    let bobs_invite = before
        .next_entry(
            "bob",
            now_ms(),
            LogAction::Invite {
                token_hash: invite_token_hash(b"bob's invite"),
                expires_at_ms: now_ms() + 60_000,
                max_uses: 1,
            },
        )
        .sign(&bob.secrets);
    let response = app
        .append_log(&alice.client, &room.hex(), &alices_invite)
        .await;
    expect_status(response, StatusCode::CREATED, "alice's invite").await;
    room.state.apply(&alices_invite).expect("applies");
    let mut alice_state = ClientState::default();
    alice_state.remember_log(room.room_id, &room.state);
    // alice writes, naming the log she accepted.
    let body = TestApp::sealed_text(&room, &alice, 1, "written at alice's log");
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    expect_status(response, StatusCode::CREATED, "alice posts").await;

    let database = app.database().await;
    sqlx::query("UPDATE room_log SET entry = $1 WHERE room_id = $2 AND seq = $3")
        .bind(bobs_invite.as_bytes())
        .bind(room.room_id.0.as_slice())
        .bind(i64::try_from(position).unwrap())
        .execute(&database)
        .await
        .unwrap();

    // bob's log replays (every entry is validly signed), but alice's message names another
    // entry at that position: log forked.
    let bobs_view = replayed_log(&app, &bob, &room.hex()).await;
    let page: MessagesResponse = json(app.get_messages(&bob.client, &room.hex(), "").await).await;
    let stored = page.messages.last().expect("alice's message");
    let inner = open_message(&stored.sealed(), &stored.sender, &room.key, &bobs_view)
        .expect("the message itself is authentic");
    assert_eq!(
        client::chains::check_log_head(&inner, &bobs_view),
        Err(TrustWarning::LogForked {
            room_id: room.room_id,
            position
        })
    );
    // alice, fetching the log again, finds another entry where hers was: log forked too.
    let alices_view = replayed_log(&app, &alice, &room.hex()).await;
    assert_eq!(
        alice_state.check_log(&room.room_id, &alices_view),
        Err(TrustWarning::LogForked {
            room_id: room.room_id,
            position
        })
    );
}
