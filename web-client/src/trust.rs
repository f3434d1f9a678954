//! Trust on first use in the browser: loading and saving this user's pins (sealed under
//! `wrap_key` on the server, so every browser of the user has them), pinning keys seen for the
//! first time, warning when they change, and marking contacts verified.

use common::api::PinsBody;
use common::identity::MemberKeys;
use common::membership::RoomState;
use common::trust::{open_pins, seal_pins, PinCheck, TrustError};
use common::wire::Base64;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{Chat, ChatError, KeyWarning};
use crate::http;

impl Chat {
    /// Loads the pins stored on the server (none for a new account).
    pub async fn load_pins(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        let body: PinsBody = http::get("/api/me/pins").await?;
        if let Some(sealed) = body.sealed {
            let pins = open_pins(&session.wrap_key, &session.username, &sealed.0)?;
            self.pins.set(pins);
        }
        Ok(())
    }

    /// Seals and uploads the pins.
    pub async fn save_pins(&self) -> Result<(), ChatError> {
        let session = self.session()?;
        let sealed = self.pins.with_untracked(|pins| {
            seal_pins(&session.wrap_key, &session.username, pins, &mut OsRng)
        });
        let _: () = http::put_no_content(
            "/api/me/pins",
            &PinsBody {
                sealed: Some(Base64(sealed)),
            },
        )
        .await?;
        Ok(())
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
                .pins
                .try_update(|pins| pins.pin_first_use(&username, &keys));
            match outcome {
                Some(Ok(true)) => changed = true,
                Some(Err(TrustError::KeyChanged(_))) => {
                    self.warn_key_change(&username, keys, seen_in)
                }
                _ => {}
            }
        }
        if changed {
            if let Err(error) = self.save_pins().await {
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
            .pins
            .try_update(|pins| pins.pin_first_use(username, keys))
            .unwrap_or(Ok(false));
        match outcome {
            Ok(true) => {
                self.save_pins().await?;
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
        self.pins
            .update(|pins| pins.accept_new_keys(username, &warning.presented));
        self.key_warnings.update(|warnings| {
            warnings.remove(username);
        });
        self.save_pins().await?;
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
        self.pins.update(|pins| {
            pins.set_verified(username, verified);
        });
        self.save_pins().await
    }

    /// How `username`'s `keys` compare with this user's pins, for display.
    pub fn pin_check(&self, username: &str, keys: &MemberKeys) -> PinCheck {
        self.pins.with(|pins| pins.check(username, keys))
    }
}
