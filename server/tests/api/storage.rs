//! What the database holds: never a password, an auth key or a message's plaintext.

use common::membership::Role;
use reqwest::StatusCode;

use crate::helpers::{spawn_app, TestApp};

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

    let files = app.database_files();
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
