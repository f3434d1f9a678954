//! Developer tasks, run as `cargo xtask <task>`: `run` builds the web client and starts the
//! server, `test` runs every check CI runs. Each task first installs the tools it needs when
//! they are missing or at the wrong version, saying what it does.

mod deploy;
mod tools;
mod web_bundle;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use cluster::postgres::Postgres;
use tools::Tools;

/// A failed step, in words for the terminal.
type TaskResult = Result<(), String>;

const USAGE: &str = "\
usage: cargo xtask <task> [-- server arguments]

tasks:
  run     install missing tools, build the web client (release) and start the server on
          http://127.0.0.1:8080 with SQLite; arguments after `--` go to the server, e.g.
          cargo xtask run -- --bind 127.0.0.1:9000 --database-url sqlite:///tmp/x.db
  test    install missing tools, then cargo fmt --check, clippy (native and wasm32), every
          native test, the server's integration tests again with mfa-service over mutual TLS
          and again on a throwaway PostgreSQL, the
          fault tests (a deployment with nginx, three instances and PostgreSQL with a standby,
          under load, with an instance and then the primary killed), the wasm-pack browser tests of `common` and `client`, and the browser end-to-end tests
  mfa     make development certificates (a local CA, the service's and a chat server's, with
          rcgen) in data/mfa-tls/ when missing, and run mfa-service with them on
          https://127.0.0.1:8443 until Ctrl-C; it prints the flags that point
          `cargo xtask run -- ...` at it
  cluster install missing tools and packages (nginx, PostgreSQL), build, and run a local
          deployment until Ctrl-C: PostgreSQL with a synchronous standby, three server
          instances and nginx in front (deploy/), at http://127.0.0.1:8080
  bench   run the criterion benchmarks of the crypto core, the relay benchmark (fan-out
          against a bare broadcast baseline, durable posts on SQLite and a throwaway
          PostgreSQL, idle connections), the latency the second-factor service adds, and the
          attachment throughput benchmark, and prints the web client's download size
  web-bundle
          Trunk's post_build hook (Trunk.toml), not run by hand: builds the web
          client's wasm, splits it into lazily loaded chunks (release), binds and optimizes
          it and links it from the page Trunk staged
  fuzz    run every cargo-fuzz target of fuzz/ (nightly) for a bounded time each, growing
          fuzz/corpus/; `cargo xtask fuzz -- 300` gives each target 300 s (default 60)
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.skip_while(|arg| arg == "--").collect();
    let result = match task.as_deref() {
        Some("run") => run(&rest),
        Some("test") => test(),
        Some("bench") => bench(),
        Some("cluster") => deploy::cluster(),
        Some("mfa") => mfa_service(),
        Some("fuzz") => fuzz(&rest),
        Some("web-bundle") => web_bundle::bundle(),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing task\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

use cluster::system::step;

/// Runs a command in the project root, failing with its name when it fails.
fn run_command(command: &mut Command) -> TaskResult {
    cluster::system::run_command(command.current_dir(project_root()))
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo fetch` then `trunk build --release`: the web client into `web-client/dist` (Trunk
/// writes the page and style sheet; its post_build hook, `cargo xtask web-bundle`, builds and
/// splits the wasm: see `web_bundle`).
fn build_web_client(tools: &Tools) -> TaskResult {
    step("fetching crates (Trunk builds offline)");
    run_command(cargo().arg("fetch"))?;
    step("building the web client (trunk build --release)");
    run_command(tools.command("trunk").args(["build", "--release"]))
}

/// `cargo clippy` of `packages` for wasm32, with `flags` (e.g. features), warnings denied.
fn clippy_wasm32(packages: &[&str], flags: &[&str]) -> TaskResult {
    let mut command = cargo();
    command.args(["clippy", "--target", "wasm32-unknown-unknown"]);
    for package in packages {
        command.args(["--package", package]);
    }
    run_command(command.args(flags).args(["--", "-D", "warnings"]))
}

fn run(server_args: &[String]) -> TaskResult {
    let tools = Tools::ensure_for_build()?;
    build_web_client(&tools)?;
    step("starting the server (Ctrl-C stops it)");
    let mut command = cargo();
    command.args(["run", "--release", "--package", "server", "--"]);
    if !server_args
        .iter()
        .any(|arg| arg.starts_with("--static-dir"))
    {
        command.args(["--static-dir", "web-client/dist"]);
    }
    command.args(server_args);
    run_command(&mut command)
}

/// `cargo xtask mfa`: development certificates in `data/mfa-tls/` (made when missing), then
/// `mfa-service` on 127.0.0.1:8443 with its database and key in `data/mfa-service/`.
fn mfa_service() -> TaskResult {
    let root = project_root();
    let folder = root.join("data/mfa-tls");
    let mut certificates = dev_certificates::DevCertificates::in_folder(&folder);
    if certificates.exist() {
        step(&format!("development certificates in {}", folder.display()));
    } else {
        step(&format!(
            "making development certificates in {} (a local CA, the service's, a chat server's)",
            folder.display()
        ));
        certificates = dev_certificates::generate(&folder, "e2ee-chat development CA")
            .map_err(|error| format!("cannot make the certificates: {error}"))?;
    }
    println!(
        "Point the chat server at the service with:\n  cargo xtask run -- --mfa-url \
         https://127.0.0.1:8443 --mfa-ca {} --mfa-client-cert {} --mfa-client-key {}",
        certificates.ca_cert.display(),
        certificates.client_cert.display(),
        certificates.client_key.display()
    );
    step("starting mfa-service on https://127.0.0.1:8443 (Ctrl-C stops it)");
    run_command(
        cargo()
            .args([
                "run",
                "--release",
                "--package",
                "mfa",
                "--bin",
                "mfa-service",
                "--",
            ])
            .args(["--database-url", "sqlite://data/mfa-service/mfa.db"])
            .arg("--tls-cert")
            .arg(&certificates.service_cert)
            .arg("--tls-key")
            .arg(&certificates.service_key)
            .arg("--client-ca")
            .arg(&certificates.ca_cert),
    )
}

fn test() -> TaskResult {
    let started = Instant::now();
    let tools = Tools::ensure_for_test()?;

    step("cargo fmt --check");
    run_command(cargo().args(["fmt", "--all", "--check"]))?;

    step("clippy, native, all targets");
    run_command(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("clippy, wasm32 (common, client and web-client)");
    clippy_wasm32(&["common", "client", "web-client"], &[])?;
    step("clippy, wasm32, web-client as the release build compiles it (split points)");
    clippy_wasm32(&["web-client"], &["--features", "split"])?;

    step("native tests");
    run_command(cargo().args(["test", "--workspace", "--exclude", "e2e"]))?;

    step("schemathesis: every operation of docs/openapi.json fuzzed against a fresh server");
    run_command(
        cargo()
            .args([
                "test",
                "--package",
                "server",
                "--test",
                "api",
                "schemathesis",
                "--",
            ])
            .args(["--ignored", "--nocapture"])
            .env("CHAT_SCHEMATHESIS", &tools.schemathesis),
    )?;

    step("the server's integration tests again, with the second factors in mfa-service over mutual TLS");
    run_command(
        cargo()
            .args(["test", "--package", "server", "--test", "api"])
            .env("CHAT_TEST_MFA", "remote"),
    )?;

    step("the server's integration tests again, on a throwaway PostgreSQL");
    {
        // Durability is not under test here: skipping fsync keeps the run short.
        let postgres = Postgres::start_new(
            "chat-test-postgres",
            &["fsync=off", "synchronous_commit=off", "max_connections=300"],
        )?;
        run_command(
            cargo()
                .args(["test", "--package", "server", "--test", "api"])
                .env("CHAT_TEST_POSTGRES_URL", postgres.url("postgres")),
        )?;
    }

    step("fault tests: a deployment under load (nginx, three instances, PostgreSQL and a standby)");
    run_command(cargo().args(["build", "--package", "server"]))?;
    run_command(
        cargo()
            .args(["test", "--package", "cluster", "--test", "faults", "--"])
            .args(["--test-threads=1", "--nocapture"])
            .env(
                "CHAT_SERVER_BIN",
                project_root().join("target/debug/server"),
            ),
    )?;

    // Chromium leaves scratch folders in TMPDIR when a session ends uncleanly (hundreds of MB
    // over a run): the browser tests get a folder of their own, removed at the end.
    let browser_scratch = project_root().join("target/browser-tmp");
    let _ = std::fs::remove_dir_all(&browser_scratch);
    std::fs::create_dir_all(&browser_scratch)
        .map_err(|error| format!("cannot create {}: {error}", browser_scratch.display()))?;
    for package in ["common", "client", "web-client"] {
        step(&format!(
            "wasm-pack test --headless --chrome {package} (its tests in Chromium)"
        ));
        // The web client's component tests print figures (search, rows) worth seeing.
        let capture: &[&str] = if package == "web-client" {
            &["--", "--nocapture"]
        } else {
            &[]
        };
        run_command(
            tools
                .command("wasm-pack")
                .args(["test", "--headless", "--chrome", package])
                .args(capture)
                .env("CHROMEDRIVER", &tools.chromedriver)
                .env("TMPDIR", &browser_scratch)
                .env("WASM_BINDGEN_TEST_TIMEOUT", "300"),
        )?;
    }

    build_web_client(&tools)?;

    step("browser end-to-end tests (real Chromium sessions)");
    run_command(
        cargo()
            .args(["test", "--package", "e2e", "--", "--nocapture"])
            .env(
                "CHAT_E2E_STATIC_DIR",
                project_root().join("web-client/dist"),
            )
            .env("CHROMEDRIVER", &tools.chromedriver)
            .env("CHROME", &tools.chromium)
            .env("CHAT_E2E_AXE_SCRIPT", &tools.axe_script),
    )?;
    let _ = std::fs::remove_dir_all(&browser_scratch);

    println!(
        "\nxtask: every check passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The cargo-fuzz targets of `fuzz/fuzz_targets/`, one per decoder, and one for the server's
/// request decoding.
const FUZZ_TARGETS: [&str; 7] = [
    "log_entry",
    "message",
    "identity",
    "envelope",
    "client_state",
    "attachment",
    "server_request",
];

/// Runs each fuzz target for a bounded time (seconds from the first argument, default 60)
/// on its corpus, which it grows; `cargo xtask test` replays the corpora on stable
/// (`client/tests/fuzz_corpus.rs`, `server/tests/fuzz_corpus.rs`).
fn fuzz(args: &[String]) -> TaskResult {
    let seconds: u64 = match args.first() {
        Some(text) => text
            .parse()
            .map_err(|_| format!("the fuzzing time must be whole seconds, not {text:?}"))?,
        None => 60,
    };
    let tools = Tools::ensure_for_fuzz()?;
    for target in FUZZ_TARGETS {
        step(&format!("cargo +nightly fuzz run {target} ({seconds} s)"));
        run_command(
            tools
                .command("cargo")
                .args([
                    "+nightly",
                    "fuzz",
                    "run",
                    "--fuzz-dir",
                    "fuzz",
                    target,
                    "--",
                ])
                .arg(format!("-max_total_time={seconds}"))
                .arg("-max_len=4096"),
        )?;
    }
    Ok(())
}

fn bench() -> TaskResult {
    step("criterion benchmarks of the crypto core");
    run_command(cargo().args(["bench", "--package", "common"]))?;
    step("criterion benchmarks of the message list and search (10,000 messages)");
    run_command(cargo().args(["bench", "--package", "client", "--bench", "messaging"]))?;
    step("relay: fan-out against a bare broadcast baseline, durable posts on SQLite and PostgreSQL, idle connections (loopback only)");
    run_command(cargo().args(["build", "--release", "--package", "server"]))?;
    {
        // Durability is under test: PostgreSQL keeps its default fsync and synchronous commit.
        let postgres = Postgres::start_new("chat-bench-postgres", &["max_connections=300"])?;
        run_command(
            cargo()
                .args(["bench", "--package", "server", "--bench", "relay"])
                .env("CHAT_BENCH_POSTGRES_URL", postgres.url("postgres"))
                .env(
                    "CHAT_SERVER_BIN",
                    project_root().join("target/release/server"),
                ),
        )?;
    }
    step("second factors: 1,000 code verifications in-process and through mfa-service over mutual TLS");
    run_command(cargo().args(["bench", "--package", "mfa", "--bench", "latency"]))?;
    step("attachment throughput, 100 MiB each way (loopback only)");
    run_command(cargo().args(["bench", "--package", "server", "--bench", "attachments"]))?;
    let tools = Tools::ensure_for_test()?;
    build_web_client(&tools)?;
    step("the web client's initial download (wasm + JS, gzip)");
    run_command(
        cargo()
            .args([
                "test",
                "--package",
                "e2e",
                "--test",
                "bundle_size",
                "--",
                "--nocapture",
            ])
            .env(
                "CHAT_E2E_STATIC_DIR",
                project_root().join("web-client/dist"),
            ),
    )?;
    step("attachment throughput in headless Chromium, 100 MiB each way");
    run_command(
        cargo()
            .args([
                "test",
                "--release",
                "--package",
                "e2e",
                "--test",
                "attachment_bench",
                "--",
                "--ignored",
                "--nocapture",
            ])
            .env(
                "CHAT_E2E_STATIC_DIR",
                project_root().join("web-client/dist"),
            )
            .env("CHROMEDRIVER", &tools.chromedriver)
            .env("CHROME", &tools.chromium),
    )
}
