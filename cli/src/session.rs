//! One signed-in account: registering and logging in (keys derived and unwrapped here, only
//! the auth key sent), the client state file, and the room commands, each of which syncs the
//! room through [`client::Room::from_sync`] and acts on what it returns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client::state::reconcile;
use client::{
    Account, AppendOutcome, Change, ClientState, Command, Effect, Input, ItemContent, LocalCopy,
    Machine, PostOutcome, RemoteState, Room, StateKey, SyncAnswers, Ticket, Timer, TrustWarning,
    MAX_CATCH_UP_PAGES,
};
use common::account::{self, derive_account_keys, KdfParams};
use common::api::endpoints::{
    AppendLog, CreateRoom, GetClientState, GetEnvelopes, GetLog, ListMessages, ListRooms, Login,
    LoginTotp, Me, NoParams, PageQuery, PostMessage, Prelogin, PutClientState, PutEnvelopes,
    Register, RequestKey, RoomParams, UserIdentity, UserParams,
};
use common::api::{
    ClientStateBody, CreateRoomRequest, CreateRoomResponse, LoginRequest, LoginResponse,
    MeResponse, PreloginRequest, PreloginResponse, PutClientStateRequest, RegisterRequest,
    RoomListResponse, SessionResponse, TotpLoginRequest,
};
use common::identity::{validate_username, IdentitySecrets};
use common::membership::{LogAction, Role, RoomId};
use common::message::DEVICE_ID_LEN;
use common::primitives::random_bytes;
use common::room_key::{create_room, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;

use crate::connection::{Connection, Events};
use crate::CliError;

/// Messages per history page (the server allows up to 200).
const PAGE_SIZE: u32 = 100;
/// How long `tail --follow` waits before connecting again after its event stream ended.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How long `tail --follow` keeps trying to connect again before it gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

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
    let _: SessionResponse = connection.call::<Register>(&NoParams, &request).await?;
    Ok(())
}

/// A logged-in account with its unwrapped identity and client state.
pub struct Session {
    /// The account name.
    pub username: String,
    /// A copy of the identity secrets, for what the core does not do (creating a room).
    secrets: IdentitySecrets,
    /// The client core: the client state, the rooms, the writes under way.
    machine: Machine,
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
    /// Key changes written so far in this run, to print once each.
    key_changes: Vec<String>,
    /// While following a room: the core's timers and when they fire.
    timers: Option<Vec<(tokio::time::Instant, Timer)>>,
    /// The last ticket given to a command.
    next_ticket: Ticket,
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
            match connection.call::<Me>(&NoParams, &()).await {
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
                let me: MeResponse = connection.call::<Me>(&NoParams, &()).await?;
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
        let stored: ClientStateBody = connection.call::<GetClientState>(&NoParams, &()).await?;
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
        let account = Account {
            username: username.to_owned(),
            secrets: secrets.clone(),
            device_id,
        };
        let mut session = Self {
            username: username.to_owned(),
            secrets,
            machine: Machine::new(account, state),
            state_key,
            state_file,
            confirmed_file,
            confirmed_version,
            server_version: stored.version,
            hold_uploads: reconciled.hold_uploads,
            login_warnings: reconciled.warnings,
            warned: Vec::new(),
            unreported: Vec::new(),
            key_changes: Vec::new(),
            timers: None,
            next_ticket: 0,
        };
        session.machine.state_mut().kdf = Some(client::KdfRecord {
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
            let state = self.machine.state_mut();
            let version = state.version.max(self.server_version) + 1;
            state.version = version;
            let sealed = state.seal(&self.state_key, &self.username, &mut OsRng);
            let request = PutClientStateRequest {
                base_version: self.server_version,
                version,
                sealed: Base64(sealed),
            };
            match connection.call::<PutClientState>(&NoParams, &request).await {
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
                    let stored: ClientStateBody =
                        connection.call::<GetClientState>(&NoParams, &()).await?;
                    self.server_version = stored.version;
                    if let Some(sealed) = stored.sealed {
                        match ClientState::open(&self.state_key, &self.username, &sealed.0) {
                            Ok(theirs) => {
                                let warnings = self.machine.state_mut().merge(&theirs);
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
        let state = self.machine.state_mut();
        if let Some(sealed) = read_state_file(&self.state_file)? {
            if let Ok(saved) = ClientState::open(&self.state_key, &self.username, &sealed) {
                if saved.version >= state.version {
                    state.version = saved.version;
                }
                let warnings = state.merge(&saved);
                self.unreported.extend(warnings);
            }
        }
        state.version += 1;
        let sealed = state.seal(&self.state_key, &self.username, &mut OsRng);
        write_private_file(&self.state_file, &sealed)
    }

    /// The ids of the rooms the user is in.
    ///
    /// # Errors
    /// The server's refusal.
    pub async fn room_ids(&self, connection: &Connection) -> Result<Vec<RoomId>, CliError> {
        let list: RoomListResponse = connection.call::<ListRooms>(&NoParams, &()).await?;
        Ok(list
            .rooms
            .into_iter()
            .map(|summary| summary.room_id)
            .collect())
    }

    /// The account's identity secrets. What a modified client would sign with: the browser
    /// tests use them to forge what an honest client core refuses to send.
    pub fn identity_secrets(&self) -> &IdentitySecrets {
        &self.secrets
    }

    /// The room as the client core knows it.
    ///
    /// # Errors
    /// [`CliError::Refused`] when the room is not known (not synced, or deleted).
    pub fn room(&self, room_id: &RoomId) -> Result<&Room, CliError> {
        self.machine
            .room(room_id)
            .ok_or_else(|| CliError::Refused("the room is not available".into()))
    }

    /// Fetches what a sync of `room_id` needs, in the order the client core asks for
    /// ([`Effect::Sync`]): the newest messages (and older pages back to the chain heads the
    /// client state remembers), the log, this user's envelopes.
    async fn sync_answers(
        &self,
        connection: &Connection,
        room_id: RoomId,
    ) -> Result<SyncAnswers, CliError> {
        let room = RoomParams { room_id };
        let newest = connection
            .call_with_query::<ListMessages>(&room, &PageQuery::backwards(None, PAGE_SIZE), &())
            .await?;
        let mut answers = SyncAnswers {
            history: newest.messages,
            has_more: newest.has_more,
            ..SyncAnswers::default()
        };
        let oldest_head = self.machine.oldest_head(&room_id);
        for _ in 0..MAX_CATCH_UP_PAGES {
            let Some(before) = answers.older_page_needed(oldest_head) else {
                break;
            };
            let older = connection
                .call_with_query::<ListMessages>(
                    &room,
                    &PageQuery::backwards(Some(before), PAGE_SIZE),
                    &(),
                )
                .await?;
            answers.prepend_older(older.messages, older.has_more);
        }
        let log = connection.call::<GetLog>(&room, &()).await?;
        let envelopes = connection.call::<GetEnvelopes>(&room, &()).await?;
        answers.log = log.entries.into_iter().map(|entry| entry.0).collect();
        answers.envelopes = envelopes.envelopes;
        Ok(answers)
    }

    /// Hands `input` to the client core and does what it asks, feeding back the answers,
    /// until nothing is left; then saves the client state if it changed. Timers fire at
    /// once (a one-shot command has no events to wait for), each at most once per call, so
    /// a server that keeps refusing a rotation cannot keep the command running.
    async fn run(
        &mut self,
        connection: &Connection,
        input: Input,
        out: &mut impl Write,
    ) -> Result<Ran, CliError> {
        let mut inputs = VecDeque::from([input]);
        let mut ran = Ran::default();
        let mut save = false;
        while let Some(input) = inputs.pop_front() {
            for effect in self.machine.handle(input, now_ms(), &mut OsRng) {
                match effect {
                    Effect::Sync(room_id) => {
                        inputs.push_back(match self.sync_answers(connection, room_id).await {
                            Ok(answers) => Input::Synced { room_id, answers },
                            Err(error) => Input::SyncFailed {
                                room_id,
                                reason: error.to_string(),
                            },
                        })
                    }
                    Effect::Append { room_id, request } => {
                        let outcome = match connection
                            .call::<AppendLog>(&RoomParams { room_id }, &request)
                            .await
                        {
                            Ok(()) => AppendOutcome::Stored,
                            Err(CliError::Server {
                                status: 409,
                                message,
                                ..
                            }) => AppendOutcome::Conflict(message),
                            Err(error) => AppendOutcome::Failed(error.to_string()),
                        };
                        inputs.push_back(Input::Appended { room_id, outcome });
                    }
                    Effect::PostMessage { room_id, request } => {
                        let outcome = match connection
                            .call::<PostMessage>(&RoomParams { room_id }, &request)
                            .await
                        {
                            Ok(stored) => {
                                ran.stored = Some(stored.id);
                                PostOutcome::Stored(stored)
                            }
                            Err(error @ CliError::Network(_)) => {
                                PostOutcome::Lost(error.to_string())
                            }
                            Err(error) => PostOutcome::Refused(error.to_string()),
                        };
                        inputs.push_back(Input::Posted { room_id, outcome });
                    }
                    Effect::RequestKey { room_id, request } => {
                        if let Err(error) = connection
                            .call::<RequestKey>(&RoomParams { room_id }, &request)
                            .await
                        {
                            writeln!(
                                out,
                                "!! could not ask the members for the room key: {error}"
                            )
                            .map_err(write_error)?;
                            inputs.push_back(Input::KeyRequestFailed {
                                room_id,
                                epoch: request.epoch,
                            });
                        }
                    }
                    Effect::HandOut { room_id, request } => {
                        if let Err(error) = connection
                            .call::<PutEnvelopes>(&RoomParams { room_id }, &request)
                            .await
                        {
                            writeln!(out, "!! could not hand over the room key: {error}")
                                .map_err(write_error)?;
                        }
                    }
                    // A one-shot command has no events to wait for: its timers fire at once
                    // (the core bounds what they can repeat). While following a room they
                    // fire when due.
                    Effect::Wait { delay_ms, timer } => match self.timers.as_mut() {
                        Some(timers) => timers.push((
                            tokio::time::Instant::now()
                                + Duration::from_millis(u64::from(delay_ms)),
                            timer,
                        )),
                        None => inputs.push_back(Input::Timer(timer)),
                    },
                    Effect::Warn(warnings) => self.warn(&warnings, out)?,
                    Effect::KeyChanged { username, .. } => {
                        let warning = format!(
                            "key changed: {username}'s keys differ from the ones you pinned"
                        );
                        if !self.key_changes.contains(&warning) {
                            writeln!(out, "!! trust warning: {warning}").map_err(write_error)?;
                            self.key_changes.push(warning);
                        }
                    }
                    Effect::SaveState => save = true,
                    Effect::Finished { ticket, result } => {
                        ran.finished.insert(ticket, result);
                    }
                    Effect::Error(error) => {
                        writeln!(out, "!! {error}").map_err(write_error)?;
                    }
                    Effect::LoadJoinRequests(_)
                    | Effect::RoomChanged(_)
                    | Effect::RoomDeleted(_)
                    | Effect::NewMessage { .. } => {}
                }
            }
        }
        if save {
            self.save_state()?;
        }
        Ok(ran)
    }

    /// Runs the user's `command` in `room_id` through the client core.
    ///
    /// # Errors
    /// [`CliError::Refused`] with the core's or the server's reason.
    async fn command(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        command: Command,
        out: &mut impl Write,
    ) -> Result<Ran, CliError> {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let ran = self
            .run(
                connection,
                Input::Command {
                    ticket,
                    room_id,
                    command,
                },
                out,
            )
            .await?;
        match ran.finished.get(&ticket) {
            Some(Ok(())) => Ok(ran),
            Some(Err(reason)) => Err(CliError::Refused(reason.clone())),
            None => Err(CliError::Refused("the command did not finish".into())),
        }
    }

    /// Syncs a room through the client core, which checks it, remembers its log and chain
    /// heads, and does what the room asks of this client (a missing key asked for, a pending
    /// or due rotation completed). Trust warnings are written to `out`.
    ///
    /// # Errors
    /// The server's refusal, or a state file that cannot be written.
    pub async fn sync(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let answers = self.sync_answers(connection, room_id).await?;
        self.run(connection, Input::Synced { room_id, answers }, out)
            .await?;
        Ok(())
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
    ) -> Result<RoomId, CliError> {
        let ids = self.room_ids(connection).await?;
        if let Ok(room_id) = RoomId::from_hex(name_or_id) {
            if ids.contains(&room_id) {
                self.sync(connection, room_id, out).await?;
                return Ok(room_id);
            }
        }
        let mut found = Vec::new();
        for room_id in ids {
            self.sync(connection, room_id, out).await?;
            if self
                .machine
                .room(&room_id)
                .is_some_and(|room| room.display_name(&self.username) == name_or_id)
            {
                found.push(room_id);
            }
        }
        match found.len() {
            1 => Ok(found[0]),
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
        out: &mut impl Write,
    ) -> Result<RoomId, CliError> {
        let metadata = RoomMetadata::named(name);
        let created = create_room(
            &self.username,
            &self.secrets,
            &metadata,
            now_ms(),
            &mut OsRng,
        )
        .map_err(|error| CliError::Usage(error.to_string()))?;
        let request = CreateRoomRequest {
            genesis: Base64(created.genesis.as_bytes().to_vec()),
            key_envelope: created.creator_envelope.clone(),
        };
        let response: CreateRoomResponse =
            connection.call::<CreateRoom>(&NoParams, &request).await?;
        self.run(
            connection,
            Input::Created {
                room_id: response.room_id,
                state: created.state,
                key: created.key,
                metadata,
            },
            out,
        )
        .await?;
        Ok(response.room_id)
    }

    /// Adds `username` to the room (admins): the client core writes it in an entry that
    /// starts a new epoch under "since joining", as a plain add with every key this user
    /// holds sealed to the newcomer under "full history". The newcomer's keys come from the
    /// server's directory and are pinned (or checked against the pin).
    ///
    /// # Errors
    /// [`CliError::Refused`] for changed keys or a refused entry; the server's refusal.
    pub async fn add_member(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        username: &str,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        validate_username(username).map_err(|error| CliError::Usage(error.to_string()))?;
        let user = UserParams {
            username: username.to_owned(),
        };
        let identity = connection.call::<UserIdentity>(&user, &()).await?;
        if identity.username() != username {
            return Err(CliError::Refused(
                "the server returned another user's identity".into(),
            ));
        }
        let command = Command::Add {
            identity,
            role: Role::Member,
        };
        self.command(connection, room_id, command, out).await?;
        Ok(())
    }

    /// Removes `username`, or with `ban` bans them: a member in an entry that starts the next
    /// epoch, someone who is not a member with a plain ban entry (no key changes).
    ///
    /// # Errors
    /// [`CliError::Refused`] when the core refuses; the server's refusal.
    pub async fn remove(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        username: &str,
        ban: bool,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let command = Command::Remove {
            username: username.to_owned(),
            ban,
        };
        self.command(connection, room_id, command, out).await?;
        Ok(())
    }

    /// Starts the next epoch with a fresh key, sealed to every member whose keys match the
    /// pins.
    ///
    /// # Errors
    /// [`CliError::Refused`] when the core refuses; the server's refusal.
    pub async fn rotate(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        self.command(connection, room_id, Command::Rotate, out)
            .await?;
        Ok(())
    }

    /// Leaves the room; a remaining member's client rotates the key.
    ///
    /// # Errors
    /// [`CliError::Refused`] for the owner (who deletes the room instead); the server's
    /// refusal.
    pub async fn leave(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        self.command(connection, room_id, Command::Append(LogAction::Leave), out)
            .await?;
        Ok(())
    }

    /// Sends `text` to the room through the client core, which pins the members (a changed
    /// key stops the send), completes a pending rotation first, and seals, signs and posts
    /// the next link of this device's chain. Returns the id the server gave the message.
    ///
    /// # Errors
    /// [`CliError::Refused`] for a changed key, a missing room key or a rotation that could
    /// not be completed; the server's refusal otherwise.
    pub async fn send(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        text: &str,
        out: &mut impl Write,
    ) -> Result<i64, CliError> {
        let ran = self
            .command(connection, room_id, Command::Send(text.into()), out)
            .await?;
        ran.stored
            .ok_or_else(|| CliError::Refused("the server did not store the message".into()))
    }

    /// Prints the room's history (verified messages, and warnings in place of the others),
    /// then, for `follow`, every new message and warning as it arrives, until `follow` has
    /// passed (or forever for `Some(Duration::MAX)`). Events go through the client core, as
    /// in the browser.
    ///
    /// # Errors
    /// The server's refusal, a broken WebSocket, or an output that cannot be written.
    pub async fn tail(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        follow: Option<Duration>,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let mut printed = BTreeSet::new();
        print_new(self.room(&room_id)?, &mut printed, out)?;
        let Some(follow) = follow else {
            return Ok(());
        };
        let mut events = connection.events().await?;
        let deadline = tokio::time::Instant::now()
            .checked_add(follow)
            .unwrap_or_else(|| {
                tokio::time::Instant::now() + Duration::from_secs(u64::from(u32::MAX))
            });
        self.timers = Some(Vec::new());
        loop {
            let next_timer = self
                .timers
                .iter()
                .flatten()
                .map(|(at, _)| *at)
                .min()
                .map_or(deadline, |at| at.min(deadline));
            let event = tokio::select! {
                event = events.next() => match event {
                    Ok(Some(event)) => event,
                    // The server closed the socket (a restart, code 1012) or the connection
                    // broke (an instance died): connect again, through a load balancer
                    // perhaps to another instance, and catch up by syncing the room.
                    Ok(None) | Err(CliError::Network(_)) => {
                        events = self.reconnect(connection, room_id, deadline, out).await?;
                        print_new(self.room(&room_id)?, &mut printed, out)?;
                        continue;
                    }
                    Err(error) => return Err(error),
                },
                () = tokio::time::sleep_until(next_timer) => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    let mut due = Vec::new();
                    if let Some(timers) = self.timers.as_mut() {
                        timers.retain(|(at, timer)| {
                            let fire = *at <= now;
                            if fire {
                                due.push(*timer);
                            }
                            !fire
                        });
                    }
                    for timer in due {
                        self.run(connection, Input::Timer(timer), out).await?;
                    }
                    continue;
                }
            };
            self.run(connection, Input::Event(event), out).await?;
            let Some(room) = self.machine.room(&room_id) else {
                writeln!(out, "(the room was deleted)").map_err(write_error)?;
                return Ok(());
            };
            print_new(room, &mut printed, out)?;
        }
    }

    /// Opens the event stream again after it ended, trying every [`RECONNECT_DELAY`] for at
    /// most [`RECONNECT_FOR`] (or until `deadline`), then syncs `room_id` to catch up on
    /// what was sent meanwhile.
    ///
    /// # Errors
    /// The last connection error once the attempts are used up; a failed sync.
    async fn reconnect(
        &mut self,
        connection: &Connection,
        room_id: RoomId,
        deadline: tokio::time::Instant,
        out: &mut impl Write,
    ) -> Result<Events, CliError> {
        let give_up = (tokio::time::Instant::now() + RECONNECT_FOR).min(deadline);
        loop {
            tokio::time::sleep(RECONNECT_DELAY).await;
            match connection.events().await {
                Ok(events) => {
                    self.sync(connection, room_id, out).await?;
                    return Ok(events);
                }
                Err(error) if tokio::time::Instant::now() >= give_up => return Err(error),
                Err(_) => {}
            }
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
            self.sync(connection, room_id, out).await?;
            let Some(room) = self.machine.room(&room_id) else {
                continue;
            };
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

/// What one [`Session::run`] did: the commands that finished, and the id of the last
/// message the server stored.
#[derive(Debug, Default)]
struct Ran {
    finished: BTreeMap<Ticket, Result<(), String>>,
    stored: Option<i64>,
}

/// Prints the room's messages not printed yet: `sender: text` (a reply starts with the
/// message it answers), or `! warning (claimed sender): reason` for a message that failed a
/// check or a refused edit or deletion; then edits, deletions and reactions as they arrive.
fn print_new(
    room: &Room,
    printed: &mut BTreeSet<i64>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    for item in client::timeline(room) {
        if !printed.insert(item.id) {
            continue;
        }
        let sender = &item.sender;
        let quote = item
            .reply_to
            .as_ref()
            .map(|reply| match &reply.quoted {
                Some(quoted) => format!("(to {}: {}) ", quoted.sender, quoted.excerpt),
                None => "(to an older message) ".to_owned(),
            })
            .unwrap_or_default();
        match &item.content {
            ItemContent::Text(text) => writeln!(out, "{sender}: {quote}{text}"),
            ItemContent::Attachment(attachment) => writeln!(
                out,
                "{sender}: [attachment {} ({} bytes, {})]",
                attachment.name, attachment.cipher.layout.size, attachment.mime
            ),
            ItemContent::Deleted => writeln!(out, "{sender}: (deleted)"),
            ItemContent::Warning(reason) => {
                writeln!(out, "! warning (claimed sender {sender}): {reason}")
            }
        }
        .map_err(write_error)?;
    }
    for relation in &room.relations {
        if !printed.insert(relation.id) {
            continue;
        }
        let sender = &relation.sender;
        match &relation.change {
            Change::Edit(text) => writeln!(out, "{sender} edited a message: {text}"),
            Change::Delete => writeln!(out, "{sender} deleted a message"),
            Change::Reaction {
                reaction,
                added: true,
            } => writeln!(out, "{sender} reacted {reaction}"),
            Change::Reaction {
                reaction,
                added: false,
            } => writeln!(out, "{sender} withdrew {reaction}"),
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
        .call::<Prelogin>(
            &NoParams,
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
        .call::<Login>(
            &NoParams,
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
            .call::<LoginTotp>(
                &NoParams,
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
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Written beside it and renamed, so a crash never leaves half a file; under a name of
    // this process's own, so two runs of one account (a `tail --follow` beside a `send`)
    // never rename each other's.
    let suffix = hex::encode(random_bytes::<8>(&mut OsRng));
    let temporary = path.with_extension(format!("{}.{suffix}.tmp", std::process::id()));
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
