//! One log entry: its canonical bytes, its signature, and the hash that chains the next entry
//! to it.

use std::fmt;

use ed25519_dalek::Signature;

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::IdentitySecrets;
use crate::primitives::{self, KEY_LEN};

use super::{LogAction, RoomId, LOG_ENTRY_LABEL, LOG_HASH_LABEL, SIGNATURE_LEN};

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
    pub(super) signature: Signature,
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

    pub(super) fn entry_bytes(&self) -> &[u8] {
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
