//! Replays the committed corpus of the request-decoding fuzz target
//! (`fuzz/corpus/server_request/`, grown by `cargo xtask fuzz`) through
//! [`server::fuzzing::check_request`] on stable Rust, so every input the fuzzer kept stays a
//! regression test.

use std::path::PathBuf;

#[test]
fn server_request_corpus() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/server_request");
    let entries = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("no corpus at {}: {error}", directory.display()));
    let mut count = 0;
    for entry in entries {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("readable");
        server::fuzzing::check_request(&data);
        count += 1;
    }
    assert!(count > 0, "the server_request corpus is empty");
    println!("{count} inputs replayed");
}
