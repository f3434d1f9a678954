//! Trust in the browser: the durable client state (pins with verification marks, each room's
//! accepted log head, the KDF record) kept in IndexedDB and mirrored to the server, the trust
//! warnings raised when the server serves less than that, and trust on first use of
//! contacts' keys (pinning, warning when they change, verifying).

use client::state::reconcile;
use client::{ClientState, RemoteState, TrustWarning};
use common::api::ClientStateBody;
use common::identity::MemberKeys;
use common::membership::{RoomId, RoomState};
use common::trust::{PinCheck, TrustError};
use common::wire::Base64;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{Chat, ChatError, KeyWarning};
use crate::http::{self, HttpError};
use crate::storage;

/// How often a save retries after the server said another browser saved a newer state.
const SAVE_ATTEMPTS: usize = 3;

impl Chat {
    /// Loads this browser's copy of the client state and the server's, and reconciles them
    /// ([`client::state::reconcile`]): a server copy that is older, missing or unreadable
    /// raises a trust warning and this browser's copy is kept. Then records the KDF
    /// parameters this login used, and uploads when the server's copy lacks something.
    pub async fn load_client_state(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        let local = match storage::load_state(&session.username).await {
            Ok(Some(sealed)) => {
                match ClientState::open(&session.state_key, &session.username, &sealed) {
                    Ok(state) => Some(state),
                    Err(error) => {
                        self.error.set(Some(format!(
                            "this browser's saved state does not open ({error}); the server's copy is used"
                        )));
                        None
                    }
                }
            }
            Ok(None) => None,
            Err(error) => {
                self.error.set(Some(error.to_string()));
                None
            }
        };
        let remote = self.fetch_remote_state().await?;
        let reconciled = reconcile(local, remote);
        self.uploads_held.set(reconciled.hold_uploads);
        self.client_state.set(reconciled.state);
        self.raise_warnings(reconciled.warnings);
        let kdf_changed = self.client_state.try_update(|state| {
            let changed = state.kdf != Some(session.kdf);
            state.kdf = Some(session.kdf);
            changed
        });
        if let Err(error) = storage::save_kdf_record(&session.username, &session.kdf).await {
            self.error.set(Some(error.to_string()));
        }
        if reconciled.upload || kdf_changed == Some(true) {
            self.save_client_state().await?;
        }
        Ok(())
    }

    async fn fetch_remote_state(&self) -> Result<RemoteState, ChatError> {
        let session = self.session()?;
        let body: ClientStateBody = http::get("/api/me/state").await?;
        Ok(match body.sealed {
            None => RemoteState::Missing,
            Some(sealed) => match ClientState::open_remote(
                &session.state_key,
                &session.wrap_key,
                &session.username,
                &sealed.0,
            ) {
                Ok(state) => RemoteState::Opened(state),
                Err(error) => RemoteState::Unreadable(error),
            },
        })
    }

    /// Raises trust warnings: each stays on screen until the user acknowledges it.
    pub fn raise_warnings(&self, warnings: Vec<TrustWarning>) {
        if warnings.is_empty() {
            return;
        }
        self.trust_warnings.update(|shown| {
            for warning in warnings {
                if !shown.contains(&warning) {
                    shown.push(warning);
                }
            }
        });
    }

    /// The user acknowledges the warnings of `room_id` (`None`: the account's). Held
    /// uploads resume, and an acknowledged KDF change lets the next log-in of that account
    /// go ahead.
    pub fn acknowledge_warnings(&self, room_id: Option<RoomId>) {
        let mut acknowledged = Vec::new();
        self.trust_warnings.update(|shown| {
            let (taken, kept) = std::mem::take(shown)
                .into_iter()
                .partition(|warning| warning.room_id() == room_id);
            acknowledged = taken;
            *shown = kept;
        });
        for warning in acknowledged {
            match warning {
                TrustWarning::KdfParametersChanged { username } => {
                    self.kdf_change_accepted.set(Some(username));
                }
                TrustWarning::StateUnreadable if self.uploads_held.get_untracked() => {
                    self.uploads_held.set(false);
                    self.schedule_save();
                }
                _ => {}
            }
        }
    }

    /// Refuses a log-in whose pre-login answer names other KDF parameters or another salt
    /// than this browser recorded for the account, unless the user acknowledged exactly that
    /// warning (a password change made in another browser).
    ///
    /// # Errors
    /// [`ChatError::Other`] naming the warning, which is also raised.
    pub(crate) async fn check_kdf_record(
        &self,
        username: &str,
        salt: &[u8],
        params: &common::account::KdfParams,
    ) -> Result<(), ChatError> {
        let recorded = match storage::load_kdf_record(username).await {
            Ok(recorded) => recorded,
            Err(error) => {
                self.error.set(Some(error.to_string()));
                None
            }
        };
        let Some(record) = recorded else {
            return Ok(());
        };
        match record.check(username, salt, params) {
            Ok(()) => Ok(()),
            Err(_) if self.kdf_change_accepted.get_untracked().as_deref() == Some(username) => {
                self.kdf_change_accepted.set(None);
                Ok(())
            }
            Err(warning) => {
                let text = warning.to_string();
                self.raise_warnings(vec![warning]);
                Err(ChatError::Other(text))
            }
        }
    }

    /// Remembers the accepted log of `room_id` in the client state, saving it if it grew.
    pub fn remember_log_of(&self, room_id: RoomId) {
        let grew = self.rooms.with_untracked(|rooms| {
            let state = rooms.get(&room_id)?.state.as_ref().ok()?;
            self.client_state
                .try_update(|client| client.remember_log(room_id, state))
        });
        if grew == Some(true) {
            self.schedule_save();
        }
    }

    /// Checks a replayed log against what this account accepted of it before.
    ///
    /// # Errors
    /// The [`TrustWarning`] (also raised) when the log was rolled back or forked.
    pub fn check_log(&self, room_id: &RoomId, state: &RoomState) -> Result<(), TrustWarning> {
        let checked = self
            .client_state
            .with_untracked(|client| client.check_log(room_id, state));
        if let Err(warning) = &checked {
            self.raise_warnings(vec![warning.clone()]);
        }
        checked
    }

    /// Saves the client state soon: changes that arrive together are saved once.
    pub fn schedule_save(&self) {
        if self.save_scheduled.get_untracked() {
            return;
        }
        self.save_scheduled.set(true);
        let chat = *self;
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(50).await;
            chat.save_scheduled.set(false);
            if chat.session.with_untracked(Option::is_none) {
                return;
            }
            if let Err(error) = chat.save_client_state().await {
                chat.error.set(Some(error.to_string()));
            }
        });
    }

    /// Saves the client state at the next version: sealed into IndexedDB, then uploaded. When
    /// the server holds a newer version (another browser saved), its copy is merged in and
    /// the save retried.
    pub async fn save_client_state(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        for _ in 0..SAVE_ATTEMPTS {
            let (version, sealed) = self
                .client_state
                .try_update(|state| {
                    state.version += 1;
                    let sealed = state.seal(&session.state_key, &session.username, &mut OsRng);
                    (state.version, sealed)
                })
                .ok_or_else(|| ChatError::Other("not logged in".into()))?;
            if let Err(error) = storage::save_state(&session.username, &sealed).await {
                self.error.set(Some(error.to_string()));
            }
            if self.uploads_held.get_untracked() {
                return Ok(());
            }
            let body = ClientStateBody {
                version,
                sealed: Some(Base64(sealed)),
            };
            match http::put_no_content("/api/me/state", &body).await {
                Ok(()) => return Ok(()),
                Err(HttpError::Server { status: 409, .. }) => {
                    match self.fetch_remote_state().await? {
                        RemoteState::Opened(newer) => {
                            let warnings = self
                                .client_state
                                .try_update(|state| state.merge(&newer))
                                .unwrap_or_default();
                            self.raise_warnings(warnings);
                        }
                        RemoteState::Missing => {}
                        RemoteState::Unreadable(_) => {
                            self.raise_warnings(vec![TrustWarning::StateUnreadable]);
                            self.uploads_held.set(true);
                            return Ok(());
                        }
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ChatError::Other(
            "another browser keeps saving a newer state; this one is saved with the next change"
                .into(),
        ))
    }

    /// Pins `keys` for `username` on first use, or records a visible warning if they differ
    /// from the pin (the warning is the outcome; nothing else is to be done here).
    pub async fn note_keys(&self, username: &str, keys: &MemberKeys, seen_in: &str) {
        if let Err(error) = self.check_trusted(username, keys, seen_in).await {
            if !matches!(error, ChatError::Trust(_)) {
                self.error.set(Some(error.to_string()));
            }
        }
    }

    /// Notes the keys of every member of a room (see [`Chat::note_keys`]).
    pub async fn note_member_keys(&self, state: &RoomState, seen_in: &str) {
        let me = self.me();
        let members: Vec<(String, MemberKeys)> = state
            .members()
            .iter()
            .filter(|(name, _)| **name != me)
            .map(|(name, member)| (name.clone(), member.keys))
            .collect();
        let mut changed = false;
        for (username, keys) in members {
            let outcome = self
                .client_state
                .try_update(|state| state.pins.pin_first_use(&username, &keys));
            match outcome {
                Some(Ok(true)) => changed = true,
                Some(Err(TrustError::KeyChanged(_))) => {
                    self.warn_key_change(&username, keys, seen_in)
                }
                _ => {}
            }
        }
        if changed {
            if let Err(error) = self.save_client_state().await {
                self.error.set(Some(error.to_string()));
            }
        }
    }

    /// Requires that sealing to `keys` is allowed: pins them on first use (and saves), and
    /// refuses keys that differ from the pin, recording a visible warning.
    ///
    /// # Errors
    /// [`ChatError::Trust`] with [`TrustError::KeyChanged`].
    pub async fn check_trusted(
        &self,
        username: &str,
        keys: &MemberKeys,
        seen_in: &str,
    ) -> Result<(), ChatError> {
        if username == self.me() {
            return Ok(());
        }
        let outcome = self
            .client_state
            .try_update(|state| state.pins.pin_first_use(username, keys))
            .unwrap_or(Ok(false));
        match outcome {
            Ok(true) => {
                self.save_client_state().await?;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(error) => {
                self.warn_key_change(username, *keys, seen_in);
                Err(error.into())
            }
        }
    }

    fn warn_key_change(&self, username: &str, presented: MemberKeys, seen_in: &str) {
        self.key_warnings.update(|warnings| {
            warnings.insert(
                username.to_owned(),
                KeyWarning {
                    presented,
                    seen_in: seen_in.to_owned(),
                },
            );
        });
    }

    /// The user accepts `username`'s new keys: the pin is replaced (not verified), and the
    /// rooms they are in get their keys now.
    pub async fn accept_new_keys(&self, username: &str) -> Result<(), ChatError> {
        let Some(warning) = self
            .key_warnings
            .with_untracked(|warnings| warnings.get(username).cloned())
        else {
            return Ok(());
        };
        self.client_state
            .update(|state| state.pins.accept_new_keys(username, &warning.presented));
        self.key_warnings.update(|warnings| {
            warnings.remove(username);
        });
        self.save_client_state().await?;
        let rooms: Vec<_> = self.rooms.with_untracked(|rooms| {
            rooms
                .values()
                .filter(|view| {
                    view.state.as_ref().is_ok_and(|state| {
                        state
                            .member(username)
                            .is_some_and(|m| m.keys == warning.presented)
                    })
                })
                .map(|view| view.room_id)
                .collect()
        });
        for room_id in rooms {
            self.hand_keys_to(room_id, username).await?;
        }
        Ok(())
    }

    /// Marks `username` verified (after comparing safety numbers) or not.
    pub async fn set_verified(
        &self,
        username: &str,
        keys: &MemberKeys,
        verified: bool,
    ) -> Result<(), ChatError> {
        self.check_trusted(username, keys, "verification").await?;
        self.client_state.update(|state| {
            state.pins.set_verified(username, verified);
        });
        self.save_client_state().await
    }

    /// How `username`'s `keys` compare with this user's pins, for display.
    pub fn pin_check(&self, username: &str, keys: &MemberKeys) -> PinCheck {
        self.client_state
            .with(|state| state.pins.check(username, keys))
    }
}
