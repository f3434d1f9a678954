//! Several instances of one deployment on one PostgreSQL database (skipped on SQLite, which
//! serves one instance): what happens through one instance reaches the members connected to
//! any other, a room's messages in the same order everywhere, and sessions, throttles and
//! session ends work whichever instance a request hits.

use std::collections::BTreeSet;

use common::api::{DeleteAccountRequest, ServerEvent, SessionsResponse};
use common::membership::{Role, RoomId};
use common::wire::Base64Array;
use reqwest::StatusCode;

use crate::helpers::{json, spawn_app, spawn_instance_of, TestApp};
use crate::security_client::{assert_session_ended, HOME_IP};
use crate::ws_client::{event_within, message_ids, next_event, Socket};

/// Two instances of one deployment, or `None` (with a note) on SQLite.
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let first = spawn_app().await;
    if !first.on_postgres() {
        eprintln!("skipped: several instances need CHAT_TEST_POSTGRES_URL (cargo xtask test)");
        return None;
    }
    let second = spawn_instance_of(&first).await;
    Some((first, second))
}

/// Skips the events that were committed before `socket` subscribed but were still between the
/// instances (PostgreSQL notifications) when it did, until none has come for 300 ms. Clients
/// take such late copies idempotently; the tests below count only what happens afterwards.
async fn drain_late_events(socket: &mut Socket) {
    while event_within(socket, std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}
}

#[tokio::test]
async fn messages_through_either_instance_reach_every_member_once_in_order() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let alice = first.register_user("alice").await;
    let bob = first.register_user("bob").await;
    let mut room = first.create_test_room(&alice, "spread out").await;
    first
        .add_member(&mut room, &alice, &bob, Role::Member)
        .await;
    let mut alice_socket = first.connect_ws(&alice).await;
    let mut bob_socket = second.connect_ws(&bob).await;
    for socket in [&mut alice_socket, &mut bob_socket] {
        drain_late_events(socket).await;
    }

    // Alice and bob post through both instances at once, 20 messages each.
    let mut posts = Vec::new();
    for counter in 1..=20u64 {
        for (user, instance) in [(&alice, &first), (&bob, &second)] {
            let other = if std::ptr::eq(instance, &first) {
                &second
            } else {
                &first
            };
            let through = if counter % 2 == 0 { instance } else { other };
            let body = TestApp::sealed_text(&room, user, counter, "everywhere");
            let hex = room.hex();
            posts.push(async move {
                let response = through.post_message(&user.client, &hex, &body).await;
                assert_eq!(response.status(), StatusCode::CREATED);
                json::<common::api::StoredMessage>(response).await.id
            });
        }
    }
    let acknowledged: BTreeSet<i64> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .collect();
    assert_eq!(acknowledged.len(), 40);

    let on_first = message_ids(&mut alice_socket, 40).await;
    let on_second = message_ids(&mut bob_socket, 40).await;
    let in_order: Vec<i64> = acknowledged.iter().copied().collect();
    assert_eq!(on_first, in_order, "alice, on the first instance");
    assert_eq!(on_second, in_order, "bob, on the second instance");
    for socket in [&mut alice_socket, &mut bob_socket] {
        let extra = event_within(socket, std::time::Duration::from_millis(300)).await;
        assert!(extra.is_none(), "a duplicate or stray event: {extra:?}");
    }
}

#[tokio::test]
async fn an_entry_through_one_instance_reaches_sockets_on_the_other() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let alice = first.register_user("alice").await;
    let bob = first.register_user("bob").await;
    let carol = first.register_user("carol").await;
    let mut room = first.create_test_room(&alice, "entries").await;
    first
        .add_member(&mut room, &alice, &bob, Role::Member)
        .await;
    let mut bob_socket = second.connect_ws(&bob).await;
    let mut carol_socket = second.connect_ws(&carol).await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        drain_late_events(socket).await;
    }
    first
        .add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        match next_event(socket).await {
            ServerEvent::LogEntry { room_id, seq, .. } => {
                assert_eq!(room_id, room.room_id);
                assert_eq!(seq, 2);
            }
            other => panic!("expected the add entry, got {other:?}"),
        }
    }
    // Carol's key envelope follows, to her only.
    assert!(matches!(
        next_event(&mut carol_socket).await,
        ServerEvent::KeyEnvelope { .. }
    ));
}

/// Waits (at most five seconds) until `app`'s membership cache no longer holds `room_id`.
async fn forgotten_by(app: &TestApp, room_id: &RoomId) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.membership.contains(room_id) {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    true
}

#[tokio::test]
async fn a_change_through_one_instance_clears_the_room_from_the_cache_of_the_other() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let alice = first.register_user("alice").await;
    let bob = first.register_user("bob").await;
    let carol = first.register_user("carol").await;
    let mut room = first.create_test_room(&alice, "cached twice").await;
    first
        .add_member(&mut room, &alice, &bob, Role::Member)
        .await;
    let hello = TestApp::sealed_text(&room, &bob, 1, "through the second");
    let response = second.post_message(&bob.client, &room.hex(), &hello).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(second.membership.contains(&room.room_id));

    // A log entry appended through the first instance.
    first
        .add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    assert!(
        forgotten_by(&second, &room.room_id).await,
        "the entry's notice cleared the room on the second instance"
    );

    // An account deleted through the first instance.
    let post_again = TestApp::sealed_text(&room, &bob, 2, "again");
    let response = second
        .post_message(&bob.client, &room.hex(), &post_again)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(second.membership.contains(&room.room_id));
    let request = DeleteAccountRequest {
        auth_key: Base64Array(carol.auth_key),
        totp_code: None,
    };
    let response = first.delete_account(&carol.client, &request).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        forgotten_by(&second, &room.room_id).await,
        "the deletion's notice cleared the room on the second instance"
    );
}

#[tokio::test]
async fn a_member_removed_through_one_instance_hears_nothing_more_on_the_other() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    crate::membership_cache::a_removed_member_hears_nothing_more(&first, &second).await;
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_and_ends_on_the_other() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let alice = first.register_user("alice").await;
    let laptop = first.new_browser(&alice, HOME_IP, None).await;
    // The session made through the first instance is good on the second.
    second.assert_logged_in(&laptop.client, "the laptop").await;
    let mut laptop_socket = second.connect_browser_ws(&laptop).await;
    let list: SessionsResponse = json(second.sessions(&alice.client).await).await;
    assert_eq!(list.sessions.len(), 2);
    let laptop_id = list
        .sessions
        .iter()
        .find(|session| !session.current)
        .expect("the laptop's session")
        .id
        .clone();
    // Revoked through the first instance: its socket on the second closes at once.
    let response = first.revoke_session(&alice.client, &laptop_id).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_session_ended(&mut laptop_socket).await;
    second.assert_logged_out(&laptop.client, "the laptop").await;
}

#[tokio::test]
async fn login_attempts_are_counted_across_instances() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    first.register_user("alice").await;
    // The default allows 10 attempts per username and window: spread them over both.
    for attempt in 0..10 {
        let instance = if attempt % 2 == 0 { &first } else { &second };
        let response = instance.prelogin_from("alice", HOME_IP).await;
        assert_eq!(response.status(), StatusCode::OK, "attempt {attempt}");
    }
    for instance in [&first, &second] {
        let response = instance.prelogin_from("alice", HOME_IP).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

/// An instance whose notification connection breaks may have missed events: it tells its
/// clients to reconnect (1012) and listens again, and events flow once more.
#[tokio::test]
async fn a_broken_notification_connection_sends_clients_to_catch_up() {
    let Some((first, second)) = two_instances().await else {
        return;
    };
    let alice = first.register_user("alice").await;
    let bob = first.register_user("bob").await;
    let mut room = first.create_test_room(&alice, "outage").await;
    first
        .add_member(&mut room, &alice, &bob, Role::Member)
        .await;
    let mut bob_socket = second.connect_ws(&bob).await;

    // The operator's view: every connection to the deployment's database is cut, the
    // instances' listening connections among them.
    let (mut admin, name) = crate::helpers::postgres_admin(&first).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while let Some(item) = bob_socket.next().await {
            match item {
                Ok(Message::Close(Some(frame))) => return u16::from(frame.code) == 1012,
                other => seen.push(format!("{other:?}")),
            }
        }
        false
    })
    .await;
    assert!(
        matches!(closed, Ok(true)),
        "no close frame 1012 within 10 s; saw {seen:?}"
    );

    // Once the instance listens again, a new socket hears what is posted elsewhere.
    let mut delivered = false;
    for attempt in 1..=20u64 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut socket = second.connect_ws(&bob).await;
        let body = TestApp::sealed_text(&room, &alice, attempt, "after the outage");
        let response = first.post_message(&alice.client, &room.hex(), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        if let Some(message) = message_within(&mut socket, std::time::Duration::from_secs(2)).await
        {
            assert_eq!(message.sender, "alice");
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "no message reached the second instance's socket again"
    );
}

/// The next message event on `socket` within `wait`; `None` when none comes or the server
/// closes the socket first (as an instance that listens again does).
async fn message_within(
    socket: &mut Socket,
    wait: std::time::Duration,
) -> Option<common::api::StoredMessage> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let read = async {
        while let Some(Ok(frame)) = socket.next().await {
            match frame {
                Message::Text(text) => {
                    if let Ok(ServerEvent::Message { message }) = serde_json::from_str(&text) {
                        return Some(message);
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
        None
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}
