//! Finding and installing the tools the tasks need: the wasm32 target, Trunk, the
//! wasm-bindgen CLI (at exactly the version in Cargo.lock), wasm-pack, wasm-opt (binaryen from
//! npm; Debian's is too old), Chromium with its driver, and Debian's packages that other
//! tasks need (PostgreSQL, nginx).

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cluster::system::apt_install;

use crate::{project_root, run_command, step, TaskResult};

/// Trunk release that builds with the toolchain here (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";
/// binaryen release whose wasm-opt produces working modules (Debian's 108 does not).
const BINARYEN_VERSION: &str = "132.0.0";
/// schemathesis release that fuzzes every operation of docs/openapi.json (PyPI).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// axe-core release whose rules the browser tests check every screen against.
const AXE_CORE_VERSION: &str = "4.11.0";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where the tools are, and the `PATH` that finds them.
pub struct Tools {
    path: OsString,
    /// The chromedriver binary.
    pub chromedriver: PathBuf,
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// axe-core's `axe.min.js`, which the browser tests inject into each screen.
    pub axe_script: PathBuf,
    /// The schemathesis executable, in its virtual environment under `target/tools/`.
    pub schemathesis: PathBuf,
}

impl Tools {
    /// What the web client's wasm build (Trunk's post_build hook) needs: the wasm32 target,
    /// the wasm-bindgen CLI and wasm-opt. It does not touch Trunk, which is running it.
    pub fn ensure_for_bundle() -> Result<Self, String> {
        ensure_wasm_target()?;
        let binaryen_bin = ensure_wasm_opt()?;
        let path = path_with(Some(&binaryen_bin))?;
        let wasm_bindgen = wasm_bindgen_version()?;
        ensure_cargo_tool("wasm-bindgen", &["--version"], &wasm_bindgen, &path, || {
            // Without --locked: the CLI's own lockfile names a crate version this registry
            // mirror lacks.
            vec![
                "install".into(),
                "wasm-bindgen-cli".into(),
                "--version".into(),
                wasm_bindgen.clone(),
            ]
        })?;
        Ok(Self {
            path,
            chromedriver: PathBuf::new(),
            chromium: PathBuf::new(),
            axe_script: PathBuf::new(),
            schemathesis: PathBuf::new(),
        })
    }

    /// What `cargo xtask run` needs: OpenSSL's headers, Trunk, and what
    /// [`Tools::ensure_for_bundle`] installs.
    pub fn ensure_for_build() -> Result<Self, String> {
        ensure_openssl_headers()?;
        let tools = Self::ensure_for_bundle()?;
        ensure_cargo_tool("trunk", &["--version"], TRUNK_VERSION, &tools.path, || {
            vec!["install", "--locked", "trunk", "--version", TRUNK_VERSION]
                .into_iter()
                .map(String::from)
                .collect()
        })?;
        Ok(tools)
    }

    /// What `cargo xtask test` needs: all of the above, wasm-pack, Chromium and chromedriver,
    /// axe-core and schemathesis.
    pub fn ensure_for_test() -> Result<Self, String> {
        let mut tools = Self::ensure_for_build()?;
        if !tool_answers("wasm-pack", &["--version"], &tools.path) {
            step("installing wasm-pack (cargo install --locked wasm-pack)");
            run_command(Command::new(cargo()).args(["install", "--locked", "wasm-pack"]))?;
        }
        let (chromium, chromedriver) = ensure_chromium(&tools.path)?;
        tools.chromium = chromium;
        tools.chromedriver = chromedriver;
        tools.axe_script = ensure_axe_core()?;
        tools.schemathesis = ensure_schemathesis()?;
        Ok(tools)
    }

    /// What `cargo xtask fuzz` needs: a nightly toolchain (it cannot be fetched here, so its
    /// absence is an error that says so) and cargo-fuzz.
    pub fn ensure_for_fuzz() -> Result<Self, String> {
        let toolchains = output_of("rustup", &["toolchain", "list"], None)
            .ok_or("rustup is needed to find a nightly toolchain")?;
        if !toolchains.lines().any(|line| line.starts_with("nightly")) {
            return Err(
                "cargo fuzz needs a nightly toolchain (rustup toolchain install nightly)".into(),
            );
        }
        let path = path_with(None)?;
        if !tool_answers("cargo-fuzz", &["--version"], &path) {
            step("installing cargo-fuzz (cargo install --locked cargo-fuzz)");
            run_command(Command::new(cargo()).args(["install", "--locked", "cargo-fuzz"]))?;
        }
        Ok(Self {
            path,
            chromedriver: PathBuf::new(),
            chromium: PathBuf::new(),
            axe_script: PathBuf::new(),
            schemathesis: PathBuf::new(),
        })
    }

    /// A command for `program` with the tools' `PATH`.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("PATH", &self.path);
        command
    }
}

fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `PATH` with binaryen's directory (when given) and cargo's bin directory in front.
fn path_with(binaryen_bin: Option<&Path>) -> Result<OsString, String> {
    let mut entries: Vec<PathBuf> = binaryen_bin.map(Path::to_path_buf).into_iter().collect();
    if let Some(home) = env::var_os("CARGO_HOME").or_else(|| {
        env::var_os("HOME").map(|home| Path::new(&home).join(".cargo").into_os_string())
    }) {
        entries.push(Path::new(&home).join("bin"));
    }
    entries.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(entries).map_err(|error| format!("cannot build PATH: {error}"))
}

/// Runs `program args` and returns its standard output, or `None` if it cannot run.
fn output_of(program: &str, args: &[&str], path: Option<&OsString>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn tool_answers(program: &str, args: &[&str], path: &OsString) -> bool {
    output_of(program, args, Some(path)).is_some()
}

fn ensure_wasm_target() -> TaskResult {
    let installed = output_of("rustup", &["target", "list", "--installed"], None)
        .ok_or("rustup is needed to add the wasm32 target; install Rust with rustup")?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    step("adding the wasm32-unknown-unknown target (rustup target add)");
    run_command(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Installs `program` with `cargo install` unless `program --version` mentions `version`.
fn ensure_cargo_tool(
    program: &str,
    version_args: &[&str],
    version: &str,
    path: &OsString,
    install_args: impl FnOnce() -> Vec<String>,
) -> TaskResult {
    let found = output_of(program, version_args, Some(path));
    if found
        .as_deref()
        .is_some_and(|text| text.split_whitespace().any(|word| word == version))
    {
        return Ok(());
    }
    let args = install_args();
    step(&format!(
        "installing {program} {version} (cargo {}); this compiles for a few minutes",
        args.join(" ")
    ));
    run_command(Command::new(cargo()).args(&args))
}

/// The wasm-bindgen version in Cargo.lock, which the CLI must equal exactly.
fn wasm_bindgen_version() -> Result<String, String> {
    let lock_path = project_root().join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path)
        .map_err(|error| format!("cannot read {}: {error}", lock_path.display()))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(version_line) = lines.next() {
                if let Some(version) = version_line
                    .trim()
                    .strip_prefix("version = \"")
                    .and_then(|rest| rest.strip_suffix('"'))
                {
                    return Ok(version.to_owned());
                }
            }
        }
    }
    Err("Cargo.lock names no wasm-bindgen version".into())
}

/// Installs binaryen's wasm-opt from npm under `target/tools/binaryen` when missing and
/// returns the directory holding the binary.
fn ensure_wasm_opt() -> Result<PathBuf, String> {
    let prefix = project_root().join("target/tools/binaryen");
    let bin = prefix.join("node_modules/.bin");
    let wasm_opt = bin.join("wasm-opt");
    let major = BINARYEN_VERSION
        .split('.')
        .next()
        .unwrap_or(BINARYEN_VERSION);
    let wasm_opt_text = wasm_opt.to_string_lossy().into_owned();
    if output_of(&wasm_opt_text, &["--version"], None)
        .is_some_and(|text| text.contains(&format!("version {major}")))
    {
        return Ok(bin);
    }
    if output_of("npm", &["--version"], None).is_none() {
        return Err(format!(
            "wasm-opt (binaryen {BINARYEN_VERSION}) is needed and is installed with npm, which \
             is missing: install Node.js and npm (for example `apt-get install nodejs npm`)"
        ));
    }
    npm_install(&prefix, &format!("binaryen@{BINARYEN_VERSION}"))?;
    Ok(bin)
}

/// `npm install package` into `prefix` (a folder under `target/tools`), saying so.
fn npm_install(prefix: &Path, package: &str) -> Result<(), String> {
    step(&format!(
        "installing {package} (npm install into {})",
        prefix.display()
    ));
    fs::create_dir_all(prefix)
        .map_err(|error| format!("cannot create {}: {error}", prefix.display()))?;
    run_command(Command::new("npm").args([
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        &prefix.to_string_lossy(),
        package,
    ]))
}

/// axe-core (npm) in `target/tools/axe-core`; returns the path of its `axe.min.js`.
fn ensure_axe_core() -> Result<PathBuf, String> {
    let prefix = project_root().join("target/tools/axe-core");
    let package = prefix.join("node_modules/axe-core");
    let script = package.join("axe.min.js");
    let installed = fs::read_to_string(package.join("package.json"))
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{AXE_CORE_VERSION}\"")));
    if installed && script.is_file() {
        return Ok(script);
    }
    if output_of("npm", &["--version"], None).is_none() {
        return Err(format!(
            "axe-core {AXE_CORE_VERSION} (the accessibility rules of the browser tests) is \
             installed with npm, which is missing: install Node.js and npm"
        ));
    }
    npm_install(&prefix, &format!("axe-core@{AXE_CORE_VERSION}"))?;
    Ok(script)
}

/// schemathesis (PyPI) in a virtual environment at `target/tools/schemathesis`; returns its
/// executable. Installs Debian's `python3-venv` when the interpreter cannot make one.
fn ensure_schemathesis() -> Result<PathBuf, String> {
    let environment = project_root().join("target/tools/schemathesis");
    let executable = environment.join("bin/schemathesis");
    let installed = output_of(&executable.to_string_lossy(), &["--version"], None)
        .is_some_and(|version| version.contains(SCHEMATHESIS_VERSION));
    if installed {
        return Ok(executable);
    }
    if !environment.join("bin/pip").is_file() {
        let make_environment = || {
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&environment)
                .status()
                .is_ok_and(|status| status.success())
        };
        step(&format!(
            "making a Python virtual environment in {}",
            environment.display()
        ));
        if !make_environment() {
            apt_install(
                &["python3", "python3-venv"],
                "schemathesis (which fuzzes every endpoint) runs in a Python virtual environment",
            )?;
            let _ = fs::remove_dir_all(&environment);
            if !make_environment() {
                return Err("python3 -m venv failed even with python3-venv installed".into());
            }
        }
    }
    step(&format!(
        "installing schemathesis {SCHEMATHESIS_VERSION} (pip)"
    ));
    run_command(
        Command::new(environment.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}")),
    )?;
    Ok(executable)
}

/// Makes sure OpenSSL's headers and pkg-config are there (webauthn-rs, which checks passkeys
/// in `mfa`, builds against OpenSSL 3), installing Debian's packages when run as root.
fn ensure_openssl_headers() -> Result<(), String> {
    let found = || {
        Command::new("pkg-config")
            .args(["--exists", "openssl"])
            .status()
            .is_ok_and(|status| status.success())
    };
    if found() {
        return Ok(());
    }
    apt_install(
        &["libssl-dev", "pkg-config"],
        "OpenSSL's headers and pkg-config are needed to build the passkey checks (webauthn-rs)",
    )?;
    if found() {
        Ok(())
    } else {
        Err("OpenSSL's headers are still missing after apt-get install".into())
    }
}

/// Finds Chromium and chromedriver, installing Debian's packages when run as root.
fn ensure_chromium(path: &OsString) -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| -> Option<PathBuf> {
        names.iter().find_map(|name| {
            env::split_paths(path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    let browsers = ["chromium", "chromium-browser", "google-chrome"];
    let drivers = ["chromedriver"];
    if let (Some(browser), Some(driver)) = (find(&browsers), find(&drivers)) {
        return Ok((browser, driver));
    }
    apt_install(
        &["chromium", "chromium-driver"],
        "Chromium and chromedriver are needed for the browser tests",
    )?;
    match (find(&browsers), find(&drivers)) {
        (Some(browser), Some(driver)) => Ok((browser, driver)),
        _ => Err("Chromium or chromedriver is still missing after apt-get install".into()),
    }
}
