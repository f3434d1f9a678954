//! Posting and paging through messages.

use common::api::{MessagesResponse, StoredMessage};
use common::membership::Role;
use common::message::open_message;
use common::wire::Base64;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, spawn_app, TestApp};

#[tokio::test]
async fn a_member_posts_and_another_member_reads_and_opens_the_message() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;

    let body = TestApp::sealed_text(&room, &alice, 1, "hello bob");
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: StoredMessage = json(response).await;
    assert_eq!(stored.sender, "alice");
    assert_eq!(stored.room_id, room.room_id);
    assert_eq!(stored.ciphertext, body.ciphertext);

    let page: MessagesResponse = json(app.get_messages(&bob.client, &room.hex(), "").await).await;
    assert_eq!(page.messages, vec![stored.clone()]);
    assert!(!page.has_more);
    let inner = open_message(&stored.sealed(), &stored.sender, &room.key, &room.state).unwrap();
    assert_eq!(inner.text(), Some("hello bob"));
}

#[tokio::test]
async fn non_members_and_anonymous_users_can_neither_post_nor_read() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let eve = app.register_user("eve").await;
    let room = app.create_test_room(&alice, "team").await;
    let body = TestApp::sealed_text(&room, &eve, 1, "let me in");
    let response = app.post_message(&eve.client, &room.hex(), &body).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app.get_messages(&eve.client, &room.hex(), "").await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    let response = app.post_message(&app.anonymous, &room.hex(), &body).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    let response = app.get_messages(&app.anonymous, &room.hex(), "").await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn a_message_for_another_epoch_is_a_409() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let mut body = TestApp::sealed_text(&room, &alice, 1, "from the future");
    body.epoch = 1;
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "stale epoch"
    );
}

#[tokio::test]
async fn ciphertexts_of_impossible_lengths_are_refused() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    for length in [0, 16, 100, 16 + 256 + 1, 16 + 256 * 80] {
        let mut body = TestApp::sealed_text(&room, &alice, 1, "x");
        body.ciphertext = Base64(vec![0u8; length]);
        let response = app.post_message(&alice.client, &room.hex(), &body).await;
        let message = error_message(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.starts_with("ciphertext must be"),
            "{length}: {message}"
        );
    }
}

/// A client resumes from the last id it saw: `after` answers the oldest messages above it,
/// page by page, with no gap and no duplicate.
#[tokio::test]
async fn after_resumes_from_the_last_id_seen_page_by_page() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let ids = post_texts(&app, &room, &alice, 7).await;
    let mut resumed = Vec::new();
    let mut last_seen = ids[1];
    loop {
        let query = format!("limit=2&after={last_seen}");
        let page: MessagesResponse =
            json(app.get_messages(&alice.client, &room.hex(), &query).await).await;
        resumed.extend(page.messages.iter().map(|message| message.id));
        last_seen = *resumed.last().unwrap();
        if !page.has_more {
            break;
        }
    }
    assert_eq!(resumed, ids[2..]);
    let query = format!("after={}", ids[6]);
    let none: MessagesResponse =
        json(app.get_messages(&alice.client, &room.hex(), &query).await).await;
    assert!(none.messages.is_empty() && !none.has_more);

    let query = format!("before={}&after={}", ids[6], ids[0]);
    let response = app.get_messages(&alice.client, &room.hex(), &query).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "give before or after, not both"
    );
}

#[tokio::test]
async fn messages_are_paged_newest_first_in_ascending_order() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let ids = post_texts(&app, &room, &alice, 7).await;
    let page_ids = |page: &MessagesResponse| page.messages.iter().map(|m| m.id).collect::<Vec<_>>();

    let newest: MessagesResponse = json(
        app.get_messages(&alice.client, &room.hex(), "limit=3")
            .await,
    )
    .await;
    assert_eq!(page_ids(&newest), ids[4..7]);
    assert!(newest.has_more);

    let query = format!("limit=3&before={}", ids[4]);
    let middle: MessagesResponse =
        json(app.get_messages(&alice.client, &room.hex(), &query).await).await;
    assert_eq!(page_ids(&middle), ids[1..4]);
    assert!(middle.has_more);

    let query = format!("limit=3&before={}", ids[1]);
    let oldest: MessagesResponse =
        json(app.get_messages(&alice.client, &room.hex(), &query).await).await;
    assert_eq!(page_ids(&oldest), ids[0..1]);
    assert!(!oldest.has_more);

    let all: MessagesResponse = json(
        app.get_messages(&alice.client, &room.hex(), "limit=500")
            .await,
    )
    .await;
    assert_eq!(page_ids(&all), ids);
    assert!(!all.has_more);

    let response = app
        .get_messages(&alice.client, &room.hex(), "limit=0")
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "limit must be at least 1"
    );
    let response = app
        .get_messages(&alice.client, &room.hex(), "limit=many")
        .await;
    let message = error_message(response, StatusCode::BAD_REQUEST).await;
    assert!(message.starts_with("invalid query string"), "{message}");
}

#[tokio::test]
async fn the_default_page_holds_fifty_messages() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "team").await;
    let body = TestApp::sealed_text(&room, &alice, 1, "same ciphertext, many times");
    for _ in 0..55 {
        let response = app.post_message(&alice.client, &room.hex(), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let page: MessagesResponse = json(app.get_messages(&alice.client, &room.hex(), "").await).await;
    assert_eq!(page.messages.len(), 50);
    assert!(page.has_more);
}

/// Posts texts 1 to `count` as `sender` and returns their ids.
async fn post_texts(
    app: &TestApp,
    room: &crate::helpers::TestRoom,
    sender: &crate::helpers::TestUser,
    count: u64,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for sequence in 1..=count {
        let body = TestApp::sealed_text(room, sender, sequence, &format!("message {sequence}"));
        let stored: StoredMessage =
            json(app.post_message(&sender.client, &room.hex(), &body).await).await;
        ids.push(stored.id);
    }
    ids
}
