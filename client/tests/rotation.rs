//! Scheduled rotation: an epoch is due after 7 days or 1,000 messages, never in a deleted room.
//! Natively and in headless Chromium.

use std::collections::BTreeMap;

use client::rotation::{rotation_due, MAX_EPOCH_AGE_MS, MAX_EPOCH_MESSAGES};
use client::{ChainHead, ChainKey, RoomChains};
use common::identity::IdentitySecrets;
use common::membership::LogAction;
use common::room_key::{create_room, rotate, RoomMetadata};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const CREATED_AT: u64 = 1_700_000_000_000;

/// Chains of `epoch` whose furthest counters add up to `messages`, over two devices.
fn chains_with(epoch: u64, messages: u64) -> RoomChains {
    let head = |device: u8, counter: u64| {
        (
            ChainKey {
                sender: "alice".into(),
                device: [device; 16],
                epoch,
            },
            ChainHead {
                counter,
                hash: [device; 32],
                message_id: i64::from(device),
            },
        )
    };
    let first = messages / 2;
    RoomChains::new(BTreeMap::from([head(1, first), head(2, messages - first)]))
}

#[test]
fn an_epoch_is_due_after_a_week_or_a_thousand_messages() {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let room = create_room(
        "alice",
        &alice,
        &RoomMetadata::named("ops"),
        CREATED_AT,
        &mut OsRng,
    )
    .expect("room");
    let state = room.state;
    let quiet = RoomChains::default();
    assert!(!rotation_due(
        &state,
        &quiet,
        CREATED_AT + MAX_EPOCH_AGE_MS - 1
    ));
    assert!(rotation_due(&state, &quiet, CREATED_AT + MAX_EPOCH_AGE_MS));
    assert!(
        !rotation_due(&state, &quiet, CREATED_AT - 5),
        "a start in the future"
    );
    assert_eq!(chains_with(0, 999).messages_in_epoch(0), 999);
    assert!(!rotation_due(
        &state,
        &chains_with(0, MAX_EPOCH_MESSAGES - 1),
        CREATED_AT
    ));
    assert!(rotation_due(
        &state,
        &chains_with(0, MAX_EPOCH_MESSAGES),
        CREATED_AT
    ));
    // Messages of another epoch do not count.
    assert!(!rotation_due(
        &state,
        &chains_with(1, MAX_EPOCH_MESSAGES),
        CREATED_AT
    ));

    // A rotation starts a fresh epoch, counted from its own signed time.
    let later = CREATED_AT + MAX_EPOCH_AGE_MS + 10;
    let rotation = rotate(
        &state,
        "alice",
        &alice,
        &RoomMetadata::named("ops"),
        later,
        &mut OsRng,
    )
    .expect("rotation");
    let rotated = rotation.state;
    assert_eq!(
        rotated.epoch(1).map(|epoch| epoch.started_at_ms),
        Some(later)
    );
    assert!(!rotation_due(&rotated, &chains_with(0, 5_000), later + 1));

    // A deleted room is never due.
    let mut deleted = rotated.clone();
    let entry = deleted
        .next_entry("alice", later + 2, LogAction::DeleteRoom)
        .sign(&alice);
    deleted.apply(&entry).expect("delete");
    assert!(!rotation_due(
        &deleted,
        &quiet,
        later + 10 * MAX_EPOCH_AGE_MS
    ));
}
