//! The search index: what it indexes from a timeline (edits applied, deletions dropped), how a
//! query matches (every token, the last as a prefix, in one room or all, newest first), and
//! its sealed form on the device (opens under its own key only, refuses tampering). Natively
//! and in headless Chromium.

use client::search::{tokens, Document, SearchIndex, MAX_RESULTS};
use client::{ItemContent, StateKey, TimelineItem};
use common::identity::IdentitySecrets;
use common::membership::RoomId;
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const ROOM: RoomId = RoomId([1; 32]);
const OTHER: RoomId = RoomId([2; 32]);

fn item(id: i64, sender: &str, content: ItemContent, revision: u64) -> TimelineItem {
    TimelineItem {
        id,
        sender: sender.into(),
        sent_at_ms: Some(1_000 * id as u64),
        hash: Some([id as u8; 32]),
        content,
        edited: revision > 0,
        reply_to: None,
        reactions: Vec::new(),
        revision,
    }
}

fn text(id: i64, sender: &str, text: &str) -> TimelineItem {
    item(id, sender, ItemContent::Text(text.into()), 0)
}

fn ids(hits: &[client::search::SearchHit]) -> Vec<(RoomId, i64)> {
    hits.iter()
        .map(|hit| (hit.room_id, hit.message_id))
        .collect()
}

#[test]
fn tokens_are_lowercased_runs_of_letters_and_digits() {
    assert_eq!(
        tokens("Grüße, Zoë! Meet@8pm — room 42b"),
        ["grüße", "zoë", "meet", "8pm", "room", "42b"]
    );
    assert!(tokens("  …!  ").is_empty());
}

#[test]
fn a_query_needs_every_token_the_last_as_a_prefix_newest_first() {
    let mut index = SearchIndex::default();
    assert!(index.index_timeline(
        ROOM,
        &[
            text(1, "alice", "The budget meeting moved to Friday"),
            text(2, "bob", "Budget approved"),
            text(3, "alice", "Lunch on Friday?"),
        ],
    ));
    assert!(index.index_timeline(OTHER, &[text(7, "carol", "friday budget review")]));
    assert_eq!(index.len(), 4);
    assert_eq!(
        ids(&index.search("budget fri", None)),
        [(OTHER, 7), (ROOM, 1)],
        "both tokens, newest first"
    );
    assert_eq!(
        ids(&index.search("BUDGET", Some(ROOM))),
        [(ROOM, 2), (ROOM, 1)]
    );
    assert_eq!(ids(&index.search("lunch", Some(OTHER))), []);
    assert!(index.search("nothing here", None).is_empty());
    assert!(index.search("   ", None).is_empty());
    // The sender's name matches too.
    assert_eq!(ids(&index.search("carol", None)), [(OTHER, 7)]);
}

#[test]
fn edits_replace_the_text_deletions_drop_it_and_unchanged_items_are_skipped() {
    let mut index = SearchIndex::default();
    index.index_timeline(ROOM, &[text(1, "alice", "teh plan")]);
    assert!(
        !index.index_timeline(ROOM, &[text(1, "alice", "teh plan")]),
        "nothing changed"
    );
    index.index_timeline(
        ROOM,
        &[item(1, "alice", ItemContent::Text("the plan".into()), 1)],
    );
    assert!(index.search("teh", None).is_empty(), "the old text is gone");
    assert_eq!(ids(&index.search("the plan", None)), [(ROOM, 1)]);
    assert!(index.index_timeline(ROOM, &[item(1, "alice", ItemContent::Deleted, 2)]));
    assert!(index.search("plan", None).is_empty());
    assert!(index.is_empty());
    // Warnings are never indexed.
    index.index_timeline(
        ROOM,
        &[item(2, "mallory", ItemContent::Warning("forged".into()), 0)],
    );
    assert!(index.search("forged", None).is_empty());
}

#[test]
fn messages_indexed_before_stay_when_not_loaded_and_a_room_can_be_dropped() {
    let mut index = SearchIndex::default();
    index.index_timeline(ROOM, &[text(1, "alice", "from an older page")]);
    index.index_timeline(ROOM, &[text(90, "alice", "newest page only")]);
    assert_eq!(ids(&index.search("older", None)), [(ROOM, 1)]);
    index.index_timeline(OTHER, &[text(5, "bob", "older too")]);
    index.remove_room(&ROOM);
    assert_eq!(ids(&index.search("older", None)), [(OTHER, 5)]);
}

#[test]
fn results_are_capped() {
    let mut index = SearchIndex::default();
    let items: Vec<TimelineItem> = (1..=200).map(|id| text(id, "bob", "same words")).collect();
    index.index_timeline(ROOM, &items);
    let hits = index.search("same", None);
    assert_eq!(hits.len(), MAX_RESULTS);
    assert_eq!(hits[0].message_id, 200);
}

#[test]
fn the_sealed_index_opens_under_its_key_only_and_round_trips() {
    let key = StateKey::derive(&IdentitySecrets::generate(&mut OsRng));
    let other = StateKey::derive(&IdentitySecrets::generate(&mut OsRng));
    let mut index = SearchIndex::default();
    index.index_timeline(ROOM, &[text(1, "alice", "Zoë's café at 8")]);
    index.index_timeline(OTHER, &[text(2, "bob", "second room")]);
    let sealed = index.seal(&key, &mut OsRng);
    assert!(
        !sealed
            .windows("café".len())
            .any(|window| window == "café".as_bytes()),
        "sealed, the text is not readable"
    );
    let opened = SearchIndex::open(&key, &sealed).expect("opens");
    assert_eq!(opened.to_bytes(), index.to_bytes());
    assert_eq!(ids(&opened.search("cafe", None)), [], "no accent folding");
    assert_eq!(ids(&opened.search("café", None)), [(ROOM, 1)]);
    assert!(SearchIndex::open(&other, &sealed).is_none());
    let mut tampered = sealed.clone();
    tampered[30] ^= 1;
    assert!(SearchIndex::open(&key, &tampered).is_none());
    let mut trailing = index.to_bytes();
    trailing.push(0);
    assert!(SearchIndex::from_bytes(&trailing).is_err());
    let document = Document {
        sender: "alice".into(),
        sent_at_ms: 5,
        text: "x".into(),
    };
    let mut single = SearchIndex::default();
    single.insert((ROOM, 9), document);
    assert_eq!(single.len(), 1);
}
