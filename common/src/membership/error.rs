//! Why an entry or a whole log was refused.

use thiserror::Error;

use crate::encoding::DecodeError;

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
    /// A rotation schedule out of bounds.
    #[error("invalid rotation schedule: {0}")]
    InvalidSchedule(&'static str),
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
