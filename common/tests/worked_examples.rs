//! Checks the worked examples of `docs/PROTOCOL.md`: every value is computed here from the
//! fixed inputs the document gives and must appear in the document as `name = hex`.
//!
//! To regenerate the values after a deliberate format change, run
//! `PRINT_EXAMPLES=1 cargo test -p common --test worked_examples -- --nocapture` and paste.

use common::account::{self, derive_master_key, KdfParams};
use common::encoding::Encoder;
use common::identity::{safety_number, IdentitySecrets, PublicIdentity};
use common::membership::{LogAction, LogEntry, Role, RoomId, RoomState};
use common::message::{seal_message, InnerMessage, MessageBody, MessageKind};
use common::room_key::{key_commitment, seal_metadata, KeyEnvelope, RoomKey, RoomMetadata};

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod support;

use support::{counting, CountingRng, Examples};

/// The master key of section 3's example: password `correct horse battery staple`, salt
/// `00..0f`, Argon2id m = 19456 KiB, t = 2, p = 1.
fn example_master_key() -> common::account::MasterKey {
    let params = KdfParams {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };
    let salt: [u8; 16] = counting(0x00);
    derive_master_key("correct horse battery staple", &salt, &params).expect("kdf")
}

fn alice() -> IdentitySecrets {
    IdentitySecrets::from_bytes(counting(0x20), counting(0x40))
}

fn bob() -> IdentitySecrets {
    IdentitySecrets::from_bytes(counting(0x60), counting(0x80))
}

#[test]
fn encoding_example() {
    let mut examples = Examples::new();
    let mut encoder = Encoder::new(b"e2ee-chat/v1/example");
    encoder.u8(7).u32(1).u64(2).fixed(&[0xaa; 4]).string("hi");
    examples.check("encoding_example", &encoder.finish());
    examples.finish();
}

#[test]
fn account_example() {
    let mut examples = Examples::new();
    let master = example_master_key();
    // The master key itself is not exposed; auth and wrap keys are what the protocol uses.
    let auth = master.auth_key();
    let wrap = master.wrap_key();
    examples.check("auth_key", auth.as_bytes());
    let wrapped = account::wrap_identity(&wrap, "alice", &alice(), &mut CountingRng(0xc0));
    examples.check("wrapped_identity", &wrapped);
    let unwrapped = account::unwrap_identity(&wrap, "alice", &wrapped).expect("unwraps");
    assert_eq!(unwrapped.public_keys(), alice().public_keys());
    examples.finish();
}

#[test]
fn identity_example() {
    let mut examples = Examples::new();
    let alice_identity = alice().public_identity("alice");
    let keys = alice_identity.keys();
    examples.check("alice_x25519_public", keys.x25519.as_bytes());
    examples.check("alice_ed25519_public", keys.ed25519.as_bytes());
    examples.check(
        "identity_signed_bytes",
        &PublicIdentity::signed_bytes("alice", keys),
    );
    examples.check("identity_signature", &alice_identity.signature().to_bytes());
    examples.check_text(
        "alice_fingerprint",
        &alice_identity.fingerprint().to_string(),
    );
    let bob_identity = bob().public_identity("bob");
    examples.check_text("bob_fingerprint", &bob_identity.fingerprint().to_string());
    examples.check_text(
        "safety_number",
        &safety_number(&alice_identity.fingerprint(), &bob_identity.fingerprint()),
    );
    examples.finish();
}

/// The room of the examples: alice creates it with fixed nonce, key and metadata nonce.
fn example_room() -> (RoomState, common::membership::SignedLogEntry, RoomKey) {
    let alice_secrets = alice();
    let owner_keys = alice_secrets.public_keys();
    let room_nonce: [u8; 32] = counting(0xa0);
    let room_id = RoomId::derive("alice", &owner_keys, &room_nonce);
    let key = RoomKey::from_bytes(counting(0xe0));
    let metadata = RoomMetadata::named("plans");
    let genesis = LogEntry {
        room_id,
        seq: 0,
        prev: [0; 32],
        author: "alice".into(),
        time_ms: 1_700_000_000_000,
        action: LogAction::Create {
            room_nonce,
            owner_keys,
            key_commitment: key_commitment(&room_id, 0, &key),
            encrypted_metadata: seal_metadata(&key, &room_id, 0, &metadata, &mut CountingRng(0x10)),
        },
    }
    .sign(&alice_secrets);
    let state = RoomState::from_genesis(&genesis).expect("genesis");
    (state, genesis, key)
}

#[test]
fn membership_log_example() {
    let mut examples = Examples::new();
    let (mut state, genesis, key) = example_room();
    examples.check("room_id", &state.room_id().0);
    examples.check(
        "key_commitment_0",
        &key_commitment(&state.room_id(), 0, &key),
    );
    examples.check("genesis_entry", genesis.as_bytes());
    examples.check("genesis_hash", &genesis.hash());
    let add = state
        .next_entry(
            "alice",
            1_700_000_060_000,
            LogAction::AddMember {
                username: "bob".into(),
                keys: bob().public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice());
    examples.check("add_member_entry", add.as_bytes());
    examples.check("add_member_hash", &add.hash());
    state.apply(&add).expect("add applies");
    examples.finish();
}

#[test]
fn key_envelope_example() {
    let mut examples = Examples::new();
    let (mut state, _, key) = example_room();
    let add = state
        .next_entry(
            "alice",
            1_700_000_060_000,
            LogAction::AddMember {
                username: "bob".into(),
                keys: bob().public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice());
    state.apply(&add).expect("add applies");
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &key,
        "bob",
        "alice",
        &alice(),
        &mut CountingRng(0x30),
    )
    .expect("seals");
    examples.check("envelope_sealed", &envelope.sealed.0);
    examples.check("envelope_signed_bytes", &envelope.signed_bytes());
    examples.check("envelope_signature", &envelope.signature.0);
    assert_eq!(envelope.open(&state, "bob", &bob()).expect("opens"), key);
    examples.finish();
}

#[test]
fn message_example() {
    let mut examples = Examples::new();
    let (state, _, key) = example_room();
    let inner = InnerMessage {
        room_id: state.room_id(),
        epoch: 0,
        sender: "alice".into(),
        chain: common::message::ChainLink {
            device: counting(0x90),
            counter: 1,
            prev_hash: [0; 32],
        },
        log_length: state.length(),
        log_head: state.head_hash(),
        sent_at_ms: 1_700_000_120_000,
        kind: MessageKind::Text,
        body: b"hello bob".to_vec(),
    };
    examples.check("message_inner", &inner.to_bytes());
    examples.check("message_chain_hash", &inner.chain_hash());
    let reaction = MessageBody::Reaction {
        target: inner.chain_hash(),
        reaction: "👍".into(),
        added: true,
    };
    examples.check("reaction_body", &reaction.to_bytes());
    let edit = MessageBody::Edit {
        target: inner.chain_hash(),
        text: "hello bob!".into(),
    };
    examples.check("edit_body", &edit.to_bytes());
    let sealed = seal_message(&inner, &key, &alice(), &mut CountingRng(0x50)).expect("seals");
    examples.check("message_nonce", &sealed.nonce);
    examples.check("message_ciphertext", &sealed.ciphertext);
    examples.finish();
}

#[test]
fn administration_entries_example() {
    use common::membership::{invite_token_hash, HistoryPolicy, RoomPolicy};
    let mut examples = Examples::new();
    let (mut state, _, _) = example_room();
    let mut push = |state: &mut RoomState, name: &str, time_ms: u64, action: LogAction| {
        push_entry(&mut examples, state, name, time_ms, action);
    };
    push(
        &mut state,
        "add_member_entry",
        1_700_000_060_000,
        LogAction::AddMember {
            username: "bob".into(),
            keys: bob().public_keys(),
            role: Role::Member,
        },
    );
    push(
        &mut state,
        "set_role_entry",
        1_700_000_061_000,
        LogAction::SetRole {
            username: "bob".into(),
            role: Role::Admin,
        },
    );
    push(
        &mut state,
        "set_policy_entry",
        1_700_000_062_000,
        LogAction::SetPolicy {
            policy: RoomPolicy {
                history: HistoryPolicy::FullHistory,
                allowed_media: 15,
                max_attachment_bytes: 26_214_400,
                messages_per_minute: 120,
            },
        },
    );
    let token: [u8; 32] = counting(0x00);
    let token_hash = invite_token_hash(&token);
    push(
        &mut state,
        "invite_entry",
        1_700_000_063_000,
        LogAction::Invite {
            token_hash,
            expires_at_ms: 1_700_086_400_000,
            max_uses: 5,
        },
    );
    push(
        &mut state,
        "ban_entry",
        1_700_000_064_000,
        LogAction::Ban {
            username: "mallory".into(),
        },
    );
    push(
        &mut state,
        "remove_member_entry",
        1_700_000_065_000,
        LogAction::RemoveMember {
            username: "bob".into(),
        },
    );
    let key_1 = RoomKey::from_bytes(counting(0x70));
    let room_id = state.room_id();
    push(
        &mut state,
        "rotate_entry",
        1_700_000_066_000,
        LogAction::Rotate {
            epoch: 1,
            key_commitment: key_commitment(&room_id, 1, &key_1),
            encrypted_metadata: seal_metadata(
                &key_1,
                &room_id,
                1,
                &RoomMetadata::named("plans"),
                &mut CountingRng(0x90),
            ),
        },
    );
    let renamed = RoomMetadata {
        name: "plans".into(),
        topic: "launch".into(),
        direct: false,
    };
    push(
        &mut state,
        "set_metadata_entry",
        1_700_000_067_000,
        LogAction::SetMetadata {
            encrypted_metadata: seal_metadata(
                &key_1,
                &room_id,
                1,
                &renamed,
                &mut CountingRng(0xb0),
            ),
        },
    );
    push(
        &mut state,
        "clear_history_entry",
        1_700_000_068_000,
        LogAction::ClearHistory,
    );
    push(
        &mut state,
        "delete_room_entry",
        1_700_000_069_000,
        LogAction::DeleteRoom,
    );
    examples.check("invite_token_hash", &token_hash);
    assert!(state.deleted());
    examples.finish();
}

/// Signs `action` by alice at `time_ms` on top of `state`, applies it, and checks its bytes
/// as `name`.
fn push_entry(
    examples: &mut Examples,
    state: &mut RoomState,
    name: &str,
    time_ms: u64,
    action: LogAction,
) {
    let entry = state.next_entry("alice", time_ms, action).sign(&alice());
    state.apply(&entry).expect("entry applies");
    examples.check(name, entry.as_bytes());
}

/// The new epoch `epoch` with key `K = counting(key_start)`, and the room's metadata (name
/// `plans`) sealed under it with nonce `counting(nonce_start)`, or no metadata.
fn example_new_epoch(
    state: &RoomState,
    epoch: u64,
    key_start: u8,
    nonce_start: Option<u8>,
) -> common::membership::NewEpoch {
    let key = RoomKey::from_bytes(counting(key_start));
    let room_id = state.room_id();
    common::membership::NewEpoch {
        epoch,
        key_commitment: key_commitment(&room_id, epoch, &key),
        encrypted_metadata: nonce_start
            .map(|start| {
                seal_metadata(
                    &key,
                    &room_id,
                    epoch,
                    &RoomMetadata::named("plans"),
                    &mut CountingRng(start),
                )
            })
            .unwrap_or_default(),
    }
}

#[test]
fn rotating_entries_example() {
    use common::membership::RotationSchedule;
    let mut examples = Examples::new();
    let (mut state, _, _) = example_room();
    let carol = IdentitySecrets::from_bytes(counting(0xa0), counting(0xc0));
    let steps = [
        (
            "add_member_entry",
            LogAction::AddMember {
                username: "bob".into(),
                keys: bob().public_keys(),
                role: Role::Member,
            },
        ),
        (
            "set_rotation_schedule_entry",
            LogAction::SetRotationSchedule {
                schedule: RotationSchedule {
                    max_age_ms: 86_400_000,
                    max_messages: 100,
                },
            },
        ),
    ];
    for (index, (name, action)) in steps.into_iter().enumerate() {
        let time_ms = if index == 0 {
            1_700_000_060_000
        } else {
            1_700_000_070_000
        };
        push_entry(&mut examples, &mut state, name, time_ms, action);
    }
    let new_epoch = example_new_epoch(&state, 1, 0x70, Some(0x90));
    push_entry(
        &mut examples,
        &mut state,
        "add_member_and_rotate_entry",
        1_700_000_071_000,
        LogAction::AddMemberAndRotate {
            username: "carol".into(),
            keys: carol.public_keys(),
            role: Role::Member,
            new_epoch,
        },
    );
    let new_epoch = example_new_epoch(&state, 2, 0x30, Some(0xb0));
    push_entry(
        &mut examples,
        &mut state,
        "remove_member_and_rotate_entry",
        1_700_000_072_000,
        LogAction::RemoveMemberAndRotate {
            username: "bob".into(),
            new_epoch,
        },
    );
    let new_epoch = example_new_epoch(&state, 3, 0x50, None);
    push_entry(
        &mut examples,
        &mut state,
        "ban_and_rotate_entry",
        1_700_000_073_000,
        LogAction::BanAndRotate {
            username: "carol".into(),
            new_epoch,
        },
    );
    let new_epoch = example_new_epoch(&state, 4, 0xd0, Some(0x10));
    push_entry(
        &mut examples,
        &mut state,
        "clear_history_and_rotate_entry",
        1_700_000_074_000,
        LogAction::ClearHistoryAndRotate { new_epoch },
    );
    assert_eq!(state.current_epoch(), 4);
    assert_eq!(state.member("carol"), None);
    assert!(state.banned().contains("carol"));
    assert_eq!(state.rotation_schedule().max_messages, 100);
    // The ban kept the metadata of epoch 2; the clearing moved it to epoch 4.
    assert_eq!(state.encrypted_metadata().0, 4);
    examples.finish();
}

#[test]
fn pins_example() {
    use common::trust::{seal_pins, Pins};
    let mut examples = Examples::new();
    let master = example_master_key();
    let mut pins = Pins::new();
    pins.pin_first_use("bob", &bob().public_keys())
        .expect("first use");
    pins.set_verified("bob", true);
    let sealed = seal_pins(&master.wrap_key(), "alice", &pins, &mut CountingRng(0xd0));
    examples.check("pins_sealed", &sealed);
    examples.finish();
}

/// Section 14's attachment: id `a0..af`, file key `00..1f`, nonce prefix `40..52`, a file of
/// 40,000 bytes (byte `i` is `i mod 256`) in chunks of 16,384 bytes, a PNG image of 640 × 480
/// named `plan.png` without a thumbnail.
#[test]
fn attachment_example() {
    use common::attachment::{
        AttachmentCipher, AttachmentRef, ChunkLayout, CiphertextHash, Dimensions, FileKey,
        MediaKind,
    };
    let mut examples = Examples::new();
    let cipher = AttachmentCipher {
        id: counting(0xa0),
        key: FileKey::from_bytes(counting(0x00)),
        nonce_prefix: counting(0x40),
        layout: ChunkLayout::new(40_000, 16_384).expect("layout"),
    };
    let file: Vec<u8> = (0..40_000u32).map(|i| (i % 256) as u8).collect();
    examples.check("attachment_chunk_key_info", &cipher.chunk_key_info());
    examples.check("attachment_chunk_key", cipher.chunk_key().as_bytes());
    let mut hash = CiphertextHash::default();
    for (index, plaintext) in file.chunks(16_384).enumerate() {
        let index = u32::try_from(index).expect("few chunks");
        let sealed = cipher.seal_chunk(index, plaintext).expect("seals");
        examples.check(
            &format!("attachment_chunk{index}_sha256"),
            &common::primitives::sha256(&sealed),
        );
        examples.check(&format!("attachment_chunk{index}_tag"), &sealed[..16]);
        assert_eq!(cipher.open_chunk(index, &sealed).expect("opens"), plaintext);
        hash.update(&sealed);
    }
    let digest = hash.finish();
    examples.check("attachment_ciphertext_sha256", &digest);
    let attachment = AttachmentRef {
        cipher,
        ciphertext_sha256: digest,
        kind: MediaKind::Image,
        mime: "image/png".into(),
        name: "plan.png".into(),
        dimensions: Some(Dimensions {
            width: 640,
            height: 480,
        }),
        thumbnail: Vec::new(),
        thumbnail_mime: String::new(),
    };
    let bytes = attachment.to_bytes();
    examples.check("attachment_ref", &bytes);
    assert_eq!(
        AttachmentRef::from_bytes(&bytes).expect("decodes"),
        attachment
    );
    examples.finish();
}
