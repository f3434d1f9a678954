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

/// How much history a member added later may read (set by admins, see [`RoomPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryPolicy {
    /// A new member gets only the current epoch key (tag 1).
    SinceJoining = 1,
    /// Distributors also seal the earlier epoch keys to a new member (tag 2).
    FullHistory = 2,
}

/// Bit of [`RoomPolicy::allowed_media`] for images.
pub const MEDIA_IMAGES: u32 = 1;
/// Bit of [`RoomPolicy::allowed_media`] for video.
pub const MEDIA_VIDEO: u32 = 2;
/// Bit of [`RoomPolicy::allowed_media`] for audio.
pub const MEDIA_AUDIO: u32 = 4;
/// Bit of [`RoomPolicy::allowed_media`] for other files.
pub const MEDIA_FILES: u32 = 8;

/// Room settings that admins set in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPolicy {
    /// History visibility for members added later.
    pub history: HistoryPolicy,
    /// Allowed attachment kinds, a bit set of `MEDIA_*`.
    pub allowed_media: u32,
    /// Largest attachment, in bytes.
    pub max_attachment_bytes: u64,
    /// Messages one member may post per minute; 0 means no limit. The server enforces it.
    pub messages_per_minute: u32,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        Self {
            history: HistoryPolicy::SinceJoining,
            allowed_media: MEDIA_IMAGES | MEDIA_VIDEO | MEDIA_AUDIO | MEDIA_FILES,
            max_attachment_bytes: 25 * 1024 * 1024,
            messages_per_minute: 120,
        }
    }
}

impl RoomPolicy {
    fn encode(&self, encoder: &mut Encoder) {
        encoder
            .u8(self.history as u8)
            .u32(self.allowed_media)
            .u64(self.max_attachment_bytes)
            .u32(self.messages_per_minute);
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let history = match decoder.u8()? {
            1 => HistoryPolicy::SinceJoining,
            2 => HistoryPolicy::FullHistory,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "history policy",
                    tag,
                })
            }
        };
        Ok(Self {
            history,
            allowed_media: decoder.u32()?,
            max_attachment_bytes: decoder.u64()?,
            messages_per_minute: decoder.u32()?,
        })
    }
}

/// What a log entry does. Tags are stable: new actions take new tags and old ones never
/// change meaning.
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
    /// Removes a member (tag 3); a rotation should follow.
    RemoveMember {
        /// Who is removed.
        username: String,
    },
    /// Removes a member if present and bars them from being added again (tag 4).
    Ban {
        /// Who is banned.
        username: String,
    },
    /// Changes a member's role (tag 5); owner only, never to owner.
    SetRole {
        /// Whose role changes.
        username: String,
        /// The new role.
        role: Role,
    },
    /// Starts a new epoch with a fresh room key (tag 6).
    Rotate {
        /// The new epoch: the current one plus 1.
        epoch: u64,
        /// Commitment to the new epoch's key.
        key_commitment: [u8; KEY_LEN],
        /// The room metadata encrypted under the new key.
        encrypted_metadata: Vec<u8>,
    },
    /// Sets the room's policy (tag 7).
    SetPolicy {
        /// The new policy.
        policy: RoomPolicy,
    },
    /// Publishes an invite (tag 8): the hash of a secret token, never the token itself.
    Invite {
        /// `SHA-256(label || token)`, see [`invite_token_hash`].
        token_hash: [u8; KEY_LEN],
        /// When the invite stops working, milliseconds since the Unix epoch.
        expires_at_ms: u64,
        /// How many join requests it admits.
        max_uses: u32,
    },
    /// The author leaves the room (tag 9); a rotation should follow.
    Leave,
    /// Replaces the encrypted name and topic, under the current epoch key (tag 10).
    SetMetadata {
        /// The metadata encrypted under the current epoch's key.
        encrypted_metadata: Vec<u8>,
    },
    /// The server deletes the room's stored messages (tag 11); a rotation should follow.
    ClearHistory,
    /// The room is deleted (tag 12); no entry may follow.
    DeleteRoom,
}

impl LogAction {
    /// The tag byte of this action.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Create { .. } => 1,
            Self::AddMember { .. } => 2,
            Self::RemoveMember { .. } => 3,
            Self::Ban { .. } => 4,
            Self::SetRole { .. } => 5,
            Self::Rotate { .. } => 6,
            Self::SetPolicy { .. } => 7,
            Self::Invite { .. } => 8,
            Self::Leave => 9,
            Self::SetMetadata { .. } => 10,
            Self::ClearHistory => 11,
            Self::DeleteRoom => 12,
        }
    }

    /// A short name, for messages and the server's logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create the room",
            Self::AddMember { .. } => "add a member",
            Self::RemoveMember { .. } => "remove a member",
            Self::Ban { .. } => "ban a user",
            Self::SetRole { .. } => "change a role",
            Self::Rotate { .. } => "rotate the room key",
            Self::SetPolicy { .. } => "change the room policy",
            Self::Invite { .. } => "create an invite",
            Self::Leave => "leave",
            Self::SetMetadata { .. } => "rename the room",
            Self::ClearHistory => "clear the history",
            Self::DeleteRoom => "delete the room",
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
            Self::RemoveMember { username } | Self::Ban { username } => {
                encoder.string(username);
            }
            Self::SetRole { username, role } => {
                encoder.string(username).u8(role.tag());
            }
            Self::Rotate {
                epoch,
                key_commitment,
                encrypted_metadata,
            } => {
                encoder
                    .u64(*epoch)
                    .fixed(key_commitment)
                    .bytes(encrypted_metadata);
            }
            Self::SetPolicy { policy } => policy.encode(encoder),
            Self::Invite {
                token_hash,
                expires_at_ms,
                max_uses,
            } => {
                encoder.fixed(token_hash).u64(*expires_at_ms).u32(*max_uses);
            }
            Self::SetMetadata { encrypted_metadata } => {
                encoder.bytes(encrypted_metadata);
            }
            Self::Leave | Self::ClearHistory | Self::DeleteRoom => {}
        }
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let username = |decoder: &mut Decoder<'_>| -> Result<String, DecodeError> {
            let username = decoder.string()?.to_owned();
            validate_username(&username).map_err(|_| DecodeError::InvalidValue("username"))?;
            Ok(username)
        };
        let metadata = |decoder: &mut Decoder<'_>| -> Result<Vec<u8>, DecodeError> {
            let bytes = decoder.bytes()?.to_vec();
            if bytes.len() > MAX_METADATA_LEN {
                return Err(DecodeError::InvalidValue("metadata length"));
            }
            Ok(bytes)
        };
        match decoder.u8()? {
            1 => Ok(Self::Create {
                room_nonce: decoder.fixed()?,
                owner_keys: MemberKeys::decode(decoder)?,
                key_commitment: decoder.fixed()?,
                encrypted_metadata: metadata(decoder)?,
            }),
            2 => Ok(Self::AddMember {
                username: username(decoder)?,
                keys: MemberKeys::decode(decoder)?,
                role: Role::from_tag(decoder.u8()?)?,
            }),
            3 => Ok(Self::RemoveMember {
                username: username(decoder)?,
            }),
            4 => Ok(Self::Ban {
                username: username(decoder)?,
            }),
            5 => Ok(Self::SetRole {
                username: username(decoder)?,
                role: Role::from_tag(decoder.u8()?)?,
            }),
            6 => Ok(Self::Rotate {
                epoch: decoder.u64()?,
                key_commitment: decoder.fixed()?,
                encrypted_metadata: metadata(decoder)?,
            }),
            7 => Ok(Self::SetPolicy {
                policy: RoomPolicy::decode(decoder)?,
            }),
            8 => Ok(Self::Invite {
                token_hash: decoder.fixed()?,
                expires_at_ms: decoder.u64()?,
                max_uses: decoder.u32()?,
            }),
            9 => Ok(Self::Leave),
            10 => Ok(Self::SetMetadata {
                encrypted_metadata: metadata(decoder)?,
            }),
            11 => Ok(Self::ClearHistory),
            12 => Ok(Self::DeleteRoom),
            tag => Err(DecodeError::UnknownTag {
                what: "log action",
                tag,
            }),
        }
    }
}

/// Domain-separation label of invite token hashes.
pub const INVITE_TOKEN_LABEL: &[u8] = b"e2ee-chat/v1/invite-token";

/// `SHA-256(label || token)`: what an invite entry publishes instead of the token.
pub fn invite_token_hash(token: &[u8]) -> [u8; KEY_LEN] {
    let mut encoder = Encoder::new(INVITE_TOKEN_LABEL);
    encoder.bytes(token);
    primitives::sha256(&encoder.finish())
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
    /// The entry names someone who is not a member.
    #[error("{0} is not a member")]
    NotAMember(String),
    /// An add entry names a banned user, or a ban names one already banned.
    #[error("{0} is banned from this room")]
    Banned(String),
    /// The entry targets its own author (use leave instead).
    #[error("an entry cannot target its own author")]
    TargetsAuthor,
    /// The owner tried to leave (the owner deletes the room instead).
    #[error("the owner cannot leave the room")]
    OwnerCannotLeave,
    /// A rotate entry does not start the next epoch.
    #[error("expected epoch {expected}, found {found}")]
    EpochGap {
        /// The epoch the rotation should start.
        expected: u64,
        /// The one it names.
        found: u64,
    },
    /// An invite with no uses, or one published twice.
    #[error("invalid invite: {0}")]
    InvalidInvite(&'static str),
    /// An entry after the room was deleted.
    #[error("the room was deleted")]
    RoomDeleted,
    /// The server served fewer entries than this client has already seen.
    #[error("the log was truncated: {seen} entries were seen before, {served} served now")]
    Truncated {
        /// Entries this client saw before.
        seen: u64,
        /// Entries served now.
        served: u64,
    },
    /// The served log does not contain the entry this client saw at that position.
    #[error("the log was rewritten: entry {0} differs from the one seen before")]
    Forked(u64),
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
    /// The epoch that was current when the member was added.
    pub joined_epoch: u64,
}

/// What is known of one epoch of the room key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    /// The commitment to the epoch's room key.
    pub key_commitment: [u8; KEY_LEN],
    /// Everyone who was a member at some point during the epoch, with their keys: whose
    /// messages of this epoch a reader may accept.
    pub members: BTreeMap<String, MemberKeys>,
}

/// An invite published in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// How many join requests it admits.
    pub max_uses: u32,
    /// The admin who published it.
    pub created_by: String,
}

/// The state of a room after replaying its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    room_id: RoomId,
    members: BTreeMap<String, MemberRecord>,
    epochs: Vec<EpochRecord>,
    banned: BTreeSet<String>,
    policy: RoomPolicy,
    invites: BTreeMap<[u8; KEY_LEN], InviteRecord>,
    metadata_epoch: u64,
    encrypted_metadata: Vec<u8>,
    rotation_pending: bool,
    deleted: bool,
    entry_hashes: Vec<[u8; KEY_LEN]>,
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
                joined_epoch: 0,
            },
        );
        Ok(Self {
            room_id: entry.room_id,
            members,
            epochs: vec![EpochRecord {
                key_commitment: *key_commitment,
                members: BTreeMap::from([(entry.author.clone(), *owner_keys)]),
            }],
            banned: BTreeSet::new(),
            policy: RoomPolicy::default(),
            invites: BTreeMap::new(),
            metadata_epoch: 0,
            encrypted_metadata: encrypted_metadata.clone(),
            rotation_pending: false,
            deleted: false,
            entry_hashes: vec![genesis.hash()],
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
        if self.deleted {
            return Err(LogErrorKind::RoomDeleted);
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
        let not_authorized = || LogErrorKind::NotAuthorized {
            author: entry.author.clone(),
            role: author_role.as_str(),
            action: entry.action.name(),
        };
        let require = |needed: Role| {
            if author_role >= needed {
                Ok(())
            } else {
                Err(not_authorized())
            }
        };
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
                    return Err(not_authorized());
                }
                if self.members.contains_key(username) {
                    return Err(LogErrorKind::AlreadyMember(username.clone()));
                }
                if self.banned.contains(username) {
                    return Err(LogErrorKind::Banned(username.clone()));
                }
                let epoch = self.current_epoch();
                self.members.insert(
                    username.clone(),
                    MemberRecord {
                        keys: *keys,
                        role: *role,
                        added_at_seq: entry.seq,
                        joined_epoch: epoch,
                    },
                );
                if let Some(current) = self.epochs.last_mut() {
                    current.members.insert(username.clone(), *keys);
                }
            }
            LogAction::RemoveMember { username } => {
                require(Role::Admin)?;
                self.check_can_remove(&entry.author, author_role, username, &not_authorized)?;
                self.members.remove(username);
                self.rotation_pending = true;
            }
            LogAction::Ban { username } => {
                require(Role::Admin)?;
                if self.banned.contains(username) {
                    return Err(LogErrorKind::Banned(username.clone()));
                }
                if username == &entry.author {
                    return Err(LogErrorKind::TargetsAuthor);
                }
                if self.members.contains_key(username) {
                    self.check_can_remove(&entry.author, author_role, username, &not_authorized)?;
                    self.members.remove(username);
                    self.rotation_pending = true;
                }
                self.banned.insert(username.clone());
            }
            LogAction::SetRole { username, role } => {
                require(Role::Owner)?;
                if username == &entry.author {
                    return Err(LogErrorKind::TargetsAuthor);
                }
                if *role == Role::Owner {
                    return Err(not_authorized());
                }
                let member = self
                    .members
                    .get_mut(username)
                    .ok_or_else(|| LogErrorKind::NotAMember(username.clone()))?;
                member.role = *role;
            }
            LogAction::Rotate {
                epoch,
                key_commitment,
                encrypted_metadata,
            } => {
                require(Role::Admin)?;
                let expected = self.current_epoch() + 1;
                if *epoch != expected {
                    return Err(LogErrorKind::EpochGap {
                        expected,
                        found: *epoch,
                    });
                }
                self.epochs.push(EpochRecord {
                    key_commitment: *key_commitment,
                    members: self
                        .members
                        .iter()
                        .map(|(name, record)| (name.clone(), record.keys))
                        .collect(),
                });
                self.metadata_epoch = *epoch;
                self.encrypted_metadata = encrypted_metadata.clone();
                self.rotation_pending = false;
            }
            LogAction::SetPolicy { policy } => {
                require(Role::Admin)?;
                self.policy = *policy;
            }
            LogAction::Invite {
                token_hash,
                expires_at_ms,
                max_uses,
            } => {
                require(Role::Admin)?;
                if *max_uses == 0 {
                    return Err(LogErrorKind::InvalidInvite(
                        "an invite needs at least one use",
                    ));
                }
                if self.invites.contains_key(token_hash) {
                    return Err(LogErrorKind::InvalidInvite(
                        "this invite was already published",
                    ));
                }
                self.invites.insert(
                    *token_hash,
                    InviteRecord {
                        expires_at_ms: *expires_at_ms,
                        max_uses: *max_uses,
                        created_by: entry.author.clone(),
                    },
                );
            }
            LogAction::Leave => {
                if author_role == Role::Owner {
                    return Err(LogErrorKind::OwnerCannotLeave);
                }
                self.members.remove(&entry.author);
                self.rotation_pending = true;
            }
            LogAction::SetMetadata { encrypted_metadata } => {
                require(Role::Admin)?;
                self.metadata_epoch = self.current_epoch();
                self.encrypted_metadata = encrypted_metadata.clone();
            }
            LogAction::ClearHistory => {
                require(Role::Admin)?;
                self.rotation_pending = true;
            }
            LogAction::DeleteRoom => {
                require(Role::Owner)?;
                self.deleted = true;
            }
        }
        self.head_hash = signed.hash();
        self.entry_hashes.push(self.head_hash);
        self.length += 1;
        Ok(())
    }

    /// The hash of entry `seq`, if the log has it.
    pub fn hash_at(&self, seq: u64) -> Option<[u8; KEY_LEN]> {
        usize::try_from(seq)
            .ok()
            .and_then(|index| self.entry_hashes.get(index))
            .copied()
    }

    /// Checks that this log extends one seen before, of `seen_length` entries ending in
    /// `seen_head`: a server cannot roll a client back or show it another history.
    ///
    /// # Errors
    /// [`LogErrorKind::Truncated`] or [`LogErrorKind::Forked`].
    pub fn check_extends(
        &self,
        seen_length: u64,
        seen_head: &[u8; KEY_LEN],
    ) -> Result<(), LogErrorKind> {
        if seen_length == 0 {
            return Ok(());
        }
        if self.length < seen_length {
            return Err(LogErrorKind::Truncated {
                seen: seen_length,
                served: self.length,
            });
        }
        if self.hash_at(seen_length - 1).as_ref() != Some(seen_head) {
            return Err(LogErrorKind::Forked(seen_length - 1));
        }
        Ok(())
    }

    /// Whether `author` (with `author_role`) may remove `target`: someone else, a current
    /// member, of a lower role.
    fn check_can_remove(
        &self,
        author: &str,
        author_role: Role,
        target: &str,
        not_authorized: &dyn Fn() -> LogErrorKind,
    ) -> Result<(), LogErrorKind> {
        if target == author {
            return Err(LogErrorKind::TargetsAuthor);
        }
        let member = self
            .members
            .get(target)
            .ok_or_else(|| LogErrorKind::NotAMember(target.to_owned()))?;
        if member.role >= author_role {
            return Err(not_authorized());
        }
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

    /// The keys `username` had while a member during `epoch`, if they were one.
    pub fn member_keys_in_epoch(&self, username: &str, epoch: u64) -> Option<&MemberKeys> {
        self.epoch(epoch)?.members.get(username)
    }

    /// Whether `username` was a member at some point during `epoch`.
    pub fn was_member_in_epoch(&self, username: &str, epoch: u64) -> bool {
        self.member_keys_in_epoch(username, epoch).is_some()
    }

    /// Users barred from being added again.
    pub fn banned(&self) -> &BTreeSet<String> {
        &self.banned
    }

    /// The room policy.
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    /// Published invites by token hash.
    pub fn invites(&self) -> &BTreeMap<[u8; KEY_LEN], InviteRecord> {
        &self.invites
    }

    /// The latest room metadata and the epoch whose key encrypts it.
    pub fn encrypted_metadata(&self) -> (u64, &[u8]) {
        (self.metadata_epoch, &self.encrypted_metadata)
    }

    /// Whether a member left or was removed (or history was cleared) since the last
    /// rotation: until an admin rotates, the former member could read new messages.
    pub fn rotation_pending(&self) -> bool {
        self.rotation_pending
    }

    /// Whether the owner deleted the room.
    pub fn deleted(&self) -> bool {
        self.deleted
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
