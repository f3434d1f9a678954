//! The signals every screen reads, the session of the logged-in user and the client core
//! that holds its rooms. The lowest layer of the app: it imports none of the modules that
//! act on it. Logging in and out is in [`crate::account`], the client state's load and save
//! in [`crate::trust`], the driver of the client core in [`crate::rooms`], administration in
//! [`crate::admin`]. All cryptography goes through `common` and `client`.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use client::{ClientState, Room, ShownMessage};
use client::{KdfRecord, Machine, StateKey, Ticket, TrustWarning};
use common::account::{AccountError, AccountKeys, WrapKey};
use common::api::MeResponse;
use common::identity::{Fingerprint, IdentitySecrets, MemberKeys};
use common::membership::RoomId;
use common::message::DEVICE_ID_LEN;
use common::wire::Base64;
use leptos::prelude::*;

use crate::http::HttpError;

/// Who is logged in in this tab. Keys stay in memory for the tab's life only.
pub struct Session {
    /// The account name.
    pub username: String,
    /// The unwrapped identity secrets.
    pub secrets: IdentitySecrets,
    /// Opens protocol-1 pins blobs kept from before the client state existed.
    pub wrap_key: WrapKey,
    /// Seals the client state (derived from the identity secrets).
    pub state_key: StateKey,
    /// The salt and KDF parameters this session's keys were derived with.
    pub kdf: KdfRecord,
    /// This browser's device id, which names its message chains.
    pub device_id: [u8; DEVICE_ID_LEN],
    /// The user's own fingerprint, shown so others can compare it.
    pub fingerprint: Fingerprint,
}

impl Session {
    /// The user's own public keys.
    pub fn keys(&self) -> MemberKeys {
        self.secrets.public_keys()
    }
}

/// A contact whose keys differ from the ones first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWarning {
    /// The keys now presented (by a room's log or the server's directory).
    pub presented: MemberKeys,
    /// Where they were seen.
    pub seen_in: String,
}

/// All reactive state of the app. `Copy`, so components and tasks share it freely.
#[derive(Clone, Copy)]
pub struct Chat {
    /// The logged-in user, if any.
    pub session: RwSignal<Option<Arc<Session>>>,
    /// The client core of the logged-in user (its client state, rooms and writes under
    /// way); `None` when logged out. Only [`crate::rooms`], the driver, hands it inputs.
    pub machine: RwSignal<Option<Machine>>,
    /// Read access to the core's rooms, for the views.
    pub rooms: Rooms,
    /// Commands that ended, by ticket, until the task that started them reads them.
    pub finished: RwSignal<BTreeMap<Ticket, Result<(), String>>>,
    /// The last ticket given to a command.
    pub next_ticket: RwSignal<Ticket>,
    /// The room on screen.
    pub selected: RwSignal<Option<RoomId>>,
    /// On a phone-width screen, whether the room is shown rather than the room list (they
    /// are separate screens there; wider screens show both and ignore it).
    pub room_open: RwSignal<bool>,
    /// On a phone-width screen, whether the members and administration drawer is open.
    pub members_open: RwSignal<bool>,
    /// The last error to show in the main screen.
    pub error: RwSignal<Option<String>>,
    /// How long the last key derivation took, in milliseconds.
    pub kdf_millis: RwSignal<Option<f64>>,
    /// Bumped on logout so the WebSocket task of the old session stops.
    pub generation: RwSignal<u64>,
    /// Trust warnings not yet acknowledged, the account's and every room's.
    pub trust_warnings: RwSignal<Vec<TrustWarning>>,
    /// Set while the server's client state is unreadable and this browser has none: nothing
    /// is uploaded over it until the user acknowledges the warning.
    pub uploads_held: RwSignal<bool>,
    /// Set while a save of the client state is scheduled.
    pub save_scheduled: RwSignal<bool>,
    /// An account whose changed KDF parameters the user acknowledged (a password change made
    /// in another browser), with the parameters shown: its next log-in with exactly those
    /// goes ahead.
    pub kdf_change_accepted: RwSignal<Option<(String, KdfRecord)>>,
    /// Set once the client state is loaded: nothing is pinned or saved before.
    pub state_ready: RwSignal<bool>,
    /// The client-state version the server holds, as far as this tab knows: what the next
    /// upload builds on.
    pub server_version: RwSignal<u64>,
    /// Set while a save of the client state runs.
    pub saving: RwSignal<bool>,
    /// Set when a save was asked for while one ran: it runs again right after.
    pub save_again: RwSignal<bool>,
    /// Contacts whose keys changed, by username.
    pub key_warnings: RwSignal<BTreeMap<String, KeyWarning>>,
    /// An invite link this tab was opened with: room and token.
    pub invite: RwSignal<Option<(RoomId, Vec<u8>)>>,
    /// A login whose password step succeeded and that waits for a TOTP code.
    pub pending_login: RwSignal<Option<Arc<PendingLogin>>>,
    /// A valid session found at start-up whose keys are still locked (ask for the password).
    pub locked: RwSignal<Option<Arc<MeResponse>>>,
    /// A message for the log-in screen, such as why the session ended.
    pub notice: RwSignal<Option<String>>,
    /// The search index of the logged-in account (this device only).
    pub search: crate::search::Search,
}

/// A login waiting for its second factor: the password step succeeded.
pub struct PendingLogin {
    /// The account.
    pub username: String,
    /// The challenge to send back with the code.
    pub challenge: Base64,
    /// Keys derived from the password, kept for unwrapping once the code is accepted.
    pub keys: AccountKeys,
    /// The salt and KDF parameters they were derived with.
    pub kdf: KdfRecord,
    /// The options for a passkey assertion, when the account has passkeys.
    pub passkey_options: Option<common::api::WebAuthnJson>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The rooms of the client core, read the way signals are ([`Rooms::with`] tracks,
/// [`Rooms::with_untracked`] does not); empty when logged out.
#[derive(Clone, Copy)]
pub struct Rooms(RwSignal<Option<Machine>>);

/// What [`Rooms`] shows when no one is logged in.
static NO_ROOMS: BTreeMap<RoomId, Room> = BTreeMap::new();

impl Rooms {
    /// Reads the rooms, subscribing the caller to changes.
    pub fn with<R>(&self, read: impl FnOnce(&BTreeMap<RoomId, Room>) -> R) -> R {
        self.0
            .with(|machine| read(machine.as_ref().map_or(&NO_ROOMS, Machine::rooms)))
    }

    /// Reads the rooms without subscribing.
    pub fn with_untracked<R>(&self, read: impl FnOnce(&BTreeMap<RoomId, Room>) -> R) -> R {
        self.0
            .with_untracked(|machine| read(machine.as_ref().map_or(&NO_ROOMS, Machine::rooms)))
    }
}

impl Chat {
    /// Reads the client state, if someone is logged in (untracked).
    pub fn with_state<R>(&self, read: impl FnOnce(&ClientState) -> R) -> Option<R> {
        self.machine
            .with_untracked(|machine| machine.as_ref().map(|machine| read(machine.state())))
    }

    /// Changes the client state, if someone is logged in; the caller saves it.
    pub fn update_state<R>(&self, change: impl FnOnce(&mut ClientState) -> R) -> Option<R> {
        self.machine
            .try_update(|machine| machine.as_mut().map(|machine| change(machine.state_mut())))
            .flatten()
    }

    /// Changes one room of the client core (what the driver keeps in it, such as the join
    /// requests it loaded).
    pub fn update_room<R>(
        &self,
        room_id: &RoomId,
        change: impl FnOnce(&mut Room) -> R,
    ) -> Option<R> {
        self.machine
            .try_update(|machine| machine.as_mut()?.room_mut(room_id).map(change))
            .flatten()
    }
}

/// Something a user action could not do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Key derivation or unwrapping failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A contact's keys changed since first use.
    #[error(transparent)]
    Trust(#[from] common::trust::TrustError),
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

impl ChatError {
    /// An error from a `common` check, in words.
    pub fn from_display(error: impl std::fmt::Display) -> Self {
        Self::Other(error.to_string())
    }
}

/// Milliseconds since the Unix epoch, from the browser's clock.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

impl Chat {
    /// Creates the signals.
    pub fn new() -> Self {
        let machine = RwSignal::new(None);
        Self {
            session: RwSignal::new(None),
            machine,
            rooms: Rooms(machine),
            finished: RwSignal::new(BTreeMap::new()),
            next_ticket: RwSignal::new(0),
            selected: RwSignal::new(None),
            room_open: RwSignal::new(false),
            members_open: RwSignal::new(false),
            error: RwSignal::new(None),
            kdf_millis: RwSignal::new(None),
            generation: RwSignal::new(0),
            trust_warnings: RwSignal::new(Vec::new()),
            uploads_held: RwSignal::new(false),
            save_scheduled: RwSignal::new(false),
            kdf_change_accepted: RwSignal::new(None),
            state_ready: RwSignal::new(false),
            server_version: RwSignal::new(0),
            saving: RwSignal::new(false),
            save_again: RwSignal::new(false),
            key_warnings: RwSignal::new(BTreeMap::new()),
            invite: RwSignal::new(None),
            pending_login: RwSignal::new(None),
            locked: RwSignal::new(None),
            notice: RwSignal::new(None),
            search: crate::search::Search::new(),
        }
    }

    /// The current session, or an error when logged out.
    pub fn session(&self) -> Result<Arc<Session>, ChatError> {
        self.session
            .get_untracked()
            .ok_or_else(|| ChatError::Other("not logged in".into()))
    }

    /// The logged-in username, or empty.
    pub fn me(&self) -> String {
        self.session
            .with_untracked(|session| session.as_ref().map(|s| s.username.clone()))
            .unwrap_or_default()
    }

    /// Forgets every key and room in this tab, showing `notice` on the log-in screen.
    pub fn end_session_locally(&self, notice: Option<String>) {
        self.generation.update(|generation| *generation += 1);
        self.session.set(None);
        self.locked.set(None);
        self.pending_login.set(None);
        self.machine.set(None);
        self.finished.set(BTreeMap::new());
        self.selected.set(None);
        self.room_open.set(false);
        self.members_open.set(false);
        self.state_ready.set(false);
        self.trust_warnings.set(Vec::new());
        self.key_warnings.set(BTreeMap::new());
        self.search.clear();
        self.notice.set(notice);
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}
