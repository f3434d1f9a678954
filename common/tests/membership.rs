//! Room administration in the membership log: every entry kind, every authority rule, and
//! logs that a server forged, reordered, truncated or had re-signed by a non-admin. Native and
//! in headless Chromium.

use std::collections::BTreeMap;

use common::identity::IdentitySecrets;
use common::membership::{
    invite_token_hash, replay, HistoryPolicy, LogAction, LogErrorKind, Role, RoomPolicy, RoomState,
    SignedLogEntry,
};
use common::message::{
    open_message, seal_message, ChainLink, InnerMessage, MessageError, MessageKind,
};
use common::room_key::{
    create_room, envelopes_for_member, open_metadata, rotate, rotate_with, EnvelopeError,
    EpochChange, KeyEnvelope, RoomKey, RoomMetadata,
};
use common::trust::{open_pins, seal_pins, PinCheck, Pins, TrustError};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A room under construction: the people, the log and the state.
struct Room {
    people: BTreeMap<&'static str, IdentitySecrets>,
    log: Vec<SignedLogEntry>,
    state: RoomState,
    keys: BTreeMap<u64, RoomKey>,
}

impl Room {
    /// alice (owner) creates "ops"; bob and carol exist but are not members yet.
    fn new() -> Self {
        let mut people = BTreeMap::new();
        for name in ["alice", "bob", "carol", "dave", "mallory"] {
            people.insert(name, IdentitySecrets::generate(&mut OsRng));
        }
        let created = create_room(
            "alice",
            &people["alice"],
            &RoomMetadata::named("ops"),
            1,
            &mut OsRng,
        )
        .expect("room");
        Self {
            people,
            log: vec![created.genesis.clone()],
            state: created.state,
            keys: BTreeMap::from([(0, created.key)]),
        }
    }

    fn entry(&self, author: &str, action: LogAction) -> SignedLogEntry {
        self.state
            .next_entry(author, 10 + self.state.length(), action)
            .sign(&self.people[author])
    }

    /// Applies an entry by `author`, returning the error kind if refused.
    fn try_apply(&mut self, author: &str, action: LogAction) -> Result<(), LogErrorKind> {
        let entry = self.entry(author, action);
        self.state.apply(&entry)?;
        self.log.push(entry);
        Ok(())
    }

    fn apply(&mut self, author: &str, action: LogAction) {
        let name = action.name();
        self.try_apply(author, action)
            .unwrap_or_else(|error| panic!("{author} may {name}: {error}"));
    }

    fn add(&mut self, author: &str, who: &str, role: Role) -> Result<(), LogErrorKind> {
        let keys = self.people[who].public_keys();
        self.try_apply(
            author,
            LogAction::AddMember {
                username: who.to_owned(),
                keys,
                role,
            },
        )
    }

    fn role(&self, who: &str) -> Option<Role> {
        self.state.member(who).map(|member| member.role)
    }

    fn rotate(&mut self, author: &str) {
        let rotation = rotate(
            &self.state,
            author,
            &self.people[author],
            &RoomMetadata::named("ops"),
            99,
            &mut OsRng,
        )
        .expect("rotation");
        self.log.push(rotation.entry);
        self.state = rotation.state;
        self.keys.insert(self.state.current_epoch(), rotation.key);
    }

    /// Starts the next epoch together with `change`, by `author`, with the metadata named
    /// "ops" or, with `metadata` false, none; returns the refusal, if any.
    fn try_rotate_with(
        &mut self,
        author: &str,
        change: EpochChange,
        metadata: bool,
    ) -> Result<(), LogErrorKind> {
        let name = RoomMetadata::named("ops");
        let rotation = rotate_with(
            &self.state,
            change,
            author,
            &self.people[author],
            metadata.then_some(&name),
            99,
            &mut OsRng,
        )?;
        self.log.push(rotation.entry);
        self.state = rotation.state;
        self.keys.insert(self.state.current_epoch(), rotation.key);
        Ok(())
    }

    /// The first message of `sender`'s chain in the current epoch.
    fn message(&self, sender: &str) -> common::message::SealedMessage {
        let epoch = self.state.current_epoch();
        let inner = InnerMessage {
            room_id: self.state.room_id(),
            epoch,
            sender: sender.to_owned(),
            chain: ChainLink {
                device: [1; 16],
                counter: 1,
                prev_hash: [0; 32],
            },
            log_length: self.state.length(),
            log_head: self.state.head_hash(),
            sent_at_ms: 5,
            kind: MessageKind::Text,
            body: b"hi".to_vec(),
        };
        seal_message(&inner, &self.keys[&epoch], &self.people[sender], &mut OsRng).expect("seals")
    }
}

fn not_authorized(result: Result<(), LogErrorKind>) -> bool {
    matches!(result, Err(LogErrorKind::NotAuthorized { .. }))
}

#[test]
fn every_entry_kind_replays() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Admin)
        .expect("owner adds admin");
    room.add("bob", "carol", Role::Member)
        .expect("admin adds member");
    room.add("bob", "dave", Role::Member)
        .expect("admin adds member");
    room.apply(
        "alice",
        LogAction::SetRole {
            username: "carol".into(),
            role: Role::Admin,
        },
    );
    room.apply(
        "alice",
        LogAction::SetRole {
            username: "carol".into(),
            role: Role::Member,
        },
    );
    let policy = RoomPolicy {
        history: HistoryPolicy::FullHistory,
        messages_per_minute: 5,
        ..RoomPolicy::default()
    };
    room.apply("bob", LogAction::SetPolicy { policy });
    let token_hash = invite_token_hash(b"secret token");
    room.apply(
        "bob",
        LogAction::Invite {
            token_hash,
            expires_at_ms: 10_000,
            max_uses: 2,
        },
    );
    room.apply(
        "bob",
        LogAction::RemoveMember {
            username: "dave".into(),
        },
    );
    assert!(room.state.rotation_pending());
    room.rotate("bob");
    assert!(!room.state.rotation_pending());
    room.apply("carol", LogAction::Leave);
    room.apply(
        "bob",
        LogAction::Ban {
            username: "mallory".into(),
        },
    );
    room.apply("bob", LogAction::ClearHistory);
    room.rotate("alice");
    let metadata = common::room_key::seal_metadata(
        &room.keys[&2],
        &room.state.room_id(),
        2,
        &RoomMetadata {
            name: "ops 2".into(),
            topic: "new topic".into(),
            direct: false,
        },
        &mut OsRng,
    );
    room.apply(
        "bob",
        LogAction::SetMetadata {
            encrypted_metadata: metadata,
        },
    );
    room.apply("alice", LogAction::DeleteRoom);

    let replayed = replay(&room.log).expect("the whole log replays");
    assert_eq!(replayed, room.state);
    assert_eq!(replayed.current_epoch(), 2);
    assert_eq!(replayed.policy(), &policy);
    assert_eq!(replayed.invites()[&token_hash].max_uses, 2);
    assert!(replayed.banned().contains("mallory"));
    assert!(replayed.deleted());
    assert_eq!(
        replayed.members().keys().collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    // dave was a member in epoch 0 only; carol until she left in epoch 1.
    assert!(replayed.was_member_in_epoch("dave", 0));
    assert!(!replayed.was_member_in_epoch("dave", 1));
    assert!(replayed.was_member_in_epoch("carol", 1));
    assert!(!replayed.was_member_in_epoch("carol", 2));
    let (epoch, sealed) = replayed.encrypted_metadata();
    let metadata =
        open_metadata(&room.keys[&epoch], &replayed.room_id(), epoch, sealed).expect("opens");
    assert_eq!(metadata.topic, "new topic");
    // Nothing may follow a deletion, not even from the owner.
    let after = room.entry("alice", LogAction::ClearHistory);
    assert_eq!(
        room.state.clone().apply(&after),
        Err(LogErrorKind::RoomDeleted)
    );
}

#[test]
fn authority_rules() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Admin)
        .expect("owner adds admin");
    room.add("alice", "carol", Role::Member)
        .expect("owner adds member");
    // Members may not administer.
    assert!(not_authorized(room.add("carol", "dave", Role::Member)));
    assert!(not_authorized(room.try_apply(
        "carol",
        LogAction::RemoveMember {
            username: "bob".into()
        }
    )));
    assert!(not_authorized(room.try_apply(
        "carol",
        LogAction::Ban {
            username: "dave".into()
        }
    )));
    assert!(not_authorized(room.try_apply(
        "carol",
        LogAction::SetPolicy {
            policy: RoomPolicy::default()
        }
    )));
    assert!(not_authorized(room.try_apply(
        "carol",
        LogAction::Invite {
            token_hash: [1; 32],
            expires_at_ms: 1,
            max_uses: 1
        }
    )));
    assert!(not_authorized(
        room.try_apply("carol", LogAction::ClearHistory)
    ));
    assert!(not_authorized(room.try_apply(
        "carol",
        LogAction::SetMetadata {
            encrypted_metadata: vec![]
        }
    )));
    let rotation = rotate(
        &room.state,
        "carol",
        &room.people["carol"],
        &RoomMetadata::named("x"),
        1,
        &mut OsRng,
    );
    assert!(matches!(rotation, Err(LogErrorKind::NotAuthorized { .. })));
    // Admins may not appoint admins, change roles, remove or ban admins and the owner, or delete.
    assert!(not_authorized(room.add("bob", "dave", Role::Admin)));
    assert!(not_authorized(room.try_apply(
        "bob",
        LogAction::SetRole {
            username: "carol".into(),
            role: Role::Admin
        }
    )));
    assert!(not_authorized(room.try_apply(
        "bob",
        LogAction::RemoveMember {
            username: "alice".into()
        }
    )));
    assert!(not_authorized(room.try_apply(
        "bob",
        LogAction::Ban {
            username: "alice".into()
        }
    )));
    assert!(not_authorized(room.try_apply("bob", LogAction::DeleteRoom)));
    // Nobody makes an owner; nobody targets themselves; the owner cannot leave.
    assert!(not_authorized(room.add("alice", "dave", Role::Owner)));
    assert!(not_authorized(room.try_apply(
        "alice",
        LogAction::SetRole {
            username: "bob".into(),
            role: Role::Owner
        }
    )));
    assert_eq!(
        room.try_apply(
            "alice",
            LogAction::RemoveMember {
                username: "alice".into()
            }
        ),
        Err(LogErrorKind::TargetsAuthor)
    );
    assert_eq!(
        room.try_apply(
            "alice",
            LogAction::SetRole {
                username: "alice".into(),
                role: Role::Member
            }
        ),
        Err(LogErrorKind::TargetsAuthor)
    );
    assert_eq!(
        room.try_apply("alice", LogAction::Leave),
        Err(LogErrorKind::OwnerCannotLeave)
    );
    // Targets must be members; invites need uses and are unique; rotations are consecutive.
    assert_eq!(
        room.try_apply(
            "alice",
            LogAction::RemoveMember {
                username: "dave".into()
            }
        ),
        Err(LogErrorKind::NotAMember("dave".into()))
    );
    assert_eq!(
        room.try_apply(
            "alice",
            LogAction::SetRole {
                username: "dave".into(),
                role: Role::Admin
            }
        ),
        Err(LogErrorKind::NotAMember("dave".into()))
    );
    assert!(matches!(
        room.try_apply(
            "bob",
            LogAction::Invite {
                token_hash: [1; 32],
                expires_at_ms: 1,
                max_uses: 0
            }
        ),
        Err(LogErrorKind::InvalidInvite(_))
    ));
    room.apply(
        "bob",
        LogAction::Invite {
            token_hash: [1; 32],
            expires_at_ms: 1,
            max_uses: 1,
        },
    );
    assert!(matches!(
        room.try_apply(
            "bob",
            LogAction::Invite {
                token_hash: [1; 32],
                expires_at_ms: 1,
                max_uses: 1
            }
        ),
        Err(LogErrorKind::InvalidInvite(_))
    ));
    assert_eq!(
        room.try_apply(
            "bob",
            LogAction::Rotate {
                epoch: 5,
                key_commitment: [0; 32],
                encrypted_metadata: vec![]
            }
        ),
        Err(LogErrorKind::EpochGap {
            expected: 1,
            found: 5
        })
    );
    // The owner may do what admins may not.
    room.apply(
        "alice",
        LogAction::SetRole {
            username: "carol".into(),
            role: Role::Admin,
        },
    );
    assert_eq!(room.role("carol"), Some(Role::Admin));
    room.apply(
        "alice",
        LogAction::RemoveMember {
            username: "carol".into(),
        },
    );
    assert_eq!(room.role("carol"), None);
    // A removed member can no longer write to the log.
    assert_eq!(
        room.try_apply("carol", LogAction::Leave),
        Err(LogErrorKind::AuthorNotMember("carol".into()))
    );
}

#[test]
fn a_banned_user_cannot_be_added_again() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Member).expect("added");
    room.apply(
        "alice",
        LogAction::Ban {
            username: "bob".into(),
        },
    );
    assert_eq!(room.role("bob"), None);
    assert_eq!(
        room.add("alice", "bob", Role::Member),
        Err(LogErrorKind::Banned("bob".into()))
    );
    assert_eq!(
        room.try_apply(
            "alice",
            LogAction::Ban {
                username: "bob".into()
            }
        ),
        Err(LogErrorKind::Banned("bob".into()))
    );
}

#[test]
fn forged_reordered_truncated_and_resigned_logs_are_refused() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Member).expect("added");
    room.add("alice", "carol", Role::Member).expect("added");
    // Re-signed by a non-admin: bob signs the entry that adds carol, in his own name.
    let mut resigned = room.log.clone();
    let mut entry = resigned[2].entry().clone();
    entry.author = "bob".into();
    resigned[2] = entry.sign(&room.people["bob"]);
    let error = replay(&resigned).expect_err("refused");
    assert_eq!(error.index, 2);
    assert!(matches!(error.kind, LogErrorKind::NotAuthorized { .. }));
    // Forged: a server-made entry adding mallory, signed with mallory's key in alice's name.
    let forged = room
        .state
        .next_entry(
            "alice",
            1,
            LogAction::AddMember {
                username: "mallory".into(),
                keys: room.people["mallory"].public_keys(),
                role: Role::Member,
            },
        )
        .sign(&room.people["mallory"]);
    let mut with_forged = room.log.clone();
    with_forged.push(forged);
    let error = replay(&with_forged).expect_err("refused");
    assert_eq!(
        (error.index, error.kind),
        (3, LogErrorKind::BadSignature("alice".into()))
    );
    // Reordered: entries 1 and 2 swapped.
    let mut reordered = room.log.clone();
    reordered.swap(1, 2);
    let error = replay(&reordered).expect_err("refused");
    assert_eq!(error.index, 1);
    assert!(matches!(
        error.kind,
        LogErrorKind::SequenceGap {
            expected: 1,
            found: 2
        }
    ));
    // Truncated: a client that saw three entries is served two.
    let seen = replay(&room.log).expect("replays");
    let truncated = replay(&room.log[..2]).expect("a prefix replays on its own");
    assert_eq!(
        truncated.check_extends(seen.length(), &seen.head_hash()),
        Err(LogErrorKind::Truncated { seen: 3, served: 2 })
    );
    // Rewritten: same length, another history.
    let mut other = Room::new();
    other.add("alice", "bob", Role::Member).expect("added");
    assert_eq!(
        other
            .state
            .check_extends(2, &seen.hash_at(1).expect("hash")),
        Err(LogErrorKind::Forked(1))
    );
    assert_eq!(
        seen.check_extends(2, &seen.hash_at(1).expect("hash")),
        Ok(())
    );
    // A truncated entry does not parse.
    let bytes = room.log[1].as_bytes();
    assert!(SignedLogEntry::from_bytes(&bytes[..bytes.len() - 70]).is_err());
}

#[test]
fn removal_and_rotation_lock_the_removed_member_out() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Member).expect("added");
    room.add("alice", "carol", Role::Member).expect("added");
    let old_message = room.message("carol");
    room.apply(
        "alice",
        LogAction::RemoveMember {
            username: "carol".into(),
        },
    );
    room.rotate("alice");
    // Carol's old message still verifies for the others: her keys are kept for epoch 0.
    open_message(&old_message, "carol", &room.keys[&0], &room.state).expect("old message verifies");
    // The new key is sealed only to current members.
    let new_key = room.keys[&1].clone();
    assert!(KeyEnvelope::seal(
        &room.state,
        1,
        &new_key,
        "carol",
        "alice",
        &room.people["alice"],
        &mut OsRng
    )
    .is_err());
    let envelopes = envelopes_for_member(
        &room.state,
        &room.keys,
        "bob",
        "alice",
        &room.people["alice"],
        &mut OsRng,
    )
    .expect("bob gets the key");
    assert_eq!(
        envelopes.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        [0, 1]
    );
    // Carol, holding only the old key, cannot read the next message.
    let next = room.message("bob");
    assert_eq!(
        open_message(&next, "bob", &room.keys[&0], &room.state),
        Err(MessageError::Decrypt)
    );
    // Members read it with the new key.
    open_message(&next, "bob", &room.keys[&1], &room.state).expect("bob reads");
}

#[test]
fn history_policy_decides_which_epochs_a_late_joiner_gets() {
    for (policy, expected) in [
        (HistoryPolicy::SinceJoining, vec![2]),
        (HistoryPolicy::FullHistory, vec![0, 1, 2]),
    ] {
        let mut room = Room::new();
        room.apply(
            "alice",
            LogAction::SetPolicy {
                policy: RoomPolicy {
                    history: policy,
                    ..RoomPolicy::default()
                },
            },
        );
        room.rotate("alice");
        room.rotate("alice");
        room.add("alice", "dave", Role::Member).expect("added");
        let envelopes = envelopes_for_member(
            &room.state,
            &room.keys,
            "dave",
            "alice",
            &room.people["alice"],
            &mut OsRng,
        )
        .expect("sealed");
        assert_eq!(
            envelopes.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            expected
        );
        for envelope in &envelopes {
            assert_eq!(
                envelope
                    .open(&room.state, "dave", &room.people["dave"])
                    .expect("opens"),
                room.keys[&envelope.epoch]
            );
        }
        if policy == HistoryPolicy::SinceJoining {
            // An old key sealed anyway is refused by the policy check.
            let old = KeyEnvelope::seal(
                &room.state,
                0,
                &room.keys[&0],
                "dave",
                "alice",
                &room.people["alice"],
                &mut OsRng,
            )
            .expect("seals");
            assert_eq!(
                old.open(&room.state, "dave", &room.people["dave"]),
                Err(EnvelopeError::HistoryNotShared("dave".into()))
            );
        }
    }
}

#[test]
fn any_member_holding_the_key_can_hand_it_to_a_newcomer() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Member).expect("added");
    room.add("alice", "carol", Role::Member).expect("added");
    // bob (a plain member) seals to carol; carol accepts it.
    let envelopes = envelopes_for_member(
        &room.state,
        &room.keys,
        "carol",
        "bob",
        &room.people["bob"],
        &mut OsRng,
    )
    .expect("sealed");
    assert_eq!(
        envelopes[0]
            .open(&room.state, "carol", &room.people["carol"])
            .expect("opens"),
        room.keys[&0]
    );
}

#[test]
fn pins_detect_changed_keys_and_round_trip_encrypted() {
    let alice = IdentitySecrets::generate(&mut OsRng).public_keys();
    let impostor = IdentitySecrets::generate(&mut OsRng).public_keys();
    let mut pins = Pins::new();
    assert_eq!(pins.check("alice", &alice), PinCheck::New);
    assert_eq!(pins.pin_first_use("alice", &alice), Ok(true));
    assert_eq!(
        pins.check("alice", &alice),
        PinCheck::Matches { verified: false }
    );
    assert_eq!(
        pins.pin_first_use("alice", &impostor),
        Err(TrustError::KeyChanged("alice".into()))
    );
    assert_eq!(
        pins.check("alice", &impostor),
        PinCheck::Changed {
            pinned: Box::new(alice)
        }
    );
    assert!(pins.set_verified("alice", true));
    assert_eq!(
        pins.check("alice", &alice),
        PinCheck::Matches { verified: true }
    );
    let keys = common::account::derive_account_keys(
        "pw-pins-test",
        &[4; 16],
        &common::account::KdfParams {
            m_kib: common::account::KdfParams::MIN_M_KIB,
            t: 2,
            p: 1,
        },
    )
    .expect("keys");
    let sealed = seal_pins(&keys.wrap_key, "bob", &pins, &mut OsRng);
    assert_eq!(
        open_pins(&keys.wrap_key, "bob", &sealed).expect("opens"),
        pins
    );
    assert!(matches!(
        open_pins(&keys.wrap_key, "carol", &sealed),
        Err(TrustError::Malformed(_))
    ));
    pins.accept_new_keys("alice", &impostor);
    assert_eq!(
        pins.check("alice", &impostor),
        PinCheck::Matches { verified: false }
    );
}

#[test]
fn removal_and_ban_start_the_next_epoch_in_the_same_entry() {
    let mut room = Room::new();
    for who in ["bob", "carol", "dave"] {
        room.add("alice", who, Role::Member).expect("added");
    }
    let carols_old_message = room.message("carol");
    // A plain member may not remove; an entry naming a later epoch is refused and changes
    // nothing.
    assert!(not_authorized(room.try_rotate_with(
        "bob",
        EpochChange::RemoveMember("carol".into()),
        true
    )));
    let skipping = room.entry(
        "alice",
        LogAction::RemoveMemberAndRotate {
            username: "carol".into(),
            new_epoch: common::membership::NewEpoch {
                epoch: 2,
                key_commitment: [7; 32],
                encrypted_metadata: Vec::new(),
            },
        },
    );
    let before = room.state.clone();
    assert_eq!(
        room.state.apply(&skipping),
        Err(LogErrorKind::EpochGap {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(room.state, before);

    room.try_rotate_with("alice", EpochChange::RemoveMember("carol".into()), true)
        .expect("the owner removes carol");
    assert_eq!(room.state.current_epoch(), 1);
    assert!(!room.state.rotation_pending(), "nothing is left pending");
    assert!(room.state.member("carol").is_none());
    assert!(!room.state.was_member_in_epoch("carol", 1));
    assert_eq!(room.state.epoch(1).map(|e| e.started_at_seq), Some(4));
    // Her old message still verifies; the new key is sealed only to those who remain, and
    // what they write next does not open under the key she holds.
    open_message(&carols_old_message, "carol", &room.keys[&0], &room.state)
        .expect("old message verifies");
    assert!(KeyEnvelope::seal(
        &room.state,
        1,
        &room.keys[&1],
        "carol",
        "alice",
        &room.people["alice"],
        &mut OsRng
    )
    .is_err());
    let next = room.message("bob");
    assert_eq!(
        open_message(&next, "bob", &room.keys[&0], &room.state),
        Err(MessageError::Decrypt)
    );
    open_message(&next, "bob", &room.keys[&1], &room.state).expect("bob's message opens");

    // A ban of a member rotates the same way; a ban-and-rotate of a non-member is refused.
    assert_eq!(
        room.try_rotate_with("alice", EpochChange::Ban("mallory".into()), true),
        Err(LogErrorKind::NotAMember("mallory".into()))
    );
    room.try_rotate_with("alice", EpochChange::Ban("dave".into()), true)
        .expect("the owner bans dave");
    assert_eq!(room.state.current_epoch(), 2);
    assert!(room.state.banned().contains("dave"));
    assert!(!room.state.was_member_in_epoch("dave", 2));
    assert!(!room.state.rotation_pending());
    assert_eq!(
        room.add("alice", "dave", Role::Member),
        Err(LogErrorKind::Banned("dave".into()))
    );

    // History clearing too, admins only.
    assert!(not_authorized(room.try_rotate_with(
        "bob",
        EpochChange::ClearHistory,
        true
    )));
    room.try_rotate_with("alice", EpochChange::ClearHistory, true)
        .expect("the owner clears history");
    assert_eq!(room.state.current_epoch(), 3);
    assert!(room
        .log
        .last()
        .is_some_and(|e| e.entry().action.clears_history()));
    assert_eq!(replay(&room.log).expect("replays"), room.state);
}

#[test]
fn an_add_under_since_joining_starts_an_epoch_the_newcomer_joins_in() {
    let mut room = Room::new();
    room.add("alice", "bob", Role::Member).expect("added");
    let before_dave = room.message("bob");
    let dave_keys = room.people["dave"].public_keys();
    room.try_rotate_with(
        "alice",
        EpochChange::AddMember {
            username: "dave".into(),
            keys: dave_keys,
            role: Role::Member,
        },
        true,
    )
    .expect("the owner adds dave in a new epoch");
    assert_eq!(room.state.current_epoch(), 1);
    assert_eq!(room.state.member("dave").map(|m| m.joined_epoch), Some(1));
    assert!(!room.state.was_member_in_epoch("dave", 0));
    assert!(room.state.was_member_in_epoch("bob", 1));
    // dave is handed the new epoch's key only, and refuses an older one sealed anyway: he
    // holds no key to what was written before he joined.
    let envelopes = envelopes_for_member(
        &room.state,
        &room.keys,
        "dave",
        "bob",
        &room.people["bob"],
        &mut OsRng,
    )
    .expect("sealed");
    assert_eq!(envelopes.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1]);
    let old = KeyEnvelope::seal(
        &room.state,
        0,
        &room.keys[&0],
        "dave",
        "alice",
        &room.people["alice"],
        &mut OsRng,
    )
    .expect("seals");
    assert_eq!(
        old.open(&room.state, "dave", &room.people["dave"]),
        Err(EnvelopeError::HistoryNotShared("dave".into()))
    );
    assert_eq!(
        open_message(&before_dave, "bob", &room.keys[&1], &room.state),
        Err(MessageError::Decrypt)
    );
    // The metadata moved to the new key, so dave can read the room's name.
    let (epoch, sealed) = room.state.encrypted_metadata();
    assert_eq!(epoch, 1);
    let metadata = open_metadata(&room.keys[&1], &room.state.room_id(), 1, sealed).expect("opens");
    assert_eq!(metadata.name, "ops");
    // The same authority rules as a plain add.
    let mallory_keys = room.people["mallory"].public_keys();
    assert!(not_authorized(room.try_rotate_with(
        "bob",
        EpochChange::AddMember {
            username: "mallory".into(),
            keys: mallory_keys,
            role: Role::Member,
        },
        true,
    )));
    assert_eq!(replay(&room.log).expect("replays"), room.state);
}

#[test]
fn after_a_leave_any_member_completes_the_rotation_first_one_wins() {
    let mut room = Room::new();
    for who in ["bob", "carol", "dave"] {
        room.add("alice", who, Role::Member).expect("added");
    }
    // A plain member may not rotate while nothing is pending.
    assert!(not_authorized(room.try_rotate_with(
        "bob",
        EpochChange::Rotate,
        false
    )));
    room.apply("carol", LogAction::Leave);
    assert!(room.state.rotation_pending());
    // A member completes it, but may not change the room's name and topic with it.
    assert!(not_authorized(room.try_rotate_with(
        "bob",
        EpochChange::Rotate,
        true
    )));
    let pending = room.state.clone();
    let by_dave = rotate_with(
        &pending,
        EpochChange::Rotate,
        "dave",
        &room.people["dave"],
        None,
        99,
        &mut OsRng,
    )
    .expect("dave may complete it too");
    room.try_rotate_with("bob", EpochChange::Rotate, false)
        .expect("bob completes the rotation");
    assert!(!room.state.rotation_pending());
    assert!(!room.state.was_member_in_epoch("carol", 1));
    // The metadata stays under the key that encrypts it.
    assert_eq!(room.state.encrypted_metadata().0, 0);
    // dave's rotation, made on the same log, no longer fits: the first one wins.
    assert_eq!(
        room.state.clone().apply(&by_dave.entry),
        Err(LogErrorKind::SequenceGap {
            expected: 6,
            found: 5
        })
    );
    // Once done, a member may not rotate again.
    assert!(not_authorized(room.try_rotate_with(
        "dave",
        EpochChange::Rotate,
        false
    )));
    assert_eq!(replay(&room.log).expect("replays"), room.state);
}
