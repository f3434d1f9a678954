//! The per-member message rate limit that a room's policy sets.

use common::api::ErrorBody;
use common::membership::{LogAction, Role, RoomPolicy};
use reqwest::StatusCode;

use crate::cast::expect_status;
use crate::helpers::{spawn_app, TestApp};

fn policy(messages_per_minute: u32) -> LogAction {
    LogAction::SetPolicy {
        policy: RoomPolicy {
            messages_per_minute,
            ..RoomPolicy::default()
        },
    }
}

#[tokio::test]
async fn the_third_message_in_a_minute_is_429_for_its_sender_only() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let carol = app.register_user("carol").await;
    let mut room = app.create_test_room(&alice, "slow").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    app.add_member(&mut room, &alice, &carol, Role::Member)
        .await;
    app.expect_action(&mut room, &alice, policy(2), StatusCode::CREATED)
        .await;

    for sequence in 1..=2 {
        let body = TestApp::sealed_text(&room, &bob, sequence, "quick");
        let response = app.post_message(&bob.client, &room.hex(), &body).await;
        expect_status(response, StatusCode::CREATED, "within the limit").await;
    }
    let body = TestApp::sealed_text(&room, &bob, 3, "too quick");
    let response = app.post_message(&bob.client, &room.hex(), &body).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "rate limit: 2 messages per minute");
    assert_eq!(error.retry_after_s, Some(retry_after));

    // Another member has their own allowance.
    let body = TestApp::sealed_text(&room, &carol, 1, "my turn");
    let response = app.post_message(&carol.client, &room.hex(), &body).await;
    expect_status(response, StatusCode::CREATED, "carol is not limited by bob").await;

    // Bob's own allowance in another room is separate too.
    let mut other = app.create_test_room(&carol, "fast").await;
    app.add_member(&mut other, &carol, &bob, Role::Member).await;
    let body = TestApp::sealed_text(&other, &bob, 1, "elsewhere");
    let response = app.post_message(&bob.client, &other.hex(), &body).await;
    expect_status(response, StatusCode::CREATED, "another room").await;

    // A policy of 0 lifts the limit.
    app.expect_action(&mut room, &alice, policy(0), StatusCode::CREATED)
        .await;
    let body = TestApp::sealed_text(&room, &bob, 3, "unlimited");
    let response = app.post_message(&bob.client, &room.hex(), &body).await;
    expect_status(response, StatusCode::CREATED, "no limit").await;
}

#[tokio::test]
async fn posts_sent_at_once_count_against_the_limit_within_their_batch() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "bursty").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    app.expect_action(&mut room, &alice, policy(3), StatusCode::CREATED)
        .await;

    // Twelve posts at once, most of them stored together in one batch: exactly three of
    // bob's and three of alice's get through.
    let hex = room.hex();
    let posts = (1..=6u64).flat_map(|sequence| {
        [&alice, &bob].map(|user| {
            let body = TestApp::sealed_text(&room, user, sequence, "burst");
            let (app, hex) = (&app, hex.clone());
            async move {
                let response = app.post_message(&user.client, &hex, &body).await;
                (user.username.clone(), response.status())
            }
        })
    });
    let answers = futures_util::future::join_all(posts).await;
    for user in ["alice", "bob"] {
        let count = |status| {
            answers
                .iter()
                .filter(|(sender, answer)| sender == user && *answer == status)
                .count()
        };
        assert_eq!(count(StatusCode::CREATED), 3, "{user}: {answers:?}");
        assert_eq!(
            count(StatusCode::TOO_MANY_REQUESTS),
            3,
            "{user}: {answers:?}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE room_id = $1")
        .bind(room.room_id.0.as_slice())
        .fetch_one(&app.database().await)
        .await
        .unwrap();
    assert_eq!(stored, 6);
}
