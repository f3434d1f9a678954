//! Trust warnings: what the client tells the user when the server served less, older or
//! other data than this account has already seen. Each names its cause in plain words first
//! (`log rolled back`, `log forked`, `pins rolled back`, ...), so a person and a test read the
//! same thing; the browser shows them in one `data-testid="trust-warning"` element per room and
//! one for the account until the user acknowledges them.

use common::membership::RoomId;

use crate::state::KdfRecord;

/// One reason to distrust what the server served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustWarning {
    /// The server's copy of the client state is older than the one this browser holds, or
    /// missing although this browser saved one: pins, verification marks and seen log heads
    /// would have been forgotten.
    #[error("{}", pins_rolled_back_text(*seen_version, *served_version))]
    PinsRolledBack {
        /// The version this browser holds.
        seen_version: u64,
        /// The version the server served; `None` when it served nothing.
        served_version: Option<u64>,
    },
    /// The server's copy of the client state does not open under this account's key or is
    /// malformed. It is not overwritten until the user acknowledges this.
    #[error("client state unreadable: the server's copy of your contact keys and seen rooms does not decrypt; it is not replaced until you acknowledge this")]
    StateUnreadable,
    /// A room's log is shorter than one this account accepted before.
    #[error("log rolled back: the server served {served_length} entries of this room's membership log, but {seen_length} were accepted before")]
    LogRolledBack {
        /// The room.
        room_id: RoomId,
        /// Entries accepted before.
        seen_length: u64,
        /// Entries served now.
        served_length: u64,
    },
    /// A room's log does not contain an entry this account accepted before at that
    /// position, or two browsers of this account accepted different entries there.
    #[error("log forked: entry {position} of this room's membership log differs from the one accepted before")]
    LogForked {
        /// The room.
        room_id: RoomId,
        /// The position (0-based) of the first entry known to differ.
        position: u64,
    },
    /// The log records other keys for this user than the user's own: the server (or whoever
    /// made the entry) substituted them, and others would seal to an impostor.
    #[error("own key missing from log: this room's membership log records other keys for you than your own; nothing is sent here")]
    OwnKeyMissingFromLog {
        /// The room.
        room_id: RoomId,
    },
    /// The server said the room was deleted, and no signed entry of its log says so.
    #[error("room deleted by the server: the server says this room was deleted, but no signed entry of its log says so")]
    ServerSaysRoomDeleted {
        /// The room.
        room_id: RoomId,
    },
    /// Messages of a sender's chain are missing between two that arrived: the server did not
    /// deliver them.
    #[error("messages withheld: {count} of {sender}'s messages in this room were not delivered")]
    MessagesWithheld {
        /// The room.
        room_id: RoomId,
        /// The sender.
        sender: String,
        /// How many are missing.
        count: u64,
    },
    /// A message was delivered again as a new one.
    #[error("message replayed: the server delivered a message of {sender} again as a new one")]
    MessageReplayed {
        /// The room.
        room_id: RoomId,
        /// The sender.
        sender: String,
    },
    /// A sender's messages arrived in another order than they were written, or do not chain.
    #[error(
        "messages reordered: {sender}'s messages do not follow each other as they were written"
    )]
    MessagesReordered {
        /// The room.
        room_id: RoomId,
        /// The sender.
        sender: String,
    },
    /// Another of this account's browsers pinned other keys for a contact than this one did.
    /// This browser's pin is kept; the user should compare safety numbers.
    #[error("pins differ: another of your browsers pinned other keys for {username}; this browser's pin was kept, compare safety numbers with {username}")]
    PinConflict {
        /// The contact.
        username: String,
    },
    /// The pre-login answer named a salt or Argon2id parameters other than the ones this
    /// browser recorded for the account, and no password change made here explains it.
    #[error("KDF parameters changed: the server asks for a different salt or Argon2id cost (m = {} KiB, t = {}) than this browser recorded for {username}; if you did not change your password in another browser, do not log in", presented.params.m_kib, presented.params.t)]
    KdfParametersChanged {
        /// The account.
        username: String,
        /// What the server presented.
        presented: KdfRecord,
    },
}

fn pins_rolled_back_text(seen_version: u64, served_version: Option<u64>) -> String {
    match served_version {
        Some(served) => format!(
            "pins rolled back: the server served version {served} of your contact keys and seen rooms, older than version {seen_version} in this browser; this browser's copy was kept"
        ),
        None => format!(
            "pins rolled back: the server no longer has your contact keys and seen rooms (this browser holds version {seen_version}); this browser's copy was kept"
        ),
    }
}

impl TrustWarning {
    /// The room a warning is about, or `None` for the account.
    pub fn room_id(&self) -> Option<RoomId> {
        match self {
            Self::LogRolledBack { room_id, .. }
            | Self::LogForked { room_id, .. }
            | Self::MessagesWithheld { room_id, .. }
            | Self::MessageReplayed { room_id, .. }
            | Self::MessagesReordered { room_id, .. }
            | Self::OwnKeyMissingFromLog { room_id }
            | Self::ServerSaysRoomDeleted { room_id } => Some(*room_id),
            Self::PinsRolledBack { .. }
            | Self::StateUnreadable
            | Self::PinConflict { .. }
            | Self::KdfParametersChanged { .. } => None,
        }
    }
}
