//! Checks the client-state worked example of `docs/PROTOCOL.md` section 11: every value is
//! computed here from the inputs the document states and must appear there as `name = hex`.
//!
//! To print the values after a deliberate format change:
//! `PRINT_EXAMPLES=1 cargo test -p client --test worked_examples -- --nocapture`.

#[path = "../../common/tests/support/mod.rs"]
mod support;

use client::state::STATE_KEY_INFO;
use client::{ChainHead, ChainKey, ClientState, KdfRecord, LogMemory, StateKey};
use common::account::KdfParams;
use common::identity::IdentitySecrets;
use common::membership::RoomId;
use common::primitives;
use support::{counting, CountingRng, Examples};

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[test]
fn client_state_example() {
    let mut examples = Examples::new();
    let alice = IdentitySecrets::from_bytes(counting(0x20), counting(0x40));
    let bob = IdentitySecrets::from_bytes(counting(0x60), counting(0x80));
    let mut state = ClientState {
        version: 7,
        ..ClientState::default()
    };
    state
        .pins
        .pin_first_use("bob", &bob.public_keys())
        .expect("first use");
    state.pins.set_verified("bob", true);
    state.logs.insert(
        RoomId(counting(0xa0)),
        LogMemory {
            length: 3,
            head_hash: counting(0xc0),
            highest_epoch: 1,
        },
    );
    state
        .chains
        .entry(RoomId(counting(0xa0)))
        .or_default()
        .insert(
            ChainKey {
                sender: "bob".into(),
                device: counting(0x90),
                epoch: 1,
            },
            ChainHead {
                counter: 2,
                hash: counting(0x30),
                message_id: 41,
            },
        );
    state.read_markers.insert(RoomId(counting(0xa0)), 42);
    state.kdf = Some(KdfRecord {
        salt: counting(0x00),
        params: KdfParams {
            m_kib: 19_456,
            t: 2,
            p: 1,
        },
    });

    // The key, recomputed from its definition rather than through `StateKey`.
    let mut ikm = alice.x25519_secret_bytes().to_vec();
    ikm.extend_from_slice(&alice.ed25519_seed());
    let mut key = [0u8; 32];
    primitives::hkdf_sha256(&ikm, &[], STATE_KEY_INFO, &mut key).expect("hkdf");
    examples.check("client_state_key", &key);

    let plaintext = state.to_bytes("alice");
    examples.check("client_state_plaintext", &plaintext);
    let sealed = state.seal(&StateKey::derive(&alice), "alice", &mut CountingRng(0xe0));
    examples.check("client_state_sealed", &sealed);
    let nonce: [u8; 24] = counting(0xe0);
    let mut expected = nonce.to_vec();
    expected.extend(primitives::secretbox_encrypt(&key, &nonce, &plaintext));
    assert_eq!(
        sealed, expected,
        "the state key is the documented derivation"
    );
    assert_eq!(
        ClientState::open(&StateKey::derive(&alice), "alice", &sealed),
        Ok(state)
    );
    examples.finish();
}
