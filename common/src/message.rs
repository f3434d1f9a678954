//! Messages: the signed inner plaintext, padding to 256-byte buckets, secretbox under the
//! epoch key, and every check a reader makes of one message before showing it
//! (docs/PROTOCOL.md section 7). The checks across messages (each sender's chain, the log head
//! a message names) are the client's, in `client::chains`.

use ed25519_dalek::Signature;
use rand_core::CryptoRngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::{self, IdentitySecrets};
use crate::membership::{RoomId, RoomState, SIGNATURE_LEN};
use crate::primitives::{self, NONCE_LEN, TAG_LEN};
use crate::room_key::RoomKey;

/// Domain-separation label the sender's signature covers, before the inner bytes (both
/// layout versions).
pub const MESSAGE_LABEL: &[u8] = b"e2ee-chat/v1/message";
/// Version byte of the inner plaintext layout written now: 2 adds the sender's chain link and
/// the log head. Version 1 (a clock-drawn sequence number, no chain, no log head) is still
/// read, so history written before stays readable.
pub const MESSAGE_VERSION: u8 = 2;
/// Version byte of the previous layout, read but no longer written.
pub const LEGACY_MESSAGE_VERSION: u8 = 1;
/// Domain-separation label of a message's chain hash.
pub const CHAIN_HASH_LABEL: &[u8] = b"e2ee-chat/v2/chain-hash";
/// Length of a device id, in bytes.
pub const DEVICE_ID_LEN: usize = 16;
/// Padded plaintexts are a multiple of this many bytes, so lengths leak little.
pub const PADDING_BUCKET: usize = 256;
/// Largest message body, in bytes.
pub const MAX_BODY_LEN: usize = 16 * 1024;
/// Largest ciphertext a valid message can have, in bytes: what the server accepts.
pub const MAX_CIPHERTEXT_LEN: usize = MAX_BODY_LEN + 2 * PADDING_BUCKET + TAG_LEN;

/// Largest reaction, in bytes of UTF-8 (an emoji with its modifiers fits many times over).
pub const MAX_REACTION_LEN: usize = 32;

/// What a message body holds (docs/PROTOCOL.md section 7.1 gives each body's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (tag 1).
    Text = 1,
    /// An attachment (tag 2): the body is a [`crate::attachment::AttachmentRef`], which
    /// names the file's id, key, layout, ciphertext hash, kind, type, name and preview.
    Attachment = 2,
    /// A text reply to another message (tag 3): `target(32) || bytes(text)`.
    Reply = 3,
    /// A new text for one of the sender's own messages (tag 4): `target(32) || bytes(text)`.
    Edit = 4,
    /// The sender takes back one of their own messages (tag 5): `target(32)`.
    Delete = 5,
    /// A reaction to a message, or its withdrawal (tag 6):
    /// `target(32) || u8 added (1 or 0) || str(reaction)`.
    Reaction = 6,
}

impl MessageKind {
    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(Self::Text),
            2 => Ok(Self::Attachment),
            3 => Ok(Self::Reply),
            4 => Ok(Self::Edit),
            5 => Ok(Self::Delete),
            6 => Ok(Self::Reaction),
            _ => Err(DecodeError::UnknownTag {
                what: "message kind",
                tag,
            }),
        }
    }
}

/// Names a message of the same room: its [`InnerMessage::chain_hash`], which covers its room,
/// epoch, sender, device, chain position and body. Unlike the server's id it is fixed by the
/// sender's signed bytes, so the server cannot point a reply, edit, deletion or reaction at
/// another message.
pub type MessageHash = [u8; 32];

/// A message body, decoded ([`InnerMessage::body`] holds it encoded, [`InnerMessage::kind`]
/// says which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// Text.
    Text(String),
    /// An attachment's description.
    Attachment(Box<crate::attachment::AttachmentRef>),
    /// Text answering `target`.
    Reply {
        /// The message answered.
        target: MessageHash,
        /// The answer.
        text: String,
    },
    /// A new text for `target`; readers apply it only when both have the same sender.
    Edit {
        /// The message edited: a text or a reply.
        target: MessageHash,
        /// Its new text, not empty.
        text: String,
    },
    /// Takes back `target`; readers apply it only when both have the same sender.
    Delete {
        /// The message taken back.
        target: MessageHash,
    },
    /// Adds (or with `added` false withdraws) the sender's `reaction` to `target`.
    Reaction {
        /// The message reacted to.
        target: MessageHash,
        /// Usually one emoji: 1 to [`MAX_REACTION_LEN`] bytes, no control characters.
        reaction: String,
        /// Whether the reaction is added rather than withdrawn.
        added: bool,
    },
}

impl From<&str> for MessageBody {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for MessageBody {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl MessageBody {
    /// The kind tag that goes with this body.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Attachment(_) => MessageKind::Attachment,
            Self::Reply { .. } => MessageKind::Reply,
            Self::Edit { .. } => MessageKind::Edit,
            Self::Delete { .. } => MessageKind::Delete,
            Self::Reaction { .. } => MessageKind::Reaction,
        }
    }

    /// The message this body refers to, for replies, edits, deletions and reactions.
    pub fn target(&self) -> Option<&MessageHash> {
        match self {
            Self::Text(_) | Self::Attachment(_) => None,
            Self::Reply { target, .. }
            | Self::Edit { target, .. }
            | Self::Delete { target }
            | Self::Reaction { target, .. } => Some(target),
        }
    }

    /// The encoded body (section 7.1): text as its UTF-8 bytes, an attachment as
    /// [`crate::attachment::AttachmentRef::to_bytes`], the others as their kind says.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::unlabelled();
        match self {
            Self::Text(text) => return text.as_bytes().to_vec(),
            Self::Attachment(attachment) => return attachment.to_bytes(),
            Self::Reply { target, text } | Self::Edit { target, text } => {
                encoder.fixed(target).bytes(text.as_bytes());
            }
            Self::Delete { target } => {
                encoder.fixed(target);
            }
            Self::Reaction {
                target,
                reaction,
                added,
            } => {
                encoder.fixed(target).u8(u8::from(*added)).string(reaction);
            }
        }
        encoder.finish()
    }

    /// Decodes a body of `kind`.
    ///
    /// # Errors
    /// [`DecodeError`] for a body that does not follow its kind's layout: text that is not
    /// UTF-8, an edit with empty text, an `added` byte other than 0 or 1, a reaction that is
    /// empty, longer than [`MAX_REACTION_LEN`] or holds a control character, trailing bytes.
    pub fn decode(kind: MessageKind, body: &[u8]) -> Result<Self, DecodeError> {
        let text_of = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| DecodeError::InvalidValue("text is not UTF-8"))
        };
        if let MessageKind::Text = kind {
            return text_of(body).map(Self::Text);
        }
        if let MessageKind::Attachment = kind {
            return crate::attachment::AttachmentRef::from_bytes(body)
                .map(|attachment| Self::Attachment(Box::new(attachment)))
                .map_err(|_| DecodeError::InvalidValue("attachment description"));
        }
        let mut decoder = Decoder::new(body);
        let target: MessageHash = decoder.fixed()?;
        let decoded = match kind {
            MessageKind::Reply => Self::Reply {
                target,
                text: text_of(decoder.bytes()?)?,
            },
            MessageKind::Edit => {
                let text = text_of(decoder.bytes()?)?;
                if text.is_empty() {
                    return Err(DecodeError::InvalidValue("an edit with no text"));
                }
                Self::Edit { target, text }
            }
            MessageKind::Delete => Self::Delete { target },
            MessageKind::Reaction => {
                let added = match decoder.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidValue("reaction added flag")),
                };
                let reaction = decoder.string()?.to_owned();
                if !valid_reaction(&reaction) {
                    return Err(DecodeError::InvalidValue("reaction"));
                }
                Self::Reaction {
                    target,
                    reaction,
                    added,
                }
            }
            MessageKind::Text | MessageKind::Attachment => unreachable!("decoded above"),
        };
        decoder.finish()?;
        Ok(decoded)
    }
}

/// Whether `reaction` may be sent: 1 to [`MAX_REACTION_LEN`] bytes, no control characters
/// and not only white space.
pub fn valid_reaction(reaction: &str) -> bool {
    !reaction.trim().is_empty()
        && reaction.len() <= MAX_REACTION_LEN
        && !reaction.chars().any(char::is_control)
}

/// Where a message stands in its sender's chain: one chain per sender, device and epoch of a
/// room, so that a withheld, reordered or replayed message shows as a gap or a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainLink {
    /// The sending browser's random id (16 bytes), so two browsers of one user keep separate
    /// chains.
    pub device: [u8; DEVICE_ID_LEN],
    /// 1 for the device's first message in the epoch, then one more for each.
    pub counter: u64,
    /// [`InnerMessage::chain_hash`] of the device's previous message in the epoch; zeros for
    /// counter 1.
    pub prev_hash: [u8; 32],
}

/// The inner plaintext of a message, as the sender wrote and signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerMessage {
    /// The room.
    pub room_id: RoomId,
    /// The epoch whose key encrypts the message.
    pub epoch: u64,
    /// The sender's username.
    pub sender: String,
    /// The message's place in its sender's chain. For a version-1 message (read only):
    /// device all zeros, `counter` its sequence number, `prev_hash` zeros.
    pub chain: ChainLink,
    /// Length of the membership log the sender had accepted when writing; 0 only for a
    /// version-1 message.
    pub log_length: u64,
    /// Hash of the last entry of that log (`RoomState::head_hash`); zeros for version 1.
    pub log_head: [u8; 32],
    /// Sender's clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// What the body holds.
    pub kind: MessageKind,
    /// The body; UTF-8 for [`MessageKind::Text`].
    pub body: Vec<u8>,
}

impl InnerMessage {
    /// `u8 2 || room_id || u64 epoch || str(sender) || device(16) || u64 counter ||
    /// prev_hash(32) || u64 log_length || log_head(32) || u64 sent_at_ms || u8 kind ||
    /// bytes(body)` (docs/PROTOCOL.md section 7).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::unlabelled();
        encoder
            .u8(MESSAGE_VERSION)
            .fixed(&self.room_id.0)
            .u64(self.epoch)
            .string(&self.sender)
            .fixed(&self.chain.device)
            .u64(self.chain.counter)
            .fixed(&self.chain.prev_hash)
            .u64(self.log_length)
            .fixed(&self.log_head)
            .u64(self.sent_at_ms)
            .u8(self.kind as u8)
            .bytes(&self.body);
        encoder.finish()
    }

    /// Whether this is a version-1 message, which carries no chain link and no log head.
    pub fn is_legacy(&self) -> bool {
        self.log_length == 0
    }

    /// `SHA-256(bytes("e2ee-chat/v2/chain-hash") || inner bytes)`: what the sender's next
    /// message names as `prev_hash`.
    pub fn chain_hash(&self) -> [u8; 32] {
        let mut encoder = Encoder::new(CHAIN_HASH_LABEL);
        encoder.fixed(&self.to_bytes());
        primitives::sha256(&encoder.finish())
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        let version = decoder.u8()?;
        let room_id = RoomId(decoder.fixed()?);
        let epoch = decoder.u64()?;
        let sender = decoder.string()?.to_owned();
        let (chain, log_length, log_head) = match version {
            MESSAGE_VERSION => {
                let chain = ChainLink {
                    device: decoder.fixed()?,
                    counter: decoder.u64()?,
                    prev_hash: decoder.fixed()?,
                };
                let log_length = decoder.u64()?;
                let log_head = decoder.fixed()?;
                if chain.counter == 0 || log_length == 0 {
                    return Err(DecodeError::InvalidValue("chain counter or log length"));
                }
                if (chain.counter == 1) != (chain.prev_hash == [0; 32]) {
                    return Err(DecodeError::InvalidValue("chain start"));
                }
                (chain, log_length, log_head)
            }
            LEGACY_MESSAGE_VERSION => {
                let chain = ChainLink {
                    device: [0; DEVICE_ID_LEN],
                    counter: decoder.u64()?,
                    prev_hash: [0; 32],
                };
                (chain, 0, [0; 32])
            }
            _ => {
                return Err(DecodeError::UnknownTag {
                    what: "message version",
                    tag: version,
                })
            }
        };
        let message = Self {
            room_id,
            epoch,
            sender,
            chain,
            log_length,
            log_head,
            sent_at_ms: decoder.u64()?,
            kind: MessageKind::from_tag(decoder.u8()?)?,
            body: decoder.bytes()?.to_vec(),
        };
        decoder.finish()?;
        Ok(message)
    }

    /// The body as text, for [`MessageKind::Text`].
    pub fn text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => std::str::from_utf8(&self.body).ok(),
            _ => None,
        }
    }

    /// The attachment the body describes, for [`MessageKind::Attachment`].
    pub fn attachment(&self) -> Option<crate::attachment::AttachmentRef> {
        match self.kind {
            MessageKind::Attachment => {
                crate::attachment::AttachmentRef::from_bytes(&self.body).ok()
            }
            _ => None,
        }
    }

    /// The decoded body.
    ///
    /// # Errors
    /// As [`MessageBody::decode`].
    pub fn content(&self) -> Result<MessageBody, DecodeError> {
        MessageBody::decode(self.kind, &self.body)
    }
}

fn signed_message_bytes(inner: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::new(MESSAGE_LABEL);
    encoder.fixed(inner);
    encoder.finish()
}

/// A message as it travels: what the server stores besides its own id, time and sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedMessage {
    /// The room.
    pub room_id: RoomId,
    /// The epoch whose key encrypts it.
    pub epoch: u64,
    /// The XSalsa20 nonce, random per message.
    pub nonce: [u8; NONCE_LEN],
    /// `tag(16) || encrypted padded plaintext`.
    pub ciphertext: Vec<u8>,
}

/// Why a message could not be shown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The body is larger than [`MAX_BODY_LEN`] or does not follow its kind's layout
    /// ([`MessageBody::decode`]): text that is not UTF-8, a malformed attachment
    /// description, reply, edit, deletion or reaction.
    #[error("message body is too large or malformed for its kind")]
    InvalidBody,
    /// No key is held for the message's epoch.
    #[error("no room key for epoch {0}")]
    MissingKey(u64),
    /// It does not decrypt under the epoch key: tampered or wrong key.
    #[error("message does not decrypt: tampered ciphertext or wrong key")]
    Decrypt,
    /// It decrypts but the padded plaintext is malformed.
    #[error("message plaintext is malformed: {0}")]
    Malformed(DecodeError),
    /// The room id inside differs from the envelope's.
    #[error("message was written for another room")]
    WrongRoom,
    /// The epoch inside differs from the envelope's.
    #[error("message was written for another epoch")]
    WrongEpoch,
    /// The sender inside differs from the sender the server reports.
    #[error("message claims sender {inside} but the server reports {claimed}")]
    WrongSender {
        /// Sender reported by the server.
        claimed: String,
        /// Sender written inside the message.
        inside: String,
    },
    /// The sender was not a member during the epoch.
    #[error("{0} was not a member in this epoch")]
    SenderNotMember(String),
    /// The signature does not verify under the sender's key from the log.
    #[error("signature does not verify")]
    BadSignature,
    /// A message to seal names no log head or no chain position (`log_length` or `counter`
    /// is 0, or the chain start and `prev_hash` disagree).
    #[error("a message must name its chain position and the log head it was written at")]
    MissingChainOrHead,
}

/// Pads `content` with zeros to the next multiple of [`PADDING_BUCKET`] (at least one bucket).
fn pad(content: &mut Vec<u8>) {
    let padded_len = content.len().div_ceil(PADDING_BUCKET).max(1) * PADDING_BUCKET;
    content.resize(padded_len, 0);
}

/// Encrypts and signs a message. The padded plaintext is
/// `u32 inner_len || inner || signature(64) || zeros`, a multiple of 256 bytes, and the
/// signature covers `label || inner`.
///
/// # Errors
/// [`MessageError::InvalidBody`] for a body over [`MAX_BODY_LEN`] or one its kind does not
/// decode ([`MessageBody::decode`]);
/// [`MessageError::MissingChainOrHead`] for a counter or log length of 0, or a `prev_hash`
/// that is zeros exactly when the counter is not 1.
pub fn seal_message(
    inner: &InnerMessage,
    key: &RoomKey,
    sender_secrets: &IdentitySecrets,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedMessage, MessageError> {
    if inner.body.len() > MAX_BODY_LEN || inner.content().is_err() {
        return Err(MessageError::InvalidBody);
    }
    if inner.chain.counter == 0
        || inner.log_length == 0
        || (inner.chain.counter == 1) != (inner.chain.prev_hash == [0; 32])
    {
        return Err(MessageError::MissingChainOrHead);
    }
    let inner_bytes = inner.to_bytes();
    let signature = sender_secrets.sign(&signed_message_bytes(&inner_bytes));
    let mut encoder = Encoder::unlabelled();
    encoder.bytes(&inner_bytes).fixed(&signature.to_bytes());
    let mut content = Zeroizing::new(encoder.finish());
    pad(&mut content);
    let nonce: [u8; NONCE_LEN] = primitives::random_bytes(rng);
    Ok(SealedMessage {
        room_id: inner.room_id,
        epoch: inner.epoch,
        nonce,
        ciphertext: primitives::secretbox_encrypt(key.as_bytes(), &nonce, &content),
    })
}

/// Opens a message and makes every check of docs/PROTOCOL.md section 7 that one message
/// allows, in order: decrypts, parses the padding, compares room and epoch with the
/// envelope's and the sender with `claimed_sender`, checks the sender was a member in the
/// epoch, verifies the signature under the sender's key from the log, and checks a text body
/// is UTF-8. Replays, gaps and the log head are checked across messages by the client
/// (`client::chains`).
///
/// # Errors
/// The first [`MessageError`] found.
pub fn open_message(
    sealed: &SealedMessage,
    claimed_sender: &str,
    key: &RoomKey,
    state: &RoomState,
) -> Result<InnerMessage, MessageError> {
    let padded = primitives::secretbox_decrypt(key.as_bytes(), &sealed.nonce, &sealed.ciphertext)
        .map_err(|_| MessageError::Decrypt)?;
    if padded.len() % PADDING_BUCKET != 0 {
        return Err(MessageError::Malformed(DecodeError::InvalidValue(
            "padding",
        )));
    }
    let mut decoder = Decoder::new(&padded);
    let inner_bytes = decoder.bytes().map_err(MessageError::Malformed)?;
    let signature_bytes: [u8; SIGNATURE_LEN] = decoder.fixed().map_err(MessageError::Malformed)?;
    if decoder.remaining().iter().any(|byte| *byte != 0) {
        return Err(MessageError::Malformed(DecodeError::InvalidValue(
            "padding",
        )));
    }
    let inner = InnerMessage::decode(inner_bytes).map_err(MessageError::Malformed)?;
    if inner.room_id != sealed.room_id || sealed.room_id != state.room_id() {
        return Err(MessageError::WrongRoom);
    }
    if inner.epoch != sealed.epoch {
        return Err(MessageError::WrongEpoch);
    }
    if inner.sender != claimed_sender {
        return Err(MessageError::WrongSender {
            claimed: claimed_sender.to_owned(),
            inside: inner.sender,
        });
    }
    // The sender's keys as the log recorded them during this epoch, so messages of members
    // who left later still verify.
    let sender_keys = *state
        .member_keys_in_epoch(&inner.sender, inner.epoch)
        .ok_or_else(|| MessageError::SenderNotMember(inner.sender.clone()))?;
    let signature = Signature::from_bytes(&signature_bytes);
    identity::verify_signature(
        &sender_keys.ed25519,
        &signed_message_bytes(inner_bytes),
        &signature,
    )
    .map_err(|_| MessageError::BadSignature)?;
    if inner.content().is_err() {
        return Err(MessageError::InvalidBody);
    }
    Ok(inner)
}
