//! The web client's download size: every `.wasm` and `.js` file of the release build in
//! `CHAT_E2E_STATIC_DIR` (Trunk builds no lazily loaded chunks, so the page fetches all of
//! them before it shows anything), compressed with gzip at level 9 as a server or CDN would.
//!
//! Fails when the total grows past [`CEILING_BYTES`], so that a change which makes the first
//! load slower is noticed where it is made. Issue 11 asks for [`BUDGET_BYTES`]; the ceiling
//! is the size measured when this check was added plus a little headroom, and comes down as
//! the build shrinks (see the README's figures).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// The most the initial wasm and JS may weigh, gzip-compressed, in bytes.
const CEILING_BYTES: u64 = 565_000;

/// Issue 11's budget for the initial wasm and JS, gzip-compressed, in bytes (not met yet).
const BUDGET_BYTES: u64 = 450_000;

/// Size of `bytes` after gzip at the best compression level.
fn gzip_len(bytes: &[u8]) -> u64 {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory").len() as u64
}

/// The `.wasm` and `.js` files of the build in `dir`, by name.
fn bundle_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|extension| extension.to_str()),
                Some("wasm" | "js")
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_initial_download_stays_under_its_ceiling() {
    let dir = std::env::var_os("CHAT_E2E_STATIC_DIR")
        .map(PathBuf::from)
        .expect(
            "CHAT_E2E_STATIC_DIR is not set: run these tests with `cargo xtask test`, \
         which builds the web client first",
        );
    let files = bundle_files(&dir);
    assert!(
        files
            .iter()
            .any(|path| path.extension().is_some_and(|e| e == "wasm")),
        "{} holds no .wasm file: build the web client with `trunk build --release`",
        dir.display()
    );
    let mut total = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("reading the build");
        let compressed = gzip_len(&bytes);
        total += compressed;
        println!(
            "{}: {} bytes, {compressed} gzip",
            path.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len()
        );
    }
    println!(
        "initial wasm + JS: {total} bytes gzip (ceiling {CEILING_BYTES}, issue 11's budget \
         {BUDGET_BYTES}{})",
        if total <= BUDGET_BYTES {
            ": met"
        } else {
            ": not met"
        }
    );
    assert!(
        total <= CEILING_BYTES,
        "the web client's initial download grew to {total} bytes gzip, over its ceiling of \
         {CEILING_BYTES}: look at what grew with `twiggy top` on \
         target/wasm32-unknown-unknown/wasm-release/web-client.wasm"
    );
}

#[test]
fn gzip_len_measures_compression() {
    let repetitive = vec![b'a'; 100_000];
    assert!(gzip_len(&repetitive) < 1_000);
    assert!(gzip_len(b"") > 0, "a gzip stream has a header");
}
