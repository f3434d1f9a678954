//! What the database holds: never a password, an auth key or a message's plaintext.

use common::membership::Role;
use reqwest::StatusCode;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn the_database_never_holds_plaintext_passwords_or_auth_keys() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "secret plans room").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    let plaintext = "the eagle lands at midnight behind the old mill";
    let body = TestApp::sealed_text(&room, &alice, 1, plaintext);
    let response = app.post_message(&alice.client, &room.hex(), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let files = app.database_files().await;
    assert!(!files.is_empty());
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(file).unwrap());
    }
    // The message itself is there, but only as ciphertext.
    assert!(contains(&bytes, &body.ciphertext.0[..64]));
    for secret in [
        plaintext,
        "secret plans room",
        &alice.password,
        &bob.password,
    ] {
        assert!(!contains(&bytes, secret.as_bytes()), "{secret:?} is stored");
    }
    for key in [alice.auth_key, bob.auth_key] {
        assert!(!contains(&bytes, &key), "an auth key is stored");
    }
}

/// The two migration sets (`server/migrations/sqlite/` and `server/migrations/postgres/`)
/// end in the same tables with the same columns.
#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_and_columns() {
    let app = spawn_app().await;
    if !app.on_postgres() {
        eprintln!("skipped: set CHAT_TEST_POSTGRES_URL (cargo xtask test does) to compare");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", folder.path().join("chat.db").display());
    let sqlite = spawn_app_with(|config| config.database_url = sqlite_url).await;
    assert!(!sqlite.on_postgres());
    let on_sqlite = sqlite.columns().await;
    assert!(on_sqlite.contains(&("messages".to_owned(), "ciphertext".to_owned())));
    let on_postgres = app.columns().await;
    let only_sqlite: Vec<_> = on_sqlite.difference(&on_postgres).collect();
    let only_postgres: Vec<_> = on_postgres.difference(&on_sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only on SQLite: {only_sqlite:?}; only on PostgreSQL: {only_postgres:?}"
    );
}
