//! Fuzzes the key-envelope decoder (JSON) and its verification against a fixed room.
#![no_main]

use std::sync::OnceLock;

use common::identity::IdentitySecrets;
use common::membership::RoomState;
use common::room_key::{create_room, KeyEnvelope, RoomMetadata};

fn state() -> &'static RoomState {
    static STATE: OnceLock<RoomState> = OnceLock::new();
    STATE.get_or_init(|| {
        let alice = IdentitySecrets::from_bytes([0x20; 32], [0x40; 32]);
        create_room(
            "alice",
            &alice,
            &RoomMetadata::named("fuzz"),
            1,
            &mut common::OsRng,
        )
        .expect("room")
        .state
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = serde_json::from_slice::<KeyEnvelope>(data) {
        let _ = envelope.verify(state());
    }
});
