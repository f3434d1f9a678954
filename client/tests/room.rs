//! One room in the client core, played from both sides: alice writes with
//! [`Room::prepare_text`], bob's [`Room`] is fed the log, his key envelope and the stored
//! messages as a server would hand them over, including a server that tampers, withholds
//! or shares history the policy does not. Natively and in headless Chromium.

use client::{EnvelopeOutcome, Room, ShownMessage, TrustWarning};
use common::api::StoredMessage;
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomState};
use common::message::seal_message;
use common::room_key::{create_room, rotate_with, EpochChange, KeyEnvelope, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const DEVICE: [u8; 16] = [5; 16];

/// alice's room "ops" with bob added as a member (a plain add, in epoch 0).
struct Scene {
    alice: IdentitySecrets,
    bob: IdentitySecrets,
    state: RoomState,
    /// The signed log entries, as the server serves them.
    log: Vec<Vec<u8>>,
    key: RoomKey,
    /// alice's own view of the room, which writes the messages.
    writer: Room,
    next_id: i64,
}

impl Scene {
    fn new() -> Self {
        let alice = IdentitySecrets::generate(&mut OsRng);
        let bob = IdentitySecrets::generate(&mut OsRng);
        let created =
            create_room("alice", &alice, &RoomMetadata::named("ops"), 1, &mut OsRng).expect("room");
        let mut state = created.state;
        let add = state
            .next_entry(
                "alice",
                2,
                LogAction::AddMember {
                    username: "bob".into(),
                    keys: bob.public_keys(),
                    role: Role::Member,
                },
            )
            .sign(&alice);
        state.apply(&add).expect("bob is added");
        let log = vec![created.genesis.as_bytes().to_vec(), add.as_bytes().to_vec()];
        let mut writer = Room::new(state.room_id());
        writer.accept_state(state.clone(), "alice");
        writer.keys.insert(0, created.key.clone());
        writer.refresh_metadata();
        Self {
            alice,
            bob,
            state,
            log,
            key: created.key,
            writer,
            next_id: 1,
        }
    }

    /// The envelope by which alice hands bob the key of `epoch`.
    fn envelope_for_bob(&self, epoch: u64, key: &RoomKey) -> KeyEnvelope {
        KeyEnvelope::seal(
            &self.state,
            epoch,
            key,
            "bob",
            "alice",
            &self.alice,
            &mut OsRng,
        )
        .expect("seals")
    }

    /// alice's next message, as the server stores it.
    fn write(&mut self, text: &str) -> StoredMessage {
        let (inner, key) = self
            .writer
            .prepare_text("alice", DEVICE, text, 1_000)
            .expect("alice holds the key");
        let sealed = seal_message(&inner, &key, &self.alice, &mut OsRng).expect("seals");
        self.writer.record_sent(&inner);
        let stored = StoredMessage {
            id: self.next_id,
            room_id: sealed.room_id,
            epoch: sealed.epoch,
            sender: "alice".into(),
            received_at_ms: 1_000,
            nonce: Base64Array(sealed.nonce),
            ciphertext: Base64(sealed.ciphertext),
        };
        self.next_id += 1;
        stored
    }

    /// bob's view of the room with the log accepted and nothing else.
    fn reader(&self) -> Room {
        let mut room = Room::new(self.state.room_id());
        room.accept_state(self.state.clone(), "bob");
        room
    }
}

fn texts(room: &Room) -> Vec<String> {
    room.messages
        .iter()
        .map(|shown| match shown {
            ShownMessage::Verified { text, .. } => text.clone(),
            ShownMessage::Attachment { attachment, .. } => format!("[{}]", attachment.name),
            ShownMessage::Warning { reason, .. } => format!("warning: {reason}"),
        })
        .collect()
}

#[test]
fn messages_wait_for_their_key_then_open_in_order() {
    let mut scene = Scene::new();
    let first = scene.write("first");
    let second = scene.write("second");
    let mut bob = scene.reader();
    bob.pending = vec![second, first];
    let processed = bob.process_pending("bob", true);
    assert!(processed.warnings.is_empty() && !processed.log_ahead);
    assert!(bob.messages.is_empty(), "nothing opens without the key");
    assert_eq!(bob.pending.len(), 2);

    let key = scene.key.clone();
    let envelope = scene.envelope_for_bob(0, &key);
    assert_eq!(
        bob.accept_envelope("bob", &scene.bob, &envelope),
        EnvelopeOutcome::Accepted
    );
    assert_eq!(bob.metadata.as_ref().map(|m| m.name.as_str()), Some("ops"));
    let processed = bob.process_pending("bob", false);
    assert!(processed.warnings.is_empty());
    assert_eq!(texts(&bob), ["first", "second"]);
    // An envelope for someone else is refused with a reason, and changes nothing.
    let carol = IdentitySecrets::generate(&mut OsRng);
    assert!(matches!(
        bob.accept_envelope("bob", &carol, &envelope),
        EnvelopeOutcome::Refused(None, _)
    ));
}

#[test]
fn a_tampered_message_is_a_warning_and_a_withheld_one_is_counted() {
    let mut scene = Scene::new();
    let first = scene.write("first");
    // The server never hands bob the second one.
    let _withheld = scene.write("withheld");
    let mut third = scene.write("third");
    third.ciphertext.0[20] ^= 1;
    let fourth = scene.write("fourth");
    let mut bob = scene.reader();
    bob.keys.insert(0, scene.key.clone());
    bob.pending = vec![first, third, fourth];
    let processed = bob.process_pending("bob", true);
    let shown = texts(&bob);
    assert_eq!(shown[0], "first");
    assert!(shown[1].starts_with("warning: "), "{shown:?}");
    assert_eq!(shown[2], "fourth");
    assert!(
        processed.warnings.iter().any(|warning| matches!(
            warning,
            TrustWarning::MessagesWithheld { sender, .. } if sender == "alice"
        )),
        "{:?}",
        processed.warnings
    );
    // The same gap is reported once.
    let again = bob.process_pending("bob", false);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn under_since_joining_a_newcomer_counts_earlier_messages_as_not_shared() {
    let mut scene = Scene::new();
    let before = scene.write("before carol");
    // carol is added in an entry that starts epoch 1; alice's key for it is sealed to her.
    let carol = IdentitySecrets::generate(&mut OsRng);
    let rotation = rotate_with(
        &scene.state,
        EpochChange::AddMember {
            username: "carol".into(),
            keys: carol.public_keys(),
            role: Role::Member,
        },
        "alice",
        &scene.alice,
        Some(&RoomMetadata::named("ops")),
        3,
        &mut OsRng,
    )
    .expect("alice adds carol");
    scene.state = rotation.state.clone();
    scene.writer.accept_state(rotation.state.clone(), "alice");
    scene.writer.keys.insert(1, rotation.key.clone());
    let after = scene.write("after carol");
    assert_eq!(after.epoch, 1);

    let mut carols = Room::new(scene.state.room_id());
    carols.accept_state(scene.state.clone(), "carol");
    let envelope = KeyEnvelope::seal(
        &scene.state,
        1,
        &rotation.key,
        "carol",
        "alice",
        &scene.alice,
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        carols.accept_envelope("carol", &carol, &envelope),
        EnvelopeOutcome::Accepted
    );
    carols.pending = vec![before, after];
    carols.process_pending("carol", true);
    assert_eq!(texts(&carols), ["after carol"]);
    assert_eq!(carols.not_shared, 1);
    assert!(carols.pending.is_empty());
}

#[test]
fn a_message_naming_a_longer_log_waits_for_it_then_is_a_fork_after_a_fresh_fetch() {
    let mut scene = Scene::new();
    // alice's log moves on (an invite) before she writes; bob still has the shorter one.
    let mut bob = scene.reader();
    bob.keys.insert(0, scene.key.clone());
    let invite = scene
        .state
        .next_entry(
            "alice",
            4,
            LogAction::Invite {
                token_hash: [9; 32],
                expires_at_ms: 10,
                max_uses: 1,
            },
        )
        .sign(&scene.alice);
    scene.state.apply(&invite).expect("applies");
    scene.writer.accept_state(scene.state.clone(), "alice");
    let message = scene.write("at the longer log");
    bob.pending = vec![message];
    let processed = bob.process_pending("bob", false);
    assert!(processed.log_ahead, "the driver is asked to fetch the log");
    assert!(bob.messages.is_empty());
    assert_eq!(bob.ahead_of_log.len(), 1);
    // The server serves the same short log again: it withholds the entry.
    let processed = bob.process_pending("bob", true);
    assert!(matches!(
        processed.warnings.as_slice(),
        [TrustWarning::LogForked { .. }]
    ));
    assert!(texts(&bob)[0].starts_with("warning: "));
}

#[test]
fn a_sync_opens_the_room_and_refuses_a_log_rolled_back_since() {
    let mut scene = Scene::new();
    let first = scene.write("first");
    let key = scene.key.clone();
    let envelope = scene.envelope_for_bob(0, &key);
    let mut client_state = client::ClientState::default();
    let answers =
        |scene: &Scene, history: Vec<StoredMessage>, log_length: usize| client::SyncAnswers {
            history,
            has_more: false,
            log: scene.log[..log_length].to_vec(),
            envelopes: vec![envelope.clone()],
        };
    let full = scene.log.len();
    let synced = Room::from_sync(
        scene.state.room_id(),
        "bob",
        &scene.bob,
        answers(&scene, vec![first.clone()], full),
        &mut client_state,
        None,
    );
    assert!(synced.processed.warnings.is_empty());
    assert_eq!(texts(&synced.room), ["first"]);
    assert!(client_state.remember_log(scene.state.room_id(), &scene.state));

    // The server serves the log without its last entry: refused, with the warning.
    let synced = Room::from_sync(
        scene.state.room_id(),
        "bob",
        &scene.bob,
        answers(&scene, vec![first], full - 1),
        &mut client_state,
        Some(&synced.room),
    );
    assert!(synced.room.state.is_err());
    assert!(matches!(
        synced.processed.warnings.as_slice(),
        [TrustWarning::LogRolledBack { .. }]
    ));
    assert!(synced.room.messages.is_empty());
}

#[test]
fn nothing_is_prepared_while_a_rotation_is_pending() {
    let mut scene = Scene::new();
    assert!(scene
        .writer
        .prepare_text("alice", DEVICE, "before", 1)
        .is_some());
    let leave = scene
        .state
        .next_entry("bob", 5, LogAction::Leave)
        .sign(&scene.bob);
    scene.state.apply(&leave).expect("bob leaves");
    scene.writer.accept_state(scene.state.clone(), "alice");
    assert!(scene
        .writer
        .prepare_text("alice", DEVICE, "bob could read this", 2)
        .is_none());
}

#[test]
fn a_message_at_an_epoch_its_named_log_had_replaced_is_a_warning() {
    let mut scene = Scene::new();
    // alice removes bob in an entry that starts epoch 1.
    let removal = rotate_with(
        &scene.state,
        EpochChange::RemoveMember("bob".into()),
        "alice",
        &scene.alice,
        Some(&RoomMetadata::named("ops")),
        6,
        &mut OsRng,
    )
    .expect("alice removes bob");
    scene.state = removal.state.clone();
    // bob, still holding K_0 and shown the longer log, writes at epoch 0 naming it.
    let mut inner = common::message::InnerMessage {
        room_id: scene.state.room_id(),
        epoch: 0,
        sender: "bob".into(),
        chain: common::message::ChainLink {
            device: [9; 16],
            counter: 1,
            prev_hash: [0; 32],
        },
        log_length: removal.state.length(),
        log_head: removal.state.head_hash(),
        sent_at_ms: 7,
        kind: common::message::MessageKind::Text,
        body: b"still reading along".to_vec(),
    };
    let stored = |inner: &common::message::InnerMessage, id: i64| {
        let sealed = seal_message(inner, &scene.key, &scene.bob, &mut OsRng).expect("seals");
        StoredMessage {
            id,
            room_id: sealed.room_id,
            epoch: 0,
            sender: "bob".into(),
            received_at_ms: 7,
            nonce: Base64Array(sealed.nonce),
            ciphertext: Base64(sealed.ciphertext),
        }
    };
    let mut alices = Room::new(scene.state.room_id());
    alices.accept_state(scene.state.clone(), "alice");
    alices.keys.insert(0, scene.key.clone());
    alices.keys.insert(1, removal.key.clone());
    alices.pending = vec![stored(&inner, 1)];
    alices.process_pending("alice", true);
    let shown = texts(&alices);
    assert!(
        shown[0]
            .starts_with("warning: written with the key of epoch 0 after the log had replaced it"),
        "{shown:?}"
    );
    // A message naming the log from before the removal is what an honest message written
    // just before it looks like: shown.
    inner.log_length = scene.log.len() as u64;
    inner.log_head = common::membership::replay_bytes(&scene.log)
        .expect("replays")
        .head_hash();
    inner.chain.device = [8; 16];
    let mut late = Room::new(scene.state.room_id());
    late.accept_state(scene.state.clone(), "alice");
    late.keys.insert(0, scene.key.clone());
    late.pending = vec![stored(&inner, 2)];
    late.process_pending("alice", true);
    assert_eq!(texts(&late), ["still reading along"]);
}

#[test]
fn the_room_says_when_to_ask_for_a_key_and_when_to_rotate() {
    let mut scene = Scene::new();
    let mut bob = scene.reader();
    // bob lacks the key: he asks once, and again only after a failed request.
    assert_eq!(bob.key_to_request("bob"), Some(0));
    assert_eq!(bob.key_to_request("bob"), None);
    bob.key_request_failed(0);
    assert_eq!(bob.key_to_request("bob"), Some(0));
    assert_eq!(bob.rotation_duty("bob", 10), None);
    // alice, the owner holding the key, rotates once the epoch is due (7 days by default).
    let week = common::membership::RotationSchedule::default().max_age_ms;
    assert_eq!(scene.writer.rotation_duty("alice", week), None);
    assert_eq!(
        scene.writer.rotation_duty("alice", week + 1),
        Some(client::RotationDuty::Due)
    );
    assert_eq!(bob.rotation_duty("bob", week + 1), None, "not an admin");

    // After a leave every remaining member is asked to rotate; admins at once.
    let carol = IdentitySecrets::generate(&mut OsRng);
    let add = scene
        .state
        .next_entry(
            "alice",
            3,
            LogAction::AddMember {
                username: "carol".into(),
                keys: carol.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&scene.alice);
    scene.state.apply(&add).expect("carol is added");
    let leave = scene
        .state
        .next_entry("carol", 4, LogAction::Leave)
        .sign(&carol);
    scene.state.apply(&leave).expect("carol leaves");
    scene.writer.accept_state(scene.state.clone(), "alice");
    bob.accept_state(scene.state.clone(), "bob");
    assert_eq!(
        scene.writer.rotation_duty("alice", 10),
        Some(client::RotationDuty::Pending { admin: true })
    );
    assert_eq!(
        bob.rotation_duty("bob", 10),
        Some(client::RotationDuty::Pending { admin: false })
    );
    // bob completes it without the key and without new metadata; it is sealed to whom his
    // check allows, and always to himself.
    let (rotation, envelopes) = bob
        .start_epoch(
            "bob",
            &scene.bob,
            EpochChange::Rotate,
            |_, _| false,
            11,
            &mut OsRng,
        )
        .expect("bob may complete the rotation");
    assert!(!rotation.state.rotation_pending());
    assert_eq!(rotation.state.encrypted_metadata().0, 0, "metadata kept");
    assert_eq!(
        envelopes
            .iter()
            .map(|e| e.recipient.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    // An admin adds under "since joining" only with the room's name readable.
    let dave = IdentitySecrets::generate(&mut OsRng);
    let add_dave = EpochChange::AddMember {
        username: "dave".into(),
        keys: dave.public_keys(),
        role: Role::Member,
    };
    let mut nameless = scene.writer.clone();
    nameless.metadata = None;
    assert_eq!(
        nameless
            .start_epoch(
                "alice",
                &scene.alice,
                add_dave.clone(),
                |_, _| true,
                12,
                &mut OsRng
            )
            .err(),
        Some(client::RoomError::NameNotReadable)
    );
    scene
        .writer
        .start_epoch("alice", &scene.alice, add_dave, |_, _| true, 12, &mut OsRng)
        .expect("with the name it works");
}

#[test]
fn keys_are_handed_only_to_members_by_a_member_holding_the_current_key() {
    let scene = Scene::new();
    let envelopes = scene
        .writer
        .envelopes_for("alice", &scene.alice, "bob", &mut OsRng)
        .expect("sealed");
    assert_eq!(envelopes.iter().map(|e| e.epoch).collect::<Vec<_>>(), [0]);
    assert!(scene
        .writer
        .envelopes_for("alice", &scene.alice, "mallory", &mut OsRng)
        .expect("nothing to seal")
        .is_empty());
    // bob, without the key, has nothing to hand on.
    assert!(scene
        .reader()
        .envelopes_for("bob", &scene.bob, "alice", &mut OsRng)
        .expect("nothing to seal")
        .is_empty());
}

#[test]
fn a_sync_pages_back_to_the_oldest_remembered_chain_head() {
    let mut scene = Scene::new();
    let messages: Vec<StoredMessage> = (0..6).map(|n| scene.write(&format!("m{n}"))).collect();
    let mut answers = client::SyncAnswers {
        history: messages[4..].to_vec(),
        has_more: true,
        ..client::SyncAnswers::default()
    };
    // Nothing remembered, or the head already in the page: no older page.
    assert_eq!(answers.older_page_needed(None), None);
    assert_eq!(answers.older_page_needed(Some(messages[4].id)), None);
    // A head further back: the page before the first one held.
    assert_eq!(
        answers.older_page_needed(Some(messages[1].id)),
        Some(messages[4].id)
    );
    answers.prepend_older(messages[2..4].to_vec(), true);
    assert_eq!(
        answers.older_page_needed(Some(messages[1].id)),
        Some(messages[2].id)
    );
    answers.prepend_older(messages[..2].to_vec(), false);
    assert_eq!(answers.older_page_needed(Some(messages[1].id)), None);
    assert_eq!(
        answers.history.iter().map(|m| m.id).collect::<Vec<_>>(),
        messages.iter().map(|m| m.id).collect::<Vec<_>>()
    );
}
