//! Fuzzes the membership-log entry decoder and a one-entry replay of what decodes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = common::membership::SignedLogEntry::from_bytes(data) {
        let _ = common::membership::replay(&[entry]);
    }
});
