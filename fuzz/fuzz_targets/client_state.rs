//! Fuzzes the client-state plaintext decoder, and the pins decoder inside it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(state) = client::ClientState::from_bytes("alice", data) {
        assert_eq!(
            client::ClientState::from_bytes("alice", &state.to_bytes("alice")).as_ref(),
            Ok(&state),
            "a decoded state re-encodes to itself"
        );
    }
});
