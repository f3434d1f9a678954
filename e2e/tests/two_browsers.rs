//! Two people chat end-to-end encrypted in two real, independent Chromium sessions, and the
//! server's database holds neither their messages nor their passwords.

use std::time::Duration;

use e2e::{contains_bytes, Driver, E2eResult, TestServer};

const ALICE_PASSWORD: &str = "alice-correct-horse-4417";
const BOB_PASSWORD: &str = "bob-battery-staple-9052";
const ROOM_NAME: &str = "Midnight plans";
const ALICE_MESSAGE: &str = "The eagle lands at midnight, pier 7f3a";
const BOB_REPLY: &str = "Copy that, bringing snacks 91c2";
/// The second line of bob's reply, after a Shift+Enter.
const BOB_SECOND_LINE: &str = "and a thermos 7e4a";
/// WebDriver key codes (W3C WebDriver, "Keyboard actions"): Shift held over Enter, then
/// released with the NULL key; and Enter alone.
const SHIFT_ENTER: &str = "\u{E008}\u{E007}\u{E000}";
const ENTER: &str = "\u{E007}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_end_to_end_encrypted() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;

    alice
        .register(&server.base_url, "alice", ALICE_PASSWORD)
        .await?;
    let alice_register_kdf = alice.kdf_millis().await?;
    bob.register(&server.base_url, "bob", BOB_PASSWORD).await?;
    let fingerprint = alice
        .element("fingerprint")
        .await?
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(
        fingerprint.split_whitespace().count(),
        6,
        "fingerprint {fingerprint:?}"
    );

    // alice creates a room and adds bob; bob sees it appear without reloading.
    alice.fill("room-name-input", ROOM_NAME).await?;
    alice.click("create-room-button").await?;
    alice.wait_for_text("room-item", ROOM_NAME).await?;
    alice.fill("member-username-input", "bob").await?;
    alice.click("add-member-button").await?;
    alice.wait_for_text("member-list", "bob").await?;
    bob.wait_for_text("room-list", ROOM_NAME).await?;
    bob.click_text("room-item", ROOM_NAME).await?;
    bob.wait_for_text("member-list", "alice").await?;

    // Messages both ways, live.
    alice.fill("message-input", ALICE_MESSAGE).await?;
    alice.click("send-button").await?;
    alice.wait_for_text("message", ALICE_MESSAGE).await?;
    bob.wait_for_text("message", ALICE_MESSAGE).await?;
    // bob answers from the keyboard: Shift+Enter breaks the line, Enter sends.
    bob.fill(
        "message-input",
        &format!("{BOB_REPLY}{SHIFT_ENTER}{BOB_SECOND_LINE}{ENTER}"),
    )
    .await?;
    alice.wait_for_text("message", BOB_REPLY).await?;
    alice
        .wait_for_text("message", &format!("{BOB_REPLY}\n{BOB_SECOND_LINE}"))
        .await?;
    for browser in [&alice, &bob] {
        let warnings = browser.texts("message-warning").await?;
        assert!(
            warnings.is_empty(),
            "{}: unexpected warnings {warnings:?}",
            browser.name
        );
        assert_eq!(browser.texts("message").await?.len(), 2, "{}", browser.name);
    }

    // For the README: set CHAT_E2E_SCREENSHOT to a path to save alice's view.
    if let Some(path) = std::env::var_os("CHAT_E2E_SCREENSHOT") {
        alice.screenshot(std::path::Path::new(&path)).await?;
    }

    // Logging in again unwraps the same identity: history is still readable.
    alice.click("logout-button").await?;
    let login_time = alice.login("alice", ALICE_PASSWORD).await?;
    let alice_login_kdf = alice.kdf_millis().await?;
    alice.click_text("room-item", ROOM_NAME).await?;
    alice.wait_for_text("message", BOB_REPLY).await?;
    alice.wait_for_text("message", ALICE_MESSAGE).await?;
    println!(
        "e2e figures: key derivation (Argon2id m=64 MiB t=3 p=1) in headless Chromium: \
         {alice_register_kdf:.0} ms at registration, {alice_login_kdf:.0} ms at login; \
         whole login (pre-login, derivation, login, unwrap, rooms) {} ms",
        login_time.as_millis()
    );

    // A ciphertext changed in the database shows as a warning after a reload, never as text,
    // and the other message still verifies.
    // After a reload the session is still valid, so only the password is asked for.
    server.tamper_with_oldest_message().await?;
    bob.reload().await?;
    bob.wait_for_text("unlock-username", "bob").await?;
    bob.unlock(BOB_PASSWORD).await?;
    bob.click_text("room-item", ROOM_NAME).await?;
    bob.wait_for_text("message", BOB_REPLY).await?;
    bob.wait_for_text("message-warning", "does not decrypt")
        .await?;
    let shown = bob.texts("message").await?;
    assert_eq!(shown.len(), 1, "bob sees {shown:?}");
    assert!(!shown.iter().any(|text| text.contains(ALICE_MESSAGE)));

    // A wrong password is refused with a visible error and no chat screen.
    alice.click("logout-button").await?;
    alice.fill("username-input", "alice").await?;
    alice.fill("password-input", "not-her-password").await?;
    alice.click("login-button").await?;
    alice.element("auth-error").await?;

    // Give SQLite a moment to write the last transaction, then read every byte it stored.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let database = server.database_bytes();
    assert!(database.len() > 4096, "database files are missing");
    for secret in [
        ALICE_MESSAGE,
        BOB_REPLY,
        BOB_SECOND_LINE,
        ALICE_PASSWORD,
        BOB_PASSWORD,
        ROOM_NAME,
    ] {
        assert!(
            !contains_bytes(&database, secret.as_bytes()),
            "the database contains {secret:?} in clear"
        );
    }
    // The check can fail: the usernames the server does store are found.
    assert!(contains_bytes(&database, b"alice"));

    alice.close().await?;
    bob.close().await?;
    Ok(())
}
