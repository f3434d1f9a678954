//! Every operation of the OpenAPI description fuzzed by schemathesis against a real server
//! with a fresh database and a logged-in user who owns a room: no 5xx, no response outside
//! the description (status, content type, body schema, error code), no hang.
//!
//! Needs schemathesis: `cargo xtask test` installs it into a virtual environment under
//! `target/` and runs this test with [`BINARY_VARIABLE`] naming its executable.

use std::time::Duration;

use common::api::openapi::SESSION_COOKIE;
use reqwest::cookie::CookieStore;

use crate::helpers::spawn_app_with;

/// The variable naming the schemathesis executable.
pub const BINARY_VARIABLE: &str = "CHAT_SCHEMATHESIS";

/// The variable with further arguments for schemathesis, separated by spaces (e.g.
/// `--include-operation-id post_message` while looking into one operation).
pub const EXTRA_VARIABLE: &str = "CHAT_SCHEMATHESIS_ARGS";

/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "60";

/// The longest one request may take before it counts as a hang, in seconds.
const REQUEST_TIMEOUT_S: &str = "10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: `cargo xtask test` runs it"]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let binary = std::env::var_os(BINARY_VARIABLE)
        .unwrap_or_else(|| panic!("set {BINARY_VARIABLE} to the schemathesis executable"));
    // Generous throttles: a fuzzer logs in and registers far more often than people do.
    let app = spawn_app_with(|config| {
        config.login_attempts = 100_000;
        config.register_attempts = 100_000;
    })
    .await;
    let user = app.register_user("fuzzer").await;
    let room = app.create_test_room(&user, "fuzzed").await;
    // The session token, for the description's `session` security scheme (so schemathesis
    // also tries each operation without it).
    let cookie = user
        .jar
        .cookies(&app.address.parse().unwrap())
        .expect("a session cookie");
    let token = cookie
        .to_str()
        .unwrap()
        .strip_prefix(&format!("{SESSION_COOKIE}="))
        .expect("only the session cookie")
        .to_owned();
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[auth.openapi.session]\napi_key = \"{token}\"\n\n\
             [dictionaries.rooms]\nvalues = [\"{room}\"]\n\n\
             [parameters]\n\"path.room_id\" = {{ dictionary = \"rooms\", probability = 0.7 }}\n",
            room = room.room_id.to_hex()
        ),
    )
    .unwrap();
    let report = directory.path().join("report.json");
    let started = std::time::Instant::now();
    let output = tokio::process::Command::new(binary)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.address))
        .args(["--url", &app.address])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance,negative_data_rejection",
        ])
        .args([
            "--max-examples",
            MAX_EXAMPLES,
            "--request-timeout",
            REQUEST_TIMEOUT_S,
        ])
        // One worker: hypothesis parses lambdas with `ast`, which CPython 3.11 does not make
        // safe across threads ("AST constructor recursion depth mismatch").
        .args(["--workers", "1", "--seed", "20261203", "--no-color"])
        // Logging out, or revoking the session that `GET /api/sessions` lists (the stateful
        // phase follows such links), would end the session the rest of the run uses; both
        // are in the authorization matrix and the session tests.
        .args(["--exclude-operation-id", "logout"])
        .args(["--exclude-operation-id", "revoke_session"])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .args(
            std::env::var(EXTRA_VARIABLE)
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache of failures (`.schemathesis/`) goes with the temporary directory.
        .current_dir(directory.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), output)
        .await
        .expect("schemathesis finished within ten minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap_or_default()).unwrap_or_default();
    println!(
        "schemathesis: {} operations tested of {} described, {} test cases (requests), {} \
         failures, {} errors, in {:.0} s",
        summary["operations"]["tested"],
        summary["operations"]["total"],
        summary["test_cases"]["generated"],
        summary["test_cases"]["unique_failures"],
        summary["operations"]["errored"],
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "schemathesis found failures (above)"
    );
    assert_eq!(summary["test_cases"]["unique_failures"], 0);
    let me = app.me(&user.client).await;
    assert_eq!(
        me.status(),
        reqwest::StatusCode::OK,
        "the fuzzed session survived the run"
    );
}
