//! Relaying live events between the instances of a deployment that share one PostgreSQL
//! database, so that a member connected to any instance hears of what happened through any
//! other: PostgreSQL's `LISTEN`/`NOTIFY` is the wake-up, the database the source of truth.
//!
//! Every instance listens on the channel [`CHANNEL`]. A notification's payload is one JSON
//! [`Notice`]:
//!
//! - `{"messages": [[HEX, N], ...]}` (room and id) is sent by the transaction that stores a
//!   batch of messages (`store::messages::insert_batch`, split over several notices when
//!   long), so notifications arrive in commit order, which the lock of the rooms' rows makes
//!   the order of each room's ids. Every instance, the posting one included, reads the
//!   messages and the rooms' members and pushes them to its own connections of those
//!   members, one notification after the other: a room's messages reach every connection in
//!   id order, whichever instance stored them.
//! - `{"rooms_changed": [HEX, ...]}` is sent by the transaction that appends a log entry or
//!   deletes an account, naming the rooms whose members, epoch, pending rotation or policy
//!   it changed: every instance forgets them from its membership cache
//!   ([`crate::membership_cache`]), before any message stored after the change is pushed.
//! - `{"event": {"origin": N, "users": [...], "event": {...}}}` carries any other event
//!   ([`common::api::ServerEvent`]) to users. The instance that sent it has already pushed it
//!   to its own connections and skips it by `origin`. A recipient list too long for one
//!   payload is split over several notices.
//! - `{"resync": {"origin": N, "users": [...]}}` replaces an event too large for a payload
//!   (PostgreSQL allows under 8,000 bytes): the users' connections elsewhere are closed with
//!   [`crate::hub::RESTART_CLOSE_CODE`], and their clients reconnect and catch up by sync.
//! - `{"close_sessions": {"origin": N, "username": ..., "sessions": [...]}}` closes the
//!   connections of ended sessions wherever they are.
//!
//! When the listening connection is lost or fails, notifications sent meanwhile are lost
//! with it: the listener then closes every connection of its instance with
//! [`crate::hub::RESTART_CLOSE_CODE`] and clears the membership cache, listens again, and
//! does both once more for what happened meanwhile, so that no client goes on believing it
//! is up to date ([`listen`]).

use std::time::Duration;

use common::api::ServerEvent;
use common::membership::RoomId;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::hub::Hub;
use crate::membership_cache::MembershipCache;
use crate::store::messages;

/// The PostgreSQL notification channel every instance listens on.
pub const CHANNEL: &str = "chat_events";

/// The largest payload this server sends: PostgreSQL refuses 8,000 bytes or more.
pub const MAX_PAYLOAD_BYTES: usize = 7_900;

/// How long the listener waits before listening again after an error.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The longest pause between two attempts to send one notice.
const MAX_PUBLISH_PAUSE: Duration = Duration::from_secs(5);

/// One notification's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// Messages were stored: push them to their rooms' members.
    Messages(Vec<(RoomId, i64)>),
    /// These rooms changed (a log entry, a deleted account): forget them from the
    /// membership cache.
    RoomsChanged(Vec<RoomId>),
    /// Push `event` to `users`.
    Event {
        /// The instance that sent it (and pushed it to its own connections already).
        origin: u64,
        /// The recipients.
        users: Vec<String>,
        /// The event.
        event: ServerEvent,
    },
    /// Close the connections of `users` with the restart code, so their clients catch up.
    Resync {
        /// The instance that sent it.
        origin: u64,
        /// The users whose connections close.
        users: Vec<String>,
    },
    /// Close the connections of these sessions of `username`.
    CloseSessions {
        /// The instance that sent it.
        origin: u64,
        /// The account.
        username: String,
        /// The public ids of the ended sessions.
        sessions: Vec<String>,
    },
}

/// The payloads announcing stored messages (room and id, in id order), as few as the
/// payload limit allows.
pub fn message_payloads(stored: &[(RoomId, i64)]) -> Vec<String> {
    payloads(stored, Notice::Messages)
}

/// The payloads announcing that `room_ids` changed, as few as the payload limit allows.
pub fn rooms_changed_payloads(room_ids: &[RoomId]) -> Vec<String> {
    payloads(room_ids, Notice::RoomsChanged)
}

/// `items` in order, split over as few notices made by `notice` as the payload limit allows.
fn payloads<T: Clone>(items: &[T], notice: impl Fn(Vec<T>) -> Notice) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        while end < items.len()
            && to_payload(&notice(items[start..=end].to_vec())).len() <= MAX_PAYLOAD_BYTES
        {
            end += 1;
        }
        payloads.push(to_payload(&notice(items[start..end].to_vec())));
        start = end;
    }
    payloads
}

fn to_payload(notice: &Notice) -> String {
    // A notice holds strings, numbers and an event, all of which serialize.
    serde_json::to_string(notice).unwrap_or_default()
}

/// The sending half, held by the [`Hub`]: notices go out in the order they are given, on
/// one task.
#[derive(Debug, Clone)]
pub struct Publisher {
    origin: u64,
    outbox: mpsc::UnboundedSender<String>,
}

impl Publisher {
    /// This instance's random id, carried by its notices.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Announces `event` for `users` to the other instances, split over as many notices as
    /// the payload limit needs, or as [`Notice::Resync`] when the event alone is too large.
    pub fn event(&self, users: &[String], event: &ServerEvent) {
        let origin = self.origin;
        let fits = |users: &[String]| {
            to_payload(&Notice::Event {
                origin,
                users: users.to_vec(),
                event: event.clone(),
            })
            .len()
                <= MAX_PAYLOAD_BYTES
        };
        if !fits(&[]) {
            for group in split(users, |users| {
                to_payload(&Notice::Resync {
                    origin,
                    users: users.to_vec(),
                })
                .len()
                    <= MAX_PAYLOAD_BYTES
            }) {
                self.send(&Notice::Resync {
                    origin,
                    users: group,
                });
            }
            return;
        }
        for group in split(users, fits) {
            self.send(&Notice::Event {
                origin,
                users: group,
                event: event.clone(),
            });
        }
    }

    /// Announces that `sessions` of `username` ended.
    pub fn close_sessions(&self, username: &str, sessions: &[String]) {
        self.send(&Notice::CloseSessions {
            origin: self.origin,
            username: username.to_owned(),
            sessions: sessions.to_vec(),
        });
    }

    fn send(&self, notice: &Notice) {
        // The publishing task ends only with the runtime.
        let _ = self.outbox.send(to_payload(notice));
    }
}

/// Splits `users` into the fewest consecutive groups that each pass `fits` (a single user
/// always makes a group of its own).
fn split(users: &[String], fits: impl Fn(&[String]) -> bool) -> Vec<Vec<String>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < users.len() {
        let mut end = start + 1;
        while end < users.len() && fits(&users[start..=end]) {
            end += 1;
        }
        groups.push(users[start..end].to_vec());
        start = end;
    }
    groups
}

/// Creates the publisher of an instance and the receiving end its task drains.
pub fn publisher() -> (Publisher, mpsc::UnboundedReceiver<String>) {
    let (outbox, receiver) = mpsc::unbounded_channel();
    let mut origin = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut origin);
    let publisher = Publisher {
        origin: u64::from_le_bytes(origin),
        outbox,
    };
    (publisher, receiver)
}

/// Sends one notice on [`CHANNEL`] (`pg_notify`); inside a transaction it is delivered at
/// commit, in commit order.
///
/// # Errors
/// A database error.
pub async fn notify<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(executor)
        .await
        .map(|_| ())
}

/// Sends the payloads of `outbox` with `pg_notify`, one after the other, until the
/// publisher is dropped. A payload that cannot be sent (a full pool, a database that is
/// down) is tried again, with a pause growing to [`MAX_PUBLISH_PAUSE`], before the next one,
/// so that notices keep their order. (The other instances' listeners lose their connection
/// in an outage too, and then tell their clients to catch up.)
pub async fn publish(pool: AnyPool, mut outbox: mpsc::UnboundedReceiver<String>) {
    while let Some(payload) = outbox.recv().await {
        let mut pause = RETRY_DELAY / 10;
        loop {
            let sent = notify(&pool, &payload).await;
            match sent {
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "cannot notify the other instances; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PUBLISH_PAUSE);
                }
            }
        }
    }
}

/// Starts listening on [`CHANNEL`] at `database_url`.
///
/// # Errors
/// The database error when the first connection fails.
pub async fn listener(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// What the listener hands notices to: this instance's connections and membership cache.
#[derive(Debug, Clone)]
pub struct Recipients {
    /// The database the notified messages are read from.
    pub pool: AnyPool,
    /// This instance's connections.
    pub hub: Hub,
    /// This instance's membership cache.
    pub membership: MembershipCache,
    /// This instance's origin ([`Publisher::origin`]), whose own notices are skipped.
    pub origin: u64,
}

impl Recipients {
    /// What to do when notices may have been lost: every connection is told to reconnect
    /// and catch up, and the membership cache is cleared. Returns the connections closed.
    fn lost_notices(&self) -> usize {
        self.membership.clear();
        self.hub.close_all()
    }
}

/// Hands every notification to this instance's connections and membership cache, one after
/// the other, for as long as the process runs.
///
/// Whatever ends or breaks the listening connection (a closed connection, an error, a
/// database that is down) may have lost notifications: every connection of this instance is
/// then told to reconnect at once (their clients catch up by syncing) and the membership
/// cache is cleared, the listener connects and listens again (every [`RETRY_DELAY`] until it
/// can), and both are done once more for what happened in the meantime.
pub async fn listen(database_url: String, mut listener: PgListener, recipients: Recipients) {
    loop {
        let lost = match listener.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Notice>(notification.payload()) {
                    Ok(notice) => deliver(&recipients, notice).await,
                    Err(error) => {
                        // Not one of ours: whatever it meant to say is lost.
                        tracing::error!(%error, "unreadable notice; clients told to reconnect");
                        recipients.lost_notices();
                    }
                }
                continue;
            }
            Ok(None) => "closed".to_owned(),
            Err(error) => error.to_string(),
        };
        let closed = recipients.lost_notices();
        tracing::warn!(
            websockets = closed,
            reason = %lost,
            "lost the notification connection; clients told to reconnect"
        );
        listener = loop {
            tokio::time::sleep(RETRY_DELAY).await;
            match self::listener(&database_url).await {
                Ok(listener) => break listener,
                Err(error) => tracing::error!(%error, "cannot listen for notifications"),
            }
        };
        let closed = recipients.lost_notices();
        tracing::info!(
            websockets = closed,
            "listening again; clients told to reconnect"
        );
    }
}

async fn deliver(recipients: &Recipients, notice: Notice) {
    let Recipients {
        pool,
        hub,
        membership,
        origin,
    } = recipients;
    let origin = *origin;
    match notice {
        Notice::Messages(stored) => {
            let pushed = async {
                let messages = messages::by_ids(pool, &stored).await?;
                crate::writer::push(pool, hub, membership, messages).await
            };
            if let Err(error) = pushed.await {
                tracing::error!(%error, "cannot read notified messages");
                // Their recipients would miss them: have every client catch up.
                hub.close_all();
            }
        }
        Notice::RoomsChanged(room_ids) => membership.invalidate(room_ids),
        Notice::Event {
            origin: sender,
            users,
            event,
        } if sender != origin => hub.deliver(users.iter().map(String::as_str), &event),
        Notice::Resync {
            origin: sender,
            users,
        } if sender != origin => {
            for user in &users {
                hub.restart_user(user);
            }
        }
        Notice::CloseSessions {
            origin: sender,
            username,
            sessions,
        } if sender != origin => {
            hub.close_local_sessions(&username, &sessions);
        }
        // This instance's own notice, already carried out locally.
        Notice::Event { .. } | Notice::Resync { .. } | Notice::CloseSessions { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("user{index:04}")).collect()
    }

    #[test]
    fn long_recipient_lists_are_split_within_the_payload_limit() {
        let (publisher, mut outbox) = publisher();
        let users = names(2_000);
        publisher.event(
            &users,
            &ServerEvent::RoomDeleted {
                room_id: RoomId([7; 32]),
            },
        );
        let mut received = Vec::new();
        let mut notices = 0;
        while let Ok(payload) = outbox.try_recv() {
            assert!(
                payload.len() <= MAX_PAYLOAD_BYTES,
                "{} bytes",
                payload.len()
            );
            notices += 1;
            match serde_json::from_str::<Notice>(&payload).expect("a notice") {
                Notice::Event { users, origin, .. } => {
                    assert_eq!(origin, publisher.origin());
                    received.extend(users);
                }
                other => panic!("expected an event, got {other:?}"),
            }
        }
        assert!(notices > 1);
        assert_eq!(received, users);
    }

    #[test]
    fn a_long_batch_of_messages_is_announced_in_order_within_the_payload_limit() {
        let stored: Vec<(RoomId, i64)> = (0..500)
            .map(|id| (RoomId([u8::try_from(id % 7).unwrap_or(0); 32]), id))
            .collect();
        let payloads = message_payloads(&stored);
        assert!(payloads.len() > 1);
        let mut announced = Vec::new();
        for payload in payloads {
            assert!(
                payload.len() <= MAX_PAYLOAD_BYTES,
                "{} bytes",
                payload.len()
            );
            match serde_json::from_str::<Notice>(&payload).expect("a notice") {
                Notice::Messages(messages) => announced.extend(messages),
                other => panic!("expected messages, got {other:?}"),
            }
        }
        assert_eq!(announced, stored);
    }

    #[test]
    fn an_event_too_large_for_a_payload_becomes_a_resync() {
        let (publisher, mut outbox) = publisher();
        let event = ServerEvent::Error {
            error: "x".repeat(MAX_PAYLOAD_BYTES),
        };
        publisher.event(&names(3), &event);
        let payload = outbox.try_recv().expect("a notice");
        match serde_json::from_str::<Notice>(&payload).expect("a notice") {
            Notice::Resync { users, .. } => assert_eq!(users, names(3)),
            other => panic!("expected a resync, got {other:?}"),
        }
        assert!(outbox.try_recv().is_err());
    }
}
