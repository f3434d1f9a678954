//! The web client's download size, compressed with gzip at level 9 as a server or CDN would.
//!
//! The release build in `CHAT_E2E_STATIC_DIR` is split (`xtask/src/web_bundle.rs`): the page
//! first fetches what `index.html` links (the JS bindings and the main wasm) and the modules
//! those JS files import; the chunks of the lazily loaded parts (`split_*.wasm` and the
//! `chunk_*.wasm` they share) come later. The initial download must stay under issue 11's
//! budget, [`BUDGET_BYTES`]; every split point must have a chunk of real size, so that a
//! change which pulls a deferred screen back into the first load, or a build that stops
//! splitting, fails here.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// Issue 11's budget for the initial wasm and JS, gzip-compressed, in bytes.
const BUDGET_BYTES: u64 = 450_000;

/// The split points of the web client (`split_point!` in web-client/src), each a chunk
/// `split_<name>.wasm`.
const SPLIT_POINTS: [&str; 6] = [
    "chat_screen",
    "security_screen",
    "room_admin",
    "search_panel",
    "attach_button",
    "attachment_view",
];

/// The least a split point's own chunk weighs, gzip-compressed, in bytes: the smallest real
/// one (the attachment view) is about 9,500. A chunk below it holds little more than the
/// split function's wrapper, which is what remains when the view's code went back into the
/// main module (reached from somewhere else too).
const MIN_SPLIT_CHUNK_BYTES: u64 = 4_000;

/// Size of `bytes` after gzip at the best compression level.
fn gzip_len(bytes: &[u8]) -> u64 {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory").len() as u64
}

/// The quoted, root-relative paths ending in `.js` or `.wasm` in `text` (the `href`s and the
/// script's imports of `index.html`).
fn linked_paths(text: &str) -> Vec<String> {
    text.split('"')
        .filter(|part| part.starts_with('/') && (part.ends_with(".js") || part.ends_with(".wasm")))
        .map(str::to_owned)
        .collect()
}

/// The relative modules a JS file imports statically (`from "./x.js"` or `from './x.js'`).
fn static_imports(script: &str) -> Vec<String> {
    script
        .split("from ")
        .skip(1)
        .filter_map(|rest| {
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let end = rest[1..].find(quote)?;
            Some(rest[1..=end].to_owned())
        })
        .filter(|path| path.starts_with("./") && path.ends_with(".js"))
        .collect()
}

/// The files the page fetches before it shows anything: what `index.html` links and,
/// transitively, the JS modules those import.
fn initial_files(dist: &Path) -> BTreeSet<PathBuf> {
    let index = std::fs::read_to_string(dist.join("index.html"))
        .unwrap_or_else(|error| panic!("reading {}/index.html: {error}", dist.display()));
    let mut pending: Vec<PathBuf> = linked_paths(&index)
        .iter()
        .map(|path| dist.join(path.trim_start_matches('/')))
        .collect();
    let mut files = BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !files.insert(path.clone()) || path.extension().is_some_and(|e| e == "wasm") {
            continue;
        }
        let script = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        let folder = path.parent().expect("a file's folder");
        pending.extend(
            static_imports(&script)
                .iter()
                .map(|import| folder.join(import.trim_start_matches("./"))),
        );
    }
    files
}

/// Every `.wasm` and `.js` file under `dist`, in any folder (the build's is `pkg-*/`).
fn all_files(dist: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut folders = vec![dist.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("reading {}: {error}", folder.display()))
        {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if matches!(
                path.extension().and_then(|extension| extension.to_str()),
                Some("wasm" | "js")
            ) {
                files.insert(path);
            }
        }
    }
    files
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Prints each file's size and returns their total, gzip-compressed.
fn total_gzip(files: &BTreeSet<PathBuf>) -> u64 {
    let mut total = 0;
    for path in files {
        let bytes = std::fs::read(path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        let compressed = gzip_len(&bytes);
        total += compressed;
        println!(
            "  {}: {} bytes, {compressed} gzip",
            name_of(path),
            bytes.len()
        );
    }
    total
}

#[test]
fn the_initial_download_stays_within_the_budget() {
    let dist = std::env::var_os("CHAT_E2E_STATIC_DIR")
        .map(PathBuf::from)
        .expect(
            "CHAT_E2E_STATIC_DIR is not set: run these tests with `cargo xtask test`, \
             which builds the web client first",
        );
    let initial = initial_files(&dist);
    assert!(
        initial
            .iter()
            .any(|path| path.extension().is_some_and(|e| e == "wasm")),
        "{}/index.html links no .wasm file: build the web client with `trunk build --release`",
        dist.display()
    );
    let deferred: BTreeSet<PathBuf> = all_files(&dist).difference(&initial).cloned().collect();
    for split_point in SPLIT_POINTS {
        let chunk = format!("split_{split_point}.wasm");
        let path = deferred
            .iter()
            .find(|path| name_of(path) == chunk)
            .unwrap_or_else(|| {
                panic!(
                    "the release build has no lazily loaded {chunk}: is it built with the \
                     `split` feature (Trunk.toml's post_build hook)?"
                )
            });
        let size = gzip_len(&std::fs::read(path).expect("reading a chunk"));
        assert!(
            size >= MIN_SPLIT_CHUNK_BYTES,
            "{chunk} is only {size} bytes gzip: its view's code is in the main module again \
             (something the first screen loads reaches it)"
        );
    }
    println!("initial download:");
    let initial_total = total_gzip(&initial);
    println!("loaded on first use:");
    let deferred_total = total_gzip(&deferred);
    println!(
        "initial wasm + JS: {initial_total} bytes gzip (issue 11's budget {BUDGET_BYTES}); \
         the lazily loaded chunks: {deferred_total} bytes gzip"
    );
    assert!(
        initial_total <= BUDGET_BYTES,
        "the web client's initial download grew to {initial_total} bytes gzip, over the \
         budget of {BUDGET_BYTES}: look at what grew with `twiggy top` on \
         target/wasm32-unknown-unknown/wasm-release/web-client.wasm, or move a part the first \
         screen does not need behind a `split_point!`"
    );
}

#[test]
fn gzip_len_measures_compression() {
    let repetitive = vec![b'a'; 100_000];
    assert!(gzip_len(&repetitive) < 1_000);
    assert!(gzip_len(b"") > 0, "a gzip stream has a header");
}

#[test]
fn the_files_a_page_links_and_imports_are_found() {
    let index = r#"<link rel="modulepreload" href="/pkg-1/web-client.js" integrity="x">
        <script type="module">import init from "/pkg-1/web-client.js";
        await init({module_or_path:"/pkg-1/web-client_bg.wasm"});</script>
        <link rel="stylesheet" href="/main.css">"#;
    assert_eq!(
        linked_paths(index),
        [
            "/pkg-1/web-client.js",
            "/pkg-1/web-client.js",
            "/pkg-1/web-client_bg.wasm"
        ]
    );
    let script = "import * as split from \"./__wasm_split.js\";\nimport { a } from './b.js';\n\
                  import c from \"/absolute.js\";\nconst text = 'from nowhere';";
    assert_eq!(static_imports(script), ["./__wasm_split.js", "./b.js"]);
}
