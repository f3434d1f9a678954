//! Leaving the room by removal, ban or leave: the member learns of it over the WebSocket,
//! then the room no longer exists for them and none of its messages reach them.

use common::api::ServerEvent;
use common::membership::{LogAction, SignedLogEntry};
use reqwest::StatusCode;

use crate::cast::{assert_room_is_hidden_from, expect_status, Cast, QUIET};
use crate::helpers::TestApp;
use crate::ws_client::{event_within, next_event};

#[tokio::test]
async fn a_removed_member_sees_their_removal_then_nothing_more() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let mut carol_socket = app.connect_ws(&cast.carol).await;
    let mut alice_socket = app.connect_ws(&cast.alice).await;
    let mut carol_view = cast.room.state.clone();
    let removal = LogAction::RemoveMember {
        username: "carol".to_owned(),
    };
    app.expect_action(&mut cast.room, &cast.bob, removal, StatusCode::CREATED)
        .await;

    // Carol's client verifies the entry that removed her with her own copy of the log.
    match next_event(&mut carol_socket).await {
        ServerEvent::LogEntry {
            room_id,
            seq,
            entry,
        } => {
            assert_eq!(room_id, cast.room.room_id);
            assert_eq!(seq, carol_view.length());
            let signed = SignedLogEntry::from_bytes(&entry.0).unwrap();
            carol_view.apply(&signed).unwrap();
            assert!(carol_view.member("carol").is_none());
            assert_eq!(carol_view, cast.room.state);
        }
        other => panic!("expected the removal, got {other:?}"),
    }
    assert!(matches!(
        next_event(&mut alice_socket).await,
        ServerEvent::LogEntry { .. }
    ));

    assert_room_is_hidden_from(app, &cast.carol, &cast.room).await;

    // A message after the removal reaches the members, not carol.
    let body = TestApp::sealed_text(&cast.room, &cast.alice, 1, "carol is gone");
    let response = app
        .post_message(&cast.alice.client, &cast.hex(), &body)
        .await;
    expect_status(response, StatusCode::CREATED, "alice posts").await;
    assert!(matches!(
        next_event(&mut alice_socket).await,
        ServerEvent::Message { .. }
    ));
    let event = event_within(&mut carol_socket, QUIET).await;
    assert!(event.is_none(), "a removed member was sent {event:?}");
}

#[tokio::test]
async fn removed_banned_and_departed_users_find_no_room() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    app.expect_action(
        &mut cast.room,
        &cast.carol,
        LogAction::Leave,
        StatusCode::CREATED,
    )
    .await;
    for user in [&cast.erin, &cast.frank, &cast.carol] {
        assert_room_is_hidden_from(app, user, &cast.room).await;
    }
    // Later entries are sent only to the members before and after each of them.
    let mut erin_socket = app.connect_ws(&cast.erin).await;
    let mut bob_socket = app.connect_ws(&cast.bob).await;
    app.rotate_room(&mut cast.room, &cast.alice).await;
    assert!(matches!(
        next_event(&mut bob_socket).await,
        ServerEvent::LogEntry { .. }
    ));
    let event = event_within(&mut erin_socket, QUIET).await;
    assert!(event.is_none(), "a removed member was sent {event:?}");
}

#[tokio::test]
async fn a_banned_member_learns_of_the_ban() {
    let mut cast = Cast::new().await;
    let mut carol_socket = cast.app.connect_ws(&cast.carol).await;
    let ban = LogAction::Ban {
        username: "carol".to_owned(),
    };
    cast.app
        .expect_action(&mut cast.room, &cast.alice, ban, StatusCode::CREATED)
        .await;
    match next_event(&mut carol_socket).await {
        ServerEvent::LogEntry { entry, .. } => {
            let signed = SignedLogEntry::from_bytes(&entry.0).unwrap();
            assert!(matches!(
                &signed.entry().action,
                LogAction::Ban { username } if username == "carol"
            ));
        }
        other => panic!("expected the ban, got {other:?}"),
    }
    assert_room_is_hidden_from(&cast.app, &cast.carol, &cast.room).await;
}
