//! Room keys and epochs: commitments, key envelopes (a sealed box plus the distributor's
//! signature), encrypted room metadata, and creating a room (docs/PROTOCOL.md section 6).

use std::fmt;

use ed25519_dalek::Signature;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::{self, IdentitySecrets, MemberKeys, X25519PublicKey};
use crate::membership::{
    HistoryPolicy, LogAction, LogEntry, NewEpoch, Role, RoomId, RoomState, SignedLogEntry,
};
use crate::primitives::{self, PrimitiveError, KEY_LEN};
use crate::wire::{Base64, Base64Array};

/// Domain-separation label of the key commitment.
pub const KEY_COMMIT_LABEL: &[u8] = b"e2ee-chat/v1/key-commit";
/// Domain-separation label of the key envelope signature.
pub const KEY_ENVELOPE_LABEL: &[u8] = b"e2ee-chat/v1/key-envelope";
/// Domain-separation label of an envelope signature that also covers the log head.
pub const KEY_ENVELOPE_LABEL_V2: &[u8] = b"e2ee-chat/v2/key-envelope";
/// Domain-separation label of the encrypted room metadata.
pub const METADATA_LABEL: &[u8] = b"e2ee-chat/v1/room-metadata";
/// Length of the sealed plaintext `room_id(32) || epoch(8) || key(32)`, in bytes.
pub const ENVELOPE_PLAINTEXT_LEN: usize = KEY_LEN + 8 + KEY_LEN;
/// Longest room name, in bytes of UTF-8.
pub const MAX_ROOM_NAME_LEN: usize = 100;

/// A 32-byte XSalsa20-Poly1305 room key for one epoch, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RoomKey([u8; KEY_LEN]);

impl RoomKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(primitives::random_bytes(rng))
    }

    /// Wraps 32 known bytes (tests and worked examples).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomKey([redacted])")
    }
}

/// `SHA-256(label || room_id(32) || epoch(u64) || key(32))`: published in the log so that
/// nobody can hand out a wrong key for an epoch.
pub fn key_commitment(room_id: &RoomId, epoch: u64, key: &RoomKey) -> [u8; KEY_LEN] {
    let mut encoder = Encoder::new(KEY_COMMIT_LABEL);
    encoder.fixed(&room_id.0).u64(epoch).fixed(&key.0);
    primitives::sha256(&encoder.finish())
}

/// Why a key envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// The envelope is for another room.
    #[error("key envelope is for another room")]
    WrongRoom,
    /// The envelope names an epoch the log does not have.
    #[error("key envelope names unknown epoch {0}")]
    UnknownEpoch(u64),
    /// The envelope is addressed to someone else.
    #[error("key envelope is addressed to {0}")]
    NotForMe(String),
    /// The recipient is not a current member.
    #[error("recipient {0} is not a member")]
    RecipientNotMember(String),
    /// The recipient key is not the one the log records for the recipient.
    #[error("recipient key does not match the membership log")]
    RecipientKeyMismatch,
    /// The distributor is not a member of the room for that epoch.
    #[error("distributor {0} is not a member")]
    DistributorNotMember(String),
    /// The distributor's signature does not verify.
    #[error("distributor signature does not verify")]
    BadSignature,
    /// The sealed box does not open.
    #[error("sealed key does not open: {0}")]
    Unseal(PrimitiveError),
    /// The sealed plaintext is not `room_id || epoch || key` for this envelope.
    #[error("sealed key is malformed or names another room or epoch")]
    MalformedPlaintext,
    /// The key does not match the epoch's commitment in the log.
    #[error("room key does not match the commitment in the log")]
    CommitmentMismatch,
    /// A key could not be sealed (low-order recipient key).
    #[error("cannot seal to this key: {0}")]
    Seal(PrimitiveError),
    /// The room shares only history since joining, and this epoch is older than the
    /// recipient's membership.
    #[error("this room does not share history from before {0} joined")]
    HistoryNotShared(String),
    /// The envelope names a longer log than the one it is checked against: fetch the log
    /// and check again (still longer after a fresh fetch: the server withholds entries).
    #[error("key envelope names a log of {0} entries, longer than the one held")]
    LogAhead(u64),
    /// The log the envelope names has another entry at that position than the one it is
    /// checked against: the distributor and the reader were shown different logs.
    #[error("key envelope was sealed at another membership log (entry {0} differs)")]
    LogForked(u64),
    /// A log head with a length of 0.
    #[error("key envelope names an empty log")]
    EmptyLogHead,
}

/// A room key sealed to one member, signed by the member who sealed it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// The room.
    pub room_id: RoomId,
    /// The epoch of the sealed key.
    pub epoch: u64,
    /// Username of the recipient.
    pub recipient: String,
    /// The recipient's X25519 key the key was sealed to (32 bytes).
    pub recipient_x25519: Base64Array<32>,
    /// Username of the member who sealed and signed.
    pub distributor: String,
    /// `crypto_box_seal(recipient_x25519, room_id || epoch || key)`, 120 bytes.
    pub sealed: Base64,
    /// Distributor's Ed25519 signature over [`KeyEnvelope::signed_bytes`], 64 bytes.
    pub signature: Base64,
    /// The log the distributor had accepted when sealing: its length and head hash. Absent
    /// only in envelopes of protocol version 1, which are signed without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<EnvelopeLogHead>,
}

/// The membership log an envelope's distributor had accepted (docs/PROTOCOL.md section 6).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeLogHead {
    /// Number of entries, at least 1.
    pub length: u64,
    /// `RoomState::head_hash` of that log.
    pub hash: Base64Array<32>,
}

impl fmt::Debug for KeyEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEnvelope")
            .field("room_id", &self.room_id)
            .field("epoch", &self.epoch)
            .field("recipient", &self.recipient)
            .field("distributor", &self.distributor)
            .finish_non_exhaustive()
    }
}

impl KeyEnvelope {
    /// `label || room_id || epoch || recipient || recipient_x25519 || distributor || sealed`,
    /// then `|| u64 log_length || log_head(32)` with the label
    /// `e2ee-chat/v2/key-envelope` when the envelope names its log head (protocol 2), or
    /// with `e2ee-chat/v1/key-envelope` and nothing after `sealed` (protocol 1).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let label = if self.log_head.is_some() {
            KEY_ENVELOPE_LABEL_V2
        } else {
            KEY_ENVELOPE_LABEL
        };
        let mut encoder = Encoder::new(label);
        encoder
            .fixed(&self.room_id.0)
            .u64(self.epoch)
            .string(&self.recipient)
            .fixed(&self.recipient_x25519.0)
            .string(&self.distributor)
            .bytes(&self.sealed.0);
        if let Some(head) = &self.log_head {
            encoder.u64(head.length).fixed(&head.hash.0);
        }
        encoder.finish()
    }

    /// Compares the log head the envelope names with `state`.
    ///
    /// # Errors
    /// [`EnvelopeError::LogAhead`], [`EnvelopeError::LogForked`] or
    /// [`EnvelopeError::EmptyLogHead`].
    pub fn check_log_head(&self, state: &RoomState) -> Result<(), EnvelopeError> {
        let Some(head) = &self.log_head else {
            return Ok(());
        };
        if head.length == 0 {
            return Err(EnvelopeError::EmptyLogHead);
        }
        if head.length > state.length() {
            return Err(EnvelopeError::LogAhead(head.length));
        }
        if state.hash_at(head.length - 1) != Some(head.hash.0) {
            return Err(EnvelopeError::LogForked(head.length - 1));
        }
        Ok(())
    }

    /// Seals `key` for `recipient` (whose keys are taken from the log) and signs it.
    ///
    /// # Errors
    /// [`EnvelopeError::RecipientNotMember`], [`EnvelopeError::Seal`].
    pub fn seal(
        state: &RoomState,
        epoch: u64,
        key: &RoomKey,
        recipient: &str,
        distributor: &str,
        distributor_secrets: &IdentitySecrets,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, EnvelopeError> {
        let recipient_keys = state
            .member(recipient)
            .ok_or_else(|| EnvelopeError::RecipientNotMember(recipient.to_owned()))?
            .keys;
        let room_id = state.room_id();
        let log_head = EnvelopeLogHead {
            length: state.length(),
            hash: Base64Array(state.head_hash()),
        };
        Self::seal_to_key(
            room_id,
            epoch,
            key,
            recipient,
            &recipient_keys.x25519,
            distributor,
            distributor_secrets,
            Some(log_head),
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn seal_to_key(
        room_id: RoomId,
        epoch: u64,
        key: &RoomKey,
        recipient: &str,
        recipient_x25519: &X25519PublicKey,
        distributor: &str,
        distributor_secrets: &IdentitySecrets,
        log_head: Option<EnvelopeLogHead>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, EnvelopeError> {
        let mut plaintext = Encoder::unlabelled();
        plaintext.fixed(&room_id.0).u64(epoch).fixed(&key.0);
        let mut plaintext = plaintext.finish();
        let sealed = primitives::sealed_box_seal(recipient_x25519.as_bytes(), &plaintext, rng)
            .map_err(EnvelopeError::Seal);
        plaintext.zeroize();
        let mut envelope = Self {
            room_id,
            epoch,
            recipient: recipient.to_owned(),
            recipient_x25519: Base64Array(*recipient_x25519.as_bytes()),
            distributor: distributor.to_owned(),
            sealed: Base64(sealed?),
            signature: Base64::default(),
            log_head,
        };
        envelope.signature = Base64(
            distributor_secrets
                .sign(&envelope.signed_bytes())
                .to_bytes()
                .to_vec(),
        );
        Ok(envelope)
    }

    /// The checks anyone holding the log can make, the server included: room, epoch,
    /// recipient membership and key, that the distributor is a member or was one during the
    /// epoch, and the distributor's signature (under their keys of that time). The log head
    /// it names is checked apart ([`KeyEnvelope::check_log_head`]): by the server against its
    /// log, and by [`KeyEnvelope::open`] once the key is known to be the right one.
    ///
    /// # Errors
    /// The first [`EnvelopeError`] found.
    pub fn verify(&self, state: &RoomState) -> Result<(), EnvelopeError> {
        if self.room_id != state.room_id() {
            return Err(EnvelopeError::WrongRoom);
        }
        if state.epoch(self.epoch).is_none() {
            return Err(EnvelopeError::UnknownEpoch(self.epoch));
        }
        let recipient = state
            .member(&self.recipient)
            .ok_or_else(|| EnvelopeError::RecipientNotMember(self.recipient.clone()))?;
        if recipient.keys.x25519.as_bytes() != &self.recipient_x25519.0 {
            return Err(EnvelopeError::RecipientKeyMismatch);
        }
        if self.epoch < recipient.joined_epoch
            && state.policy().history == HistoryPolicy::SinceJoining
        {
            return Err(EnvelopeError::HistoryNotShared(self.recipient.clone()));
        }
        // The distributor must be a member now, or have been one during the envelope's epoch
        // (so held its key): envelopes a member sealed before being removed stay valid, and
        // history they handed out is not lost. Their keys as the log recorded them then.
        let distributor_keys = state
            .member(&self.distributor)
            .map(|member| member.keys)
            .or_else(|| {
                state
                    .member_keys_in_epoch(&self.distributor, self.epoch)
                    .copied()
            })
            .ok_or_else(|| EnvelopeError::DistributorNotMember(self.distributor.clone()))?;
        let signature =
            Signature::from_slice(&self.signature.0).map_err(|_| EnvelopeError::BadSignature)?;
        identity::verify_signature(&distributor_keys.ed25519, &self.signed_bytes(), &signature)
            .map_err(|_| EnvelopeError::BadSignature)
    }

    /// Verifies the envelope, opens it as `me`, and checks the key against the commitment.
    ///
    /// # Errors
    /// The first [`EnvelopeError`] found.
    pub fn open(
        &self,
        state: &RoomState,
        me: &str,
        my_secrets: &IdentitySecrets,
    ) -> Result<RoomKey, EnvelopeError> {
        if self.recipient != me {
            return Err(EnvelopeError::NotForMe(self.recipient.clone()));
        }
        self.verify(state)?;
        if my_secrets.public_keys().x25519.as_bytes() != &self.recipient_x25519.0 {
            return Err(EnvelopeError::RecipientKeyMismatch);
        }
        let plaintext = primitives::sealed_box_open(my_secrets.x25519_secret(), &self.sealed.0)
            .map_err(EnvelopeError::Unseal)?;
        let mut decoder = Decoder::new(&plaintext);
        let parsed = (|| -> Result<([u8; KEY_LEN], u64, [u8; KEY_LEN]), DecodeError> {
            let room = decoder.fixed()?;
            let epoch = decoder.u64()?;
            let key = decoder.fixed()?;
            Ok((room, epoch, key))
        })();
        let (room, epoch, key_bytes) = parsed.map_err(|_| EnvelopeError::MalformedPlaintext)?;
        if room != self.room_id.0 || epoch != self.epoch || !decoder.remaining().is_empty() {
            return Err(EnvelopeError::MalformedPlaintext);
        }
        let key = RoomKey(key_bytes);
        let expected = state
            .epoch(self.epoch)
            .ok_or(EnvelopeError::UnknownEpoch(self.epoch))?
            .key_commitment;
        if !bool::from(key_commitment(&self.room_id, self.epoch, &key).ct_eq(&expected)) {
            return Err(EnvelopeError::CommitmentMismatch);
        }
        // Last: an envelope that fails here is authentic and holds the right key, so a fork
        // it reports is the distributor's view of the log, not anyone's made-up head.
        self.check_log_head(state)?;
        Ok(key)
    }
}

/// Longest room topic, in bytes of UTF-8.
pub const MAX_TOPIC_LEN: usize = 500;

/// Room metadata that only members can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomMetadata {
    /// The room's display name, at most [`MAX_ROOM_NAME_LEN`] bytes; may be empty only for
    /// a direct conversation, which clients show by the other member's name.
    pub name: String,
    /// A topic line, at most [`MAX_TOPIC_LEN`] bytes.
    pub topic: String,
    /// Whether this is a direct conversation between two people.
    pub direct: bool,
}

impl RoomMetadata {
    /// A group room with a name and no topic.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Checks the name and topic.
    ///
    /// # Errors
    /// [`MetadataError::InvalidName`] or [`MetadataError::InvalidTopic`].
    pub fn validate(&self) -> Result<(), MetadataError> {
        if !(self.direct && self.name.is_empty()) {
            validate_room_name(&self.name)?;
        }
        if self.topic.len() > MAX_TOPIC_LEN {
            return Err(MetadataError::InvalidTopic);
        }
        Ok(())
    }
}

/// Why room metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// It does not decrypt under the key.
    #[error("room metadata does not decrypt")]
    Decrypt,
    /// It decrypts but is malformed or bound to another room or epoch.
    #[error("room metadata is malformed")]
    Malformed,
    /// The name is empty or too long.
    #[error("room name must be 1-100 bytes")]
    InvalidName,
    /// The topic is too long.
    #[error("room topic must be at most 500 bytes")]
    InvalidTopic,
}

/// Encrypts metadata under an epoch key: `nonce(24) || secretbox(key, nonce, label ||
/// room_id || epoch || name || topic || u8 direct)`.
pub fn seal_metadata(
    key: &RoomKey,
    room_id: &RoomId,
    epoch: u64,
    metadata: &RoomMetadata,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let mut encoder = Encoder::new(METADATA_LABEL);
    encoder
        .fixed(&room_id.0)
        .u64(epoch)
        .string(&metadata.name)
        .string(&metadata.topic)
        .u8(u8::from(metadata.direct));
    primitives::secretbox_seal_random(&key.0, &encoder.finish(), rng)
}

/// Opens metadata made by [`seal_metadata`] and checks its room and epoch.
///
/// # Errors
/// [`MetadataError`].
pub fn open_metadata(
    key: &RoomKey,
    room_id: &RoomId,
    epoch: u64,
    sealed: &[u8],
) -> Result<RoomMetadata, MetadataError> {
    let plaintext =
        primitives::secretbox_open_prefixed(&key.0, sealed).map_err(|_| MetadataError::Decrypt)?;
    let mut decoder = Decoder::new(&plaintext);
    let parsed = (|| -> Result<([u8; KEY_LEN], u64, RoomMetadata), DecodeError> {
        decoder.label(METADATA_LABEL)?;
        let room = decoder.fixed()?;
        let epoch = decoder.u64()?;
        let name = decoder.string()?.to_owned();
        let topic = decoder.string()?.to_owned();
        let direct = match decoder.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::InvalidValue("direct flag")),
        };
        Ok((
            room,
            epoch,
            RoomMetadata {
                name,
                topic,
                direct,
            },
        ))
    })();
    let (room, sealed_epoch, metadata) = parsed.map_err(|_| MetadataError::Malformed)?;
    if room != room_id.0 || sealed_epoch != epoch || !decoder.remaining().is_empty() {
        return Err(MetadataError::Malformed);
    }
    metadata.validate()?;
    Ok(metadata)
}

/// Checks a room name: 1 to [`MAX_ROOM_NAME_LEN`] bytes, no leading or trailing white space.
///
/// # Errors
/// [`MetadataError::InvalidName`].
pub fn validate_room_name(name: &str) -> Result<(), MetadataError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_ROOM_NAME_LEN || trimmed.len() != name.len() {
        Err(MetadataError::InvalidName)
    } else {
        Ok(())
    }
}

/// A freshly created room: its genesis entry, its epoch 0 key, the creator's own envelope.
#[derive(Debug)]
pub struct NewRoom {
    /// The signed genesis entry.
    pub genesis: SignedLogEntry,
    /// The replayed state (the creator alone, as owner).
    pub state: RoomState,
    /// `K_0`.
    pub key: RoomKey,
    /// `K_0` sealed to the creator, so any of the creator's browsers can read the room.
    pub creator_envelope: KeyEnvelope,
}

/// Creates a room: a random nonce and `K_0`, the genesis entry with the commitment and the
/// encrypted metadata, and the creator's key envelope.
///
/// # Errors
/// [`MetadataError`] for a bad name or topic.
pub fn create_room(
    creator: &str,
    creator_secrets: &IdentitySecrets,
    metadata: &RoomMetadata,
    time_ms: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<NewRoom, MetadataError> {
    metadata.validate()?;
    let room_nonce: [u8; KEY_LEN] = primitives::random_bytes(rng);
    let owner_keys = creator_secrets.public_keys();
    let room_id = RoomId::derive(creator, &owner_keys, &room_nonce);
    let key = RoomKey::generate(rng);
    let genesis = LogEntry {
        room_id,
        seq: 0,
        prev: [0u8; KEY_LEN],
        author: creator.to_owned(),
        time_ms,
        action: LogAction::Create {
            room_nonce,
            owner_keys,
            key_commitment: key_commitment(&room_id, 0, &key),
            encrypted_metadata: seal_metadata(&key, &room_id, 0, metadata, rng),
        },
    }
    .sign(creator_secrets);
    let state = RoomState::from_genesis(&genesis).map_err(|_| MetadataError::Malformed)?;
    let creator_envelope =
        KeyEnvelope::seal(&state, 0, &key, creator, creator, creator_secrets, rng)
            .map_err(|_| MetadataError::Malformed)?;
    Ok(NewRoom {
        genesis,
        state,
        key,
        creator_envelope,
    })
}

/// A rotation ready to append: the signed entry that starts the new epoch, the new key, and
/// the state after it.
#[derive(Debug)]
pub struct Rotation {
    /// The signed entry: a rotate entry, or the change that starts the epoch with it.
    pub entry: SignedLogEntry,
    /// The new epoch's key.
    pub key: RoomKey,
    /// The state with the entry applied.
    pub state: RoomState,
}

/// What an entry that starts a new epoch does besides: nothing (a plain rotation), or a
/// membership change or history clearing that takes effect together with the new key
/// (docs/PROTOCOL.md section 5, tags 6 and 13 to 16).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per administrative action and consumed at once"
)]
pub enum EpochChange {
    /// A rotation alone (tag 6).
    Rotate,
    /// Removes a member (tag 13).
    RemoveMember(String),
    /// Bans a current member (tag 14).
    Ban(String),
    /// Adds a member who joins in the new epoch (tag 15).
    AddMember {
        /// The new member.
        username: String,
        /// Their keys as the author verified them.
        keys: MemberKeys,
        /// Their role; never owner.
        role: Role,
    },
    /// Clears the stored history (tag 16).
    ClearHistory,
}

impl EpochChange {
    /// The log action that makes this change and starts `new_epoch`.
    pub fn into_action(self, new_epoch: NewEpoch) -> LogAction {
        match self {
            Self::Rotate => LogAction::Rotate {
                epoch: new_epoch.epoch,
                key_commitment: new_epoch.key_commitment,
                encrypted_metadata: new_epoch.encrypted_metadata,
            },
            Self::RemoveMember(username) => LogAction::RemoveMemberAndRotate {
                username,
                new_epoch,
            },
            Self::Ban(username) => LogAction::BanAndRotate {
                username,
                new_epoch,
            },
            Self::AddMember {
                username,
                keys,
                role,
            } => LogAction::AddMemberAndRotate {
                username,
                keys,
                role,
                new_epoch,
            },
            Self::ClearHistory => LogAction::ClearHistoryAndRotate { new_epoch },
        }
    }
}

/// Starts the next epoch: a fresh key, its commitment, and the metadata re-encrypted under it,
/// in a rotate entry signed by `author` (an admin or the owner).
///
/// # Errors
/// The [`crate::membership::LogErrorKind`] that [`RoomState::apply`] gives.
pub fn rotate(
    state: &RoomState,
    author: &str,
    author_secrets: &IdentitySecrets,
    metadata: &RoomMetadata,
    time_ms: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Rotation, crate::membership::LogErrorKind> {
    rotate_with(
        state,
        EpochChange::Rotate,
        author,
        author_secrets,
        Some(metadata),
        time_ms,
        rng,
    )
}

/// Starts the next epoch together with `change`: a fresh key and its commitment, and the
/// metadata re-encrypted under the new key, or, when `metadata` is `None`, none (the room
/// keeps its current metadata: what a member who is not an admin sends when completing a
/// pending rotation). The entry is signed by `author` and applied to a copy of `state`.
///
/// # Errors
/// The [`crate::membership::LogErrorKind`] that [`RoomState::apply`] gives, e.g. when the
/// author may not make the change.
pub fn rotate_with(
    state: &RoomState,
    change: EpochChange,
    author: &str,
    author_secrets: &IdentitySecrets,
    metadata: Option<&RoomMetadata>,
    time_ms: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Rotation, crate::membership::LogErrorKind> {
    let epoch = state.current_epoch() + 1;
    let room_id = state.room_id();
    let key = RoomKey::generate(rng);
    let new_epoch = NewEpoch {
        epoch,
        key_commitment: key_commitment(&room_id, epoch, &key),
        encrypted_metadata: metadata
            .map(|metadata| seal_metadata(&key, &room_id, epoch, metadata, rng))
            .unwrap_or_default(),
    };
    let entry = state
        .next_entry(author, time_ms, change.into_action(new_epoch))
        .sign(author_secrets);
    let mut next = state.clone();
    next.apply(&entry)?;
    Ok(Rotation {
        entry,
        key,
        state: next,
    })
}

/// The envelopes a key holder hands a member: the current epoch's key, and with the
/// full-history policy every earlier one it holds. `keys` maps epochs to the keys held.
///
/// # Errors
/// [`EnvelopeError`] when the recipient is not a member or their key cannot be sealed to.
pub fn envelopes_for_member(
    state: &RoomState,
    keys: &std::collections::BTreeMap<u64, RoomKey>,
    recipient: &str,
    distributor: &str,
    distributor_secrets: &IdentitySecrets,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<KeyEnvelope>, EnvelopeError> {
    let member = state
        .member(recipient)
        .ok_or_else(|| EnvelopeError::RecipientNotMember(recipient.to_owned()))?;
    let first_epoch = match state.policy().history {
        HistoryPolicy::FullHistory => 0,
        HistoryPolicy::SinceJoining => member.joined_epoch,
    };
    keys.range(first_epoch..=state.current_epoch())
        .map(|(epoch, key)| {
            KeyEnvelope::seal(
                state,
                *epoch,
                key,
                recipient,
                distributor,
                distributor_secrets,
                rng,
            )
        })
        .collect()
}
