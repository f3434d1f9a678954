//! A server that serves less than a browser has already seen, in real Chromium: the operator
//! wipes alice's stored client state, withholds a message from the middle of her room, then
//! rolls back the room's membership log; after each reload her browser, starting from its own
//! copy in IndexedDB, shows the exact `trust-warning` instead of silently forgetting.

use std::time::Duration;

use e2e::{Driver, E2eResult, TestServer};

const PASSWORD: &str = "gentle-otter-ladder-64";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_pins_and_a_rolled_back_log_raise_trust_warnings() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let bob = driver.browser("bob").await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    bob.close().await?;

    let alice = driver.browser("alice").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    alice.fill("room-name-input", "Vault").await?;
    alice.click("create-room-button").await?;
    alice.wait_for_text("room-title", "Vault").await?;
    alice.fill("member-username-input", "bob").await?;
    alice.click("add-member-button").await?;
    alice.wait_for_text("member-list", "bob").await?;
    for text in ["first note", "second note", "third note"] {
        alice.fill("message-input", text).await?;
        alice.click("send-button").await?;
        alice.wait_for_text("message", text).await?;
    }
    // Saved at log-in, after the room was created, after bob was pinned and after he was
    // added: at least three versions.
    let version = server.settled_client_state("alice", 3).await?;
    assert!(alice.texts("trust-warning").await?.is_empty());

    // --- The server wipes alice's state: her browser still has it. ---
    assert_eq!(server.wipe_client_state("alice").await?, 1);
    alice.reload().await?;
    alice.unlock(PASSWORD).await?;
    alice
        .wait_for_text("trust-warning", "pins rolled back")
        .await?;
    alice.wait_for_text("member-list", "bob").await?;
    alice.click("trust-warning-ack").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alice.texts("trust-warning").await?.is_empty());
    // The browser put its copy back, at a higher version.
    assert!(server.settled_client_state("alice", version + 1).await? > version);

    // --- The server withholds the second message. ---
    server.withhold_message(1).await?;
    alice.reload().await?;
    alice.unlock(PASSWORD).await?;
    alice.wait_for_text("message", "third note").await?;
    alice
        .wait_for_text("trust-warning", "messages withheld: 1 of alice's messages")
        .await?;
    alice
        .assert_never_text("message", "second note", Duration::from_millis(300))
        .await?;
    // For the README: set CHAT_E2E_TRUST_SCREENSHOT to a path to save this view.
    if let Some(path) = std::env::var_os("CHAT_E2E_TRUST_SCREENSHOT") {
        alice.screenshot(std::path::Path::new(&path)).await?;
    }
    alice.click("trust-warning-ack").await?;

    // --- The server rolls back the log (bob's addition disappears). ---
    assert_eq!(server.roll_back_newest_log_entry().await?, 1);
    alice.reload().await?;
    alice.unlock(PASSWORD).await?;
    alice
        .wait_for_text("trust-warning", "log rolled back")
        .await?;
    alice
        .wait_for_text("trust-warning", "served 1 entries")
        .await?;
    alice.wait_for_text("log-warning", "refused").await?;
    alice.close().await?;
    Ok(())
}
