//! Every administrative log action through `POST /api/rooms/{id}/log`: allowed for the right
//! role, refused with the right status for the wrong one, and the state the server mirrors
//! (roles, epoch, rotation pending) in `GET /api/rooms`.

use common::api::{MessagesResponse, RoomListResponse, RoomSummary};
use common::membership::{invite_token_hash, LogAction, Role, RoomPolicy};
use common::room_key::{rotate, seal_metadata, RoomMetadata};
use common::OsRng;
use reqwest::StatusCode;

use crate::cast::{expect_status, Cast, TOKEN};
use crate::helpers::{error_message, json, now_ms, TestApp, TestRoom, TestUser};

/// The caller's summary of the cast's room.
async fn summary(app: &TestApp, user: &TestUser) -> RoomSummary {
    let list: RoomListResponse = json(app.list_rooms(&user.client).await).await;
    assert_eq!(list.rooms.len(), 1, "{} sees one room", user.username);
    list.rooms[0].clone()
}

fn remove(username: &str) -> LogAction {
    LogAction::RemoveMember {
        username: username.to_owned(),
    }
}

fn ban(username: &str) -> LogAction {
    LogAction::Ban {
        username: username.to_owned(),
    }
}

fn set_role(username: &str, role: Role) -> LogAction {
    LogAction::SetRole {
        username: username.to_owned(),
        role,
    }
}

fn invite(token: &[u8], max_uses: u32) -> LogAction {
    LogAction::Invite {
        token_hash: invite_token_hash(token),
        expires_at_ms: now_ms() + 60_000,
        max_uses,
    }
}

fn metadata_entry(room: &TestRoom, name: &str) -> LogAction {
    let epoch = room.state.current_epoch();
    LogAction::SetMetadata {
        encrypted_metadata: seal_metadata(
            &room.key,
            &room.room_id,
            epoch,
            &RoomMetadata::named(name),
            &mut OsRng,
        ),
    }
}

#[tokio::test]
async fn a_plain_member_may_not_administer() {
    let mut cast = Cast::new().await;
    let (app, carol) = (&cast.app, &cast.carol);
    let eve_keys = cast.eve.secrets.public_keys();
    let next_epoch = common::membership::NewEpoch {
        epoch: cast.room.state.current_epoch() + 1,
        key_commitment: [0; 32],
        encrypted_metadata: Vec::new(),
    };
    let refused = [
        LogAction::AddMember {
            username: "eve".to_owned(),
            keys: eve_keys,
            role: Role::Member,
        },
        remove("bob"),
        ban("eve"),
        set_role("bob", Role::Member),
        LogAction::SetPolicy {
            policy: RoomPolicy::default(),
        },
        invite(b"carol's own", 1),
        metadata_entry(&cast.room, "carol's room"),
        LogAction::ClearHistory,
        LogAction::DeleteRoom,
        LogAction::Rotate {
            epoch: next_epoch.epoch,
            key_commitment: [0; 32],
            encrypted_metadata: Vec::new(),
        },
        LogAction::RemoveMemberAndRotate {
            username: "bob".to_owned(),
            new_epoch: next_epoch.clone(),
        },
        LogAction::BanAndRotate {
            username: "bob".to_owned(),
            new_epoch: next_epoch.clone(),
        },
        LogAction::AddMemberAndRotate {
            username: "eve".to_owned(),
            keys: eve_keys,
            role: Role::Member,
            new_epoch: next_epoch.clone(),
        },
        LogAction::ClearHistoryAndRotate {
            new_epoch: next_epoch.clone(),
        },
        LogAction::SetRotationSchedule {
            schedule: common::membership::RotationSchedule::default(),
        },
    ];
    for action in refused {
        let name = action.name();
        let response = app.append_action(&mut cast.room, carol, action).await;
        let message = error_message(response, StatusCode::FORBIDDEN).await;
        assert!(
            message.contains("carol (member) may not"),
            "{name}: {message}"
        );
    }
    assert_eq!(
        summary(app, &cast.alice).await.log_length,
        cast.room.state.length()
    );
}

#[tokio::test]
async fn an_admin_administers_below_their_rank() {
    let mut cast = Cast::new().await;
    let (app, bob) = (&cast.app, &cast.bob);
    let room = &mut cast.room;
    // Not allowed: above an admin's rank, or aimed at themselves.
    let carol_keys = cast.carol.secrets.public_keys();
    let eve_as_admin = LogAction::AddMember {
        username: "eve".to_owned(),
        keys: cast.eve.secrets.public_keys(),
        role: Role::Admin,
    };
    for (action, status) in [
        (eve_as_admin, StatusCode::FORBIDDEN),
        (remove("alice"), StatusCode::FORBIDDEN),
        (ban("alice"), StatusCode::FORBIDDEN),
        (set_role("carol", Role::Admin), StatusCode::FORBIDDEN),
        (LogAction::DeleteRoom, StatusCode::FORBIDDEN),
        (remove("bob"), StatusCode::FORBIDDEN),
        (ban("bob"), StatusCode::FORBIDDEN),
        // Out of date with the log: the targets are not members, or already banned.
        (remove("eve"), StatusCode::CONFLICT),
        (remove("erin"), StatusCode::CONFLICT),
        (ban("frank"), StatusCode::CONFLICT),
        (
            LogAction::AddMember {
                username: "carol".to_owned(),
                keys: carol_keys,
                role: Role::Member,
            },
            StatusCode::CONFLICT,
        ),
        // Never valid.
        (invite(b"no uses", 0), StatusCode::BAD_REQUEST),
        (invite(TOKEN, 3), StatusCode::BAD_REQUEST),
    ] {
        app.expect_action(room, bob, action, status).await;
    }
    // Allowed: invites, policy, metadata, bans of outsiders, removing members, clearing.
    for action in [
        invite(b"another link", 3),
        LogAction::SetPolicy {
            policy: RoomPolicy {
                messages_per_minute: 30,
                ..RoomPolicy::default()
            },
        },
        metadata_entry(room, "team, renamed"),
        ban("eve"),
        remove("carol"),
        LogAction::ClearHistory,
    ] {
        app.expect_action(room, bob, action, StatusCode::CREATED)
            .await;
    }
    assert!(room.state.banned().contains("eve"));
    assert_eq!(room.state.policy().messages_per_minute, 30);
    let bob_summary = summary(app, bob).await;
    assert_eq!(bob_summary.log_length, room.state.length());
    assert!(bob_summary.rotation_pending);
}

#[tokio::test]
async fn only_the_owner_sets_roles_and_the_owner_cannot_leave() {
    let mut cast = Cast::new().await;
    let (app, alice) = (&cast.app, &cast.alice);
    app.expect_action(
        &mut cast.room,
        alice,
        set_role("carol", Role::Admin),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(summary(app, &cast.carol).await.role, Role::Admin);
    app.expect_action(
        &mut cast.room,
        alice,
        set_role("bob", Role::Member),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(summary(app, &cast.bob).await.role, Role::Member);
    for (action, status) in [
        (set_role("bob", Role::Owner), StatusCode::FORBIDDEN),
        (set_role("alice", Role::Member), StatusCode::FORBIDDEN),
        (set_role("eve", Role::Admin), StatusCode::CONFLICT),
        (LogAction::Leave, StatusCode::FORBIDDEN),
    ] {
        app.expect_action(&mut cast.room, alice, action, status)
            .await;
    }
    // Bob, demoted, may no longer administer.
    let response = app
        .append_action(&mut cast.room, &cast.bob, invite(b"late", 1))
        .await;
    let message = error_message(response, StatusCode::FORBIDDEN).await;
    assert!(message.contains("bob (member) may not"), "{message}");
}

#[tokio::test]
async fn a_member_leaves_and_a_rotation_is_pending_until_someone_rotates() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    // The cast removed erin and banned frank, each in an entry that started an epoch: no
    // rotation is pending.
    let before = summary(app, &cast.alice).await;
    assert_eq!((before.epoch, before.rotation_pending), (2, false));

    app.expect_action(
        &mut cast.room,
        &cast.carol,
        LogAction::Leave,
        StatusCode::CREATED,
    )
    .await;
    let list: RoomListResponse = json(app.list_rooms(&cast.carol.client).await).await;
    assert!(list.rooms.is_empty());
    let response = app.get_log(&cast.carol.client, &cast.hex()).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "room not found"
    );
    assert!(summary(app, &cast.bob).await.rotation_pending);
    app.rotate_room(&mut cast.room, &cast.bob).await;
    let after = summary(app, &cast.alice).await;
    assert_eq!((after.epoch, after.rotation_pending), (3, false));
}

#[tokio::test]
async fn a_rotation_moves_the_epoch_and_old_epoch_messages_are_refused() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let old_epoch_message = TestApp::sealed_text(&cast.room, &cast.carol, 1, "before");
    // Someone else's rotation may not be sent by a plain member; one must name the next epoch.
    let by_bob = rotate(
        &cast.room.state,
        "bob",
        &cast.bob.secrets,
        &RoomMetadata::named("team"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let response = app
        .append_log(&cast.carol.client, &cast.hex(), &by_bob.entry)
        .await;
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "log entries must be signed by the logged-in user"
    );
    let current = cast.room.state.current_epoch();
    let skipping = cast.room.entry(
        &cast.bob,
        LogAction::Rotate {
            epoch: current + 2,
            key_commitment: [0; 32],
            encrypted_metadata: Vec::new(),
        },
    );
    let response = app
        .append_log(&cast.bob.client, &cast.hex(), &skipping)
        .await;
    let message = error_message(response, StatusCode::CONFLICT).await;
    assert!(
        message.contains(&format!(
            "expected epoch {}, found {}",
            current + 1,
            current + 2
        )),
        "{message}"
    );

    let response = app.rotate_room(&mut cast.room, &cast.alice).await;
    expect_status(response, StatusCode::CREATED, "the owner rotates").await;
    let carol_summary = summary(app, &cast.carol).await;
    assert_eq!(carol_summary.epoch, current + 1);
    assert!(!carol_summary.rotation_pending);

    let response = app
        .post_message(&cast.carol.client, &cast.hex(), &old_epoch_message)
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "stale epoch"
    );
    let new_epoch_message = TestApp::sealed_text(&cast.room, &cast.carol, 2, "after");
    let response = app
        .post_message(&cast.carol.client, &cast.hex(), &new_epoch_message)
        .await;
    expect_status(response, StatusCode::CREATED, "a message at the new epoch").await;
    // Carol got the new key from the rotation's envelopes, and it matches the commitment.
    let envelopes: common::api::EnvelopesResponse =
        json(app.get_envelopes(&cast.carol.client, &cast.hex()).await).await;
    let newest = envelopes.envelopes.last().unwrap();
    assert_eq!(newest.epoch, current + 1);
    assert_eq!(
        newest
            .open(&cast.room.state, "carol", &cast.carol.secrets)
            .unwrap(),
        cast.room.key
    );
}

#[tokio::test]
async fn clearing_the_history_deletes_the_rooms_messages_only() {
    let mut cast = Cast::new().await;
    let app = &cast.app;
    let other_room = app.create_test_room(&cast.carol, "elsewhere").await;
    for sequence in 1..=3 {
        let body = TestApp::sealed_text(&cast.room, &cast.carol, sequence, "soon gone");
        expect_status(
            app.post_message(&cast.carol.client, &cast.hex(), &body)
                .await,
            StatusCode::CREATED,
            "post",
        )
        .await;
    }
    let kept = TestApp::sealed_text(&other_room, &cast.carol, 1, "kept");
    expect_status(
        app.post_message(&cast.carol.client, &other_room.hex(), &kept)
            .await,
        StatusCode::CREATED,
        "post",
    )
    .await;

    app.expect_action(
        &mut cast.room,
        &cast.bob,
        LogAction::ClearHistory,
        StatusCode::CREATED,
    )
    .await;
    let page: MessagesResponse =
        json(app.get_messages(&cast.carol.client, &cast.hex(), "").await).await;
    assert!(page.messages.is_empty());
    assert!(!page.has_more);
    let page: MessagesResponse = json(
        app.get_messages(&cast.carol.client, &other_room.hex(), "")
            .await,
    )
    .await;
    assert_eq!(page.messages.len(), 1);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE room_id = $1")
        .bind(cast.room.room_id.0.as_slice())
        .fetch_one(&app.database().await)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
