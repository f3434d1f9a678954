//! The app at phone width (390 x 844): the room list and the room are separate screens with a
//! back button, the members panel is a drawer, controls are big enough for a thumb, and nothing
//! scrolls sideways, even with a long unbroken word in a message. Set CHAT_E2E_PHONE_SCREENSHOT
//! and CHAT_E2E_DESKTOP_SCREENSHOT to paths to save the README's screenshots (390 x 844 and
//! 1280 x 800).

use e2e::{Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-39";
const ROOM: &str = "Weekend hike";
const LONG_WORD: &str =
    "https://example.org/trails/ridge-loop-with-a-very-long-unbroken-address-0123456789";

async fn assert_fits(browser: &Browser, screen: &str) -> E2eResult<()> {
    let overflow = browser.horizontal_overflow().await?;
    assert!(
        overflow <= 0,
        "{}: the {screen} scrolls sideways by {overflow} px",
        browser.name
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_phone_width_list_and_room_are_screens_and_nothing_scrolls_sideways() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    alice.resize(1280, 800).await?;
    bob.resize(390, 844).await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    assert_fits(&bob, "room list").await?;

    alice.create_room(ROOM).await?;
    alice.add_member("bob").await?;
    for text in [
        "Meet at the trailhead at 8, parking is free before 9",
        LONG_WORD,
        "Bring water: the ridge has no shade",
    ] {
        alice.send_message(text).await?;
    }

    // bob's phone shows the list first, not the room.
    bob.wait_for_text("room-list", ROOM).await?;
    assert!(bob.shown("room-list").await?);
    assert!(
        !bob.shown("room-title").await?,
        "the room is a screen of its own"
    );
    bob.click_text("room-item", ROOM).await?;
    bob.wait_for_text("message", LONG_WORD).await?;
    assert!(
        !bob.shown("room-list").await?,
        "the list gives way to the room"
    );
    assert!(bob.shown("back-button").await?);
    assert!(!bob.shown("member-list").await?, "members wait in a drawer");
    assert_fits(&bob, "room").await?;
    // Thumb-sized controls.
    for id in [
        "send-button",
        "back-button",
        "members-button",
        "message-input",
    ] {
        let height = bob
            .run_script(&format!(
                r#"return document.querySelector('[data-testid="{id}"]').getBoundingClientRect().height;"#
            ))
            .await?
            .as_f64()
            .unwrap_or_default();
        assert!(height >= 44.0, "{id} is {height} px tall");
    }
    bob.fill("message-input", "On my way, from the phone")
        .await?;
    bob.click("send-button").await?;
    alice
        .wait_for_text("message", "On my way, from the phone")
        .await?;

    // The members drawer opens over the room and closes again.
    bob.click("members-button").await?;
    bob.wait_for_text("member-list", "alice").await?;
    assert!(bob.shown("member-list").await?);
    assert_fits(&bob, "members drawer").await?;
    if let Some(path) = std::env::var_os("CHAT_E2E_PHONE_SCREENSHOT") {
        bob.click("close-members-button").await?;
        bob.screenshot(std::path::Path::new(&path)).await?;
        bob.click("members-button").await?;
    }
    bob.click("close-members-button").await?;
    assert!(!bob.shown("member-list").await?);

    // Back to the list.
    bob.click("back-button").await?;
    assert!(bob.shown("room-list").await?);
    assert!(!bob.shown("room-title").await?);
    assert_fits(&bob, "room list").await?;

    // The desktop shows both side by side, and no phone controls.
    assert!(alice.shown("room-list").await?);
    assert!(alice.shown("member-list").await?);
    assert!(!alice.shown("back-button").await?);
    assert!(!alice.shown("members-button").await?);
    assert_fits(&alice, "desktop").await?;
    if let Some(path) = std::env::var_os("CHAT_E2E_DESKTOP_SCREENSHOT") {
        alice.screenshot(std::path::Path::new(&path)).await?;
    }
    for browser in [&alice, &bob] {
        let errors = browser.console_errors().await?;
        assert!(
            errors.is_empty(),
            "{}: console errors {errors:?}",
            browser.name
        );
    }
    Ok(())
}
