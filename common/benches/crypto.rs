//! Criterion benchmarks of the crypto core: what logging in, sending, reading and handing out
//! room keys cost. Run with `cargo xtask bench` (native; browser figures come from the
//! end-to-end test).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use common::account::{derive_account_keys, KdfParams};
use common::attachment::AttachmentCipher;
use common::identity::IdentitySecrets;
use common::membership::{replay, LogAction, Role, SignedLogEntry};
use common::message::{open_message, seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, KeyEnvelope, RoomMetadata};
use common::OsRng;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A room of `members` people (alice owner, the rest members) and its log.
fn room(
    members: usize,
) -> (
    common::room_key::NewRoom,
    Vec<SignedLogEntry>,
    Vec<(String, IdentitySecrets)>,
) {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let new_room = create_room(
        "alice",
        &alice,
        &RoomMetadata::named("bench"),
        0,
        &mut OsRng,
    )
    .expect("room");
    let mut state = new_room.state.clone();
    let mut log = vec![new_room.genesis.clone()];
    let mut people = vec![("alice".to_owned(), alice)];
    for index in 1..members {
        let name = format!("member{index}");
        let secrets = IdentitySecrets::generate(&mut OsRng);
        let entry = state
            .next_entry(
                "alice",
                index as u64,
                LogAction::AddMember {
                    username: name.clone(),
                    keys: secrets.public_keys(),
                    role: Role::Member,
                },
            )
            .sign(&people[0].1);
        state.apply(&entry).expect("applies");
        log.push(entry);
        people.push((name, secrets));
    }
    (new_room, log, people)
}

fn account(c: &mut Criterion) {
    let mut group = c.benchmark_group("account");
    group.sample_size(10);
    group.bench_function("derive keys, Argon2id m=64MiB t=3 p=1", |b| {
        b.iter(|| {
            derive_account_keys(
                "correct horse battery staple",
                &[7; 16],
                &KdfParams::DEFAULT,
            )
        })
    });
    group.finish();
}

fn messages(c: &mut Criterion) {
    let (new_room, log, people) = room(2);
    let state = replay(&log).expect("replays");
    let alice = &people[0].1;
    let inner = InnerMessage {
        room_id: state.room_id(),
        epoch: 0,
        sender: "alice".into(),
        chain: ChainLink {
            device: [1; 16],
            counter: 1,
            prev_hash: [0; 32],
        },
        log_length: state.length(),
        log_head: state.head_hash(),
        sent_at_ms: 0,
        kind: MessageKind::Text,
        body: vec![b'x'; 200],
    };
    c.bench_function("message: seal 200-byte text", |b| {
        b.iter(|| seal_message(&inner, &new_room.key, alice, &mut OsRng))
    });
    let sealed = seal_message(&inner, &new_room.key, alice, &mut OsRng).expect("seals");
    c.bench_function("message: open and verify 200-byte text", |b| {
        b.iter(|| open_message(&sealed, "alice", &new_room.key, &state))
    });
}

fn room_keys(c: &mut Criterion) {
    let (new_room, log, people) = room(100);
    let state = replay(&log).expect("replays");
    let alice = &people[0].1;
    c.bench_function("log: replay 100 entries", |b| b.iter(|| replay(&log)));
    c.bench_function("envelopes: seal the room key to 100 members", |b| {
        b.iter(|| {
            people
                .iter()
                .map(|(name, _)| {
                    KeyEnvelope::seal(&state, 0, &new_room.key, name, "alice", alice, &mut OsRng)
                })
                .collect::<Vec<_>>()
        })
    });
    let (name, secrets) = &people[1];
    let envelope = KeyEnvelope::seal(&state, 0, &new_room.key, name, "alice", alice, &mut OsRng)
        .expect("seals");
    c.bench_function("envelopes: verify and open one", |b| {
        b.iter(|| envelope.open(&state, name, secrets))
    });
}

/// Sealing and opening a 4 MiB file in chunks of 16 KiB to 1 MiB: the per-chunk cost (the
/// chunk key derivation, the nonce) against the size of the buffers a browser holds.
fn attachments(c: &mut Criterion) {
    const FILE: usize = 4 * 1024 * 1024;
    let file = vec![0x5a_u8; FILE];
    let mut group = c.benchmark_group("attachment 4 MiB");
    group.throughput(Throughput::Bytes(FILE as u64));
    group.sample_size(10);
    for chunk_size in [16 * 1024_u32, 64 * 1024, 256 * 1024, 1024 * 1024] {
        let cipher =
            AttachmentCipher::generate(FILE as u64, chunk_size, &mut OsRng).expect("layout");
        let sealed: Vec<Vec<u8>> = file
            .chunks(chunk_size as usize)
            .enumerate()
            .map(|(index, part)| cipher.seal_chunk(index as u32, part).expect("seals"))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("seal", chunk_size / 1024),
            &cipher,
            |b, cipher| {
                b.iter(|| {
                    for (index, part) in file.chunks(chunk_size as usize).enumerate() {
                        cipher.seal_chunk(index as u32, part).expect("seals");
                    }
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("open", chunk_size / 1024),
            &cipher,
            |b, cipher| {
                b.iter(|| {
                    for (index, chunk) in sealed.iter().enumerate() {
                        cipher.open_chunk(index as u32, chunk).expect("opens");
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, account, messages, room_keys, attachments);
criterion_main!(benches);
