//! The client's state and session: registering, logging in and out, and the signals every
//! screen reads. Rooms and events are in [`crate::rooms`], administration in
//! [`crate::admin`], trust on first use in [`crate::trust`]. All cryptography goes through
//! `common`; these modules only move bytes and keep the results in Leptos signals.

use std::collections::BTreeMap;
use std::sync::Arc;

use client::{ClientState, KdfRecord, StateKey, TrustWarning};
pub use client::{Room, ShownMessage};
use common::account::{self, KdfParams, WrapKey, SALT_LEN};
use common::api::{
    LoginRequest, LoginResponse, MeResponse, PreloginRequest, PreloginResponse, RegisterRequest,
    SessionResponse,
};
use common::identity::{validate_username, Fingerprint, IdentitySecrets, MemberKeys};
use common::membership::RoomId;
use common::message::DEVICE_ID_LEN;
use common::primitives::random_bytes;
use common::wire::Base64Array;
use common::OsRng;
use leptos::prelude::*;

use crate::account::PendingLogin;
use crate::http::{self, HttpError};

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
    /// Rooms by id.
    pub rooms: RwSignal<BTreeMap<RoomId, Room>>,
    /// The room on screen.
    pub selected: RwSignal<Option<RoomId>>,
    /// The last error to show in the main screen.
    pub error: RwSignal<Option<String>>,
    /// How long the last key derivation took, in milliseconds.
    pub kdf_millis: RwSignal<Option<f64>>,
    /// Bumped on logout so the WebSocket task of the old session stops.
    pub generation: RwSignal<u64>,
    /// The durable client state of the logged-in user: pins, accepted log heads, KDF record.
    pub client_state: RwSignal<ClientState>,
    /// Trust warnings not yet acknowledged, the account's and every room's.
    pub trust_warnings: RwSignal<Vec<TrustWarning>>,
    /// Set while the server's client state is unreadable and this browser has none: nothing
    /// is uploaded over it until the user acknowledges the warning.
    pub uploads_held: RwSignal<bool>,
    /// Set while a save of the client state is scheduled.
    pub save_scheduled: RwSignal<bool>,
    /// Set while a message of this tab is being posted: sends go out one at a time.
    pub send_in_flight: RwSignal<bool>,
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
            client_state: RwSignal::new(ClientState::default()),
            trust_warnings: RwSignal::new(Vec::new()),
            uploads_held: RwSignal::new(false),
            save_scheduled: RwSignal::new(false),
            send_in_flight: RwSignal::new(false),
            kdf_change_accepted: RwSignal::new(None),
            state_ready: RwSignal::new(false),
            server_version: RwSignal::new(0),
            saving: RwSignal::new(false),
            save_again: RwSignal::new(false),
            key_warnings: RwSignal::new(BTreeMap::new()),
            invite: RwSignal::new(crate::admin::invite_from_location()),
            pending_login: RwSignal::new(None),
            locked: RwSignal::new(None),
            notice: RwSignal::new(None),
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

    pub(crate) async fn derive_timed(
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

    /// Starts the session of `username` with its unlocked keys and a fresh device id for
    /// its message chains, then loads the client state and the rooms in the background.
    pub(crate) fn start_session(
        &self,
        username: String,
        secrets: IdentitySecrets,
        wrap_key: WrapKey,
        kdf: KdfRecord,
    ) {
        // A fresh device id per page load: two tabs (even a duplicated one) never write the
        // same chain, and a reloaded tab simply starts a new one.
        let device_id = random_bytes(&mut OsRng);
        let fingerprint = secrets.public_identity(&username).fingerprint();
        self.rooms.set(BTreeMap::new());
        self.selected.set(None);
        self.error.set(None);
        self.client_state.set(ClientState::default());
        self.trust_warnings
            .update(|warnings| warnings.retain(|warning| warning.room_id().is_none()));
        self.uploads_held.set(false);
        self.state_ready.set(false);
        self.server_version.set(0);
        self.key_warnings.set(BTreeMap::new());
        self.session.set(Some(Arc::new(Session {
            username,
            state_key: StateKey::derive(&secrets),
            secrets,
            wrap_key,
            kdf,
            device_id,
            fingerprint,
        })));
        self.notice.set(None);
        self.after_login();
    }

    /// Registers a new account: fresh salt and identity, Argon2id with the default
    /// parameters, wrapped identity uploaded. Logs in on success.
    pub async fn register(&self, username: &str, password: &str) -> Result<(), ChatError> {
        validate_username(username).map_err(ChatError::from_display)?;
        if password.chars().count() < 8 {
            return Err(ChatError::Other(
                "password must be at least 8 characters".into(),
            ));
        }
        let salt: [u8; SALT_LEN] = random_bytes(&mut OsRng);
        let params = KdfParams::DEFAULT;
        let keys = self.derive_timed(password, &salt, &params).await?;
        let secrets = IdentitySecrets::generate(&mut OsRng);
        let request = RegisterRequest::new(username, params, salt, &keys, &secrets, &mut OsRng);
        let _: SessionResponse = http::post("/api/register", &request).await?;
        self.start_session(
            username.to_owned(),
            secrets,
            keys.wrap_key,
            KdfRecord { salt, params },
        );
        Ok(())
    }

    /// Logs in: pre-login for salt and parameters (checked against the client's bounds),
    /// Argon2id, login with `auth_key`; then either a TOTP code is asked for, or the identity
    /// is unwrapped and checked against the public keys the server publishes.
    pub async fn login(&self, username: &str, password: &str) -> Result<(), ChatError> {
        let prelogin: PreloginResponse = http::post(
            "/api/prelogin",
            &PreloginRequest {
                username: username.to_owned(),
            },
        )
        .await?;
        self.check_kdf_record(username, &prelogin.salt.0, &prelogin.kdf)
            .await?;
        let keys = self
            .derive_timed(password, &prelogin.salt.0, &prelogin.kdf)
            .await?;
        let response: LoginResponse = http::post(
            "/api/login",
            &LoginRequest {
                username: username.to_owned(),
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
            },
        )
        .await?;
        let kdf = KdfRecord {
            salt: prelogin.salt.0,
            params: prelogin.kdf,
        };
        self.after_password_step(username, keys, kdf, response)
            .await
    }

    /// Ends the session on the server and forgets every key in this tab.
    pub async fn logout(&self) {
        // Even if the server cannot be reached, the keys are dropped locally.
        let _ = http::post_no_content("/api/logout", &()).await;
        self.end_session_locally(None);
    }

    /// Forgets every key and room in this tab, showing `notice` on the log-in screen.
    pub fn end_session_locally(&self, notice: Option<String>) {
        self.generation.update(|generation| *generation += 1);
        self.session.set(None);
        self.locked.set(None);
        self.pending_login.set(None);
        self.rooms.set(BTreeMap::new());
        self.selected.set(None);
        self.client_state.set(ClientState::default());
        self.state_ready.set(false);
        self.trust_warnings.set(Vec::new());
        self.key_warnings.set(BTreeMap::new());
        self.notice.set(notice);
    }

    /// Loads the client state first, then listens for events and loads the rooms: no room
    /// is checked and no key pinned before what this account has seen is in place.
    fn after_login(&self) {
        let chat = *self;
        leptos::task::spawn_local(async move {
            if let Err(error) = chat.load_client_state().await {
                chat.error.set(Some(error.to_string()));
            }
            crate::socket::start(chat);
            if let Err(error) = chat.load_rooms().await {
                chat.error.set(Some(error.to_string()));
            }
        });
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}
