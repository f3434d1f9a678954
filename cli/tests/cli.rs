//! `chat-cli` against the real server: two accounts register, alice creates a room, adds bob
//! and writes; bob reads the history and follows live messages; then the server lies (it
//! deletes a message from the middle, then the newest log entry) and bob's next run says so,
//! from the client state it kept between runs. In a second room a late joiner reads only
//! what follows her add, leaves, and a plain member's client completes the rotation before
//! writing; a removal starts the next epoch. The client state is mirrored to the server,
//! so a fresh installation starts from it and a wiped copy is reported; a lowered KDF cost or
//! swapped salt is refused before the password is used.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::Parser;

/// The server on a free port with a fresh database in `directory`, with `flags` added (the
/// TLS files); its base URL.
async fn start_server_with(directory: &Path, flags: &[&str]) -> String {
    let database_url = format!("sqlite://{}", directory.join("chat.db").display());
    let static_dir = directory.to_string_lossy();
    let mut arguments = vec![
        "server",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &database_url,
        "--static-dir",
        &static_dir,
    ];
    arguments.extend_from_slice(flags);
    let config = server::Config::try_parse_from(arguments).unwrap();
    let application = server::Application::build(config).await.unwrap();
    let scheme = if application.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let base_url = format!("{scheme}://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    base_url
}

/// The server over plain HTTP on `port` (0 for any), stopped (drained) by sending on the
/// returned channel; the task ends once it has stopped.
async fn start_stoppable_server(
    directory: &Path,
    port: u16,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let database_url = format!("sqlite://{}", directory.join("chat.db").display());
    let bind = format!("127.0.0.1:{port}");
    let static_dir = directory.to_string_lossy();
    let config = server::Config::try_parse_from([
        "server",
        "--bind",
        &bind,
        "--database-url",
        &database_url,
        "--static-dir",
        &static_dir,
    ])
    .unwrap();
    let application = server::Application::build(config).await.unwrap();
    let port = application.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        application
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (port, stop, task)
}

/// The server over plain HTTP.
async fn start_server(directory: &Path) -> String {
    start_server_with(directory, &[]).await
}

/// Runs `chat-cli` as `user` with `arguments` and returns what it did.
async fn run_chat_cli(
    server: &str,
    state_dir: &Path,
    user: &str,
    arguments: &[String],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-cli"));
    command
        .args(["--server", server, "--user", user, "--state-dir"])
        .arg(state_dir)
        .args(arguments)
        .env("CHAT_PASSWORD", format!("{user}'s long passphrase"));
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap()
}

/// Runs `chat-cli` as `user` with `arguments`, returning its standard output; fails the test
/// with its standard error when it fails.
async fn chat_cli(server: &str, state_dir: &Path, user: &str, arguments: &[String]) -> String {
    let output = run_chat_cli(server, state_dir, user, arguments).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chat-cli {arguments:?} as {user} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn database(directory: &Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", directory.join("chat.db").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_chat_and_a_lying_server_is_caught_between_runs() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(directory.path()).await;
    let states = directory.path().join("states");
    let cli = |user: &'static str, arguments: &[&str]| {
        let server = server.clone();
        let states = states.clone();
        let arguments: Vec<String> = arguments
            .iter()
            .map(|&argument| argument.to_owned())
            .collect();
        async move { chat_cli(&server, &states, user, &arguments).await }
    };

    cli("alice", &["register"]).await;
    cli("bob", &["register"]).await;
    let room_id = cli("alice", &["create", "Plans"]).await.trim().to_owned();
    assert_eq!(room_id.len(), 64, "{room_id}");
    assert!(cli("alice", &["add", "Plans", "bob"])
        .await
        .contains("added bob"));
    for text in ["first note", "second note", "third note"] {
        cli("alice", &["send", "Plans", text]).await;
    }
    let rooms = cli("bob", &["rooms"]).await;
    assert!(
        rooms.contains(&room_id) && rooms.contains("Plans"),
        "{rooms}"
    );
    assert!(rooms.contains("members alice, bob"), "{rooms}");
    let history = cli("bob", &["tail", "Plans"]).await;
    assert_eq!(
        history.lines().collect::<Vec<_>>(),
        [
            "alice: first note",
            "alice: second note",
            "alice: third note"
        ]
    );

    // bob follows the room while alice writes.
    let follower = tokio::spawn(cli("bob", &["tail", "Plans", "--follow", "6"]));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cli("alice", &["send", "Plans", "live note"]).await;
    let followed = follower.await.unwrap();
    assert!(followed.contains("alice: live note"), "{followed}");
    assert!(!followed.contains("warning"), "{followed}");

    // The server deletes the second message: bob's next run counts it as withheld.
    let pool = database(directory.path()).await;
    sqlx::query(
        "DELETE FROM messages WHERE id = (SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let history = cli("bob", &["tail", &room_id]).await;
    assert!(!history.contains("second note"), "{history}");
    assert!(
        history.contains("!! trust warning: messages withheld: 1 of alice's messages"),
        "{history}"
    );

    // The server drops the newest log entry (bob's addition): bob's run refuses the log.
    sqlx::query("DELETE FROM room_log WHERE seq = (SELECT MAX(seq) FROM room_log)")
        .execute(&pool)
        .await
        .unwrap();
    let rooms = cli("bob", &["rooms"]).await;
    assert!(
        rooms.contains("!! trust warning: log rolled back"),
        "{rooms}"
    );
    assert!(rooms.contains("this room's log was refused"), "{rooms}");

    // A second room: carol joins late under "since joining" and reads only what follows.
    cli("carol", &["register"]).await;
    cli("alice", &["create", "Team"]).await;
    cli("alice", &["add", "Team", "bob"]).await;
    cli("alice", &["send", "Team", "early team note"]).await;
    cli("alice", &["add", "Team", "carol"]).await;
    cli("alice", &["send", "Team", "welcome carol"]).await;
    let carols = cli("carol", &["tail", "Team"]).await;
    assert!(carols.contains("alice: welcome carol"), "{carols}");
    assert!(!carols.contains("early team note"), "{carols}");
    assert!(
        carols.contains("1 earlier messages are from before you joined"),
        "{carols}"
    );

    // carol leaves; bob (a plain member) completes the rotation before his message goes out.
    cli("carol", &["leave", "Team"]).await;
    cli("bob", &["send", "Team", "after carol left"]).await;
    let alices = cli("alice", &["tail", "Team"]).await;
    assert!(alices.contains("bob: after carol left"), "{alices}");
    let rooms = cli("alice", &["rooms"]).await;
    assert!(
        rooms.contains("Team (epoch 3, members alice, bob)"),
        "{rooms}"
    );

    // A removal starts the next epoch.
    assert!(cli("alice", &["remove", "Team", "bob"])
        .await
        .contains("removed bob"));
    let rooms = cli("alice", &["rooms"]).await;
    assert!(rooms.contains("Team (epoch 4, members alice)"), "{rooms}");

    // The client state is mirrored to the server: a fresh installation of alice's starts from
    // it, so it too knows how far "Plans"'s log went before the server rolled it back; and
    // when the server then wipes that copy, her first installation says so.
    let fresh = directory.path().join("fresh");
    let fresh_rooms = chat_cli(&server, &fresh, "alice", &["rooms".to_owned()]).await;
    assert!(
        fresh_rooms.contains("Team (epoch 4, members alice)"),
        "{fresh_rooms}"
    );
    assert!(
        fresh_rooms.contains("!! trust warning: log rolled back"),
        "{fresh_rooms}"
    );
    let wiped = sqlx::query("DELETE FROM client_states WHERE username = 'alice'")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(wiped, 1);
    let rooms = cli("alice", &["rooms"]).await;
    assert!(
        rooms.contains("!! trust warning: pins rolled back"),
        "{rooms}"
    );

    // The server lowers alice's Argon2id cost and swaps her salt: her next run refuses before
    // deriving anything from the password, with or without a live session.
    sqlx::query("UPDATE users SET kdf_m_kib = 19456, kdf_t = 2, salt = ? WHERE username = 'alice'")
        .bind([9u8; 16].as_slice())
        .execute(&pool)
        .await
        .unwrap();
    // Without its session the fresh installation goes through pre-login, and refuses there.
    let mut removed = 0;
    for entry in std::fs::read_dir(&fresh).unwrap() {
        let session = entry.unwrap().path().join("alice.session");
        if session.exists() {
            std::fs::remove_file(session).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1, "one server folder with alice's session");
    for state_dir in [&states, &fresh] {
        let output = run_chat_cli(&server, state_dir, "alice", &["rooms".to_owned()]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("KDF parameters changed"), "{stderr}");
    }
}

/// A certificate authority and, signed by it, a certificate for 127.0.0.1 with its key, as
/// PEM files in `directory`: (authority, certificate, key).
fn authority_and_certificate(
    directory: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut authority = CertificateParams::new(Vec::<String>::new()).unwrap();
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let authority = CertifiedIssuer::self_signed(authority, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &authority)
        .unwrap();
    let paths = (
        directory.join(format!("{name}-ca.pem")),
        directory.join(format!("{name}-cert.pem")),
        directory.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, authority.pem()).unwrap();
    std::fs::write(&paths.1, certificate.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_cli_follows_live_and_trusts_only_the_authority_it_is_given() {
    let directory = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = authority_and_certificate(directory.path(), "server");
    let (other_authority, _, _) = authority_and_certificate(directory.path(), "other");
    let certificate = certificate.to_string_lossy();
    let key = key.to_string_lossy();
    let server = start_server_with(
        directory.path(),
        &["--tls-cert", &certificate, "--tls-key", &key],
    )
    .await;
    let states = directory.path().join("states");
    let cli = |arguments: &[&str]| {
        let server = server.clone();
        let states = states.clone();
        let mut all = vec![
            "--ca-cert".to_owned(),
            authority.to_string_lossy().into_owned(),
        ];
        all.extend(arguments.iter().map(|&argument| argument.to_owned()));
        async move { chat_cli(&server, &states, "alice", &all).await }
    };

    cli(&["register"]).await;
    cli(&["create", "Secure"]).await;
    let follower = tokio::spawn(cli(&["tail", "Secure", "--follow", "6"]));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cli(&["send", "Secure", "over tls"]).await;
    let followed = follower.await.unwrap();
    assert!(followed.contains("alice: over tls"), "{followed}");

    // A certificate another authority signed is refused before anything is sent.
    let output = run_chat_cli(
        &server,
        &states,
        "alice",
        &[
            "--ca-cert".to_owned(),
            other_authority.to_string_lossy().into_owned(),
            "rooms".to_owned(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("network: error sending request"),
        "{stderr}"
    );
}

/// A follower whose server restarts (drains with close code 1012, then comes back) connects
/// again and prints what was sent before and after, each once.
#[tokio::test]
async fn a_follower_connects_again_after_the_server_restarts() {
    let directory = tempfile::tempdir().unwrap();
    let (port, stop, stopped) = start_stoppable_server(directory.path(), 0).await;
    let server = format!("http://127.0.0.1:{port}");
    let states = directory.path().join("states");
    chat_cli(&server, &states, "alice", &["register".into()]).await;
    chat_cli(
        &server,
        &states,
        "alice",
        &["create".into(), "Lasting".into()],
    )
    .await;
    let follower = {
        let (server, states) = (server.clone(), states.clone());
        tokio::spawn(async move {
            let arguments = ["tail", "Lasting", "--follow", "12"].map(String::from);
            chat_cli(&server, &states, "alice", &arguments).await
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let send = |text: &str| {
        let arguments = ["send".to_owned(), "Lasting".to_owned(), text.to_owned()];
        let (server, states) = (server.clone(), states.clone());
        async move { chat_cli(&server, &states, "alice", &arguments).await }
    };
    send("before the restart").await;
    stop.send(()).unwrap();
    stopped.await.unwrap();
    let (_, _keep_running, _) = start_stoppable_server(directory.path(), port).await;
    send("after the restart").await;
    let followed = follower.await.unwrap();
    for text in ["alice: before the restart", "alice: after the restart"] {
        assert_eq!(followed.matches(text).count(), 1, "{text}: {followed}");
    }
}
