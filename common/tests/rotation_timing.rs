//! Measures, in headless Chromium (and natively), what an admin's browser does after removing
//! someone from a 100-member room: replay the log, rotate, and seal the new key to the 99
//! remaining members. It prints the time; it asserts only that the result is right, since
//! timings belong in reports, not in pass/fail checks.

use common::identity::IdentitySecrets;
use common::membership::{replay, LogAction, Role};
use common::room_key::{create_room, rotate, KeyEnvelope, RoomMetadata};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod support;

use support::{now_ms, report};

#[test]
fn rotate_and_reseal_a_room_of_100_members() {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let room =
        create_room("alice", &alice, &RoomMetadata::named("big"), 0, &mut OsRng).expect("room");
    let mut state = room.state.clone();
    let mut log = vec![room.genesis.clone()];
    let mut people = Vec::new();
    for index in 1..=100 {
        let name = format!("member{index}");
        let secrets = IdentitySecrets::generate(&mut OsRng);
        let entry = state
            .next_entry(
                "alice",
                index,
                LogAction::AddMember {
                    username: name.clone(),
                    keys: secrets.public_keys(),
                    role: Role::Member,
                },
            )
            .sign(&alice);
        state.apply(&entry).expect("applies");
        log.push(entry);
        people.push((name, secrets));
    }
    let removal = state
        .next_entry(
            "alice",
            200,
            LogAction::RemoveMember {
                username: "member100".into(),
            },
        )
        .sign(&alice);
    state.apply(&removal).expect("applies");
    log.push(removal);

    let started = now_ms();
    let replayed = replay(&log).expect("replays");
    let replayed_at = now_ms();
    let rotation = rotate(
        &replayed,
        "alice",
        &alice,
        &RoomMetadata::named("big"),
        300,
        &mut OsRng,
    )
    .expect("rotates");
    let envelopes: Vec<KeyEnvelope> = rotation
        .state
        .members()
        .keys()
        .map(|name| {
            KeyEnvelope::seal(
                &rotation.state,
                1,
                &rotation.key,
                name,
                "alice",
                &alice,
                &mut OsRng,
            )
            .expect("seals")
        })
        .collect();
    let finished = now_ms();
    report(&format!(
        "rotation timing: replay of 102 entries {:.1} ms; rotate and seal to {} members {:.1} ms; total {:.1} ms",
        replayed_at - started,
        envelopes.len(),
        finished - replayed_at,
        finished - started
    ));
    assert_eq!(envelopes.len(), 100);
    let (name, secrets) = &people[0];
    let envelope = envelopes
        .iter()
        .find(|envelope| &envelope.recipient == name)
        .expect("sealed to member1");
    assert_eq!(
        envelope
            .open(&rotation.state, name, secrets)
            .expect("opens"),
        rotation.key
    );
    assert!(envelopes
        .iter()
        .all(|envelope| envelope.recipient != "member100"));
}
