//! One room as the client core knows it ([`Room`]): the replayed log, the keys held, the
//! messages shown and waiting, and each sender's chains; opening key envelopes and
//! messages, checking the log head each message names and its place in its sender's chain,
//! and the warnings that raises. Sans-I/O: the driver hands it what the server answered and
//! acts on what it returns (requests to make, warnings to show).

use std::collections::{BTreeMap, BTreeSet};

use common::api::{PendingJoinRequest, StoredMessage};
use common::attachment::AttachmentRef;
use common::identity::{IdentitySecrets, MemberKeys};
use common::membership::{
    replay_bytes, HistoryPolicy, LogAction, LogErrorKind, Role, RoomId, RoomState, SignedLogEntry,
};
use common::message::{
    open_message, ChainLink, InnerMessage, MessageBody, MessageHash, MessageKind, DEVICE_ID_LEN,
};
use common::room_key::{
    envelopes_for_member, key_commitment, open_metadata, rotate_with, EnvelopeError, EpochChange,
    KeyEnvelope, RoomKey, RoomMetadata, Rotation,
};
use rand_core::CryptoRngCore;
use thiserror::Error;

use crate::chains::{check_log_head, LogHeadCheck, RoomChains};
use crate::rotation::rotation_due;
use crate::state::ClientState;
use crate::warning::TrustWarning;

/// Syncs in a row a room gets for envelopes that name a longer log than the one fetched.
pub const MAX_LOG_RETRIES: u8 = 2;

/// How many live messages a room view keeps for a sync running meanwhile.
pub const MAX_RECEIVED_KEPT: usize = 200;

/// One line of a room's message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShownMessage {
    /// A text message or reply that passed every check.
    Verified {
        /// Server id.
        id: i64,
        /// Sender, as verified.
        sender: String,
        /// Sender's clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        /// The text as sent (edits are applied by [`crate::timeline`]).
        text: String,
        /// The message's own hash, by which replies, edits and reactions name it.
        hash: MessageHash,
        /// The message it answers, for a reply.
        reply_to: Option<MessageHash>,
    },
    /// An attachment that passed every check, with what the message says of it (the file
    /// itself is fetched and checked when the user opens it).
    Attachment {
        /// Server id.
        id: i64,
        /// Sender, as verified.
        sender: String,
        /// Sender's clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        /// The file's id, key, layout, hash, kind, type, name and preview.
        attachment: Box<AttachmentRef>,
        /// The message's own hash, by which replies and reactions name it.
        hash: MessageHash,
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

/// What a verified edit, deletion or reaction does to the message it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new text.
    Edit(String),
    /// The message is taken back.
    Delete,
    /// A reaction added, or withdrawn when `added` is false.
    Reaction {
        /// The reaction, usually one emoji.
        reaction: String,
        /// Added rather than withdrawn.
        added: bool,
    },
}

/// A verified message that changes another (an edit, deletion or reaction): kept beside the
/// shown messages and applied by [`crate::timeline`], which checks that only a message's
/// sender edits or deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Server id.
    pub id: i64,
    /// Sender, as verified.
    pub sender: String,
    /// Sender's clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// The message it changes.
    pub target: MessageHash,
    /// What it does.
    pub change: Change,
}

impl ShownMessage {
    /// The message's hash; `None` for a warning.
    pub fn hash(&self) -> Option<MessageHash> {
        match self {
            Self::Verified { hash, .. } | Self::Attachment { hash, .. } => Some(*hash),
            Self::Warning { .. } => None,
        }
    }

    /// The sender: verified, or the one the server claims for a warning.
    pub fn sender(&self) -> &str {
        match self {
            Self::Verified { sender, .. } | Self::Attachment { sender, .. } => sender,
            Self::Warning { claimed_sender, .. } => claimed_sender,
        }
    }

    /// The server id.
    pub fn id(&self) -> i64 {
        match self {
            Self::Verified { id, .. } | Self::Attachment { id, .. } | Self::Warning { id, .. } => {
                *id
            }
        }
    }
}

/// What the client knows of one room: the replayed log, the keys held, the messages shown
/// and waiting, and each sender's chains. The driver feeds it server answers and events and
/// acts on what its methods return.
#[derive(Debug, Clone)]
pub struct Room {
    /// The room.
    pub room_id: RoomId,
    /// The decrypted name, topic and kind, once a key is held.
    pub metadata: Option<RoomMetadata>,
    /// The replayed log, or why it was refused.
    pub state: Result<RoomState, String>,
    /// Room keys held, by epoch.
    pub keys: BTreeMap<u64, RoomKey>,
    /// Messages shown, in id order.
    pub messages: Vec<ShownMessage>,
    /// Verified edits, deletions and reactions, in id order.
    pub relations: Vec<Relation>,
    /// Messages waiting for the key of their epoch.
    pub pending: Vec<StoredMessage>,
    /// Messages from before this user joined that the room's policy does not share.
    pub not_shared: usize,
    /// Each sender's message chains: what the client state remembered and what was seen.
    pub chains: RoomChains,
    /// The last message this client sent in each epoch: counter and chain hash (the echo
    /// may not have arrived yet when the next one is written).
    pub own_last: BTreeMap<u64, (u64, [u8; 32])>,
    /// The id of the oldest message loaded when older ones exist; `None` once the whole
    /// history is loaded.
    pub oldest_loaded_id: Option<i64>,
    /// Messages that name a longer log than this tab has, waiting for the log to be fetched.
    pub ahead_of_log: Vec<StoredMessage>,
    /// The latest messages that arrived live (at most [`MAX_RECEIVED_KEPT`]), so a sync that
    /// ran meanwhile does not lose them.
    pub received: Vec<StoredMessage>,
    /// How many withheld messages were already reported per sender, so a gap is reported
    /// once, and again only when it grows.
    pub reported_withheld: BTreeMap<String, u64>,
    /// Syncs in a row caused by envelopes naming a longer log than the one fetched.
    pub log_retries: u8,
    /// Join requests waiting for an admin (only loaded for owners and admins).
    pub join_requests: Vec<PendingJoinRequest>,
    /// Epochs whose keys this client already asked the other members for.
    pub requested_epochs: BTreeSet<u64>,
    /// Set when this user left or was removed or banned: the room is read-only.
    pub removed: bool,
}

/// How many messages of a room this account has not read ([`Room::unread`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unread {
    /// Unread messages of others among those loaded (edits, deletions and reactions do not
    /// count).
    pub count: usize,
    /// Whether older unread messages may exist beyond those loaded: the count is a minimum.
    pub more: bool,
}

impl Room {
    /// The messages of others after `read_up_to` (the account's read marker for the room, a
    /// server id; `None` when it never read the room). Own messages do not count, nor do
    /// messages the log refused.
    pub fn unread(&self, me: &str, read_up_to: Option<i64>) -> Unread {
        let after = read_up_to.unwrap_or(0);
        let count = self
            .messages
            .iter()
            .rev()
            .take_while(|shown| shown.id() > after)
            .filter(|shown| shown.sender() != me)
            .count();
        let more = self
            .oldest_loaded_id
            .is_some_and(|oldest| oldest > after.saturating_add(1));
        Unread {
            count,
            more: more && count > 0,
        }
    }

    /// The newest message shown: what reading the room up to its end marks read.
    pub fn newest_id(&self) -> Option<i64> {
        self.messages.last().map(ShownMessage::id)
    }
}

impl Room {
    /// A room known only by id, before its log is read.
    pub fn new(room_id: RoomId) -> Self {
        Self {
            room_id,
            metadata: None,
            state: Err("loading".into()),
            keys: BTreeMap::new(),
            messages: Vec::new(),
            relations: Vec::new(),
            pending: Vec::new(),
            not_shared: 0,
            chains: RoomChains::default(),
            own_last: BTreeMap::new(),
            oldest_loaded_id: None,
            ahead_of_log: Vec::new(),
            received: Vec::new(),
            reported_withheld: BTreeMap::new(),
            log_retries: 0,
            join_requests: Vec::new(),
            requested_epochs: BTreeSet::new(),
            removed: false,
        }
    }

    /// The name to show: for a direct conversation the other person, else the decrypted name,
    /// or a placeholder until the key arrives.
    pub fn display_name(&self, me: &str) -> String {
        match &self.metadata {
            Some(metadata) if metadata.direct => self
                .state
                .as_ref()
                .ok()
                .and_then(|state| state.members().keys().find(|name| *name != me).cloned())
                .unwrap_or_else(|| "direct conversation".into()),
            Some(metadata) => metadata.name.clone(),
            None => format!("room {}…", &self.room_id.to_hex()[..8]),
        }
    }

    /// Records a state this client accepted and notices when this user is no longer a
    /// member. (The driver records its head in the [`crate::ClientState`].)
    pub fn accept_state(&mut self, next: RoomState, me: &str) {
        if next.member(me).is_none() {
            self.removed = true;
        }
        self.state = Ok(next);
    }

    /// Adopts `next`, built on a state of `from_length` entries, unless the log has moved on
    /// meanwhile (a WebSocket event applied the same entry first).
    pub fn adopt_if_unchanged(&mut self, from_length: u64, next: RoomState, me: &str) {
        if self.state.as_ref().map(RoomState::length).ok() == Some(from_length) {
            self.accept_state(next, me);
        }
    }

    /// Keeps a message that arrived live, for a sync running meanwhile.
    pub fn remember_received(&mut self, message: &StoredMessage) {
        self.received.push(message.clone());
        if self.received.len() > MAX_RECEIVED_KEPT {
            self.received.remove(0);
        }
    }

    /// The next text message `me` writes from device `device` at `now_ms`: at the current
    /// epoch, as the next link of that device's chain (after the last one this device
    /// sent, even if its echo has not come back yet), naming the log head this client
    /// accepted. With the key to seal it under; `None` while the key or the log is missing,
    /// and while the log leaves a rotation pending (a member left: the current key is one
    /// they hold, so nothing is written under it).
    pub fn prepare_text(
        &self,
        me: &str,
        device: [u8; DEVICE_ID_LEN],
        text: &str,
        now_ms: u64,
    ) -> Option<(InnerMessage, RoomKey)> {
        self.prepare_message(
            me,
            device,
            MessageKind::Text,
            text.as_bytes().to_vec(),
            now_ms,
        )
    }

    /// As [`Room::prepare_text`], for a message of any `kind` with its encoded `body` (an
    /// attachment's [`AttachmentRef::to_bytes`]).
    pub fn prepare_message(
        &self,
        me: &str,
        device: [u8; DEVICE_ID_LEN],
        kind: MessageKind,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Option<(InnerMessage, RoomKey)> {
        let (epoch, key) = self.current_key()?;
        let state = self.state.as_ref().ok()?;
        if state.rotation_pending() {
            return None;
        }
        let mut chain = self.chains.next_link(me, device, epoch);
        if let Some((counter, hash)) = self.own_last.get(&epoch) {
            if *counter >= chain.counter {
                chain = ChainLink {
                    device,
                    counter: counter.saturating_add(1),
                    prev_hash: *hash,
                };
            }
        }
        let inner = InnerMessage {
            room_id: self.room_id,
            epoch,
            sender: me.to_owned(),
            chain,
            log_length: state.length(),
            log_head: state.head_hash(),
            sent_at_ms: now_ms,
            kind,
            body,
        };
        Some((inner, key.clone()))
    }

    /// Records that `inner` (from [`Room::prepare_text`]) was stored by the server, or may
    /// have been (the answer was lost): the next message of this device follows it. A
    /// refused message is not recorded, so it does not use up its counter.
    pub fn record_sent(&mut self, inner: &InnerMessage) {
        self.own_last
            .insert(inner.epoch, (inner.chain.counter, inner.chain_hash()));
    }

    /// The current epoch key, if held.
    pub fn current_key(&self) -> Option<(u64, &RoomKey)> {
        let epoch = self.state.as_ref().ok()?.current_epoch();
        self.keys.get(&epoch).map(|key| (epoch, key))
    }
}

/// What became of a key envelope addressed to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeOutcome {
    /// Opened; the key is held.
    Accepted,
    /// It names a longer log than this tab has: fetch the log and try again.
    LogAhead,
    /// Refused, with the trust warning it raises, if any, and why in words.
    Refused(Option<TrustWarning>, String),
}

impl Room {
    /// Opens an envelope addressed to `me`; a valid key is stored and unlocks the room metadata.
    pub fn accept_envelope(
        &mut self,
        me: &str,
        secrets: &IdentitySecrets,
        envelope: &KeyEnvelope,
    ) -> EnvelopeOutcome {
        let Ok(state) = self.state.as_ref() else {
            return EnvelopeOutcome::Refused(None, "the room's log was refused".into());
        };
        match envelope.open(state, me, secrets) {
            Ok(key) => {
                self.keys.insert(envelope.epoch, key);
                self.refresh_metadata();
                EnvelopeOutcome::Accepted
            }
            Err(EnvelopeError::LogAhead(_)) => EnvelopeOutcome::LogAhead,
            // Only a current member's view of the log counts as evidence of a fork; a removed
            // member's old envelope is just not used.
            Err(EnvelopeError::LogForked(position))
                if state.member(&envelope.distributor).is_some() =>
            {
                EnvelopeOutcome::Refused(
                    Some(TrustWarning::LogForked {
                        room_id: self.room_id,
                        position,
                    }),
                    format!("written at another membership log (entry {position})"),
                )
            }
            Err(error) => EnvelopeOutcome::Refused(None, error.to_string()),
        }
    }

    /// Accepts the envelopes of a sync, returning the trust warnings they raise and whether the
    /// log should be fetched again. An envelope naming a longer log than the one just fetched is
    /// retried with a fresh log at most [`MAX_LOG_RETRIES`] times (the log may have grown between
    /// the two requests); after that the server is withholding entries (`log forked`).
    pub fn accept_synced_envelopes(
        &mut self,
        me: &str,
        secrets: &IdentitySecrets,
        envelopes: &[KeyEnvelope],
        retries: u8,
    ) -> (Vec<TrustWarning>, bool) {
        let mut warnings = Vec::new();
        let mut ahead = None;
        for envelope in envelopes {
            match self.accept_envelope(me, secrets, envelope) {
                EnvelopeOutcome::Accepted | EnvelopeOutcome::Refused(None, _) => {}
                EnvelopeOutcome::Refused(Some(warning), _) => warnings.push(warning),
                EnvelopeOutcome::LogAhead => {
                    ahead.get_or_insert(envelope.log_head.map_or(0, |head| head.length));
                }
            }
        }
        let mut fetch_again = false;
        if let Some(length) = ahead {
            if retries < MAX_LOG_RETRIES {
                self.log_retries = retries + 1;
                fetch_again = true;
            } else {
                warnings.push(TrustWarning::LogForked {
                    room_id: self.room_id,
                    position: length.saturating_sub(1),
                });
            }
        }
        (warnings, fetch_again)
    }

    /// Decrypts the latest metadata if its key is held.
    pub fn refresh_metadata(&mut self) {
        let Ok(state) = self.state.as_ref() else {
            return;
        };
        let (epoch, sealed) = state.encrypted_metadata();
        if let Some(key) = self.keys.get(&epoch) {
            if let Ok(metadata) = open_metadata(key, &self.room_id, epoch, sealed) {
                self.metadata = Some(metadata);
            }
        }
    }
}

/// Whether a message at `epoch` can never be read by `me` because the room shares history
/// only since joining.
fn not_shared_with(
    state: &RoomState,
    me: &str,
    epoch: u64,
    keys: &std::collections::BTreeMap<u64, RoomKey>,
) -> bool {
    state.policy().history == HistoryPolicy::SinceJoining
        && !keys.contains_key(&epoch)
        && state
            .member(me)
            .is_some_and(|member| epoch < member.joined_epoch)
}

/// What opening pending messages found that the app must act on.
#[derive(Debug, Default)]
pub struct Processed {
    /// Trust warnings to raise: broken chains, withheld messages, forked logs.
    pub warnings: Vec<TrustWarning>,
    /// Some message names a longer log than this tab has: fetch the log.
    pub log_ahead: bool,
}

impl Room {
    /// Opens every pending message whose key is held and checks it against the log head it
    /// names and its sender's chain; failures become warnings shown in its place. `fresh_log`
    /// says the log was just fetched, so a message still naming a longer one proves the server
    /// withholds entries. Returns what the driver must act on.
    pub fn process_pending(&mut self, me: &str, fresh_log: bool) -> Processed {
        let view = self;
        let mut processed = Processed::default();
        let Ok(state) = view.state.as_ref() else {
            return processed;
        };
        let room_id = view.room_id;
        let mut pending = std::mem::take(&mut view.pending);
        pending.append(&mut view.ahead_of_log);
        pending.sort_by_key(|stored| stored.id);
        for stored in pending {
            let Some(key) = view.keys.get(&stored.epoch) else {
                if not_shared_with(state, me, stored.epoch, &view.keys) {
                    view.not_shared += 1;
                } else {
                    view.pending.push(stored);
                }
                continue;
            };
            let warning = |reason: String| ShownMessage::Warning {
                id: stored.id,
                claimed_sender: stored.sender.clone(),
                reason,
            };
            let inner = match open_message(&stored.sealed(), &stored.sender, key, state) {
                Ok(inner) => inner,
                Err(error) => {
                    view.messages.push(warning(error.to_string()));
                    continue;
                }
            };
            match check_log_head(&inner, state) {
                Ok(LogHeadCheck::Known) => {}
                Ok(LogHeadCheck::Ahead) if !fresh_log => {
                    processed.log_ahead = true;
                    view.ahead_of_log.push(stored);
                    continue;
                }
                Ok(LogHeadCheck::Ahead) => {
                    let forked = TrustWarning::LogForked {
                        room_id,
                        position: inner.log_length - 1,
                    };
                    view.messages.push(warning(format!(
                        "written at a membership log the server does not show you ({forked})"
                    )));
                    processed.warnings.push(forked);
                    continue;
                }
                Err(forked) => {
                    view.messages.push(warning(format!(
                        "written at another membership log than yours ({forked})"
                    )));
                    processed.warnings.push(forked);
                    continue;
                }
            }
            if let Err(error) = view.chains.observe(&inner, stored.id) {
                processed.warnings.push(error.warning(room_id));
                view.messages.push(warning(error.to_string()));
                continue;
            }
            // In its sender's chain, but written with a key its own log says was replaced.
            if let Some(reason) = outside_its_epoch(&inner, state) {
                view.messages.push(warning(reason));
                continue;
            }
            let hash = inner.chain_hash();
            let relation = |target, change| Relation {
                id: stored.id,
                sender: inner.sender.clone(),
                sent_at_ms: inner.sent_at_ms,
                target,
                change,
            };
            // `open_message` checked that the body decodes.
            let shown = match inner.content() {
                Ok(MessageBody::Text(text)) => ShownMessage::Verified {
                    id: stored.id,
                    sender: inner.sender.clone(),
                    sent_at_ms: inner.sent_at_ms,
                    text,
                    hash,
                    reply_to: None,
                },
                Ok(MessageBody::Reply { target, text }) => ShownMessage::Verified {
                    id: stored.id,
                    sender: inner.sender.clone(),
                    sent_at_ms: inner.sent_at_ms,
                    text,
                    hash,
                    reply_to: Some(target),
                },
                // The room's policy (from the signed log) forbids this kind: its sender's
                // client should not have sent it, and this one does not show it.
                Ok(MessageBody::Attachment(attachment))
                    if state.policy().allowed_media & attachment.kind.policy_bit() == 0 =>
                {
                    warning(format!(
                        "an attachment of a kind this room does not allow ({:?})",
                        attachment.kind
                    ))
                }
                Ok(MessageBody::Attachment(attachment)) => ShownMessage::Attachment {
                    id: stored.id,
                    sender: inner.sender.clone(),
                    sent_at_ms: inner.sent_at_ms,
                    attachment,
                    hash,
                },
                Ok(MessageBody::Edit { target, text }) => {
                    view.relations.push(relation(target, Change::Edit(text)));
                    continue;
                }
                Ok(MessageBody::Delete { target }) => {
                    view.relations.push(relation(target, Change::Delete));
                    continue;
                }
                Ok(MessageBody::Reaction {
                    target,
                    reaction,
                    added,
                }) => {
                    view.relations
                        .push(relation(target, Change::Reaction { reaction, added }));
                    continue;
                }
                Err(error) => warning(format!("an unreadable message body ({error})")),
            };
            view.messages.push(shown);
        }
        view.messages.sort_by_key(ShownMessage::id);
        view.messages.dedup_by_key(|shown| shown.id());
        view.relations.sort_by_key(|relation| relation.id);
        view.relations.dedup_by_key(|relation| relation.id);
        // Each gap is reported once: again only when more go missing.
        for warning in view.chains.withheld(room_id, view.oldest_loaded_id) {
            if let TrustWarning::MessagesWithheld { sender, count, .. } = &warning {
                let reported = view.reported_withheld.entry(sender.clone()).or_default();
                if *count > *reported {
                    *reported = *count;
                    processed.warnings.push(warning);
                }
            }
        }
        processed
    }
}

/// Why a message names a log in which its epoch is not the current one, if it does: an
/// honest sender writes at the epoch its own log makes current, so the log it names contains
/// the entry that started the message's epoch and none that started a later one. A sender
/// who names a later log wrote with a key that had been replaced (one a removed member
/// holds); the server refuses such messages, so seeing one means it did not. Legacy
/// (version 1) messages name no log and are not judged.
pub fn outside_its_epoch(inner: &InnerMessage, state: &RoomState) -> Option<String> {
    if inner.is_legacy() {
        return None;
    }
    let record = state.epoch(inner.epoch)?;
    if inner.log_length <= record.started_at_seq {
        return Some(format!(
            "names a membership log from before its key epoch {} began",
            inner.epoch
        ));
    }
    let next = state.epoch(inner.epoch.saturating_add(1))?;
    (inner.log_length > next.started_at_seq).then(|| {
        format!(
            "written with the key of epoch {} after the log had replaced it (entry {})",
            inner.epoch, next.started_at_seq
        )
    })
}

/// The server's answers to one room sync, fetched in this order so that no message of the
/// page names a longer log than the one fetched: the newest messages (with older pages back
/// to the chain heads the client state remembers), the log, the key envelopes addressed to
/// this user.
#[derive(Debug, Clone, Default)]
pub struct SyncAnswers {
    /// The messages fetched, in ascending id order.
    pub history: Vec<StoredMessage>,
    /// Whether older messages than the first of `history` exist.
    pub has_more: bool,
    /// The signed log entries, from genesis.
    pub log: Vec<Vec<u8>>,
    /// The key envelopes addressed to this user.
    pub envelopes: Vec<KeyEnvelope>,
}

/// Older history pages a sync loads at most to reach the chain heads the client state
/// remembers ([`SyncAnswers::older_page_needed`]).
pub const MAX_CATCH_UP_PAGES: usize = 5;

impl SyncAnswers {
    /// The id below which the next older page should be fetched so that the history reaches
    /// `oldest_head`, the oldest chain head the client state remembers for the room
    /// ([`RoomChains::oldest_head_id`]): a message withheld between two sessions is then
    /// judged, not guessed. `None` once it does, or when no older page exists. A driver
    /// fetches at most [`MAX_CATCH_UP_PAGES`] such pages, adding each with
    /// [`SyncAnswers::prepend_older`].
    pub fn older_page_needed(&self, oldest_head: Option<i64>) -> Option<i64> {
        let oldest_head = oldest_head?;
        let oldest = self.history.first()?.id;
        (self.has_more && oldest > oldest_head).then_some(oldest)
    }

    /// Puts an older page (ascending ids, all below the current first one) in front of the
    /// history; `has_more` says whether still older messages exist.
    pub fn prepend_older(&mut self, mut older: Vec<StoredMessage>, has_more: bool) {
        older.append(&mut self.history);
        self.history = older;
        self.has_more = has_more;
    }
}

/// What a sync made of a room: the room to keep, and what the driver must act on.
#[derive(Debug)]
pub struct Synced {
    /// The room as the sync left it.
    pub room: Room,
    /// Trust warnings to raise, whether to fetch the log again.
    pub processed: Processed,
    /// Whether the client state changed (chain heads forgotten after a history clearing)
    /// and needs saving.
    pub client_state_changed: bool,
}

impl Room {
    /// Builds a room from a sync's answers: replays the log and checks it against what this
    /// account accepted before (`client_state`: a rolled-back or forked log, or one that
    /// records other keys for `me`, is refused with its warning), opens the envelopes (a
    /// log that an envelope names as longer is fetched again at most [`MAX_LOG_RETRIES`]
    /// times in a row, counted from `previous`, then `log forked`), starts the chains from
    /// the heads the client state remembers (forgotten when the log cleared the history since),
    /// carries over from `previous` (this client's view before the sync) the keys it holds
    /// that the log commits to, the epochs whose keys it asked for,
    /// the last message it sent per epoch, the withheld counts already reported, and what
    /// arrived live meanwhile, and opens every message.
    pub fn from_sync(
        room_id: RoomId,
        me: &str,
        secrets: &IdentitySecrets,
        answers: SyncAnswers,
        client_state: &mut ClientState,
        previous: Option<&Room>,
    ) -> Synced {
        let mut room = Room::new(room_id);
        let mut warnings = Vec::new();
        let mut client_state_changed = false;
        room.state = match replay_bytes(&answers.log) {
            Err(error) => Err(format!(
                "this room's history was tampered with ({error}); it cannot be shown"
            )),
            Ok(state) => match client_state
                .check_log(&room_id, &state)
                .and_then(|()| ClientState::check_own_keys(&state, me, &secrets.public_keys()))
            {
                Err(warning) => {
                    let refused = format!("this room's log was refused: {warning}");
                    warnings.push(warning);
                    Err(refused)
                }
                Ok(()) => Ok(state),
            },
        };
        if room.state.is_ok() && history_cleared_since(client_state, &room_id, &answers.log) {
            client_state_changed |= client_state.forget_chains(&room_id);
        }
        room.oldest_loaded_id = answers
            .has_more
            .then(|| answers.history.first().map(|message| message.id))
            .flatten();
        let page_end = answers.history.last().map_or(0, |message| message.id);
        room.pending = answers.history;
        if let Ok(state) = room.state.clone() {
            room.accept_state(state, me);
        }
        let retries = previous.map_or(0, |previous| previous.log_retries);
        let (envelope_warnings, fetch_again) =
            room.accept_synced_envelopes(me, secrets, &answers.envelopes, retries);
        warnings.extend(envelope_warnings);
        room.chains = RoomChains::new(
            client_state
                .chains
                .get(&room_id)
                .cloned()
                .unwrap_or_default(),
        );
        let mut arrived_since = Vec::new();
        if let Some(previous) = previous {
            // Keys this tab made itself (a rotation whose envelopes are still on their way)
            // are kept, as long as the log commits to them.
            if let Ok(state) = room.state.as_ref() {
                for (epoch, key) in &previous.keys {
                    let committed = state.epoch(*epoch).is_some_and(|record| {
                        record.key_commitment == key_commitment(&room_id, *epoch, key)
                    });
                    if committed {
                        room.keys.entry(*epoch).or_insert_with(|| key.clone());
                    }
                }
            }
            room.refresh_metadata();
            room.requested_epochs = previous.requested_epochs.clone();
            room.own_last = previous.own_last.clone();
            room.reported_withheld = previous.reported_withheld.clone();
            arrived_since = previous
                .received
                .iter()
                .filter(|message| message.id > page_end)
                .cloned()
                .collect();
        }
        // The log was just fetched: a message of the page naming a longer one means the
        // server withholds entries from this reader.
        let mut processed = room.process_pending(me, true);
        processed.warnings.splice(0..0, warnings);
        processed.log_ahead |= fetch_again;
        room.received = arrived_since.clone();
        room.pending.extend(arrived_since);
        // What arrived live may name a longer log than the one fetched (it may have grown
        // meanwhile); after MAX_LOG_RETRIES syncs in a row that still holds, the server
        // withholds entries, and those messages are judged as if the log were fresh.
        let later = room.process_pending(me, retries >= MAX_LOG_RETRIES);
        processed.warnings.extend(later.warnings);
        processed.log_ahead |= later.log_ahead;
        if processed.log_ahead {
            room.log_retries = retries.saturating_add(1);
        }
        Synced {
            room,
            processed,
            client_state_changed,
        }
    }
}

/// Whether the part of `entries` past what the client state remembers of the room's log
/// clears its history.
fn history_cleared_since(
    client_state: &ClientState,
    room_id: &RoomId,
    entries: &[Vec<u8>],
) -> bool {
    let remembered = client_state.logs.get(room_id).map_or(0, |memory| {
        usize::try_from(memory.length).unwrap_or(usize::MAX)
    });
    entries.iter().skip(remembered).any(|bytes| {
        SignedLogEntry::from_bytes(bytes).is_ok_and(|signed| signed.entry().action.clears_history())
    })
}

/// Why this client should rotate a room's key now ([`Room::rotation_duty`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationDuty {
    /// A member left and nobody has rotated yet, so nothing may be written: any member
    /// completes it. `admin` says whether this user is an admin or the owner, who goes at
    /// once; other members wait a moment first, so that an admin online usually does it.
    Pending {
        /// Whether this user is an admin or the owner.
        admin: bool,
    },
    /// The epoch is due under the room's schedule ([`crate::rotation`]); admins holding the
    /// current key rotate it.
    Due,
}

/// Why this client cannot start an epoch or hand out keys in a room.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomError {
    /// The room's log was refused, or is not loaded.
    #[error("the room is not available: {0}")]
    Unavailable(String),
    /// Under "since joining" a newcomer can read only what the add entry seals under the new
    /// key; without the name this client cannot give it to them.
    #[error("this room's name is not readable yet, so nobody can be added: try again once its key has arrived")]
    NameNotReadable,
    /// The log refuses the entry (e.g. the author may not make the change).
    #[error(transparent)]
    Log(#[from] LogErrorKind),
    /// An envelope could not be sealed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl Room {
    /// Whether `me` should rotate the room's key now, at `now_ms` (this client's clock).
    pub fn rotation_duty(&self, me: &str, now_ms: u64) -> Option<RotationDuty> {
        let state = self.state.as_ref().ok()?;
        let admin = state.member(me)?.role >= Role::Admin;
        if state.rotation_pending() {
            return Some(RotationDuty::Pending { admin });
        }
        (admin && self.current_key().is_some() && rotation_due(state, &self.chains, now_ms))
            .then_some(RotationDuty::Due)
    }

    /// The epoch whose key `me`, a member, lacks and has not asked the other members for
    /// yet; it is marked asked ([`Room::key_request_failed`] unmarks it).
    pub fn key_to_request(&mut self, me: &str) -> Option<u64> {
        let state = self.state.as_ref().ok()?;
        state.member(me)?;
        let epoch = state.current_epoch();
        if self.keys.contains_key(&epoch) || !self.requested_epochs.insert(epoch) {
            return None;
        }
        Some(epoch)
    }

    /// A key request for `epoch` did not reach the server: the next sync asks again.
    pub fn key_request_failed(&mut self, epoch: u64) {
        self.requested_epochs.remove(&epoch);
    }

    /// Makes `change` in a signed entry by `me` that starts the next epoch, with a fresh key,
    /// and seals that key to every member after the change whom `may_seal_to` allows (its
    /// caller checks the pins; `me` is always included). Admins re-encrypt the room's name
    /// and topic under the new key; anyone else (completing a pending rotation) keeps them.
    /// Nothing is applied here: the driver posts the entry with the envelopes and, once the
    /// server stored them, adopts [`Rotation::state`] and the key.
    ///
    /// # Errors
    /// [`RoomError`] when the log is not available, the log refuses the entry, the name is
    /// not readable for an add, or an envelope cannot be sealed.
    pub fn start_epoch(
        &self,
        me: &str,
        secrets: &IdentitySecrets,
        change: EpochChange,
        mut may_seal_to: impl FnMut(&str, &MemberKeys) -> bool,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Rotation, Vec<KeyEnvelope>), RoomError> {
        let state = self
            .state
            .as_ref()
            .map_err(|error| RoomError::Unavailable(error.clone()))?;
        let admin = state
            .member(me)
            .is_some_and(|member| member.role >= Role::Admin);
        let metadata = self.metadata.as_ref().filter(|_| admin);
        if metadata.is_none() && matches!(change, EpochChange::AddMember { .. }) {
            return Err(RoomError::NameNotReadable);
        }
        let rotation = rotate_with(state, change, me, secrets, metadata, now_ms, rng)?;
        let epoch = rotation.state.current_epoch();
        let mut envelopes = Vec::new();
        for (username, member) in rotation.state.members() {
            if username != me && !may_seal_to(username, &member.keys) {
                continue;
            }
            envelopes.push(KeyEnvelope::seal(
                &rotation.state,
                epoch,
                &rotation.key,
                username,
                me,
                secrets,
                rng,
            )?);
        }
        Ok((rotation, envelopes))
    }

    /// The envelopes `me` hands `username`: every key the policy lets them have that this
    /// client holds (the current epoch's, and under "full history" every earlier one). None
    /// unless both are members and this client holds the current key. The caller checks the
    /// recipient's keys against the pins first.
    ///
    /// # Errors
    /// [`RoomError::Envelope`] when a key cannot be sealed to the recipient.
    pub fn envelopes_for(
        &self,
        me: &str,
        secrets: &IdentitySecrets,
        username: &str,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<KeyEnvelope>, RoomError> {
        let Ok(state) = self.state.as_ref() else {
            return Ok(Vec::new());
        };
        if state.member(username).is_none()
            || state.member(me).is_none()
            || !self.keys.contains_key(&state.current_epoch())
        {
            return Ok(Vec::new());
        }
        Ok(envelopes_for_member(
            state, &self.keys, username, me, secrets, rng,
        )?)
    }

    /// The keys `username` has in the room's log, if they are a member.
    pub fn member_keys(&self, username: &str) -> Option<MemberKeys> {
        Some(self.state.as_ref().ok()?.member(username)?.keys)
    }
}

/// How a membership change is written ([`Room::addition`], [`Room::removal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// In an entry that starts the next epoch ([`Room::start_epoch`]).
    StartsEpoch(EpochChange),
    /// In a plain entry that changes no key; after an add, the newcomer is handed the keys
    /// the policy lets them have ([`Room::envelopes_for`]).
    Plain(LogAction),
}

impl Room {
    /// How to add `username` with `keys` and `role`: under "since joining" in an entry that
    /// starts an epoch the newcomer joins in (they then hold no key to anything earlier),
    /// under "full history" as a plain add.
    pub fn addition(&self, username: &str, keys: MemberKeys, role: Role) -> MembershipChange {
        let full_history = self
            .state
            .as_ref()
            .is_ok_and(|state| state.policy().history == HistoryPolicy::FullHistory);
        if full_history {
            MembershipChange::Plain(LogAction::AddMember {
                username: username.to_owned(),
                keys,
                role,
            })
        } else {
            MembershipChange::StartsEpoch(EpochChange::AddMember {
                username: username.to_owned(),
                keys,
                role,
            })
        }
    }

    /// How to remove `username`, or with `ban` ban them: a current member in an entry that
    /// starts the next epoch, whose key they never get; someone who is not a member with a
    /// plain ban entry (no key changes).
    pub fn removal(&self, username: &str, ban: bool) -> MembershipChange {
        let is_member = self.member_keys(username).is_some();
        match (ban, is_member) {
            (true, false) => MembershipChange::Plain(LogAction::Ban {
                username: username.to_owned(),
            }),
            (true, true) => MembershipChange::StartsEpoch(EpochChange::Ban(username.to_owned())),
            (false, _) => {
                MembershipChange::StartsEpoch(EpochChange::RemoveMember(username.to_owned()))
            }
        }
    }
}
