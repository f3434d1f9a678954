//! The account from the browser: registering, logging in (with the TOTP step) and out,
//! starting a session (the client core, then the client state, the WebSocket and the rooms),
//! unlocking after a reload, two-factor enrolment, sessions, login history, trusted networks,
//! password change and account deletion. Re-authentication derives `auth_key` from the
//! password again, in the browser.

use std::collections::BTreeMap;
use std::sync::Arc;

use client::{Account, ClientState, KdfRecord, Machine, StateKey};
use common::account::{self, AccountKeys, KdfParams, WrapKey, SALT_LEN};
use common::api::endpoints::{
    self, ChangePassword, DeleteAccount, DismissNotices, IdParams, Login, LoginPasskey, LoginTotp,
    Logout, Me, NoParams, PasskeyBegin, PasskeyFinish, PasskeyRemove, Prelogin, Register,
    RevokeOtherSessions, RevokeSession, Sessions, SetTrustedNetworks, TotpDisable, TotpEnable,
    TotpSetup,
};
use common::api::{
    AccountResponse, DeleteAccountRequest, LoginRequest, LoginResponse, MeResponse,
    PasskeyChangeRequest, PasskeyFinishRequest, PasskeyFinishResponse, PasskeyLoginRequest,
    PasswordChangeRequest, PreloginRequest, PreloginResponse, RecoveryCodesResponse,
    RegisterRequest, SessionResponse, SessionsResponse, TotpCodeRequest, TotpLoginRequest,
    TotpSetupResponse, TrustedNetworksRequest,
};
use common::identity::{validate_username, IdentitySecrets};
use common::membership::{LogAction, Role};
use common::primitives::random_bytes;
use common::wire::{Base64, Base64Array};
use common::OsRng;
use leptos::prelude::*;

use crate::chat::{Chat, ChatError, PendingLogin, Session};
use crate::{http, passkeys, storage};

impl Chat {
    /// Finishes the password step of logging in: either the session exists, or a TOTP code
    /// is needed ([`Chat::pending_login`] is set and the log-in screen asks for it).
    pub(crate) async fn after_password_step(
        &self,
        username: &str,
        keys: AccountKeys,
        kdf: KdfRecord,
        response: LoginResponse,
    ) -> Result<(), ChatError> {
        if response.totp_required {
            let challenge = response.challenge.ok_or_else(|| {
                ChatError::Other("server asked for a code without a challenge".into())
            })?;
            self.pending_login.set(Some(Arc::new(PendingLogin {
                username: username.to_owned(),
                challenge,
                keys,
                kdf,
                passkey_options: response.passkey_options,
            })));
            return Ok(());
        }
        self.unlock_with(username, keys, kdf).await
    }

    /// Sends the TOTP (or recovery) code of a pending login, then unlocks the keys.
    pub async fn submit_login_code(&self, code: &str) -> Result<(), ChatError> {
        let pending = self
            .pending_login
            .get_untracked()
            .ok_or_else(|| ChatError::Other("no login is waiting for a code".into()))?;
        let _: LoginResponse = http::call::<LoginTotp>(
            &NoParams,
            &TotpLoginRequest {
                challenge: pending.challenge.clone(),
                code: code.trim().to_owned(),
            },
        )
        .await?;
        self.pending_login.set(None);
        self.unlock_with(&pending.username, pending.keys.clone(), pending.kdf)
            .await
    }

    /// Answers a pending login with a passkey: the browser asks the user for one of the
    /// account's passkeys, and the server checks the assertion; then unlocks the keys.
    pub async fn submit_login_passkey(&self) -> Result<(), ChatError> {
        let pending = self
            .pending_login
            .get_untracked()
            .ok_or_else(|| ChatError::Other("no login is waiting for a passkey".into()))?;
        let options = pending
            .passkey_options
            .clone()
            .ok_or_else(|| ChatError::Other("this account has no passkey".into()))?;
        let credential = passkeys::get(&options).await?;
        let _: LoginResponse = http::call::<LoginPasskey>(
            &NoParams,
            &PasskeyLoginRequest {
                challenge: pending.challenge.clone(),
                credential,
            },
        )
        .await?;
        self.pending_login.set(None);
        self.unlock_with(&pending.username, pending.keys.clone(), pending.kdf)
            .await
    }

    /// Registers a passkey named `name` after re-authenticating (the password, and a code
    /// when TOTP is on): the server's options, the browser's ceremony, the server's check.
    /// Returns the recovery codes when this is the account's first second factor.
    pub async fn add_passkey(
        &self,
        name: &str,
        password: &str,
        code: &str,
    ) -> Result<Option<Vec<String>>, ChatError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ChatError::Other("give the passkey a name".into()));
        }
        // Before the password is asked and a registration started for nothing.
        if !passkeys::supported() {
            return Err(passkeys::too_old());
        }
        let keys = self.reauthenticate(password).await?;
        let options = http::call::<PasskeyBegin>(
            &NoParams,
            &PasskeyChangeRequest {
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
                totp_code: optional_code(code),
            },
        )
        .await?;
        let credential = passkeys::create(&options.0).await?;
        let response: PasskeyFinishResponse = http::call::<PasskeyFinish>(
            &NoParams,
            &PasskeyFinishRequest {
                name: name.to_owned(),
                credential,
            },
        )
        .await?;
        Ok(response.recovery_codes)
    }

    /// Removes the passkey `id` after re-authenticating.
    pub async fn remove_passkey(
        &self,
        id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), ChatError> {
        let keys = self.reauthenticate(password).await?;
        Ok(http::call::<PasskeyRemove>(
            &IdParams { id: id.to_owned() },
            &PasskeyChangeRequest {
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
                totp_code: optional_code(code),
            },
        )
        .await?)
    }

    /// With a valid session: fetches the wrapped identity and unwraps it with `keys`.
    pub(crate) async fn unlock_with(
        &self,
        username: &str,
        keys: AccountKeys,
        kdf: KdfRecord,
    ) -> Result<(), ChatError> {
        let me: MeResponse = http::call::<Me>(&NoParams, &()).await?;
        if me.username != username {
            return Err(ChatError::Other(
                "server answered for another account".into(),
            ));
        }
        let secrets = account::unwrap_identity(&keys.wrap_key, username, &me.wrapped_identity.0)?;
        account::check_published_identity(&secrets, &me.identity)?;
        self.start_session(username.to_owned(), secrets, keys.wrap_key, kdf);
        Ok(())
    }

    /// Checks at start-up whether this browser still has a valid session; if so the app asks
    /// only for the password to unwrap the keys (no second factor again).
    pub async fn detect_session(&self) {
        let live = http::call::<endpoints::Session>(&NoParams, &())
            .await
            .is_ok_and(|status| status.username.is_some());
        if live {
            if let Ok(me) = http::call::<Me>(&NoParams, &()).await {
                self.locked.set(Some(Arc::new(me)));
            }
        }
    }

    /// Unlocks a returning tab's session with the password alone: Argon2id with the stored
    /// parameters, then unwrap. Nothing is sent to the server but the request for `/api/me`.
    pub async fn unlock(&self, password: &str) -> Result<(), ChatError> {
        let me = self
            .locked
            .get_untracked()
            .ok_or_else(|| ChatError::Other("nothing to unlock".into()))?;
        self.check_kdf_record(&me.username, &me.salt.0, &me.kdf)
            .await?;
        let keys = self.derive_timed(password, &me.salt.0, &me.kdf).await?;
        let secrets =
            account::unwrap_identity(&keys.wrap_key, &me.username, &me.wrapped_identity.0)
                .map_err(|_| ChatError::Other("wrong password".into()))?;
        account::check_published_identity(&secrets, &me.identity)?;
        self.locked.set(None);
        let kdf = KdfRecord {
            salt: me.salt.0,
            params: me.kdf,
        };
        self.start_session(me.username.clone(), secrets, keys.wrap_key, kdf);
        Ok(())
    }

    /// Derives the current password's keys again, for re-authentication.
    async fn reauthenticate(&self, password: &str) -> Result<AccountKeys, ChatError> {
        let me: MeResponse = http::call::<Me>(&NoParams, &()).await?;
        self.derive_timed(password, &me.salt.0, &me.kdf).await
    }

    /// The account's security settings, history and notices.
    pub async fn account(&self) -> Result<AccountResponse, ChatError> {
        Ok(http::call::<endpoints::Account>(&NoParams, &()).await?)
    }

    /// Dismisses the new-network notices.
    pub async fn dismiss_notices(&self) -> Result<(), ChatError> {
        Ok(http::call::<DismissNotices>(&NoParams, &()).await?)
    }

    /// Starts TOTP enrolment: a pending secret and its QR code.
    pub async fn totp_setup(&self) -> Result<TotpSetupResponse, ChatError> {
        Ok(http::call::<TotpSetup>(&NoParams, &()).await?)
    }

    /// Confirms enrolment with a valid code and the password (re-authentication); returns
    /// the recovery codes, shown once.
    pub async fn totp_enable(&self, code: &str, password: &str) -> Result<Vec<String>, ChatError> {
        let keys = self.reauthenticate(password).await?;
        let response: RecoveryCodesResponse = http::call::<TotpEnable>(
            &NoParams,
            &TotpCodeRequest {
                code: code.trim().to_owned(),
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
            },
        )
        .await?;
        Ok(response.recovery_codes)
    }

    /// Turns TOTP off; needs a current code and the password.
    pub async fn totp_disable(&self, code: &str, password: &str) -> Result<(), ChatError> {
        let keys = self.reauthenticate(password).await?;
        Ok(http::call::<TotpDisable>(
            &NoParams,
            &TotpCodeRequest {
                code: code.trim().to_owned(),
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
            },
        )
        .await?)
    }

    /// The account's live sessions.
    pub async fn sessions(&self) -> Result<SessionsResponse, ChatError> {
        Ok(http::call::<Sessions>(&NoParams, &()).await?)
    }

    /// Revokes one session (its browser is signed out at once).
    pub async fn revoke_session(&self, id: &str) -> Result<(), ChatError> {
        Ok(http::call::<RevokeSession>(&IdParams { id: id.to_owned() }, &()).await?)
    }

    /// Revokes every session but this one.
    pub async fn revoke_other_sessions(&self) -> Result<(), ChatError> {
        Ok(http::call::<RevokeOtherSessions>(&NoParams, &()).await?)
    }

    /// Replaces the trusted networks (CIDR, comma or space separated; empty allows any).
    pub async fn set_trusted_networks(
        &self,
        networks: &str,
        password: &str,
        code: &str,
    ) -> Result<(), ChatError> {
        let keys = self.reauthenticate(password).await?;
        let networks = networks
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|network| !network.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(http::call::<SetTrustedNetworks>(
            &NoParams,
            &TrustedNetworksRequest {
                networks,
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
                totp_code: optional_code(code),
            },
        )
        .await?)
    }

    /// Changes the password: the same identity is re-wrapped under the new password's key and
    /// other sessions signed out. History stays readable, and the client state (sealed under
    /// a key from the identity) stays as it is but for the new KDF record, which this browser
    /// records so that its next log-in expects the new parameters.
    pub async fn change_password(
        &self,
        current: &str,
        new: &str,
        code: &str,
    ) -> Result<(), ChatError> {
        if new.chars().count() < 8 {
            return Err(ChatError::Other(
                "password must be at least 8 characters".into(),
            ));
        }
        let session = self.session()?;
        let current_keys = self.reauthenticate(current).await?;
        let salt: [u8; SALT_LEN] = random_bytes(&mut OsRng);
        let params = KdfParams::DEFAULT;
        let new_keys = self.derive_timed(new, &salt, &params).await?;
        let request = PasswordChangeRequest {
            current_auth_key: Base64Array(*current_keys.auth_key.as_bytes()),
            totp_code: optional_code(code),
            new_kdf: params,
            new_salt: Base64Array(salt),
            new_auth_key: Base64Array(*new_keys.auth_key.as_bytes()),
            new_wrapped_identity: Base64(account::wrap_identity(
                &new_keys.wrap_key,
                &session.username,
                &session.secrets,
                &mut OsRng,
            )),
        };
        http::call::<ChangePassword>(&NoParams, &request).await?;
        let kdf = KdfRecord { salt, params };
        self.session.set(Some(Arc::new(Session {
            username: session.username.clone(),
            secrets: session.secrets.clone(),
            wrap_key: new_keys.wrap_key,
            state_key: StateKey::derive(&session.secrets),
            kdf,
            device_id: session.device_id,
            fingerprint: session.fingerprint.clone(),
        })));
        if let Err(error) = storage::save_kdf_record(&session.username, &kdf).await {
            self.error.set(Some(error.to_string()));
        }
        self.update_state(|state| state.kdf = Some(kdf));
        self.save_client_state().await
    }

    /// Deletes the account: leaves every room with a signed entry (deleting the rooms this
    /// user owns), then asks the server to delete the account, and signs out.
    pub async fn delete_account(&self, password: &str, code: &str) -> Result<(), ChatError> {
        let keys = self.reauthenticate(password).await?;
        let me = self.me();
        let rooms: Vec<_> = self.rooms.with_untracked(|rooms| {
            rooms
                .values()
                .filter_map(|view| {
                    let role = view.state.as_ref().ok()?.member(&me)?.role;
                    Some((view.room_id, role))
                })
                .collect()
        });
        for (room_id, role) in rooms {
            let action = if role == Role::Owner {
                LogAction::DeleteRoom
            } else {
                LogAction::Leave
            };
            // The server also flags rotation for any room this could not leave.
            let _ = self.command(room_id, client::Command::Append(action)).await;
        }
        http::call::<DeleteAccount>(
            &NoParams,
            &DeleteAccountRequest {
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
                totp_code: optional_code(code),
            },
        )
        .await?;
        // The server forgot the account; so does this browser.
        let _ = storage::forget(&me).await;
        self.end_session_locally(Some("Your account was deleted.".into()));
        Ok(())
    }
}

fn optional_code(code: &str) -> Option<String> {
    let code = code.trim();
    (!code.is_empty()).then(|| code.to_owned())
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
        // The client state is put in place by `load_client_state` before any room is synced.
        self.machine.set(Some(Machine::new(
            Account {
                username: username.clone(),
                secrets: secrets.clone(),
                device_id,
            },
            ClientState::default(),
        )));
        self.finished.set(BTreeMap::new());
        self.selected.set(None);
        self.error.set(None);
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
        let _: SessionResponse = http::call::<Register>(&NoParams, &request).await?;
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
        let prelogin: PreloginResponse = http::call::<Prelogin>(
            &NoParams,
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
        let response: LoginResponse = http::call::<Login>(
            &NoParams,
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
        let _ = http::call::<Logout>(&NoParams, &()).await;
        self.end_session_locally(None);
    }

    /// Loads the client state first, then listens for events and loads the rooms: no room
    /// is checked and no key pinned before what this account has seen is in place.
    fn after_login(&self) {
        let chat = *self;
        leptos::task::spawn_local(async move {
            if let Err(error) = chat.load_client_state().await {
                chat.error.set(Some(error.to_string()));
            }
            chat.load_search_index().await;
            crate::socket::start(chat);
            if let Err(error) = chat.load_rooms().await {
                chat.error.set(Some(error.to_string()));
            }
        });
    }
}
