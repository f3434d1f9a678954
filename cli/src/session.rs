//! One signed-in account: registering and logging in (keys derived and unwrapped here, only
//! the auth key sent), the client state file, and the room commands, each of which syncs the
//! room through [`client::Room::from_sync`] and acts on what it returns.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::state::reconcile;
use client::{
    ClientState, LocalCopy, MembershipChange, Processed, RemoteState, Room, ShownMessage, StateKey,
    SyncAnswers, TrustWarning, MAX_CATCH_UP_PAGES,
};
use common::account::{self, derive_account_keys, KdfParams};
use common::api::{
    AppendLogRequest, ClientStateBody, CreateRoomRequest, CreateRoomResponse, EnvelopesResponse,
    KeyRequestBody, LogResponse, LoginRequest, LoginResponse, MeResponse, MessagesResponse,
    PostMessageRequest, PreloginRequest, PreloginResponse, PutClientStateRequest,
    PutEnvelopesRequest, RegisterRequest, RoomListResponse, ServerEvent, SessionResponse,
    StoredMessage, TotpLoginRequest,
};
use common::identity::{validate_username, IdentitySecrets, PublicIdentity};
use common::membership::{LogAction, Role, RoomId, SignedLogEntry};
use common::message::{seal_message, DEVICE_ID_LEN};
use common::primitives::random_bytes;
use common::room_key::{create_room, EpochChange, KeyEnvelope, RoomMetadata};
use common::trust::PinCheck;
use common::wire::{Base64, Base64Array};
use common::OsRng;

use crate::connection::Connection;
use crate::CliError;

/// Posts a signed entry together with key envelopes that the server stores in the same
/// transaction.
async fn post_entry(
    connection: &Connection,
    room_id: RoomId,
    entry: &SignedLogEntry,
    envelopes: Vec<KeyEnvelope>,
) -> Result<(), CliError> {
    connection
        .post_no_content(
            &format!("/api/rooms/{}/log", room_id.to_hex()),
            &AppendLogRequest {
                entry: Base64(entry.as_bytes().to_vec()),
                envelopes,
            },
        )
        .await
}

/// Messages per history page (the server allows up to 200).
const PAGE_SIZE: usize = 100;

/// Creates the account `username`: a fresh salt and identity, keys derived from `password`
/// with the default Argon2id parameters; the server gets the auth key, the public identity
/// and the identity wrapped under the wrap key.
///
/// # Errors
/// [`CliError::Usage`] for a bad username, the server's refusal otherwise.
pub async fn register(
    connection: &Connection,
    username: &str,
    password: &str,
) -> Result<(), CliError> {
    validate_username(username).map_err(|error| CliError::Usage(error.to_string()))?;
    let salt = random_bytes(&mut OsRng);
    let keys = derive_account_keys(password, &salt, &KdfParams::DEFAULT)
        .map_err(|error| CliError::Refused(error.to_string()))?;
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let request = RegisterRequest::new(
        username,
        KdfParams::DEFAULT,
        salt,
        &keys,
        &secrets,
        &mut OsRng,
    );
    let _: SessionResponse = connection.post("/api/register", &request).await?;
    Ok(())
}

/// A logged-in account with its unwrapped identity and client state.
pub struct Session {
    /// The account name.
    pub username: String,
    secrets: IdentitySecrets,
    device_id: [u8; DEVICE_ID_LEN],
    state: ClientState,
    state_key: StateKey,
    state_file: PathBuf,
    /// Where the highest client-state version the server confirmed is kept.
    confirmed_file: PathBuf,
    /// The highest client-state version the server accepted from, or served to, this
    /// installation.
    confirmed_version: u64,
    /// The version the server holds, as far as this run knows: what the next upload builds
    /// on.
    server_version: u64,
    /// Set while the server's copy does not open: nothing is uploaded over it.
    hold_uploads: bool,
    /// What reconciling this installation's client state with the server's copy found.
    login_warnings: Vec<TrustWarning>,
    /// Trust warnings raised so far in this run, to print once each.
    warned: Vec<TrustWarning>,
    /// Warnings found where nothing could be printed (merging another run's save), printed
    /// with the next ones.
    unreported: Vec<TrustWarning>,
}

impl Session {
    /// Logs in: pre-login, Argon2id with the parameters the server gives (refused outside
    /// the client's bounds, or when they differ from what this client recorded for the
    /// account), the auth key, a TOTP code when the account asks for one, then the wrapped
    /// identity is unwrapped and checked against the published keys, and the client state
    /// is read from `state_dir`.
    ///
    /// # Errors
    /// [`CliError::Refused`] for a wrong password, changed KDF parameters, a swapped bundle
    /// or published identity, or an unreadable state file; the server's refusal otherwise.
    pub async fn login(
        connection: &Connection,
        username: &str,
        password: &str,
        totp_code: Option<&str>,
        state_dir: &Path,
    ) -> Result<Self, CliError> {
        validate_username(username).map_err(|error| CliError::Usage(error.to_string()))?;
        // One folder per server: nothing of one server's account (its session, pins, KDF
        // record) is ever sent to or applied against another.
        let state_dir = state_dir.join(connection.origin_label());
        let state_file = state_dir.join(format!("{username}.state"));
        let session_file = state_dir.join(format!("{username}.session"));
        let kdf_file = state_dir.join(format!("{username}.kdf"));
        let kdf_record = read_kdf_record(&kdf_file)?;
        let remembered = read_state_file(&state_file)?;
        // A session kept from an earlier run is used while the server still honours it, so
        // each run is not another log-in (the server throttles those).
        let mut me = None;
        if let Some(cookie) = read_state_file(&session_file)? {
            connection.restore_session(String::from_utf8_lossy(&cookie).trim());
            match connection.get::<MeResponse>("/api/me").await {
                Ok(answer) if answer.username == username => me = Some(answer),
                Ok(_) | Err(CliError::Server { status: 401, .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let (me, keys) = match me {
            Some(me) => {
                check_kdf(
                    kdf_record.as_ref(),
                    username,
                    &me.salt.0,
                    &me.kdf,
                    &kdf_file,
                )?;
                let keys = derive_account_keys(password, &me.salt.0, &me.kdf)
                    .map_err(|error| CliError::Refused(error.to_string()))?;
                (me, keys)
            }
            None => {
                let keys = log_in(
                    connection,
                    username,
                    password,
                    totp_code,
                    kdf_record.as_ref(),
                    &kdf_file,
                )
                .await?;
                if let Some(cookie) = connection.session_cookie() {
                    write_private_file(&session_file, cookie.as_bytes())?;
                }
                let me: MeResponse = connection.get("/api/me").await?;
                (me, keys)
            }
        };
        if me.username != username {
            return Err(CliError::Refused(
                "the server answered for another account".into(),
            ));
        }
        let secrets = account::unwrap_identity(&keys.wrap_key, username, &me.wrapped_identity.0)
            .map_err(|error| CliError::Refused(error.to_string()))?;
        account::check_published_identity(&secrets, &me.identity)
            .map_err(|error| CliError::Refused(error.to_string()))?;
        let state_key = StateKey::derive(&secrets);
        let confirmed_file = state_dir.join(format!("{username}.confirmed"));
        let local = match remembered {
            Some(sealed) => Some(LocalCopy {
                state: ClientState::open(&state_key, username, &sealed).map_err(|error| {
                    CliError::Refused(format!("{}: {error}", state_file.display()))
                })?,
                confirmed_version: read_state_file(&confirmed_file)?
                    .and_then(|text| String::from_utf8_lossy(&text).trim().parse().ok())
                    .unwrap_or(0),
            }),
            None => None,
        };
        // The server's copy: what the account's other clients saved. A copy older than what
        // this installation saw, gone, or unreadable is a warning, never a silent reset.
        let stored: ClientStateBody = connection.get("/api/me/state").await?;
        let remote = match &stored.sealed {
            None => RemoteState::Missing,
            Some(sealed) => {
                match ClientState::open_remote(&state_key, &keys.wrap_key, username, &sealed.0) {
                    Ok(state) => RemoteState::Opened(state),
                    Err(error) => RemoteState::Unreadable(error),
                }
            }
        };
        let served_version = match &remote {
            RemoteState::Opened(state) => state.version,
            _ => 0,
        };
        let confirmed_version = local
            .as_ref()
            .map_or(0, |local| local.confirmed_version)
            .max(served_version);
        let reconciled = reconcile(local, remote);
        let state = reconciled.state;
        if let Some(record) = &state.kdf {
            record
                .check(username, &me.salt.0, &me.kdf)
                .map_err(|warning| CliError::Refused(warning.to_string()))?;
        }
        write_kdf_record(
            &kdf_file,
            &client::KdfRecord {
                salt: me.salt.0,
                params: me.kdf,
            },
        )?;
        let device_id = device_id(&state_dir.join(format!("{username}.device")))?;
        let mut session = Self {
            username: username.to_owned(),
            secrets,
            device_id,
            state,
            state_key,
            state_file,
            confirmed_file,
            confirmed_version,
            server_version: stored.version,
            hold_uploads: reconciled.hold_uploads,
            login_warnings: reconciled.warnings,
            warned: Vec::new(),
            unreported: Vec::new(),
        };
        session.state.kdf = Some(client::KdfRecord {
            salt: me.salt.0,
            params: me.kdf,
        });
        session.save_state()?;
        Ok(session)
    }

    /// Writes what reconciling this installation's client state with the server's copy
    /// found at log-in (a rolled-back, missing or unreadable copy, a pin that differs, a
    /// forked log) to `out`, as every later warning, with `!! trust warning:`.
    ///
    /// # Errors
    /// An output that cannot be written.
    pub fn report_login_warnings(&mut self, out: &mut impl Write) -> Result<(), CliError> {
        let warnings = self.login_warnings.clone();
        self.warn(&warnings, out)
    }

    /// Uploads the client state to the server at a version above the one it holds, merging
    /// in what another client saved meanwhile (at most twice), unless the server's copy did
    /// not open at log-in. Called once at the end of a run.
    ///
    /// # Errors
    /// The server's refusal, or a state file that cannot be written.
    pub async fn upload_state(
        &mut self,
        connection: &Connection,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        if self.hold_uploads {
            return Ok(());
        }
        for _ in 0..3 {
            let version = self.state.version.max(self.server_version) + 1;
            self.state.version = version;
            let sealed = self.state.seal(&self.state_key, &self.username, &mut OsRng);
            let request = PutClientStateRequest {
                base_version: self.server_version,
                version,
                sealed: Base64(sealed),
            };
            match connection.put_no_content("/api/me/state", &request).await {
                Ok(()) => {
                    self.server_version = version;
                    self.confirmed_version = self.confirmed_version.max(version);
                    write_private_file(
                        &self.confirmed_file,
                        self.confirmed_version.to_string().as_bytes(),
                    )?;
                    return self.save_state();
                }
                Err(CliError::Server { status: 409, .. }) => {
                    // Another client saved first: merge its copy and try again on top of it.
                    let stored: ClientStateBody = connection.get("/api/me/state").await?;
                    self.server_version = stored.version;
                    if let Some(sealed) = stored.sealed {
                        match ClientState::open(&self.state_key, &self.username, &sealed.0) {
                            Ok(theirs) => {
                                let warnings = self.state.merge(&theirs);
                                self.warn(&warnings, out)?;
                            }
                            // Never written over unmerged: what only it holds would be lost.
                            Err(_) => {
                                self.hold_uploads = true;
                                self.warn(&[TrustWarning::StateUnreadable], out)?;
                                return self.save_state();
                            }
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(CliError::Network(
            "the client state kept changing on the server; try again".into(),
        ))
    }

    /// Seals the client state at the next version and writes it to the state file.
    ///
    /// Another run of the same account (a `tail --follow` beside a `send`) may have saved
    /// meanwhile: what the file holds is merged in first, so neither loses the other's pins,
    /// log heads or chain heads. The file is replaced whole, never half written.
    fn save_state(&mut self) -> Result<(), CliError> {
        if let Some(sealed) = read_state_file(&self.state_file)? {
            if let Ok(saved) = ClientState::open(&self.state_key, &self.username, &sealed) {
                if saved.version >= self.state.version {
                    self.state.version = saved.version;
                }
                let warnings = self.state.merge(&saved);
                self.unreported.extend(warnings);
            }
        }
        self.state.version += 1;
        let sealed = self.state.seal(&self.state_key, &self.username, &mut OsRng);
        write_private_file(&self.state_file, &sealed)
    }

    /// The ids of the rooms the user is in.
    ///
    /// # Errors
    /// The server's refusal.
    pub async fn room_ids(&self, connection: &Connection) -> Result<Vec<RoomId>, CliError> {
        let list: RoomListResponse = connection.get("/api/rooms").await?;
        Ok(list
            .rooms
            .into_iter()
            .map(|summary| summary.room_id)
            .collect())
    }

    /// Syncs a room through the client core, remembers its log and chain heads, and returns
    /// it with what the sync found (trust warnings are also written to `out`).
    ///
    /// # Errors
    /// The server's refusal, or a state file that cannot be written.
    pub async fn sync(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        previous: Option<&Room>,
        out: &mut impl Write,
    ) -> Result<Room, CliError> {
        let path = |resource: &str| format!("/api/rooms/{}/{resource}", room_id.to_hex());
        let newest: MessagesResponse = connection
            .get(&path(&format!("messages?limit={PAGE_SIZE}")))
            .await?;
        let mut answers = SyncAnswers {
            history: newest.messages,
            has_more: newest.has_more,
            ..SyncAnswers::default()
        };
        let oldest_head =
            client::RoomChains::new(self.state.chains.get(&room_id).cloned().unwrap_or_default())
                .oldest_head_id();
        for _ in 0..MAX_CATCH_UP_PAGES {
            let Some(before) = answers.older_page_needed(oldest_head) else {
                break;
            };
            let older: MessagesResponse = connection
                .get(&path(&format!(
                    "messages?limit={PAGE_SIZE}&before={before}"
                )))
                .await?;
            answers.prepend_older(older.messages, older.has_more);
        }
        let log: LogResponse = connection.get(&path("log")).await?;
        let envelopes: EnvelopesResponse = connection.get(&path("envelopes")).await?;
        answers.log = log.entries.into_iter().map(|entry| entry.0).collect();
        answers.envelopes = envelopes.envelopes;
        let synced = Room::from_sync(
            room_id,
            &self.username,
            &self.secrets,
            answers,
            &mut self.state,
            previous,
        );
        let room = synced.room;
        self.warn(&synced.processed.warnings, out)?;
        if synced.processed.log_ahead && room.log_retries <= client::room::MAX_LOG_RETRIES {
            // Something names a longer log than the one fetched: fetch again (the log may
            // have grown meanwhile); after MAX_LOG_RETRIES the core calls it a fork.
            return Box::pin(self.sync(connection, room_id, Some(&room), out)).await;
        }
        self.remember(&room);
        self.save_state()?;
        Ok(room)
    }

    /// Records the room's accepted log and chain heads in the client state.
    fn remember(&mut self, room: &Room) {
        if let Ok(state) = room.state.as_ref() {
            self.state.remember_log(room.room_id, state);
        }
        self.state
            .remember_chains(room.room_id, room.chains.heads());
    }

    /// Writes each trust warning not written before in this run.
    fn warn(&mut self, warnings: &[TrustWarning], out: &mut impl Write) -> Result<(), CliError> {
        let unreported = std::mem::take(&mut self.unreported);
        for warning in unreported.iter().chain(warnings) {
            if !self.warned.contains(warning) {
                writeln!(out, "!! trust warning: {warning}").map_err(write_error)?;
                self.warned.push(warning.clone());
            }
        }
        Ok(())
    }

    /// Finds a room by hex id or by (decrypted) name among the user's rooms, synced.
    ///
    /// # Errors
    /// [`CliError::Usage`] when no room or several rooms match.
    pub async fn find_room(
        &mut self,
        connection: &Connection,
        name_or_id: &str,
        out: &mut impl Write,
    ) -> Result<Room, CliError> {
        let ids = self.room_ids(connection).await?;
        if let Ok(room_id) = RoomId::from_hex(name_or_id) {
            if ids.contains(&room_id) {
                return self.sync(connection, room_id, None, out).await;
            }
        }
        let mut found = Vec::new();
        for room_id in ids {
            let room = self.sync(connection, room_id, None, out).await?;
            if room.display_name(&self.username) == name_or_id {
                found.push(room);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(CliError::Usage(format!("no room named {name_or_id}"))),
            _ => Err(CliError::Usage(format!(
                "several rooms are named {name_or_id}: use the id"
            ))),
        }
    }

    /// Creates a room named `name` and returns its id.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a bad name, the server's refusal otherwise.
    pub async fn create_room(
        &mut self,
        connection: &Connection,
        name: &str,
    ) -> Result<RoomId, CliError> {
        let created = create_room(
            &self.username,
            &self.secrets,
            &RoomMetadata::named(name),
            now_ms(),
            &mut OsRng,
        )
        .map_err(|error| CliError::Usage(error.to_string()))?;
        let request = CreateRoomRequest {
            genesis: Base64(created.genesis.as_bytes().to_vec()),
            key_envelope: created.creator_envelope.clone(),
        };
        let response: CreateRoomResponse = connection.post("/api/rooms", &request).await?;
        self.state.remember_log(response.room_id, &created.state);
        self.save_state()?;
        Ok(response.room_id)
    }

    /// Pins every member of the room not pinned yet (the user acts in it).
    ///
    /// # Errors
    /// [`CliError::Refused`] naming a member whose keys differ from the pin.
    fn pin_members(&mut self, room: &Room) -> Result<(), CliError> {
        let state = room
            .state
            .as_ref()
            .map_err(|error| CliError::Refused(error.clone()))?;
        for (username, member) in state.members() {
            if *username != self.username {
                self.state
                    .pins
                    .pin_first_use(username, &member.keys)
                    .map_err(|error| CliError::Refused(error.to_string()))?;
            }
        }
        Ok(())
    }

    /// Adds `username` to the room (admins): under "since joining" in an entry that starts a
    /// new epoch sealed to everyone, under "full history" as a plain add with every key this
    /// user holds sealed to the newcomer. The newcomer's keys come from the server's
    /// directory and are pinned (or checked against the pin).
    ///
    /// # Errors
    /// [`CliError::Refused`] for changed keys or a refused entry; the server's refusal.
    pub async fn add_member(
        &mut self,
        connection: &Connection,
        room: &Room,
        username: &str,
    ) -> Result<(), CliError> {
        validate_username(username).map_err(|error| CliError::Usage(error.to_string()))?;
        let identity: PublicIdentity = connection.get(&format!("/api/users/{username}")).await?;
        if identity.username() != username {
            return Err(CliError::Refused(
                "the server returned another user's identity".into(),
            ));
        }
        self.pin_members(room)?;
        self.state
            .pins
            .pin_first_use(username, identity.keys())
            .map_err(|error| CliError::Refused(error.to_string()))?;
        self.save_state()?;
        let change = room.addition(username, *identity.keys(), Role::Member);
        self.apply_membership_change(connection, room, change).await
    }

    /// Writes a membership change the way the client core decided: in an entry that starts
    /// the next epoch, or as a plain entry.
    async fn apply_membership_change(
        &mut self,
        connection: &Connection,
        room: &Room,
        change: MembershipChange,
    ) -> Result<(), CliError> {
        match change {
            MembershipChange::StartsEpoch(change) => {
                self.start_epoch(connection, room, change).await
            }
            MembershipChange::Plain(action) => self.append_plain(connection, room, action).await,
        }
    }

    /// Signs `action` on top of the room's log, checks that the log accepts it, and posts
    /// it; a plain add goes with the keys the newcomer may have, sealed by this member.
    async fn append_plain(
        &mut self,
        connection: &Connection,
        room: &Room,
        action: LogAction,
    ) -> Result<(), CliError> {
        let state = room
            .state
            .as_ref()
            .map_err(|error| CliError::Refused(error.clone()))?;
        let added = action
            .added_member()
            .map(|(username, _)| username.to_owned());
        let entry = state
            .next_entry(&self.username, now_ms(), action)
            .sign(&self.secrets);
        let mut next = state.clone();
        next.apply(&entry)
            .map_err(|error| CliError::Refused(error.to_string()))?;
        let envelopes = match added {
            Some(username) => {
                let mut after = room.clone();
                after.accept_state(next, &self.username);
                after
                    .envelopes_for(&self.username, &self.secrets, &username, &mut OsRng)
                    .map_err(|error| CliError::Refused(error.to_string()))?
            }
            None => Vec::new(),
        };
        post_entry(connection, room.room_id, &entry, envelopes).await
    }

    /// Makes `change` in an entry that starts the next epoch (a rotation, a removal, a ban,
    /// an add), posted together with the new key sealed to every member whose keys match
    /// this account's pins.
    ///
    /// # Errors
    /// [`CliError::Refused`] when the core refuses; the server's refusal.
    pub async fn start_epoch(
        &mut self,
        connection: &Connection,
        room: &Room,
        change: EpochChange,
    ) -> Result<(), CliError> {
        let pins = &self.state.pins;
        let (rotation, envelopes) = room
            .start_epoch(
                &self.username,
                &self.secrets,
                change,
                |username, keys| !matches!(pins.check(username, keys), PinCheck::Changed { .. }),
                now_ms(),
                &mut OsRng,
            )
            .map_err(|error| CliError::Refused(error.to_string()))?;
        post_entry(connection, room.room_id, &rotation.entry, envelopes).await?;
        self.state.remember_log(room.room_id, &rotation.state);
        self.save_state()
    }

    /// Removes `username`, or with `ban` bans them: a member in an entry that starts the next
    /// epoch, someone who is not a member with a plain ban entry (no key changes).
    ///
    /// # Errors
    /// [`CliError::Refused`] when the core refuses; the server's refusal.
    pub async fn remove(
        &mut self,
        connection: &Connection,
        room: &Room,
        username: &str,
        ban: bool,
    ) -> Result<(), CliError> {
        self.apply_membership_change(connection, room, room.removal(username, ban))
            .await
    }

    /// Leaves the room; a remaining member's client rotates the key.
    ///
    /// # Errors
    /// [`CliError::Refused`] for the owner (who deletes the room instead); the server's
    /// refusal.
    pub async fn leave(&mut self, connection: &Connection, room: &Room) -> Result<(), CliError> {
        self.append_plain(connection, room, LogAction::Leave).await
    }

    /// Does what the room asks of this client after a sync: asks the other members for a
    /// missing key, and completes a pending rotation (or, as an admin, one that is due).
    /// Returns the room, synced again when this client rotated.
    ///
    /// # Errors
    /// The server's refusal (a rotation another member made first is not an error).
    pub async fn do_room_duties(
        &mut self,
        connection: &Connection,
        mut room: Room,
        out: &mut impl Write,
    ) -> Result<Room, CliError> {
        if let Some(epoch) = room.key_to_request(&self.username) {
            let path = format!("/api/rooms/{}/key-requests", room.room_id.to_hex());
            if let Err(error) = connection
                .post_no_content(&path, &KeyRequestBody { epoch })
                .await
            {
                room.key_request_failed(epoch);
                return Err(error);
            }
        }
        if room.rotation_duty(&self.username, now_ms()).is_none() {
            return Ok(room);
        }
        match self
            .start_epoch(connection, &room, EpochChange::Rotate)
            .await
        {
            // Another member's rotation came first: take the log as it is now.
            Ok(()) | Err(CliError::Server { status: 409, .. }) => {}
            Err(error) => return Err(error),
        }
        let room_id = room.room_id;
        self.sync(connection, room_id, Some(&room), out).await
    }

    /// Hands `username` the keys this client holds that the room's policy lets them have,
    /// if their keys match this account's pins (what a member does when someone is added or
    /// asks for a key).
    ///
    /// # Errors
    /// The server's refusal.
    pub async fn hand_keys_to(
        &mut self,
        connection: &Connection,
        room: &Room,
        username: &str,
    ) -> Result<(), CliError> {
        let Some(keys) = room.member_keys(username) else {
            return Ok(());
        };
        if matches!(
            self.state.pins.check(username, &keys),
            PinCheck::Changed { .. }
        ) {
            return Ok(());
        }
        let envelopes = room
            .envelopes_for(&self.username, &self.secrets, username, &mut OsRng)
            .map_err(|error| CliError::Refused(error.to_string()))?;
        if envelopes.is_empty() {
            return Ok(());
        }
        let path = format!("/api/rooms/{}/envelopes", room.room_id.to_hex());
        connection
            .post_no_content(&path, &PutEnvelopesRequest { envelopes })
            .await
    }

    /// Sends `text` to the room: the members are pinned (a changed key stops the send), the
    /// core prepares the next link of this device's chain, and the message is sealed, signed
    /// and posted.
    ///
    /// # Errors
    /// [`CliError::Refused`] for a changed key, a missing room key or a pending rotation; the
    /// server's refusal otherwise.
    pub async fn send(
        &mut self,
        connection: &Connection,
        room: &mut Room,
        text: &str,
        out: &mut impl Write,
    ) -> Result<StoredMessage, CliError> {
        self.pin_members(room)?;
        self.save_state()?;
        // A missing key is asked for, and after a leave (the leaver's key is the current one)
        // the rotation comes first.
        *room = self.do_room_duties(connection, room.clone(), out).await?;
        if room
            .state
            .as_ref()
            .is_ok_and(|state| state.rotation_pending())
        {
            return Err(CliError::Refused(
                "key rotation pending: a member left and no one has rotated the key yet".into(),
            ));
        }
        let (inner, key) = room
            .prepare_text(&self.username, self.device_id, text, now_ms())
            .ok_or_else(|| CliError::Refused("you do not hold this room's key yet".into()))?;
        let sealed = seal_message(&inner, &key, &self.secrets, &mut OsRng)
            .map_err(|error| CliError::Refused(error.to_string()))?;
        let stored: StoredMessage = connection
            .post(
                &format!("/api/rooms/{}/messages", room.room_id.to_hex()),
                &PostMessageRequest {
                    epoch: sealed.epoch,
                    nonce: Base64Array(sealed.nonce),
                    ciphertext: Base64(sealed.ciphertext),
                },
            )
            .await?;
        room.record_sent(&inner);
        // The message joins this device's chain in the client state at once, so the next
        // run continues it even if the server never shows it back.
        room.remember_received(&stored);
        room.pending.push(stored.clone());
        let processed = room.process_pending(&self.username, false);
        self.remember(room);
        self.warn(&processed.warnings, out)?;
        self.save_state()?;
        Ok(stored)
    }

    /// Prints the room's history (verified messages, and warnings in place of the others),
    /// then, for `follow`, every new message and warning as it arrives, until `follow` has
    /// passed (or forever for `Some(Duration::MAX)`).
    ///
    /// # Errors
    /// The server's refusal, a broken WebSocket, or an output that cannot be written.
    pub async fn tail(
        &mut self,
        connection: &Connection,
        mut room: Room,
        follow: Option<Duration>,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let mut printed = BTreeSet::new();
        print_new(&room, &mut printed, out)?;
        let Some(follow) = follow else {
            return Ok(());
        };
        let mut events = connection.events().await?;
        let deadline = tokio::time::Instant::now()
            .checked_add(follow)
            .unwrap_or_else(|| {
                tokio::time::Instant::now() + Duration::from_secs(u64::from(u32::MAX))
            });
        loop {
            let event = match tokio::time::timeout_at(deadline, events.next()).await {
                Err(_) => return Ok(()),
                Ok(event) => event?,
            };
            let Some(event) = event else {
                return Err(CliError::Network(
                    "the server closed the event stream".into(),
                ));
            };
            let room_id = room.room_id;
            let processed = match event {
                ServerEvent::Message { message } if message.room_id == room_id => {
                    room.remember_received(&message);
                    room.pending.push(message);
                    room.process_pending(&self.username, false)
                }
                ServerEvent::KeyEnvelope { envelope } if envelope.room_id == room_id => {
                    let outcome = room.accept_envelope(&self.username, &self.secrets, &envelope);
                    let mut processed = room.process_pending(&self.username, false);
                    match outcome {
                        client::EnvelopeOutcome::LogAhead => processed.log_ahead = true,
                        client::EnvelopeOutcome::Refused(warning, _) => {
                            processed.warnings.extend(warning);
                        }
                        client::EnvelopeOutcome::Accepted => {}
                    }
                    processed
                }
                ServerEvent::LogEntry {
                    room_id: of, entry, ..
                } if of == room_id => {
                    room = self.sync(connection, room_id, Some(&room), out).await?;
                    // Someone added: every member holding the key hands it over.
                    let added = SignedLogEntry::from_bytes(&entry.0)
                        .ok()
                        .and_then(|signed| {
                            signed
                                .entry()
                                .action
                                .added_member()
                                .map(|(username, _)| username.to_owned())
                        });
                    if let Some(username) = added.filter(|name| *name != self.username) {
                        self.hand_keys_to(connection, &room, &username).await?;
                    }
                    room = self.do_room_duties(connection, room, out).await?;
                    Processed::default()
                }
                ServerEvent::KeyRequested {
                    room_id: of,
                    username,
                    ..
                } if of == room_id => {
                    self.hand_keys_to(connection, &room, &username).await?;
                    Processed::default()
                }
                _ => continue,
            };
            self.warn(&processed.warnings, out)?;
            if processed.log_ahead {
                room = self.sync(connection, room_id, Some(&room), out).await?;
            }
            self.remember(&room);
            self.save_state()?;
            print_new(&room, &mut printed, out)?;
        }
    }

    /// The user's rooms, synced, as lines `<id> <name> (epoch N, members a, b)`.
    ///
    /// # Errors
    /// As [`Session::sync`].
    pub async fn list_rooms(
        &mut self,
        connection: &Connection,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        for room_id in self.room_ids(connection).await? {
            let room = self.sync(connection, room_id, None, out).await?;
            let details = match room.state.as_ref() {
                Ok(state) => format!(
                    "epoch {}, members {}{}",
                    state.current_epoch(),
                    state
                        .members()
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if state.rotation_pending() {
                        ", key pending rotation"
                    } else {
                        ""
                    }
                ),
                Err(error) => error.clone(),
            };
            writeln!(
                out,
                "{} {} ({details})",
                room_id.to_hex(),
                room.display_name(&self.username)
            )
            .map_err(write_error)?;
        }
        Ok(())
    }
}

/// Prints the room's messages not printed yet: `sender: text`, or `! warning (claimed
/// sender): reason` for a message that failed a check.
fn print_new(
    room: &Room,
    printed: &mut BTreeSet<i64>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for shown in &room.messages {
        if !printed.insert(shown.id()) {
            continue;
        }
        match shown {
            ShownMessage::Verified { sender, text, .. } => writeln!(out, "{sender}: {text}"),
            ShownMessage::Warning {
                claimed_sender,
                reason,
                ..
            } => writeln!(out, "! warning (claimed sender {claimed_sender}): {reason}"),
        }
        .map_err(write_error)?;
    }
    // Said once, under the id no message has.
    if room.not_shared > 0 && printed.insert(i64::MIN) {
        writeln!(
            out,
            "({} earlier messages are from before you joined and not shared with you)",
            room.not_shared
        )
        .map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

fn write_error(error: std::io::Error) -> CliError {
    CliError::Usage(format!("cannot write the output: {error}"))
}

/// Logs in with the password (pre-login, Argon2id with the parameters the server gives,
/// refused outside the client's bounds, the auth key, and a TOTP code when the account asks
/// for one); the session cookie is then in the connection's jar.
async fn log_in(
    connection: &Connection,
    username: &str,
    password: &str,
    totp_code: Option<&str>,
    kdf_record: Option<&client::KdfRecord>,
    kdf_file: &Path,
) -> Result<account::AccountKeys, CliError> {
    let prelogin: PreloginResponse = connection
        .post(
            "/api/prelogin",
            &PreloginRequest {
                username: username.to_owned(),
            },
        )
        .await?;
    // Checked before anything is derived: a server that lowers the cost or swaps the salt
    // would otherwise get an auth key that is cheaper to attack.
    check_kdf(
        kdf_record,
        username,
        &prelogin.salt.0,
        &prelogin.kdf,
        kdf_file,
    )?;
    let keys = derive_account_keys(password, &prelogin.salt.0, &prelogin.kdf)
        .map_err(|error| CliError::Refused(error.to_string()))?;
    let login: LoginResponse = connection
        .post(
            "/api/login",
            &LoginRequest {
                username: username.to_owned(),
                auth_key: Base64Array(*keys.auth_key.as_bytes()),
            },
        )
        .await?;
    if login.totp_required {
        let code = totp_code.ok_or_else(|| {
            CliError::Usage("this account has two-factor login: pass --totp-code".into())
        })?;
        let challenge = login
            .challenge
            .ok_or_else(|| CliError::Network("no login challenge in the answer".into()))?;
        let _: LoginResponse = connection
            .post(
                "/api/login/totp",
                &TotpLoginRequest {
                    challenge,
                    code: code.to_owned(),
                },
            )
            .await?;
    }
    Ok(keys)
}

/// Refuses a salt or KDF parameters other than the ones recorded for the account.
fn check_kdf(
    record: Option<&client::KdfRecord>,
    username: &str,
    salt: &[u8],
    params: &KdfParams,
    kdf_file: &Path,
) -> Result<(), CliError> {
    let Some(record) = record else {
        return Ok(());
    };
    record.check(username, salt, params).map_err(|warning| {
        CliError::Refused(format!(
            "{warning}; if you changed your password in another client, remove {} and run again",
            kdf_file.display()
        ))
    })
}

/// The KDF record kept in the clear beside the state (it is not secret, and it must be
/// checked before anything is derived): `<salt hex> <m_kib> <t> <p>`.
fn read_kdf_record(path: &Path) -> Result<Option<client::KdfRecord>, CliError> {
    let Some(bytes) = read_state_file(path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let malformed = || CliError::Usage(format!("{}: malformed KDF record", path.display()));
    let [salt, m_kib, t, p] = fields.as_slice() else {
        return Err(malformed());
    };
    let mut salt_bytes = [0u8; account::SALT_LEN];
    hex::decode_to_slice(salt, &mut salt_bytes).map_err(|_| malformed())?;
    let number = |text: &str| text.parse::<u32>().map_err(|_| malformed());
    Ok(Some(client::KdfRecord {
        salt: salt_bytes,
        params: KdfParams {
            m_kib: number(m_kib)?,
            t: number(t)?,
            p: number(p)?,
        },
    }))
}

fn write_kdf_record(path: &Path, record: &client::KdfRecord) -> Result<(), CliError> {
    let text = format!(
        "{} {} {} {}\n",
        hex::encode(record.salt),
        record.params.m_kib,
        record.params.t,
        record.params.p
    );
    write_private_file(path, text.as_bytes())
}

/// Writes `bytes` to `path`, readable by this user only (it holds a session token).
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let failed = |error: std::io::Error| CliError::Usage(format!("{}: {error}", path.display()));
    if let Some(parent) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(failed)?;
    }
    let _ = std::fs::remove_file(path.with_extension("tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Written beside it and renamed, so a crash never leaves half a file.
    let temporary = path.with_extension("tmp");
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

/// This installation's device id for the account, which names its message chains: read
/// from `path` (hex), or made and written there on first use, so one installation's messages
/// form one chain across runs.
fn device_id(path: &Path) -> Result<[u8; DEVICE_ID_LEN], CliError> {
    if let Some(bytes) = read_state_file(path)? {
        let mut id = [0u8; DEVICE_ID_LEN];
        if hex::decode_to_slice(String::from_utf8_lossy(&bytes).trim(), &mut id).is_ok() {
            return Ok(id);
        }
    }
    let id: [u8; DEVICE_ID_LEN] = random_bytes(&mut OsRng);
    write_private_file(path, hex::encode(id).as_bytes())?;
    Ok(id)
}

fn read_state_file(path: &Path) -> Result<Option<Vec<u8>>, CliError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(CliError::Usage(format!("{}: {error}", path.display()))),
    }
}

/// Milliseconds since the Unix epoch by this machine's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
