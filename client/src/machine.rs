//! The client core as one state machine for a signed-in account ([`Machine`]), in the shape
//! of matrix-sdk-crypto's `OlmMachine`: the driver (the browser app, `chat-cli`, a test) hands
//! it what happened ([`Input`]: a room's sync answers, a server event, the answer to a request
//! it asked for, a timer, a user's command) and does what it returns ([`Effect`]: requests to
//! make, timers to set, rooms to redraw, warnings to raise, the client state to save). It does
//! no I/O and reads no clock: the driver passes the time and a random number generator with
//! every input.
//!
//! Each room has a queue of writes ([`Command`]s of the user, and the client's own duties: a
//! pending or due key rotation, re-sealing the room name) of which one request is in flight at
//! a time, so a tab's messages reach the server in chain order and one departure causes one
//! rotation.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use common::api::{
    AppendLogRequest, KeyRequestBody, PostMessageRequest, PutEnvelopesRequest, ServerEvent,
    StoredMessage,
};
use common::identity::{IdentitySecrets, MemberKeys, PublicIdentity};
use common::membership::{replay_bytes, LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::message::{seal_message, InnerMessage, MessageBody, MessageHash, DEVICE_ID_LEN};
use common::room_key::{seal_metadata, EpochChange, KeyEnvelope, RoomKey, RoomMetadata};
use common::trust::PinCheck;
use common::wire::{Base64, Base64Array};
use rand_core::CryptoRngCore;

use crate::chains::RoomChains;
use crate::room::{
    EnvelopeOutcome, MembershipChange, Processed, Room, RotationDuty, ShownMessage, SyncAnswers,
    MAX_LOG_RETRIES,
};
use crate::state::ClientState;
use crate::warning::TrustWarning;

/// How long a room whose current key is missing waits for the envelope stored with the
/// entry that started its epoch before asking the other members, in milliseconds.
pub const KEY_REQUEST_DELAY_MS: u32 = 1_500;
/// How long a client waits after its rotation was refused with 409 (another member's came
/// first, or the log moved) before fetching the log again, in milliseconds, so a server that
/// keeps answering 409 cannot make it spin.
pub const ROTATION_RETRY_PAUSE_MS: u32 = 2_000;
/// The least a member who is not an admin waits before completing a pending rotation, in
/// milliseconds; a random 0 to 2,040 ms more is added, so an admin online usually goes first
/// and members rarely collide.
pub const MEMBER_ROTATION_DELAY_MS: u32 = 500;
/// How many times a message waits for a pending rotation (its own attempt, or another
/// member's) before it is given up as unsendable.
pub const MAX_ROTATION_WAITS: u8 = 3;
/// How many appends of a room in a row the server may refuse with 409 before the room's
/// queued writes end refused and its duties rest until the log moves (an entry is stored or
/// arrives), so a server that answers 409 to everything cannot keep a client busy.
pub const MAX_CONFLICTS: u8 = 3;
/// How many syncs in a row may answer with a log older than the one already accepted (a
/// sync that crossed an event) before the older log is judged as a rollback.
pub const MAX_STALE_SYNCS: u8 = 2;

/// The signed-in account the machine acts for.
pub struct Account {
    /// The account name.
    pub username: String,
    /// The unwrapped identity secrets (zeroized on drop).
    pub secrets: IdentitySecrets,
    /// This installation's device id, which names its message chains.
    pub device_id: [u8; DEVICE_ID_LEN],
}

/// Chosen by the driver for each [`Input::Command`] and returned in its
/// [`Effect::Finished`], so the driver can tell the user how it went.
pub type Ticket = u64;

/// What the user asks of a room.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message (the members are pinned first: writing is acting on their keys; a
    /// pending rotation is completed first): text, an attachment whose chunks the driver has
    /// uploaded (refused when the room's policy, from the signed log, forbids its kind or
    /// size), a reply, or an edit, deletion or reaction of a loaded message (edits and
    /// deletions of the user's own messages only, as every reader checks).
    Send(MessageBody),
    /// Add a person (admins), with the identity the server's directory gave for them; it is
    /// pinned on first use and must match the pin after.
    Add {
        /// The identity from `GET /api/users/{name}`.
        identity: PublicIdentity,
        /// The role to give.
        role: Role,
    },
    /// Remove a member, or with `ban` ban them (a member in an entry that starts the next
    /// epoch, someone else with a plain ban).
    Remove {
        /// Who.
        username: String,
        /// Ban rather than remove.
        ban: bool,
    },
    /// Start the next epoch with a fresh key.
    Rotate,
    /// Clear the history, in an entry that starts the next epoch.
    ClearHistory,
    /// Rename the room or change its topic (admins), sealed under the current key.
    SetMetadata(RoomMetadata),
    /// Any other plain entry: leave, role, policy, rotation schedule, room deletion.
    Append(LogAction),
}

/// What became of a request to append a log entry ([`Effect::Append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The server stored the entry (and its envelopes).
    Stored,
    /// 409: the log moved on meanwhile, or a rotation is pending; the reason in words.
    Conflict(String),
    /// Any other failure, in words.
    Failed(String),
}

/// What became of a message post ([`Effect::PostMessage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// The server stored it.
    Stored(StoredMessage),
    /// No answer came (the network failed): the server may have stored it.
    Lost(String),
    /// The server refused it (4xx), in words.
    Refused(String),
}

/// Something the machine asked the driver to call it back for after a while
/// ([`Effect::Wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Ask the members for the room's current key if it is still missing.
    RequestKey(RoomId),
    /// Complete a pending rotation if nobody has yet.
    Rotate(RoomId),
    /// Sync the room again (after a rotation was refused).
    Resync(RoomId),
}

/// What happened, for the machine to act on.
#[derive(Debug, Clone)]
pub enum Input {
    /// The answers to an [`Effect::Sync`] (or to the driver's own sync, at log-in).
    Synced {
        /// The room.
        room_id: RoomId,
        /// What the server answered.
        answers: SyncAnswers,
    },
    /// A sync failed (the server refused or could not be reached), in words.
    SyncFailed {
        /// The room.
        room_id: RoomId,
        /// Why.
        reason: String,
    },
    /// An event pushed over the WebSocket.
    Event(ServerEvent),
    /// An older page of a room's history, which the driver fetched because the user scrolled
    /// up: the messages with an id below [`Machine::older_page_before`] (ascending), and
    /// whether still older ones exist. Messages not older than what is loaded are ignored.
    OlderPage {
        /// The room.
        room_id: RoomId,
        /// The page, in ascending id order.
        messages: Vec<StoredMessage>,
        /// Whether older messages than the first of the page exist.
        has_more: bool,
    },
    /// The answer to an [`Effect::Append`].
    Appended {
        /// The room.
        room_id: RoomId,
        /// What became of it.
        outcome: AppendOutcome,
    },
    /// The answer to an [`Effect::PostMessage`].
    Posted {
        /// The room.
        room_id: RoomId,
        /// What became of it.
        outcome: PostOutcome,
    },
    /// An [`Effect::RequestKey`] did not reach the server.
    KeyRequestFailed {
        /// The room.
        room_id: RoomId,
        /// The epoch asked for.
        epoch: u64,
    },
    /// An [`Effect::Wait`] ran out.
    Timer(Timer),
    /// The user asks for something in a room; [`Effect::Finished`] with `ticket` says how it
    /// went.
    Command {
        /// The driver's number for it.
        ticket: Ticket,
        /// The room.
        room_id: RoomId,
        /// What to do.
        command: Command,
    },
    /// This client created a room and the server stored it with `room_id`.
    Created {
        /// The id the server gave.
        room_id: RoomId,
        /// The state `common::room_key::create_room` returned.
        state: RoomState,
        /// The epoch 0 key it returned.
        key: RoomKey,
        /// The name and topic sealed in it.
        metadata: RoomMetadata,
    },
    /// The user no longer wants to see the room (after leaving it): it is forgotten, and
    /// its queued writes end refused.
    Forget(RoomId),
    /// The driver gave up waiting for a command: if it has not been sent yet it is dropped
    /// (and ends refused); if it is in flight it ends as the server answers.
    Cancel(Ticket),
    /// The user opened the room: acting in it, they pin every member not pinned yet (trust on
    /// first use); members whose keys differ from the pin are shown ([`Effect::KeyChanged`]).
    Opened(RoomId),
    /// The user accepts `username`'s new keys (after a key-change warning): the pin is
    /// replaced, unverified, and the rooms they are in with those keys get the keys they may
    /// have.
    AcceptNewKeys {
        /// Whose.
        username: String,
        /// The keys now presented.
        keys: MemberKeys,
    },
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Sync the room: its newest messages (with older pages while
    /// [`SyncAnswers::older_page_needed`] asks, from [`Machine::oldest_head`], at most
    /// [`crate::MAX_CATCH_UP_PAGES`]), then its log, then this user's envelopes, in that
    /// order; answer with [`Input::Synced`] or [`Input::SyncFailed`].
    Sync(RoomId),
    /// `POST /api/rooms/{id}/log`; answer with [`Input::Appended`].
    Append {
        /// The room.
        room_id: RoomId,
        /// The body.
        request: AppendLogRequest,
    },
    /// `POST /api/rooms/{id}/messages`; answer with [`Input::Posted`].
    PostMessage {
        /// The room.
        room_id: RoomId,
        /// The body.
        request: PostMessageRequest,
    },
    /// `POST /api/rooms/{id}/key-requests`; answer a failure with
    /// [`Input::KeyRequestFailed`].
    RequestKey {
        /// The room.
        room_id: RoomId,
        /// The body.
        request: KeyRequestBody,
    },
    /// `POST /api/rooms/{id}/envelopes`: keys handed to a member (a failure is only shown).
    HandOut {
        /// The room.
        room_id: RoomId,
        /// The body.
        request: PutEnvelopesRequest,
    },
    /// Load the room's join requests for this admin (`GET /api/rooms/{id}/join-requests`).
    LoadJoinRequests(RoomId),
    /// Call back with [`Input::Timer`] after `delay_ms` milliseconds.
    Wait {
        /// How long.
        delay_ms: u32,
        /// What to hand back.
        timer: Timer,
    },
    /// The room's messages, log, keys or name changed: redraw it.
    RoomChanged(RoomId),
    /// A signed entry deleted the room; the machine forgot it.
    RoomDeleted(RoomId),
    /// Trust warnings to raise and keep until the user acknowledges them.
    Warn(Vec<TrustWarning>),
    /// A contact's keys differ from the pin: show it until the user accepts or refuses them.
    KeyChanged {
        /// Whose.
        username: String,
        /// The keys now presented.
        presented: MemberKeys,
    },
    /// The client state changed: seal it and save it (a driver may gather several).
    SaveState,
    /// A message of someone else arrived live and passed every check: a driver may notify
    /// the user when the room is not in view.
    NewMessage {
        /// The room.
        room_id: RoomId,
        /// The message's server id.
        message_id: i64,
        /// Its sender, as verified.
        sender: String,
    },
    /// A [`Input::Command`] ended.
    Finished {
        /// The driver's number for it.
        ticket: Ticket,
        /// `Err` with the reason in words.
        result: Result<(), String>,
    },
    /// Something the client did on its own failed (a rotation, a re-seal), in words.
    Error(String),
}

/// A write waiting in a room's queue.
#[derive(Debug, Clone)]
struct Queued {
    /// `None` for the client's own duties.
    ticket: Option<Ticket>,
    command: Command,
    /// How many rotations a message already waited for.
    rotation_waits: u8,
}

/// The request of a room in flight.
#[derive(Debug, Clone)]
enum InFlight {
    Entry {
        ticket: Option<Ticket>,
        /// The log length the entry was written on, and the state after it.
        from_length: u64,
        next: RoomState,
        /// The key of the epoch the entry starts, if it starts one.
        key: Option<(u64, RoomKey)>,
        /// The name and topic the entry seals, if it changes them.
        metadata: Option<RoomMetadata>,
        /// Whether the entry clears the history.
        clears_history: bool,
    },
    Message {
        ticket: Option<Ticket>,
        inner: InnerMessage,
    },
}

/// A room's writes: the queue and the one in flight.
#[derive(Debug, Default)]
struct Writes {
    queue: VecDeque<Queued>,
    in_flight: Option<InFlight>,
    /// Set after a 409 until the room was synced again: nothing is sent meanwhile.
    awaiting_sync: bool,
    /// Appends refused with 409 in a row.
    conflicts: u8,
    /// Set after [`MAX_CONFLICTS`]: the client's own duties rest until the log moves.
    duties_resting: bool,
    /// Syncs in a row that answered an older log than the one accepted.
    stale_syncs: u8,
}

/// The client core of one signed-in account: its durable [`ClientState`], the rooms it knows,
/// and the writes under way. See the module documentation.
pub struct Machine {
    account: Account,
    state: ClientState,
    rooms: BTreeMap<RoomId, Room>,
    writes: BTreeMap<RoomId, Writes>,
    timers: BTreeSet<Timer>,
}

impl Machine {
    /// A machine for `account` starting from the client state the driver loaded and
    /// reconciled (`crate::state::reconcile`).
    pub fn new(account: Account, state: ClientState) -> Self {
        Self {
            account,
            state,
            rooms: BTreeMap::new(),
            writes: BTreeMap::new(),
            timers: BTreeSet::new(),
        }
    }

    /// The account name.
    pub fn username(&self) -> &str {
        &self.account.username
    }

    /// The client state, to seal and save.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// The client state, for changes the driver makes itself (a verification mark, a merge
    /// of another client's save); the driver saves it afterwards.
    pub fn state_mut(&mut self) -> &mut ClientState {
        &mut self.state
    }

    /// The rooms known, by id.
    pub fn rooms(&self) -> &BTreeMap<RoomId, Room> {
        &self.rooms
    }

    /// One room.
    pub fn room(&self, room_id: &RoomId) -> Option<&Room> {
        self.rooms.get(room_id)
    }

    /// One room, for what the driver keeps in it (the join requests it loaded).
    pub fn room_mut(&mut self, room_id: &RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(room_id)
    }

    /// The oldest chain head the client state remembers for `room_id`: what a sync's history
    /// must reach ([`SyncAnswers::older_page_needed`]).
    pub fn oldest_head(&self, room_id: &RoomId) -> Option<i64> {
        RoomChains::new(self.state.chains.get(room_id).cloned().unwrap_or_default())
            .oldest_head_id()
    }

    /// The id below which the next older page of `room_id`'s history lies, for scrolling
    /// back ([`Input::OlderPage`]); `None` once the whole history is loaded.
    pub fn older_page_before(&self, room_id: &RoomId) -> Option<i64> {
        self.rooms.get(room_id)?.oldest_loaded_id
    }

    /// Whether a write of the room is queued or in flight.
    pub fn is_writing(&self, room_id: &RoomId) -> bool {
        self.writes
            .get(room_id)
            .is_some_and(|writes| writes.in_flight.is_some() || !writes.queue.is_empty())
    }

    /// Acts on `input` at `now_ms` (the driver's clock, milliseconds since the Unix epoch)
    /// and returns what the driver must do, in order.
    pub fn handle(
        &mut self,
        input: Input,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<Effect> {
        let mut run = Run {
            machine: self,
            effects: Vec::new(),
            now_ms,
        };
        run.input(input, rng);
        run.effects
    }
}

/// One call of [`Machine::handle`]: the machine, the time, and the effects gathered.
struct Run<'a> {
    machine: &'a mut Machine,
    effects: Vec<Effect>,
    now_ms: u64,
}

impl Run<'_> {
    fn me(&self) -> String {
        self.machine.account.username.clone()
    }

    fn input(&mut self, input: Input, rng: &mut impl CryptoRngCore) {
        match input {
            Input::Synced { room_id, answers } => self.synced(room_id, answers, rng),
            Input::SyncFailed { room_id, reason } => {
                if let Some(writes) = self.machine.writes.get_mut(&room_id) {
                    writes.awaiting_sync = false;
                }
                self.effects.push(Effect::Error(reason));
                self.drive(room_id, rng);
            }
            Input::Event(event) => self.event(event, rng),
            Input::Appended { room_id, outcome } => self.appended(room_id, outcome, rng),
            Input::Posted { room_id, outcome } => self.posted(room_id, outcome, rng),
            Input::KeyRequestFailed { room_id, epoch } => {
                if let Some(room) = self.machine.rooms.get_mut(&room_id) {
                    room.key_request_failed(epoch);
                }
            }
            Input::Timer(timer) => self.timer(timer, rng),
            Input::Command {
                ticket,
                room_id,
                command,
            } => {
                if !self.machine.rooms.contains_key(&room_id) {
                    self.finish(Some(ticket), Err("unknown room".into()));
                    return;
                }
                self.enqueue(room_id, Some(ticket), command, false);
                self.drive(room_id, rng);
            }
            Input::Created {
                room_id,
                state,
                key,
                metadata,
            } => {
                // The id is the genesis's; a server that answers another would have this
                // client replace a room it knows.
                if room_id != state.room_id() {
                    self.effects.push(Effect::Error(
                        "the server answered another room id than the new room's".into(),
                    ));
                    return;
                }
                let me = self.me();
                let mut room = Room::new(room_id);
                room.metadata = Some(metadata);
                room.accept_state(state, &me);
                room.keys.insert(0, key);
                self.machine.rooms.insert(room_id, room);
                self.remember_log(room_id);
                self.effects.push(Effect::RoomChanged(room_id));
            }
            Input::Forget(room_id) => self.forget_room(room_id),
            Input::OlderPage {
                room_id,
                messages,
                has_more,
            } => self.older_page(room_id, messages, has_more),
            Input::Cancel(ticket) => {
                let mut dropped = false;
                for writes in self.machine.writes.values_mut() {
                    let before = writes.queue.len();
                    writes.queue.retain(|queued| queued.ticket != Some(ticket));
                    dropped |= writes.queue.len() != before;
                }
                if dropped {
                    self.finish(Some(ticket), Err("cancelled: it was not sent".into()));
                }
            }
            Input::Opened(room_id) => {
                // A changed key is shown by the effect; nothing else to refuse here.
                let _ = self.pin_members(room_id);
            }
            Input::AcceptNewKeys { username, keys } => {
                self.machine.state.pins.accept_new_keys(&username, &keys);
                self.effects.push(Effect::SaveState);
                let rooms: Vec<RoomId> = self
                    .machine
                    .rooms
                    .values()
                    .filter(|room| room.member_keys(&username) == Some(keys))
                    .map(|room| room.room_id)
                    .collect();
                for room_id in rooms {
                    self.hand_keys_to(room_id, &username, rng);
                }
            }
        }
    }

    fn finish(&mut self, ticket: Option<Ticket>, result: Result<(), String>) {
        match (ticket, result) {
            (Some(ticket), result) => self.effects.push(Effect::Finished { ticket, result }),
            (None, Err(reason)) => self.effects.push(Effect::Error(reason)),
            (None, Ok(())) => {}
        }
    }

    fn warn(&mut self, warnings: Vec<TrustWarning>) {
        if !warnings.is_empty() {
            self.effects.push(Effect::Warn(warnings));
        }
    }

    fn wait(&mut self, delay_ms: u32, timer: Timer) {
        if self.machine.timers.insert(timer) {
            self.effects.push(Effect::Wait { delay_ms, timer });
        }
    }

    /// Records the room's accepted log in the client state, asking for a save if it grew.
    fn remember_log(&mut self, room_id: RoomId) {
        let Some(Ok(state)) = self.machine.rooms.get(&room_id).map(|room| &room.state) else {
            return;
        };
        if self.machine.state.remember_log(room_id, state) {
            self.effects.push(Effect::SaveState);
        }
    }

    /// Records the room's chain heads in the client state, asking for a save if they moved.
    fn remember_chains(&mut self, room_id: RoomId) {
        let Some(heads) = self
            .machine
            .rooms
            .get(&room_id)
            .map(|room| room.chains.heads())
        else {
            return;
        };
        if self.machine.state.remember_chains(room_id, heads) {
            self.effects.push(Effect::SaveState);
        }
    }

    /// Compares `keys` with the pin of `username` without pinning anything (keys are pinned
    /// only when the user acts); a difference is shown. Returns whether they may be used.
    fn pin_allows(&mut self, username: &str, keys: &MemberKeys) -> bool {
        if username == self.machine.account.username {
            return true;
        }
        match self.machine.state.pins.check(username, keys) {
            PinCheck::Changed { .. } => {
                self.effects.push(Effect::KeyChanged {
                    username: username.to_owned(),
                    presented: *keys,
                });
                false
            }
            PinCheck::New | PinCheck::Matches { .. } => true,
        }
    }

    /// Pins every member of the room not pinned yet (the user acts in it). `Err` names a
    /// member whose keys differ from the pin: nothing is written until the user accepts or
    /// refuses them.
    fn pin_members(&mut self, room_id: RoomId) -> Result<(), String> {
        let me = self.me();
        let members: Vec<(String, MemberKeys)> = match self.machine.rooms.get(&room_id) {
            Some(Room {
                state: Ok(state), ..
            }) => state
                .members()
                .iter()
                .filter(|(name, _)| **name != me)
                .map(|(name, member)| (name.clone(), member.keys))
                .collect(),
            _ => return Err("the room is not available".into()),
        };
        let mut pinned = false;
        let mut changed = None;
        for (username, keys) in members {
            match self.machine.state.pins.pin_first_use(&username, &keys) {
                Ok(newly) => pinned |= newly,
                Err(error) => {
                    self.effects.push(Effect::KeyChanged {
                        username,
                        presented: keys,
                    });
                    changed.get_or_insert(error.to_string());
                }
            }
        }
        if pinned {
            self.effects.push(Effect::SaveState);
        }
        changed.map_or(Ok(()), Err)
    }

    fn synced(&mut self, room_id: RoomId, answers: SyncAnswers, rng: &mut impl CryptoRngCore) {
        if self.stale(room_id, &answers) {
            // The sync crossed an event: the log it answered is a prefix of the one already
            // accepted. Asked again rather than judged a rollback (a few times at most).
            self.effects.push(Effect::Sync(room_id));
            return;
        }
        if let Some(writes) = self.machine.writes.get_mut(&room_id) {
            writes.stale_syncs = 0;
        }
        let me = self.me();
        let machine = &mut *self.machine;
        let previous = machine.rooms.get(&room_id);
        let synced = Room::from_sync(
            room_id,
            &me,
            &machine.account.secrets,
            answers,
            &mut machine.state,
            previous,
        );
        if synced.client_state_changed {
            self.effects.push(Effect::SaveState);
        }
        let members: Vec<(String, MemberKeys)> = synced
            .room
            .state
            .as_ref()
            .map(|state| {
                state
                    .members()
                    .iter()
                    .map(|(name, member)| (name.clone(), member.keys))
                    .collect()
            })
            .unwrap_or_default();
        for (username, keys) in members {
            self.pin_allows(&username, &keys);
        }
        let retries = synced.room.log_retries;
        self.machine.rooms.insert(room_id, synced.room);
        if let Some(writes) = self.machine.writes.get_mut(&room_id) {
            writes.awaiting_sync = false;
        }
        self.remember_log(room_id);
        self.after_messages(room_id, synced.processed, retries);
        self.effects.push(Effect::RoomChanged(room_id));
        self.after_room_change(room_id, rng);
        self.drive(room_id, rng);
    }

    /// Whether a sync's log is a strict prefix of the log this client already accepted for
    /// the room, and fewer than [`MAX_STALE_SYNCS`] such answers came in a row (counted).
    fn stale(&mut self, room_id: RoomId, answers: &SyncAnswers) -> bool {
        let Some(Ok(current)) = self.machine.rooms.get(&room_id).map(|room| &room.state) else {
            return false;
        };
        let Ok(answered) = replay_bytes(&answers.log) else {
            return false;
        };
        let prefix = answered.length() < current.length()
            && current
                .check_extends(answered.length(), &answered.head_hash())
                .is_ok();
        let writes = self.machine.writes.entry(room_id).or_default();
        if prefix && writes.stale_syncs < MAX_STALE_SYNCS {
            writes.stale_syncs += 1;
            return true;
        }
        false
    }

    /// Acts on what opening messages found: raises the warnings, remembers the chain heads,
    /// rotates a due epoch (admins), and syncs when a message or envelope named a longer log
    /// (at most [`MAX_LOG_RETRIES`] times in a row; after that the core called it a fork).
    fn after_messages(&mut self, room_id: RoomId, processed: Processed, retries: u8) {
        self.warn(processed.warnings);
        self.remember_chains(room_id);
        let me = self.me();
        let due = self
            .machine
            .rooms
            .get(&room_id)
            .and_then(|room| room.rotation_duty(&me, self.now_ms))
            == Some(RotationDuty::Due);
        if due {
            self.enqueue(room_id, None, Command::Rotate, true);
        }
        if processed.log_ahead && retries <= MAX_LOG_RETRIES {
            self.effects.push(Effect::Sync(room_id));
        }
    }

    /// What the current state of a room asks of this client: the current key when it is
    /// missing (asked for a moment later: an entry that starts an epoch arrives just before
    /// the envelope stored with it), a rotation when one is pending (any member; those who
    /// are not admins wait a moment) or due (admins), and, for admins, the join requests and
    /// the room name re-sealed under the current key when it sits under an older one.
    fn after_room_change(&mut self, room_id: RoomId, rng: &mut impl CryptoRngCore) {
        let me = self.me();
        let Some(room) = self.machine.rooms.get(&room_id) else {
            return;
        };
        let Ok(state) = room.state.as_ref() else {
            return;
        };
        let Some(member) = state.member(&me) else {
            return;
        };
        let admin = member.role >= Role::Admin;
        let missing_key = room.current_key().is_none();
        let duty = room.rotation_duty(&me, self.now_ms);
        let (metadata_epoch, _) = state.encrypted_metadata();
        let reseal = (admin
            && metadata_epoch < state.current_epoch()
            && !state.rotation_pending()
            && room.current_key().is_some())
        .then(|| room.metadata.clone())
        .flatten();
        if missing_key {
            self.wait(KEY_REQUEST_DELAY_MS, Timer::RequestKey(room_id));
        }
        match duty {
            Some(RotationDuty::Pending { admin: false }) => {
                let jitter = (rng.next_u32() % 256) * 8;
                self.wait(MEMBER_ROTATION_DELAY_MS + jitter, Timer::Rotate(room_id));
            }
            Some(_) => self.enqueue(room_id, None, Command::Rotate, true),
            None => {}
        }
        if let Some(metadata) = reseal {
            self.enqueue(room_id, None, Command::SetMetadata(metadata), true);
        }
        if admin {
            self.effects.push(Effect::LoadJoinRequests(room_id));
        }
    }

    fn timer(&mut self, timer: Timer, rng: &mut impl CryptoRngCore) {
        self.machine.timers.remove(&timer);
        match timer {
            Timer::RequestKey(room_id) => {
                let me = self.me();
                let epoch = self
                    .machine
                    .rooms
                    .get_mut(&room_id)
                    .and_then(|room| room.key_to_request(&me));
                if let Some(epoch) = epoch {
                    self.effects.push(Effect::RequestKey {
                        room_id,
                        request: KeyRequestBody { epoch },
                    });
                }
            }
            Timer::Rotate(room_id) => {
                let me = self.me();
                let due = self
                    .machine
                    .rooms
                    .get(&room_id)
                    .and_then(|room| room.rotation_duty(&me, self.now_ms))
                    .is_some();
                if due {
                    self.enqueue(room_id, None, Command::Rotate, true);
                    self.drive(room_id, rng);
                }
            }
            Timer::Resync(room_id) => {
                if self.machine.rooms.contains_key(&room_id) {
                    self.effects.push(Effect::Sync(room_id));
                } else if let Some(writes) = self.machine.writes.get_mut(&room_id) {
                    writes.awaiting_sync = false;
                }
            }
        }
    }

    fn event(&mut self, event: ServerEvent, rng: &mut impl CryptoRngCore) {
        let me = self.me();
        match event {
            ServerEvent::Message { message } => {
                let room_id = message.room_id;
                if !self.machine.rooms.contains_key(&room_id) {
                    self.effects.push(Effect::Sync(room_id));
                    return;
                }
                self.deliver(message);
                // Opening it may have made a scheduled rotation due.
                self.drive(room_id, rng);
            }
            ServerEvent::LogEntry {
                room_id,
                seq,
                entry,
            } => self.log_entry(room_id, seq, &entry.0, rng),
            ServerEvent::KeyEnvelope { envelope } => {
                let room_id = envelope.room_id;
                let machine = &mut *self.machine;
                let Some(room) = machine.rooms.get_mut(&room_id) else {
                    self.effects.push(Effect::Sync(room_id));
                    return;
                };
                let outcome = room.accept_envelope(&me, &machine.account.secrets, &envelope);
                let mut processed = room.process_pending(&me, false);
                let retries = room.log_retries;
                match outcome {
                    EnvelopeOutcome::LogAhead => processed.log_ahead = true,
                    EnvelopeOutcome::Refused(warning, _) => processed.warnings.extend(warning),
                    EnvelopeOutcome::Accepted => {}
                }
                self.after_messages(room_id, processed, retries);
                self.effects.push(Effect::RoomChanged(room_id));
                self.after_room_change(room_id, rng);
                self.drive(room_id, rng);
            }
            ServerEvent::KeyRequested {
                room_id, username, ..
            } => self.hand_keys_to(room_id, &username, rng),
            ServerEvent::JoinRequested { room_id, .. } => {
                if self.machine.rooms.contains_key(&room_id) {
                    self.effects.push(Effect::LoadJoinRequests(room_id));
                }
            }
            // Only a signed delete entry removes a room; the server's word alone is shown as
            // such, and the room stays, read-only.
            ServerEvent::RoomDeleted { room_id } => {
                if let Some(room) = self.machine.rooms.get_mut(&room_id) {
                    let warning = TrustWarning::ServerSaysRoomDeleted { room_id };
                    room.state = Err(warning.to_string());
                    self.warn(vec![warning]);
                    self.effects.push(Effect::RoomChanged(room_id));
                }
            }
            ServerEvent::Error { error } => self.effects.push(Effect::Error(error)),
            // The driver fetches and merges the client state itself.
            ServerEvent::ClientStateChanged { .. } => {}
        }
    }

    /// Opens a message that arrived live (an event, or the answer to this client's own post)
    /// unless it is already shown, and acts on what opening it found.
    /// Opens an older page of history below what is loaded, and checks it against the
    /// chains as any other message (older messages complete the chains seen, so they raise no
    /// warning unless the server withheld, replayed or reordered some).
    fn older_page(&mut self, room_id: RoomId, messages: Vec<StoredMessage>, has_more: bool) {
        let me = self.me();
        let Some(room) = self.machine.rooms.get_mut(&room_id) else {
            return;
        };
        let Some(before) = room.oldest_loaded_id else {
            return;
        };
        let mut older: Vec<StoredMessage> = messages
            .into_iter()
            .filter(|message| message.id < before && message.room_id == room_id)
            .collect();
        older.sort_by_key(|message| message.id);
        // An empty page ends the scrollback even if the server says there is more.
        room.oldest_loaded_id = older.first().map(|message| message.id).filter(|_| has_more);
        room.pending.extend(older);
        let processed = room.process_pending(&me, false);
        let retries = room.log_retries;
        self.after_messages(room_id, processed, retries);
        self.effects.push(Effect::RoomChanged(room_id));
    }

    fn deliver(&mut self, message: StoredMessage) {
        let me = self.me();
        let room_id = message.room_id;
        let Some(room) = self.machine.rooms.get_mut(&room_id) else {
            return;
        };
        if room.messages.iter().any(|shown| shown.id() == message.id) {
            return;
        }
        let message_id = message.id;
        room.remember_received(&message);
        room.pending.push(message);
        let processed = room.process_pending(&me, false);
        let retries = room.log_retries;
        let arrived = room
            .messages
            .iter()
            .rev()
            .find(|shown| shown.id() == message_id);
        if let Some(shown @ (ShownMessage::Verified { .. } | ShownMessage::Attachment { .. })) =
            arrived
        {
            if shown.sender() != me {
                self.effects.push(Effect::NewMessage {
                    room_id,
                    message_id,
                    sender: shown.sender().to_owned(),
                });
            }
        }
        self.after_messages(room_id, processed, retries);
        self.effects.push(Effect::RoomChanged(room_id));
    }

    /// Applies a log entry pushed at position `seq`: an unknown room or a gap is synced whole,
    /// an entry already applied is ignored, one that does not apply marks the log tampered.
    fn log_entry(&mut self, room_id: RoomId, seq: u64, bytes: &[u8], rng: &mut impl CryptoRngCore) {
        let me = self.me();
        let Some(room) = self.machine.rooms.get_mut(&room_id) else {
            self.effects.push(Effect::Sync(room_id));
            return;
        };
        let Ok(state) = room.state.as_ref() else {
            return;
        };
        if seq < state.length() {
            return;
        }
        if seq > state.length() {
            self.effects.push(Effect::Sync(room_id));
            return;
        }
        let mut next = state.clone();
        let applied = SignedLogEntry::from_bytes(bytes)
            .map_err(|error| error.to_string())
            .and_then(|signed| {
                next.apply(&signed)
                    .map(|()| signed)
                    .map_err(|error| error.to_string())
            });
        let signed = match applied {
            Ok(signed) => signed,
            Err(error) => {
                room.state = Err(format!(
                    "this room's history was tampered with (entry {seq}: {error})"
                ));
                self.effects.push(Effect::RoomChanged(room_id));
                return;
            }
        };
        room.accept_state(next, &me);
        if let Some(writes) = self.machine.writes.get_mut(&room_id) {
            writes.conflicts = 0;
            writes.duties_resting = false;
        }
        let Some(room) = self.machine.rooms.get_mut(&room_id) else {
            return;
        };
        let action = &signed.entry().action;
        if action.new_epoch().is_some() || matches!(action, LogAction::SetMetadata { .. }) {
            room.refresh_metadata();
        }
        if action.clears_history() {
            room.messages.clear();
            room.pending.clear();
            room.chains = RoomChains::default();
            if self.machine.state.forget_chains(&room_id) {
                self.effects.push(Effect::SaveState);
            }
        }
        if matches!(action, LogAction::DeleteRoom) {
            self.forget_room(room_id);
            return;
        }
        self.remember_log(room_id);
        self.effects.push(Effect::RoomChanged(room_id));
        if let Some((username, _)) = action.added_member() {
            if username != me {
                // Nothing is sealed for an epoch this client does not hold yet (an add that
                // started a new epoch: its author sealed that key to everyone).
                let username = username.to_owned();
                self.hand_keys_to(room_id, &username, rng);
            }
        }
        self.after_room_change(room_id, rng);
        self.drive(room_id, rng);
    }

    /// Forgets a room a signed entry deleted; its writes end: the deletion itself as done,
    /// the others as refused.
    fn forget_room(&mut self, room_id: RoomId) {
        self.machine.rooms.remove(&room_id);
        if let Some(writes) = self.machine.writes.remove(&room_id) {
            let in_flight = writes.in_flight.map(|in_flight| match in_flight {
                InFlight::Entry { ticket, next, .. } => (ticket, next.deleted()),
                InFlight::Message { ticket, .. } => (ticket, false),
            });
            let queued = writes
                .queue
                .into_iter()
                .map(|queued| (queued.ticket, false));
            for (ticket, deleted_it) in in_flight.into_iter().chain(queued) {
                let result = if deleted_it {
                    Ok(())
                } else {
                    Err("the room was deleted".to_owned())
                };
                if let Some(ticket) = ticket {
                    self.effects.push(Effect::Finished { ticket, result });
                }
            }
        }
        self.effects.push(Effect::RoomDeleted(room_id));
    }

    /// Seals every key `username` may have (the current epoch's, and under "full history"
    /// every earlier one this client holds), if their keys match the pins. Any member holding
    /// the key does this when a member is added or asks; duplicates are harmless.
    fn hand_keys_to(&mut self, room_id: RoomId, username: &str, rng: &mut impl CryptoRngCore) {
        let Some(keys) = self
            .machine
            .rooms
            .get(&room_id)
            .and_then(|room| room.member_keys(username))
        else {
            return;
        };
        if !self.pin_allows(username, &keys) {
            return;
        }
        let machine = &*self.machine;
        let Some(room) = machine.rooms.get(&room_id) else {
            return;
        };
        match room.envelopes_for(
            &machine.account.username,
            &machine.account.secrets,
            username,
            rng,
        ) {
            Ok(envelopes) if envelopes.is_empty() => {}
            Ok(envelopes) => self.effects.push(Effect::HandOut {
                room_id,
                request: PutEnvelopesRequest { envelopes },
            }),
            Err(error) => self.effects.push(Effect::Error(format!(
                "could not hand {username} the room key: {error}"
            ))),
        }
    }

    /// Queues a write. The client's own duties (`duty`) go first and are not queued twice.
    fn enqueue(&mut self, room_id: RoomId, ticket: Option<Ticket>, command: Command, duty: bool) {
        let writes = self.machine.writes.entry(room_id).or_default();
        if duty && writes.duties_resting {
            return;
        }
        let queued = Queued {
            ticket,
            command,
            rotation_waits: 0,
        };
        if duty {
            let kind = std::mem::discriminant(&queued.command);
            let already = writes.queue.iter().any(|other| {
                other.ticket.is_none() && std::mem::discriminant(&other.command) == kind
            }) || matches!(
                (&writes.in_flight, &queued.command),
                (
                    Some(InFlight::Entry {
                        ticket: None,
                        key: Some(_),
                        ..
                    }),
                    Command::Rotate
                )
            );
            if !already {
                writes.queue.push_front(queued);
            }
        } else {
            writes.queue.push_back(queued);
        }
    }

    /// Starts the room's next write unless one is in flight or the room waits for a sync.
    fn drive(&mut self, room_id: RoomId, rng: &mut impl CryptoRngCore) {
        loop {
            let Some(writes) = self.machine.writes.get_mut(&room_id) else {
                return;
            };
            if writes.in_flight.is_some() || writes.awaiting_sync {
                return;
            }
            let Some(queued) = writes.queue.pop_front() else {
                return;
            };
            match self.start(room_id, queued, rng) {
                Ok(Some(in_flight)) => {
                    if let Some(writes) = self.machine.writes.get_mut(&room_id) {
                        writes.in_flight = Some(in_flight);
                    }
                    return;
                }
                Ok(None) => {}
                Err((ticket, reason)) => self.finish(ticket, Err(reason)),
            }
        }
    }

    /// Builds the request of one queued write. `Ok(None)` when there is nothing to send (a
    /// duty no longer due, or a message put back behind the rotation it waits for).
    fn start(
        &mut self,
        room_id: RoomId,
        mut queued: Queued,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Option<InFlight>, (Option<Ticket>, String)> {
        let me = self.me();
        let ticket = queued.ticket;
        let fail = |reason: String| (ticket, reason);
        let room = self
            .machine
            .rooms
            .get(&room_id)
            .ok_or_else(|| fail("unknown room".into()))?;
        let state = room
            .state
            .as_ref()
            .map_err(|error| fail(format!("the room is not available: {error}")))?
            .clone();
        if state.member(&me).is_none() {
            return Err(fail("you are no longer a member of this room".into()));
        }
        let command = queued.command.clone();
        match command {
            Command::Send(_) => {
                if state.rotation_pending() {
                    // After a leave the current key is one the former member holds: the
                    // rotation comes first, by whoever is quickest.
                    if queued.rotation_waits >= MAX_ROTATION_WAITS {
                        return Err(fail(
                            "key rotation pending: a member left and the key has not been rotated yet"
                                .into(),
                        ));
                    }
                    queued.rotation_waits += 1;
                    let writes = self.machine.writes.entry(room_id).or_default();
                    writes.queue.push_front(queued);
                    writes.queue.push_front(Queued {
                        ticket: None,
                        command: Command::Rotate,
                        rotation_waits: 0,
                    });
                    return Ok(None);
                }
                let Command::Send(body) = queued.command else {
                    return Ok(None);
                };
                if let Some(target) = body.target() {
                    check_target(room, &me, &body, target).map_err(fail)?;
                }
                let attachments = match &body {
                    MessageBody::Attachment(attachment) => {
                        let policy = state.policy();
                        if policy.allowed_media & attachment.kind.policy_bit() == 0 {
                            return Err(fail(format!(
                                "this room does not allow {:?} attachments",
                                attachment.kind
                            )));
                        }
                        if attachment.cipher.layout.size > policy.max_attachment_bytes {
                            return Err(fail(format!(
                                "this room allows attachments of at most {} bytes",
                                policy.max_attachment_bytes
                            )));
                        }
                        vec![Base64Array(attachment.cipher.id)]
                    }
                    _ => Vec::new(),
                };
                let (kind, body) = (body.kind(), body.to_bytes());
                self.pin_members(room_id).map_err(fail)?;
                let room = &self.machine.rooms[&room_id];
                let (inner, key) = room
                    .prepare_message(&me, self.machine.account.device_id, kind, body, self.now_ms)
                    .ok_or_else(|| fail("you do not hold this room's current key yet".into()))?;
                let sealed = seal_message(&inner, &key, &self.machine.account.secrets, rng)
                    .map_err(|error| fail(error.to_string()))?;
                self.effects.push(Effect::PostMessage {
                    room_id,
                    request: PostMessageRequest {
                        epoch: inner.epoch,
                        nonce: Base64Array(sealed.nonce),
                        ciphertext: Base64(sealed.ciphertext),
                        attachments,
                    },
                });
                Ok(Some(InFlight::Message { ticket, inner }))
            }
            Command::Rotate => {
                // A duty found done meanwhile (another member rotated) is dropped.
                if ticket.is_none() && room.rotation_duty(&me, self.now_ms).is_none() {
                    return Ok(None);
                }
                self.start_epoch(room_id, ticket, EpochChange::Rotate, rng)
                    .map(Some)
            }
            Command::ClearHistory => self
                .start_epoch(room_id, ticket, EpochChange::ClearHistory, rng)
                .map(Some),
            Command::Remove { username, ban } => match room.removal(&username, ban) {
                MembershipChange::StartsEpoch(change) => {
                    self.start_epoch(room_id, ticket, change, rng).map(Some)
                }
                MembershipChange::Plain(action) => self
                    .plain(room_id, ticket, &state, action, None, rng)
                    .map(Some),
            },
            Command::Add { identity, role } => {
                let username = identity.username().to_owned();
                let keys = *identity.keys();
                self.pin_members(room_id).map_err(fail)?;
                if let Err(error) = self.machine.state.pins.pin_first_use(&username, &keys) {
                    self.effects.push(Effect::KeyChanged {
                        username,
                        presented: keys,
                    });
                    return Err(fail(error.to_string()));
                }
                self.effects.push(Effect::SaveState);
                let room = &self.machine.rooms[&room_id];
                match room.addition(&username, keys, role) {
                    MembershipChange::StartsEpoch(change) => {
                        self.start_epoch(room_id, ticket, change, rng).map(Some)
                    }
                    MembershipChange::Plain(action) => self
                        .plain(room_id, ticket, &state, action, None, rng)
                        .map(Some),
                }
            }
            Command::SetMetadata(metadata) => {
                // A re-seal found done meanwhile (another admin's) is dropped.
                let (metadata_epoch, _) = state.encrypted_metadata();
                if ticket.is_none() && metadata_epoch >= state.current_epoch() {
                    return Ok(None);
                }
                metadata
                    .validate()
                    .map_err(|error| fail(error.to_string()))?;
                let (epoch, key) = room
                    .current_key()
                    .ok_or_else(|| fail("you do not hold this room's key yet".into()))?;
                let encrypted_metadata = seal_metadata(key, &room_id, epoch, &metadata, rng);
                self.plain(
                    room_id,
                    ticket,
                    &state,
                    LogAction::SetMetadata { encrypted_metadata },
                    Some(metadata),
                    rng,
                )
                .map(Some)
            }
            Command::Append(action) => {
                // Keys are sealed to whoever an add names: only to keys matching the pins.
                if let Some((username, keys)) = action.added_member() {
                    if let Err(error) = self.machine.state.pins.pin_first_use(username, keys) {
                        self.effects.push(Effect::KeyChanged {
                            username: username.to_owned(),
                            presented: *keys,
                        });
                        return Err(fail(error.to_string()));
                    }
                    self.effects.push(Effect::SaveState);
                }
                self.plain(room_id, ticket, &state, action, None, rng)
                    .map(Some)
            }
        }
    }

    /// Signs `action` on top of `state`, checks that the log accepts it, and asks for it to
    /// be posted; a plain add goes with the keys the newcomer may have, sealed by this member.
    fn plain(
        &mut self,
        room_id: RoomId,
        ticket: Option<Ticket>,
        state: &RoomState,
        action: LogAction,
        metadata: Option<RoomMetadata>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<InFlight, (Option<Ticket>, String)> {
        let me = self.me();
        let added = action
            .added_member()
            .map(|(username, _)| username.to_owned());
        let entry = state
            .next_entry(&me, self.now_ms, action)
            .sign(&self.machine.account.secrets);
        let mut next = state.clone();
        next.apply(&entry)
            .map_err(|error| (ticket, error.to_string()))?;
        let envelopes = match added {
            Some(username) => {
                let mut after = self.machine.rooms[&room_id].clone();
                after.accept_state(next.clone(), &me);
                after
                    .envelopes_for(&me, &self.machine.account.secrets, &username, rng)
                    .map_err(|error| (ticket, error.to_string()))?
            }
            None => Vec::new(),
        };
        self.append_effect(room_id, &entry, envelopes);
        Ok(InFlight::Entry {
            ticket,
            from_length: state.length(),
            next,
            key: None,
            metadata,
            clears_history: false,
        })
    }

    /// Makes `change` in an entry that starts the next epoch, posted together with the new
    /// key sealed to every member whose keys match the pins, so the key is never held by
    /// this client alone.
    fn start_epoch(
        &mut self,
        room_id: RoomId,
        ticket: Option<Ticket>,
        change: EpochChange,
        rng: &mut impl CryptoRngCore,
    ) -> Result<InFlight, (Option<Ticket>, String)> {
        let machine = &*self.machine;
        let room = &machine.rooms[&room_id];
        let from_length = room.state.as_ref().map_or(0, RoomState::length);
        let pins = &machine.state.pins;
        let clears_history = change == EpochChange::ClearHistory;
        let mut refused = Vec::new();
        let result = room.start_epoch(
            &machine.account.username,
            &machine.account.secrets,
            change,
            |username, keys| {
                let allowed = !matches!(pins.check(username, keys), PinCheck::Changed { .. });
                if !allowed {
                    refused.push((username.to_owned(), *keys));
                }
                allowed
            },
            self.now_ms,
            rng,
        );
        for (username, presented) in refused {
            self.effects.push(Effect::KeyChanged {
                username,
                presented,
            });
        }
        let (rotation, envelopes) = result.map_err(|error| (ticket, error.to_string()))?;
        self.append_effect(room_id, &rotation.entry, envelopes);
        let epoch = rotation.state.current_epoch();
        Ok(InFlight::Entry {
            ticket,
            from_length,
            next: rotation.state,
            key: Some((epoch, rotation.key)),
            metadata: None,
            clears_history,
        })
    }

    fn append_effect(
        &mut self,
        room_id: RoomId,
        entry: &SignedLogEntry,
        envelopes: Vec<KeyEnvelope>,
    ) {
        self.effects.push(Effect::Append {
            room_id,
            request: AppendLogRequest {
                entry: Base64(entry.as_bytes().to_vec()),
                envelopes,
            },
        });
    }

    fn appended(&mut self, room_id: RoomId, outcome: AppendOutcome, rng: &mut impl CryptoRngCore) {
        let me = self.me();
        let Some(writes) = self.machine.writes.get_mut(&room_id) else {
            return;
        };
        if !matches!(writes.in_flight, Some(InFlight::Entry { .. })) {
            return;
        }
        if outcome == AppendOutcome::Stored {
            writes.conflicts = 0;
            writes.duties_resting = false;
        }
        let Some(InFlight::Entry {
            ticket,
            from_length,
            next,
            key,
            metadata,
            clears_history,
        }) = writes.in_flight.take()
        else {
            return;
        };
        match outcome {
            AppendOutcome::Stored => {
                let deleted = next.deleted();
                if let Some(room) = self.machine.rooms.get_mut(&room_id) {
                    // Unless the event of this entry cleared it already.
                    if clears_history
                        && room.state.as_ref().map(RoomState::length).ok() == Some(from_length)
                    {
                        room.messages.clear();
                        room.pending.clear();
                        room.chains = RoomChains::default();
                        if self.machine.state.forget_chains(&room_id) {
                            self.effects.push(Effect::SaveState);
                        }
                    }
                    room.adopt_if_unchanged(from_length, next, &me);
                    if let Some((epoch, key)) = key {
                        room.keys.insert(epoch, key);
                    }
                    if let Some(metadata) = metadata {
                        room.metadata = Some(metadata);
                    }
                    room.refresh_metadata();
                }
                self.finish(ticket, Ok(()));
                if deleted {
                    self.forget_room(room_id);
                    return;
                }
                self.remember_log(room_id);
                self.effects.push(Effect::RoomChanged(room_id));
                // What the new log asks of this client (a duty that arrived meanwhile).
                self.after_room_change(room_id, rng);
            }
            AppendOutcome::Conflict(reason) => {
                // Another member's entry came first: take the log as it is now. A duty waits
                // a moment first, so a server that keeps answering 409 cannot spin the client;
                // after MAX_CONFLICTS in a row the queued writes end refused and the duties
                // rest until the log moves.
                writes.conflicts = writes.conflicts.saturating_add(1);
                writes.awaiting_sync = true;
                let given_up = writes.conflicts >= MAX_CONFLICTS;
                let user_waits = writes.queue.iter().any(|queued| queued.ticket.is_some());
                let abandoned: Vec<Option<Ticket>> = if given_up {
                    writes.duties_resting = true;
                    writes.conflicts = 0;
                    writes.queue.drain(..).map(|queued| queued.ticket).collect()
                } else {
                    Vec::new()
                };
                if ticket.is_none() && (!user_waits || given_up) {
                    self.wait(ROTATION_RETRY_PAUSE_MS, Timer::Resync(room_id));
                } else {
                    self.effects.push(Effect::Sync(room_id));
                }
                self.finish_conflict(ticket, reason);
                for ticket in abandoned.into_iter().flatten() {
                    self.finish(
                        Some(ticket),
                        Err(
                            "the server keeps refusing this room's changes (409); try again later"
                                .into(),
                        ),
                    );
                }
                return;
            }
            AppendOutcome::Failed(reason) => {
                let reason = if ticket.is_none() {
                    format!("could not rotate or re-seal the room key: {reason}")
                } else {
                    reason
                };
                self.finish(ticket, Err(reason));
            }
        }
        self.drive(room_id, rng);
    }

    /// A user's write refused with 409: said so; a queued message behind it goes on after
    /// the sync.
    fn finish_conflict(&mut self, ticket: Option<Ticket>, reason: String) {
        if ticket.is_some() {
            self.finish(
                ticket,
                Err(format!("the room changed meanwhile ({reason}); try again")),
            );
        }
    }

    fn posted(&mut self, room_id: RoomId, outcome: PostOutcome, rng: &mut impl CryptoRngCore) {
        let Some(writes) = self.machine.writes.get_mut(&room_id) else {
            return;
        };
        if !matches!(writes.in_flight, Some(InFlight::Message { .. })) {
            return;
        }
        let Some(InFlight::Message { ticket, inner }) = writes.in_flight.take() else {
            return;
        };
        // The chain moves on once the server stored the message, or may have (the answer was
        // lost): a refused message does not use up its counter, and a stored one is not
        // written over.
        if matches!(outcome, PostOutcome::Stored(_) | PostOutcome::Lost(_)) {
            if let Some(room) = self.machine.rooms.get_mut(&room_id) {
                room.record_sent(&inner);
            }
        }
        match outcome {
            PostOutcome::Stored(message) => {
                // The WebSocket echo may arrive first; either way the message is shown once.
                self.deliver(message);
                self.finish(ticket, Ok(()));
            }
            PostOutcome::Lost(reason) | PostOutcome::Refused(reason) => {
                self.finish(ticket, Err(reason));
            }
        }
        self.drive(room_id, rng);
    }
}

/// Whether `me` may send `body`, which names `target`: the target must be a message of the
/// room this client has loaded and verified, and one of `me`'s own, with text, for an edit (a
/// deletion: one of `me`'s own). Readers refuse the rest anyway; this says so before sending.
fn check_target(
    room: &Room,
    me: &str,
    body: &MessageBody,
    target: &MessageHash,
) -> Result<(), String> {
    let Some(shown) = room
        .messages
        .iter()
        .find(|message| message.hash().as_ref() == Some(target))
    else {
        return Err("that message is not loaded here".into());
    };
    match body {
        MessageBody::Edit { .. } if !matches!(shown, ShownMessage::Verified { .. }) => {
            Err("only a text message can be edited".into())
        }
        MessageBody::Edit { .. } | MessageBody::Delete { .. } if shown.sender() != me => {
            Err("only the sender of a message may edit or delete it".into())
        }
        _ => Ok(()),
    }
}
