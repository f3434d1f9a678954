//! Each sender's message chain and the log head a message names, as a reader sees them: a
//! server that drops a message from the middle, replays one under a new id (in the same
//! session and after a reload), reorders two, or shows the sender another log is caught with
//! the exact warning. Natively and in headless Chromium.

use std::collections::BTreeMap;

use client::chains::check_log_head;
use client::{ChainError, ChainHead, ChainKey, LogHeadCheck, RoomChains, TrustWarning};
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomId, RoomState};
use common::message::{ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, RoomMetadata};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const DEVICE: [u8; 16] = [5; 16];

fn room_id() -> RoomId {
    RoomId([3; 32])
}

/// alice's chain in epoch 0 of one room: `count` messages, each naming the one before.
fn chain(count: u64) -> Vec<InnerMessage> {
    let mut messages: Vec<InnerMessage> = Vec::new();
    for counter in 1..=count {
        let prev_hash = messages.last().map_or([0; 32], InnerMessage::chain_hash);
        messages.push(InnerMessage {
            room_id: room_id(),
            epoch: 0,
            sender: "alice".into(),
            chain: ChainLink {
                device: DEVICE,
                counter,
                prev_hash,
            },
            log_length: 1,
            log_head: [8; 32],
            sent_at_ms: 1_000 + counter,
            kind: MessageKind::Text,
            body: format!("message {counter}").into_bytes(),
        });
    }
    messages
}

fn withheld(count: u64) -> Vec<TrustWarning> {
    vec![TrustWarning::MessagesWithheld {
        room_id: room_id(),
        sender: "alice".into(),
        count,
    }]
}

#[test]
fn an_unbroken_chain_passes_and_the_next_link_follows_it() {
    let messages = chain(3);
    let mut chains = RoomChains::default();
    for (index, message) in messages.iter().enumerate() {
        chains
            .observe(message, 10 + index as i64)
            .expect("in order");
    }
    // The same delivery twice (history and the live event) is not news.
    chains.observe(&messages[1], 11).expect("same id again");
    assert!(chains.withheld(room_id(), None).is_empty());
    let next = chains.next_link("alice", DEVICE, 0);
    assert_eq!(next.counter, 4);
    assert_eq!(next.prev_hash, messages[2].chain_hash());
    let fresh = chains.next_link("alice", [6; 16], 0);
    assert_eq!((fresh.counter, fresh.prev_hash), (1, [0; 32]));
}

#[test]
fn a_message_dropped_from_the_middle_is_withheld() {
    let messages = chain(4);
    let mut chains = RoomChains::default();
    for (id, message) in [(10, &messages[0]), (12, &messages[2]), (13, &messages[3])] {
        chains.observe(message, id).expect("opens");
    }
    let warnings = chains.withheld(room_id(), None);
    assert_eq!(warnings, withheld(1));
    assert!(warnings[0].to_string().starts_with("messages withheld"));
    // Delivered after all (a page loaded later): the gap closes.
    chains.observe(&messages[1], 11).expect("fills the gap");
    assert!(chains.withheld(room_id(), None).is_empty());
}

#[test]
fn a_replay_under_a_new_id_is_refused() {
    let messages = chain(2);
    let mut chains = RoomChains::default();
    chains.observe(&messages[0], 10).expect("first");
    chains.observe(&messages[1], 11).expect("second");
    let error = chains.observe(&messages[0], 12).expect_err("replayed");
    assert_eq!(
        error,
        ChainError::Replayed {
            sender: "alice".into(),
            epoch: 0,
            counter: 1
        }
    );
    assert!(error.to_string().starts_with("message replayed"));
    assert_eq!(
        error.warning(room_id()),
        TrustWarning::MessageReplayed {
            room_id: room_id(),
            sender: "alice".into()
        }
    );
}

#[test]
fn after_a_reload_the_remembered_head_catches_replays_and_gaps() {
    let messages = chain(5);
    let mut before = RoomChains::default();
    for (index, message) in messages[..3].iter().enumerate() {
        before
            .observe(message, 10 + index as i64)
            .expect("in order");
    }
    let heads = before.heads();
    let key = ChainKey::of(&messages[0]);
    assert_eq!(
        heads[&key],
        ChainHead {
            counter: 3,
            hash: messages[2].chain_hash(),
            message_id: 12
        }
    );

    // After a reload: the same history comes back under the same ids and passes.
    let mut reloaded = RoomChains::new(heads.clone());
    for (index, message) in messages[..3].iter().enumerate() {
        reloaded
            .observe(message, 10 + index as i64)
            .expect("same ids");
    }
    // Message 2 served again under a new id, after the remembered head: a replay.
    assert!(matches!(
        reloaded.observe(&messages[1], 40),
        Err(ChainError::Replayed { counter: 2, .. })
    ));
    // The history serves 1 to 3 and 5: 4 was withheld between the sessions.
    let mut later = RoomChains::new(heads.clone());
    for (index, message) in messages[..3].iter().enumerate() {
        later.observe(message, 10 + index as i64).expect("same ids");
    }
    later.observe(&messages[4], 14).expect("chains on");
    assert_eq!(later.withheld(room_id(), None), withheld(1));
    // Serving only 5, the head (3) itself is missing too.
    let mut head_missing = RoomChains::new(heads.clone());
    head_missing.observe(&messages[4], 14).expect("chains on");
    assert_eq!(head_missing.withheld(room_id(), None), withheld(2));
    // Unless the loaded history does not reach back to the head: then nothing is claimed.
    assert!(head_missing.withheld(room_id(), Some(13)).is_empty());
    assert_eq!(head_missing.oldest_head_id(), Some(12));
    // A server that serves nothing at all of a chain whose head is in range is caught too.
    assert_eq!(
        RoomChains::new(heads.clone()).withheld(room_id(), None),
        withheld(1)
    );
    // The next link continues the remembered chain, also before anything was seen.
    let next = RoomChains::new(heads).next_link("alice", DEVICE, 0);
    assert_eq!(next.counter, 4);
    assert_eq!(next.prev_hash, messages[2].chain_hash());
}

#[test]
fn reordered_and_broken_chains_are_refused() {
    let messages = chain(3);
    let mut chains = RoomChains::default();
    chains
        .observe(&messages[1], 20)
        .expect("second, first seen");
    // The first message stored after the second: reordered.
    let error = chains.observe(&messages[0], 21).expect_err("reordered");
    assert!(matches!(error, ChainError::Reordered { counter: 1, .. }));
    assert!(error.to_string().starts_with("messages reordered"));

    // A third message that does not name the second: a broken chain.
    let mut forked = messages[2].clone();
    forked.chain.prev_hash = [1; 32];
    let error = chains.observe(&forked, 22).expect_err("broken");
    assert!(matches!(error, ChainError::Broken { counter: 3, .. }));
    assert_eq!(
        error.warning(room_id()),
        TrustWarning::MessagesReordered {
            room_id: room_id(),
            sender: "alice".into()
        }
    );
    chains.observe(&messages[2], 23).expect("the real third");
}

#[test]
fn chains_are_per_device_and_epoch() {
    let mut chains = RoomChains::default();
    let mut other_device = chain(1).remove(0);
    other_device.chain.device = [6; 16];
    let mut next_epoch = chain(1).remove(0);
    next_epoch.epoch = 1;
    chains.observe(&chain(1)[0], 1).expect("alice, device 5");
    chains.observe(&other_device, 2).expect("alice, device 6");
    chains.observe(&next_epoch, 3).expect("alice, epoch 1");
    assert!(chains.withheld(room_id(), None).is_empty());
    assert_eq!(chains.heads().len(), 3);
    let _: BTreeMap<ChainKey, ChainHead> = chains.heads();
}

#[test]
fn the_log_head_a_message_names_is_checked() {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let created =
        create_room("alice", &alice, &RoomMetadata::named("ops"), 1, &mut OsRng).expect("room");
    let state: RoomState = created.state;
    let genesis_head = state.head_hash();
    let entry = state
        .next_entry(
            "alice",
            2,
            LogAction::AddMember {
                username: "bob".into(),
                keys: IdentitySecrets::generate(&mut OsRng).public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice);
    let mut longer = state.clone();
    longer.apply(&entry).expect("add");

    let mut message = chain(1).remove(0);
    message.room_id = state.room_id();
    message.log_length = 1;
    message.log_head = genesis_head;
    assert_eq!(check_log_head(&message, &state), Ok(LogHeadCheck::Known));
    assert_eq!(check_log_head(&message, &longer), Ok(LogHeadCheck::Known));
    message.log_length = 2;
    message.log_head = longer.head_hash();
    assert_eq!(check_log_head(&message, &state), Ok(LogHeadCheck::Ahead));
    assert_eq!(check_log_head(&message, &longer), Ok(LogHeadCheck::Known));
    // Written at another entry 1 than the reader's: the server forked the log.
    message.log_head = [4; 32];
    let warning = check_log_head(&message, &longer).expect_err("forked");
    assert_eq!(
        warning,
        TrustWarning::LogForked {
            room_id: state.room_id(),
            position: 1
        }
    );
}

#[test]
fn the_state_remembers_the_furthest_chain_heads() {
    let messages = chain(3);
    let mut chains = RoomChains::default();
    chains.observe(&messages[0], 1).expect("first");
    let mut state = client::ClientState::default();
    assert!(state.remember_chains(room_id(), chains.heads()));
    assert!(
        !state.remember_chains(room_id(), chains.heads()),
        "unchanged"
    );
    chains.observe(&messages[1], 2).expect("second");
    assert!(state.remember_chains(room_id(), chains.heads()));
    let key = ChainKey::of(&messages[0]);
    assert_eq!(state.chains[&room_id()][&key].counter, 2);
    // An older view does not move the head back.
    let mut stale = RoomChains::default();
    stale.observe(&messages[0], 1).expect("first");
    assert!(!state.remember_chains(room_id(), stale.heads()));
    assert!(state.forget_chains(&room_id()));
    assert!(state.chains.is_empty());
}

#[test]
fn a_gap_before_the_remembered_head_is_withheld_too() {
    // The reader saw messages 1 to 3 before; after a reload the server serves 1 and 3 only.
    let messages = chain(3);
    let mut before = RoomChains::default();
    for (index, message) in messages.iter().enumerate() {
        before
            .observe(message, 10 + index as i64)
            .expect("in order");
    }
    let mut reloaded = RoomChains::new(before.heads());
    reloaded.observe(&messages[0], 10).expect("first");
    reloaded.observe(&messages[2], 12).expect("third");
    assert_eq!(reloaded.withheld(room_id(), None), withheld(1));
}

#[test]
fn only_the_latest_devices_of_a_sender_are_remembered() {
    let mut state = client::ClientState::default();
    for device in 0..20u8 {
        let heads = BTreeMap::from([(
            ChainKey {
                sender: "alice".into(),
                device: [device; 16],
                epoch: 0,
            },
            ChainHead {
                counter: 1,
                hash: [device; 32],
                message_id: i64::from(device),
            },
        )]);
        state.remember_chains(room_id(), heads);
    }
    let kept = &state.chains[&room_id()];
    assert_eq!(kept.len(), client::state::MAX_DEVICES_PER_SENDER);
    assert!(
        kept.values().all(|head| head.message_id >= 4),
        "the oldest go first"
    );
}
