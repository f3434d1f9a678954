//! The durable client state (docs/PROTOCOL.md section 11): what every client of one account
//! has seen, kept so that a reload, a second browser or a dishonest server cannot make it
//! forget.
//!
//! It holds the trust-on-first-use pins with their verification marks, each room's last
//! accepted membership-log length, head hash and highest epoch, and the account's own salt and
//! Argon2id parameters, under a monotonic `version`. It is sealed under a key derived from the
//! identity secrets and kept twice: in the browser (IndexedDB) and on the server, as one
//! opaque blob. [`reconcile`] compares the two at log-in; a server copy that is older than the
//! browser's, missing after one existed, or unreadable becomes a [`TrustWarning`], never a
//! silent reset.

use std::collections::BTreeMap;

use common::account::{KdfParams, WrapKey, SALT_LEN};
use common::encoding::{DecodeError, Decoder, Encoder};
use common::identity::{validate_username, IdentitySecrets};
use common::membership::{LogErrorKind, RoomId, RoomState};
use common::primitives::{self, KEY_LEN};
use common::trust::{open_pins, Pins};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::chains::{ChainHead, ChainKey};
use crate::warning::TrustWarning;

/// Domain-separation label of the client-state plaintext.
pub const STATE_LABEL: &[u8] = b"e2ee-chat/v2/client-state";
/// HKDF `info` deriving the state key from the identity secrets.
pub const STATE_KEY_INFO: &[u8] = b"e2ee-chat/v2/client-state-key";
/// Layout version of the plaintext written now, after the label: 2 adds the read markers.
pub const STATE_FORMAT: u32 = 2;
/// The previous layout (no read markers), still read.
pub const STATE_FORMAT_WITHOUT_READ_MARKERS: u32 = 1;
/// Most rooms one state remembers.
pub const MAX_ROOMS: usize = 100_000;
/// Most message chains one state remembers, over all rooms.
pub const MAX_CHAINS: usize = 1_000_000;
/// Most devices (browser tabs) whose chains are remembered per sender, room and epoch; the
/// ones whose last message is oldest are forgotten first.
pub const MAX_DEVICES_PER_SENDER: usize = 4;
/// How many of a room's latest epochs keep their chain heads. The server takes messages only
/// at the current epoch, so older chains do not grow; what a reader keeps of them only
/// catches replays of old messages after a reload.
pub const CHAIN_EPOCHS_KEPT: u64 = 2;

/// Why a sealed client state could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// It does not decrypt under this account's state key (nor, as a pre-version-2 pins blob,
    /// under its wrap key).
    #[error("the client state does not decrypt")]
    Decrypt,
    /// It decrypts but is malformed, names another account or another layout version.
    #[error("the client state is malformed: {0}")]
    Malformed(DecodeError),
}

/// The key that seals the client state: `HKDF-SHA256(ikm = x25519 secret(32) || ed25519
/// seed(32), salt = empty, info = "e2ee-chat/v2/client-state-key")`, 32 bytes (RFC 5869).
///
/// It is derived from the identity secrets, not from `wrap_key`, because those stay the same
/// when the password changes: a state sealed in one browser still opens in another after the
/// password was changed in a third, so a password change cannot look like tampering.
pub struct StateKey(Zeroizing<[u8; KEY_LEN]>);

impl StateKey {
    /// The key's bytes, for keys derived from it within the client (the search index's).
    pub(crate) fn secret_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Derives the key of the account whose identity secrets these are.
    pub fn derive(secrets: &IdentitySecrets) -> Self {
        let mut ikm = Zeroizing::new([0u8; 2 * KEY_LEN]);
        ikm[..KEY_LEN].copy_from_slice(Zeroizing::new(secrets.x25519_secret_bytes()).as_ref());
        ikm[KEY_LEN..].copy_from_slice(Zeroizing::new(secrets.ed25519_seed()).as_ref());
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is far below HKDF's limit, so expansion cannot fail.
        if primitives::hkdf_sha256(ikm.as_ref(), &[], STATE_KEY_INFO, key.as_mut()).is_err() {
            unreachable!("hkdf-sha256 expands 32 bytes");
        }
        Self(key)
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

/// What the account accepted of one room's membership log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMemory {
    /// Number of entries accepted.
    pub length: u64,
    /// Hash of the last of them (`RoomState::head_hash`).
    pub head_hash: [u8; KEY_LEN],
    /// The highest epoch seen in the room.
    pub highest_epoch: u64,
}

/// The salt and Argon2id parameters the account derives its keys with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfRecord {
    /// The 16-byte salt.
    pub salt: [u8; SALT_LEN],
    /// The Argon2id parameters.
    pub params: KdfParams,
}

impl KdfRecord {
    /// Compares what a pre-login answer says with this record.
    ///
    /// # Errors
    /// [`TrustWarning::KdfParametersChanged`] when the salt or any parameter differs.
    pub fn check(
        &self,
        username: &str,
        salt: &[u8],
        params: &KdfParams,
    ) -> Result<(), TrustWarning> {
        if self.salt.as_slice() == salt && self.params == *params {
            return Ok(());
        }
        let mut presented_salt = [0u8; SALT_LEN];
        if salt.len() == SALT_LEN {
            presented_salt.copy_from_slice(salt);
        }
        Err(TrustWarning::KdfParametersChanged {
            username: username.to_owned(),
            presented: KdfRecord {
                salt: presented_salt,
                params: *params,
            },
        })
    }
}

/// Everything one account's clients remember, under a version that grows by one with each
/// save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientState {
    /// Grows by one with every save; a copy with a lower version is older.
    pub version: u64,
    /// Trust-on-first-use pins and verification marks.
    pub pins: Pins,
    /// What was accepted of each room's log, by room.
    pub logs: BTreeMap<RoomId, LogMemory>,
    /// The head of each sender's message chain seen in each room.
    pub chains: BTreeMap<RoomId, BTreeMap<ChainKey, ChainHead>>,
    /// The account's own salt and KDF parameters, once known.
    pub kdf: Option<KdfRecord>,
    /// Per room, the id of the newest message this account has read (in any browser): what
    /// unread counts and the "new messages" line start from. Kept here, sealed, rather than
    /// told to the server, which then learns nothing of who read what when.
    pub read_markers: BTreeMap<RoomId, i64>,
}

impl ClientState {
    /// Checks a replayed log against what was accepted of it before.
    ///
    /// # Errors
    /// [`TrustWarning::LogRolledBack`] when it is shorter, [`TrustWarning::LogForked`] when
    /// the entry accepted last is not at its position.
    pub fn check_log(&self, room_id: &RoomId, state: &RoomState) -> Result<(), TrustWarning> {
        let Some(memory) = self.logs.get(room_id) else {
            return Ok(());
        };
        match state.check_extends(memory.length, &memory.head_hash) {
            Ok(()) if state.current_epoch() < memory.highest_epoch => {
                Err(TrustWarning::LogRolledBack {
                    room_id: *room_id,
                    seen_length: memory.length,
                    served_length: state.length(),
                })
            }
            Ok(()) => Ok(()),
            Err(LogErrorKind::Truncated { seen, served }) => Err(TrustWarning::LogRolledBack {
                room_id: *room_id,
                seen_length: seen,
                served_length: served,
            }),
            Err(_) => Err(TrustWarning::LogForked {
                room_id: *room_id,
                position: memory.length.saturating_sub(1),
            }),
        }
    }

    /// Checks that a replayed log records `me` with `my_keys` wherever it records `me` at all
    /// (as a current member, or in any epoch).
    ///
    /// # Errors
    /// [`TrustWarning::OwnKeyMissingFromLog`] when it records other keys.
    pub fn check_own_keys(
        state: &RoomState,
        me: &str,
        my_keys: &common::identity::MemberKeys,
    ) -> Result<(), TrustWarning> {
        let current = state.member(me).map(|member| member.keys);
        let in_epochs = (0..=state.current_epoch())
            .filter_map(|epoch| state.member_keys_in_epoch(me, epoch).copied());
        if current
            .into_iter()
            .chain(in_epochs)
            .all(|keys| keys == *my_keys)
        {
            Ok(())
        } else {
            Err(TrustWarning::OwnKeyMissingFromLog {
                room_id: state.room_id(),
            })
        }
    }

    /// Records an accepted log (after [`ClientState::check_log`] passed). Returns whether
    /// anything changed, that is whether the state needs saving.
    pub fn remember_log(&mut self, room_id: RoomId, state: &RoomState) -> bool {
        let next = LogMemory {
            length: state.length(),
            head_hash: state.head_hash(),
            highest_epoch: state.current_epoch(),
        };
        let previous = self.logs.get(&room_id).copied();
        match previous {
            Some(memory) if memory.length >= next.length => false,
            _ => {
                self.logs.insert(room_id, next);
                true
            }
        }
    }

    /// Records the chain heads of a room (from `RoomChains::heads`). Returns whether anything
    /// moved on, that is whether the state needs saving.
    pub fn remember_chains(
        &mut self,
        room_id: RoomId,
        heads: BTreeMap<ChainKey, ChainHead>,
    ) -> bool {
        let known = self.chains.entry(room_id).or_default();
        let mut changed = false;
        for (key, head) in heads {
            match known.get(&key) {
                Some(current) if current.counter >= head.counter => {}
                _ => {
                    known.insert(key, head);
                    changed = true;
                }
            }
        }
        if changed {
            prune_devices(known);
        }
        changed
    }

    /// Forgets a room's chain heads, after its history was cleared (their messages are gone,
    /// so the next ones are not "after" them). Returns whether anything was forgotten.
    pub fn forget_chains(&mut self, room_id: &RoomId) -> bool {
        self.chains
            .remove(room_id)
            .is_some_and(|chains| !chains.is_empty())
    }

    /// Takes in another copy of this account's state (from another browser, through the
    /// server). Pins only the other copy has are added. A pin both copies have with the same
    /// keys stays verified if either marked it so; with different keys this copy's pin is
    /// kept and [`TrustWarning::PinConflict`] raised, since versions grow with every save of
    /// every browser and say nothing about which decision came later (a browser the server
    /// kept on a fork could otherwise replace a verified key). For each room the longer
    /// accepted log is kept; two copies that accepted different entries at the same length
    /// mean the server showed this account's browsers different logs
    /// ([`TrustWarning::LogForked`]). Chain heads keep the furthest of the two; the KDF record
    /// the newer copy's; read markers the further of the two. The version becomes the higher
    /// of the two.
    pub fn merge(&mut self, other: &ClientState) -> Vec<TrustWarning> {
        let mut warnings = Vec::new();
        for (username, theirs) in other.pins.iter() {
            match self.pins.get(username).copied() {
                None => self.pins.insert(username, *theirs),
                Some(mine) if mine.keys == theirs.keys => {
                    if theirs.verified && !mine.verified {
                        self.pins.set_verified(username, true);
                    }
                }
                Some(_) => warnings.push(TrustWarning::PinConflict {
                    username: username.to_owned(),
                }),
            }
        }
        let other_newer = other.version > self.version;
        for (room_id, theirs) in &other.logs {
            match self.logs.get_mut(room_id) {
                None => {
                    self.logs.insert(*room_id, *theirs);
                }
                Some(mine) if mine.length == theirs.length => {
                    if mine.head_hash != theirs.head_hash {
                        warnings.push(TrustWarning::LogForked {
                            room_id: *room_id,
                            position: mine.length.saturating_sub(1),
                        });
                    }
                    mine.highest_epoch = mine.highest_epoch.max(theirs.highest_epoch);
                }
                Some(mine) if mine.length < theirs.length => *mine = *theirs,
                Some(_) => {}
            }
        }
        for (room_id, heads) in &other.chains {
            self.remember_chains(*room_id, heads.clone());
        }
        if other.kdf.is_some() && (other_newer || self.kdf.is_none()) {
            self.kdf = other.kdf;
        }
        for (room_id, read) in &other.read_markers {
            self.mark_read(*room_id, *read);
        }
        self.version = self.version.max(other.version);
        warnings
    }

    /// The plaintext: `label || u32 format || str(owner) || u64 version || pins || u32
    /// room count || (room_id(32) || u64 length || head_hash(32) || u64 highest_epoch)* || u32
    /// chain count || (room_id(32) || str(sender) || device(16) || u64 epoch || u64 counter ||
    /// hash(32) || u64 message_id)* || u8 has_kdf || [salt(16) || u32 m_kib || u32 t || u32
    /// p] || u32 marker count || (room_id(32) || u64 read message id)*`, rooms, chains and
    /// markers in (room id, sender, device, epoch) order, pins as [`Pins::encode`]
    /// (docs/PROTOCOL.md section 11). Format 1 ended before the markers.
    pub fn to_bytes(&self, owner: &str) -> Vec<u8> {
        let mut encoder = Encoder::new(STATE_LABEL);
        encoder.u32(STATE_FORMAT).string(owner).u64(self.version);
        self.pins.encode(&mut encoder);
        encoder.u32(self.logs.len() as u32);
        for (room_id, memory) in &self.logs {
            encoder
                .fixed(&room_id.0)
                .u64(memory.length)
                .fixed(&memory.head_hash)
                .u64(memory.highest_epoch);
        }
        let chain_count: usize = self.chains.values().map(BTreeMap::len).sum();
        encoder.u32(chain_count as u32);
        for (room_id, heads) in &self.chains {
            for (key, head) in heads {
                encoder
                    .fixed(&room_id.0)
                    .string(&key.sender)
                    .fixed(&key.device)
                    .u64(key.epoch)
                    .u64(head.counter)
                    .fixed(&head.hash)
                    .u64(head.message_id.max(0) as u64);
            }
        }
        match &self.kdf {
            None => {
                encoder.u8(0);
            }
            Some(record) => {
                encoder
                    .u8(1)
                    .fixed(&record.salt)
                    .u32(record.params.m_kib)
                    .u32(record.params.t)
                    .u32(record.params.p);
            }
        }
        encoder.u32(self.read_markers.len() as u32);
        for (room_id, read) in &self.read_markers {
            encoder.fixed(&room_id.0).u64(read.max(&0).unsigned_abs());
        }
        encoder.finish()
    }

    /// Records that this account has read `room_id` up to message `id`; a marker only moves
    /// forward. Returns whether it moved (and the state needs saving).
    pub fn mark_read(&mut self, room_id: RoomId, id: i64) -> bool {
        let marker = self.read_markers.entry(room_id).or_insert(0);
        let moved = id > *marker;
        *marker = (*marker).max(id);
        moved
    }

    /// Reads what [`ClientState::to_bytes`] wrote for `owner`.
    ///
    /// # Errors
    /// [`DecodeError`] for a wrong label, format or owner, a truncated field, trailing bytes,
    /// too many rooms, rooms out of order, or a bad flag.
    pub fn from_bytes(owner: &str, bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        decoder.label(STATE_LABEL)?;
        let format = decoder.u32()?;
        if format != STATE_FORMAT && format != STATE_FORMAT_WITHOUT_READ_MARKERS {
            return Err(DecodeError::InvalidValue("client state format"));
        }
        let named = decoder.string()?;
        validate_username(named).map_err(|_| DecodeError::InvalidValue("username"))?;
        if named != owner {
            return Err(DecodeError::InvalidValue("client state owner"));
        }
        let version = decoder.u64()?;
        let pins = Pins::decode(&mut decoder)?;
        let room_count = decoder.u32()? as usize;
        if room_count > MAX_ROOMS {
            return Err(DecodeError::InvalidValue("room count"));
        }
        let mut logs = BTreeMap::new();
        for _ in 0..room_count {
            let room_id = RoomId(decoder.fixed()?);
            let memory = LogMemory {
                length: decoder.u64()?,
                head_hash: decoder.fixed()?,
                highest_epoch: decoder.u64()?,
            };
            if logs
                .last_key_value()
                .is_some_and(|(last, _)| *last >= room_id)
            {
                return Err(DecodeError::InvalidValue("room order"));
            }
            logs.insert(room_id, memory);
        }
        let chain_count = decoder.u32()? as usize;
        if chain_count > MAX_CHAINS {
            return Err(DecodeError::InvalidValue("chain count"));
        }
        let mut chains: BTreeMap<RoomId, BTreeMap<ChainKey, ChainHead>> = BTreeMap::new();
        let mut last: Option<(RoomId, ChainKey)> = None;
        for _ in 0..chain_count {
            let room_id = RoomId(decoder.fixed()?);
            let sender = decoder.string()?.to_owned();
            validate_username(&sender).map_err(|_| DecodeError::InvalidValue("username"))?;
            let key = ChainKey {
                sender,
                device: decoder.fixed()?,
                epoch: decoder.u64()?,
            };
            let head = ChainHead {
                counter: decoder.u64()?,
                hash: decoder.fixed()?,
                message_id: i64::try_from(decoder.u64()?)
                    .map_err(|_| DecodeError::InvalidValue("message id"))?,
            };
            let position = (room_id, key);
            if last.as_ref().is_some_and(|last| *last >= position) {
                return Err(DecodeError::InvalidValue("chain order"));
            }
            chains
                .entry(position.0)
                .or_default()
                .insert(position.1.clone(), head);
            last = Some(position);
        }
        let kdf = match decoder.u8()? {
            0 => None,
            1 => Some(KdfRecord {
                salt: decoder.fixed()?,
                params: KdfParams {
                    m_kib: decoder.u32()?,
                    t: decoder.u32()?,
                    p: decoder.u32()?,
                },
            }),
            _ => return Err(DecodeError::InvalidValue("kdf flag")),
        };
        let mut read_markers = BTreeMap::new();
        if format == STATE_FORMAT {
            let marker_count = decoder.u32()? as usize;
            if marker_count > MAX_ROOMS {
                return Err(DecodeError::InvalidValue("read marker count"));
            }
            for _ in 0..marker_count {
                let room_id = RoomId(decoder.fixed()?);
                let read = i64::try_from(decoder.u64()?)
                    .map_err(|_| DecodeError::InvalidValue("read marker"))?;
                if read_markers
                    .last_key_value()
                    .is_some_and(|(last, _)| *last >= room_id)
                {
                    return Err(DecodeError::InvalidValue("read marker order"));
                }
                read_markers.insert(room_id, read);
            }
        }
        decoder.finish()?;
        Ok(Self {
            version,
            pins,
            logs,
            chains,
            kdf,
            read_markers,
        })
    }

    /// Seals the state of `owner`: `nonce(24) || secretbox(state key, nonce, plaintext)`.
    pub fn seal(&self, key: &StateKey, owner: &str, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        primitives::secretbox_seal_random(&key.0, &self.to_bytes(owner), rng)
    }

    /// Opens a state sealed by [`ClientState::seal`] for `owner`.
    ///
    /// # Errors
    /// [`StateError::Decrypt`] or [`StateError::Malformed`].
    pub fn open(key: &StateKey, owner: &str, sealed: &[u8]) -> Result<Self, StateError> {
        let plaintext =
            primitives::secretbox_open_prefixed(&key.0, sealed).map_err(|_| StateError::Decrypt)?;
        Self::from_bytes(owner, &plaintext).map_err(StateError::Malformed)
    }

    /// Opens the server's copy: a version-2 client state, or a pins blob of protocol version
    /// 1 ([`common::trust::seal_pins`], under `wrap_key`), which becomes version 0 holding
    /// only those pins. Accounts made before the client state existed keep their pins this
    /// way; the next save replaces the old blob.
    ///
    /// # Errors
    /// As [`ClientState::open`] when neither opens.
    pub fn open_remote(
        key: &StateKey,
        wrap_key: &WrapKey,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Self, StateError> {
        match Self::open(key, owner, sealed) {
            Ok(state) => Ok(state),
            Err(error) => match open_pins(wrap_key, owner, sealed) {
                Ok(pins) => Ok(Self {
                    pins,
                    ..Self::default()
                }),
                Err(_) => Err(error),
            },
        }
    }
}

/// Keeps the chains of the room's latest [`CHAIN_EPOCHS_KEPT`] epochs, and of those at most
/// [`MAX_DEVICES_PER_SENDER`] per sender and epoch: each tab writes a chain of its own, and
/// the ones that wrote longest ago will not continue. This keeps the sealed state small (a
/// head is about 100 bytes).
fn prune_devices(heads: &mut BTreeMap<ChainKey, ChainHead>) {
    let newest_epoch = heads.keys().map(|key| key.epoch).max().unwrap_or(0);
    heads.retain(|key, _| key.epoch + CHAIN_EPOCHS_KEPT > newest_epoch);
    let mut by_sender: BTreeMap<(&str, u64), Vec<(i64, &ChainKey)>> = BTreeMap::new();
    for (key, head) in heads.iter() {
        by_sender
            .entry((key.sender.as_str(), key.epoch))
            .or_default()
            .push((head.message_id, key));
    }
    let mut forgotten: Vec<ChainKey> = Vec::new();
    for (_, mut chains) in by_sender {
        if chains.len() > MAX_DEVICES_PER_SENDER {
            chains.sort_unstable();
            let excess = chains.len() - MAX_DEVICES_PER_SENDER;
            forgotten.extend(chains.into_iter().take(excess).map(|(_, key)| key.clone()));
        }
    }
    for key in forgotten {
        heads.remove(&key);
    }
}

/// What the server answered for the client state.
#[derive(Debug, Clone)]
pub enum RemoteState {
    /// It holds none.
    Missing,
    /// It holds one that opened.
    Opened(ClientState),
    /// It holds one that does not open.
    Unreadable(StateError),
}

/// This browser's own copy of the state, with the highest version the server confirmed
/// storing (both kept in IndexedDB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    /// The state.
    pub state: ClientState,
    /// The highest version the server accepted from, or served to, this browser; 0 if none.
    pub confirmed_version: u64,
}

/// The outcome of [`reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The state to work with.
    pub state: ClientState,
    /// What the user must be told.
    pub warnings: Vec<TrustWarning>,
    /// Whether the server's copy should be replaced by [`Reconciled::state`] now (it is
    /// missing, older, or lacks what this browser knows).
    pub upload: bool,
    /// Whether uploads must wait until the user acknowledged the warnings: the server's copy
    /// does not open, and replacing it could destroy what only it holds.
    pub hold_uploads: bool,
}

/// Reconciles this browser's copy (`None` in a browser that never saved one) with the
/// server's at log-in. A server copy that opens is always merged in ([`ClientState::merge`]):
/// it is authentic, whatever its version. It is a rollback when its version is below the one
/// the server already confirmed to this browser.
///
/// | this browser | server | result | warning |
/// |---|---|---|---|
/// | none | none | empty state, uploaded | – |
/// | none | opens | the server's (uploaded if a version-0 pins blob) | – |
/// | none | unreadable | empty state, uploads held | `StateUnreadable` |
/// | confirmed c | none | this browser's, uploaded | `PinsRolledBack` when c > 0 |
/// | any | unreadable | this browser's, uploads held | `StateUnreadable` |
/// | confirmed c | version w | both merged, uploaded if the server's lacked something | `PinsRolledBack` when w < c; `LogForked`, `PinConflict` |
pub fn reconcile(local: Option<LocalCopy>, remote: RemoteState) -> Reconciled {
    let reconciled = |state, warnings, upload| Reconciled {
        state,
        warnings,
        upload,
        hold_uploads: false,
    };
    match (local, remote) {
        (None, RemoteState::Missing) => reconciled(ClientState::default(), Vec::new(), true),
        (None, RemoteState::Opened(remote)) => {
            let upload = remote.version == 0;
            reconciled(remote, Vec::new(), upload)
        }
        (local, RemoteState::Unreadable(_)) => Reconciled {
            state: local.map(|local| local.state).unwrap_or_default(),
            warnings: vec![TrustWarning::StateUnreadable],
            upload: false,
            hold_uploads: true,
        },
        (Some(local), RemoteState::Missing) => {
            let warnings = if local.confirmed_version > 0 {
                vec![TrustWarning::PinsRolledBack {
                    seen_version: local.confirmed_version,
                    served_version: None,
                }]
            } else {
                Vec::new()
            };
            reconciled(local.state, warnings, true)
        }
        (Some(local), RemoteState::Opened(remote)) => {
            let mut warnings = Vec::new();
            if remote.version < local.confirmed_version {
                warnings.push(TrustWarning::PinsRolledBack {
                    seen_version: local.confirmed_version,
                    served_version: Some(remote.version),
                });
            }
            let mut state = local.state;
            warnings.extend(state.merge(&remote));
            let upload = state != remote || remote.version == 0;
            reconciled(state, warnings, upload)
        }
    }
}
