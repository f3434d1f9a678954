//! A room's messages as a reader sees them ([`timeline`]): the shown messages of a [`Room`]
//! with the verified edits, deletions and reactions that name them applied, replies joined to
//! what they answer, and a warning in place of every edit or deletion that someone other than
//! the message's sender wrote.
//!
//! Every rule here is checked by each reader from signed messages (docs/PROTOCOL.md section
//! 7.1): the server cannot edit, delete or react for anyone, nor point a relation at another
//! message, since a relation names its target by the target's hash.

use std::collections::{BTreeMap, HashMap};

use common::attachment::AttachmentRef;
use common::message::MessageHash;

use crate::room::{Change, Room, ShownMessage};

/// Characters of a replied-to message quoted above the reply.
pub const EXCERPT_CHARS: usize = 80;

/// One line of a room's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineItem {
    /// Server id of the message (or of the refused relation, for its warning).
    pub id: i64,
    /// The sender: verified, or the one the server claims for a warning.
    pub sender: String,
    /// Sender's clock, milliseconds since the Unix epoch; `None` for a warning.
    pub sent_at_ms: Option<u64>,
    /// The message's hash, by which replies, edits and reactions name it; `None` for a
    /// warning.
    pub hash: Option<MessageHash>,
    /// What to show.
    pub content: ItemContent,
    /// Whether the text shown is an edit of the one first sent.
    pub edited: bool,
    /// For a reply, the message it answers.
    pub reply_to: Option<ReplyPreview>,
    /// Reactions, by reaction in first-seen order, each with who reacted (sorted).
    pub reactions: Vec<ReactionCount>,
    /// Grows whenever what is shown of this item changes (an edit, deletion or reaction of
    /// it or of the message it answers), so a view keyed by `(id, revision)` redraws it.
    pub revision: u64,
}

/// What a timeline item shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemContent {
    /// Text (the latest edit, if any).
    Text(String),
    /// An attachment, fetched and checked when opened.
    Attachment(Box<AttachmentRef>),
    /// Its sender took the message back.
    Deleted,
    /// A message that failed a check, or a relation that was refused: never shown as text.
    Warning(String),
}

/// The message a reply answers, as far as it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPreview {
    /// The hash the reply names.
    pub target: MessageHash,
    /// The answered message, once loaded (older history may not be).
    pub quoted: Option<Quoted>,
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// Its server id, to jump to it.
    pub id: i64,
    /// Its sender.
    pub sender: String,
    /// The start of its current text (at most [`EXCERPT_CHARS`] characters, on one line), the
    /// attachment's name, or that it was deleted.
    pub excerpt: String,
}

/// One reaction to a message and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    /// The reaction, usually one emoji.
    pub reaction: String,
    /// Who reacted so, sorted.
    pub senders: Vec<String>,
}

/// What the relations did to one message.
#[derive(Default)]
struct Applied {
    /// The latest edit: `(sent_at_ms, id)` and its text.
    edit: Option<((u64, i64), String)>,
    deleted: bool,
    /// Per `(reaction, sender)`, the latest: `(sent_at_ms, id)` and whether added.
    reactions: BTreeMap<(String, String), ((u64, i64), bool)>,
    /// Reactions in the order first seen.
    reaction_order: Vec<String>,
    count: u64,
}

/// `room`'s messages with their edits, deletions and reactions applied, in id order.
///
/// Rules (each reader applies them alike):
/// - an edit or deletion counts only when its sender is the target's sender; otherwise a
///   warning takes its place in the timeline ("an edit forged by another member");
/// - only texts and replies are edited; of several edits the one with the latest sender's
///   clock wins (the server id breaks ties);
/// - a deleted message shows a placeholder, without its reactions;
/// - each member's latest reaction event per reaction counts (added or withdrawn);
/// - relations whose target is not loaded wait: they apply once an older page brings it.
pub fn timeline(room: &Room) -> Vec<TimelineItem> {
    let mut by_hash: HashMap<MessageHash, usize> = HashMap::with_capacity(room.messages.len());
    for (index, message) in room.messages.iter().enumerate() {
        if let Some(hash) = message.hash() {
            by_hash.entry(hash).or_insert(index);
        }
    }
    let mut applied: HashMap<usize, Applied> = HashMap::new();
    let mut refused: Vec<TimelineItem> = Vec::new();
    for relation in &room.relations {
        let Some(&index) = by_hash.get(&relation.target) else {
            continue;
        };
        let target = &room.messages[index];
        let target_sender = target.sender();
        let refuse = |reason: String| TimelineItem {
            id: relation.id,
            sender: relation.sender.clone(),
            sent_at_ms: None,
            hash: None,
            content: ItemContent::Warning(reason),
            edited: false,
            reply_to: None,
            reactions: Vec::new(),
            revision: 0,
        };
        let order = (relation.sent_at_ms, relation.id);
        let entry = applied.entry(index).or_default();
        match &relation.change {
            Change::Edit(_) | Change::Delete if relation.sender != target_sender => {
                let what = if matches!(relation.change, Change::Delete) {
                    "delete"
                } else {
                    "edit"
                };
                refused.push(refuse(format!(
                    "{} tried to {what} a message of {target_sender}'s; only its sender may, \
                     so this is refused",
                    relation.sender
                )));
            }
            Change::Edit(_) if !matches!(target, ShownMessage::Verified { .. }) => {
                refused.push(refuse("an edit of a message that has no text".into()));
            }
            Change::Edit(text) => {
                entry.count += 1;
                if entry
                    .edit
                    .as_ref()
                    .is_none_or(|(latest, _)| order > *latest)
                {
                    entry.edit = Some((order, text.clone()));
                }
            }
            Change::Delete => {
                entry.count += 1;
                entry.deleted = true;
            }
            Change::Reaction { reaction, added } => {
                entry.count += 1;
                if !entry.reaction_order.contains(reaction) {
                    entry.reaction_order.push(reaction.clone());
                }
                let latest = entry
                    .reactions
                    .entry((reaction.clone(), relation.sender.clone()))
                    .or_insert((order, *added));
                if order >= latest.0 {
                    *latest = (order, *added);
                }
            }
        }
    }

    let mut items: Vec<TimelineItem> = room
        .messages
        .iter()
        .enumerate()
        .map(|(index, message)| item(message, applied.get(&index)))
        .collect();
    // Replies quote what they answer as it now reads.
    let quotes: Vec<Option<(Quoted, u64)>> = items
        .iter()
        .map(|item| {
            let target = item.reply_to.as_ref()?.target;
            let index = *by_hash.get(&target)?;
            let answered = &items[index];
            let excerpt = match &answered.content {
                ItemContent::Text(text) => excerpt(text),
                ItemContent::Attachment(attachment) => format!("📎 {}", attachment.name),
                ItemContent::Deleted => "deleted message".to_owned(),
                ItemContent::Warning(_) => return None,
            };
            let quoted = Quoted {
                id: answered.id,
                sender: answered.sender.clone(),
                excerpt,
            };
            Some((quoted, answered.revision))
        })
        .collect();
    for (item, quote) in items.iter_mut().zip(quotes) {
        if let (Some(preview), Some((quoted, revision))) = (item.reply_to.as_mut(), quote) {
            preview.quoted = Some(quoted);
            item.revision += revision;
        }
    }
    if !refused.is_empty() {
        items.extend(refused);
        items.sort_by_key(|item| item.id);
    }
    items
}

fn item(message: &ShownMessage, applied: Option<&Applied>) -> TimelineItem {
    let mut item = match message {
        ShownMessage::Verified {
            id,
            sender,
            sent_at_ms,
            text,
            hash,
            reply_to,
        } => TimelineItem {
            id: *id,
            sender: sender.clone(),
            sent_at_ms: Some(*sent_at_ms),
            hash: Some(*hash),
            content: ItemContent::Text(text.clone()),
            edited: false,
            reply_to: reply_to.map(|target| ReplyPreview {
                target,
                quoted: None,
            }),
            reactions: Vec::new(),
            revision: 0,
        },
        ShownMessage::Attachment {
            id,
            sender,
            sent_at_ms,
            attachment,
            hash,
        } => TimelineItem {
            id: *id,
            sender: sender.clone(),
            sent_at_ms: Some(*sent_at_ms),
            hash: Some(*hash),
            content: ItemContent::Attachment(attachment.clone()),
            edited: false,
            reply_to: None,
            reactions: Vec::new(),
            revision: 0,
        },
        ShownMessage::Warning {
            id,
            claimed_sender,
            reason,
        } => TimelineItem {
            id: *id,
            sender: claimed_sender.clone(),
            sent_at_ms: None,
            hash: None,
            content: ItemContent::Warning(reason.clone()),
            edited: false,
            reply_to: None,
            reactions: Vec::new(),
            revision: 0,
        },
    };
    let Some(applied) = applied else {
        return item;
    };
    item.revision = applied.count;
    if applied.deleted {
        item.content = ItemContent::Deleted;
        item.reply_to = None;
        return item;
    }
    if let Some((_, text)) = &applied.edit {
        item.content = ItemContent::Text(text.clone());
        item.edited = true;
    }
    for reaction in &applied.reaction_order {
        let senders: Vec<String> = applied
            .reactions
            .range((reaction.clone(), String::new())..)
            .take_while(|((given, _), _)| given == reaction)
            .filter(|(_, (_, added))| *added)
            .map(|((_, sender), _)| sender.clone())
            .collect();
        if !senders.is_empty() {
            item.reactions.push(ReactionCount {
                reaction: reaction.clone(),
                senders,
            });
        }
    }
    item
}

/// The first line of `text`, cut to [`EXCERPT_CHARS`] characters with an ellipsis.
fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut excerpt: String = line.chars().take(EXCERPT_CHARS).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    excerpt
}
