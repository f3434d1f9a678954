//! axe-core's rules (from npm, run in the test browser) on every screen of the app: log-in,
//! the chat with a room open (messages, a reply being written, reactions, the admin panel),
//! the security screen, the unlock screen of a returning tab, and the phone layout (room list,
//! room, members drawer). Each screen must have no violation: labels on every control,
//! contrast of at least 4.5:1, valid ARIA, landmarks and lists as the rules want them. Also
//! checks that the keyboard reaches the composer and the message actions in screen order.

use e2e::{Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-91";

async fn check(browser: &Browser, screen: &str, report: &mut Vec<String>) -> E2eResult<()> {
    let violations = browser.axe_violations().await?;
    println!("axe: {screen}: {} violations", violations.len());
    report.extend(violations.into_iter().map(|v| format!("{screen}: {v}")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_passes_the_axe_core_rules() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    let mut report = Vec::new();

    alice.open(&server.base_url).await?;
    alice.element("login-button").await?;
    check(&alice, "log-in", &mut report).await?;

    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    check(&alice, "chat without rooms", &mut report).await?;
    alice.create_room("Access").await?;
    check(&alice, "empty room", &mut report).await?;
    alice.add_member("bob").await?;
    bob.open_room("Access").await?;
    for text in ["first note for the rules", "second note, a longer one"] {
        bob.fill("message-input", text).await?;
        bob.click("send-button").await?;
        alice.wait_for_text("message", text).await?;
    }
    alice.click_in_message("first note", "react-button").await?;
    alice
        .click_in("[data-testid=\"reaction-picker\"]", "reaction-option")
        .await?;
    alice.wait_for_text("reaction", "1").await?;
    alice
        .click_in_message("second note", "reply-button")
        .await?;
    alice
        .wait_for_text("composer-context", "Replying to bob")
        .await?;
    check(
        &alice,
        "room with messages, reaction and reply",
        &mut report,
    )
    .await?;
    // The keyboard: Tab from the message input reaches the send button, and the message
    // actions are buttons in the tab order.
    let order = alice
        .run_script(
            r#"const input = document.querySelector('[data-testid="message-input"]');
            const focusable = [...document.querySelectorAll('button, input, textarea, select, [tabindex="0"]')]
                .filter(e => !e.disabled && e.tabIndex >= 0);
            const at = focusable.indexOf(input);
            return [focusable[at + 1]?.dataset.testid,
                focusable.some(e => e.dataset.testid === "reply-button")];"#,
        )
        .await?;
    assert_eq!(
        order,
        serde_json::json!(["send-button", true]),
        "keyboard order after the message input"
    );
    alice.click("composer-cancel-button").await?;

    alice.click("security-button").await?;
    alice.element("totp-setup-button").await?;
    check(&alice, "security", &mut report).await?;
    alice.click("security-button").await?;

    bob.reload().await?;
    bob.element("unlock-button").await?;
    check(&bob, "unlock", &mut report).await?;
    bob.unlock(PASSWORD).await?;

    // The phone layout.
    bob.resize(390, 844).await?;
    bob.wait_for_text("room-list", "Access").await?;
    check(&bob, "phone: room list", &mut report).await?;
    bob.click_text("room-item", "Access").await?;
    bob.wait_for_text("message", "second note").await?;
    check(&bob, "phone: room", &mut report).await?;
    bob.click("members-button").await?;
    bob.wait_for_text("member-list", "alice").await?;
    check(&bob, "phone: members drawer", &mut report).await?;

    assert!(
        report.is_empty(),
        "axe-core violations:\n{}",
        report.join("\n")
    );
    Ok(())
}
