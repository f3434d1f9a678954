//! Replays the committed fuzzing corpora (`fuzz/corpus/<target>/`, grown by `cargo xtask
//! fuzz`) through the same decoders the cargo-fuzz targets in `fuzz/fuzz_targets/` drive, so
//! every input that once found a crash, and every interesting one, stays a regression test on
//! stable Rust. Each target must have a corpus.
#![cfg(not(target_family = "wasm"))]

use std::path::PathBuf;

use client::ClientState;
use common::identity::{IdentitySecrets, PublicIdentity};
use common::membership::{replay, SignedLogEntry};
use common::message::{open_message, SealedMessage};
use common::primitives;
use common::room_key::{create_room, KeyEnvelope, RoomMetadata};

/// Every input of `target`'s corpus.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("no corpus at {}: {error}", directory.display()));
    let inputs: Vec<Vec<u8>> = entries
        .map(|entry| std::fs::read(entry.expect("corpus entry").path()).expect("readable"))
        .collect();
    assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    inputs
}

#[test]
fn log_entry_corpus() {
    for data in corpus("log_entry") {
        if let Ok(entry) = SignedLogEntry::from_bytes(&data) {
            let _ = replay(&[entry]);
        }
    }
}

#[test]
fn message_corpus() {
    let alice = IdentitySecrets::from_bytes([0x20; 32], [0x40; 32]);
    let room = create_room(
        "alice",
        &alice,
        &RoomMetadata::named("fuzz"),
        1,
        &mut common::OsRng,
    )
    .expect("room");
    let nonce = [7u8; 24];
    for data in corpus("message") {
        let sealed = SealedMessage {
            room_id: room.state.room_id(),
            epoch: 0,
            nonce,
            ciphertext: primitives::secretbox_encrypt(room.key.as_bytes(), &nonce, &data),
        };
        if let Ok(inner) = open_message(&sealed, "alice", &room.key, &room.state) {
            let _ = client::chains::check_log_head(&inner, &room.state);
            let _ = client::RoomChains::default().observe(&inner, 1);
        }
    }
}

#[test]
fn identity_corpus() {
    for data in corpus("identity") {
        let _ = serde_json::from_slice::<PublicIdentity>(&data);
    }
}

#[test]
fn envelope_corpus() {
    let alice = IdentitySecrets::from_bytes([0x20; 32], [0x40; 32]);
    let state = create_room(
        "alice",
        &alice,
        &RoomMetadata::named("fuzz"),
        1,
        &mut common::OsRng,
    )
    .expect("room")
    .state;
    for data in corpus("envelope") {
        if let Ok(envelope) = serde_json::from_slice::<KeyEnvelope>(&data) {
            let _ = envelope.verify(&state);
        }
    }
}

#[test]
fn client_state_corpus() {
    for data in corpus("client_state") {
        if let Ok(state) = ClientState::from_bytes("alice", &data) {
            assert_eq!(
                ClientState::from_bytes("alice", &state.to_bytes("alice")).as_ref(),
                Ok(&state)
            );
        }
    }
}

#[test]
fn attachment_corpus() {
    for data in corpus("attachment") {
        if let Ok(attachment) = common::attachment::AttachmentRef::from_bytes(&data) {
            assert_eq!(attachment.to_bytes(), data);
        }
    }
}
