//! Criterion benchmarks of what the message list and search cost in the client core, at the
//! sizes of the budget (docs: README, "Performance"): a timeline of 10,000 messages
//! with edits and reactions, building the search index over them, and a query. Run with
//! `cargo xtask bench` (native; the browser figures come from the web client's component
//! tests).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use client::search::SearchIndex;
use client::{Change, ItemContent, Relation, Room, ShownMessage, TimelineItem};
use common::membership::RoomId;
use criterion::{criterion_group, criterion_main, Criterion};

const COUNT: i64 = 10_000;
const ROOM: RoomId = RoomId([7; 32]);

/// A room showing 10,000 verified messages (every tenth a reply), 500 edits and 2,000
/// reactions.
fn busy_room() -> Room {
    let mut room = Room::new(ROOM);
    let hash = |id: i64| {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&id.to_be_bytes());
        hash
    };
    for id in 1..=COUNT {
        room.messages.push(ShownMessage::Verified {
            id,
            sender: if id % 3 == 0 { "bob" } else { "alice" }.into(),
            sent_at_ms: 1_000 * id as u64,
            text: format!(
                "message {id}: the ferry to the island leaves at {}",
                id % 24
            ),
            hash: hash(id),
            reply_to: (id % 10 == 0).then(|| hash(id - 1)),
        });
    }
    for n in 0..2_500 {
        let target = 1 + (n * 4) % COUNT;
        room.relations.push(Relation {
            id: COUNT + 1 + n,
            sender: if n % 5 == 0 { "alice" } else { "bob" }.into(),
            sent_at_ms: 20_000_000 + n as u64,
            target: hash(target),
            change: if n % 5 == 0 {
                Change::Edit(format!("message {target}, edited"))
            } else {
                Change::Reaction {
                    reaction: "👍".into(),
                    added: true,
                }
            },
        });
    }
    room
}

fn timeline(c: &mut Criterion) {
    let room = busy_room();
    c.bench_function(
        "timeline of 10,000 messages, 500 edits, 2,000 reactions",
        |b| {
            b.iter(|| client::timeline(&room));
        },
    );
}

fn search(c: &mut Criterion) {
    let items: Vec<TimelineItem> = client::timeline(&busy_room());
    assert!(items
        .iter()
        .any(|item| matches!(&item.content, ItemContent::Text(text) if text.contains("edited"))));
    c.bench_function("index 10,000 messages", |b| {
        b.iter(|| {
            let mut index = SearchIndex::default();
            index.index_timeline(ROOM, &items);
            index
        });
    });
    let mut index = SearchIndex::default();
    index.index_timeline(ROOM, &items);
    c.bench_function(
        "search 10,000 messages: two words, the last a prefix",
        |b| {
            b.iter(|| index.search("island ferr", None));
        },
    );
    c.bench_function("search 10,000 messages: a rare word", |b| {
        b.iter(|| index.search("edited", Some(ROOM)));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = timeline, search
}
criterion_main!(benches);
