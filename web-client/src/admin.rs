//! Room administration from the browser: adding members (by username, by approving a join
//! request), invites, roles, removal, bans, leaving, policy, clearing history, deleting, and
//! direct conversations. Every change is a signed log entry; removals, bans of members,
//! history clearing and adds under the "since joining" policy start the next epoch in that
//! same entry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use client::{Command, Input};
use common::api::endpoints::{
    JoinRequestParams, RefuseJoinRequest, RequestToJoin, RoomParams, UserIdentity, UserParams,
};
use common::api::JoinRequestBody;
use common::identity::{validate_username, PublicIdentity};
use common::membership::{
    invite_token_hash, LogAction, Role, RoomId, RoomPolicy, RotationSchedule,
};
use common::primitives::random_bytes;
use common::room_key::RoomMetadata;
use common::wire::Base64;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{now_ms, Chat, ChatError};
use crate::http;

/// The prefix of an invite link's fragment: `#join=<room id hex>.<token base64url>`. The
/// token travels in the fragment, which browsers never send to the server.
const INVITE_FRAGMENT: &str = "#join=";

/// Parses an invite from the page's location fragment, if it carries one.
pub fn invite_from_location() -> Option<(RoomId, Vec<u8>)> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let rest = hash.strip_prefix(INVITE_FRAGMENT)?;
    let (room, token) = rest.split_once('.')?;
    let room_id = RoomId::from_hex(room).ok()?;
    let token = URL_SAFE_NO_PAD.decode(token).ok()?;
    Some((room_id, token))
}

fn clear_location_fragment() {
    if let Some(window) = web_sys::window() {
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
        }
    }
}

impl Chat {
    /// Fetches and verifies a user's public identity, and checks it against the pins.
    async fn trusted_identity(&self, username: &str) -> Result<PublicIdentity, ChatError> {
        validate_username(username).map_err(ChatError::from_display)?;
        // Deserializing verifies the self-signature and refuses low-order keys.
        let user = UserParams {
            username: username.to_owned(),
        };
        let identity = http::call::<UserIdentity>(&user, &()).await?;
        if identity.username() != username {
            return Err(ChatError::Other(
                "server returned another user's identity".into(),
            ));
        }
        self.check_trusted(username, identity.keys(), "the server's directory")
            .await?;
        Ok(identity)
    }

    /// Adds a member by username with `role`: the client core writes the add (under "since
    /// joining" in an entry that starts an epoch the newcomer joins in, under "full history"
    /// as a plain add with every key the policy lets them have).
    pub async fn add_member_as(
        &self,
        room_id: RoomId,
        username: &str,
        role: Role,
    ) -> Result<(), ChatError> {
        let username = username.trim().to_lowercase();
        let identity = self.trusted_identity(&username).await?;
        self.command(room_id, Command::Add { identity, role }).await
    }

    /// Adds a member by username.
    pub async fn add_member(&self, room_id: RoomId, username: &str) -> Result<(), ChatError> {
        self.add_member_as(room_id, username, Role::Member).await
    }

    /// Publishes an invite valid for `hours` hours and `max_uses` join requests, and returns
    /// the link to share. Only the token's hash goes into the log.
    pub async fn create_invite(
        &self,
        room_id: RoomId,
        hours: u64,
        max_uses: u32,
    ) -> Result<String, ChatError> {
        let token: [u8; 32] = random_bytes(&mut OsRng);
        self.command(
            room_id,
            Command::Append(LogAction::Invite {
                token_hash: invite_token_hash(&token),
                expires_at_ms: now_ms() + hours.max(1) * 3_600_000,
                max_uses: max_uses.max(1),
            }),
        )
        .await?;
        let origin = web_sys::window()
            .and_then(|window| window.location().origin().ok())
            .unwrap_or_default();
        Ok(format!(
            "{origin}/{INVITE_FRAGMENT}{}.{}",
            room_id.to_hex(),
            URL_SAFE_NO_PAD.encode(token)
        ))
    }

    /// Sends a join request with the invite this tab was opened with.
    pub async fn request_join(&self) -> Result<(), ChatError> {
        let (room_id, token) = self
            .invite
            .get_untracked()
            .ok_or_else(|| ChatError::Other("no invite to use".into()))?;
        http::call::<RequestToJoin>(
            &RoomParams { room_id },
            &JoinRequestBody {
                token: Base64(token),
            },
        )
        .await?;
        self.invite.set(None);
        clear_location_fragment();
        Ok(())
    }

    /// Approves a join request: adds the requester with the identity the server gave, if it
    /// matches this user's pins, and seals them the keys.
    pub async fn approve_join(&self, room_id: RoomId, username: &str) -> Result<(), ChatError> {
        let request = self
            .rooms
            .with_untracked(|rooms| {
                rooms
                    .get(&room_id)?
                    .join_requests
                    .iter()
                    .find(|request| request.username == username)
                    .cloned()
            })
            .ok_or_else(|| ChatError::Other("no such join request".into()))?;
        self.check_trusted(username, request.identity.keys(), "a join request")
            .await?;
        let command = Command::Add {
            identity: request.identity,
            role: Role::Member,
        };
        self.command(room_id, command).await?;
        self.drop_join_request(room_id, username);
        Ok(())
    }

    /// Refuses a join request.
    pub async fn refuse_join(&self, room_id: RoomId, username: &str) -> Result<(), ChatError> {
        let request = JoinRequestParams {
            room_id,
            username: username.to_owned(),
        };
        http::call::<RefuseJoinRequest>(&request, &()).await?;
        self.drop_join_request(room_id, username);
        Ok(())
    }

    fn drop_join_request(&self, room_id: RoomId, username: &str) {
        self.update_room(&room_id, |room| {
            room.join_requests
                .retain(|request| request.username != username);
        });
    }

    /// Removes (or bans) a member in an entry that starts the next epoch, whose key is sealed
    /// only to the remaining members: from that entry on, nothing is written under a key the
    /// removed member holds. Banning someone who is not a member changes no key.
    pub async fn remove_member(
        &self,
        room_id: RoomId,
        username: &str,
        ban: bool,
    ) -> Result<(), ChatError> {
        let command = Command::Remove {
            username: username.to_owned(),
            ban,
        };
        self.command(room_id, command).await
    }

    /// Changes a member's role (owner only).
    pub async fn set_role(
        &self,
        room_id: RoomId,
        username: &str,
        role: Role,
    ) -> Result<(), ChatError> {
        let action = LogAction::SetRole {
            username: username.to_owned(),
            role,
        };
        self.command(room_id, Command::Append(action)).await
    }

    /// Leaves the room; a remaining member's client rotates the key afterwards (the server
    /// takes no message until one has).
    pub async fn leave(&self, room_id: RoomId) -> Result<(), ChatError> {
        self.command(room_id, Command::Append(LogAction::Leave))
            .await?;
        self.feed(Input::Forget(room_id)).await;
        Ok(())
    }

    /// Deletes the room (owner): the server removes everything of it.
    pub async fn delete_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        self.command(room_id, Command::Append(LogAction::DeleteRoom))
            .await
    }

    /// Clears the stored history (admins) in an entry that starts the next epoch.
    pub async fn clear_history(&self, room_id: RoomId) -> Result<(), ChatError> {
        self.command(room_id, Command::ClearHistory).await
    }

    /// Sets the room policy (admins).
    pub async fn set_policy(&self, room_id: RoomId, policy: RoomPolicy) -> Result<(), ChatError> {
        self.command(room_id, Command::Append(LogAction::SetPolicy { policy }))
            .await
    }

    /// Sets when the room key is rotated on schedule (admins).
    pub async fn set_rotation_schedule(
        &self,
        room_id: RoomId,
        schedule: RotationSchedule,
    ) -> Result<(), ChatError> {
        schedule.validate().map_err(ChatError::from_display)?;
        let action = LogAction::SetRotationSchedule { schedule };
        self.command(room_id, Command::Append(action)).await
    }

    /// Renames the room or changes its topic (admins), encrypted under the current key.
    pub async fn set_metadata(
        &self,
        room_id: RoomId,
        metadata: RoomMetadata,
    ) -> Result<(), ChatError> {
        metadata.validate().map_err(ChatError::from_display)?;
        self.command(room_id, Command::SetMetadata(metadata)).await
    }

    /// Opens the direct conversation with `username`, creating it in one step if needed: a
    /// two-member room (the other person as admin) listed under their name.
    pub async fn message_user(&self, username: &str) -> Result<(), ChatError> {
        let username = username.trim().to_lowercase();
        let me = self.me();
        if username == me {
            return Err(ChatError::Other("that is you".into()));
        }
        let existing = self.rooms.with_untracked(|rooms| {
            rooms
                .values()
                .find(|view| {
                    view.metadata
                        .as_ref()
                        .is_some_and(|metadata| metadata.direct)
                        && view.state.as_ref().is_ok_and(|state| {
                            state.members().len() == 2 && state.member(&username).is_some()
                        })
                })
                .map(|view| view.room_id)
        });
        if let Some(room_id) = existing {
            self.selected.set(Some(room_id));
            return Ok(());
        }
        let identity = self.trusted_identity(&username).await?;
        let room_id = self
            .create_room_with(RoomMetadata {
                direct: true,
                ..RoomMetadata::default()
            })
            .await?;
        // A plain add in the new, empty room; the core seals the newcomer the key with it.
        let action = LogAction::AddMember {
            username: username.clone(),
            keys: *identity.keys(),
            role: Role::Admin,
        };
        self.command(room_id, Command::Append(action)).await
    }
}
