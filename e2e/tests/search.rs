//! Search over decrypted history: alice finds a message in another room by two words, even
//! after a reload when that message is older than the page loaded (the index is kept, sealed,
//! in her browser), and the result opens the room at the message. The server's database never
//! sees the words.

use std::time::Duration;

use e2e::{cli_member, contains_bytes, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-45";
const TARGET: &str = "The ferry leaves at 7:40 from pier 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_message_in_another_room_and_jumps_to_it() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    let (connection, mut bob, _bob_state) = cli_member(&server, "bob", PASSWORD).await?;

    for room in ["Travel", "Recipes"] {
        alice.create_room(room).await?;
        alice.fill("rate-limit-input", "1000").await?;
        alice.click("save-settings-button").await?;
        alice.add_member("bob").await?;
    }
    let mut out = Vec::new();
    let travel = bob
        .find_room(&connection, "Travel", &mut out)
        .await
        .map_err(|e| e.to_string())?;
    let recipes = bob
        .find_room(&connection, "Recipes", &mut out)
        .await
        .map_err(|e| e.to_string())?;
    bob.send(&connection, travel, TARGET, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    for number in 1..=120 {
        bob.send(
            &connection,
            travel,
            &format!("travel chatter {number}"),
            &mut out,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    bob.send(&connection, recipes, "Soak the beans overnight", &mut out)
        .await
        .map_err(|e| e.to_string())?;
    alice.wait_for_text("message", "Soak the beans").await?;

    // Found while typing, across rooms; "this room only" (Recipes) finds nothing.
    alice.fill("search-input", "ferry pie").await?;
    alice.wait_for_text("search-result", TARGET).await?;
    alice.wait_for_text("search-result", "Travel · bob").await?;
    alice.click("search-this-room").await?;
    alice
        .wait_for_text("search-empty", "No messages match")
        .await?;
    alice.click("search-this-room").await?;

    // After a reload the room loads its newest page only, but the index kept the message.
    tokio::time::sleep(Duration::from_secs(4)).await;
    alice.reload().await?;
    alice.unlock(PASSWORD).await?;
    alice.wait_for_text("room-list", "Travel").await?;
    alice.fill("search-input", "pier ferry").await?;
    alice.click_text("search-result", TARGET).await?;
    alice.wait_for_text("room-title", "Travel").await?;
    alice.wait_for_text("message", TARGET).await?;
    alice
        .wait_for_script(
            r#"const active = document.activeElement;
            if (!active || !active.matches('[data-testid="message"]')) return null;
            const list = document.querySelector('[data-testid="message-list"]').getBoundingClientRect();
            const box = active.getBoundingClientRect();
            return [active.innerText, box.top >= list.top - 1 && box.bottom <= list.bottom + 1];"#,
            "focused on the result's message, in view",
            |focused| match focused.as_array().map(Vec::as_slice) {
                Some([text, in_view]) => {
                    text.as_str().is_some_and(|text| text.contains(TARGET))
                        && in_view.as_bool() == Some(true)
                }
                _ => false,
            },
        )
        .await?;

    // The server never saw the words, nor the index.
    let database = server.database_bytes();
    for word in [&b"ferry"[..], b"pier 3", b"beans"] {
        assert!(
            !contains_bytes(&database, word),
            "{} in the database",
            String::from_utf8_lossy(word)
        );
    }
    let errors = alice.console_errors().await?;
    assert!(errors.is_empty(), "console errors {errors:?}");
    Ok(())
}
