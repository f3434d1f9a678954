//! Fuzzes message opening past decryption: the input is sealed as a padded plaintext under a
//! fixed room key, so the padding, inner-layout (versions 1 and 2) and signature checks of
//! `open_message` see arbitrary bytes.
#![no_main]

use std::sync::OnceLock;

use common::identity::IdentitySecrets;
use common::membership::RoomState;
use common::message::{open_message, SealedMessage};
use common::primitives;
use common::room_key::{create_room, RoomKey, RoomMetadata};

struct Fixture {
    state: RoomState,
    key: RoomKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let alice = IdentitySecrets::from_bytes([0x20; 32], [0x40; 32]);
        let mut rng = common::OsRng;
        let room =
            create_room("alice", &alice, &RoomMetadata::named("fuzz"), 1, &mut rng).expect("room");
        Fixture {
            state: room.state,
            key: room.key,
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let nonce = [7u8; 24];
    let sealed = SealedMessage {
        room_id: fixture.state.room_id(),
        epoch: 0,
        nonce,
        ciphertext: primitives::secretbox_encrypt(fixture.key.as_bytes(), &nonce, data),
    };
    if let Ok(inner) = open_message(&sealed, "alice", &fixture.key, &fixture.state) {
        let _ = client::chains::check_log_head(&inner, &fixture.state);
        let _ = client::RoomChains::default().observe(&inner, 1);
    }
});
