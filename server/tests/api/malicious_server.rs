//! A malicious server (or anyone who can write its database): what it can forge, and how a
//! client built on `common` refuses it. Each test changes the database directly, as the
//! operator could, then plays the client against the real API.

use std::collections::BTreeMap;

use client::{ClientState, StateKey};
use common::api::{ClientStateBody, EnvelopesResponse, LogResponse, PutClientStateRequest};
use common::identity::{IdentitySecrets, PublicIdentity};
use common::membership::{replay_bytes, LogAction, LogErrorKind, Role};
use common::room_key::{envelopes_for_member, EnvelopeError, KeyEnvelope, RoomKey};
use common::trust::{PinCheck, TrustError};
use common::wire::Base64;
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::expect_status;
use crate::helpers::{json, now_ms, spawn_app, TestApp, TestUser};

/// The log as a client fetches it, one byte vector per entry.
async fn fetched_log(app: &TestApp, user: &TestUser, room: &str) -> Vec<Vec<u8>> {
    let log: LogResponse = json(app.get_log(&user.client, room).await).await;
    log.entries.into_iter().map(|entry| entry.0).collect()
}

#[tokio::test]
async fn a_forged_log_entry_is_named_by_the_replay_and_gets_no_key() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mallory = app.register_user("mallory").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let forged_index = room.state.length();

    // Mallory's entry, in alice's name, adding mallory: signed by mallory, with no signature
    // at all, or not an entry.
    let add_mallory = room.state.next_entry(
        "alice",
        now_ms(),
        LogAction::AddMember {
            username: "mallory".to_owned(),
            keys: mallory.secrets.public_keys(),
            role: Role::Admin,
        },
    );
    let signed_by_mallory = add_mallory
        .clone()
        .sign(&mallory.secrets)
        .as_bytes()
        .to_vec();
    let mut unsigned = add_mallory.to_bytes();
    unsigned.extend_from_slice(&[0u8; 64]);
    let garbage = b"trust me, mallory is a member".to_vec();

    let database = app.database().await;
    sqlx::query("INSERT INTO room_log (room_id, seq, entry) VALUES ($1, $2, $3)")
        .bind(room.room_id.0.as_slice())
        .bind(i64::try_from(forged_index).unwrap())
        .bind(&signed_by_mallory)
        .execute(&database)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO room_members (room_id, username, role) VALUES ($1, 'mallory', 'admin')",
    )
    .bind(room.room_id.0.as_slice())
    .execute(&database)
    .await
    .unwrap();

    let forgeries = [
        (signed_by_mallory, "bad signature"),
        (unsigned, "bad signature"),
        (garbage, "malformed"),
    ];
    for (forgery, expected) in forgeries {
        sqlx::query("UPDATE room_log SET entry = $1 WHERE room_id = $2 AND seq = $3")
            .bind(&forgery)
            .bind(room.room_id.0.as_slice())
            .bind(i64::try_from(forged_index).unwrap())
            .execute(&database)
            .await
            .unwrap();
        // Bob's client fetches the log through the API and replays it.
        let entries = fetched_log(&app, &bob, &room.hex()).await;
        assert_eq!(entries.len() as u64, forged_index + 1);
        let error = replay_bytes(&entries).unwrap_err();
        assert_eq!(error.index, forged_index);
        let as_expected = match expected {
            "bad signature" => error.kind == LogErrorKind::BadSignature("alice".to_owned()),
            _ => matches!(error.kind, LogErrorKind::Malformed(_)),
        };
        assert!(as_expected, "expected {expected}, got {error}");
        assert!(
            error.to_string().contains(&format!("entry {forged_index}")),
            "{error}"
        );

        // The last valid state does not have mallory: no key is sealed to her.
        let valid = usize::try_from(forged_index).unwrap();
        let state = replay_bytes(&entries[..valid]).unwrap();
        assert_eq!(state, room.state);
        let sealed = KeyEnvelope::seal(
            &state,
            0,
            &room.key,
            "mallory",
            "bob",
            &bob.secrets,
            &mut OsRng,
        );
        assert_eq!(
            sealed.unwrap_err(),
            EnvelopeError::RecipientNotMember("mallory".to_owned())
        );
        let keys = BTreeMap::from([(0, room.key.clone())]);
        let handed_out =
            envelopes_for_member(&state, &keys, "mallory", "bob", &bob.secrets, &mut OsRng);
        assert_eq!(
            handed_out.unwrap_err(),
            EnvelopeError::RecipientNotMember("mallory".to_owned())
        );
    }
}

#[tokio::test]
async fn swapped_directory_keys_are_refused_by_the_pins() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let state_key = StateKey::derive(&alice.secrets);

    // Alice's client meets bob, pins his keys and stores its sealed state on the server.
    let real: PublicIdentity = json(app.user_identity(&alice.client, "bob").await).await;
    assert_eq!(real.keys(), &bob.secrets.public_keys());
    let mut state = ClientState {
        version: 1,
        ..ClientState::default()
    };
    assert_eq!(state.pins.pin_first_use("bob", real.keys()), Ok(true));
    let body = PutClientStateRequest {
        base_version: 0,
        version: 1,
        sealed: Base64(state.seal(&state_key, "alice", &mut OsRng)),
    };
    expect_status(
        app.put_client_state(&alice.client, &body).await,
        StatusCode::NO_CONTENT,
        "client state",
    )
    .await;

    // The operator replaces bob's keys with an impostor's, validly self-signed as "bob".
    let impostor = IdentitySecrets::generate(&mut OsRng);
    let fake = impostor.public_identity("bob");
    sqlx::query(
        "UPDATE users SET x25519_public = $1, ed25519_public = $2, identity_signature = $3 \
         WHERE username = 'bob'",
    )
    .bind(fake.keys().x25519.as_bytes().as_slice())
    .bind(fake.keys().ed25519.as_bytes().as_slice())
    .bind(fake.signature().to_bytes().as_slice())
    .execute(&app.database().await)
    .await
    .unwrap();

    // Alice's client, in another browser, loads its state and asks the directory for bob.
    let stored: ClientStateBody = json(app.get_client_state(&alice.client).await).await;
    let mut pins = ClientState::open(&state_key, "alice", &stored.sealed.unwrap().0)
        .unwrap()
        .pins;
    let served: PublicIdentity = json(app.user_identity(&alice.client, "bob").await).await;
    assert_eq!(served, fake, "the server serves the impostor");
    assert!(matches!(
        pins.check("bob", served.keys()),
        PinCheck::Changed { .. }
    ));
    assert_eq!(pins.get("bob").unwrap().keys, bob.secrets.public_keys());
    assert_eq!(
        pins.pin_first_use("bob", served.keys()),
        Err(TrustError::KeyChanged("bob".to_owned()))
    );
    // Still refused on a second look: nothing is sealed to the impostor until alice accepts.
    assert!(pins.pin_first_use("bob", served.keys()).is_err());
    pins.accept_new_keys("bob", served.keys());
    assert_eq!(pins.pin_first_use("bob", served.keys()), Ok(false));
}

#[tokio::test]
async fn an_envelope_with_the_wrong_key_is_stored_but_does_not_open() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    app.add_member(&mut room, &alice, &carol, Role::Member)
        .await;

    // Bob seals a key that is not epoch 0's: the server cannot tell, and stores it.
    let wrong_key = RoomKey::generate(&mut OsRng);
    let wrong = KeyEnvelope::seal(
        &room.state,
        0,
        &wrong_key,
        "carol",
        "bob",
        &bob.secrets,
        &mut OsRng,
    )
    .unwrap();
    let response = app
        .put_envelopes(&bob.client, &room.hex(), vec![wrong])
        .await;
    expect_status(response, StatusCode::NO_CONTENT, "the server stores it").await;

    let envelopes: EnvelopesResponse =
        json(app.get_envelopes(&carol.client, &room.hex()).await).await;
    let mut opened = BTreeMap::new();
    for envelope in &envelopes.envelopes {
        opened.insert(
            envelope.distributor.clone(),
            envelope.open(&room.state, "carol", &carol.secrets),
        );
    }
    assert_eq!(opened["bob"], Err(EnvelopeError::CommitmentMismatch));
    assert_eq!(opened["alice"], Ok(room.key.clone()));
}
