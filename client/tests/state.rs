//! The durable client state: sealing and opening, every row of the reconciliation table,
//! merging two browsers' copies, and the log checks that catch a server rolling back or
//! forking a room's membership log. Natively and in headless Chromium.

use client::state::{reconcile, STATE_LABEL};
use client::{ClientState, KdfRecord, LocalCopy, RemoteState, StateError, StateKey, TrustWarning};
use common::account::{KdfParams, MasterKey};
use common::encoding::DecodeError;
use common::identity::IdentitySecrets;
use common::membership::{replay, LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::room_key::{create_room, RoomMetadata};
use common::trust::{seal_pins, Pins};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn person() -> IdentitySecrets {
    IdentitySecrets::generate(&mut OsRng)
}

/// A room made by alice, then `extra` add entries for fresh members: its signed entries and
/// replayed state.
fn room_log(alice: &IdentitySecrets, extra: usize) -> (Vec<SignedLogEntry>, RoomState) {
    let created =
        create_room("alice", alice, &RoomMetadata::named("ops"), 1, &mut OsRng).expect("room");
    let mut entries = vec![created.genesis];
    let mut state = created.state;
    for index in 0..extra {
        entries.push(add(&mut state, alice, &format!("member{index}")));
    }
    (entries, state)
}

fn room(alice: &IdentitySecrets, extra: usize) -> RoomState {
    room_log(alice, extra).1
}

/// alice adds `username` (with fresh keys) to the room; returns the entry.
fn add(state: &mut RoomState, alice: &IdentitySecrets, username: &str) -> SignedLogEntry {
    let entry = state
        .next_entry(
            "alice",
            100 + state.length(),
            LogAction::AddMember {
                username: username.to_owned(),
                keys: person().public_keys(),
                role: Role::Member,
            },
        )
        .sign(alice);
    state.apply(&entry).expect("alice may add");
    entry
}

/// A state with one pin, one room and a KDF record, at `version`.
fn sample_state(version: u64) -> (ClientState, RoomId) {
    let alice = person();
    let log = room(&alice, 2);
    let mut state = ClientState {
        version,
        ..ClientState::default()
    };
    state
        .pins
        .pin_first_use("bob", &person().public_keys())
        .expect("first use");
    state.pins.set_verified("bob", true);
    assert!(state.remember_log(log.room_id(), &log));
    state.kdf = Some(KdfRecord {
        salt: [7; 16],
        params: KdfParams::DEFAULT,
    });
    assert!(state.mark_read(log.room_id(), 12));
    (state, log.room_id())
}

#[test]
fn sealed_state_opens_for_its_owner_only() {
    let secrets = person();
    let key = StateKey::derive(&secrets);
    let (state, _) = sample_state(5);
    let sealed = state.seal(&key, "alice", &mut OsRng);
    assert_eq!(ClientState::open(&key, "alice", &sealed), Ok(state.clone()));
    assert_eq!(
        ClientState::open(&key, "mallory", &sealed),
        Err(StateError::Malformed(DecodeError::InvalidValue(
            "client state owner"
        )))
    );
    let other_key = StateKey::derive(&person());
    assert_eq!(
        ClientState::open(&other_key, "alice", &sealed),
        Err(StateError::Decrypt)
    );
    for position in [0, 30, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[position] ^= 1;
        assert_eq!(
            ClientState::open(&key, "alice", &tampered),
            Err(StateError::Decrypt),
            "byte {position} flipped"
        );
    }
    assert_eq!(
        ClientState::open(&key, "alice", &sealed[..20]),
        Err(StateError::Decrypt)
    );
}

#[test]
fn plaintext_is_strict() {
    let (state, _) = sample_state(1);
    let bytes = state.to_bytes("alice");
    assert_eq!(ClientState::from_bytes("alice", &bytes), Ok(state.clone()));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ClientState::from_bytes("alice", &trailing).is_err());
    assert!(ClientState::from_bytes("alice", &bytes[..bytes.len() - 1]).is_err());
    // The layout version follows the label: any other is refused.
    let mut format = bytes.clone();
    format[4 + STATE_LABEL.len() + 3] = 3;
    assert_eq!(
        ClientState::from_bytes("alice", &format),
        Err(DecodeError::InvalidValue("client state format"))
    );
    // Format 1, written before read markers, is still read (without them).
    let mut older = bytes[..bytes.len() - 4 - 40].to_vec();
    older[4 + STATE_LABEL.len() + 3] = 1;
    let read = ClientState::from_bytes("alice", &older).expect("format 1 reads");
    assert!(read.read_markers.is_empty());
    assert_eq!(read.pins, state.pins);
    // Markers out of order are refused.
    let mut twice = bytes[..bytes.len() - 4 - 40].to_vec();
    twice.extend_from_slice(&2u32.to_be_bytes());
    twice.extend_from_slice(&bytes[bytes.len() - 40..]);
    twice.extend_from_slice(&bytes[bytes.len() - 40..]);
    assert_eq!(
        ClientState::from_bytes("alice", &twice),
        Err(DecodeError::InvalidValue("read marker order"))
    );
}

#[test]
fn read_markers_only_move_forward_and_merge_to_the_furthest() {
    let (mut here, room_id) = sample_state(4);
    let mut there = here.clone();
    there.version = 6;
    assert!(!here.mark_read(room_id, 3), "a marker never moves back");
    assert_eq!(here.read_markers[&room_id], 12);
    assert!(there.mark_read(room_id, 30));
    let other_room = RoomId([9; 32]);
    assert!(here.mark_read(other_room, 5));
    assert!(here.merge(&there).is_empty());
    assert_eq!(here.read_markers[&room_id], 30);
    assert_eq!(here.read_markers[&other_room], 5);
    assert!(there.merge(&here).is_empty());
    assert_eq!(there.read_markers, here.read_markers);
}

#[test]
fn state_key_survives_a_password_change_and_legacy_pins_open() {
    let secrets = person();
    let key = StateKey::derive(&secrets);
    let (state, _) = sample_state(3);
    let sealed = state.seal(&key, "alice", &mut OsRng);
    // The same identity after a password change derives the same key: no wrap key involved.
    let same_identity =
        IdentitySecrets::from_bytes(secrets.x25519_secret_bytes(), secrets.ed25519_seed());
    let new_wrap_key = MasterKey::from_bytes([9; 32]).wrap_key();
    assert_eq!(
        ClientState::open_remote(
            &StateKey::derive(&same_identity),
            &new_wrap_key,
            "alice",
            &sealed
        ),
        Ok(state.clone())
    );
    // A protocol-1 pins blob under the wrap key opens as version 0 with only the pins.
    let old_wrap_key = MasterKey::from_bytes([8; 32]).wrap_key();
    let legacy = seal_pins(&old_wrap_key, "alice", &state.pins, &mut OsRng);
    let opened = ClientState::open_remote(&key, &old_wrap_key, "alice", &legacy).expect("legacy");
    assert_eq!(opened.version, 0);
    assert_eq!(opened.pins, state.pins);
    assert!(opened.logs.is_empty());
    assert_eq!(
        ClientState::open_remote(&key, &new_wrap_key, "alice", &legacy),
        Err(StateError::Decrypt)
    );
}

#[test]
fn reconcile_fresh_browser() {
    let empty = reconcile(None, RemoteState::Missing);
    assert_eq!(empty.state, ClientState::default());
    assert!(empty.warnings.is_empty() && empty.upload && !empty.hold_uploads);

    let (remote, _) = sample_state(4);
    let adopted = reconcile(None, RemoteState::Opened(remote.clone()));
    assert_eq!(adopted.state, remote);
    assert!(adopted.warnings.is_empty() && !adopted.upload);

    let unreadable = reconcile(None, RemoteState::Unreadable(StateError::Decrypt));
    assert_eq!(unreadable.warnings, vec![TrustWarning::StateUnreadable]);
    assert!(!unreadable.upload && unreadable.hold_uploads);

    // A protocol-1 pins blob (version 0) is replaced at once.
    let legacy = reconcile(None, RemoteState::Opened(ClientState::default()));
    assert!(legacy.upload);
}

fn local(state: &ClientState, confirmed_version: u64) -> Option<LocalCopy> {
    Some(LocalCopy {
        state: state.clone(),
        confirmed_version,
    })
}

#[test]
fn reconcile_wiped_or_older_server_copy_keeps_this_browsers() {
    let (local_state, _) = sample_state(6);
    let wiped = reconcile(local(&local_state, 6), RemoteState::Missing);
    assert_eq!(wiped.state, local_state);
    assert_eq!(
        wiped.warnings,
        vec![TrustWarning::PinsRolledBack {
            seen_version: 6,
            served_version: None
        }]
    );
    assert!(wiped.upload);
    assert!(wiped.warnings[0]
        .to_string()
        .starts_with("pins rolled back"));

    // Older than what the server confirmed here: a rollback, and its content is still merged
    // (it is authentic).
    let (mut older, older_room) = sample_state(2);
    older.pins = local_state.pins.clone();
    let rolled_back = reconcile(local(&local_state, 6), RemoteState::Opened(older));
    assert_eq!(
        rolled_back.warnings,
        vec![TrustWarning::PinsRolledBack {
            seen_version: 6,
            served_version: Some(2)
        }]
    );
    assert!(rolled_back.state.logs.contains_key(&older_room));
    assert_eq!(rolled_back.state.version, 6);
    assert!(rolled_back.upload);

    let unreadable = reconcile(
        local(&local_state, 6),
        RemoteState::Unreadable(StateError::Decrypt),
    );
    assert_eq!(unreadable.state, local_state);
    assert_eq!(unreadable.warnings, vec![TrustWarning::StateUnreadable]);
    assert!(
        !unreadable.upload && unreadable.hold_uploads,
        "nothing replaced unasked"
    );

    // Never confirmed by the server (its uploads failed): missing or lower is no rollback.
    let never_uploaded = reconcile(local(&local_state, 0), RemoteState::Missing);
    assert!(never_uploaded.warnings.is_empty() && never_uploaded.upload);
    let (mut other_browser, _) = sample_state(3);
    other_browser.pins = local_state.pins.clone();
    let unconfirmed = reconcile(local(&local_state, 2), RemoteState::Opened(other_browser));
    assert!(unconfirmed.warnings.is_empty());
}

#[test]
fn reconcile_newer_server_copy_merges_and_never_replaces_a_pin() {
    let (local_state, room_a) = sample_state(3);
    let (mut remote, room_b) = sample_state(5);
    remote
        .pins
        .pin_first_use("carol", &person().public_keys())
        .expect("first use");
    let merged = reconcile(local(&local_state, 3), RemoteState::Opened(remote.clone()));
    assert_eq!(merged.state.version, 5);
    assert!(merged.state.logs.contains_key(&room_a) && merged.state.logs.contains_key(&room_b));
    assert!(
        merged.state.pins.get("carol").is_some(),
        "a pin only the server's copy has"
    );
    // bob has other keys in the two copies: this browser's pin stays, whatever the versions
    // say, and the conflict is raised.
    assert_eq!(merged.state.pins.get("bob"), local_state.pins.get("bob"));
    assert_eq!(
        merged.warnings,
        vec![TrustWarning::PinConflict {
            username: "bob".into()
        }]
    );
    assert!(merged.upload, "room_a is not on the server yet");

    let same = reconcile(local(&remote, 5), RemoteState::Opened(remote.clone()));
    assert!(same.warnings.is_empty() && !same.upload);

    // Same keys: verified in either copy stays verified.
    let mut unverified = remote.clone();
    unverified.pins.set_verified("bob", false);
    let joined = reconcile(local(&unverified, 5), RemoteState::Opened(remote.clone()));
    assert!(joined.state.pins.get("bob").is_some_and(|pin| pin.verified));
}

#[test]
fn merge_keeps_the_longer_log_and_reports_a_fork() {
    let alice = person();
    let base = room(&alice, 1);
    let room_id = base.room_id();
    let mut longer = base.clone();
    add(&mut longer, &alice, "carol");
    let mut forked = base.clone();
    add(&mut forked, &alice, "dave");

    let mut mine = ClientState::default();
    mine.remember_log(room_id, &base);
    let mut theirs = ClientState {
        version: 1,
        ..ClientState::default()
    };
    theirs.remember_log(room_id, &longer);
    assert!(mine.merge(&theirs).is_empty());
    assert_eq!(mine.logs[&room_id].length, longer.length());

    let mut other_browser = ClientState::default();
    other_browser.remember_log(room_id, &forked);
    assert_eq!(
        mine.merge(&other_browser),
        vec![TrustWarning::LogForked {
            room_id,
            position: 2
        }]
    );
}

#[test]
fn kdf_record_refuses_other_salt_or_parameters() {
    let record = KdfRecord {
        salt: [1; 16],
        params: KdfParams::DEFAULT,
    };
    assert_eq!(record.check("alice", &[1; 16], &KdfParams::DEFAULT), Ok(()));
    let changed = |salt: [u8; 16], params: KdfParams| TrustWarning::KdfParametersChanged {
        username: "alice".into(),
        presented: KdfRecord { salt, params },
    };
    assert_eq!(
        record.check("alice", &[2; 16], &KdfParams::DEFAULT),
        Err(changed([2; 16], KdfParams::DEFAULT))
    );
    let weaker = KdfParams {
        m_kib: KdfParams::MIN_M_KIB,
        t: KdfParams::MIN_T,
        p: 1,
    };
    let warning = record
        .check("alice", &[1; 16], &weaker)
        .expect_err("weaker");
    assert_eq!(warning, changed([1; 16], weaker));
    assert!(warning.to_string().starts_with("KDF parameters changed"));
    assert!(warning.to_string().contains("m = 19456 KiB, t = 2"));
}

#[test]
fn check_log_catches_rollback_and_fork() {
    let alice = person();
    let (entries, log) = room_log(&alice, 3);
    let room_id = log.room_id();
    let mut state = ClientState::default();
    assert_eq!(
        state.check_log(&room_id, &log),
        Ok(()),
        "nothing accepted yet"
    );
    state.remember_log(room_id, &log);

    // The server serves the log from before the last two entries.
    let served = replay(&entries[..2]).expect("prefix");
    let warning = state.check_log(&room_id, &served).expect_err("rolled back");
    assert_eq!(
        warning,
        TrustWarning::LogRolledBack {
            room_id,
            seen_length: 4,
            served_length: 2
        }
    );
    assert!(warning.to_string().starts_with("log rolled back"));
    assert_eq!(warning.room_id(), Some(room_id));

    // Same length as accepted, another last entry: a fork.
    let mut fork = replay(&entries[..3]).expect("prefix");
    add(&mut fork, &alice, "frank");
    let warning = state.check_log(&room_id, &fork).expect_err("forked");
    assert_eq!(
        warning,
        TrustWarning::LogForked {
            room_id,
            position: 3
        }
    );
    assert!(warning.to_string().starts_with("log forked"));

    // A log that grew from the accepted head is fine, and remembered; a shorter one is not.
    let mut grown = log.clone();
    add(&mut grown, &alice, "erin");
    assert_eq!(state.check_log(&room_id, &grown), Ok(()));
    assert!(state.remember_log(room_id, &grown));
    assert!(!state.remember_log(room_id, &log));
    assert_eq!(state.logs[&room_id].length, 5);
}

#[test]
fn pins_survive_encoding() {
    let mut pins = Pins::new();
    pins.pin_first_use("bob", &person().public_keys())
        .expect("first");
    let state = ClientState {
        version: 9,
        pins,
        ..ClientState::default()
    };
    let key = StateKey::derive(&person());
    let sealed = state.seal(&key, "alice", &mut OsRng);
    assert_eq!(ClientState::open(&key, "alice", &sealed), Ok(state));
}

#[test]
fn a_log_that_records_other_keys_for_me_is_refused() {
    let alice = person();
    let mut log = room(&alice, 0);
    let bob = person();
    // The room's owner (or a server making up the room) adds "bob" with an impostor's keys.
    let impostor = person();
    let entry = log
        .next_entry(
            "alice",
            5,
            LogAction::AddMember {
                username: "bob".into(),
                keys: impostor.public_keys(),
                role: Role::Member,
            },
        )
        .sign(&alice);
    log.apply(&entry).expect("alice may add");
    let warning =
        ClientState::check_own_keys(&log, "bob", &bob.public_keys()).expect_err("not bob's keys");
    assert_eq!(
        warning,
        TrustWarning::OwnKeyMissingFromLog {
            room_id: log.room_id()
        }
    );
    assert!(warning.to_string().starts_with("own key missing from log"));
    assert_eq!(
        ClientState::check_own_keys(&log, "bob", &impostor.public_keys()),
        Ok(())
    );
    assert_eq!(
        ClientState::check_own_keys(&log, "carol", &bob.public_keys()),
        Ok(()),
        "not in the room at all"
    );
}
