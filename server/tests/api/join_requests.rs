//! Invites and join requests: who may ask, list and refuse; expiry, use counts, bans,
//! duplicates; approval by an add entry; the admins' live notification.

use common::api::{JoinRequestsResponse, RoomListResponse, ServerEvent};
use common::membership::{LogAction, Role};
use reqwest::StatusCode;

use crate::cast::{expect_status, Cast, Who, QUIET, TOKEN};
use crate::helpers::{error_message, json, now_ms, spawn_app};
use crate::ws_client::{event_within, next_event};

fn requesters(list: &JoinRequestsResponse) -> Vec<&str> {
    list.requests
        .iter()
        .map(|request| request.username.as_str())
        .collect()
}

#[tokio::test]
async fn every_role_against_the_join_request_endpoints() {
    let cast = Cast::new().await;
    let (app, room) = (&cast.app, cast.hex());

    // Asking to join: only non-members who are not banned and not already waiting.
    for who in Who::ALL {
        let (status, message) = match who {
            Who::Owner | Who::Admin | Who::Member => {
                (StatusCode::CONFLICT, "you are already a member")
            }
            Who::Pending => (StatusCode::CONFLICT, "a join request is already pending"),
            Who::Removed => (StatusCode::ACCEPTED, ""),
            Who::Banned => (StatusCode::FORBIDDEN, "you are banned from this room"),
            Who::Anonymous => (StatusCode::UNAUTHORIZED, "not logged in"),
        };
        let response = app.request_to_join(cast.client(who), &room, TOKEN).await;
        if status.is_success() {
            expect_status(response, status, &format!("{who:?} asks to join")).await;
        } else {
            assert_eq!(error_message(response, status).await, message, "{who:?}");
        }
    }

    // Listing: owners and admins; members 403; everyone else does not see the room.
    for who in Who::ALL {
        let response = app.list_join_requests(cast.client(who), &room).await;
        match who {
            Who::Owner | Who::Admin => {
                let list: JoinRequestsResponse = json(response).await;
                assert_eq!(requesters(&list), ["dave", "erin"], "{who:?}");
                assert_eq!(
                    list.requests[0].identity,
                    cast.dave.secrets.public_identity("dave")
                );
            }
            Who::Member => {
                let message = error_message(response, StatusCode::FORBIDDEN).await;
                assert_eq!(message, "only owners and admins may manage join requests");
            }
            Who::Pending | Who::Removed | Who::Banned => {
                let message = error_message(response, StatusCode::NOT_FOUND).await;
                assert_eq!(message, "room not found", "{who:?}");
            }
            Who::Anonymous => {
                error_message(response, StatusCode::UNAUTHORIZED).await;
            }
        }
    }

    // Refusing: the same rule; the admin refuses dave, then there is nothing to refuse.
    for who in [
        Who::Member,
        Who::Pending,
        Who::Removed,
        Who::Banned,
        Who::Anonymous,
    ] {
        let response = app
            .refuse_join_request(cast.client(who), &room, "dave")
            .await;
        let expected = match who {
            Who::Member => StatusCode::FORBIDDEN,
            Who::Anonymous => StatusCode::UNAUTHORIZED,
            _ => StatusCode::NOT_FOUND,
        };
        error_message(response, expected).await;
    }
    let response = app
        .refuse_join_request(cast.client(Who::Admin), &room, "dave")
        .await;
    expect_status(response, StatusCode::NO_CONTENT, "the admin refuses dave").await;
    let response = app
        .refuse_join_request(cast.client(Who::Owner), &room, "dave")
        .await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "join request not found"
    );
    let response = app
        .refuse_join_request(cast.client(Who::Owner), &room, "erin")
        .await;
    expect_status(response, StatusCode::NO_CONTENT, "the owner refuses erin").await;
    let list: JoinRequestsResponse =
        json(app.list_join_requests(&cast.alice.client, &room).await).await;
    assert!(list.requests.is_empty());
}

#[tokio::test]
async fn unknown_rooms_and_unknown_tokens_get_the_same_404() {
    let cast = Cast::new().await;
    let unknown_room = "ab".repeat(32);
    for (room, token) in [
        (unknown_room.as_str(), TOKEN),
        (cast.hex().as_str(), b"a guessed token".as_slice()),
        (cast.hex().as_str(), b"".as_slice()),
    ] {
        let response = cast
            .app
            .request_to_join(&cast.eve.client, room, token)
            .await;
        assert_eq!(
            error_message(response, StatusCode::NOT_FOUND).await,
            "invite not found"
        );
    }
    let response = cast
        .app
        .request_to_join(&cast.eve.client, "xyz", TOKEN)
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "malformed room id"
    );
}

#[tokio::test]
async fn an_expired_invite_is_410() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let eve = app.register_user("eve").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.publish_invite(&mut room, &alice, b"old link", now_ms() - 1, 5)
        .await;
    let response = app
        .request_to_join(&eve.client, &room.hex(), b"old link")
        .await;
    assert_eq!(
        error_message(response, StatusCode::GONE).await,
        "invite expired"
    );
    let list: JoinRequestsResponse =
        json(app.list_join_requests(&alice.client, &room.hex()).await).await;
    assert!(list.requests.is_empty());
}

#[tokio::test]
async fn an_invite_admits_max_uses_requests_then_410() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.publish_invite(&mut room, &alice, b"two uses", now_ms() + 60_000, 2)
        .await;
    let mut users = Vec::new();
    for name in ["bob", "carol", "dave"] {
        users.push(app.register_user(name).await);
    }
    for user in &users[..2] {
        let response = app
            .request_to_join(&user.client, &room.hex(), b"two uses")
            .await;
        expect_status(response, StatusCode::ACCEPTED, &user.username).await;
    }
    let response = app
        .request_to_join(&users[2].client, &room.hex(), b"two uses")
        .await;
    assert_eq!(
        error_message(response, StatusCode::GONE).await,
        "invite used up"
    );
    // Refusing a request does not give its use back.
    let response = app
        .refuse_join_request(&alice.client, &room.hex(), "bob")
        .await;
    expect_status(response, StatusCode::NO_CONTENT, "refuse bob").await;
    let response = app
        .request_to_join(&users[2].client, &room.hex(), b"two uses")
        .await;
    assert_eq!(
        error_message(response, StatusCode::GONE).await,
        "invite used up"
    );
    let list: JoinRequestsResponse =
        json(app.list_join_requests(&alice.client, &room.hex()).await).await;
    assert_eq!(requesters(&list), ["carol"]);
}

#[tokio::test]
async fn an_add_entry_approves_and_clears_the_request() {
    let mut cast = Cast::new().await;
    let list: JoinRequestsResponse = json(
        cast.app
            .list_join_requests(&cast.bob.client, &cast.hex())
            .await,
    )
    .await;
    let request = &list.requests[0];
    assert_eq!(request.username, "dave");
    assert!(request.requested_at_ms > 0);
    // The admin records the keys the directory showed with the request.
    let approve = LogAction::AddMember {
        username: request.username.clone(),
        keys: *request.identity.keys(),
        role: Role::Member,
    };
    cast.app
        .expect_action(&mut cast.room, &cast.bob, approve, StatusCode::CREATED)
        .await;
    let list: JoinRequestsResponse = json(
        cast.app
            .list_join_requests(&cast.bob.client, &cast.hex())
            .await,
    )
    .await;
    assert!(list.requests.is_empty());
    let dave_rooms: RoomListResponse = json(cast.app.list_rooms(&cast.dave.client).await).await;
    assert_eq!(dave_rooms.rooms.len(), 1);
    assert_eq!(dave_rooms.rooms[0].role, Role::Member);
    // A member now, dave cannot ask again.
    let response = cast
        .app
        .request_to_join(&cast.dave.client, &cast.hex(), TOKEN)
        .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "you are already a member"
    );
}

#[tokio::test]
async fn banning_a_waiting_user_drops_their_request_and_refuses_the_next() {
    let mut cast = Cast::new().await;
    let ban = LogAction::Ban {
        username: "dave".to_owned(),
    };
    cast.app
        .expect_action(&mut cast.room, &cast.bob, ban, StatusCode::CREATED)
        .await;
    let list: JoinRequestsResponse = json(
        cast.app
            .list_join_requests(&cast.bob.client, &cast.hex())
            .await,
    )
    .await;
    assert!(list.requests.is_empty());
    let response = cast
        .app
        .request_to_join(&cast.dave.client, &cast.hex(), TOKEN)
        .await;
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "you are banned from this room"
    );
    // The log refuses to add a banned user, whatever the server would do.
    let add = LogAction::AddMember {
        username: "dave".to_owned(),
        keys: cast.dave.secrets.public_keys(),
        role: Role::Member,
    };
    let response = cast.app.append_action(&mut cast.room, &cast.bob, add).await;
    let message = error_message(response, StatusCode::CONFLICT).await;
    assert!(message.contains("dave is banned"), "{message}");
}

#[tokio::test]
async fn owners_and_admins_are_told_of_a_join_request_over_the_websocket() {
    let cast = Cast::new().await;
    let mut alice_socket = cast.app.connect_ws(&cast.alice).await;
    let mut bob_socket = cast.app.connect_ws(&cast.bob).await;
    let mut carol_socket = cast.app.connect_ws(&cast.carol).await;
    let response = cast
        .app
        .request_to_join(&cast.eve.client, &cast.hex(), TOKEN)
        .await;
    expect_status(response, StatusCode::ACCEPTED, "eve asks to join").await;
    for socket in [&mut alice_socket, &mut bob_socket] {
        match next_event(socket).await {
            ServerEvent::JoinRequested { room_id, username } => {
                assert_eq!(room_id, cast.room.room_id);
                assert_eq!(username, "eve");
            }
            other => panic!("expected a join request, got {other:?}"),
        }
    }
    let event = event_within(&mut carol_socket, QUIET).await;
    assert!(event.is_none(), "a plain member was sent {event:?}");
}
