//! Live events over a real WebSocket.

use common::api::ServerEvent;
use common::membership::{Role, SignedLogEntry};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::{spawn_app, TestApp};
use crate::security_client::assert_closed_with;
use crate::ws_client::next_event;

#[tokio::test]
async fn a_connected_member_receives_a_posted_message() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let mut bob_socket = app.connect_ws(&bob).await;
    let body = TestApp::sealed_text(&room, &alice, 1, "live hello");
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    match next_event(&mut bob_socket).await {
        ServerEvent::Message { message } => {
            assert_eq!(message.sender, "alice");
            assert_eq!(message.room_id, room.room_id);
            assert_eq!(message.ciphertext, body.ciphertext);
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_added_while_connected_sees_the_entry_then_the_envelope() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    let mut bob_socket = app.connect_ws(&bob).await;
    let mut alice_socket = app.connect_ws(&alice).await;
    let mut state_before = room.state.clone();
    app.add_member(&mut room, &alice, &bob, Role::Member).await;

    match next_event(&mut bob_socket).await {
        ServerEvent::LogEntry {
            room_id,
            seq,
            entry,
        } => {
            assert_eq!(room_id, room.room_id);
            assert_eq!(seq, 1);
            let signed = SignedLogEntry::from_bytes(&entry.0).unwrap();
            state_before.apply(&signed).unwrap();
            assert_eq!(state_before, room.state);
        }
        other => panic!("expected a log entry, got {other:?}"),
    }
    match next_event(&mut bob_socket).await {
        ServerEvent::KeyEnvelope { envelope } => {
            assert_eq!(envelope.recipient, "bob");
            assert_eq!(
                envelope.open(&room.state, "bob", &bob.secrets).unwrap(),
                room.key
            );
        }
        other => panic!("expected a key envelope, got {other:?}"),
    }
    // Alice, a member already, sees the entry but not Bob's envelope.
    assert!(matches!(
        next_event(&mut alice_socket).await,
        ServerEvent::LogEntry { seq: 1, .. }
    ));
}

#[tokio::test]
async fn a_handshake_from_another_origin_is_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let cookie = app.session_cookie(&alice);
    let refused = app
        .try_connect_ws(Some(cookie.clone()), Some("http://evil.example"))
        .await;
    match refused {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    // Without an Origin (a non-browser client) the cookie is enough.
    assert!(app.try_connect_ws(Some(cookie), None).await.is_ok());
}

#[tokio::test]
async fn a_handshake_without_a_session_is_refused() {
    let app = spawn_app().await;
    let origin = app.address.clone();
    match app.try_connect_ws(None, Some(&origin)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::UNAUTHORIZED),
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn frames_from_the_client_are_answered_with_an_error_event() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let mut socket = app.connect_ws(&alice).await;
    socket.send(Message::text("hello server")).await.unwrap();
    match next_event(&mut socket).await {
        ServerEvent::Error { error } => assert_eq!(error, "clients send messages over http"),
        other => panic!("expected an error event, got {other:?}"),
    }
    // The connection stays open and still delivers events.
    let room = app.create_test_room(&alice, "solo").await;
    let body = TestApp::sealed_text(&room, &alice, 1, "still here");
    app.post_message(&alice.client, &room.hex(), &body).await;
    assert!(matches!(
        next_event(&mut socket).await,
        ServerEvent::Message { .. }
    ));
    socket.close(None).await.unwrap();
    assert!(socket.next().await.is_none_or(|item| item.is_ok()));
}

#[tokio::test]
async fn the_server_shuts_down_with_a_websocket_open() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let _socket = app.connect_ws(&alice).await;
    app.shut_down().await.unwrap();
}

/// On shutdown (SIGTERM or Ctrl-C in the binary) the server stops accepting, closes every
/// WebSocket with 1012 `server restarting` so that clients reconnect elsewhere, and exits.
#[tokio::test]
async fn shutting_down_tells_every_socket_to_reconnect_and_exits() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut sockets = vec![
        app.connect_ws(&alice).await,
        app.connect_ws(&alice).await,
        app.connect_ws(&bob).await,
    ];
    let address = app.address.clone();
    let stopped = tokio::spawn(app.shut_down());
    for socket in &mut sockets {
        assert_closed_with(socket, 1012, "server restarting").await;
    }
    stopped
        .await
        .expect("the shutdown task does not panic")
        .expect("the server stops cleanly");
    let refused = reqwest::get(format!("{address}/healthz")).await;
    assert!(refused.is_err(), "the server still answers: {refused:?}");
}

/// Posts that arrive together are stored in one batch; every member's socket still gets
/// each message once, in id order.
#[tokio::test]
async fn concurrent_posts_reach_every_socket_once_in_id_order() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "busy").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let mut sockets = [app.connect_ws(&alice).await, app.connect_ws(&bob).await];
    let mut posts = Vec::new();
    for counter in 1..=25u64 {
        for user in [&alice, &bob] {
            let body = TestApp::sealed_text(&room, user, counter, "at once");
            let (app, room) = (&app, room.hex());
            posts.push(async move {
                let response = app.post_message(&user.client, &room, &body).await;
                assert_eq!(response.status(), StatusCode::CREATED);
                crate::helpers::json::<common::api::StoredMessage>(response)
                    .await
                    .id
            });
        }
    }
    let mut acknowledged = futures_util::future::join_all(posts).await;
    acknowledged.sort_unstable();
    for socket in &mut sockets {
        let received = crate::ws_client::message_ids(socket, acknowledged.len()).await;
        assert_eq!(received, acknowledged);
        let extra =
            crate::ws_client::event_within(socket, std::time::Duration::from_millis(300)).await;
        assert!(extra.is_none(), "a duplicate or stray event: {extra:?}");
    }
}
