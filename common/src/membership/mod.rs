//! The room's membership log: signed, hash-chained entries and the replay that computes the
//! member set and roles from them (docs/PROTOCOL.md section 5).
//!
//! The log, not the server, is the authority over who is in a room. Every client replays it
//! from the genesis entry, checking each signature, each `prev` hash and each author's
//! authority at that point; the server runs the same replay before storing an entry.
//!
//! - [`room_id`]: the room id.
//! - [`policy`]: roles and the room policy.
//! - [`action`]: the actions and their encodings.
//! - [`entry`]: log entries, signed and hashed.
//! - [`error`]: why an entry or a log was refused.
//! - [`state`]: the replayed state, with one method per action.

pub mod action;
pub mod entry;
pub mod error;
pub mod policy;
pub mod room_id;
pub mod state;

pub use action::{invite_token_hash, LogAction, NewEpoch, INVITE_TOKEN_LABEL};
pub use entry::{LogEntry, SignedLogEntry};
pub use error::{LogError, LogErrorKind};
pub use policy::{
    HistoryPolicy, Role, RoomPolicy, RotationSchedule, MEDIA_AUDIO, MEDIA_FILES, MEDIA_IMAGES,
    MEDIA_VIDEO,
};
pub use room_id::RoomId;
pub use state::{replay, replay_bytes, EpochRecord, InviteRecord, MemberRecord, RoomState};

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
