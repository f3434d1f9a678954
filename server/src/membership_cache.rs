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
//! The pushes of stored messages take their recipients from the cache too. For that, a change
//! marks its rooms as changing before its transaction ([`MembershipCache::begin_change`])
//! and invalidates them once it committed (when the [`Change`] is dropped): while a room is
//! marked, its members are read from the database instead. A push that found the room
//! unmarked and cached belongs to a batch committed before the change began, so the cached
//! members are those of the batch's commit. On PostgreSQL the other instances push from
//! the relay's notices, where the change's `rooms_changed` comes before the notices of any
//! batch committed after it.
//!
//! What the cache allows a post to do never decides alone:
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
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use common::membership::RoomId;
use sqlx::AnyPool;

use crate::error::{ApiError, ApiResult};
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
    /// Counts invalidations, never going back.
    counter: u64,
    /// The counter at each room's last invalidation: a read of a room that began before an
    /// invalidation of it is not kept, since it may have seen the room before the change.
    invalidated: HashMap<RoomId, u64>,
    /// The counter when the whole cache was last cleared (which no read survives either).
    cleared: u64,
    /// Rooms with a change in progress on this instance, and how many.
    changing: HashMap<RoomId, usize>,
}

/// What a read of a room compares before keeping what it read: unchanged means no
/// invalidation of the room (nor a clear) happened meanwhile.
type Generation = (u64, Option<u64>);

impl Rooms {
    fn generation(&self, room_id: &RoomId) -> Generation {
        (self.cleared, self.invalidated.get(room_id).copied())
    }

    /// Forgets `room_id` and notes its invalidation.
    fn invalidate(&mut self, room_id: RoomId) {
        self.counter += 1;
        self.snapshots.remove(&room_id);
        self.invalidated.insert(room_id, self.counter);
        if self.invalidated.len() > MAX_TRACKED_INVALIDATIONS {
            // Forgetting the marks would let a read from before one be kept: count it as a
            // clear instead, which no read in progress survives.
            self.invalidated.clear();
            self.cleared = self.counter;
        }
    }

    fn clear(&mut self) {
        self.counter += 1;
        self.cleared = self.counter;
        self.snapshots.clear();
        self.invalidated.clear();
    }
}

/// Rooms whose last invalidation is remembered; beyond that the marks are dropped together.
const MAX_TRACKED_INVALIDATIONS: usize = 4 * CAPACITY;

/// A change to some rooms in progress: dropping it (once the change committed, or failed)
/// invalidates them and ends the mark.
#[must_use = "the rooms stay marked as changing until this is dropped"]
#[derive(Debug)]
pub struct Change {
    cache: MembershipCache,
    room_ids: Vec<RoomId>,
}

impl Drop for Change {
    fn drop(&mut self) {
        let mut rooms = self.cache.lock();
        for room_id in &self.room_ids {
            rooms.invalidate(*room_id);
            if let Some(count) = rooms.changing.get_mut(room_id) {
                *count -= 1;
                if *count == 0 {
                    rooms.changing.remove(room_id);
                }
            }
        }
    }
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
        let generation = {
            let rooms = self.lock();
            if let Some(snapshot) = rooms.snapshots.get(room_id) {
                return Ok(Some(snapshot.clone()));
            }
            rooms.generation(room_id)
        };
        let Some(snapshot) = read(pool, room_id).await? else {
            return Ok(None);
        };
        let snapshot = Arc::new(snapshot);
        let mut rooms = self.lock();
        if rooms.generation(room_id) == generation {
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

    /// Runs `change`, a future that stores a change of `room_ids`, to its end in a task of
    /// its own with the rooms marked as changing ([`Self::begin_change`]) until it ends, and
    /// returns its result: a request given up half-way (its client went away) cannot end the
    /// mark while the database may still commit the change.
    ///
    /// # Errors
    /// The change's own error, or [`ApiError::Unavailable`] when its task panicked.
    pub async fn apply_change<T: Send + 'static>(
        &self,
        room_ids: impl IntoIterator<Item = RoomId>,
        change: impl Future<Output = ApiResult<T>> + Send + 'static,
    ) -> ApiResult<T> {
        let mark = self.begin_change(room_ids);
        tokio::spawn(async move {
            let result = change.await;
            drop(mark);
            result
        })
        .await
        .map_err(|_| ApiError::Unavailable("the change was interrupted, try again"))?
    }

    /// Marks `room_ids` as changing until the returned [`Change`] is dropped, which also
    /// invalidates them: what a change of their members, epoch or policy on this instance
    /// holds from before its transaction begins until after it commits.
    pub fn begin_change(&self, room_ids: impl IntoIterator<Item = RoomId>) -> Change {
        let room_ids: Vec<RoomId> = room_ids.into_iter().collect();
        let mut rooms = self.lock();
        for room_id in &room_ids {
            *rooms.changing.entry(*room_id).or_default() += 1;
        }
        drop(rooms);
        Change {
            cache: self.clone(),
            room_ids,
        }
    }

    /// The current members of `room_id`, to push a message just committed to: from the
    /// cache, or from the database while a change of the room is in progress on this
    /// instance (see the module documentation). Empty for a room that no longer exists.
    ///
    /// # Errors
    /// A database error.
    pub async fn recipients(&self, pool: &AnyPool, room_id: &RoomId) -> ApiResult<Vec<String>> {
        let changing = self.lock().changing.contains_key(room_id);
        if changing {
            return rooms::member_usernames(pool, room_id).await;
        }
        Ok(self
            .room(pool, room_id)
            .await?
            .map(|room| room.members.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Forgets `room_ids`: called on the relay's notice of a change made by another
    /// instance, and when the database refused what the cache allowed.
    pub fn invalidate(&self, room_ids: impl IntoIterator<Item = RoomId>) {
        let mut rooms = self.lock();
        for room_id in room_ids {
            rooms.invalidate(room_id);
        }
    }

    /// Forgets every room: called when notices of changes may have been lost.
    pub fn clear(&self) {
        self.lock().clear();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    const ROOM: RoomId = RoomId([9; 32]);

    /// An in-memory database with one room whose members are `members` (foreign keys off,
    /// so that no account rows are needed).
    async fn database(members: &[&str]) -> AnyPool {
        let pool = crate::store::connect("sqlite::memory:").await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO rooms (room_id, created_at, current_epoch) VALUES ($1, 0, 3)")
            .bind(ROOM.0.as_slice())
            .execute(&pool)
            .await
            .unwrap();
        for member in members {
            add(&pool, member).await;
        }
        pool
    }

    /// Adds a member row behind the cache's back.
    async fn add(pool: &AnyPool, username: &str) {
        sqlx::query("INSERT INTO room_members (room_id, username, role) VALUES ($1, $2, 'member')")
            .bind(ROOM.0.as_slice())
            .bind(username)
            .execute(pool)
            .await
            .unwrap();
    }

    fn names(members: &[&str]) -> HashSet<String> {
        members.iter().map(|name| (*name).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_room_is_read_once_and_again_after_an_invalidation() {
        let pool = database(&["alice"]).await;
        let cache = MembershipCache::default();
        let room = cache.room(&pool, &ROOM).await.unwrap().unwrap();
        assert_eq!(room.members, names(&["alice"]));
        assert_eq!(room.rules.current_epoch, 3);
        assert!(cache.contains(&ROOM));

        add(&pool, "bob").await;
        let cached = cache.room(&pool, &ROOM).await.unwrap().unwrap();
        assert_eq!(cached.members, names(&["alice"]), "served from the cache");
        cache.invalidate([ROOM]);
        assert!(!cache.contains(&ROOM));
        let read = cache.room(&pool, &ROOM).await.unwrap().unwrap();
        assert_eq!(read.members, names(&["alice", "bob"]));
        let fresh = cache.fresh(&pool, &ROOM).await.unwrap().unwrap();
        assert_eq!(fresh, read);
    }

    #[tokio::test]
    async fn a_missing_room_is_not_cached() {
        let pool = database(&[]).await;
        let cache = MembershipCache::default();
        let other = RoomId([1; 32]);
        assert!(cache.room(&pool, &other).await.unwrap().is_none());
        assert!(cache.is_empty());
        assert!(cache.recipients(&pool, &other).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn while_a_change_is_in_progress_recipients_come_from_the_database() {
        let pool = database(&["alice"]).await;
        let cache = MembershipCache::default();
        assert_eq!(cache.recipients(&pool, &ROOM).await.unwrap(), ["alice"]);
        assert!(cache.contains(&ROOM));

        let change = cache.begin_change([ROOM]);
        add(&pool, "bob").await;
        let mut during = cache.recipients(&pool, &ROOM).await.unwrap();
        during.sort();
        assert_eq!(during, ["alice", "bob"], "read from the database");
        // Two changes at once: the room stays marked until both end.
        let second = cache.begin_change([ROOM]);
        drop(change);
        assert!(!cache.contains(&ROOM), "the end of a change invalidates");
        add(&pool, "carol").await;
        assert_eq!(cache.recipients(&pool, &ROOM).await.unwrap().len(), 3);
        drop(second);
        assert!(!cache.contains(&ROOM));
        assert_eq!(cache.recipients(&pool, &ROOM).await.unwrap().len(), 3);
        assert!(
            cache.contains(&ROOM),
            "cached again once no change is in progress"
        );
    }

    #[test]
    fn an_invalidation_spoils_reads_of_its_own_room_only() {
        let mut rooms = Rooms::default();
        let other = RoomId([1; 32]);
        let (room_before, other_before) = (rooms.generation(&ROOM), rooms.generation(&other));
        rooms.invalidate(ROOM);
        assert_ne!(rooms.generation(&ROOM), room_before);
        assert_eq!(rooms.generation(&other), other_before);
        let room_after = rooms.generation(&ROOM);
        rooms.invalidate(ROOM);
        assert_ne!(
            rooms.generation(&ROOM),
            room_after,
            "every invalidation counts"
        );
        rooms.clear();
        assert_ne!(
            rooms.generation(&other),
            other_before,
            "a clear spoils every read"
        );
    }

    #[test]
    fn too_many_remembered_invalidations_count_as_a_clear() {
        let mut rooms = Rooms::default();
        let other = RoomId([1; 32]);
        let seen = rooms.generation(&other);
        for index in 0..=MAX_TRACKED_INVALIDATIONS {
            let mut id = [0u8; 32];
            id[8..16].copy_from_slice(&(index as u64).to_le_bytes());
            rooms.invalidate(RoomId(id));
        }
        assert!(rooms.invalidated.len() <= MAX_TRACKED_INVALIDATIONS);
        assert_ne!(rooms.generation(&other), seen);
    }

    #[tokio::test]
    async fn a_change_given_up_by_its_request_stays_marked_until_it_ends() {
        let cache = MembershipCache::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let applying = cache.apply_change([ROOM], async move {
            let _ = released.await;
            Ok(())
        });
        // The request goes away while the change is under way.
        let given_up = tokio::time::timeout(Duration::from_millis(20), applying).await;
        assert!(given_up.is_err());
        assert!(cache.lock().changing.contains_key(&ROOM));
        release.send(()).unwrap();
        for _ in 0..200 {
            if !cache.lock().changing.contains_key(&ROOM) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the change never ended its mark");
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_capacity() {
        let pool = database(&["alice"]).await;
        let cache = MembershipCache::default();
        let snapshot = Arc::new(RoomSnapshot {
            members: names(&["alice"]),
            rules: PostingRules {
                current_epoch: 0,
                rotation_pending: false,
                messages_per_minute: 0,
            },
        });
        {
            let mut rooms = cache.lock();
            for index in 0..CAPACITY {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(index as u64).to_le_bytes());
                rooms.snapshots.insert(RoomId(id), snapshot.clone());
            }
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.room(&pool, &ROOM).await.unwrap().unwrap();
        assert_eq!(cache.len(), CAPACITY, "one evicted for the new room");
        assert!(cache.contains(&ROOM));
        cache.clear();
        assert!(cache.is_empty());
    }
}
