//! Group commit of messages: one task per instance writes the messages that arrive together
//! in one transaction (one fsync, on SQLite and PostgreSQL alike) and answers each post only
//! once its batch is durable.
//!
//! Posts queue on a channel. The task takes the first, then whatever else is already
//! waiting, up to [`MAX_BATCH`], and hands the batch to [`messages::insert_batch`]. On
//! SQLite (one instance, no relay) it then pushes the stored messages to the members'
//! connections itself ([`push`]), in id order, so concurrent posts to a room reach every socket in the
//! order they were stored; on PostgreSQL the batch's transaction announces them and every
//! instance pushes them from the announcement ([`crate::relay`]).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use common::api::{ServerEvent, StoredMessage};
use common::membership::RoomId;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::hub::Hub;
use crate::membership_cache::MembershipCache;
use crate::store::messages::{self, NewMessage};

/// The most messages written in one transaction.
pub const MAX_BATCH: usize = 256;

/// Posts that may wait for the writer before a post is answered 503.
pub const QUEUE: usize = 4_096;

/// One post waiting for its batch.
struct Pending {
    message: NewMessage,
    answer: oneshot::Sender<ApiResult<StoredMessage>>,
}

/// The handle handlers post through. Cloning shares the same writer.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl MessageWriter {
    /// Starts the writer task of this instance on `pool`, pushing stored messages through
    /// `hub` unless the hub relays them.
    pub fn start(pool: AnyPool, hub: Hub, membership: MembershipCache) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write(pool, hub, membership, receiver));
        Self { queue }
    }

    /// Stores `message` in the next batch (see [`messages::insert_batch`] for the checks)
    /// and returns it as clients see it, once the batch is committed.
    ///
    /// # Errors
    /// The message's refusal (409 [`crate::error::ErrorCode::StaleEpoch`] or
    /// [`crate::error::ErrorCode::KeyRotationPending`], [`ApiError::RateLimited`], not found), a database error of its batch, or [`ApiError::Unavailable`] when the queue
    /// is full or the writer has stopped.
    pub async fn post(&self, message: NewMessage) -> ApiResult<StoredMessage> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending { message, answer };
        self.queue
            .try_send(pending)
            .map_err(|_| ApiError::Unavailable("the server is busy, try again"))?;
        answered
            .await
            .map_err(|_| ApiError::Unavailable("the message writer stopped"))?
    }
}

async fn write(
    pool: AnyPool,
    hub: Hub,
    membership: MembershipCache,
    mut queue: mpsc::Receiver<Pending>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let pending = std::mem::take(&mut batch);
        let (inputs, answers): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .map(|pending| (pending.message, pending.answer))
            .unzip();
        match messages::insert_batch(&pool, &inputs).await {
            Ok(results) => {
                if !hub.relays_messages() {
                    let stored = results.iter().flatten().cloned();
                    if let Err(error) = push(&pool, &hub, &membership, stored).await {
                        tracing::error!(%error, "cannot push stored messages");
                        // Their recipients would miss them: have every client catch up.
                        hub.close_all();
                    }
                }
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, messages = answers.len(), "a batch of messages failed");
                for answer in answers {
                    let _ = answer.send(Err(ApiError::Unavailable(
                        "the message could not be stored, try again",
                    )));
                }
            }
        }
    }
}

/// Pushes `messages` (in id order) to this instance's connections of their rooms' members,
/// taking each room's members once from the membership cache
/// ([`MembershipCache::recipients`]).
///
/// # Errors
/// A database error reading members; the messages before it were pushed.
pub async fn push(
    pool: &AnyPool,
    hub: &Hub,
    membership: &MembershipCache,
    messages: impl IntoIterator<Item = StoredMessage>,
) -> ApiResult<()> {
    let mut members: HashMap<RoomId, Vec<String>> = HashMap::new();
    for message in messages {
        let usernames = match members.entry(message.room_id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                entry.insert(membership.recipients(pool, &message.room_id).await?)
            }
        };
        hub.deliver(
            usernames.iter().map(String::as_str),
            &ServerEvent::Message { message },
        );
    }
    Ok(())
}
