//! The room's membership log: signed, hash-chained entries and the replay that computes the
//! member set and roles from them (docs/PROTOCOL.md section 5).
//!
//! The log, not the server, is the authority over who is in a room. Every client replays it
//! from the genesis entry, checking each signature, each `prev` hash and each author's
//! authority at that point; the server runs the same replay before storing an entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ed25519_dalek::Signature;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::{self, validate_username, IdentitySecrets, MemberKeys};
use crate::primitives::{self, KEY_LEN};

/// Domain-separation label that starts every log entry.
pub const LOG_ENTRY_LABEL: &[u8] = b"e2ee-chat/v1/log-entry";
/// Domain-separation label of the hash that chains entries.
pub const LOG_HASH_LABEL: &[u8] = b"e2ee-chat/v1/log-hash";
/// Domain-separation label of the room id derivation.
pub const ROOM_ID_LABEL: &[u8] = b"e2ee-chat/v1/room-id";
/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Largest encrypted room metadata a create entry may carry, in bytes.
pub const MAX_METADATA_LEN: usize = 4096;

/// A room's identifier: 32 bytes derived from its genesis entry, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub [u8; KEY_LEN]);

impl RoomId {
    /// `SHA-256(label || creator || creator x25519 || creator ed25519 || room_nonce)`.
    ///
    /// Every input is a field of the genesis entry, which the creator signs, so the server can
    /// neither swap the genesis of a room nor make two rooms share an id.
    pub fn derive(creator: &str, creator_keys: &MemberKeys, room_nonce: &[u8; KEY_LEN]) -> Self {
        let mut encoder = Encoder::new(ROOM_ID_LABEL);
        encoder.string(creator);
        creator_keys.encode(&mut encoder);
        encoder.fixed(room_nonce);
        Self(primitives::sha256(&encoder.finish()))
    }

    /// Lowercase hex, as used in URLs and JSON.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, DecodeError> {
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DecodeError::InvalidValue("room id"))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.to_hex())
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(|_| serde::de::Error::custom("room id must be 64 hex digits"))
    }
}

/// A member's role. Order matters: owner > admin > member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read and write.
    Member = 1,
    /// May also add members.
    Admin = 2,
    /// Created the room; may also appoint admins.
    Owner = 3,
}

impl Role {
    /// The tag byte of this role in the canonical encoding.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// Reads a role tag byte.
    ///
    /// # Errors
    /// [`DecodeError::UnknownTag`].
    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(Self::Member),
            2 => Ok(Self::Admin),
            3 => Ok(Self::Owner),
            _ => Err(DecodeError::UnknownTag { what: "role", tag }),
        }
    }

    /// Lowercase name, as shown to users and stored by the server.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

/// What a log entry does. Tags are stable: new actions take new tags and old ones never
/// change meaning. Tags 3 and up are reserved for remove, ban, set role, rotate, policy,
/// invite, leave and delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogAction {
    /// Genesis (tag 1): the creator becomes owner and commits to the epoch 0 room key.
    Create {
        /// 32 random bytes that make the room id unique.
        room_nonce: [u8; KEY_LEN],
        /// The creator's public keys.
        owner_keys: MemberKeys,
        /// `SHA-256(label || room_id || 0 || K_0)`, see [`crate::room_key::key_commitment`].
        key_commitment: [u8; KEY_LEN],
        /// Room name and topic, encrypted under `K_0` ([`crate::room_key::seal_metadata`]).
        encrypted_metadata: Vec<u8>,
    },
    /// Adds a member (tag 2) with the keys the author saw for them.
    AddMember {
        /// The new member's username.
        username: String,
        /// The new member's public keys as the author verified them.
        keys: MemberKeys,
        /// The role the new member gets; never [`Role::Owner`].
        role: Role,
    },
}

impl LogAction {
    /// The tag byte of this action.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Create { .. } => 1,
            Self::AddMember { .. } => 2,
        }
    }

    fn encode(&self, encoder: &mut Encoder) {
        encoder.u8(self.tag());
        match self {
            Self::Create {
                room_nonce,
                owner_keys,
                key_commitment,
                encrypted_metadata,
            } => {
                encoder.fixed(room_nonce);
                owner_keys.encode(encoder);
                encoder.fixed(key_commitment).bytes(encrypted_metadata);
            }
            Self::AddMember {
                username,
                keys,
                role,
            } => {
                encoder.string(username);
                keys.encode(encoder);
                encoder.u8(role.tag());
            }
        }
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match decoder.u8()? {
            1 => {
                let room_nonce = decoder.fixed()?;
                let owner_keys = MemberKeys::decode(decoder)?;
                let key_commitment = decoder.fixed()?;
                let encrypted_metadata = decoder.bytes()?.to_vec();
                if encrypted_metadata.len() > MAX_METADATA_LEN {
                    return Err(DecodeError::InvalidValue("metadata length"));
                }
                Ok(Self::Create {
                    room_nonce,
                    owner_keys,
                    key_commitment,
                    encrypted_metadata,
                })
            }
            2 => {
                let username = decoder.string()?.to_owned();
                validate_username(&username).map_err(|_| DecodeError::InvalidValue("username"))?;
                let keys = MemberKeys::decode(decoder)?;
                let role = Role::from_tag(decoder.u8()?)?;
                Ok(Self::AddMember {
                    username,
                    keys,
                    role,
                })
            }
            tag => Err(DecodeError::UnknownTag {
                what: "log action",
                tag,
            }),
        }
    }
}

/// One entry of a membership log, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The room this entry belongs to.
    pub room_id: RoomId,
    /// Position in the log, from 0 (genesis).
    pub seq: u64,
    /// Hash of the previous signed entry ([`SignedLogEntry::hash`]); zeros for genesis.
    pub prev: [u8; KEY_LEN],
    /// Username of the member who made and signed the entry.
    pub author: String,
    /// Author's clock when signing, milliseconds since the Unix epoch (informational).
    pub time_ms: u64,
    /// What the entry does.
    pub action: LogAction,
}

impl LogEntry {
    /// Canonical bytes: `label || room_id || seq || prev || author || time_ms || action`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::new(LOG_ENTRY_LABEL);
        encoder
            .fixed(&self.room_id.0)
            .u64(self.seq)
            .fixed(&self.prev)
            .string(&self.author)
            .u64(self.time_ms);
        self.action.encode(&mut encoder);
        encoder.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        decoder.label(LOG_ENTRY_LABEL)?;
        let room_id = RoomId(decoder.fixed()?);
        let seq = decoder.u64()?;
        let prev = decoder.fixed()?;
        let author = decoder.string()?.to_owned();
        let time_ms = decoder.u64()?;
        let action = LogAction::decode(&mut decoder)?;
        decoder.finish()?;
        Ok(Self {
            room_id,
            seq,
            prev,
            author,
            time_ms,
            action,
        })
    }

    /// Signs the entry with the author's Ed25519 key.
    pub fn sign(self, author_secrets: &IdentitySecrets) -> SignedLogEntry {
        let entry_bytes = self.to_bytes();
        let signature = author_secrets.sign(&entry_bytes);
        let mut bytes = entry_bytes;
        bytes.extend_from_slice(&signature.to_bytes());
        SignedLogEntry {
            entry: self,
            signature,
            bytes,
        }
    }
}

/// A log entry with its signature, as stored and sent: `entry bytes || signature(64)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedLogEntry {
    entry: LogEntry,
    signature: Signature,
    bytes: Vec<u8>,
}

impl SignedLogEntry {
    /// Parses the wire form. The signature is checked by [`RoomState::apply`], which knows
    /// the author's key at that point of the log.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not one well-formed entry.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < SIGNATURE_LEN {
            return Err(DecodeError::Truncated);
        }
        let (entry_bytes, signature_bytes) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let entry = LogEntry::decode(entry_bytes)?;
        let signature = Signature::from_slice(signature_bytes)
            .map_err(|_| DecodeError::InvalidValue("signature"))?;
        Ok(Self {
            entry,
            signature,
            bytes: bytes.to_vec(),
        })
    }

    /// The entry.
    pub fn entry(&self) -> &LogEntry {
        &self.entry
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `SHA-256(label || u32 length || signed entry bytes)`: what the next entry's `prev` holds.
    pub fn hash(&self) -> [u8; KEY_LEN] {
        let mut encoder = Encoder::new(LOG_HASH_LABEL);
        encoder.bytes(&self.bytes);
        primitives::sha256(&encoder.finish())
    }

    fn entry_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - SIGNATURE_LEN]
    }
}

impl fmt::Debug for SignedLogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedLogEntry")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// Why a log entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogErrorKind {
    /// The log has no entries.
    #[error("the log is empty")]
    Empty,
    /// The bytes of an entry do not parse.
    #[error("malformed entry: {0}")]
    Malformed(#[from] DecodeError),
    /// The first entry is not a create entry, or a create entry appears later.
    #[error("only the first entry may create the room")]
    MisplacedCreate,
    /// The room id is not the one derived from the genesis entry.
    #[error("room id does not match the genesis entry")]
    RoomIdMismatch,
    /// The genesis entry's author and keys do not describe one creator.
    #[error("genesis entry is not signed by the creator it names")]
    GenesisAuthorMismatch,
    /// The entry's sequence number is not the next one.
    #[error("expected sequence number {expected}, found {found}")]
    SequenceGap {
        /// The sequence number the entry should carry.
        expected: u64,
        /// The one it carries.
        found: u64,
    },
    /// `prev` is not the hash of the previous entry.
    #[error("prev hash does not match the previous entry")]
    PrevHashMismatch,
    /// The author is not a member at this point of the log.
    #[error("author {0} is not a member")]
    AuthorNotMember(String),
    /// The signature does not verify under the author's key from the log.
    #[error("signature of {0} does not verify")]
    BadSignature(String),
    /// The author's role does not allow this action.
    #[error("{author} ({role}) may not {action}")]
    NotAuthorized {
        /// Who tried.
        author: String,
        /// Their role at that point.
        role: &'static str,
        /// What they tried.
        action: &'static str,
    },
    /// An add entry names someone who is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(String),
}

/// A refused log: which entry (by position) failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("membership log entry {index} refused: {kind}")]
pub struct LogError {
    /// Zero-based position of the entry that failed.
    pub index: u64,
    /// What was wrong with it.
    pub kind: LogErrorKind,
}

/// A member as the log describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Public keys recorded when the member was added (or created the room).
    pub keys: MemberKeys,
    /// Current role.
    pub role: Role,
    /// Sequence number of the entry that added the member.
    pub added_at_seq: u64,
}

/// What is known of one epoch of the room key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    /// The commitment to the epoch's room key.
    pub key_commitment: [u8; KEY_LEN],
    /// Everyone who was a member at some point during the epoch.
    pub members: BTreeSet<String>,
}

/// The state of a room after replaying its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    room_id: RoomId,
    members: BTreeMap<String, MemberRecord>,
    epochs: Vec<EpochRecord>,
    encrypted_metadata: Vec<u8>,
    head_hash: [u8; KEY_LEN],
    length: u64,
}

/// Replays a whole log from genesis.
///
/// # Errors
/// [`LogError`] for the first entry that fails a check; nothing after it is considered.
pub fn replay(entries: &[SignedLogEntry]) -> Result<RoomState, LogError> {
    let (genesis, rest) = entries.split_first().ok_or(LogError {
        index: 0,
        kind: LogErrorKind::Empty,
    })?;
    let mut state = RoomState::from_genesis(genesis).map_err(|kind| LogError { index: 0, kind })?;
    for entry in rest {
        let index = state.length;
        state
            .apply(entry)
            .map_err(|kind| LogError { index, kind })?;
    }
    Ok(state)
}

/// Parses and replays a log given as wire bytes, one entry per element.
///
/// # Errors
/// As [`replay`], with [`LogErrorKind::Malformed`] for an entry that does not parse.
pub fn replay_bytes<B: AsRef<[u8]>>(entries: &[B]) -> Result<RoomState, LogError> {
    let parsed = entries
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            SignedLogEntry::from_bytes(bytes.as_ref()).map_err(|error| LogError {
                index: index as u64,
                kind: LogErrorKind::Malformed(error),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    replay(&parsed)
}

impl RoomState {
    /// Checks a genesis entry and starts the state from it.
    ///
    /// # Errors
    /// [`LogErrorKind`] for the failed check.
    pub fn from_genesis(genesis: &SignedLogEntry) -> Result<Self, LogErrorKind> {
        let entry = genesis.entry();
        let LogAction::Create {
            room_nonce,
            owner_keys,
            key_commitment,
            encrypted_metadata,
        } = &entry.action
        else {
            return Err(LogErrorKind::MisplacedCreate);
        };
        if entry.seq != 0 {
            return Err(LogErrorKind::SequenceGap {
                expected: 0,
                found: entry.seq,
            });
        }
        if entry.prev != [0u8; KEY_LEN] {
            return Err(LogErrorKind::PrevHashMismatch);
        }
        validate_username(&entry.author)
            .map_err(|_| LogErrorKind::Malformed(DecodeError::InvalidValue("username")))?;
        if RoomId::derive(&entry.author, owner_keys, room_nonce) != entry.room_id {
            return Err(LogErrorKind::RoomIdMismatch);
        }
        identity::verify_signature(
            &owner_keys.ed25519,
            genesis.entry_bytes(),
            &genesis.signature,
        )
        .map_err(|_| LogErrorKind::GenesisAuthorMismatch)?;
        let mut members = BTreeMap::new();
        members.insert(
            entry.author.clone(),
            MemberRecord {
                keys: *owner_keys,
                role: Role::Owner,
                added_at_seq: 0,
            },
        );
        Ok(Self {
            room_id: entry.room_id,
            members,
            epochs: vec![EpochRecord {
                key_commitment: *key_commitment,
                members: BTreeSet::from([entry.author.clone()]),
            }],
            encrypted_metadata: encrypted_metadata.clone(),
            head_hash: genesis.hash(),
            length: 1,
        })
    }

    /// Checks one more entry against the state and applies it.
    ///
    /// On error the state is unchanged.
    ///
    /// # Errors
    /// [`LogErrorKind`] for the failed check.
    pub fn apply(&mut self, signed: &SignedLogEntry) -> Result<(), LogErrorKind> {
        let entry = signed.entry();
        if entry.room_id != self.room_id {
            return Err(LogErrorKind::RoomIdMismatch);
        }
        if entry.seq != self.length {
            return Err(LogErrorKind::SequenceGap {
                expected: self.length,
                found: entry.seq,
            });
        }
        if entry.prev != self.head_hash {
            return Err(LogErrorKind::PrevHashMismatch);
        }
        let author = self
            .members
            .get(&entry.author)
            .ok_or_else(|| LogErrorKind::AuthorNotMember(entry.author.clone()))?;
        identity::verify_signature(
            &author.keys.ed25519,
            signed.entry_bytes(),
            &signed.signature,
        )
        .map_err(|_| LogErrorKind::BadSignature(entry.author.clone()))?;
        let author_role = author.role;
        match &entry.action {
            LogAction::Create { .. } => return Err(LogErrorKind::MisplacedCreate),
            LogAction::AddMember {
                username,
                keys,
                role,
            } => {
                let allowed = match role {
                    Role::Member => author_role >= Role::Admin,
                    Role::Admin => author_role == Role::Owner,
                    Role::Owner => false,
                };
                if !allowed {
                    return Err(LogErrorKind::NotAuthorized {
                        author: entry.author.clone(),
                        role: author_role.as_str(),
                        action: match role {
                            Role::Member => "add a member",
                            Role::Admin => "add an admin",
                            Role::Owner => "add an owner",
                        },
                    });
                }
                if self.members.contains_key(username) {
                    return Err(LogErrorKind::AlreadyMember(username.clone()));
                }
                self.members.insert(
                    username.clone(),
                    MemberRecord {
                        keys: *keys,
                        role: *role,
                        added_at_seq: entry.seq,
                    },
                );
                if let Some(current) = self.epochs.last_mut() {
                    current.members.insert(username.clone());
                }
            }
        }
        self.head_hash = signed.hash();
        self.length += 1;
        Ok(())
    }

    /// The room id.
    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    /// Current members by username.
    pub fn members(&self) -> &BTreeMap<String, MemberRecord> {
        &self.members
    }

    /// One current member.
    pub fn member(&self, username: &str) -> Option<&MemberRecord> {
        self.members.get(username)
    }

    /// The current epoch number.
    pub fn current_epoch(&self) -> u64 {
        self.epochs.len() as u64 - 1
    }

    /// What the log says of `epoch`, if it exists.
    pub fn epoch(&self, epoch: u64) -> Option<&EpochRecord> {
        usize::try_from(epoch)
            .ok()
            .and_then(|index| self.epochs.get(index))
    }

    /// Whether `username` was a member at some point during `epoch`.
    pub fn was_member_in_epoch(&self, username: &str, epoch: u64) -> bool {
        self.epoch(epoch)
            .is_some_and(|record| record.members.contains(username))
    }

    /// The room name and topic, encrypted under the epoch 0 key.
    pub fn encrypted_metadata(&self) -> &[u8] {
        &self.encrypted_metadata
    }

    /// Hash of the last entry: the `prev` of the next one.
    pub fn head_hash(&self) -> [u8; KEY_LEN] {
        self.head_hash
    }

    /// Number of entries replayed: the `seq` of the next one.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Builds the next entry (unsigned) with this state's room id, sequence and `prev`.
    pub fn next_entry(&self, author: &str, time_ms: u64, action: LogAction) -> LogEntry {
        LogEntry {
            room_id: self.room_id,
            seq: self.length,
            prev: self.head_hash,
            author: author.to_owned(),
            time_ms,
            action,
        }
    }
}
