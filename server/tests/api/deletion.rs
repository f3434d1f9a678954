//! Deleting a room: only the owner may; every row of the room leaves every table; the
//! members are told over the WebSocket; afterwards the room does not exist for anyone.

use std::collections::BTreeSet;

use common::api::{RoomListResponse, ServerEvent};
use common::membership::{LogAction, SignedLogEntry};
use reqwest::StatusCode;

use crate::cast::{assert_room_is_hidden_from, expect_status, Cast, QUIET, TOKEN};
use crate::helpers::{error_message, json, TestApp};
use crate::ws_client::{event_within, next_event};

/// The tables of the database that have a `room_id` column.
async fn tables_with_a_room_id(app: &TestApp) -> BTreeSet<String> {
    app.columns()
        .await
        .into_iter()
        .filter(|(_, column)| column == "room_id")
        .map(|(table, _)| table)
        .collect()
}

/// How many rows of each table belong to the room.
async fn rows_per_table(
    database: &sqlx::AnyPool,
    tables: &BTreeSet<String>,
    room_id: &[u8],
) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in tables {
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE room_id = $1"))
                .bind(room_id)
                .fetch_one(database)
                .await
                .unwrap();
        counts.push((table.clone(), count));
    }
    counts
}

#[tokio::test]
async fn deleting_the_room_removes_every_row_and_tells_the_members() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let body = TestApp::sealed_text(&cast.room, &cast.carol, 1, "last words");
    let response = app
        .post_message(&cast.carol.client, &cast.hex(), &body)
        .await;
    expect_status(response, StatusCode::CREATED, "carol posts").await;
    // And an attachment, one chunk of it stored.
    let (_, cipher, chunks) = crate::attachments::sealed_file(10);
    crate::attachments::announce(app, &cast.carol.client, &cast.room, &cipher).await;
    let response = crate::attachments::put_chunk(
        app,
        &cast.carol.client,
        &cast.room,
        &cipher.id,
        0,
        chunks[0].clone(),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT, "carol uploads").await;
    let database = app.database().await;
    let tables = tables_with_a_room_id(app).await;
    let expected: BTreeSet<String> = [
        "rooms",
        "room_log",
        "room_members",
        "key_envelopes",
        "messages",
        "join_requests",
        "invite_uses",
        "attachments",
        "attachment_chunks",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(tables, expected);
    let room_id = cast.room.room_id.0;
    for (table, count) in rows_per_table(&database, &tables, &room_id).await {
        assert!(
            count > 0,
            "{table} holds no row of the room before the deletion"
        );
    }

    let mut carol_socket = app.connect_ws(&cast.carol).await;
    let mut bob_socket = app.connect_ws(&cast.bob).await;
    let mut erin_socket = app.connect_ws(&cast.erin).await;
    // Admins may not delete the room.
    let response = app
        .append_action(&mut cast.room, &cast.bob, LogAction::DeleteRoom)
        .await;
    let message = error_message(response, StatusCode::FORBIDDEN).await;
    assert!(
        message.contains("bob (admin) may not delete the room"),
        "{message}"
    );

    let before = cast.room.state.clone();
    let response = app
        .append_action(&mut cast.room, &cast.alice, LogAction::DeleteRoom)
        .await;
    expect_status(
        response,
        StatusCode::NO_CONTENT,
        "the owner deletes the room",
    )
    .await;
    for socket in [&mut carol_socket, &mut bob_socket] {
        // First the signed entry, which a client can check against its log...
        match next_event(socket).await {
            ServerEvent::LogEntry { entry, .. } => {
                let signed = SignedLogEntry::from_bytes(&entry.0).unwrap();
                let mut state = before.clone();
                state.apply(&signed).unwrap();
                assert!(state.deleted());
            }
            other => panic!("expected the delete entry, got {other:?}"),
        }
        // ...then the notice that the room is gone.
        match next_event(socket).await {
            ServerEvent::RoomDeleted { room_id } => assert_eq!(room_id, cast.room.room_id),
            other => panic!("expected the deletion, got {other:?}"),
        }
    }
    let event = event_within(&mut erin_socket, QUIET).await;
    assert!(event.is_none(), "a removed member was sent {event:?}");

    for (table, count) in rows_per_table(&database, &tables, &room_id).await {
        assert_eq!(count, 0, "{table} still holds rows of the deleted room");
    }
    for user in [&cast.alice, &cast.bob, &cast.carol] {
        assert_room_is_hidden_from(app, user, &cast.room).await;
        let list: RoomListResponse = json(app.list_rooms(&user.client).await).await;
        assert!(
            list.rooms.is_empty(),
            "{} still lists the room",
            user.username
        );
    }
    let response = app
        .request_to_join(&cast.eve.client, &cast.hex(), TOKEN)
        .await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "invite not found"
    );
}
