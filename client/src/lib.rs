//! The sans-I/O client core of the end-to-end encrypted chat: what a signed-in client
//! remembers between sessions and browsers, and the trust warnings it raises when the server
//! serves less than that.
//!
//! Nothing here does I/O: the browser (IndexedDB, HTTP) and tests are drivers that hand it
//! bytes and act on what it returns, as matrix-sdk-crypto's `OlmMachine` does.
//!
//! - [`state`]: the durable client state (pins, each room's accepted log head, the account's
//!   KDF parameters), sealed under a key derived from the identity secrets, with a monotonic
//!   version; its merge and its reconciliation with the server's copy (docs/PROTOCOL.md
//!   section 11).
//! - [`machine`]: [`Machine`], the whole core for one signed-in account as a state machine:
//!   fed [`Input`]s (sync answers, server events, answers to its requests, timers, the user's
//!   commands), returning [`Effect`]s (requests to make, timers, redraws, warnings, saves).
//! - [`chains`]: each sender's message chains and the log head a message names.
//! - [`room`]: one room as the client knows it: log, keys, messages shown and waiting;
//!   opening envelopes and messages and the warnings that raises.
//! - [`rotation`]: when an epoch is due for scheduled rotation.
//! - [`search`]: full-text search over decrypted history, an index kept on the device only.
//! - [`timeline`]: a room's messages as a reader sees them, with edits, deletions, reactions
//!   and replies applied.
//! - [`warning`]: [`TrustWarning`], what the user is told when the server lied.

pub mod chains;
pub mod machine;
pub mod room;
pub mod rotation;
pub mod search;
pub mod state;
pub mod timeline;
pub mod warning;

pub use chains::{ChainError, ChainHead, ChainKey, LogHeadCheck, RoomChains};
pub use machine::{
    Account, AppendOutcome, Command, Effect, Input, Machine, PostOutcome, Ticket, Timer,
};
pub use room::{
    Change, EnvelopeOutcome, MembershipChange, Processed, Relation, Room, RoomError, RotationDuty,
    ShownMessage, SyncAnswers, Synced, Unread, MAX_CATCH_UP_PAGES,
};
pub use state::{
    ClientState, KdfRecord, LocalCopy, LogMemory, Reconciled, RemoteState, StateError, StateKey,
};
pub use timeline::{timeline, ItemContent, Quoted, ReactionCount, ReplyPreview, TimelineItem};
pub use warning::TrustWarning;
