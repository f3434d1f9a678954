//! Checks across a room's messages (docs/PROTOCOL.md section 7): each sender's chain of
//! messages, and the membership-log head each message names.
//!
//! Every message of protocol version 2 carries a [`ChainLink`]: its sender's device, a
//! counter that starts at 1 in each epoch and the chain hash of the device's previous message
//! in that epoch. A reader that has seen counters 3 and 5 of a chain knows that 4 was
//! withheld; a counter delivered twice under two server ids is a replay; a counter whose
//! `prev_hash` is not the hash of the message before it is a broken chain; a higher counter
//! under a lower server id is a reordering. What was seen is remembered across reloads as each
//! chain's head ([`ChainHead`], kept in the client state), so a replay after a reload and a
//! message withheld between two sessions are caught too.
//!
//! Chains are per epoch rather than per room: a reader holds either every message key of an
//! epoch or none, so a gap always means a message the server did not deliver, never one this
//! reader could not decrypt. The price is that messages withheld at the very end of an epoch,
//! with no later message of the same chain, go unnoticed.

use std::collections::BTreeMap;

use common::membership::{RoomId, RoomState};
use common::message::{ChainLink, InnerMessage, DEVICE_ID_LEN};

use crate::warning::TrustWarning;

/// One sender's chain: who, from which browser, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainKey {
    /// The sender's username.
    pub sender: String,
    /// The sending browser's device id.
    pub device: [u8; DEVICE_ID_LEN],
    /// The epoch.
    pub epoch: u64,
}

impl ChainKey {
    /// The chain `inner` belongs to.
    pub fn of(inner: &InnerMessage) -> Self {
        Self {
            sender: inner.sender.clone(),
            device: inner.chain.device,
            epoch: inner.epoch,
        }
    }
}

/// The last message of a chain a reader has seen: kept in the client state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Its counter.
    pub counter: u64,
    /// Its [`InnerMessage::chain_hash`].
    pub hash: [u8; 32],
    /// The id the server gave it.
    pub message_id: i64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    hash: [u8; 32],
    prev_hash: [u8; 32],
    message_id: i64,
}

/// Why a message breaks its sender's chain. Each is shown in place of the message and raises
/// the room's trust warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The same message (sender, device, epoch, counter) was delivered again under another
    /// server id, in this session or after a reload.
    #[error(
        "message replayed: message #{counter} of {sender} in epoch {epoch} was already delivered"
    )]
    Replayed {
        /// The sender.
        sender: String,
        /// The epoch.
        epoch: u64,
        /// The repeated counter.
        counter: u64,
    },
    /// The message does not name the chain hash of its predecessor, or its successor does not
    /// name its hash: its sender's device wrote two different chains.
    #[error("message chain broken: message #{counter} of {sender} in epoch {epoch} does not follow the one before it")]
    Broken {
        /// The sender.
        sender: String,
        /// The epoch.
        epoch: u64,
        /// The counter where it breaks.
        counter: u64,
    },
    /// The server gave the message a later id than a message its sender wrote after it.
    #[error("messages reordered: message #{counter} of {sender} in epoch {epoch} was stored after a later one")]
    Reordered {
        /// The sender.
        sender: String,
        /// The epoch.
        epoch: u64,
        /// The counter delivered out of order.
        counter: u64,
    },
}

impl ChainError {
    /// The room trust warning this error raises.
    pub fn warning(&self, room_id: RoomId) -> TrustWarning {
        match self {
            Self::Replayed { sender, .. } => TrustWarning::MessageReplayed {
                room_id,
                sender: sender.clone(),
            },
            Self::Broken { sender, .. } | Self::Reordered { sender, .. } => {
                TrustWarning::MessagesReordered {
                    room_id,
                    sender: sender.clone(),
                }
            }
        }
    }
}

/// The chains of one room as this reader sees them: what the client state remembered
/// (`baseline`) and what this session has seen.
#[derive(Debug, Clone, Default)]
pub struct RoomChains {
    baseline: BTreeMap<ChainKey, ChainHead>,
    seen: BTreeMap<ChainKey, BTreeMap<u64, Seen>>,
}

impl RoomChains {
    /// Starts from the heads the client state remembered for the room.
    pub fn new(baseline: BTreeMap<ChainKey, ChainHead>) -> Self {
        Self {
            baseline,
            seen: BTreeMap::new(),
        }
    }

    /// Checks a message that opened (`common::message::open_message`) against its chain and
    /// records it. A version-1 message has no chain: only its repeats are refused.
    ///
    /// # Errors
    /// [`ChainError`]; the message is then not recorded.
    pub fn observe(&mut self, inner: &InnerMessage, message_id: i64) -> Result<(), ChainError> {
        let key = ChainKey::of(inner);
        let counter = inner.chain.counter;
        let hash = inner.chain_hash();
        let replayed = || ChainError::Replayed {
            sender: key.sender.clone(),
            epoch: key.epoch,
            counter,
        };
        let broken = || ChainError::Broken {
            sender: key.sender.clone(),
            epoch: key.epoch,
            counter,
        };
        let chain = self.seen.get(&key);
        if let Some(existing) = chain.and_then(|chain| chain.get(&counter)) {
            return if existing.message_id == message_id && existing.hash == hash {
                Ok(())
            } else {
                Err(replayed())
            };
        }
        let baseline = self.baseline.get(&key).copied();
        if let Some(head) = baseline {
            if counter <= head.counter && message_id != head.message_id {
                // At or before the remembered head: legitimate only as the same delivery of a
                // message older than the head (an earlier id); a newer id is a replay.
                if message_id > head.message_id {
                    return Err(replayed());
                }
            }
            if counter == head.counter && message_id == head.message_id && hash != head.hash {
                return Err(broken());
            }
        }
        if !inner.is_legacy() {
            let previous_hash = chain
                .and_then(|chain| chain.get(&(counter - 1)))
                .map(|seen| seen.hash)
                .or_else(|| {
                    baseline
                        .filter(|head| head.counter + 1 == counter)
                        .map(|head| head.hash)
                });
            if previous_hash.is_some_and(|previous| previous != inner.chain.prev_hash) {
                return Err(broken());
            }
            let next_counter = counter.checked_add(1);
            if chain
                .zip(next_counter)
                .and_then(|(chain, next)| chain.get(&next))
                .is_some_and(|next| next.prev_hash != hash)
            {
                return Err(broken());
            }
            let out_of_order = chain.is_some_and(|chain| {
                let later_stored_first = chain
                    .range(next_counter.unwrap_or(u64::MAX)..)
                    .next()
                    .is_some_and(|(later, next)| *later > counter && next.message_id < message_id);
                let earlier_stored_later = chain
                    .range(..counter)
                    .next_back()
                    .is_some_and(|(_, before)| before.message_id > message_id);
                later_stored_first || earlier_stored_later
            });
            if out_of_order {
                return Err(ChainError::Reordered {
                    sender: key.sender.clone(),
                    epoch: key.epoch,
                    counter,
                });
            }
        }
        self.seen.entry(key).or_default().insert(
            counter,
            Seen {
                hash,
                prev_hash: inner.chain.prev_hash,
                message_id,
            },
        );
        Ok(())
    }

    /// The messages the server withheld, per sender: counters missing between two messages
    /// of a chain this session has seen, between the remembered head and the messages seen
    /// around it, and the remembered head itself when it is not served. What involves the
    /// remembered head is judged only when the loaded history reaches back to it:
    /// `oldest_loaded_id` is the id of the oldest message loaded when older ones exist,
    /// `None` when the whole history is loaded.
    pub fn withheld(&self, room_id: RoomId, oldest_loaded_id: Option<i64>) -> Vec<TrustWarning> {
        let mut missing_by_sender: BTreeMap<&str, u64> = BTreeMap::new();
        let judged =
            |head: &&ChainHead| oldest_loaded_id.is_none_or(|oldest| head.message_id >= oldest);
        let keys = self
            .seen
            .keys()
            .chain(self.baseline.keys())
            .filter(|key| key.device != [0; DEVICE_ID_LEN]);
        let mut counted = std::collections::BTreeSet::new();
        for key in keys {
            if !counted.insert(key) {
                continue;
            }
            let seen = self.seen.get(key);
            let mut counters: Vec<u64> = seen
                .map(|chain| chain.keys().copied().collect())
                .unwrap_or_default();
            let mut missing = 0;
            if let Some(head) = self.baseline.get(key).filter(judged) {
                if !seen.is_some_and(|chain| chain.contains_key(&head.counter)) {
                    // The last message seen before is within the loaded history but was not
                    // served.
                    missing += 1;
                }
                counters.push(head.counter);
            }
            counters.sort_unstable();
            counters.dedup();
            missing += counters
                .windows(2)
                .map(|pair| pair[1] - pair[0] - 1)
                .sum::<u64>();
            if missing > 0 {
                *missing_by_sender.entry(key.sender.as_str()).or_default() += missing;
            }
        }
        missing_by_sender
            .into_iter()
            .map(|(sender, count)| TrustWarning::MessagesWithheld {
                room_id,
                sender: sender.to_owned(),
                count,
            })
            .collect()
    }

    /// How many messages of `epoch` this reader has seen in this session (distinct counters
    /// per chain). Counters are chosen by senders, so they are not summed: a member cannot
    /// make the room look busier than it is by numbering one message 1,000.
    pub fn messages_in_epoch(&self, epoch: u64) -> u64 {
        self.seen
            .iter()
            .filter(|(key, _)| key.epoch == epoch && key.device != [0; DEVICE_ID_LEN])
            .fold(0u64, |total, (_, chain)| {
                total.saturating_add(chain.len() as u64)
            })
    }

    /// The smallest message id of the remembered heads: how far back a reader must load the
    /// history for [`RoomChains::withheld`] to judge them all. `None` without heads.
    pub fn oldest_head_id(&self) -> Option<i64> {
        self.baseline.values().map(|head| head.message_id).min()
    }

    /// The head of every chain, remembered or seen, whichever is further: what the client
    /// state keeps.
    pub fn heads(&self) -> BTreeMap<ChainKey, ChainHead> {
        let mut heads = self.baseline.clone();
        for (key, chain) in &self.seen {
            let Some((counter, seen)) = chain.last_key_value() else {
                continue;
            };
            let head = ChainHead {
                counter: *counter,
                hash: seen.hash,
                message_id: seen.message_id,
            };
            heads
                .entry(key.clone())
                .and_modify(|known| {
                    if head.counter > known.counter {
                        *known = head;
                    }
                })
                .or_insert(head);
        }
        heads
    }

    /// The link of the next message `sender` writes from `device` in `epoch`: one past the
    /// furthest counter remembered or seen, naming its hash.
    pub fn next_link(&self, sender: &str, device: [u8; DEVICE_ID_LEN], epoch: u64) -> ChainLink {
        let key = ChainKey {
            sender: sender.to_owned(),
            device,
            epoch,
        };
        let seen = self
            .seen
            .get(&key)
            .and_then(|chain| chain.last_key_value())
            .map(|(counter, seen)| (*counter, seen.hash));
        let remembered = self
            .baseline
            .get(&key)
            .map(|head| (head.counter, head.hash));
        match seen.max(remembered) {
            Some((counter, hash)) => ChainLink {
                device,
                counter: counter.saturating_add(1),
                prev_hash: hash,
            },
            None => ChainLink {
                device,
                counter: 1,
                prev_hash: [0; 32],
            },
        }
    }
}

/// What a reader makes of the log head a message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogHeadCheck {
    /// The reader's log contains it (or the message is of version 1 and names none).
    Known,
    /// The message names a longer log than the reader has: fetch the log, then check again;
    /// still ahead after a fresh fetch means the server withholds entries (`log forked`).
    Ahead,
}

/// Compares the log head a message names with the reader's replayed log.
///
/// # Errors
/// [`TrustWarning::LogForked`] when the reader's log has another entry at that position:
/// the server showed the sender and this reader different logs.
pub fn check_log_head(
    inner: &InnerMessage,
    state: &RoomState,
) -> Result<LogHeadCheck, TrustWarning> {
    if inner.is_legacy() {
        return Ok(LogHeadCheck::Known);
    }
    if inner.log_length > state.length() {
        return Ok(LogHeadCheck::Ahead);
    }
    let position = inner.log_length - 1;
    if state.hash_at(position) == Some(inner.log_head) {
        Ok(LogHeadCheck::Known)
    } else {
        Err(TrustWarning::LogForked {
            room_id: state.room_id(),
            position,
        })
    }
}
