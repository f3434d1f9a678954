//! The membership cache answers who may post, and never alone: every log entry clears the
//! room from it, a post it allows is checked again by the insert, and a post it refuses is
//! checked again against a fresh read. So neither a change through the API nor an edit of
//! the database behind the server's back (which sends no notice) lets a stale entry decide.

use std::time::Duration;

use common::api::{PostMessageRequest, ServerEvent};
use common::membership::Role;
use common::room_key::EpochChange;
use reqwest::StatusCode;

use crate::helpers::{error_message, spawn_app, TestApp, TestRoom, TestUser};
use crate::ws_client::{event_within, next_event};

async fn post(
    app: &TestApp,
    room: &TestRoom,
    user: &TestUser,
    body: &PostMessageRequest,
) -> StatusCode {
    app.post_message(&user.client, &room.hex(), body)
        .await
        .status()
}

#[tokio::test]
async fn posts_follow_every_log_entry_while_the_room_is_cached() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "cached").await;
    let first = TestApp::sealed_text(&room, &alice, 1, "first");
    assert_eq!(post(&app, &room, &alice, &first).await, StatusCode::CREATED);
    assert!(app.membership.contains(&room.room_id));

    // Not a member yet: refused (after a fresh read), then added and allowed at once.
    let from_bob = TestApp::sealed_text(&room, &bob, 1, "early");
    let response = app.post_message(&bob.client, &room.hex(), &from_bob).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    assert!(app.membership.contains(&room.room_id));
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    assert!(
        !app.membership.contains(&room.room_id),
        "the entry cleared the room"
    );
    let from_bob = TestApp::sealed_text(&room, &bob, 1, "hello");
    assert_eq!(
        post(&app, &room, &bob, &from_bob).await,
        StatusCode::CREATED
    );

    // Removing bob starts the next epoch in the same entry: bob is refused, and so is the
    // old epoch, while the new one is allowed at once.
    let old_epoch = TestApp::sealed_text(&room, &alice, 2, "old epoch");
    let from_bob = TestApp::sealed_text(&room, &bob, 2, "still here?");
    let response = app
        .rotate_room_with(
            &mut room,
            &alice,
            EpochChange::RemoveMember("bob".to_owned()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app.post_message(&bob.client, &room.hex(), &from_bob).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app
        .post_message(&alice.client, &room.hex(), &old_epoch)
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "stale epoch"
    );
    let new_epoch = TestApp::sealed_text(&room, &alice, 1, "new epoch");
    assert_eq!(
        post(&app, &room, &alice, &new_epoch).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_database_decides_when_the_cache_is_stale() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "edited").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let hello = TestApp::sealed_text(&room, &bob, 1, "hello");
    assert_eq!(post(&app, &room, &bob, &hello).await, StatusCode::CREATED);
    assert!(app.membership.contains(&room.room_id));

    // Bob's row goes behind the server's back: the cache still has him, the insert does not.
    let database = app.database().await;
    sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND username = 'bob'")
        .bind(room.room_id.0.as_slice())
        .execute(&database)
        .await
        .unwrap();
    assert!(app.membership.contains(&room.room_id));
    let again = TestApp::sealed_text(&room, &bob, 2, "again");
    let response = app.post_message(&bob.client, &room.hex(), &again).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE sender = 'bob'")
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the first message of bob is stored");
    assert!(
        !app.membership.contains(&room.room_id),
        "the refusal cleared the stale room"
    );

    // Back again: the cache (cleared by the refusal) reads him again.
    sqlx::query("INSERT INTO room_members (room_id, username, role) VALUES ($1, 'bob', 'member')")
        .bind(room.room_id.0.as_slice())
        .execute(&database)
        .await
        .unwrap();
    assert_eq!(post(&app, &room, &bob, &again).await, StatusCode::CREATED);

    // The epoch moves behind the server's back: the cached epoch is refused by the insert,
    // the new one is confirmed by a fresh read.
    sqlx::query("UPDATE rooms SET current_epoch = current_epoch + 1 WHERE room_id = $1")
        .bind(room.room_id.0.as_slice())
        .execute(&database)
        .await
        .unwrap();
    assert!(app.membership.contains(&room.room_id));
    let mut message = TestApp::sealed_text(&room, &alice, 1, "which epoch?");
    let response = app.post_message(&alice.client, &room.hex(), &message).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "stale epoch"
    );
    message.epoch += 1;
    assert_eq!(
        post(&app, &room, &alice, &message).await,
        StatusCode::CREATED
    );
}

/// A member removed through `through` hears nothing more on a socket of `listening` (the
/// same instance, or another on PostgreSQL), whose cache held the room before the removal.
pub async fn a_removed_member_hears_nothing_more(through: &TestApp, listening: &TestApp) {
    let alice = through.register_user("alice").await;
    let bob = through.register_user("bob").await;
    let carol = through.register_user("carol").await;
    let mut room = through.create_test_room(&alice, "removal").await;
    through
        .add_member(&mut room, &alice, &bob, Role::Member)
        .await;
    through
        .add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    let mut bob_socket = listening.connect_ws(&bob).await;
    let mut carol_socket = listening.connect_ws(&carol).await;
    let before = TestApp::sealed_text(&room, &bob, 1, "before");
    assert_eq!(
        post(listening, &room, &bob, &before).await,
        StatusCode::CREATED
    );
    for socket in [&mut bob_socket, &mut carol_socket] {
        assert!(matches!(
            next_event(socket).await,
            ServerEvent::Message { .. }
        ));
    }
    assert!(listening.membership.contains(&room.room_id));

    let response = through
        .rotate_room_with(
            &mut room,
            &alice,
            EpochChange::RemoveMember("carol".to_owned()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(matches!(
        next_event(&mut carol_socket).await,
        ServerEvent::LogEntry { .. }
    ));
    let after = TestApp::sealed_text(&room, &alice, 1, "after");
    assert_eq!(
        post(through, &room, &alice, &after).await,
        StatusCode::CREATED
    );
    let again = TestApp::sealed_text(&room, &bob, 2, "again");
    assert_eq!(
        post(listening, &room, &bob, &again).await,
        StatusCode::CREATED
    );
    let mut heard = 0;
    while heard < 2 {
        if let ServerEvent::Message { message } = next_event(&mut bob_socket).await {
            assert_eq!(message.epoch, room.state.current_epoch());
            heard += 1;
        }
    }
    let extra = event_within(&mut carol_socket, Duration::from_millis(500)).await;
    assert!(extra.is_none(), "carol heard {extra:?}");
}

#[tokio::test]
async fn a_removed_member_hears_nothing_more_while_the_room_is_cached() {
    let app = spawn_app().await;
    a_removed_member_hears_nothing_more(&app, &app).await;
}
