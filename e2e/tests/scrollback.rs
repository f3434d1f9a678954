//! Scrollback in a room of 300 messages: the room opens at its newest page, older pages load
//! as alice scrolls up (what was on screen stays in place), down to the start of the history;
//! messages of one sender are grouped under one day separator, and "Jump to latest" brings
//! the newest back. bob writes the 300 messages with the command-line client (the same client
//! core), which is quicker than typing them.

use std::time::Duration;

use e2e::{cli_member, Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-63";
const ROOM: &str = "History";
const COUNT: usize = 300;

fn text(number: usize) -> String {
    format!("history {number:03}")
}

/// The position of the message containing `needle` relative to the message list's visible
/// area: `[top, bottom]` of the message minus the list's top, and the list's height; `None`
/// when no such message is loaded.
async fn placement(browser: &Browser, needle: &str) -> E2eResult<Option<(f64, f64, f64)>> {
    let script = format!(
        r#"const list = document.querySelector('[data-testid="message-list"]');
        const message = [...list.querySelectorAll('[data-testid="message"]')]
            .find(m => m.innerText.includes({needle:?}));
        if (!message) return null;
        const outer = list.getBoundingClientRect(), inner = message.getBoundingClientRect();
        return [inner.top - outer.top, inner.bottom - outer.top, outer.height];"#
    );
    let found = browser.run_script(&script).await?;
    Ok(serde_json::from_value::<Option<(f64, f64, f64)>>(found).unwrap_or(None))
}

async fn count(browser: &Browser, selector: &str) -> E2eResult<usize> {
    let found = browser
        .run_script(&format!(
            "return document.querySelectorAll({selector:?}).length;"
        ))
        .await?;
    Ok(found.as_u64().unwrap_or_default() as usize)
}

async fn scroll_list_to(browser: &Browser, top: &str) -> E2eResult<()> {
    browser
        .run_script(&format!(
            r#"const list = document.querySelector('[data-testid="message-list"]');
            list.scrollTop = {top}; return null;"#
        ))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_messages_scroll_back_to_the_first() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    let (connection, mut bob, _bob_state) = cli_member(&server, "bob", PASSWORD).await?;

    alice.create_room(ROOM).await?;
    alice.wait_for_text("empty-room", "No messages yet").await?;
    alice.fill("rate-limit-input", "1000").await?;
    alice.click("save-settings-button").await?;
    alice.add_member("bob").await?;
    // A second room, to switch from.
    alice.create_room("Elsewhere").await?;
    alice.open_room(ROOM).await?;

    let mut out = Vec::new();
    let room_id = bob
        .find_room(&connection, ROOM, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    for number in 1..=COUNT {
        bob.send(&connection, room_id, &text(number), &mut out)
            .await
            .map_err(|e| format!("message {number}: {e}"))?;
    }
    alice.wait_for_text("message", &text(COUNT)).await?;

    // A reloaded tab opens the room at its newest page.
    alice.reload().await?;
    alice.unlock(PASSWORD).await?;
    alice.open_room("Elsewhere").await?;
    // The figure: from the click on the room, whose newest page the client core already
    // holds, to its newest message drawn.
    let opened_in = alice
        .run_async_script(&format!(
            r#"const done = arguments[arguments.length - 1];
            const item = [...document.querySelectorAll('[data-testid="room-item"]')]
                .find(i => i.innerText.includes({ROOM:?}));
            const started = performance.now();
            item.click();
            const look = () => {{
                const drawn = [...document.querySelectorAll('[data-testid="message"]')]
                    .some(m => m.innerText.includes({newest:?}));
                if (drawn) done(performance.now() - started); else requestAnimationFrame(look);
            }};
            look();"#,
            newest = text(COUNT)
        ))
        .await?;
    println!(
        "e2e figures: opening a room at its newest page (100 of {COUNT} messages) draws it in {:.0} ms",
        opened_in.as_f64().unwrap_or(f64::NAN)
    );
    alice.wait_for_text("message", &text(COUNT)).await?;
    let first_page = count(&alice, "[data-testid=\"message\"]").await?;
    assert!(
        first_page <= 100,
        "the first page holds {first_page} messages"
    );
    assert!(placement(&alice, &text(COUNT - 100)).await?.is_none());
    let (_, bottom, height) = placement(&alice, &text(COUNT))
        .await?
        .ok_or("the newest message is not loaded")?;
    assert!(bottom <= height + 1.0, "the newest message is on screen");
    alice.element("load-older-button").await?;
    assert!(alice.texts("jump-to-latest-button").await?.is_empty());

    // Scrolling to the top loads the page before; what was at the top stays on screen.
    let oldest_loaded = text(COUNT - first_page + 1);
    scroll_list_to(&alice, "0").await?;
    alice
        .wait_for_text("message", &text(COUNT - first_page))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (top, _, height) = placement(&alice, &oldest_loaded)
        .await?
        .ok_or("the message at the top vanished")?;
    assert!(
        (0.0..height).contains(&top),
        "{oldest_loaded} moved out of view ({top} of {height} px)"
    );
    alice.element("jump-to-latest-button").await?;

    // On to the first message.
    for _ in 0..10 {
        if !alice.texts("history-start").await?.is_empty() {
            break;
        }
        scroll_list_to(&alice, "0").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    alice
        .wait_for_text("history-start", "start of the room's history")
        .await?;
    alice.wait_for_text("message", &text(1)).await?;
    assert_eq!(count(&alice, "[data-testid=\"message\"]").await?, COUNT);
    assert_eq!(count(&alice, "[data-testid=\"day-separator\"]").await?, 1);
    assert_eq!(
        count(&alice, "[data-testid=\"message\"].grouped").await?,
        COUNT - 1,
        "bob's messages are grouped under the first"
    );
    assert!(alice.texts("message-warning").await?.is_empty());

    // Back to the newest.
    alice.click("jump-to-latest-button").await?;
    alice.wait_until_none("jump-to-latest-button").await?;
    let (_, bottom, height) = placement(&alice, &text(COUNT))
        .await?
        .ok_or("the newest message is not loaded")?;
    assert!(
        bottom <= height + 1.0 && bottom > 0.0,
        "the newest message is on screen"
    );
    let errors = alice.console_errors().await?;
    assert!(errors.is_empty(), "console errors {errors:?}");
    Ok(())
}
