//! The Rust half of the web client's build, run by Trunk's `post_build` hook
//! (`Trunk.toml`): Trunk writes `index.html` and the style sheet, this step adds
//! the wasm and its JS and links them from `index.html`.
//!
//! A release build is split: the web client is built with its `split` feature (its lazily
//! loaded screens become split points, and the linker keeps relocations), then
//! wasm_split_cli_support moves the code only those screens use into chunks, which the page
//! loads when a screen is first shown. Trunk 0.21 cannot do this itself: it has no splitting
//! step and no way to pass `--keep-lld-exports` to wasm-bindgen. A debug build (`trunk serve`)
//! is one module, as Trunk would build it.
//!
//! Every file goes into `pkg-<hash>/`, the hash being of the files themselves, so that a new
//! build never meets an old file in a browser's cache. `index.html` gets module preloads of the
//! JS (and of the split loader, which it imports) and a preload of the main wasm, all with
//! Subresource Integrity (SHA-384), and one inline module script that starts the app; the
//! server allows that script by its hash (`server::headers`).

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

use crate::tools::Tools;
use crate::{cargo, project_root, run_command, step, TaskResult};

/// The binary's name, which is also the name of wasm-bindgen's output files.
const NAME: &str = "web-client";

/// The JS module that loads the chunks (wasm_split_cli_support's default name).
const LOADER: &str = "__wasm_split.js";

/// Builds, splits (release), binds and optimizes the web client into Trunk's staging
/// directory (`TRUNK_STAGING_DIR`) and links it from the staged `index.html`.
pub fn bundle() -> TaskResult {
    let staging = std::env::var_os("TRUNK_STAGING_DIR")
        .map(PathBuf::from)
        .ok_or(
            "web-bundle is Trunk's post_build hook: run `trunk build` in the project root \
         (or `cargo xtask run`), not this task",
        )?;
    let release = std::env::var("TRUNK_PROFILE").as_deref() == Ok("release");
    // Trunk's public URL ends with `/` (default `/`): the files' address prefix.
    let public_url = std::env::var("TRUNK_PUBLIC_URL").unwrap_or_else(|_| "/".into());
    let tools = Tools::ensure_for_bundle()?;
    let module = build_module(release)?;
    let pkg = staging.join("pkg");
    // A folder left by a failed run of this hook holds nothing of this build.
    let _ = fs::remove_dir_all(&pkg);
    fs::create_dir_all(&pkg)
        .map_err(|error| format!("cannot create {}: {error}", pkg.display()))?;
    let bind_input = if release {
        let linked = fs::read(&module).map_err(|error| read_error(&module, error))?;
        split(&linked, &pkg)?
    } else {
        module
    };
    bind(&tools, &bind_input, &pkg, release)?;
    if release {
        optimize(&tools, &pkg)?;
    }
    let pkg_name = format!("pkg-{}", content_hash(&pkg)?);
    let hashed = staging.join(&pkg_name);
    let _ = fs::remove_dir_all(&hashed);
    fs::rename(&pkg, &hashed)
        .map_err(|error| format!("cannot rename {} to {pkg_name}: {error}", pkg.display()))?;
    link_from_index(&staging, &format!("{public_url}{pkg_name}"), &pkg_name)
}

/// The first 16 hex digits of the SHA-256 of every file under `folder` (paths relative to it,
/// lengths and contents, in path order; wasm-bindgen may write a `snippets/` folder): the
/// build's folder name.
fn content_hash(folder: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    let mut pending = vec![folder.to_path_buf()];
    let mut files = Vec::new();
    while let Some(current) = pending.pop() {
        for path in files_ending(&current, "")? {
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        let bytes = fs::read(&file).map_err(|error| read_error(&file, error))?;
        let relative = file.strip_prefix(folder).unwrap_or(&file);
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(&hasher.finalize()[..8]))
}

/// `cargo build` of the web client for wasm32 (profile `wasm-release` with the `split`
/// feature in a release build, `dev` otherwise); the path of the linked module.
fn build_module(release: bool) -> Result<PathBuf, String> {
    let (profile, folder) = if release {
        ("wasm-release", "wasm-release")
    } else {
        ("dev", "debug")
    };
    step(&format!(
        "building the web client's wasm (profile {profile})"
    ));
    let mut command = cargo();
    command.args([
        "build",
        "--package",
        NAME,
        "--bin",
        NAME,
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        profile,
    ]);
    if release {
        command.args(["--features", "split"]);
    }
    run_command(&mut command)?;
    Ok(project_root()
        .join("target/wasm32-unknown-unknown")
        .join(folder)
        .join(format!("{NAME}.wasm")))
}

/// Splits `linked` into `pkg`: the chunks and the loader [`LOADER`] there, the main
/// module (for wasm-bindgen) beside them as `main.wasm`, whose path is returned.
fn split(linked: &[u8], pkg: &Path) -> Result<PathBuf, String> {
    step("splitting the lazily loaded screens into chunks (wasm_split_cli_support)");
    let main = pkg.join("main.wasm");
    let main_module = format!("./{NAME}.js");
    let mut options = wasm_split_cli_support::Options::new(linked);
    options.output_dir = pkg;
    options.main_out_path = &main;
    options.main_module = &main_module;
    let link_name = format!("./{LOADER}");
    options.link_name = &link_name;
    let result = wasm_split_cli_support::transform(options)
        .map_err(|error| format!("splitting the web client failed: {error:#}"))?;
    for chunk in &result.split_modules {
        if let Some(name) = chunk.file_name() {
            println!("  chunk {}", name.to_string_lossy());
        }
    }
    Ok(main)
}

/// wasm-bindgen (`--target web`) of `module` into `pkg` as `web-client.js` and
/// `web-client_bg.wasm`. A split module keeps the exports its chunks import.
fn bind(tools: &Tools, module: &Path, pkg: &Path, split: bool) -> TaskResult {
    step("generating the JS bindings (wasm-bindgen)");
    let mut command = tools.command("wasm-bindgen");
    command
        .args(["--target", "web", "--no-typescript", "--out-name", NAME])
        .arg("--out-dir")
        .arg(pkg);
    if split {
        command.args(["--keep-lld-exports", "--no-demangle"]);
    }
    command.arg(module);
    run_command(&mut command)?;
    if split {
        fs::remove_file(module)
            .map_err(|error| format!("cannot remove {}: {error}", module.display()))?;
    }
    Ok(())
}

/// `wasm-opt -Oz` on every module in `pkg` (the main module and each chunk), in place.
fn optimize(tools: &Tools, pkg: &Path) -> TaskResult {
    step("optimizing for size (wasm-opt -Oz)");
    for module in files_ending(pkg, ".wasm")? {
        run_command(
            tools
                .command("wasm-opt")
                .args([
                    "-Oz",
                    "--enable-bulk-memory",
                    "--enable-nontrapping-float-to-int",
                    "--enable-sign-ext",
                    "--enable-reference-types",
                    "--enable-multivalue",
                ])
                .arg(&module)
                .arg("-o")
                .arg(&module),
        )?;
    }
    Ok(())
}

/// Adds to the staged `index.html`, before `</head>`: preloads of the JS and the main wasm
/// with their SHA-384 integrity, and the module script that starts the app. `url` is the
/// address of the build's folder `pkg_name` in `staging`.
fn link_from_index(staging: &Path, url: &str, pkg_name: &str) -> TaskResult {
    let pkg = staging.join(pkg_name);
    let script = format!("{url}/{NAME}.js");
    let wasm = format!("{url}/{NAME}_bg.wasm");
    let mut links = String::new();
    // The bindings import the split loader, so the browser is told of it up front too.
    for module in [format!("{NAME}.js"), LOADER.to_owned()] {
        if pkg.join(&module).exists() {
            links.push_str(&format!(
                "<link rel=\"modulepreload\" href=\"{url}/{module}\" integrity=\"{}\" \
                 crossorigin>\n",
                integrity(&pkg.join(&module))?
            ));
        }
    }
    links.push_str(&format!(
        "<link rel=\"preload\" href=\"{wasm}\" as=\"fetch\" type=\"application/wasm\" \
         integrity=\"{}\" crossorigin>\n\
         <script type=\"module\">import init from \"{script}\";\
         await init({{module_or_path:\"{wasm}\"}});</script>\n",
        integrity(&pkg.join(format!("{NAME}_bg.wasm")))?,
    ));
    let index_path = staging.join("index.html");
    let index = fs::read_to_string(&index_path).map_err(|error| read_error(&index_path, error))?;
    let linked =
        with_links(&index, &links).map_err(|error| format!("{}: {error}", index_path.display()))?;
    fs::write(&index_path, linked)
        .map_err(|error| format!("cannot write {}: {error}", index_path.display()))
}

/// `page` without Trunk's skipped `<link data-trunk rel="rust" …>` (Trunk leaves it in; the
/// wasm is this hook's) and with `links` inserted before `</head>`.
fn with_links(page: &str, links: &str) -> Result<String, String> {
    const RUST_LINK: &str = "<link data-trunk rel=\"rust\"";
    let mut page = page.to_owned();
    if let Some(start) = page.find(RUST_LINK) {
        let length = page[start..]
            .find('>')
            .ok_or("the rust <link> of the page is not closed")?;
        page.replace_range(start..=start + length, "");
    }
    if page.contains(RUST_LINK) {
        return Err("the page has more than one rust <link>".into());
    }
    let head_end = page.find("</head>").ok_or("the page has no </head>")?;
    page.insert_str(head_end, links);
    Ok(page)
}

/// The Subresource Integrity value of a file: `sha384-` and the base64 of its SHA-384.
fn integrity(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|error| read_error(path, error))?;
    Ok(format!("sha384-{}", STANDARD.encode(Sha384::digest(bytes))))
}

/// The entries directly in `folder` whose names end with `suffix`, sorted.
fn files_ending(folder: &Path, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(folder).map_err(|error| read_error(folder, error))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    Ok(files)
}

fn read_error(path: &Path, error: std::io::Error) -> String {
    format!("cannot read {}: {error}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_link_is_replaced_by_the_links_before_the_head_ends() {
        let page = "<head>\n<link data-trunk rel=\"rust\" data-bin=\"web-client\" \
                    data-trunk-skip data-trunk-id=\"1\" />\n<title>t</title></head><body/>";
        assert_eq!(
            with_links(page, "<script></script>").as_deref(),
            Ok("<head>\n\n<title>t</title><script></script></head><body/>")
        );
        let unclosed = with_links("<head><link data-trunk rel=\"rust\"", "x");
        assert!(unclosed.is_err());
        let twice = "<head><link data-trunk rel=\"rust\"><link data-trunk rel=\"rust\"></head>";
        assert!(with_links(twice, "x").is_err());
        assert!(with_links("<body></body>", "x").is_err());
    }
}
