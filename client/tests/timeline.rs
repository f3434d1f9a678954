//! Replies, edits, deletions and reactions as readers see them ([`client::timeline`]): alice
//! and bob write signed messages of every kind, a reader's [`Room`] opens them as a server
//! hands them over, and the timeline applies only what each rule allows: an edit or deletion
//! by someone other than the message's sender shows as a warning and changes nothing.
//! Natively and in headless Chromium.

use client::{timeline, ItemContent, Room, TimelineItem};
use common::api::StoredMessage;
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomState};
use common::message::{seal_message, MessageBody, MessageHash};
use common::room_key::{create_room, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// alice's room with bob as a member; each writes from a view of their own.
struct Scene {
    alice: IdentitySecrets,
    bob: IdentitySecrets,
    state: RoomState,
    key: RoomKey,
    writers: [Room; 2],
    next_id: i64,
    clock: u64,
}

impl Scene {
    fn new() -> Self {
        let alice = IdentitySecrets::generate(&mut OsRng);
        let bob = IdentitySecrets::generate(&mut OsRng);
        let created = create_room("alice", &alice, &RoomMetadata::named("talk"), 1, &mut OsRng)
            .expect("room");
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
        let writers = ["alice", "bob"].map(|name| {
            let mut room = Room::new(state.room_id());
            room.accept_state(state.clone(), name);
            room.keys.insert(0, created.key.clone());
            room
        });
        Self {
            alice,
            bob,
            state,
            key: created.key,
            writers,
            next_id: 1,
            clock: 1_000,
        }
    }

    /// `who`'s next message with `body`, as the server stores it, and its hash.
    fn write(&mut self, who: &str, body: MessageBody) -> (StoredMessage, MessageHash) {
        let (writer, secrets) = if who == "alice" {
            (&mut self.writers[0], &self.alice)
        } else {
            (&mut self.writers[1], &self.bob)
        };
        self.clock += 1_000;
        let (inner, key) = writer
            .prepare_message(who, [7; 16], body.kind(), body.to_bytes(), self.clock)
            .expect("holds the key");
        let sealed = seal_message(&inner, &key, secrets, &mut OsRng).expect("seals");
        writer.record_sent(&inner);
        let stored = StoredMessage {
            id: self.next_id,
            room_id: sealed.room_id,
            epoch: sealed.epoch,
            sender: who.into(),
            received_at_ms: self.clock as i64,
            nonce: Base64Array(sealed.nonce),
            ciphertext: Base64(sealed.ciphertext),
        };
        self.next_id += 1;
        (stored, inner.chain_hash())
    }

    fn text(&mut self, who: &str, text: &str) -> (StoredMessage, MessageHash) {
        self.write(who, MessageBody::Text(text.into()))
    }

    /// A reader (alice, in another browser) that has opened `messages`.
    fn read(&self, messages: &[StoredMessage]) -> Room {
        let mut room = Room::new(self.state.room_id());
        room.accept_state(self.state.clone(), "alice");
        room.keys.insert(0, self.key.clone());
        room.pending = messages.to_vec();
        let processed = room.process_pending("alice", true);
        assert!(processed.warnings.is_empty(), "{:?}", processed.warnings);
        room
    }
}

fn text_of(item: &TimelineItem) -> String {
    match &item.content {
        ItemContent::Text(text) => text.clone(),
        ItemContent::Attachment(attachment) => format!("[{}]", attachment.name),
        ItemContent::Deleted => "(deleted)".into(),
        ItemContent::Warning(reason) => format!("warning: {reason}"),
    }
}

#[test]
fn a_reply_quotes_what_it_answers_as_it_now_reads() {
    let mut scene = Scene::new();
    let (question, question_hash) = scene.text("alice", "lunch at noon?\nor later");
    let (reply, _) = scene.write(
        "bob",
        MessageBody::Reply {
            target: question_hash,
            text: "noon works".into(),
        },
    );
    let items = timeline(&scene.read(&[question.clone(), reply.clone()]));
    assert_eq!(items.len(), 2);
    let quoted = items[1]
        .reply_to
        .as_ref()
        .and_then(|reply| reply.quoted.clone())
        .expect("the reply quotes the question");
    assert_eq!((quoted.id, quoted.sender.as_str()), (question.id, "alice"));
    assert_eq!(quoted.excerpt, "lunch at noon?…");
    assert_eq!(text_of(&items[1]), "noon works");

    // Edited, the question reads anew in the quote, and the reply's revision moves so a view
    // redraws it.
    let before = items[1].revision;
    let (edit, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: question_hash,
            text: "lunch at one?".into(),
        },
    );
    let items = timeline(&scene.read(&[question, reply, edit]));
    let quoted = items[1]
        .reply_to
        .as_ref()
        .and_then(|reply| reply.quoted.clone());
    assert_eq!(
        quoted.map(|quoted| quoted.excerpt).as_deref(),
        Some("lunch at one?")
    );
    assert!(items[1].revision > before);
}

#[test]
fn a_reply_to_a_message_not_loaded_says_so() {
    let mut scene = Scene::new();
    let (_, old_hash) = scene.text("alice", "long ago");
    let (reply, _) = scene.write(
        "bob",
        MessageBody::Reply {
            target: old_hash,
            text: "indeed".into(),
        },
    );
    let items = timeline(&scene.read(&[reply]));
    let preview = items[0].reply_to.as_ref().expect("a reply");
    assert_eq!(preview.target, old_hash);
    assert_eq!(preview.quoted, None);
}

#[test]
fn the_senders_latest_edit_wins_and_is_marked() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "teh plan");
    let (first, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: hash,
            text: "the plan".into(),
        },
    );
    let (second, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: hash,
            text: "the plan, final".into(),
        },
    );
    let room = scene.read(&[note.clone(), first.clone(), second.clone()]);
    assert_eq!(room.relations.len(), 2, "edits are not rows of their own");
    let items = timeline(&room);
    assert_eq!(items.len(), 1);
    assert_eq!(text_of(&items[0]), "the plan, final");
    assert!(items[0].edited);
    assert_eq!(items[0].revision, 2);

    // Served out of order by the server, the sender's clock still decides.
    let items = timeline(&scene.read(&[note, second, first]));
    assert_eq!(text_of(&items[0]), "the plan, final");
}

#[test]
fn an_edit_or_deletion_by_another_member_is_a_warning_and_changes_nothing() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "I owe bob 10");
    let (forged_edit, _) = scene.write(
        "bob",
        MessageBody::Edit {
            target: hash,
            text: "I owe bob 1000".into(),
        },
    );
    let (forged_delete, _) = scene.write("bob", MessageBody::Delete { target: hash });
    let items = timeline(&scene.read(&[note, forged_edit.clone(), forged_delete.clone()]));
    let shown: Vec<String> = items.iter().map(text_of).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown[0], "I owe bob 10");
    assert!(!items[0].edited);
    for (item, (id, verb)) in items[1..]
        .iter()
        .zip([(forged_edit.id, "edit"), (forged_delete.id, "delete")])
    {
        assert_eq!(item.id, id);
        assert_eq!(item.hash, None, "a warning cannot be replied to");
        let ItemContent::Warning(reason) = &item.content else {
            panic!("expected a warning, got {item:?}");
        };
        assert!(
            reason.contains(&format!("bob tried to {verb} a message of alice's")),
            "{reason}"
        );
    }
}

#[test]
fn a_deleted_message_is_a_placeholder_without_its_reactions() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "oops, wrong room");
    let (reaction, _) = scene.write(
        "bob",
        MessageBody::Reaction {
            target: hash,
            reaction: "😂".into(),
            added: true,
        },
    );
    let (reply, _) = scene.write(
        "bob",
        MessageBody::Reply {
            target: hash,
            text: "ha".into(),
        },
    );
    let (delete, _) = scene.write("alice", MessageBody::Delete { target: hash });
    let items = timeline(&scene.read(&[note, reaction, reply, delete]));
    assert_eq!(items[0].content, ItemContent::Deleted);
    assert!(items[0].reactions.is_empty());
    let quoted = items[1]
        .reply_to
        .as_ref()
        .and_then(|reply| reply.quoted.clone());
    assert_eq!(
        quoted.map(|quoted| quoted.excerpt).as_deref(),
        Some("deleted message")
    );
}

#[test]
fn reactions_are_counted_per_reaction_with_who_and_can_be_withdrawn() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "release is out");
    let react = |scene: &mut Scene, who: &str, reaction: &str, added: bool| {
        scene
            .write(
                who,
                MessageBody::Reaction {
                    target: hash,
                    reaction: reaction.into(),
                    added,
                },
            )
            .0
    };
    let mut messages = vec![note];
    messages.push(react(&mut scene, "bob", "🎉", true));
    messages.push(react(&mut scene, "alice", "🎉", true));
    messages.push(react(&mut scene, "bob", "👍", true));
    messages.push(react(&mut scene, "bob", "🎉", true));
    let items = timeline(&scene.read(&messages));
    let counts: Vec<(String, Vec<String>)> = items[0]
        .reactions
        .iter()
        .map(|count| (count.reaction.clone(), count.senders.clone()))
        .collect();
    assert_eq!(
        counts,
        [
            ("🎉".to_owned(), vec!["alice".to_owned(), "bob".to_owned()]),
            ("👍".to_owned(), vec!["bob".to_owned()]),
        ]
    );

    messages.push(react(&mut scene, "bob", "👍", false));
    messages.push(react(&mut scene, "alice", "🎉", false));
    let items = timeline(&scene.read(&messages));
    let counts: Vec<(String, usize)> = items[0]
        .reactions
        .iter()
        .map(|count| (count.reaction.clone(), count.senders.len()))
        .collect();
    assert_eq!(counts, [("🎉".to_owned(), 1)]);
}

#[test]
fn relations_wait_for_a_target_that_an_older_page_brings() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "first draft");
    let (edit, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: hash,
            text: "second draft".into(),
        },
    );
    // The newest page holds the edit only: nothing shows yet.
    let mut room = scene.read(std::slice::from_ref(&edit));
    assert!(timeline(&room).is_empty());
    // The older page brings the message: the edit applies.
    room.pending.push(note);
    room.process_pending("alice", true);
    let items = timeline(&room);
    assert_eq!(items.len(), 1);
    assert_eq!(text_of(&items[0]), "second draft");
    assert!(items[0].edited);
}

#[test]
fn an_edit_of_an_attachment_is_refused_and_one_naming_a_relation_waits() {
    use common::attachment::{AttachmentCipher, AttachmentRef, MediaKind};
    let mut scene = Scene::new();
    let file = AttachmentRef {
        cipher: AttachmentCipher::generate(1000, 16 * 1024, &mut OsRng).expect("layout"),
        ciphertext_sha256: [0; 32],
        kind: MediaKind::File,
        mime: "text/plain".into(),
        name: "notes.txt".into(),
        dimensions: None,
        thumbnail: Vec::new(),
        thumbnail_mime: String::new(),
    };
    let (attachment, attachment_hash) =
        scene.write("alice", MessageBody::Attachment(Box::new(file)));
    let (edit, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: attachment_hash,
            text: "a caption".into(),
        },
    );
    // A reaction is no shown message: an edit naming it never finds its target.
    let (reaction, reaction_hash) = scene.write(
        "alice",
        MessageBody::Reaction {
            target: attachment_hash,
            reaction: "👍".into(),
            added: true,
        },
    );
    let (edit_of_reaction, _) = scene.write(
        "alice",
        MessageBody::Edit {
            target: reaction_hash,
            text: "sneaky".into(),
        },
    );
    let items = timeline(&scene.read(&[attachment, edit.clone(), reaction, edit_of_reaction]));
    let shown: Vec<String> = items.iter().map(text_of).collect();
    assert_eq!(
        shown,
        [
            "[notes.txt]".to_owned(),
            "warning: an edit of a message that has no text".to_owned()
        ]
    );
    assert_eq!(items[1].id, edit.id);
    assert_eq!(items[0].reactions.len(), 1);
}

#[test]
fn a_server_that_passes_one_members_edit_off_as_the_senders_is_caught() {
    let mut scene = Scene::new();
    let (note, hash) = scene.text("alice", "Meet at 8");
    let (mut forged, _) = scene.write(
        "bob",
        MessageBody::Edit {
            target: hash,
            text: "Meet at 11".into(),
        },
    );
    // The server claims alice sent bob's edit, so that it would count as hers.
    forged.sender = "alice".into();
    let mut room = Room::new(scene.state.room_id());
    room.accept_state(scene.state.clone(), "alice");
    room.keys.insert(0, scene.key.clone());
    room.pending = vec![note, forged.clone()];
    room.process_pending("alice", true);
    assert!(room.relations.is_empty(), "the edit is not applied");
    let items = timeline(&room);
    assert_eq!(text_of(&items[0]), "Meet at 8");
    assert!(!items[0].edited);
    assert_eq!(items[1].id, forged.id);
    assert!(
        text_of(&items[1]).contains("claims sender bob but the server reports alice"),
        "{:?}",
        items[1]
    );
}
