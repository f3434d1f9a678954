//! Measures, in headless Chromium (and natively), what a reader's browser does with a room's
//! history of 1,000 messages: open and verify each, check the log head it names and its place
//! in its sender's chain, then count the gaps. It prints the time; it asserts only that the
//! result is right, since timings belong in reports, not in pass/fail checks.

use client::chains::check_log_head;
use client::{LogHeadCheck, RoomChains};
use common::identity::IdentitySecrets;
use common::message::{open_message, seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, RoomMetadata};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "../../common/tests/support/mod.rs"]
mod support;

use support::{now_ms, report};

#[test]
fn open_and_chain_check_1000_messages() {
    const COUNT: u64 = 1_000;
    let alice = IdentitySecrets::generate(&mut OsRng);
    let room =
        create_room("alice", &alice, &RoomMetadata::named("busy"), 0, &mut OsRng).expect("room");
    let state = room.state;
    let mut sealed = Vec::new();
    let mut prev_hash = [0; 32];
    for counter in 1..=COUNT {
        let inner = InnerMessage {
            room_id: state.room_id(),
            epoch: 0,
            sender: "alice".into(),
            chain: ChainLink {
                device: [1; 16],
                counter,
                prev_hash,
            },
            log_length: state.length(),
            log_head: state.head_hash(),
            sent_at_ms: counter,
            kind: MessageKind::Text,
            body: format!("message number {counter} of a long and busy day").into_bytes(),
        };
        prev_hash = inner.chain_hash();
        sealed.push(seal_message(&inner, &room.key, &alice, &mut OsRng).expect("seals"));
    }

    let started = now_ms();
    let mut chains = RoomChains::default();
    for (id, message) in sealed.iter().enumerate() {
        let inner = open_message(message, "alice", &room.key, &state).expect("opens");
        assert_eq!(check_log_head(&inner, &state), Ok(LogHeadCheck::Known));
        chains.observe(&inner, id as i64 + 1).expect("in order");
    }
    assert!(chains.withheld(state.room_id(), None).is_empty());
    let elapsed = now_ms() - started;
    report(&format!(
        "opened, verified and chain-checked {COUNT} messages in {elapsed:.0} ms"
    ));
}
