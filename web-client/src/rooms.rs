//! The browser's driver of the client core: it hands the [`client::Machine`] what happened
//! (a room's sync answers, WebSocket events, the answers to the requests it asked for,
//! timers, the user's commands) and does what it returns, over HTTP and browser timers. What
//! to fetch, open, check, warn about, rotate, hand over or write is decided in the core.

use std::collections::VecDeque;

use client::{AppendOutcome, Command, Effect, Input, PostOutcome, SyncAnswers, MAX_CATCH_UP_PAGES};
use common::api::endpoints::{
    AppendLog, CreateRoom, GetEnvelopes, GetLog, ListJoinRequests, ListMessages, ListRooms,
    NoParams, PageQuery, PostMessage, PutEnvelopes, RequestKey, RoomParams,
};
use common::api::{CreateRoomRequest, RoomListResponse, ServerEvent};
use common::membership::{Role, RoomId};
use common::message::MessageBody;
use common::room_key::{create_room, RoomMetadata};
use common::wire::Base64;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{now_ms, Chat, ChatError};
use crate::http::{self, HttpError};

/// Messages per history page (the server allows up to 200).
const PAGE_SIZE: u32 = 100;
/// How long a command waits for a write queued behind another one, which finishes in the
/// task that drives that one: polls of [`COMMAND_POLL_MS`].
const COMMAND_POLLS: u32 = 1_200;
/// The pause between two looks at whether a queued command finished, in milliseconds.
const COMMAND_POLL_MS: u32 = 50;

impl Chat {
    /// Loads every room of the user through the client core.
    pub async fn load_rooms(&self) -> Result<(), ChatError> {
        let list: RoomListResponse = http::call::<ListRooms>(&NoParams, &()).await?;
        for summary in list.rooms {
            self.sync_room(summary.room_id).await?;
        }
        Ok(())
    }

    /// Syncs a room: fetches what the client core asks for a sync ([`Chat::sync_answers`])
    /// and hands it over; the core checks the log against what this account accepted before,
    /// opens envelopes and messages, and asks for what the room needs next.
    pub async fn sync_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        let answers = self.sync_answers(room_id).await?;
        self.feed(Input::Synced { room_id, answers }).await;
        if self.selected.get_untracked().is_none()
            && self
                .rooms
                .with_untracked(|rooms| rooms.contains_key(&room_id))
        {
            self.selected.set(Some(room_id));
        }
        Ok(())
    }

    /// A room's newest messages (and older pages back to the chain heads the client state
    /// remembers, at most [`MAX_CATCH_UP_PAGES`]), then its log, then this user's envelopes,
    /// in that order, so that no message of the page names a longer log than the one fetched.
    async fn sync_answers(&self, room_id: RoomId) -> Result<SyncAnswers, ChatError> {
        let room = RoomParams { room_id };
        let newest = http::call_with_query::<ListMessages>(
            &room,
            &PageQuery::backwards(None, PAGE_SIZE),
            &(),
        )
        .await?;
        let mut answers = SyncAnswers {
            history: newest.messages,
            has_more: newest.has_more,
            ..SyncAnswers::default()
        };
        let oldest_head = self
            .machine
            .with_untracked(|machine| machine.as_ref().and_then(|m| m.oldest_head(&room_id)));
        for _ in 0..MAX_CATCH_UP_PAGES {
            let Some(before) = answers.older_page_needed(oldest_head) else {
                break;
            };
            let older = http::call_with_query::<ListMessages>(
                &room,
                &PageQuery::backwards(Some(before), PAGE_SIZE),
                &(),
            )
            .await?;
            answers.prepend_older(older.messages, older.has_more);
        }
        let log = http::call::<GetLog>(&room, &()).await?;
        let envelopes = http::call::<GetEnvelopes>(&room, &()).await?;
        answers.log = log.entries.into_iter().map(|entry| entry.0).collect();
        answers.envelopes = envelopes.envelopes;
        Ok(answers)
    }

    /// Loads the page of history before the oldest message loaded (the user scrolled up) and
    /// hands it to the client core, which opens and checks it like any other; `before_feed`
    /// runs just before (the view notes its scroll position there). Returns whether older
    /// messages remain.
    ///
    /// # Errors
    /// The server's refusal.
    pub async fn load_older(
        &self,
        room_id: RoomId,
        before_feed: impl FnOnce(),
    ) -> Result<bool, ChatError> {
        let before = self.machine.with_untracked(|machine| {
            machine
                .as_ref()
                .and_then(|machine| machine.older_page_before(&room_id))
        });
        let Some(before) = before else {
            return Ok(false);
        };
        let older = http::call_with_query::<ListMessages>(
            &RoomParams { room_id },
            &PageQuery::backwards(Some(before), PAGE_SIZE),
            &(),
        )
        .await?;
        before_feed();
        self.feed(Input::OlderPage {
            room_id,
            messages: older.messages,
            has_more: older.has_more,
        })
        .await;
        Ok(self.machine.with_untracked(|machine| {
            machine
                .as_ref()
                .is_some_and(|machine| machine.older_page_before(&room_id).is_some())
        }))
    }

    /// Hands one WebSocket event to the client core; a client state saved by another of the
    /// user's browsers is fetched and merged here (read markers and pins stay in step).
    pub async fn handle_event(&self, event: ServerEvent) {
        if let ServerEvent::ClientStateChanged { version } = event {
            if version > self.server_version.get_untracked()
                && self.state_ready.get_untracked()
                && !self.saving.get_untracked()
            {
                if let Err(error) = self.merge_newer_remote().await {
                    self.error.set(Some(error.to_string()));
                }
            }
            return;
        }
        self.feed(Input::Event(event)).await;
    }

    /// Runs the user's `command` in `room_id` through the client core and waits for it to
    /// end (a write queued behind another of the room finishes in the task driving that one).
    ///
    /// # Errors
    /// [`ChatError::Other`] with the core's or the server's reason.
    pub async fn command(&self, room_id: RoomId, command: Command) -> Result<(), ChatError> {
        self.require_state_ready()?;
        let ticket = self
            .next_ticket
            .try_update(|ticket| {
                *ticket += 1;
                *ticket
            })
            .unwrap_or_default();
        self.feed(Input::Command {
            ticket,
            room_id,
            command,
        })
        .await;
        for _ in 0..COMMAND_POLLS {
            let finished = self
                .finished
                .try_update_untracked(|finished| finished.remove(&ticket))
                .flatten();
            if let Some(result) = finished {
                return result.map_err(ChatError::Other);
            }
            gloo_timers::future::TimeoutFuture::new(COMMAND_POLL_MS).await;
        }
        // Dropped unless already sent, so a retry cannot make it twice.
        self.feed(Input::Cancel(ticket)).await;
        let finished = self
            .finished
            .try_update_untracked(|finished| finished.remove(&ticket))
            .flatten();
        match finished {
            Some(result) => result.map_err(ChatError::Other),
            None => Err(ChatError::Other(
                "no answer from the server yet; it may still go through".into(),
            )),
        }
    }

    /// Hands `input` to the client core and does what it asks, feeding back the answers,
    /// until nothing is left. Timers run in tasks of their own; a session that ended
    /// meanwhile stops it.
    pub(crate) async fn feed(&self, input: Input) {
        let generation = self.generation.get_untracked();
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            if self.generation.get_untracked() != generation {
                return;
            }
            let effects = self
                .machine
                .try_update(|machine| {
                    machine
                        .as_mut()
                        .map(|machine| machine.handle(input, now_ms(), &mut OsRng))
                })
                .flatten()
                .unwrap_or_default();
            for effect in effects {
                if let Some(next) = self.effect(effect, generation).await {
                    inputs.push_back(next);
                }
            }
        }
    }

    /// Does one effect; returns the input that answers it, if any.
    async fn effect(&self, effect: Effect, generation: u64) -> Option<Input> {
        match effect {
            Effect::Sync(room_id) => Some(match self.sync_answers(room_id).await {
                Ok(answers) => Input::Synced { room_id, answers },
                Err(error) => Input::SyncFailed {
                    room_id,
                    reason: error.to_string(),
                },
            }),
            Effect::Append { room_id, request } => {
                let outcome = match http::call::<AppendLog>(&RoomParams { room_id }, &request).await
                {
                    Ok(()) => AppendOutcome::Stored,
                    Err(HttpError::Server {
                        status: 409,
                        message,
                        ..
                    }) => AppendOutcome::Conflict(message),
                    Err(error) => AppendOutcome::Failed(error.to_string()),
                };
                Some(Input::Appended { room_id, outcome })
            }
            Effect::PostMessage { room_id, request } => {
                let posted = http::call::<PostMessage>(&RoomParams { room_id }, &request).await;
                let outcome = match posted {
                    Ok(stored) => PostOutcome::Stored(stored),
                    Err(error @ HttpError::Network(_)) => PostOutcome::Lost(error.to_string()),
                    Err(error) => PostOutcome::Refused(error.to_string()),
                };
                Some(Input::Posted { room_id, outcome })
            }
            Effect::RequestKey { room_id, request } => {
                let sent = http::call::<RequestKey>(&RoomParams { room_id }, &request).await;
                sent.err().map(|error| {
                    self.error.set(Some(format!(
                        "could not ask members for the room key: {error}"
                    )));
                    Input::KeyRequestFailed {
                        room_id,
                        epoch: request.epoch,
                    }
                })
            }
            Effect::HandOut { room_id, request } => {
                if let Err(error) =
                    http::call::<PutEnvelopes>(&RoomParams { room_id }, &request).await
                {
                    self.error
                        .set(Some(format!("could not hand over the room key: {error}")));
                }
                None
            }
            Effect::LoadJoinRequests(room_id) => {
                if let Err(error) = self.load_join_requests(room_id).await {
                    self.error.set(Some(error.to_string()));
                }
                None
            }
            Effect::Wait { delay_ms, timer } => {
                let chat = *self;
                leptos::task::spawn_local(async move {
                    gloo_timers::future::TimeoutFuture::new(delay_ms).await;
                    if chat.generation.get_untracked() == generation {
                        chat.feed(Input::Timer(timer)).await;
                    }
                });
                None
            }
            Effect::RoomChanged(room_id) => {
                self.index_room(room_id);
                None
            }
            Effect::NewMessage {
                room_id,
                message_id,
                sender,
            } => {
                self.notify(room_id, message_id, &sender);
                None
            }
            Effect::RoomDeleted(room_id) => {
                if self.selected.get_untracked() == Some(room_id) {
                    self.selected.set(None);
                }
                self.unindex_room(room_id);
                None
            }
            Effect::Warn(warnings) => {
                self.raise_warnings(warnings);
                None
            }
            Effect::KeyChanged {
                username,
                presented,
            } => {
                self.warn_key_change(&username, presented, "this room's member list");
                None
            }
            Effect::SaveState => {
                self.schedule_save();
                None
            }
            Effect::Finished { ticket, result } => {
                self.finished.update_untracked(|finished| {
                    finished.insert(ticket, result);
                });
                None
            }
            Effect::Error(error) => {
                self.error.set(Some(error));
                None
            }
        }
    }

    /// Creates a room with encrypted metadata and selects it.
    pub async fn create_room_with(&self, metadata: RoomMetadata) -> Result<RoomId, ChatError> {
        let session = self.session()?;
        let room = create_room(
            &session.username,
            &session.secrets,
            &metadata,
            now_ms(),
            &mut OsRng,
        )
        .map_err(ChatError::from_display)?;
        let request = CreateRoomRequest {
            genesis: Base64(room.genesis.as_bytes().to_vec()),
            key_envelope: room.creator_envelope.clone(),
        };
        let created = http::call::<CreateRoom>(&NoParams, &request).await?;
        self.feed(Input::Created {
            room_id: created.room_id,
            state: room.state,
            key: room.key,
            metadata,
        })
        .await;
        self.selected.set(Some(created.room_id));
        self.room_open.set(true);
        Ok(created.room_id)
    }

    /// Creates a group room named `name`.
    pub async fn create_room(&self, name: &str) -> Result<(), ChatError> {
        self.create_room_with(RoomMetadata::named(name.trim()))
            .await
            .map(|_| ())
    }

    /// Sends a message (text, a reply, an edit, a deletion or a reaction): the core pins the
    /// members (a changed key stops it), completes a pending rotation first, checks that an
    /// edit or deletion is of the user's own loaded message, and writes the next link of
    /// this browser's chain.
    pub async fn send(&self, room_id: RoomId, body: MessageBody) -> Result<(), ChatError> {
        self.command(room_id, Command::Send(body)).await
    }

    /// Starts the next epoch with a fresh key, sealed to every member whose keys match the
    /// pins.
    pub async fn rotate_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        self.command(room_id, Command::Rotate).await
    }

    /// Loads the pending join requests of a room (owners and admins).
    pub async fn load_join_requests(&self, room_id: RoomId) -> Result<(), ChatError> {
        let me = self.me();
        let is_admin = self.rooms.with_untracked(|rooms| {
            rooms
                .get(&room_id)
                .and_then(|view| view.state.as_ref().ok())
                .and_then(|state| state.member(&me))
                .is_some_and(|member| member.role >= Role::Admin)
        });
        if !is_admin {
            return Ok(());
        }
        let response = http::call::<ListJoinRequests>(&RoomParams { room_id }, &()).await?;
        self.update_room(&room_id, |room| room.join_requests = response.requests);
        Ok(())
    }

    /// The user opens a room: the client core pins every member not pinned yet with the
    /// keys the room's log records (trust on first use); keys that differ from a pin are
    /// shown, and nothing may be sent to the room until the user accepts or refuses them.
    pub async fn open_room(&self, room_id: RoomId) {
        if self.state_ready.get_untracked() {
            self.feed(client::Input::Opened(room_id)).await;
        }
    }

    /// The user accepts `username`'s new keys: the pin is replaced (not verified), and the
    /// client core hands them the keys of the rooms they are in.
    pub async fn accept_new_keys(&self, username: &str) -> Result<(), ChatError> {
        let Some(warning) = self
            .key_warnings
            .with_untracked(|warnings| warnings.get(username).cloned())
        else {
            return Ok(());
        };
        self.require_state_ready()?;
        self.key_warnings.update(|warnings| {
            warnings.remove(username);
        });
        self.feed(client::Input::AcceptNewKeys {
            username: username.to_owned(),
            keys: warning.presented,
        })
        .await;
        self.save_client_state().await
    }
}
