//! Leaving the room by removal, ban or leave: the member learns of it over the WebSocket,
//! then the room no longer exists for them and none of its messages reach them.

use common::api::ServerEvent;
use common::membership::{LogAction, SignedLogEntry};
use common::room_key::EpochChange;
use reqwest::StatusCode;

use crate::cast::{assert_room_is_hidden_from, expect_status, Cast, QUIET};
use crate::helpers::{error_message, TestApp};
use crate::ws_client::{event_within, next_event};

#[tokio::test]
async fn a_removed_member_sees_their_removal_then_nothing_more() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let mut carol_socket = app.connect_ws(&cast.carol).await;
    let mut alice_socket = app.connect_ws(&cast.alice).await;
    let mut carol_view = cast.room.state.clone();
    let removal = EpochChange::RemoveMember("carol".to_owned());
    let response = app
        .rotate_room_with(&mut cast.room, &cast.bob, removal)
        .await;
    expect_status(response, StatusCode::CREATED, "bob removes carol").await;

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
    // alice is sent her envelope of the new epoch; carol none.
    assert!(matches!(
        next_event(&mut alice_socket).await,
        ServerEvent::KeyEnvelope { .. }
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

#[tokio::test]
async fn a_removal_starts_the_next_epoch_and_the_old_key_writes_nothing_more() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let old_epoch = cast.room.state.current_epoch();
    let response = app
        .rotate_room_with(
            &mut cast.room,
            &cast.bob,
            EpochChange::RemoveMember("carol".to_owned()),
        )
        .await;
    expect_status(response, StatusCode::CREATED, "bob removes carol").await;
    assert_eq!(cast.room.state.current_epoch(), old_epoch + 1);
    // Nothing is accepted at the epoch whose key carol holds, from the moment she is out.
    let mut stale = TestApp::sealed_text(&cast.room, &cast.alice, 1, "carol could read this");
    stale.epoch = old_epoch;
    let response = app
        .post_message(&cast.alice.client, &cast.hex(), &stale)
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "stale epoch"
    );
    let body = TestApp::sealed_text(&cast.room, &cast.alice, 1, "only members read this");
    let response = app
        .post_message(&cast.alice.client, &cast.hex(), &body)
        .await;
    expect_status(
        response,
        StatusCode::CREATED,
        "alice posts at the new epoch",
    )
    .await;
}

#[tokio::test]
async fn after_a_leave_no_message_is_taken_until_a_member_rotates_and_the_first_wins() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    app.add_member(
        &mut cast.room,
        &cast.bob,
        &cast.eve,
        common::membership::Role::Member,
    )
    .await;
    let carol_leaves = cast.room.entry(&cast.carol, LogAction::Leave);
    let response = app
        .append_log(&cast.carol.client, &cast.hex(), &carol_leaves)
        .await;
    expect_status(response, StatusCode::CREATED, "carol leaves").await;
    cast.room.state.apply(&carol_leaves).expect("applies");
    assert!(cast.room.state.rotation_pending());

    // Until someone rotates, the current key is one carol holds: no message is taken.
    let body = TestApp::sealed_text(&cast.room, &cast.alice, 1, "carol could read this");
    let response = app
        .post_message(&cast.alice.client, &cast.hex(), &body)
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "key rotation pending"
    );

    // eve, a plain member, completes the rotation; a second one made on the same log (alice's
    // client, at the same moment) is refused, and the first one stands.
    let mut alices_view = cast.room.state.clone();
    let alices_rotation = common::room_key::rotate(
        &alices_view,
        "alice",
        &cast.alice.secrets,
        &common::room_key::RoomMetadata::named("team"),
        crate::helpers::now_ms(),
        &mut common::OsRng,
    )
    .expect("alice may rotate");
    let response = app
        .rotate_room_with(&mut cast.room, &cast.eve, EpochChange::Rotate)
        .await;
    expect_status(response, StatusCode::CREATED, "eve completes the rotation").await;
    let response = app
        .append_log(&cast.alice.client, &cast.hex(), &alices_rotation.entry)
        .await;
    expect_status(response, StatusCode::CONFLICT, "the second rotation").await;
    alices_view = cast.room.state.clone();
    assert!(!alices_view.rotation_pending());
    assert!(!alices_view.was_member_in_epoch("carol", alices_view.current_epoch()));

    let body = TestApp::sealed_text(&cast.room, &cast.alice, 1, "only members read this");
    let response = app
        .post_message(&cast.alice.client, &cast.hex(), &body)
        .await;
    expect_status(
        response,
        StatusCode::CREATED,
        "alice posts after the rotation",
    )
    .await;
}

#[tokio::test]
async fn an_entry_and_its_envelopes_are_stored_together_or_not_at_all() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let length = cast.room.state.length();
    let rotation = common::room_key::rotate_with(
        &cast.room.state,
        EpochChange::RemoveMember("carol".to_owned()),
        "bob",
        &cast.bob.secrets,
        Some(&common::room_key::RoomMetadata::named("team")),
        crate::helpers::now_ms(),
        &mut common::OsRng,
    )
    .expect("bob may remove carol");
    let epoch = rotation.state.current_epoch();
    let seal_to = |state: &common::membership::RoomState, recipient: &str| {
        common::room_key::KeyEnvelope::seal(
            state,
            epoch,
            &rotation.key,
            recipient,
            "bob",
            &cast.bob.secrets,
            &mut common::OsRng,
        )
        .expect("seals")
    };
    // The new key sealed to carol too (sealed on the log before her removal): refused, and
    // the removal is not stored without it.
    let mut with_carol = vec![seal_to(&rotation.state, "alice")];
    with_carol.push(seal_to(&cast.room.state, "carol"));
    let response = app
        .append_log_with(&cast.bob.client, &cast.hex(), &rotation.entry, with_carol)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let log: common::api::LogResponse =
        crate::helpers::json(app.get_log(&cast.alice.client, &cast.hex()).await).await;
    assert_eq!(log.entries.len() as u64, length, "nothing was stored");

    // Sealed to the remaining members only: both are stored, and alice finds hers.
    let envelopes = vec![
        seal_to(&rotation.state, "alice"),
        seal_to(&rotation.state, "bob"),
    ];
    let response = app
        .append_log_with(&cast.bob.client, &cast.hex(), &rotation.entry, envelopes)
        .await;
    expect_status(
        response,
        StatusCode::CREATED,
        "the removal with its envelopes",
    )
    .await;
    let mine: common::api::EnvelopesResponse =
        crate::helpers::json(app.get_envelopes(&cast.alice.client, &cast.hex()).await).await;
    let newest = mine.envelopes.last().expect("alice's envelope");
    assert_eq!(newest.epoch, epoch);
    assert_eq!(
        newest
            .open(&rotation.state, "alice", &cast.alice.secrets)
            .expect("opens"),
        rotation.key
    );
}

#[tokio::test]
async fn an_entry_dated_far_ahead_is_refused() {
    let cast = Cast::new().await;
    let app = &cast.app;
    // A member completing a rotation with a far-future time would put off scheduled
    // rotation for as long as they like.
    let carol_leaves = cast.room.entry(&cast.carol, LogAction::Leave);
    let response = app
        .append_log(&cast.carol.client, &cast.hex(), &carol_leaves)
        .await;
    expect_status(response, StatusCode::CREATED, "carol leaves").await;
    let mut state = cast.room.state.clone();
    state.apply(&carol_leaves).expect("applies");
    let ahead = crate::helpers::now_ms() + 60 * 60 * 1000;
    for (time_ms, expected) in [
        (ahead, StatusCode::BAD_REQUEST),
        (crate::helpers::now_ms(), StatusCode::CREATED),
    ] {
        let rotation = common::room_key::rotate_with(
            &state,
            EpochChange::Rotate,
            "bob",
            &cast.bob.secrets,
            None,
            time_ms,
            &mut common::OsRng,
        )
        .expect("bob may rotate");
        let response = app
            .append_log(&cast.bob.client, &cast.hex(), &rotation.entry)
            .await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{text}");
        if expected == StatusCode::BAD_REQUEST {
            assert!(text.contains("entry time is in the future"), "{text}");
        }
    }
}

#[tokio::test]
async fn a_delete_entry_with_key_envelopes_is_refused_and_changes_nothing() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let delete = cast.room.entry(&cast.alice, LogAction::DeleteRoom);
    let envelope = common::room_key::KeyEnvelope::seal(
        &cast.room.state,
        cast.room.state.current_epoch(),
        &cast.room.key,
        "bob",
        "alice",
        &cast.alice.secrets,
        &mut common::OsRng,
    )
    .expect("seals");
    let response = app
        .append_log_with(&cast.alice.client, &cast.hex(), &delete, vec![envelope])
        .await;
    let message = crate::helpers::error_message(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "a delete entry carries no key envelopes");
    let log: common::api::LogResponse =
        crate::helpers::json(app.get_log(&cast.alice.client, &cast.hex()).await).await;
    assert_eq!(log.entries.len() as u64, cast.room.state.length());
}
