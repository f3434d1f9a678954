//! Room administration fixtures: signing any log action as a member's client would, rotating
//! with envelopes for everyone, and a room with one user in each role.

use std::time::Duration;

use common::membership::{LogAction, Role, SignedLogEntry};
use common::room_key::{rotate_with, EpochChange, KeyEnvelope, RoomMetadata};
use common::OsRng;
use reqwest::{Client, Response, StatusCode};

use crate::helpers::{now_ms, spawn_app, TestApp, TestRoom, TestUser};

/// The invite token the cast's room publishes.
pub const TOKEN: &[u8] = b"the cast's invite token";

/// How long a test waits before concluding that an event will not come.
pub const QUIET: Duration = Duration::from_millis(400);

impl TestRoom {
    /// `action` by `author`, built on the room's current state and signed (not yet sent).
    pub fn entry(&self, author: &TestUser, action: LogAction) -> SignedLogEntry {
        self.state
            .next_entry(&author.username, now_ms(), action)
            .sign(&author.secrets)
    }
}

/// Asserts a response's status, showing the body when it differs.
pub async fn expect_status(response: Response, expected: StatusCode, what: &str) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, expected, "{what}: {text}");
}

impl TestApp {
    /// Signs `action` as `author`, appends it, and applies it to the local state when the
    /// server accepts it (201 or 204).
    pub async fn append_action(
        &self,
        room: &mut TestRoom,
        author: &TestUser,
        action: LogAction,
    ) -> Response {
        let entry = room.entry(author, action);
        let response = self.append_log(&author.client, &room.hex(), &entry).await;
        if response.status().is_success() {
            room.state.apply(&entry).expect("an accepted entry applies");
        }
        response
    }

    /// Like [`TestApp::append_action`], asserting that the server answers `expected`.
    pub async fn expect_action(
        &self,
        room: &mut TestRoom,
        author: &TestUser,
        action: LogAction,
        expected: StatusCode,
    ) {
        let what = format!("{} by {}", action.name(), author.username);
        let response = self.append_action(room, author, action).await;
        expect_status(response, expected, &what).await;
    }

    /// Rotates as `author`: appends the rotate entry and, when the server accepts it, seals
    /// the new key to every member (`author` included) and uploads the envelopes.
    pub async fn rotate_room(&self, room: &mut TestRoom, author: &TestUser) -> Response {
        self.rotate_room_with(room, author, EpochChange::Rotate)
            .await
    }

    /// Like [`TestApp::rotate_room`], with `change` in the entry that starts the epoch; the
    /// metadata is re-encrypted when `author` is an admin and left as it was otherwise.
    pub async fn rotate_room_with(
        &self,
        room: &mut TestRoom,
        author: &TestUser,
        change: EpochChange,
    ) -> Response {
        let is_admin = room
            .state
            .member(&author.username)
            .is_some_and(|member| member.role >= Role::Admin);
        let metadata = RoomMetadata::named("team");
        let rotation = rotate_with(
            &room.state,
            change,
            &author.username,
            &author.secrets,
            is_admin.then_some(&metadata),
            now_ms(),
            &mut OsRng,
        )
        .expect("the local state allows the rotation");
        let epoch = rotation.state.current_epoch();
        let envelopes = rotation
            .state
            .members()
            .keys()
            .map(|member| {
                KeyEnvelope::seal(
                    &rotation.state,
                    epoch,
                    &rotation.key,
                    member,
                    &author.username,
                    &author.secrets,
                    &mut OsRng,
                )
                .expect("envelope seals")
            })
            .collect();
        let response = self
            .append_log_with(&author.client, &room.hex(), &rotation.entry, envelopes)
            .await;
        if response.status().is_success() {
            room.state = rotation.state;
            room.keys.insert(epoch, rotation.key.clone());
            room.key = rotation.key;
        }
        response
    }

    /// Publishes an invite for `token` as `author`.
    pub async fn publish_invite(
        &self,
        room: &mut TestRoom,
        author: &TestUser,
        token: &[u8],
        expires_at_ms: u64,
        max_uses: u32,
    ) {
        let action = LogAction::Invite {
            token_hash: common::membership::invite_token_hash(token),
            expires_at_ms,
            max_uses,
        };
        self.expect_action(room, author, action, StatusCode::CREATED)
            .await;
    }
}

/// One user in each relation to a room, for checking every endpoint against every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// alice, who created the room.
    Owner,
    /// bob, added as admin.
    Admin,
    /// carol, added as member.
    Member,
    /// dave, who asked to join with the invite and waits.
    Pending,
    /// erin, added then removed.
    Removed,
    /// frank, added then banned.
    Banned,
    /// No session at all.
    Anonymous,
}

impl Who {
    /// Every role, in the order of the enum.
    pub const ALL: [Who; 7] = [
        Who::Owner,
        Who::Admin,
        Who::Member,
        Who::Pending,
        Who::Removed,
        Who::Banned,
        Who::Anonymous,
    ];
}

/// A room "team" with one user in each role, the invite [`TOKEN`] (an hour, ten uses, one
/// used by dave), and eve, a user who has nothing to do with the room.
pub struct Cast {
    /// The server.
    pub app: TestApp,
    /// The room as alice's client knows it.
    pub room: TestRoom,
    /// Owner.
    pub alice: TestUser,
    /// Admin.
    pub bob: TestUser,
    /// Member.
    pub carol: TestUser,
    /// Pending join request.
    pub dave: TestUser,
    /// Removed.
    pub erin: TestUser,
    /// Banned.
    pub frank: TestUser,
    /// Registered, unrelated.
    pub eve: TestUser,
}

impl Cast {
    /// Builds the cast on a fresh server.
    pub async fn new() -> Self {
        Self::on(spawn_app().await).await
    }

    /// Builds the cast on `app`.
    pub async fn on(app: TestApp) -> Self {
        let alice = app.register_user("alice").await;
        let bob = app.register_user("bob").await;
        let carol = app.register_user("carol").await;
        let dave = app.register_user("dave").await;
        let erin = app.register_user("erin").await;
        let frank = app.register_user("frank").await;
        let eve = app.register_user("eve").await;
        let mut room = app.create_test_room(&alice, "team").await;
        app.add_member(&mut room, &alice, &bob, Role::Admin).await;
        app.add_member(&mut room, &bob, &carol, Role::Member).await;
        app.add_member(&mut room, &bob, &erin, Role::Member).await;
        app.add_member(&mut room, &bob, &frank, Role::Member).await;
        app.publish_invite(&mut room, &bob, TOKEN, now_ms() + 3_600_000, 10)
            .await;
        let response = app.request_to_join(&dave.client, &room.hex(), TOKEN).await;
        expect_status(response, StatusCode::ACCEPTED, "dave asks to join").await;
        // As clients do: each removal starts the next epoch in the same entry.
        for change in [
            EpochChange::RemoveMember("erin".to_owned()),
            EpochChange::Ban("frank".to_owned()),
        ] {
            let response = app.rotate_room_with(&mut room, &bob, change).await;
            expect_status(response, StatusCode::CREATED, "bob removes erin and frank").await;
        }
        Self {
            app,
            room,
            alice,
            bob,
            carol,
            dave,
            erin,
            frank,
            eve,
        }
    }

    /// The user in role `who`, or `None` for [`Who::Anonymous`].
    pub fn user(&self, who: Who) -> Option<&TestUser> {
        match who {
            Who::Owner => Some(&self.alice),
            Who::Admin => Some(&self.bob),
            Who::Member => Some(&self.carol),
            Who::Pending => Some(&self.dave),
            Who::Removed => Some(&self.erin),
            Who::Banned => Some(&self.frank),
            Who::Anonymous => None,
        }
    }

    /// The HTTP client of role `who`.
    pub fn client(&self, who: Who) -> &Client {
        self.user(who)
            .map_or(&self.app.anonymous, |user| &user.client)
    }

    /// The room id as written in URLs.
    pub fn hex(&self) -> String {
        self.room.hex()
    }
}

/// Calls every room endpoint a member uses (log, envelopes, messages, key requests, join
/// requests) as `user` with a plausible body, and returns each answer's name, status and
/// error message.
pub async fn room_endpoint_answers(
    app: &TestApp,
    user: &TestUser,
    room: &TestRoom,
) -> Vec<(&'static str, StatusCode, String)> {
    let hex = room.hex();
    let client = &user.client;
    let envelope = KeyEnvelope::seal(
        &room.state,
        room.state.current_epoch(),
        &room.key,
        &room
            .state
            .members()
            .keys()
            .next()
            .cloned()
            .unwrap_or_default(),
        &user.username,
        &user.secrets,
        &mut OsRng,
    )
    .expect("envelope seals");
    let responses = [
        ("GET log", app.get_log(client, &hex).await),
        (
            "POST log",
            app.append_log(client, &hex, &room.entry(user, LogAction::ClearHistory))
                .await,
        ),
        ("GET envelopes", app.get_envelopes(client, &hex).await),
        (
            "POST envelopes",
            app.put_envelopes(client, &hex, vec![envelope]).await,
        ),
        ("GET messages", app.get_messages(client, &hex, "").await),
        (
            "POST messages",
            app.post_message(client, &hex, &TestApp::sealed_text(room, user, 1, "hi"))
                .await,
        ),
        ("POST key-requests", app.request_key(client, &hex, 0).await),
        (
            "GET join-requests",
            app.list_join_requests(client, &hex).await,
        ),
        (
            "DELETE join-requests",
            app.refuse_join_request(client, &hex, "dave").await,
        ),
    ];
    let mut answers = Vec::new();
    for (name, response) in responses {
        let status = response.status();
        let body: common::api::ErrorBody =
            response.json().await.unwrap_or(common::api::ErrorBody {
                code: common::api::ErrorCode::Unknown,
                error: String::new(),
                retry_after_s: None,
                limit_bytes: None,
            });
        answers.push((name, status, body.error));
    }
    answers
}

/// Asserts that every room endpoint answers `user` with 404 `room not found`.
pub async fn assert_room_is_hidden_from(app: &TestApp, user: &TestUser, room: &TestRoom) {
    for (name, status, error) in room_endpoint_answers(app, user, room).await {
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::NOT_FOUND, "room not found"),
            "{name} by {}",
            user.username
        );
    }
}
