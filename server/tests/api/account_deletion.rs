//! Deleting an account: re-authentication, every row of the user leaving every table, the
//! user's rooms marked for a key rotation, their sessions and sockets ended, and other
//! people's history kept.

use std::collections::BTreeSet;

use common::api::{DeleteAccountRequest, LoginResponse, PutClientStateRequest, RoomListResponse};
use common::membership::{LogAction, Role, RoomPolicy};
use common::wire::{Base64, Base64Array};
use reqwest::StatusCode;
use sqlx::AnyPool;

use crate::cast::{expect_status, TOKEN};
use crate::helpers::{client_with_jar, error_message, json, now_ms, spawn_app, TestApp, TestRoom};
use crate::security_client::{assert_session_ended, HOME_IP};

/// Every (table, column) of the schema whose column names a user as `username` or
/// `recipient`.
async fn user_columns(app: &TestApp) -> BTreeSet<(String, String)> {
    app.columns()
        .await
        .into_iter()
        .filter(|(_, column)| column == "username" || column == "recipient")
        .collect()
}

async fn count(database: &AnyPool, table: &str, column: &str, value: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"))
        .bind(value)
        .fetch_one(database)
        .await
        .unwrap()
}

async fn rotation_pending(app: &TestApp, user: &crate::helpers::TestUser, room: &TestRoom) -> bool {
    let list: RoomListResponse = json(app.list_rooms(&user.client).await).await;
    list.rooms
        .iter()
        .find(|summary| summary.room_id == room.room_id)
        .expect("the room is listed")
        .rotation_pending
}

fn policy_change() -> LogAction {
    LogAction::SetPolicy {
        policy: RoomPolicy {
            messages_per_minute: 30,
            ..RoomPolicy::default()
        },
    }
}

#[tokio::test]
async fn deleting_an_account_removes_every_row_of_the_user() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    // bob is a member of alice's room (an envelope to him) and posts there.
    let mut team = app.create_test_room(&alice, "team").await;
    app.add_member(&mut team, &alice, &bob, Role::Member).await;
    let body = TestApp::sealed_text(&team, &bob, 1, "my last words here");
    let response = app.post_message(&bob.client, &team.hex(), &body).await;
    expect_status(response, StatusCode::CREATED, "bob posts").await;
    // bob owns a room with alice in it (an envelope from him).
    let mut own = app.create_test_room(&bob, "bob's").await;
    app.add_member(&mut own, &bob, &alice, Role::Member).await;
    // bob waits to join carol's room.
    let mut carols = app.create_test_room(&carol, "carol's").await;
    app.publish_invite(&mut carols, &carol, TOKEN, now_ms() + 3_600_000, 5)
        .await;
    let response = app.request_to_join(&bob.client, &carols.hex(), TOKEN).await;
    expect_status(response, StatusCode::ACCEPTED, "bob asks to join").await;
    // Pins, TOTP with recovery codes, trusted networks, login history, a pending login.
    let state = PutClientStateRequest {
        base_version: 0,
        version: 1,
        sealed: Base64(b"bob's client state".to_vec()),
    };
    app.put_client_state(&bob.client, &state).await;
    let (_, recovery_codes) = app.enable_totp(&bob).await;
    let networks = common::api::TrustedNetworksRequest {
        networks: vec!["127.0.0.0/8".to_owned()],
        auth_key: Base64Array(bob.auth_key),
        totp_code: Some(recovery_codes[0].clone()),
    };
    let response = app.set_trusted_networks(&bob.client, &networks).await;
    expect_status(response, StatusCode::NO_CONTENT, "trusted networks").await;
    let mut wrong_key = bob.auth_key;
    wrong_key[0] ^= 1;
    app.login_from(&app.anonymous, "bob", wrong_key, HOME_IP)
        .await;
    let pending: LoginResponse = json(
        app.login_from(&app.anonymous, "bob", bob.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(pending.totp_required);
    let mut bob_socket = app.connect_ws(&bob).await;

    let database = app.database().await;
    let columns = user_columns(&app).await;
    let expected: BTreeSet<(String, String)> = [
        ("join_requests", "username"),
        ("key_envelopes", "recipient"),
        ("known_networks", "username"),
        ("login_challenges", "username"),
        ("login_events", "username"),
        ("recovery_codes", "username"),
        ("room_members", "username"),
        ("sessions", "username"),
        ("trusted_networks", "username"),
        ("client_states", "username"),
        ("user_totp", "username"),
        ("users", "username"),
    ]
    .map(|(table, column)| (table.to_owned(), column.to_owned()))
    .into();
    assert_eq!(
        columns, expected,
        "a new table names users: delete its rows too"
    );
    // The tables of second factors stay in the chat database only for older data (moved
    // into the second-factor store at startup): they are empty here.
    let old_factor_tables = ["login_challenges", "recovery_codes", "user_totp"];
    for (table, column) in &columns {
        let rows = count(&database, table, column, "bob").await;
        if old_factor_tables.contains(&table.as_str()) {
            assert_eq!(rows, 0, "{table} of the chat database holds a row of bob");
        } else {
            assert!(rows > 0, "{table} holds no row of bob before the deletion");
        }
    }
    // TOTP, ten recovery codes less the one spent, and the pending login.
    assert_eq!(app.factor_rows("bob").await, 1 + 9 + 1);

    // Re-authentication: the key, then a code.
    let mut request = DeleteAccountRequest {
        auth_key: Base64Array(wrong_key),
        totp_code: Some(recovery_codes[1].clone()),
    };
    let response = app.delete_account(&bob.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    request.auth_key = Base64Array(bob.auth_key);
    request.totp_code = None;
    let response = app.delete_account(&bob.client, &request).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    request.totp_code = Some(recovery_codes[1].clone());
    let response = app.delete_account(&bob.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for (table, column) in &columns {
        let rows = count(&database, table, column, "bob").await;
        assert_eq!(rows, 0, "{table}.{column} still names bob");
    }
    assert_eq!(app.factor_rows("bob").await, 0, "the store forgot bob");
    // Other people's history stays: bob's messages and the envelopes he sealed for others.
    assert_eq!(count(&database, "messages", "sender", "bob").await, 1);
    assert!(count(&database, "key_envelopes", "distributor", "bob").await > 0);
    app.assert_logged_out(&bob.client, "the deleted account's session")
        .await;
    assert_session_ended(&mut bob_socket).await;
    let response = app
        .login_from(&app.anonymous, "bob", bob.auth_key, HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Both of bob's rooms wait for a rotation; the log still names bob until someone
    // removes him, and the room keeps working meanwhile.
    assert!(rotation_pending(&app, &alice, &team).await);
    assert!(rotation_pending(&app, &alice, &own).await);
    app.expect_action(&mut team, &alice, policy_change(), StatusCode::CREATED)
        .await;
    assert!(rotation_pending(&app, &alice, &team).await, "still pending");
    // A new account under the same name is not the member the log names.
    let new_bob = app.register_user("bob").await;
    let list: RoomListResponse = json(app.list_rooms(&new_bob.client).await).await;
    assert!(list.rooms.is_empty());
    let remove_bob = LogAction::RemoveMember {
        username: "bob".to_owned(),
    };
    app.expect_action(&mut team, &alice, remove_bob, StatusCode::CREATED)
        .await;
    let response = app.rotate_room(&mut team, &alice).await;
    expect_status(response, StatusCode::CREATED, "the rotation").await;
    assert!(!rotation_pending(&app, &alice, &team).await);
}

#[tokio::test]
async fn deleting_an_account_without_totp_needs_only_the_key() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let second = client_with_jar(Default::default());
    app.login_from(&second, "alice", alice.auth_key, HOME_IP)
        .await;
    let request = DeleteAccountRequest {
        auth_key: Base64Array(alice.auth_key),
        totp_code: None,
    };
    let response = app.delete_account(&alice.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    app.assert_logged_out(&second, "every session ends").await;
    let response = app.delete_account(&alice.client, &request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
