//! Roles (owner > admin > member) and the room policy: history visibility, media limits and
//! the message rate limit, with their byte encodings.

use serde::{Deserialize, Serialize};

use crate::encoding::{DecodeError, Decoder, Encoder};

/// A member's role. Order matters: owner > admin > member.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub(super) fn encode(&self, encoder: &mut Encoder) {
        encoder
            .u8(self.history as u8)
            .u32(self.allowed_media)
            .u64(self.max_attachment_bytes)
            .u32(self.messages_per_minute);
    }

    pub(super) fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
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

/// When a room's key is rotated on schedule, for post-compromise recovery: a key that leaked
/// (a stolen device, a copied browser profile) stops opening new messages after a while even
/// if nobody leaves. The first admin's client to see the current epoch due rotates it.
///
/// Megolm, the group ratchet of Matrix, rotates its outbound sessions after one week or 100
/// messages by default; this room key is shared by every member rather than per sender, so the
/// default count here is higher. Set by admins with [`super::LogAction::SetRotationSchedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    /// Age after which an epoch is due, milliseconds counted from the signed time of the
    /// entry that started it; between [`RotationSchedule::MIN_AGE_MS`] and
    /// [`RotationSchedule::MAX_AGE_MS`].
    pub max_age_ms: u64,
    /// Number of messages after which an epoch is due (once it is
    /// [`RotationSchedule::MIN_AGE_MS`] old); between [`RotationSchedule::MIN_MESSAGES`] and
    /// [`RotationSchedule::MAX_MESSAGES`].
    pub max_messages: u32,
}

impl Default for RotationSchedule {
    fn default() -> Self {
        Self {
            max_age_ms: 7 * Self::DAY_MS,
            max_messages: 1_000,
        }
    }
}

impl RotationSchedule {
    /// One day, in milliseconds.
    pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    /// Shortest allowed `max_age_ms`: one hour. It is also the youngest an epoch may be to be
    /// rotated for its message count, so a flood of messages causes at most one rotation an
    /// hour.
    pub const MIN_AGE_MS: u64 = 60 * 60 * 1000;
    /// Longest allowed `max_age_ms`: 365 days.
    pub const MAX_AGE_MS: u64 = 365 * Self::DAY_MS;
    /// Smallest allowed `max_messages`.
    pub const MIN_MESSAGES: u32 = 10;
    /// Largest allowed `max_messages`.
    pub const MAX_MESSAGES: u32 = 1_000_000;

    /// Checks the bounds above.
    ///
    /// # Errors
    /// A lowercase description of the value out of range.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !(Self::MIN_AGE_MS..=Self::MAX_AGE_MS).contains(&self.max_age_ms) {
            return Err("rotation age must be between one hour and 365 days");
        }
        if !(Self::MIN_MESSAGES..=Self::MAX_MESSAGES).contains(&self.max_messages) {
            return Err("rotation message count must be between 10 and 1,000,000");
        }
        Ok(())
    }

    pub(super) fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.max_age_ms).u32(self.max_messages);
    }

    pub(super) fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            max_age_ms: decoder.u64()?,
            max_messages: decoder.u32()?,
        })
    }
}
