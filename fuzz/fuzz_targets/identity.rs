//! Fuzzes the public identity decoder (JSON, key validation, self-signature).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<common::identity::PublicIdentity>(data);
});
