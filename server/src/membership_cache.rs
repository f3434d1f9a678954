//! The membership cache: what posting a message to a room depends on (its members, its
//! current epoch, whether a rotation is pending), kept in memory so that a post costs no
//! query before the one that stores it.
//!
//! The cache is kept true by the membership log: appending an entry or deleting an account
//! invalidates the rooms it changed, on this instance at once and on the others through the
//! relay's `rooms_changed` notice, which the change's own transaction sends
//! ([`crate::relay`]), so it reaches every instance in commit order, before the notices of
//! messages stored after it. A lost notification connection clears the whole cache.
//!
//! The cache never decides alone:
//!
//! - a post the cache allows is checked again by the statement that stores it
//!   ([`crate::store::messages::insert_batch`]), so a stale entry cannot let a removed
//!   member, a stale epoch or a pending rotation through;
//! - a post the cache refuses is checked again against a fresh read before it is refused
//!   ([`MembershipCache::fresh`]), so a stale entry cannot refuse a member who was just
//!   added or an epoch that was just rotated to.
//!
//! Only answers the database checks again may come from the cache: reads of history or of
//! the log still ask the database who is a member.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use common::membership::RoomId;
use sqlx::AnyPool;

use crate::error::ApiResult;
use crate::store::rooms::{self, PostingRules};

/// Rooms kept at most; one more evicts an arbitrary one.
pub const CAPACITY: usize = 10_000;

/// What the cache holds of one room, as read from the `rooms` and `room_members` tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The usernames with a `room_members` row.
    pub members: HashSet<String>,
    /// The current epoch, pending rotation and rate limit.
    pub rules: PostingRules,
}

impl RoomSnapshot {
    /// Whether `username` is a current member.
    pub fn is_member(&self, username: &str) -> bool {
        self.members.contains(username)
    }
}

#[derive(Default)]
struct Rooms {
    snapshots: HashMap<RoomId, Arc<RoomSnapshot>>,
    /// Counts invalidations: a read that began before one is not kept, since it may have
    /// seen the room before the change.
    invalidations: u64,
}

/// The cache of one instance. Cloning shares it.
#[derive(Clone, Default)]
pub struct MembershipCache {
    rooms: Arc<Mutex<Rooms>>,
}

impl std::fmt::Debug for MembershipCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembershipCache")
            .field("rooms", &self.lock().snapshots.len())
            .finish()
    }
}

impl MembershipCache {
    /// Locks the map; a panic while it was held cannot leave it half-changed (each change is
    /// one insert, remove or clear), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Rooms> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The room as cached, or as read from the database (and then cached) when it is not;
    /// `None` for a room that does not exist (which is never cached).
    ///
    /// # Errors
    /// A database error.
    pub async fn room(
        &self,
        pool: &AnyPool,
        room_id: &RoomId,
    ) -> ApiResult<Option<Arc<RoomSnapshot>>> {
        let invalidations = {
            let rooms = self.lock();
            if let Some(snapshot) = rooms.snapshots.get(room_id) {
                return Ok(Some(snapshot.clone()));
            }
            rooms.invalidations
        };
        let Some(snapshot) = read(pool, room_id).await? else {
            return Ok(None);
        };
        let snapshot = Arc::new(snapshot);
        let mut rooms = self.lock();
        if rooms.invalidations == invalidations {
            if rooms.snapshots.len() >= CAPACITY {
                if let Some(evicted) = rooms.snapshots.keys().next().copied() {
                    rooms.snapshots.remove(&evicted);
                }
            }
            rooms.snapshots.insert(*room_id, snapshot.clone());
        }
        Ok(Some(snapshot))
    }

    /// The room as the database has it now (replacing what was cached): what a refusal is
    /// confirmed with.
    ///
    /// # Errors
    /// A database error.
    pub async fn fresh(
        &self,
        pool: &AnyPool,
        room_id: &RoomId,
    ) -> ApiResult<Option<Arc<RoomSnapshot>>> {
        self.invalidate([*room_id]);
        self.room(pool, room_id).await
    }

    /// Forgets `room_ids`: called after a change to them commits, and on the relay's notice
    /// of a change made by another instance.
    pub fn invalidate(&self, room_ids: impl IntoIterator<Item = RoomId>) {
        let mut rooms = self.lock();
        rooms.invalidations += 1;
        for room_id in room_ids {
            rooms.snapshots.remove(&room_id);
        }
    }

    /// Forgets every room: called when notices of changes may have been lost.
    pub fn clear(&self) {
        let mut rooms = self.lock();
        rooms.invalidations += 1;
        rooms.snapshots.clear();
    }

    /// Whether `room_id` is cached.
    pub fn contains(&self, room_id: &RoomId) -> bool {
        self.lock().snapshots.contains_key(room_id)
    }

    /// How many rooms are cached.
    pub fn len(&self) -> usize {
        self.lock().snapshots.len()
    }

    /// Whether no room is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a room's posting rules and members.
async fn read(pool: &AnyPool, room_id: &RoomId) -> ApiResult<Option<RoomSnapshot>> {
    let Some(rules) = rooms::posting_rules(pool, room_id).await? else {
        return Ok(None);
    };
    let members = rooms::member_usernames(pool, room_id)
        .await?
        .into_iter()
        .collect();
    Ok(Some(RoomSnapshot { members, rules }))
}
