//! Round trips and one negative test per check of the protocol, natively and in headless
//! Chromium.

use common::account::{
    self, derive_account_keys, unwrap_identity, wrap_identity, AccountError, KdfParams,
};
use common::identity::{IdentitySecrets, KeyError, PublicIdentity, X25519PublicKey};
use common::membership::{
    replay, replay_bytes, LogAction, LogErrorKind, Role, RoomState, SignedLogEntry,
};
use common::message::{
    open_message, seal_message, ChainLink, InnerMessage, MessageBody, MessageError, MessageKind,
    PADDING_BUCKET,
};
use common::primitives::{self, PrimitiveError};
use common::room_key::{
    create_room, open_metadata, EnvelopeError, KeyEnvelope, NewRoom, RoomKey, RoomMetadata,
};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The order-8 point libsodium uses in `test/default/box_easy2.c` (`small_order_p`).
const LIBSODIUM_SMALL_ORDER_POINT: [u8; 32] = [
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
];

/// The cheapest parameters a client accepts, so tests stay fast.
const TEST_KDF: KdfParams = KdfParams {
    m_kib: KdfParams::MIN_M_KIB,
    t: KdfParams::MIN_T,
    p: 1,
};

struct Person {
    name: &'static str,
    secrets: IdentitySecrets,
}

fn person(name: &'static str) -> Person {
    Person {
        name,
        secrets: IdentitySecrets::generate(&mut OsRng),
    }
}

/// alice creates a room named "plans" and adds bob as a member.
fn room_with_bob(alice: &Person, bob: &Person) -> (NewRoom, Vec<SignedLogEntry>, RoomState) {
    let room = create_room(
        alice.name,
        &alice.secrets,
        &RoomMetadata::named("plans"),
        1_000,
        &mut OsRng,
    )
    .expect("room");
    let add = room
        .state
        .next_entry(
            alice.name,
            2_000,
            LogAction::AddMember {
                username: bob.name.to_owned(),
                keys: bob.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice.secrets);
    let log = vec![room.genesis.clone(), add];
    let state = replay(&log).expect("log replays");
    (room, log, state)
}

fn text_message(state: &RoomState, sender: &Person, counter: u64, text: &str) -> InnerMessage {
    InnerMessage {
        room_id: state.room_id(),
        epoch: state.current_epoch(),
        sender: sender.name.to_owned(),
        chain: ChainLink {
            device: [7; 16],
            counter,
            prev_hash: if counter == 1 { [0; 32] } else { [9; 32] },
        },
        log_length: state.length(),
        log_head: state.head_hash(),
        sent_at_ms: 3_000,
        kind: MessageKind::Text,
        body: text.as_bytes().to_vec(),
    }
}

// ---- accounts -------------------------------------------------------------------------

#[test]
fn account_keys_round_trip_and_wrong_password_fails() {
    let salt = [7u8; 16];
    let keys = derive_account_keys("correct horse battery staple", &salt, &TEST_KDF).expect("keys");
    let again =
        derive_account_keys("correct horse battery staple", &salt, &TEST_KDF).expect("keys");
    assert_eq!(keys.auth_key.as_bytes(), again.auth_key.as_bytes());
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let wrapped = wrap_identity(&keys.wrap_key, "alice", &secrets, &mut OsRng);
    let unwrapped = unwrap_identity(&keys.wrap_key, "alice", &wrapped).expect("unwraps");
    assert_eq!(unwrapped.public_keys(), secrets.public_keys());
    let wrong = derive_account_keys("wrong password", &salt, &TEST_KDF).expect("keys");
    assert_ne!(wrong.auth_key.as_bytes(), keys.auth_key.as_bytes());
    assert_eq!(
        unwrap_identity(&wrong.wrap_key, "alice", &wrapped).map(|_| ()),
        Err(AccountError::WrongKeyOrTampered)
    );
}

#[test]
fn kdf_parameters_below_the_minimum_are_refused() {
    let salt = [1u8; 16];
    for params in [
        KdfParams {
            m_kib: 19_455,
            t: 2,
            p: 1,
        },
        KdfParams {
            m_kib: 65_536,
            t: 1,
            p: 1,
        },
        KdfParams {
            m_kib: 65_536,
            t: 3,
            p: 0,
        },
        KdfParams {
            m_kib: 1_048_577,
            t: 3,
            p: 1,
        },
    ] {
        assert!(matches!(
            derive_account_keys("pw", &salt, &params),
            Err(AccountError::KdfParamsOutOfBounds(_))
        ));
    }
    assert_eq!(KdfParams::DEFAULT.check(), Ok(()));
    assert!(matches!(
        derive_account_keys("pw", &[0u8; 8], &TEST_KDF),
        Err(AccountError::BadSalt)
    ));
}

#[test]
fn bundle_wrapped_for_another_user_is_refused() {
    let keys = derive_account_keys("pw-for-both", &[2u8; 16], &TEST_KDF).expect("keys");
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let wrapped_for_mallory = wrap_identity(&keys.wrap_key, "mallory", &secrets, &mut OsRng);
    assert_eq!(
        unwrap_identity(&keys.wrap_key, "alice", &wrapped_for_mallory).map(|_| ()),
        Err(AccountError::BundleForAnotherUser)
    );
    let mut tampered = wrap_identity(&keys.wrap_key, "alice", &secrets, &mut OsRng);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(
        unwrap_identity(&keys.wrap_key, "alice", &tampered).map(|_| ()),
        Err(AccountError::WrongKeyOrTampered)
    );
}

#[test]
fn published_identity_must_match_own_secrets() {
    let alice = IdentitySecrets::generate(&mut OsRng);
    let other = IdentitySecrets::generate(&mut OsRng);
    assert_eq!(
        account::check_published_identity(&alice, &alice.public_identity("alice")),
        Ok(())
    );
    assert_eq!(
        account::check_published_identity(&alice, &other.public_identity("alice")),
        Err(AccountError::PublicKeyMismatch)
    );
}

// ---- identities and keys ---------------------------------------------------------------

#[test]
fn public_identity_verifies_and_rejects_tampering() {
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let identity = secrets.public_identity("alice");
    let json = serde_json_string(&identity);
    let parsed: PublicIdentity = serde_json::from_str(&json).expect("verifies");
    assert_eq!(parsed, identity);
    let renamed = json.replace("\"alice\"", "\"alicf\"");
    assert!(serde_json::from_str::<PublicIdentity>(&renamed).is_err());
    let keys = identity.keys();
    assert_eq!(
        PublicIdentity::verify(
            "alice",
            &LIBSODIUM_SMALL_ORDER_POINT,
            keys.ed25519.as_bytes(),
            identity.signature()
        )
        .map(|_| ()),
        Err(KeyError::LowOrderX25519)
    );
    assert_eq!(
        PublicIdentity::verify(
            "Alice!",
            keys.x25519.as_bytes(),
            keys.ed25519.as_bytes(),
            identity.signature()
        )
        .map(|_| ()),
        Err(KeyError::InvalidUsername)
    );
}

fn serde_json_string(identity: &PublicIdentity) -> String {
    serde_json::to_string(identity).expect("serializes")
}

#[test]
fn low_order_x25519_keys_are_refused_everywhere() {
    assert_eq!(
        X25519PublicKey::from_bytes(LIBSODIUM_SMALL_ORDER_POINT),
        Err(KeyError::LowOrderX25519)
    );
    // The other low-order encodings: 0, 1, and p - 1 (RFC 7748 section 6.1).
    let mut p_minus_one = [0xffu8; 32];
    p_minus_one[0] = 0xec;
    p_minus_one[31] = 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1;
    for key in [[0u8; 32], one, p_minus_one] {
        assert_eq!(
            X25519PublicKey::from_bytes(key),
            Err(KeyError::LowOrderX25519)
        );
    }
    assert_eq!(
        primitives::sealed_box_seal(&LIBSODIUM_SMALL_ORDER_POINT, b"key", &mut OsRng),
        Err(PrimitiveError::LowOrderKey)
    );
    let secret = crypto_box::SecretKey::generate(&mut OsRng);
    assert_eq!(
        primitives::x25519(&secret.to_bytes(), &LIBSODIUM_SMALL_ORDER_POINT),
        Err(PrimitiveError::LowOrderKey)
    );
    // A sealed box whose ephemeral key is the small-order point opens to a key anyone knows;
    // it must be refused before decryption.
    let mut forged = LIBSODIUM_SMALL_ORDER_POINT.to_vec();
    forged.extend_from_slice(&[0u8; 16 + 72]);
    assert_eq!(
        primitives::sealed_box_open(&secret, &forged).map(|_| ()),
        Err(PrimitiveError::LowOrderKey)
    );
    let fresh = IdentitySecrets::generate(&mut OsRng).public_keys();
    assert!(X25519PublicKey::from_bytes(*fresh.x25519.as_bytes()).is_ok());
}

#[test]
fn fingerprints_and_safety_numbers_are_stable_and_symmetric() {
    let alice = IdentitySecrets::generate(&mut OsRng).public_identity("alice");
    let bob = IdentitySecrets::generate(&mut OsRng).public_identity("bob");
    let fingerprint = alice.fingerprint().to_string();
    assert_eq!(fingerprint.len(), 6 * 5 + 5);
    assert!(fingerprint
        .split(' ')
        .all(|group| group.len() == 5 && group.bytes().all(|b| b.is_ascii_digit())));
    assert_ne!(alice.fingerprint(), bob.fingerprint());
    let ab = common::identity::safety_number(&alice.fingerprint(), &bob.fingerprint());
    let ba = common::identity::safety_number(&bob.fingerprint(), &alice.fingerprint());
    assert_eq!(ab, ba);
    assert_eq!(ab.split(' ').count(), 12);
}

// ---- membership log --------------------------------------------------------------------

#[test]
fn log_replays_to_members_and_roles() {
    let alice = person("alice");
    let bob = person("bob");
    let (room, log, state) = room_with_bob(&alice, &bob);
    assert_eq!(state.room_id(), room.state.room_id());
    assert_eq!(state.length(), 2);
    assert_eq!(state.member("alice").map(|m| m.role), Some(Role::Owner));
    assert_eq!(state.member("bob").map(|m| m.role), Some(Role::Member));
    assert!(state.was_member_in_epoch("bob", 0));
    let bytes: Vec<Vec<u8>> = log.iter().map(|entry| entry.as_bytes().to_vec()).collect();
    assert_eq!(replay_bytes(&bytes).expect("replays"), state);
    let name = open_metadata(&room.key, &state.room_id(), 0, state.encrypted_metadata().1)
        .expect("metadata opens");
    assert_eq!(name.name, "plans");
}

#[test]
fn log_entry_by_a_non_admin_is_refused() {
    let alice = person("alice");
    let bob = person("bob");
    let carol = person("carol");
    let (_, mut log, state) = room_with_bob(&alice, &bob);
    let by_bob = state
        .next_entry(
            bob.name,
            3_000,
            LogAction::AddMember {
                username: carol.name.to_owned(),
                keys: carol.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&bob.secrets);
    log.push(by_bob);
    let error = replay(&log).expect_err("member may not add");
    assert_eq!(error.index, 2);
    assert!(matches!(error.kind, LogErrorKind::NotAuthorized { .. }));
}

#[test]
fn an_admin_may_not_appoint_admins_and_nobody_appoints_owners() {
    let alice = person("alice");
    let bob = person("bob");
    let carol = person("carol");
    let room = create_room(
        alice.name,
        &alice.secrets,
        &RoomMetadata::named("r"),
        1,
        &mut OsRng,
    )
    .expect("room");
    let add_admin = |state: &RoomState, author: &Person, who: &Person, role| {
        state
            .next_entry(
                author.name,
                5,
                LogAction::AddMember {
                    username: who.name.to_owned(),
                    keys: who.secrets.public_keys(),
                    role,
                },
            )
            .sign(&author.secrets)
    };
    let mut state = room.state.clone();
    state
        .apply(&add_admin(&state.clone(), &alice, &bob, Role::Admin))
        .expect("owner appoints");
    let by_admin = add_admin(&state, &bob, &carol, Role::Admin);
    assert!(matches!(
        state.apply(&by_admin),
        Err(LogErrorKind::NotAuthorized { .. })
    ));
    let owner = add_admin(&state, &alice, &carol, Role::Owner);
    assert!(matches!(
        state.apply(&owner),
        Err(LogErrorKind::NotAuthorized { .. })
    ));
    let member = add_admin(&state, &bob, &carol, Role::Member);
    state.apply(&member).expect("admin adds a member");
    let again = add_admin(&state, &alice, &carol, Role::Member);
    assert_eq!(
        state.apply(&again),
        Err(LogErrorKind::AlreadyMember("carol".into()))
    );
}

#[test]
fn broken_prev_hash_is_refused() {
    let alice = person("alice");
    let bob = person("bob");
    let room = create_room(
        alice.name,
        &alice.secrets,
        &RoomMetadata::named("r"),
        1,
        &mut OsRng,
    )
    .expect("room");
    let mut entry = room.state.next_entry(
        alice.name,
        2,
        LogAction::AddMember {
            username: bob.name.to_owned(),
            keys: bob.secrets.public_keys(),
            role: Role::Member,
        },
    );
    entry.prev = [9u8; 32];
    let error = replay(&[room.genesis.clone(), entry.sign(&alice.secrets)]).expect_err("refused");
    assert_eq!(error.index, 1);
    assert_eq!(error.kind, LogErrorKind::PrevHashMismatch);
}

#[test]
fn forged_reordered_and_swapped_logs_are_refused() {
    let alice = person("alice");
    let bob = person("bob");
    let mallory = person("mallory");
    let (room, log, _) = room_with_bob(&alice, &bob);
    // Signed by someone else in alice's name.
    let forged = room
        .state
        .next_entry(
            alice.name,
            2,
            LogAction::AddMember {
                username: mallory.name.to_owned(),
                keys: mallory.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&mallory.secrets);
    let error = replay(&[room.genesis.clone(), forged]).expect_err("refused");
    assert_eq!(error.kind, LogErrorKind::BadSignature("alice".into()));
    // Reordered.
    let error = replay(&[log[1].clone(), log[0].clone()]).expect_err("refused");
    assert_eq!(
        (error.index, error.kind),
        (0, LogErrorKind::MisplacedCreate)
    );
    // A tampered byte anywhere in the signed bytes breaks the signature.
    let mut bytes = log[1].as_bytes().to_vec();
    bytes[40] ^= 1;
    let error = replay_bytes(&[log[0].as_bytes().to_vec(), bytes]).expect_err("refused");
    assert_eq!(error.index, 1);
    // A genesis whose room id is not derived from its fields.
    let mut genesis = room.genesis.entry().clone();
    genesis.room_id.0[0] ^= 1;
    let error = replay(&[genesis.sign(&alice.secrets)]).expect_err("refused");
    assert_eq!(error.kind, LogErrorKind::RoomIdMismatch);
    assert_eq!(replay(&[]).expect_err("refused").kind, LogErrorKind::Empty);
}

// ---- key envelopes ---------------------------------------------------------------------

#[test]
fn key_envelope_round_trip() {
    let alice = person("alice");
    let bob = person("bob");
    let (room, _, state) = room_with_bob(&alice, &bob);
    let own = room
        .creator_envelope
        .open(&state, alice.name, &alice.secrets)
        .expect("own envelope opens");
    assert_eq!(own, room.key);
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &room.key,
        bob.name,
        alice.name,
        &alice.secrets,
        &mut OsRng,
    )
    .expect("seals");
    let json = serde_json::to_string(&envelope).expect("json");
    let parsed: KeyEnvelope = serde_json::from_str(&json).expect("parses");
    assert_eq!(
        parsed.open(&state, bob.name, &bob.secrets).expect("opens"),
        room.key
    );
    // Bob, once he holds the key, can hand it on to a later member himself.
    assert_eq!(
        parsed.open(&state, alice.name, &alice.secrets),
        Err(EnvelopeError::NotForMe("bob".into()))
    );
}

#[test]
fn key_envelope_from_a_non_member_is_refused() {
    let alice = person("alice");
    let bob = person("bob");
    let mallory = person("mallory");
    let (room, _, state) = room_with_bob(&alice, &bob);
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &room.key,
        bob.name,
        mallory.name,
        &mallory.secrets,
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        envelope.open(&state, bob.name, &bob.secrets),
        Err(EnvelopeError::DistributorNotMember("mallory".into()))
    );
    // A member's name with a signature by another key.
    let mut forged = envelope.clone();
    forged.distributor = alice.name.to_owned();
    assert_eq!(
        forged.open(&state, bob.name, &bob.secrets),
        Err(EnvelopeError::BadSignature)
    );
}

#[test]
fn key_not_matching_its_commitment_is_refused() {
    let alice = person("alice");
    let bob = person("bob");
    let (_, _, state) = room_with_bob(&alice, &bob);
    let wrong_key = RoomKey::generate(&mut OsRng);
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &wrong_key,
        bob.name,
        alice.name,
        &alice.secrets,
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        envelope.open(&state, bob.name, &bob.secrets),
        Err(EnvelopeError::CommitmentMismatch)
    );
    let mut future = KeyEnvelope::seal(
        &state,
        0,
        &wrong_key,
        bob.name,
        alice.name,
        &alice.secrets,
        &mut OsRng,
    )
    .expect("seals");
    future.epoch = 5;
    assert_eq!(future.verify(&state), Err(EnvelopeError::UnknownEpoch(5)));
}

// ---- messages --------------------------------------------------------------------------

#[test]
fn message_round_trip_and_padding() {
    let alice = person("alice");
    let bob = person("bob");
    let (room, _, state) = room_with_bob(&alice, &bob);
    let inner = text_message(&state, &alice, 1, "hello bob");
    let sealed = seal_message(&inner, &room.key, &alice.secrets, &mut OsRng).expect("seals");
    assert_eq!((sealed.ciphertext.len() - 16) % PADDING_BUCKET, 0);
    let opened = open_message(&sealed, alice.name, &room.key, &state).expect("opens");
    assert_eq!(opened, inner);
    assert_eq!(opened.text(), Some("hello bob"));
    let long = text_message(&state, &bob, 1, &"x".repeat(200));
    let sealed_long = seal_message(&long, &room.key, &bob.secrets, &mut OsRng).expect("seals");
    assert_eq!(sealed_long.ciphertext.len(), 16 + 2 * PADDING_BUCKET);
    let too_long = text_message(&state, &bob, 2, &"x".repeat(20_000));
    assert_eq!(
        seal_message(&too_long, &room.key, &bob.secrets, &mut OsRng),
        Err(MessageError::InvalidBody)
    );
}

#[test]
fn replies_edits_deletions_and_reactions_round_trip_with_their_layouts() {
    let alice = person("alice");
    let bob = person("bob");
    let (room, _, state) = room_with_bob(&alice, &bob);
    let target = text_message(&state, &alice, 1, "hello bob").chain_hash();
    let bodies = [
        (
            MessageBody::Reply {
                target,
                text: "hi".into(),
            },
            [&target[..], &[0, 0, 0, 2], b"hi"].concat(),
        ),
        (
            MessageBody::Edit {
                target,
                text: "hey".into(),
            },
            [&target[..], &[0, 0, 0, 3], b"hey"].concat(),
        ),
        (MessageBody::Delete { target }, target.to_vec()),
        (
            MessageBody::Reaction {
                target,
                reaction: "👍".into(),
                added: true,
            },
            [&target[..], &[1, 0, 0, 0, 4], "👍".as_bytes()].concat(),
        ),
    ];
    for (counter, (body, layout)) in (2..).zip(bodies) {
        assert_eq!(body.to_bytes(), layout, "{body:?}");
        let mut inner = text_message(&state, &bob, counter, "");
        inner.kind = body.kind();
        inner.body = body.to_bytes();
        let sealed = seal_message(&inner, &room.key, &bob.secrets, &mut OsRng).expect("seals");
        let opened = open_message(&sealed, bob.name, &room.key, &state).expect("opens");
        assert_eq!(opened.content(), Ok(body.clone()));
        assert_eq!(body.target(), Some(&target));
    }
}

#[test]
fn malformed_relation_bodies_are_refused_when_sealing_and_opening() {
    let alice = person("alice");
    let bob = person("bob");
    let (room, _, state) = room_with_bob(&alice, &bob);
    let target = [3u8; 32];
    let reaction = |added: u8, reaction: &str| {
        let mut body = target.to_vec();
        body.push(added);
        body.extend_from_slice(&u32::try_from(reaction.len()).expect("short").to_be_bytes());
        body.extend_from_slice(reaction.as_bytes());
        body
    };
    let cases: [(MessageKind, Vec<u8>, &str); 8] = [
        (MessageKind::Reply, target[..31].to_vec(), "a short target"),
        (
            MessageKind::Edit,
            [&target[..], &[0, 0, 0, 0]].concat(),
            "an empty edit",
        ),
        (
            MessageKind::Edit,
            [&target[..], &[0, 0, 0, 1], &[0xff]].concat(),
            "an edit that is not UTF-8",
        ),
        (
            MessageKind::Delete,
            [&target[..], &[0]].concat(),
            "trailing bytes",
        ),
        (
            MessageKind::Reaction,
            reaction(2, "👍"),
            "an added flag of 2",
        ),
        (MessageKind::Reaction, reaction(1, ""), "an empty reaction"),
        (
            MessageKind::Reaction,
            reaction(1, "a\u{7}"),
            "a control character",
        ),
        (
            MessageKind::Reaction,
            reaction(1, &"🎉".repeat(9)),
            "36 bytes",
        ),
    ];
    for (counter, (kind, body, what)) in (1..).zip(cases) {
        let mut inner = text_message(&state, &bob, counter, "");
        inner.kind = kind;
        inner.body = body;
        assert_eq!(
            seal_message(&inner, &room.key, &bob.secrets, &mut OsRng),
            Err(MessageError::InvalidBody),
            "sealing {what}"
        );
        // A client that seals it anyway (by hand, bypassing the check) is refused by readers.
        let sealed = seal_unchecked(&inner, &room.key, &bob.secrets);
        assert_eq!(
            open_message(&sealed, bob.name, &room.key, &state),
            Err(MessageError::InvalidBody),
            "opening {what}"
        );
    }
}

/// Seals `inner` as section 7 lays out, without [`seal_message`]'s checks of the body: what
/// a modified client could send.
fn seal_unchecked(
    inner: &InnerMessage,
    key: &RoomKey,
    secrets: &IdentitySecrets,
) -> common::message::SealedMessage {
    use common::encoding::Encoder;
    let inner_bytes = inner.to_bytes();
    let signature = secrets.sign(
        &Encoder::new(common::message::MESSAGE_LABEL)
            .fixed(&inner_bytes)
            .finish(),
    );
    let mut padded = Encoder::unlabelled()
        .bytes(&inner_bytes)
        .fixed(&signature.to_bytes())
        .finish();
    padded.resize(padded.len().div_ceil(PADDING_BUCKET) * PADDING_BUCKET, 0);
    let nonce = [4u8; 24];
    common::message::SealedMessage {
        room_id: inner.room_id,
        epoch: inner.epoch,
        nonce,
        ciphertext: common::primitives::secretbox_encrypt(key.as_bytes(), &nonce, &padded),
    }
}

fn sealed_hello(
    alice: &Person,
    bob: &Person,
) -> (RoomKey, RoomState, common::message::SealedMessage) {
    let (room, _, state) = room_with_bob(alice, bob);
    let inner = text_message(&state, alice, 1, "hello");
    let sealed = seal_message(&inner, &room.key, &alice.secrets, &mut OsRng).expect("seals");
    (room.key.clone(), state, sealed)
}

#[test]
fn tampered_ciphertext_is_refused() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (key, state, mut sealed) = sealed_hello(&alice, &bob);
    sealed.ciphertext[20] ^= 1;
    assert_eq!(
        open_message(&sealed, "alice", &key, &state,),
        Err(MessageError::Decrypt)
    );
    let (key, state, mut sealed) = sealed_hello(&alice, &bob);
    sealed.nonce[0] ^= 1;
    assert_eq!(
        open_message(&sealed, "alice", &key, &state,),
        Err(MessageError::Decrypt)
    );
}

#[test]
fn wrong_room_is_refused() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (key, state, mut sealed) = sealed_hello(&alice, &bob);
    sealed.room_id.0[0] ^= 1;
    assert_eq!(
        open_message(&sealed, "alice", &key, &state,),
        Err(MessageError::WrongRoom)
    );
}

#[test]
fn wrong_epoch_is_refused() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (key, state, mut sealed) = sealed_hello(&alice, &bob);
    sealed.epoch = 1;
    assert_eq!(
        open_message(&sealed, "alice", &key, &state,),
        Err(MessageError::WrongEpoch)
    );
}

#[test]
fn wrong_sender_is_refused() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (key, state, sealed) = sealed_hello(&alice, &bob);
    assert_eq!(
        open_message(&sealed, "bob", &key, &state,),
        Err(MessageError::WrongSender {
            claimed: "bob".into(),
            inside: "alice".into()
        })
    );
}

#[test]
fn bad_signature_is_refused() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (room, _, state) = room_with_bob(&alice, &bob);
    // Bob writes a message in alice's name: it decrypts, but alice's key does not verify it.
    let inner = text_message(&state, &alice, 1, "i owe bob money");
    let forged = seal_message(&inner, &room.key, &bob.secrets, &mut OsRng).expect("seals");
    assert_eq!(
        open_message(&forged, "alice", &room.key, &state),
        Err(MessageError::BadSignature)
    );
}

#[test]
fn sender_who_is_not_a_member_is_refused() {
    let (alice, bob, mallory) = (person("alice"), person("bob"), person("mallory"));
    let (room, _, state) = room_with_bob(&alice, &bob);
    let inner = text_message(&state, &mallory, 1, "hi");
    let sealed = seal_message(&inner, &room.key, &mallory.secrets, &mut OsRng).expect("seals");
    assert_eq!(
        open_message(&sealed, "mallory", &room.key, &state),
        Err(MessageError::SenderNotMember("mallory".into()))
    );
}

#[test]
fn a_message_must_name_its_chain_position_and_log_head() {
    let (alice, bob) = (person("alice"), person("bob"));
    let (room, _, state) = room_with_bob(&alice, &bob);
    let mut inner = text_message(&state, &alice, 1, "hi");
    for broken in [
        |inner: &mut InnerMessage| inner.chain.counter = 0,
        |inner: &mut InnerMessage| inner.log_length = 0,
        |inner: &mut InnerMessage| inner.chain.prev_hash = [1; 32],
    ] {
        let mut message = inner.clone();
        broken(&mut message);
        assert_eq!(
            seal_message(&message, &room.key, &alice.secrets, &mut OsRng),
            Err(MessageError::MissingChainOrHead)
        );
    }
    inner.chain.counter = 2;
    assert_eq!(
        seal_message(&inner, &room.key, &alice.secrets, &mut OsRng),
        Err(MessageError::MissingChainOrHead),
        "a counter above 1 names its predecessor"
    );
}

#[test]
fn a_version_1_message_still_opens() {
    use common::encoding::Encoder;
    use common::message::{SealedMessage, MESSAGE_LABEL};
    let (alice, bob) = (person("alice"), person("bob"));
    let (room, _, state) = room_with_bob(&alice, &bob);
    // The version-1 layout: u8 1 || room || epoch || sender || sequence || time || kind || body.
    let mut encoder = Encoder::unlabelled();
    encoder
        .u8(1)
        .fixed(&state.room_id().0)
        .u64(0)
        .string("alice")
        .u64(1_700_000_000_000_000)
        .u64(3_000)
        .u8(1)
        .bytes(b"old message");
    let inner_bytes = encoder.finish();
    let mut signed = Encoder::new(MESSAGE_LABEL);
    signed.fixed(&inner_bytes);
    let signature = alice.secrets.sign(&signed.finish());
    let mut padded = Encoder::unlabelled();
    padded.bytes(&inner_bytes).fixed(&signature.to_bytes());
    let mut padded = padded.finish();
    padded.resize(PADDING_BUCKET, 0);
    let nonce = [4u8; 24];
    let sealed = SealedMessage {
        room_id: state.room_id(),
        epoch: 0,
        nonce,
        ciphertext: primitives::secretbox_encrypt(room.key.as_bytes(), &nonce, &padded),
    };
    let opened = open_message(&sealed, "alice", &room.key, &state).expect("opens");
    assert_eq!(opened.text(), Some("old message"));
    assert!(opened.is_legacy());
    assert_eq!(opened.chain.counter, 1_700_000_000_000_000);
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let keys = derive_account_keys("hunter22", &[3u8; 16], &TEST_KDF).expect("keys");
    let room_key = RoomKey::from_bytes([0xab; 32]);
    let debug = format!("{secrets:?} {keys:?} {:?} {room_key:?}", keys.auth_key);
    assert!(!debug.contains(&hex::encode(secrets.x25519_secret_bytes())));
    assert!(!debug.contains(&hex::encode(secrets.ed25519_seed())));
    assert!(!debug.contains(&hex::encode(keys.auth_key.as_bytes())));
    assert_eq!(format!("{room_key:?}"), "RoomKey([redacted])");
    assert_eq!(format!("{:?}", keys.wrap_key), "WrapKey([redacted])");
}

#[test]
fn an_envelope_sealed_before_its_distributor_was_removed_stays_valid() {
    let alice = person("alice");
    let bob = person("bob");
    let carol = person("carol");
    let (room, mut log, mut state) = room_with_bob(&alice, &bob);
    let add_carol = state
        .next_entry(
            "alice",
            3,
            LogAction::AddMember {
                username: "carol".into(),
                keys: carol.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice.secrets);
    state.apply(&add_carol).expect("add carol");
    log.push(add_carol);
    // bob hands carol the epoch-0 key, then is removed.
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &room.key,
        carol.name,
        bob.name,
        &bob.secrets,
        &mut OsRng,
    )
    .expect("seals");
    let remove_bob = state
        .next_entry(
            "alice",
            4,
            LogAction::RemoveMember {
                username: "bob".into(),
            },
        )
        .sign(&alice.secrets);
    state.apply(&remove_bob).expect("remove bob");
    assert!(state.member("bob").is_none());
    assert_eq!(
        envelope.open(&state, carol.name, &carol.secrets),
        Ok(room.key.clone())
    );
    // After the rotation bob never held epoch 1: an envelope of his for it is refused.
    let rotation = common::room_key::rotate(
        &state,
        "alice",
        &alice.secrets,
        &RoomMetadata::named("ops"),
        5,
        &mut OsRng,
    )
    .expect("rotation");
    state.apply(&rotation.entry).expect("rotate");
    let late = KeyEnvelope::seal(
        &state,
        1,
        &rotation.key,
        carol.name,
        bob.name,
        &bob.secrets,
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        late.open(&state, carol.name, &carol.secrets),
        Err(EnvelopeError::DistributorNotMember("bob".into()))
    );
}

#[test]
fn an_envelope_names_the_log_its_distributor_had() {
    use common::room_key::EnvelopeLogHead;
    use common::wire::Base64Array;
    let alice = person("alice");
    let bob = person("bob");
    let (room, log, state) = room_with_bob(&alice, &bob);
    let envelope = KeyEnvelope::seal(
        &state,
        0,
        &room.key,
        bob.name,
        alice.name,
        &alice.secrets,
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        envelope.log_head,
        Some(EnvelopeLogHead {
            length: 2,
            hash: Base64Array(state.head_hash())
        })
    );
    assert_eq!(
        envelope.open(&state, bob.name, &bob.secrets),
        Ok(room.key.clone())
    );
    // A reader that has only the genesis: the envelope names a longer log.
    let genesis_only = replay(&log[..1]).expect("genesis");
    assert_eq!(
        envelope.check_log_head(&genesis_only),
        Err(EnvelopeError::LogAhead(2))
    );
    // Another head at that position (re-signed by alice so only the head differs): forked.
    let mut forked = envelope.clone();
    forked.log_head = Some(EnvelopeLogHead {
        length: 2,
        hash: Base64Array([5; 32]),
    });
    assert_eq!(
        forked.open(&state, bob.name, &bob.secrets),
        Err(EnvelopeError::BadSignature),
        "a head the server edited is a bad signature, not a fork"
    );
    forked.signature = common::wire::Base64(
        alice
            .secrets
            .sign(&forked.signed_bytes())
            .to_bytes()
            .to_vec(),
    );
    assert_eq!(
        forked.verify(&state),
        Ok(()),
        "authentic, and the key is right"
    );
    assert_eq!(
        forked.open(&state, bob.name, &bob.secrets),
        Err(EnvelopeError::LogForked(1))
    );
    // Stripping the head turns it into a protocol-1 envelope whose signature does not verify.
    let mut stripped = envelope.clone();
    stripped.log_head = None;
    assert_eq!(stripped.verify(&state), Err(EnvelopeError::BadSignature));
    // A protocol-1 envelope (signed without a head) is still accepted.
    let mut legacy = stripped;
    legacy.signature = common::wire::Base64(
        alice
            .secrets
            .sign(&legacy.signed_bytes())
            .to_bytes()
            .to_vec(),
    );
    assert_eq!(
        legacy.open(&state, bob.name, &bob.secrets),
        Ok(room.key.clone())
    );
}
