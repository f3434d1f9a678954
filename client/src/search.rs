//! Full-text search over the decrypted history this browser has seen ([`SearchIndex`]): a
//! simple inverted index, built in the client from the timelines (edits applied, deleted
//! messages dropped) and kept on this device only, sealed under the client-state key
//! ([`SearchIndex::seal`]); it is never sent to the server, not even sealed.
//!
//! Tokens are the lowercased runs of letters and digits (Unicode); a query matches the
//! messages that contain every one of its tokens, the last one as a prefix (so results come
//! while typing), newest first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::encoding::{DecodeError, Decoder, Encoder};
use common::membership::RoomId;
use common::primitives;
use rand_core::CryptoRngCore;

use crate::state::StateKey;
use crate::timeline::{ItemContent, TimelineItem};

/// Domain-separation label of the sealed index plaintext.
pub const SEARCH_LABEL: &[u8] = b"e2ee-chat/v1/search-index";
/// HKDF `info` deriving the index key from the client-state key.
pub const SEARCH_KEY_INFO: &[u8] = b"e2ee-chat/v1/search-index-key";
/// Most messages the index keeps; the oldest go first.
pub const MAX_DOCUMENTS: usize = 100_000;
/// Most results a query returns.
pub const MAX_RESULTS: usize = 50;

/// Where a message is: its room and server id.
pub type DocumentId = (RoomId, i64);

/// One indexed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its sender, as verified.
    pub sender: String,
    /// The sender's clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// Its text as last seen (edits applied).
    pub text: String,
}

/// A message that matches a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// Its room.
    pub room_id: RoomId,
    /// Its server id, to jump to.
    pub message_id: i64,
    /// Its sender.
    pub sender: String,
    /// The sender's clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// Its text.
    pub text: String,
}

/// The inverted index: documents by id, and for each token the documents holding it.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    documents: BTreeMap<DocumentId, Document>,
    postings: BTreeMap<String, BTreeSet<DocumentId>>,
    /// Each indexed message's timeline revision, so an unchanged one is not indexed again.
    revisions: HashMap<DocumentId, u64>,
}

/// The tokens of `text`: lowercased runs of letters and digits.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl SearchIndex {
    /// How many messages are indexed.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Indexes (or re-indexes) one message.
    pub fn insert(&mut self, id: DocumentId, document: Document) {
        self.remove(&id);
        for token in tokens(&document.text)
            .into_iter()
            .chain(tokens(&document.sender))
        {
            self.postings.entry(token).or_default().insert(id);
        }
        self.documents.insert(id, document);
        while self.documents.len() > MAX_DOCUMENTS {
            let oldest = self
                .documents
                .iter()
                .min_by_key(|(_, document)| document.sent_at_ms)
                .map(|(id, _)| *id);
            match oldest {
                Some(oldest) => self.remove(&oldest),
                None => break,
            }
        }
    }

    /// Drops one message from the index.
    pub fn remove(&mut self, id: &DocumentId) {
        self.revisions.remove(id);
        let Some(document) = self.documents.remove(id) else {
            return;
        };
        for token in tokens(&document.text)
            .into_iter()
            .chain(tokens(&document.sender))
        {
            if let Some(ids) = self.postings.get_mut(&token) {
                ids.remove(id);
                if ids.is_empty() {
                    self.postings.remove(&token);
                }
            }
        }
    }

    /// Drops every message of `room_id` (the room was deleted or left and forgotten).
    pub fn remove_room(&mut self, room_id: &RoomId) {
        let ids: Vec<DocumentId> = self
            .documents
            .range((*room_id, i64::MIN)..=(*room_id, i64::MAX))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove(&id);
        }
    }

    /// Brings the index in line with a room's timeline as now loaded: texts (and replies) are
    /// indexed with their edits, deleted messages dropped; attachments and warnings are not
    /// indexed. Messages indexed before that are not loaded now stay. Returns whether
    /// anything changed (and the index needs saving).
    pub fn index_timeline(&mut self, room_id: RoomId, items: &[TimelineItem]) -> bool {
        let mut changed = false;
        for item in items {
            let id = (room_id, item.id);
            match (&item.content, item.sent_at_ms) {
                (ItemContent::Text(text), Some(sent_at_ms)) => {
                    if self.revisions.get(&id) == Some(&item.revision)
                        && self.documents.contains_key(&id)
                    {
                        continue;
                    }
                    self.insert(
                        id,
                        Document {
                            sender: item.sender.clone(),
                            sent_at_ms,
                            text: text.clone(),
                        },
                    );
                    self.revisions.insert(id, item.revision);
                    changed = true;
                }
                (ItemContent::Deleted, _) if self.documents.contains_key(&id) => {
                    self.remove(&id);
                    changed = true;
                }
                _ => {}
            }
        }
        changed
    }

    /// The messages (of `room`, or of every room) holding every token of `query`, the last
    /// one as a prefix, newest first, at most [`MAX_RESULTS`].
    pub fn search(&self, query: &str, room: Option<RoomId>) -> Vec<SearchHit> {
        let mut terms = tokens(query);
        let Some(last) = terms.pop() else {
            return Vec::new();
        };
        // The smallest posting list first, so the intersection shrinks fast.
        let mut exact: Vec<&BTreeSet<DocumentId>> = Vec::with_capacity(terms.len());
        for term in &terms {
            match self.postings.get(term) {
                Some(ids) => exact.push(ids),
                None => return Vec::new(),
            }
        }
        exact.sort_by_key(|ids| ids.len());
        let prefixed: BTreeSet<DocumentId> = self
            .postings
            .range(last.clone()..)
            .take_while(|(token, _)| token.starts_with(&last))
            .flat_map(|(_, ids)| ids.iter().copied())
            .filter(|id| room.is_none_or(|room| id.0 == room))
            .collect();
        let mut hits: Vec<(&DocumentId, &Document)> = prefixed
            .iter()
            .filter(|id| exact.iter().all(|ids| ids.contains(*id)))
            .filter_map(|id| self.documents.get_key_value(id))
            .collect();
        hits.sort_by_key(|(id, document)| std::cmp::Reverse((document.sent_at_ms, id.1)));
        hits.into_iter()
            .take(MAX_RESULTS)
            .map(|(id, document)| SearchHit {
                room_id: id.0,
                message_id: id.1,
                sender: document.sender.clone(),
                sent_at_ms: document.sent_at_ms,
                text: document.text.clone(),
            })
            .collect()
    }

    /// The plaintext: `label || u32 count || (room_id(32) || u64 id || u64 sent_at_ms ||
    /// str(sender) || bytes(text))*` in (room, id) order. Token lists are not stored: they
    /// are rebuilt when the index is opened.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::new(SEARCH_LABEL);
        encoder.u32(u32::try_from(self.documents.len()).unwrap_or(u32::MAX));
        for ((room_id, id), document) in &self.documents {
            encoder
                .fixed(&room_id.0)
                .u64(id.max(&0).unsigned_abs())
                .u64(document.sent_at_ms)
                .string(&document.sender)
                .bytes(document.text.as_bytes());
        }
        encoder.finish()
    }

    /// Reads what [`SearchIndex::to_bytes`] wrote.
    ///
    /// # Errors
    /// [`DecodeError`] for a wrong label, too many documents, a truncated field, text that is
    /// not UTF-8, or trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        decoder.label(SEARCH_LABEL)?;
        let count = decoder.u32()? as usize;
        if count > MAX_DOCUMENTS {
            return Err(DecodeError::InvalidValue("search document count"));
        }
        let mut index = Self::default();
        for _ in 0..count {
            let room_id = RoomId(decoder.fixed()?);
            let id = i64::try_from(decoder.u64()?)
                .map_err(|_| DecodeError::InvalidValue("message id"))?;
            let sent_at_ms = decoder.u64()?;
            let sender = decoder.string()?.to_owned();
            let text = std::str::from_utf8(decoder.bytes()?)
                .map_err(|_| DecodeError::InvalidValue("search text"))?
                .to_owned();
            index.insert(
                (room_id, id),
                Document {
                    sender,
                    sent_at_ms,
                    text,
                },
            );
        }
        decoder.finish()?;
        Ok(index)
    }

    /// Seals the index for this device's storage: `nonce(24) || secretbox(index key, nonce,
    /// plaintext)`, the index key being `HKDF-SHA256(state key, info =
    /// "e2ee-chat/v1/search-index-key")` (docs/PROTOCOL.md section 11).
    pub fn seal(&self, key: &StateKey, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        primitives::secretbox_seal_random(&index_key(key), &self.to_bytes(), rng)
    }

    /// Opens what [`SearchIndex::seal`] sealed; `None` when it does not open or parse (the
    /// index is then rebuilt from what is loaded: it holds nothing that cannot be).
    pub fn open(key: &StateKey, sealed: &[u8]) -> Option<Self> {
        let plaintext = primitives::secretbox_open_prefixed(&index_key(key), sealed).ok()?;
        Self::from_bytes(&plaintext).ok()
    }
}

/// The key that seals the index, derived from the client-state key.
fn index_key(key: &StateKey) -> zeroize::Zeroizing<[u8; primitives::KEY_LEN]> {
    let mut derived = zeroize::Zeroizing::new([0u8; primitives::KEY_LEN]);
    primitives::hkdf_sha256(key.secret_bytes(), &[], SEARCH_KEY_INFO, &mut *derived)
        .expect("HKDF-SHA256 gives up to 8,160 bytes, and 32 are asked for");
    derived
}
