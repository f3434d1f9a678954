//! The client's state and everything it does with the server: registering, logging in,
//! replaying room logs, opening key envelopes and messages, creating rooms, adding members
//! and sending. All cryptography goes through `common`; this module only moves bytes and keeps
//! the results in Leptos signals.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::account::{self, KdfParams, SALT_LEN};
use common::api::{
    AppendLogRequest, CreateRoomRequest, CreateRoomResponse, EnvelopesResponse, LogResponse,
    LoginRequest, MeResponse, MessagesResponse, PostMessageRequest, PreloginRequest,
    PreloginResponse, PutEnvelopesRequest, RegisterRequest, RoomListResponse, ServerEvent,
    SessionResponse, StoredMessage,
};
use common::identity::{validate_username, Fingerprint, IdentitySecrets, PublicIdentity};
use common::membership::{replay_bytes, LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::message::{open_message, seal_message, InnerMessage, MessageKind, SeenSequences};
use common::primitives::random_bytes;
use common::room_key::{create_room, open_metadata, KeyEnvelope, RoomKey};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use leptos::prelude::*;

use crate::http::{self, HttpError};

/// Who is logged in in this tab. Keys stay in memory for the tab's life only.
pub struct Session {
    /// The account name.
    pub username: String,
    /// The unwrapped identity secrets.
    pub secrets: IdentitySecrets,
    /// The user's own fingerprint, shown so others can compare it.
    pub fingerprint: Fingerprint,
}

/// One line of a room's message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShownMessage {
    /// A message that passed every check.
    Verified {
        /// Server id.
        id: i64,
        /// Sender, as verified.
        sender: String,
        /// Sender's clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        /// The text.
        text: String,
    },
    /// A message that failed a check: shown as a warning, never as text.
    Warning {
        /// Server id.
        id: i64,
        /// The sender the server claims.
        claimed_sender: String,
        /// What failed.
        reason: String,
    },
}

impl ShownMessage {
    /// The server id.
    pub fn id(&self) -> i64 {
        match self {
            Self::Verified { id, .. } | Self::Warning { id, .. } => *id,
        }
    }
}

/// What the client knows of one room.
#[derive(Debug, Clone)]
pub struct RoomView {
    /// The room.
    pub room_id: RoomId,
    /// The decrypted name, once a key is held.
    pub name: Option<String>,
    /// The replayed log, or why it was refused.
    pub state: Result<RoomState, String>,
    /// Room keys held, by epoch.
    pub keys: BTreeMap<u64, RoomKey>,
    /// Messages shown, in id order.
    pub messages: Vec<ShownMessage>,
    /// Messages waiting for the key of their epoch.
    pub pending: Vec<StoredMessage>,
    /// (sender, sequence) pairs already shown.
    pub seen: SeenSequences,
    /// Highest sequence number this user has used in the room.
    pub own_last_sequence: u64,
}

impl RoomView {
    /// The name to show: decrypted, or a placeholder until the key arrives.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("room {}…", &self.room_id.to_hex()[..8]))
    }

    /// The current epoch key, if held.
    pub fn current_key(&self) -> Option<(u64, &RoomKey)> {
        let epoch = self.state.as_ref().ok()?.current_epoch();
        self.keys.get(&epoch).map(|key| (epoch, key))
    }
}

/// All reactive state of the app. `Copy`, so components and tasks share it freely.
#[derive(Clone, Copy)]
pub struct Chat {
    /// The logged-in user, if any.
    pub session: RwSignal<Option<Arc<Session>>>,
    /// Rooms by id.
    pub rooms: RwSignal<BTreeMap<RoomId, RoomView>>,
    /// The room on screen.
    pub selected: RwSignal<Option<RoomId>>,
    /// The last error to show in the main screen.
    pub error: RwSignal<Option<String>>,
    /// How long the last key derivation took, in milliseconds.
    pub kdf_millis: RwSignal<Option<f64>>,
    /// Bumped on logout so the WebSocket task of the old session stops.
    pub generation: RwSignal<u64>,
}

/// Something a user action could not do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Key derivation or unwrapping failed.
    #[error(transparent)]
    Account(#[from] account::AccountError),
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn performance_now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map(|performance| performance.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Lets the browser paint (for example a progress line) before blocking work starts.
async fn yield_to_browser() {
    gloo_timers::future::TimeoutFuture::new(30).await;
}

impl Chat {
    /// Creates the signals.
    pub fn new() -> Self {
        Self {
            session: RwSignal::new(None),
            rooms: RwSignal::new(BTreeMap::new()),
            selected: RwSignal::new(None),
            error: RwSignal::new(None),
            kdf_millis: RwSignal::new(None),
            generation: RwSignal::new(0),
        }
    }

    fn session(&self) -> Result<Arc<Session>, ChatError> {
        self.session
            .get_untracked()
            .ok_or_else(|| ChatError::Other("not logged in".into()))
    }

    async fn derive_timed(
        &self,
        password: &str,
        salt: &[u8],
        params: &KdfParams,
    ) -> Result<account::AccountKeys, ChatError> {
        yield_to_browser().await;
        let started = performance_now();
        let keys = account::derive_account_keys(password, salt, params)?;
        self.kdf_millis.set(Some(performance_now() - started));
        Ok(keys)
    }

    fn start_session(&self, username: String, secrets: IdentitySecrets) {
        let fingerprint = secrets.public_identity(&username).fingerprint();
        self.rooms.set(BTreeMap::new());
        self.selected.set(None);
        self.error.set(None);
        self.session.set(Some(Arc::new(Session {
            username,
            secrets,
            fingerprint,
        })));
    }

    /// Registers a new account: fresh salt and identity, Argon2id with the default
    /// parameters, wrapped identity uploaded. Logs in on success.
    pub async fn register(&self, username: &str, password: &str) -> Result<(), ChatError> {
        validate_username(username).map_err(|error| ChatError::Other(error.to_string()))?;
        if password.chars().count() < 8 {
            return Err(ChatError::Other(
                "password must be at least 8 characters".into(),
            ));
        }
        let salt: [u8; SALT_LEN] = random_bytes(&mut OsRng);
        let params = KdfParams::DEFAULT;
        let keys = self.derive_timed(password, &salt, &params).await?;
        let secrets = IdentitySecrets::generate(&mut OsRng);
        let request = RegisterRequest {
            username: username.to_owned(),
            kdf: params,
            salt: Base64Array(salt),
            auth_key: Base64Array(*keys.auth_key.as_bytes()),
            identity: secrets.public_identity(username),
            wrapped_identity: Base64(account::wrap_identity(
                &keys.wrap_key,
                username,
                &secrets,
                &mut OsRng,
            )),
        };
        let _: SessionResponse = http::post("/api/register", &request).await?;
        self.start_session(username.to_owned(), secrets);
        self.after_login();
        Ok(())
    }

    /// Logs in: pre-login for salt and parameters (checked against the client's bounds),
    /// Argon2id, login with `auth_key`, then unwraps the identity and checks that the server
    /// publishes our own public keys.
    pub async fn login(&self, username: &str, password: &str) -> Result<(), ChatError> {
        let prelogin: PreloginResponse = http::post(
            "/api/prelogin",
            &PreloginRequest {
                username: username.to_owned(),
            },
        )
        .await?;
        let keys = self
            .derive_timed(password, &prelogin.salt.0, &prelogin.kdf)
            .await?;
        let _: SessionResponse = http::post(
            "/api/login",
            &LoginRequest {
                username: username.to_owned(),
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
            },
        )
        .await?;
        let me: MeResponse = http::get("/api/me").await?;
        if me.username != username || me.salt != prelogin.salt || me.kdf != prelogin.kdf {
            return Err(ChatError::Other(
                "server answered for another account".into(),
            ));
        }
        let secrets = account::unwrap_identity(&keys.wrap_key, username, &me.wrapped_identity.0)?;
        account::check_published_identity(&secrets, &me.identity)?;
        self.start_session(username.to_owned(), secrets);
        self.after_login();
        Ok(())
    }

    /// Ends the session on the server and forgets every key in this tab.
    pub async fn logout(&self) {
        // Even if the server cannot be reached, the keys are dropped locally.
        let _ = http::post_no_content("/api/logout", &()).await;
        self.generation.update(|generation| *generation += 1);
        self.session.set(None);
        self.rooms.set(BTreeMap::new());
        self.selected.set(None);
    }

    fn after_login(&self) {
        let chat = *self;
        leptos::task::spawn_local(async move {
            if let Err(error) = chat.load_rooms().await {
                chat.error.set(Some(error.to_string()));
            }
        });
        crate::socket::start(*self);
    }

    /// Loads every room of the user: log, own envelopes and the latest messages.
    pub async fn load_rooms(&self) -> Result<(), ChatError> {
        let list: RoomListResponse = http::get("/api/rooms").await?;
        for summary in list.rooms {
            self.sync_room(summary.room_id).await?;
        }
        Ok(())
    }

    /// Fetches a room's log, own key envelopes and latest messages, and replaces what was
    /// known of it.
    pub async fn sync_room(&self, room_id: RoomId) -> Result<(), ChatError> {
        let session = self.session()?;
        let base = format!("/api/rooms/{}", room_id.to_hex());
        let log: LogResponse = http::get(&format!("{base}/log")).await?;
        let envelopes: EnvelopesResponse = http::get(&format!("{base}/envelopes")).await?;
        let history: MessagesResponse = http::get(&format!("{base}/messages?limit=100")).await?;
        let entries: Vec<Vec<u8>> = log.entries.into_iter().map(|entry| entry.0).collect();
        let state = replay_bytes(&entries).map_err(|error| {
            format!("this room's history was tampered with ({error}); it cannot be shown")
        });
        let mut view = RoomView {
            room_id,
            name: None,
            state,
            keys: BTreeMap::new(),
            messages: Vec::new(),
            pending: history.messages,
            seen: SeenSequences::new(),
            own_last_sequence: 0,
        };
        for envelope in envelopes.envelopes {
            accept_envelope(&mut view, &session, &envelope);
        }
        process_pending(&mut view, &session);
        self.rooms.update(|rooms| {
            rooms.insert(room_id, view);
        });
        if self.selected.get_untracked().is_none() {
            self.selected.set(Some(room_id));
        }
        Ok(())
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
                self.rooms.update(|rooms| {
                    if let Some(view) = rooms.get_mut(&room_id) {
                        if view.messages.iter().all(|shown| shown.id() != message.id) {
                            view.pending.push(message);
                            process_pending(view, &session);
                        }
                    }
                });
            }
            ServerEvent::LogEntry {
                room_id,
                seq,
                entry,
            } => {
                let applied = self.rooms.try_update(|rooms| {
                    let view = rooms.get_mut(&room_id)?;
                    let state = view.state.as_mut().ok()?;
                    if seq < state.length() {
                        return Some(true);
                    }
                    if seq > state.length() {
                        return Some(false);
                    }
                    let applied = SignedLogEntry::from_bytes(&entry.0)
                        .map_err(|error| error.to_string())
                        .and_then(|signed| state.apply(&signed).map_err(|error| error.to_string()));
                    if let Err(error) = applied {
                        view.state = Err(format!(
                            "this room's history was tampered with (entry {seq}: {error})"
                        ));
                    }
                    Some(true)
                });
                if applied.flatten() != Some(true) {
                    // An unknown room (we were just added) or a gap: fetch it whole.
                    return self.sync_room(room_id).await;
                }
            }
            ServerEvent::KeyEnvelope { envelope } => {
                let room_id = envelope.room_id;
                if !self.knows_room(&room_id) {
                    return self.sync_room(room_id).await;
                }
                self.rooms.update(|rooms| {
                    if let Some(view) = rooms.get_mut(&room_id) {
                        accept_envelope(view, &session, &envelope);
                        process_pending(view, &session);
                    }
                });
            }
            ServerEvent::Error { error } => self.error.set(Some(error)),
        }
        Ok(())
    }

    fn knows_room(&self, room_id: &RoomId) -> bool {
        self.rooms
            .with_untracked(|rooms| rooms.contains_key(room_id))
    }

    /// Creates a room with an encrypted name and selects it.
    pub async fn create_room(&self, name: &str) -> Result<(), ChatError> {
        let session = self.session()?;
        let room = create_room(
            &session.username,
            &session.secrets,
            name.trim(),
            now_ms(),
            &mut OsRng,
        )
        .map_err(|error| ChatError::Other(error.to_string()))?;
        let request = CreateRoomRequest {
            genesis: Base64(room.genesis.as_bytes().to_vec()),
            key_envelope: room.creator_envelope.clone(),
        };
        let created: CreateRoomResponse = http::post("/api/rooms", &request).await?;
        let view = RoomView {
            room_id: created.room_id,
            name: Some(name.trim().to_owned()),
            state: Ok(room.state.clone()),
            keys: BTreeMap::from([(0, room.key.clone())]),
            messages: Vec::new(),
            pending: Vec::new(),
            seen: SeenSequences::new(),
            own_last_sequence: 0,
        };
        self.rooms.update(|rooms| {
            rooms.insert(created.room_id, view);
        });
        self.selected.set(Some(created.room_id));
        Ok(())
    }

    /// Adds a member by username: fetches and verifies their public identity, appends a
    /// signed add entry to the log, and seals the current room key to them.
    pub async fn add_member(&self, room_id: RoomId, username: &str) -> Result<(), ChatError> {
        let session = self.session()?;
        let username = username.trim().to_lowercase();
        validate_username(&username).map_err(|error| ChatError::Other(error.to_string()))?;
        // Deserializing verifies the self-signature and refuses low-order keys.
        let identity: PublicIdentity = http::get(&format!("/api/users/{username}")).await?;
        if identity.username() != username {
            return Err(ChatError::Other(
                "server returned another user's identity".into(),
            ));
        }
        let (state, key) = self
            .rooms
            .with_untracked(|rooms| {
                let view = rooms.get(&room_id)?;
                let state = view.state.as_ref().ok()?.clone();
                let key = view.current_key().map(|(_, key)| key.clone());
                Some((state, key))
            })
            .ok_or_else(|| ChatError::Other("room is not available".into()))?;
        let key =
            key.ok_or_else(|| ChatError::Other("you do not hold this room's key yet".into()))?;
        let entry = state
            .next_entry(
                &session.username,
                now_ms(),
                LogAction::AddMember {
                    username: username.clone(),
                    keys: *identity.keys(),
                    role: Role::Member,
                },
            )
            .sign(&session.secrets);
        let mut next_state = state.clone();
        next_state
            .apply(&entry)
            .map_err(|error| ChatError::Other(error.to_string()))?;
        http::post_no_content(
            &format!("/api/rooms/{}/log", room_id.to_hex()),
            &AppendLogRequest {
                entry: Base64(entry.as_bytes().to_vec()),
            },
        )
        .await?;
        let epoch = next_state.current_epoch();
        let envelope = KeyEnvelope::seal(
            &next_state,
            epoch,
            &key,
            &username,
            &session.username,
            &session.secrets,
            &mut OsRng,
        )
        .map_err(|error| ChatError::Other(error.to_string()))?;
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                if view.state.as_ref().map(RoomState::length).ok() == Some(state.length()) {
                    view.state = Ok(next_state);
                }
            }
        });
        http::post_no_content(
            &format!("/api/rooms/{}/envelopes", room_id.to_hex()),
            &PutEnvelopesRequest {
                envelopes: vec![envelope],
            },
        )
        .await?;
        Ok(())
    }

    /// Encrypts, signs and posts a text message at the current epoch.
    pub async fn send(&self, room_id: RoomId, text: &str) -> Result<(), ChatError> {
        let session = self.session()?;
        let prepared = self.rooms.try_update(|rooms| {
            let view = rooms.get_mut(&room_id)?;
            let (epoch, key) = view.current_key()?;
            let key = key.clone();
            // Sequence numbers increase and are drawn from the clock, so two browsers of the
            // same user do not reuse one (docs/PROTOCOL.md section 7).
            let sequence = (view.own_last_sequence + 1).max(now_ms() * 1000);
            view.own_last_sequence = sequence;
            Some((epoch, key, sequence))
        });
        let (epoch, key, sequence) = prepared
            .flatten()
            .ok_or_else(|| ChatError::Other("you do not hold this room's key yet".into()))?;
        let inner = InnerMessage {
            room_id,
            epoch,
            sender: session.username.clone(),
            sequence,
            sent_at_ms: now_ms(),
            kind: MessageKind::Text,
            body: text.as_bytes().to_vec(),
        };
        let sealed = seal_message(&inner, &key, &session.secrets, &mut OsRng)
            .map_err(|error| ChatError::Other(error.to_string()))?;
        let stored: StoredMessage = http::post(
            &format!("/api/rooms/{}/messages", room_id.to_hex()),
            &PostMessageRequest {
                epoch,
                nonce: Base64Array(sealed.nonce),
                ciphertext: Base64(sealed.ciphertext),
            },
        )
        .await?;
        // The WebSocket echo may arrive first; either way the message is shown once.
        self.rooms.update(|rooms| {
            if let Some(view) = rooms.get_mut(&room_id) {
                if view.messages.iter().all(|shown| shown.id() != stored.id) {
                    view.pending.push(stored);
                    process_pending(view, &session);
                }
            }
        });
        Ok(())
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens an envelope addressed to us; a valid key is stored and unlocks the room name.
fn accept_envelope(view: &mut RoomView, session: &Session, envelope: &KeyEnvelope) {
    let Ok(state) = view.state.as_ref() else {
        return;
    };
    match envelope.open(state, &session.username, &session.secrets) {
        Ok(key) => {
            if envelope.epoch == 0 && view.name.is_none() {
                view.name = open_metadata(&key, &view.room_id, 0, state.encrypted_metadata())
                    .ok()
                    .map(|metadata| metadata.name);
            }
            view.keys.insert(envelope.epoch, key);
        }
        Err(error) => {
            web_sys::console::warn_1(&format!("refused key envelope: {error}").into());
        }
    }
}

/// Opens every pending message whose key is held; failures become warnings.
fn process_pending(view: &mut RoomView, session: &Session) {
    let Ok(state) = view.state.as_ref() else {
        return;
    };
    let pending = std::mem::take(&mut view.pending);
    for stored in pending {
        let Some(key) = view.keys.get(&stored.epoch) else {
            view.pending.push(stored);
            continue;
        };
        let shown = match open_message(&stored.sealed(), &stored.sender, key, state, &mut view.seen)
        {
            Ok(inner) => {
                if inner.sender == session.username {
                    view.own_last_sequence = view.own_last_sequence.max(inner.sequence);
                }
                ShownMessage::Verified {
                    id: stored.id,
                    sender: inner.sender.clone(),
                    sent_at_ms: inner.sent_at_ms,
                    text: inner.text().unwrap_or_default().to_owned(),
                }
            }
            Err(error) => ShownMessage::Warning {
                id: stored.id,
                claimed_sender: stored.sender.clone(),
                reason: error.to_string(),
            },
        };
        view.messages.push(shown);
    }
    view.messages.sort_by_key(ShownMessage::id);
}
