//! Scheduled rotation, for post-compromise recovery: a room key that leaked (a stolen
//! device, a copied browser profile) should stop opening new messages after a while even if
//! nobody leaves. The first admin's client to see the current epoch due rotates it.
//!
//! The room's [`RotationSchedule`] (set in the log, docs/PROTOCOL.md section 5, tag 17) says
//! when: an epoch is due after `max_age_ms` (default 7 days) counted from the signed time of
//! the entry that started it, or after `max_messages` (default 1,000) messages seen once it
//! is at least [`RotationSchedule::MIN_AGE_MS`] (an hour) old. Megolm, the group ratchet of Matrix,
//! rotates its outbound sessions after one week or 100 messages by default; this room key is
//! shared by every member rather than per sender, so the default count is higher.

use common::membership::{RoomState, RotationSchedule};

use crate::chains::RoomChains;

/// How far the signed start of an epoch may lie ahead of this client's clock and still be
/// taken as a skewed clock, in milliseconds (one day). The server refuses entries more than
/// 10 minutes ahead of its own clock; a start further ahead than this was written by a member
/// and stored by a server that together would postpone the rotation for ever.
pub const MAX_START_LEAD_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether the room's current epoch is due for rotation at `now_ms` (milliseconds since the
/// Unix epoch, this client's clock) under the room's [`RotationSchedule`], given the messages
/// this reader has seen of it in `chains` ([`RoomChains::messages_in_epoch`]). A deleted room
/// is never due; an epoch is due for its message count only once it is [`RotationSchedule::MIN_AGE_MS`]
/// old; an epoch whose start lies a little in the future (a skewed clock) is not due yet, and
/// one whose start lies more than [`MAX_START_LEAD_MS`] ahead is due at once (no honest
/// server stores such an entry).
pub fn rotation_due(state: &RoomState, chains: &RoomChains, now_ms: u64) -> bool {
    if state.deleted() {
        return false;
    }
    let epoch = state.current_epoch();
    let Some(record) = state.epoch(epoch) else {
        return false;
    };
    if record.started_at_ms > now_ms.saturating_add(MAX_START_LEAD_MS) {
        return true;
    }
    let age = now_ms.saturating_sub(record.started_at_ms);
    let schedule = state.rotation_schedule();
    age >= schedule.max_age_ms
        || (age >= RotationSchedule::MIN_AGE_MS
            && chains.messages_in_epoch(epoch) >= u64::from(schedule.max_messages))
}
