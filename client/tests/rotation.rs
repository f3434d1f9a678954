//! Scheduled rotation: an epoch is due after 7 days or 1,000 messages, never in a deleted room.
//! Natively and in headless Chromium.

use client::rotation::{rotation_due, MAX_START_LEAD_MS};
use client::RoomChains;
use common::identity::IdentitySecrets;
use common::membership::RoomId;
use common::membership::{LogAction, LogErrorKind, RotationSchedule};
use common::message::{ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, rotate, RoomMetadata};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const CREATED_AT: u64 = 1_700_000_000_000;
/// The default schedule's age, in milliseconds: 7 days.
const MAX_EPOCH_AGE_MS: u64 = 7 * RotationSchedule::DAY_MS;
/// The default schedule's message count.
const MAX_EPOCH_MESSAGES: u64 = 1_000;
/// The youngest an epoch may be to be rotated for its message count.
const MIN_EPOCH_AGE_MS: u64 = RotationSchedule::MIN_AGE_MS;

/// Chains of `epoch` in which `messages` messages of alice were seen, in one chain.
fn chains_with(epoch: u64, messages: u64) -> RoomChains {
    let mut chains = RoomChains::default();
    let mut prev_hash = [0; 32];
    for counter in 1..=messages {
        let inner = InnerMessage {
            room_id: RoomId([3; 32]),
            epoch,
            sender: "alice".into(),
            chain: ChainLink {
                device: [1; 16],
                counter,
                prev_hash,
            },
            log_length: 1,
            log_head: [8; 32],
            sent_at_ms: counter,
            kind: MessageKind::Text,
            body: Vec::new(),
        };
        prev_hash = inner.chain_hash();
        chains.observe(&inner, counter as i64).expect("in order");
    }
    chains
}

/// alice and the room "ops" she created at [`CREATED_AT`].
fn alices_room() -> (IdentitySecrets, common::room_key::NewRoom) {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let room = create_room(
        "alice",
        &alice,
        &RoomMetadata::named("ops"),
        CREATED_AT,
        &mut OsRng,
    )
    .expect("room");
    (alice, room)
}

#[test]
fn an_epoch_is_due_after_a_week_or_a_thousand_messages() {
    let (alice, room) = alices_room();
    let state = room.state;
    assert_eq!(
        state.rotation_schedule(),
        &RotationSchedule {
            max_age_ms: MAX_EPOCH_AGE_MS,
            max_messages: MAX_EPOCH_MESSAGES as u32,
        },
        "a room starts with the default schedule"
    );
    let quiet = RoomChains::default();
    assert!(!rotation_due(
        &state,
        &quiet,
        CREATED_AT + MAX_EPOCH_AGE_MS - 1
    ));
    assert!(rotation_due(&state, &quiet, CREATED_AT + MAX_EPOCH_AGE_MS));
    assert!(
        !rotation_due(&state, &quiet, CREATED_AT - 5),
        "a start a little in the future: a skewed clock"
    );
    assert!(
        rotation_due(&state, &quiet, CREATED_AT - MAX_START_LEAD_MS - 1),
        "a start more than a day ahead would postpone rotation for ever: due at once"
    );
    let busy = chains_with(0, MAX_EPOCH_MESSAGES);
    assert_eq!(busy.messages_in_epoch(0), MAX_EPOCH_MESSAGES);
    let hour_later = CREATED_AT + MIN_EPOCH_AGE_MS;
    assert!(!rotation_due(
        &state,
        &chains_with(0, MAX_EPOCH_MESSAGES - 1),
        hour_later
    ));
    assert!(rotation_due(&state, &busy, hour_later));
    assert!(
        !rotation_due(&state, &busy, hour_later - 1),
        "not within the first hour"
    );
    // Messages of another epoch do not count.
    assert!(!rotation_due(
        &state,
        &chains_with(1, MAX_EPOCH_MESSAGES),
        hour_later
    ));
    // A member numbering one message 1,000 does not make the room look busy.
    let mut inflated = RoomChains::default();
    let message = InnerMessage {
        room_id: RoomId([3; 32]),
        epoch: 0,
        sender: "mallory".into(),
        chain: ChainLink {
            device: [2; 16],
            counter: MAX_EPOCH_MESSAGES,
            prev_hash: [4; 32],
        },
        log_length: 1,
        log_head: [8; 32],
        sent_at_ms: 1,
        kind: MessageKind::Text,
        body: Vec::new(),
    };
    inflated
        .observe(&message, 1)
        .expect("a first sight of this chain");
    assert_eq!(inflated.messages_in_epoch(0), 1);
    assert!(!rotation_due(&state, &inflated, hour_later));

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
    assert!(!rotation_due(&rotated, &busy, later + MIN_EPOCH_AGE_MS));

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

#[test]
fn the_rooms_schedule_sets_when_an_epoch_is_due() {
    let (alice, room) = alices_room();
    let mut state = room.state;
    let schedule = RotationSchedule {
        max_age_ms: RotationSchedule::DAY_MS,
        max_messages: 50,
    };
    let entry = state
        .next_entry(
            "alice",
            CREATED_AT + 1,
            LogAction::SetRotationSchedule { schedule },
        )
        .sign(&alice);
    state.apply(&entry).expect("an admin sets the schedule");
    assert_eq!(state.rotation_schedule(), &schedule);

    let quiet = RoomChains::default();
    let day = CREATED_AT + RotationSchedule::DAY_MS;
    assert!(!rotation_due(&state, &quiet, day - 1));
    assert!(rotation_due(&state, &quiet, day));
    let hour_later = CREATED_AT + MIN_EPOCH_AGE_MS;
    assert!(!rotation_due(&state, &chains_with(0, 49), hour_later));
    assert!(rotation_due(&state, &chains_with(0, 50), hour_later));
    // Fifty messages within the first hour are not yet enough.
    assert!(!rotation_due(&state, &chains_with(0, 50), hour_later - 1));

    // A schedule out of bounds is refused, and the state keeps the one it had.
    for (max_age_ms, max_messages) in [
        (RotationSchedule::MIN_AGE_MS - 1, 50),
        (RotationSchedule::MAX_AGE_MS + 1, 50),
        (RotationSchedule::DAY_MS, RotationSchedule::MIN_MESSAGES - 1),
        (RotationSchedule::DAY_MS, RotationSchedule::MAX_MESSAGES + 1),
    ] {
        let entry = state
            .next_entry(
                "alice",
                CREATED_AT + 2,
                LogAction::SetRotationSchedule {
                    schedule: RotationSchedule {
                        max_age_ms,
                        max_messages,
                    },
                },
            )
            .sign(&alice);
        assert!(matches!(
            state.apply(&entry),
            Err(LogErrorKind::InvalidSchedule(_))
        ));
    }
    assert_eq!(state.rotation_schedule(), &schedule);
}
