//! Rooms: loading and replaying them, reacting to server events, handing room keys to members
//! who need them, rotating keys, and sending messages.

use client::{
    EnvelopeOutcome, Processed, RoomChains, RotationDuty, SyncAnswers, Synced, TrustWarning,
    MAX_CATCH_UP_PAGES,
};
use common::api::{
    AppendLogRequest, CreateRoomRequest, CreateRoomResponse, EnvelopesResponse, KeyRequestBody,
    LogResponse, MessagesResponse, PostMessageRequest, PutEnvelopesRequest, RoomListResponse,
    ServerEvent, StoredMessage,
};
use common::membership::{LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::message::seal_message;
use common::primitives::random_bytes;
use common::room_key::{create_room, EpochChange, KeyEnvelope, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{now_ms, Chat, ChatError, Room, Session};
use crate::http::{self, HttpError};

/// How long a tab waits after its rotation was refused with 409 (another member's came first,
/// or the log moved) before fetching the log again, in milliseconds.
const ROTATION_RETRY_PAUSE_MS: u32 = 2_000;
/// How long a room whose current key is missing waits for its envelope before asking the
/// other members, in milliseconds.
const KEY_REQUEST_DELAY_MS: u32 = 1_500;
/// Messages per history page (the server allows up to 200).
const PAGE_SIZE: usize = 100;

/// The path of a room's API resource.
pub fn room_path(room_id: &RoomId, resource: &str) -> String {
    format!("/api/rooms/{}/{resource}", room_id.to_hex())
}

impl Chat {
    /// Loads every room of the user: log, own envelopes and the latest messages.
    pub async fn load_rooms(&self) -> Result<(), ChatError> {
        let list: RoomListResponse = http::get("/api/rooms").await?;
        for summary in list.rooms {
            self.sync_room(summary.room_id).await?;
        }
        Ok(())
    }

    /// Fetches a room's latest messages, log and own key envelopes (in that order, so no
    /// message of the page names a longer log than the one fetched), checks the log against
    /// what this account accepted before, opens the messages, and takes the actions the log
    /// calls for: asking for a missing key, rotating after a departure (admins), loading join
    /// requests (admins). History is paged back (at most [`MAX_CATCH_UP_PAGES`] more pages)
    /// until it reaches the chain heads the client state remembers, so a message withheld
    /// between two sessions is judged, not guessed.
    pub async fn sync_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        let session = self.session()?;
        let newest: MessagesResponse =
            http::get(&room_path(&room_id, &format!("messages?limit={PAGE_SIZE}"))).await?;
        let mut answers = SyncAnswers {
            history: newest.messages,
            has_more: newest.has_more,
            ..SyncAnswers::default()
        };
        let oldest_head = self.remembered_chains(&room_id).oldest_head_id();
        for _ in 0..MAX_CATCH_UP_PAGES {
            let Some(before) = answers.older_page_needed(oldest_head) else {
                break;
            };
            let older: MessagesResponse = http::get(&room_path(
                &room_id,
                &format!("messages?limit={PAGE_SIZE}&before={before}"),
            ))
            .await?;
            answers.prepend_older(older.messages, older.has_more);
        }
        let log: LogResponse = http::get(&room_path(&room_id, "log")).await?;
        let envelopes: EnvelopesResponse = http::get(&room_path(&room_id, "envelopes")).await?;
        answers.log = log.entries.into_iter().map(|entry| entry.0).collect();
        answers.envelopes = envelopes.envelopes;
        // From here on nothing awaits, so no event slips in between: the sync takes over
        // what the tab had and what arrived over the WebSocket while this ran.
        let previous = self
            .rooms
            .with_untracked(|rooms| rooms.get(&room_id).cloned());
        let synced = self.client_state.try_update(|client_state| {
            Room::from_sync(
                room_id,
                &session.username,
                &session.secrets,
                answers,
                client_state,
                previous.as_ref(),
            )
        });
        let Some(Synced {
            room: view,
            processed,
            client_state_changed,
        }) = synced
        else {
            return Ok(());
        };
        if client_state_changed {
            self.schedule_save();
        }
        if let Ok(state) = view.state.as_ref() {
            self.check_member_keys(state, "this room's member list");
        }
        self.rooms.update(|rooms| {
            rooms.insert(room_id, view);
        });
        self.after_messages(room_id, processed);
        self.remember_log_of(room_id);
        if self.selected.get_untracked().is_none() {
            self.selected.set(Some(room_id));
        }
        self.after_room_change(room_id).await;
        Ok(())
    }

    /// What the current state of a room asks of this client: a key request when the current
    /// key is missing, a rotation when one is pending (any member) or due (admins), and the
    /// join requests for admins.
    async fn after_room_change(&self, room_id: RoomId) {
        let me = self.me();
        let Some((missing_key, rotation, admin)) = self.rooms.with_untracked(|rooms| {
            let view = rooms.get(&room_id)?;
            let admin = view
                .state
                .as_ref()
                .ok()?
                .member(&me)
                .is_some_and(|member| member.role >= Role::Admin);
            Some((
                view.current_key().is_none(),
                view.rotation_duty(&me, now_ms()),
                admin,
            ))
        }) else {
            return;
        };
        if missing_key {
            let chat = *self;
            leptos::task::spawn_local(async move { chat.request_missing_key(room_id).await });
        }
        if rotation.is_some() {
            // In a task of its own: a member's client waits a moment before rotating, and the
            // events that arrive meanwhile (another member's rotation) must be applied.
            let chat = *self;
            leptos::task::spawn_local(async move { chat.rotate_if_pending(room_id).await });
        }
        if admin {
            self.reseal_metadata_if_behind(room_id);
            if let Err(error) = self.load_join_requests(room_id).await {
                self.error.set(Some(error.to_string()));
            }
        }
    }

    /// An admin holding the current key re-seals the room's name and topic under it when
    /// they still sit under an older epoch's key (after a member completed a rotation, which
    /// carries no metadata), so members who hold only later keys can read them.
    fn reseal_metadata_if_behind(&self, room_id: RoomId) {
        let behind = self.rooms.with_untracked(|rooms| {
            let view = rooms.get(&room_id)?;
            let state = view.state.as_ref().ok()?;
            let (metadata_epoch, _) = state.encrypted_metadata();
            (metadata_epoch < state.current_epoch()
                && !state.rotation_pending()
                && view.current_key().is_some())
            .then(|| view.metadata.clone())
            .flatten()
        });
        if let Some(metadata) = behind {
            let chat = *self;
            leptos::task::spawn_local(async move {
                match chat.set_metadata(room_id, metadata).await {
                    // Another admin re-sealed it first.
                    Ok(()) | Err(ChatError::Http(HttpError::Server { status: 409, .. })) => {}
                    Err(error) => chat
                        .error
                        .set(Some(format!("could not re-seal the room name: {error}"))),
                }
            });
        }
    }

    /// Asks the other members for the current key if it is still missing a moment later: an
    /// entry that starts an epoch arrives just before the envelope stored with it, and a
    /// request made at once would have every member seal the key again for nothing.
    async fn request_missing_key(&self, room_id: RoomId) {
        gloo_timers::future::TimeoutFuture::new(KEY_REQUEST_DELAY_MS).await;
        let me = self.me();
        // Marked asked here, before sending, so concurrent tasks do not ask twice.
        let key_request = self
            .rooms
            .try_update(|rooms| rooms.get_mut(&room_id)?.key_to_request(&me))
            .flatten();
        let Some(epoch) = key_request else {
            return;
        };
        let sent = http::post_no_content(
            &room_path(&room_id, "key-requests"),
            &KeyRequestBody { epoch },
        )
        .await;
        if let Err(error) = sent {
            // Unmarked, so the next sync asks again.
            self.rooms.update(|rooms| {
                if let Some(view) = rooms.get_mut(&room_id) {
                    view.key_request_failed(epoch);
                }
            });
            self.error.set(Some(format!(
                "could not ask members for the room key: {error}"
            )));
        }
    }

    /// Applies one event pushed over the WebSocket.
    pub async fn handle_event(&self, event: ServerEvent) -> Result<(), ChatError> {
        let session = self.session()?;
        match event {
            ServerEvent::Message { message } => {
                let room_id = message.room_id;
                if !self.knows_room(&room_id) {
                    return self.sync_room(room_id).await;
                }
                self.deliver(&session, message);
            }
            ServerEvent::LogEntry {
                room_id,
                seq,
                entry,
            } => self.apply_log_event(room_id, seq, &entry.0).await?,
            ServerEvent::KeyEnvelope { envelope } => {
                let room_id = envelope.room_id;
                if !self.knows_room(&room_id) {
                    return self.sync_room(room_id).await;
                }
                let processed = self.rooms.try_update(|rooms| {
                    let view = rooms.get_mut(&room_id)?;
                    let outcome =
                        view.accept_envelope(&session.username, &session.secrets, &envelope);
                    let mut processed = view.process_pending(&session.username, false);
                    match outcome {
                        EnvelopeOutcome::LogAhead => processed.log_ahead = true,
                        EnvelopeOutcome::Refused(warning, reason) => {
                            web_sys::console::warn_1(
                                &format!("refused key envelope: {reason}").into(),
                            );
                            processed.warnings.extend(warning);
                        }
                        EnvelopeOutcome::Accepted => {}
                    }
                    Some(processed)
                });
                if let Some(processed) = processed.flatten() {
                    self.after_messages(room_id, processed);
                }
                self.after_room_change(room_id).await;
            }
            ServerEvent::KeyRequested {
                room_id,
                username,
                epoch: _,
            } => self.hand_keys_to(room_id, &username).await?,
            ServerEvent::JoinRequested { room_id, .. } => self.load_join_requests(room_id).await?,
            // Only a signed delete entry (handled with the log) removes a room; the server's
            // word alone is shown as such, and the room stays, read-only.
            ServerEvent::RoomDeleted { room_id } => self.server_says_deleted(room_id),
            ServerEvent::Error { error } => self.error.set(Some(error)),
        }
        Ok(())
    }

    async fn apply_log_event(
        &self,
        room_id: RoomId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), ChatError> {
        let me = self.me();
        let outcome = self.rooms.try_update(|rooms| {
            let view = rooms.get_mut(&room_id)?;
            let mut next = view.state.as_ref().ok()?.clone();
            if seq < next.length() {
                return Some(Ok(None));
            }
            if seq > next.length() {
                return Some(Err(()));
            }
            let applied = SignedLogEntry::from_bytes(bytes)
                .map_err(|error| error.to_string())
                .and_then(|signed| {
                    next.apply(&signed)
                        .map(|()| signed)
                        .map_err(|error| error.to_string())
                });
            match applied {
                Ok(signed) => {
                    view.accept_state(next, &me);
                    Some(Ok(Some(signed)))
                }
                Err(error) => {
                    view.state = Err(format!(
                        "this room's history was tampered with (entry {seq}: {error})"
                    ));
                    Some(Ok(None))
                }
            }
        });
        let signed = match outcome.flatten() {
            // An unknown room (we were just added) or a gap: fetch it whole.
            None | Some(Err(())) => return self.sync_room(room_id).await,
            Some(Ok(None)) => return Ok(()),
            Some(Ok(Some(signed))) => signed,
        };
        self.remember_log_of(room_id);
        let action = &signed.entry().action;
        if let Some((username, _)) = action.added_member() {
            if username != me {
                // Checked against the pins only; hand_keys_to seals nothing to changed keys,
                // and nothing at all for an epoch this tab does not hold yet (an add that
                // started a new epoch: its author sealed that key to everyone).
                self.hand_keys_to(room_id, username).await?;
            }
        }
        if action.new_epoch().is_some() || matches!(action, LogAction::SetMetadata { .. }) {
            self.rooms.update(|rooms| {
                if let Some(view) = rooms.get_mut(&room_id) {
                    view.refresh_metadata();
                }
            });
        }
        if action.clears_history() {
            self.rooms.update(|rooms| {
                if let Some(view) = rooms.get_mut(&room_id) {
                    view.messages.clear();
                    view.pending.clear();
                    view.chains = RoomChains::default();
                }
            });
            self.forget_chains_of(room_id);
        }
        if matches!(action, LogAction::DeleteRoom) {
            self.forget_room(room_id);
        }
        self.after_room_change(room_id).await;
        Ok(())
    }

    fn knows_room(&self, room_id: &RoomId) -> bool {
        self.rooms
            .with_untracked(|rooms| rooms.contains_key(room_id))
    }

    /// The server says `room_id` was deleted, with no signed entry: the room is kept,
    /// read-only, with the room's trust warning.
    fn server_says_deleted(&self, room_id: RoomId) {
        if !self.knows_room(&room_id) {
            return;
        }
        let warning = TrustWarning::ServerSaysRoomDeleted { room_id };
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                view.state = Err(warning.to_string());
            }
        });
        self.raise_warnings(vec![warning]);
    }

    /// Drops a deleted room from this tab.
    pub fn forget_room(&self, room_id: RoomId) {
        self.rooms.update(|rooms| {
            rooms.remove(&room_id);
        });
        if self.selected.get_untracked() == Some(room_id) {
            self.selected.set(None);
        }
    }

    /// Seals every key `username` may have (current epoch, and earlier ones under the
    /// full-history policy) and uploads the envelopes. Any member holding the key does this
    /// when a member is added or asks; duplicates are harmless. Nothing is sealed to keys
    /// that differ from this user's pins.
    pub async fn hand_keys_to(&self, room_id: RoomId, username: &str) -> Result<(), ChatError> {
        let session = self.session()?;
        let Some(room) = self
            .rooms
            .with_untracked(|rooms| rooms.get(&room_id).cloned())
        else {
            return Ok(());
        };
        let Some(keys) = room.member_keys(username) else {
            return Ok(());
        };
        if self
            .check_pinned(username, &keys, "this room's member list")
            .is_err()
        {
            return Ok(());
        }
        let envelopes = room
            .envelopes_for(&session.username, &session.secrets, username, &mut OsRng)
            .map_err(ChatError::from_display)?;
        if envelopes.is_empty() {
            return Ok(());
        }
        http::post_no_content(
            &room_path(&room_id, "envelopes"),
            &PutEnvelopesRequest { envelopes },
        )
        .await?;
        Ok(())
    }

    /// Rotates the key if the log says a rotation is pending (a member left), which any
    /// member may complete, or, for an admin holding the key, if the epoch is due for
    /// scheduled rotation ([`client::rotation`], the room's schedule). Members who are not
    /// admins wait a moment first, so that an admin online usually does it; whoever is
    /// second finds the log moved on. A failure is reported in the error banner.
    pub async fn rotate_if_pending(&self, room_id: RoomId) {
        let me = self.me();
        let duty = |chat: &Chat| {
            chat.rooms.with_untracked(|rooms| {
                rooms
                    .get(&room_id)
                    .and_then(|view| view.rotation_duty(&me, now_ms()))
            })
        };
        let Some(first) = duty(self) else {
            return;
        };
        if first == (RotationDuty::Pending { admin: false }) {
            let jitter_ms = 500 + u32::from(random_bytes::<1>(&mut OsRng)[0]) * 8;
            gloo_timers::future::TimeoutFuture::new(jitter_ms).await;
            if duty(self).is_none() {
                return;
            }
        }
        match self.rotate_room(room_id).await {
            Ok(()) => {}
            // Another member's rotation (or another entry) came first: take the log as it is
            // (in a task of its own, since a sync may end up here again).
            // After a pause, so a server that keeps answering 409 cannot spin this tab.
            Err(ChatError::Http(HttpError::Server { status: 409, .. })) => {
                let chat = *self;
                leptos::task::spawn_local(async move {
                    gloo_timers::future::TimeoutFuture::new(ROTATION_RETRY_PAUSE_MS).await;
                    if let Err(error) = chat.sync_room(room_id).await {
                        chat.error.set(Some(error.to_string()));
                    }
                });
            }
            Err(error) => self
                .error
                .set(Some(format!("could not rotate the room key: {error}"))),
        }
    }

    /// Starts a new epoch: a fresh key, the name re-encrypted under it (by an admin; a member
    /// completing a pending rotation keeps the current one), sealed to every remaining member
    /// whose keys match this user's pins. Does nothing while this tab is already rotating
    /// the room.
    pub async fn rotate_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        self.rotate_room_with(room_id, EpochChange::Rotate).await
    }

    /// Makes `change` in the entry that starts the next epoch (a removal, ban, add under the
    /// "since joining" policy or history clearing takes effect together with the new key,
    /// docs/PROTOCOL.md section 5), then seals the new key to every member whose keys match
    /// this user's pins. One rotation of a room runs at a time in a tab: a plain rotation
    /// while another runs does nothing, any other change waits for it.
    pub async fn rotate_room_with(
        &self,
        room_id: RoomId,
        change: EpochChange,
    ) -> Result<(), ChatError> {
        loop {
            let started = self.rooms.try_update(|rooms| {
                let view = rooms.get_mut(&room_id)?;
                if view.rotating {
                    return Some(false);
                }
                view.rotating = true;
                Some(true)
            });
            match started.flatten() {
                Some(true) => break,
                Some(false) if change == EpochChange::Rotate => return Ok(()),
                Some(false) => gloo_timers::future::TimeoutFuture::new(20).await,
                None => return Err(ChatError::Other("room is not available".into())),
            }
        }
        let result = self.rotate_room_now(room_id, change).await;
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                view.rotating = false;
            }
        });
        result
    }

    async fn rotate_room_now(&self, room_id: RoomId, change: EpochChange) -> Result<(), ChatError> {
        let session = self.session()?;
        let room = self
            .rooms
            .with_untracked(|rooms| rooms.get(&room_id).cloned())
            .ok_or_else(|| ChatError::Other("room is not available".into()))?;
        let from_length = room
            .state
            .as_ref()
            .map_err(|error| ChatError::Other(error.clone()))?
            .length();
        // Sealed only to members whose keys match this user's pins.
        let (rotation, envelopes) = room
            .start_epoch(
                &session.username,
                &session.secrets,
                change,
                |username, keys| {
                    self.check_pinned(username, keys, "this room's member list")
                        .is_ok()
                },
                now_ms(),
                &mut OsRng,
            )
            .map_err(ChatError::from_display)?;
        let epoch = rotation.state.current_epoch();
        // The entry and the new key's envelopes are stored in one request, so the key is
        // never held by this tab alone.
        self.post_entry_with(room_id, &rotation.entry, envelopes)
            .await?;
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                view.adopt_if_unchanged(from_length, rotation.state.clone(), &session.username);
                view.keys.insert(epoch, rotation.key.clone());
            }
        });
        self.remember_log_of(room_id);
        Ok(())
    }

    /// Uploads a signed log entry.
    pub async fn post_entry(
        &self,
        room_id: RoomId,
        entry: &SignedLogEntry,
    ) -> Result<(), ChatError> {
        self.post_entry_with(room_id, entry, Vec::new()).await
    }

    /// Uploads a signed log entry together with key envelopes that the server checks against
    /// the log with the entry applied and stores in the same transaction.
    pub async fn post_entry_with(
        &self,
        room_id: RoomId,
        entry: &SignedLogEntry,
        envelopes: Vec<KeyEnvelope>,
    ) -> Result<(), ChatError> {
        http::post_no_content(
            &room_path(&room_id, "log"),
            &AppendLogRequest {
                entry: Base64(entry.as_bytes().to_vec()),
                envelopes,
            },
        )
        .await?;
        Ok(())
    }

    /// Signs `action` on top of the room's current state, uploads it, and applies it locally.
    /// Returns the state after the entry.
    pub async fn append(&self, room_id: RoomId, action: LogAction) -> Result<RoomState, ChatError> {
        let session = self.session()?;
        let state = self
            .rooms
            .with_untracked(|rooms| rooms.get(&room_id)?.state.as_ref().ok().cloned())
            .ok_or_else(|| ChatError::Other("room is not available".into()))?;
        let entry = state
            .next_entry(&session.username, now_ms(), action)
            .sign(&session.secrets);
        let mut next = state.clone();
        next.apply(&entry).map_err(ChatError::from_display)?;
        self.post_entry(room_id, &entry).await?;
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                view.adopt_if_unchanged(state.length(), next.clone(), &session.username);
            }
        });
        self.remember_log_of(room_id);
        Ok(next)
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
        let created: CreateRoomResponse = http::post("/api/rooms", &request).await?;
        let mut view = Room::new(created.room_id);
        view.metadata = Some(metadata);
        view.accept_state(room.state.clone(), &session.username);
        view.keys.insert(0, room.key.clone());
        self.rooms.update(|rooms| {
            rooms.insert(created.room_id, view);
        });
        self.remember_log_of(created.room_id);
        self.selected.set(Some(created.room_id));
        Ok(created.room_id)
    }

    /// Creates a group room named `name`.
    pub async fn create_room(&self, name: &str) -> Result<(), ChatError> {
        self.create_room_with(RoomMetadata::named(name.trim()))
            .await
            .map(|_| ())
    }

    /// Encrypts, signs and posts a text message at the current epoch, as the next link of
    /// this browser's chain and naming the log head this tab accepted. Sends of one tab go
    /// out one at a time, so the server stores them in chain order.
    pub async fn send(&self, room_id: RoomId, text: &str) -> Result<(), ChatError> {
        // Writing is acting: the members are pinned now, and a changed key stops the send.
        self.pin_room_members(room_id).await?;
        // After a leave the current key is one the former member holds: the rotation is
        // completed first, by whoever is quickest, and nothing is written until it is.
        let pending = |chat: &Chat| {
            chat.rooms.with_untracked(|rooms| {
                rooms
                    .get(&room_id)
                    .and_then(|view| view.state.as_ref().ok())
                    .is_some_and(RoomState::rotation_pending)
            })
        };
        if pending(self) {
            match self.rotate_room(room_id).await {
                Ok(()) => {}
                Err(ChatError::Http(HttpError::Server { status: 409, .. })) => {
                    self.sync_room(room_id).await?;
                }
                Err(error) => return Err(error),
            }
            // A rotation this tab had already started is still running: wait for it, a
            // while at most.
            for _ in 0..250 {
                if !pending(self) {
                    break;
                }
                gloo_timers::future::TimeoutFuture::new(20).await;
            }
            if pending(self) {
                return Err(ChatError::Other(
                    "key rotation pending: a member left and the key has not been rotated yet"
                        .into(),
                ));
            }
        }
        while self.send_in_flight.get_untracked() {
            gloo_timers::future::TimeoutFuture::new(20).await;
        }
        self.send_in_flight.set(true);
        let sent = self.send_now(room_id, text).await;
        self.send_in_flight.set(false);
        sent
    }

    async fn send_now(&self, room_id: RoomId, text: &str) -> Result<(), ChatError> {
        let session = self.session()?;
        let prepared = self.rooms.try_update(|rooms| {
            let view = rooms.get_mut(&room_id)?;
            view.prepare_text(&session.username, session.device_id, text, now_ms())
        });
        let (inner, key) = prepared.flatten().ok_or_else(|| {
            ChatError::Other(
                "you do not hold this room's current key yet, or its rotation is pending".into(),
            )
        })?;
        let sealed = seal_message(&inner, &key, &session.secrets, &mut OsRng)
            .map_err(ChatError::from_display)?;
        let posted: Result<StoredMessage, HttpError> = http::post(
            &room_path(&room_id, "messages"),
            &PostMessageRequest {
                epoch: inner.epoch,
                nonce: Base64Array(sealed.nonce),
                ciphertext: Base64(sealed.ciphertext),
            },
        )
        .await;
        // The chain moves on once the server stored the message, or may have (the answer was
        // lost): a refused message does not use up its counter, and a stored one is not
        // written over.
        if matches!(posted, Ok(_) | Err(HttpError::Network(_))) {
            self.rooms.update(|rooms| {
                if let Some(view) = rooms.get_mut(&room_id) {
                    view.record_sent(&inner);
                }
            });
        }
        // The WebSocket echo may arrive first; either way the message is shown once.
        self.deliver(&session, posted?);
        Ok(())
    }

    /// Opens a message that arrived live (an event, or the answer to this tab's own post)
    /// unless it is already shown, keeps it for a sync running meanwhile, and acts on what
    /// opening it found.
    fn deliver(&self, session: &Session, message: StoredMessage) {
        let room_id = message.room_id;
        let processed = self.rooms.try_update(|rooms| {
            let view = rooms.get_mut(&room_id)?;
            if view.messages.iter().any(|shown| shown.id() == message.id) {
                return None;
            }
            view.remember_received(&message);
            view.pending.push(message);
            Some(view.process_pending(&session.username, false))
        });
        if let Some(processed) = processed.flatten() {
            self.after_messages(room_id, processed);
        }
    }

    /// Acts on what opening messages found: raises the trust warnings, remembers the chain
    /// heads in the client state, and fetches the log when a message named a longer one.
    fn after_messages(&self, room_id: RoomId, processed: Processed) {
        self.raise_warnings(processed.warnings);
        self.remember_chains_of(room_id);
        let me = self.me();
        let due = self.rooms.with_untracked(|rooms| {
            rooms
                .get(&room_id)
                .and_then(|view| view.rotation_duty(&me, now_ms()))
                == Some(RotationDuty::Due)
        });
        if due {
            let chat = *self;
            leptos::task::spawn_local(async move { chat.rotate_if_pending(room_id).await });
        }
        if processed.log_ahead {
            let chat = *self;
            leptos::task::spawn_local(async move {
                if let Err(error) = chat.sync_room(room_id).await {
                    chat.error.set(Some(error.to_string()));
                }
            });
        }
    }
}
