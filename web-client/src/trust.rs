//! Trust in the browser: the durable client state (pins with verification marks, each room's
//! accepted log head, the KDF record) kept in IndexedDB and mirrored to the server, the trust
//! warnings raised when the server serves less than that, and trust on first use of
//! contacts' keys (pinning, warning when they change, verifying).

use client::state::reconcile;
use client::{ClientState, LocalCopy, RemoteState, TrustWarning};
use common::api::endpoints::{GetClientState, NoParams, PutClientState};
use common::api::{ClientStateBody, PutClientStateRequest};
use common::identity::MemberKeys;
use common::membership::RoomId;
use common::trust::PinCheck;
use common::wire::Base64;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{Chat, ChatError, KeyWarning, Session};
use crate::http::{self, HttpError};
use crate::storage;

/// How often a save retries after the server said another browser saved meanwhile.
const SAVE_ATTEMPTS: usize = 3;
/// The highest client-state version the server can store (its column is a signed 64-bit
/// integer); a larger one named by the server is a lie.
const MAX_VERSION: u64 = i64::MAX as u64;
/// How long a save waits for more changes to save with it, in milliseconds.
const SAVE_DELAY_MS: u32 = 250;

impl Chat {
    /// Loads this browser's copy of the client state and the server's, and reconciles them
    /// ([`client::state::reconcile`]): a server copy that is older than what it confirmed to
    /// this browser, missing or unreadable raises a trust warning, and this browser's copy is
    /// kept. Then records the KDF parameters this login used, uploads when the server's copy
    /// lacks something, and marks the state ready: until then nothing is pinned or saved.
    ///
    /// # Errors
    /// When the server cannot be asked; this browser's copy is then used, and uploads are
    /// held until the next log-in (nothing on the server is replaced blindly).
    pub async fn load_client_state(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        let local = self.load_local_copy(&session).await;
        if let Some(local) = &local {
            // In place before anything is fetched, so nothing runs on an empty state.
            self.update_state(|state| *state = local.state.clone());
            self.server_version.set(local.confirmed_version);
        }
        let fetched = self.fetch_remote_state().await;
        let (remote_version, remote) = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                self.uploads_held.set(true);
                self.state_ready.set(true);
                return Err(ChatError::Other(format!(
                    "could not load your saved contact keys from the server ({error}); this browser's copy is used and nothing is uploaded until you log in again"
                )));
            }
        };
        if remote_version > MAX_VERSION {
            self.uploads_held.set(true);
            self.state_ready.set(true);
            return Err(ChatError::Other(
                "the server reports an impossible client-state version; nothing is uploaded".into(),
            ));
        }
        let served_version = match &remote {
            RemoteState::Opened(state) => Some(state.version),
            _ => None,
        };
        let reconciled = reconcile(local, remote);
        self.uploads_held.set(reconciled.hold_uploads);
        self.server_version.set(remote_version);
        if let Some(version) = served_version {
            let _ = storage::raise_confirmed_version(&session.username, version).await;
        }
        self.update_state(|state| *state = reconciled.state);
        self.raise_warnings(reconciled.warnings);
        let kdf_changed = self.update_state(|state| {
            let changed = state.kdf != Some(session.kdf);
            state.kdf = Some(session.kdf);
            changed
        });
        if let Err(error) = storage::save_kdf_record(&session.username, &session.kdf).await {
            self.error.set(Some(error.to_string()));
        }
        self.state_ready.set(true);
        if reconciled.upload || kdf_changed == Some(true) {
            self.save_client_state().await?;
        }
        Ok(())
    }

    /// This browser's copy from IndexedDB, if it has one that opens.
    async fn load_local_copy(&self, session: &Session) -> Option<LocalCopy> {
        let sealed = match storage::load_state(&session.username).await {
            Ok(sealed) => sealed?,
            Err(error) => {
                self.error.set(Some(error.to_string()));
                return None;
            }
        };
        let state = match ClientState::open(&session.state_key, &session.username, &sealed) {
            Ok(state) => state,
            Err(error) => {
                self.error.set(Some(format!(
                    "this browser's saved state does not open ({error}); the server's copy is used"
                )));
                return None;
            }
        };
        let confirmed_version = storage::load_confirmed_version(&session.username)
            .await
            .unwrap_or(0);
        Some(LocalCopy {
            state,
            confirmed_version,
        })
    }

    /// The server's copy: its version in the clear (what an upload must build on) and what
    /// it holds.
    async fn fetch_remote_state(&self) -> Result<(u64, RemoteState), ChatError> {
        let session = self.session()?;
        let body: ClientStateBody = http::call::<GetClientState>(&NoParams, &()).await?;
        let remote = match body.sealed {
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
        };
        Ok((body.version, remote))
    }

    /// Raises trust warnings: each stays on screen until the user acknowledges it.
    pub fn raise_warnings(&self, warnings: Vec<TrustWarning>) {
        if warnings.is_empty() {
            return;
        }
        self.trust_warnings.update(|shown| {
            for warning in warnings {
                // A grown gap replaces the earlier count of the same sender in the room.
                if let TrustWarning::MessagesWithheld {
                    room_id, sender, ..
                } = &warning
                {
                    shown.retain(|earlier| {
                        !matches!(earlier, TrustWarning::MessagesWithheld {
                            room_id: earlier_room, sender: earlier_sender, ..
                        } if earlier_room == room_id && earlier_sender == sender)
                    });
                }
                if !shown.contains(&warning) {
                    shown.push(warning);
                }
            }
        });
    }

    /// The user acknowledges the warnings of `room_id` (`None`: the account's). Held
    /// uploads resume, and an acknowledged KDF change lets the next log-in of that account
    /// go ahead with exactly the parameters that were shown.
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
                TrustWarning::KdfParametersChanged {
                    username,
                    presented,
                } => {
                    self.kdf_change_accepted.set(Some((username, presented)));
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
            Err(TrustWarning::KdfParametersChanged { presented, .. })
                if self.kdf_change_accepted.get_untracked()
                    == Some((username.to_owned(), presented)) =>
            {
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

    /// Saves the client state soon: changes that arrive together are saved once.
    pub fn schedule_save(&self) {
        if self.save_scheduled.get_untracked() {
            return;
        }
        self.save_scheduled.set(true);
        let chat = *self;
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(SAVE_DELAY_MS).await;
            chat.save_scheduled.set(false);
            if chat.session.with_untracked(Option::is_none) {
                return;
            }
            if let Err(error) = chat.save_client_state().await {
                chat.error.set(Some(error.to_string()));
            }
        });
    }

    /// Saves the client state at the next version: sealed into IndexedDB, then uploaded on
    /// the version the server holds. One save runs at a time (a save asked for meanwhile runs
    /// right after), nothing is saved before the state was loaded, and a save that outlives
    /// its session stops.
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn save_client_state(&self) -> Result<(), ChatError> {
        if !self.state_ready.get_untracked() {
            return Ok(());
        }
        if self.saving.get_untracked() {
            self.save_again.set(true);
            return Ok(());
        }
        self.saving.set(true);
        let result = loop {
            self.save_again.set(false);
            let result = self.save_once().await;
            if result.is_err() || !self.save_again.get_untracked() {
                break result;
            }
        };
        self.saving.set(false);
        result
    }

    async fn save_once(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        let generation = self.generation.get_untracked();
        let current = || self.generation.get_untracked() == generation;
        for _ in 0..SAVE_ATTEMPTS {
            let base_version = self.server_version.get_untracked();
            let (version, sealed) = self
                .update_state(|state| {
                    state.version = state.version.max(base_version).saturating_add(1);
                    let sealed = state.seal(&session.state_key, &session.username, &mut OsRng);
                    (state.version, sealed)
                })
                .ok_or_else(|| ChatError::Other("not logged in".into()))?;
            if let Err(error) = storage::save_state(&session.username, &sealed).await {
                self.error.set(Some(error.to_string()));
            }
            if !current() || self.uploads_held.get_untracked() {
                return Ok(());
            }
            let request = PutClientStateRequest {
                base_version,
                version,
                sealed: Base64(sealed),
            };
            let uploaded = http::call::<PutClientState>(&NoParams, &request).await;
            if !current() {
                return Ok(());
            }
            match uploaded {
                Ok(()) => {
                    self.server_version.set(version);
                    let _ = storage::raise_confirmed_version(&session.username, version).await;
                    return Ok(());
                }
                Err(HttpError::Server { status: 409, .. }) => self.merge_newer_remote().await?,
                Err(error) => return Err(error.into()),
            }
        }
        Err(ChatError::Other(
            "another browser keeps saving its state; this one is saved with the next change".into(),
        ))
    }

    /// After a 409 or a `client_state_changed` event: takes in the server's copy (another
    /// browser saved), raising `pins rolled back` if it is older than what the server already
    /// confirmed here.
    pub(crate) async fn merge_newer_remote(&self) -> Result<(), ChatError> {
        let confirmed = self.server_version.get_untracked();
        let (remote_version, remote) = self.fetch_remote_state().await?;
        match remote {
            RemoteState::Opened(newer) => {
                let mut warnings = self
                    .update_state(|state| state.merge(&newer))
                    .unwrap_or_default();
                if newer.version < confirmed {
                    warnings.push(TrustWarning::PinsRolledBack {
                        seen_version: confirmed,
                        served_version: Some(newer.version),
                    });
                }
                self.raise_warnings(warnings);
            }
            RemoteState::Missing if confirmed > 0 => {
                self.raise_warnings(vec![TrustWarning::PinsRolledBack {
                    seen_version: confirmed,
                    served_version: None,
                }]);
            }
            RemoteState::Missing => {}
            RemoteState::Unreadable(_) => {
                self.raise_warnings(vec![TrustWarning::StateUnreadable]);
                self.uploads_held.set(true);
            }
        }
        if remote_version > MAX_VERSION {
            self.uploads_held.set(true);
            return Err(ChatError::Other(
                "the server reports an impossible client-state version; nothing is uploaded".into(),
            ));
        }
        self.server_version.set(remote_version);
        Ok(())
    }

    /// Refuses to pin before the client state is loaded, so nothing is decided on an empty
    /// state that the loaded one would then overwrite.
    ///
    /// # Errors
    /// [`ChatError::Other`] while the state is loading.
    pub(crate) fn require_state_ready(&self) -> Result<(), ChatError> {
        if self.state_ready.get_untracked() {
            Ok(())
        } else {
            Err(ChatError::Other(
                "your saved contact keys are still loading; try again in a moment".into(),
            ))
        }
    }

    /// Requires that sealing to `keys` is allowed: pins them on first use (and saves), and
    /// refuses keys that differ from the pin, recording a visible warning.
    ///
    /// # Errors
    /// [`ChatError::Trust`] with [`common::trust::TrustError::KeyChanged`].
    pub async fn check_trusted(
        &self,
        username: &str,
        keys: &MemberKeys,
        seen_in: &str,
    ) -> Result<(), ChatError> {
        if username == self.me() {
            return Ok(());
        }
        self.require_state_ready()?;
        let outcome = self
            .update_state(|state| state.pins.pin_first_use(username, keys))
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

    pub(crate) fn warn_key_change(&self, username: &str, presented: MemberKeys, seen_in: &str) {
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

    /// Marks `username` verified (after comparing safety numbers) or not.
    pub async fn set_verified(
        &self,
        username: &str,
        keys: &MemberKeys,
        verified: bool,
    ) -> Result<(), ChatError> {
        self.check_trusted(username, keys, "verification").await?;
        self.update_state(|state| state.pins.set_verified(username, verified));
        self.save_client_state().await
    }

    /// How `username`'s `keys` compare with this user's pins, for display.
    pub fn pin_check(&self, username: &str, keys: &MemberKeys) -> PinCheck {
        self.machine.with(|machine| {
            machine.as_ref().map_or(PinCheck::New, |machine| {
                machine.state().pins.check(username, keys)
            })
        })
    }
}
