//! Unread counts, the tab title, browser notifications and the "new messages" line: alice
//! writes in a room bob is not looking at; bob's room list counts it, his tab title shows the
//! total, and a notification shows the sender and room (the text only once he opts in). The
//! read markers live in bob's sealed client state: a second browser of his agrees with the
//! first, reading in one clears the count in the other, and a reload keeps them.

use std::time::Duration;

use e2e::{Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-27";
const ALPHA: &str = "Alpha";
const BETA: &str = "Beta";
const TITLE: &str = "End-to-end encrypted chat";

/// Waits until the room item `name` shows `count` unread (`None`: no count).
async fn wait_unread(browser: &Browser, name: &str, count: Option<usize>) -> E2eResult<()> {
    let script = format!(
        r#"const item = [...document.querySelectorAll('[data-testid="room-item"]')]
            .find(i => i.querySelector('.room-name').innerText.trim() === {name:?});
        if (!item) return "no room";
        const badge = item.querySelector('[data-testid="unread-count"]');
        return badge ? badge.firstChild.textContent.trim() : "";"#
    );
    let expected = count.map(|count| count.to_string()).unwrap_or_default();
    browser
        .wait_for_script(
            &script,
            &format!("{name} with {expected:?} unread"),
            |shown| shown.as_str() == Some(expected.as_str()),
        )
        .await
        .map(|_| ())
}

async fn wait_title(browser: &Browser, expected: &str) -> E2eResult<()> {
    browser
        .wait_for_script(
            "return document.title;",
            &format!("titled {expected:?}"),
            |title| title.as_str() == Some(expected),
        )
        .await
        .map(|_| ())
}

async fn wait_notifications(browser: &Browser, count: usize) -> E2eResult<Vec<(String, String)>> {
    let shown = browser
        .wait_for_script(
            "return (window.__notifications || []).map(n => [n.title, n.body]);",
            &format!("{count} notifications"),
            |shown| shown.as_array().is_some_and(|shown| shown.len() >= count),
        )
        .await?;
    serde_json::from_value(shown).map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_notifications_and_read_markers_across_browsers() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    for room in [ALPHA, BETA] {
        alice.create_room(room).await?;
        alice.add_member("bob").await?;
    }
    bob.wait_for_text("room-list", BETA).await?;
    bob.open_room(ALPHA).await?;

    // Notifications: a button asks; the browser (as the user would) allows them.
    bob.element("enable-notifications-button").await?;
    bob.set_permission("notifications", "granted").await?;
    bob.click("enable-notifications-button").await?;
    bob.element("notification-text-toggle").await?;
    bob.record_notifications().await?;

    // alice writes in Beta while bob reads Alpha.
    alice.send_message("beta one 1a2b").await?;
    wait_unread(&bob, BETA, Some(1)).await?;
    wait_unread(&bob, ALPHA, None).await?;
    wait_title(&bob, &format!("(1) {TITLE}")).await?;
    let shown = wait_notifications(&bob, 1).await?;
    assert_eq!(
        shown,
        [(
            "alice in Beta".to_owned(),
            "New encrypted message".to_owned()
        )],
        "sender and room, no text"
    );
    // Opted in, the text shows.
    bob.click("notification-text-toggle").await?;
    alice.send_message("beta two 3c4d").await?;
    wait_unread(&bob, BETA, Some(2)).await?;
    let shown = wait_notifications(&bob, 2).await?;
    assert_eq!(
        shown[1],
        ("alice in Beta".to_owned(), "beta two 3c4d".to_owned())
    );
    // A message in the room bob is looking at counts as read and notifies no one.
    alice.open_room(ALPHA).await?;
    alice.send_message("alpha hello 5e6f").await?;
    bob.wait_for_text("message", "alpha hello 5e6f").await?;
    wait_unread(&bob, ALPHA, None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bob.notifications().await?.len(), 2);

    // bob opens Beta: the "new messages" line sits above the first unread; counts clear.
    bob.open_room(BETA).await?;
    bob.element("new-messages-line").await?;
    let after_line = bob
        .run_script(
            r#"const line = document.querySelector('[data-testid="new-messages-line"]');
            let next = line.nextElementSibling;
            while (next && next.dataset.testid !== "message") next = next.nextElementSibling;
            return next ? next.innerText : null;"#,
        )
        .await?;
    assert!(
        after_line
            .as_str()
            .is_some_and(|text| text.contains("beta one 1a2b")),
        "the line is above {after_line}"
    );
    wait_unread(&bob, BETA, None).await?;
    wait_title(&bob, TITLE).await?;

    // A second browser of bob's starts from the same read markers and stays in step.
    let bob2 = driver.browser("bob2").await?;
    bob2.open(&server.base_url).await?;
    bob2.login("bob", PASSWORD).await?;
    bob2.wait_for_text("room-list", BETA).await?;
    bob2.open_room(BETA).await?;
    wait_unread(&bob2, ALPHA, None).await?;
    alice.send_message("alpha again 7a8b").await?;
    wait_unread(&bob, ALPHA, Some(1)).await?;
    wait_unread(&bob2, ALPHA, Some(1)).await?;
    bob2.open_room(ALPHA).await?;
    bob2.wait_for_text("message", "alpha again 7a8b").await?;
    wait_unread(&bob, ALPHA, None).await?;
    wait_title(&bob, TITLE).await?;

    // A reload keeps them.
    bob.reload().await?;
    bob.unlock(PASSWORD).await?;
    bob.wait_for_text("room-list", BETA).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_unread(&bob, ALPHA, None).await?;
    wait_unread(&bob, BETA, None).await?;
    for browser in [&alice, &bob, &bob2] {
        // Two browsers of one account saving at once: one upload is refused (409) and that
        // browser merges the other's copy and saves again, as designed; Chromium logs the
        // refused request all the same.
        let errors: Vec<String> = browser
            .console_errors()
            .await?
            .into_iter()
            .filter(|error| !(error.contains("/api/me/state") && error.contains("409")))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: console errors {errors:?}",
            browser.name
        );
    }
    Ok(())
}
