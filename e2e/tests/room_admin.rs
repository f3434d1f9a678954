//! Room administration in three real browsers (alice, bob, carol): invite by link and
//! approval, key redistribution by a member while the admin is offline, removal that starts
//! a new epoch, history policy for a late joiner (an add under "since joining" starts an
//! epoch of its own), a leave completed by a remaining member's client, a direct
//! conversation, and safety numbers.

use common::api::endpoints::{Endpoint, ListMessages};
use std::time::Duration;

use e2e::{Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-71";

/// Opens the room named `name` in `browser`'s room list.
async fn open_room(browser: &Browser, name: &str) -> E2eResult<()> {
    browser.click_text("room-item", name).await?;
    browser.wait_for_text("room-title", name).await
}

async fn send(browser: &Browser, text: &str) -> E2eResult<()> {
    browser.fill("message-input", text).await?;
    browser.click("send-button").await?;
    browser.wait_for_text("message", text).await
}

async fn create_room(browser: &Browser, name: &str) -> E2eResult<()> {
    browser.fill("room-name-input", name).await?;
    browser.click("create-room-button").await?;
    browser.wait_for_text("room-title", name).await
}

async fn add_member(browser: &Browser, username: &str) -> E2eResult<()> {
    browser.fill("member-username-input", username).await?;
    browser.click("add-member-button").await?;
    browser.wait_for_text("member-list", username).await
}

fn member(username: &str) -> String {
    format!("[data-testid=\"member\"][data-username=\"{username}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_administration_in_three_browsers() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    let carol = driver.browser("carol").await?;

    // --- alice invites bob by link; bob requests; alice approves; bob reads. ---
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    create_room(&alice, "Ops").await?;
    // Full history, so that members added later are handed the earlier keys by whoever is
    // online (under "since joining" every add starts a new epoch instead, tested below).
    alice
        .select("history-policy-select", "full_history")
        .await?;
    alice.click("save-settings-button").await?;
    send(&alice, "m1 early ops").await?;
    alice.click("create-invite-button").await?;
    let link = alice.value("invite-link").await?;
    let room_hex = link
        .split("#join=")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .ok_or("invite link has no room id")?
        .to_owned();
    bob.register(&link, "bob", PASSWORD).await?;
    bob.click("join-request-button").await?;
    bob.wait_for_text("join-status", "Request sent").await?;
    alice.wait_for_text("join-request", "bob").await?;
    alice
        .click_in(
            "[data-testid=\"join-request\"][data-username=\"bob\"]",
            "approve-request-button",
        )
        .await?;
    alice.wait_for_text("member-list", "bob").await?;
    bob.wait_for_text("room-list", "Ops").await?;
    open_room(&bob, "Ops").await?;
    bob.wait_for_text("message", "m1 early ops").await?;
    // The topic is encrypted metadata in the log; bob sees it once decrypted.
    alice.fill("room-topic-input", "launch plans").await?;
    alice.click("save-metadata-button").await?;
    bob.wait_for_text("room-topic", "launch plans").await?;

    // --- alice adds carol and goes offline; carol gets the key from bob. ---
    carol.register(&server.base_url, "carol", PASSWORD).await?;
    carol.click("logout-button").await?;
    add_member(&alice, "carol").await?;
    // Both alice's and bob's clients seal the key to carol when she is added. Once both have,
    // alice goes offline and every envelope to carol is removed, as if none had been sealed:
    // bob, still online, must answer carol's key request.
    let started = std::time::Instant::now();
    loop {
        let distributors = server.envelope_distributors("carol").await?;
        if ["alice", "bob"]
            .iter()
            .all(|name| distributors.iter().any(|d| d == name))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "envelopes to carol: {distributors:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice.close().await?;
    server.delete_envelopes_to("carol").await?;
    carol.login("carol", PASSWORD).await?;
    open_room(&carol, "Ops").await?;
    carol.wait_for_text("message", "m1 early ops").await?;
    let distributors = server.envelope_distributors("carol").await?;
    assert!(
        !distributors.is_empty() && distributors.iter().all(|name| name == "bob"),
        "carol's keys came from {distributors:?}"
    );
    send(&bob, "m2 hello carol").await?;
    carol.wait_for_text("message", "m2 hello carol").await?;

    // --- alice comes back and removes carol: a new epoch that carol cannot read. ---
    let alice = driver.browser("alice-again").await?;
    alice.open(&server.base_url).await?;
    alice.login("alice", PASSWORD).await?;
    open_room(&alice, "Ops").await?;
    alice.wait_for_text("room-epoch", "key epoch 0").await?;
    // Removing asks first: "Cancel" changes nothing, "Yes, remove" removes.
    alice
        .click_in(&member("carol"), "remove-member-button")
        .await?;
    alice
        .wait_for_text("confirm-dialog", "Remove carol")
        .await?;
    alice.click_in(&member("carol"), "cancel-button").await?;
    alice.wait_for_text("member-list", "carol").await?;
    alice.wait_for_text("room-epoch", "key epoch 0").await?;
    alice
        .click_in(&member("carol"), "remove-member-button")
        .await?;
    alice.click_in(&member("carol"), "confirm-button").await?;
    alice.wait_for_text("room-epoch", "key epoch 1").await?;
    bob.wait_for_text("room-epoch", "key epoch 1").await?;
    carol.element("removed-notice").await?;
    send(&bob, "m3 after removal").await?;
    alice.wait_for_text("message", "m3 after removal").await?;
    carol
        .assert_never_text("message", "m3 after removal", Duration::from_secs(2))
        .await?;
    let status = carol
        .fetch_status(&ListMessages::INFO.render_path(&[&room_hex]))
        .await?;
    assert_eq!(
        status, 404,
        "the server must not serve a removed member the room"
    );

    // --- history policy: a late joiner reads everything, or only what follows the add,
    // which under "since joining" starts a new epoch of its own. ---
    for (room, policy, old, new, joined_epoch) in [
        (
            "Full",
            "full_history",
            "full old words",
            "full new words",
            1,
        ),
        (
            "Recent",
            "since_joining",
            "recent old words",
            "recent new words",
            2,
        ),
    ] {
        create_room(&alice, room).await?;
        alice.select("history-policy-select", policy).await?;
        alice.click("save-settings-button").await?;
        send(&alice, old).await?;
        alice.click("rotate-key-button").await?;
        alice.wait_for_text("room-epoch", "key epoch 1").await?;
        send(&alice, new).await?;
        add_member(&alice, "carol").await?;
        alice
            .wait_for_text("room-epoch", &format!("key epoch {joined_epoch}"))
            .await?;
        send(&alice, &format!("{room} after carol joined")).await?;
    }
    open_room(&carol, "Full").await?;
    carol.wait_for_text("message", "full new words").await?;
    carol.wait_for_text("message", "full old words").await?;
    carol
        .wait_for_text("message", "Full after carol joined")
        .await?;
    open_room(&carol, "Recent").await?;
    carol
        .wait_for_text("message", "Recent after carol joined")
        .await?;
    carol
        .wait_for_text("history-not-shared", "before you joined")
        .await?;
    for earlier in ["recent old words", "recent new words"] {
        carol
            .assert_never_text("message", earlier, Duration::from_secs(1))
            .await?;
    }

    // --- carol leaves "Full": alice's client completes the rotation at once, and what
    // alice writes next is at an epoch whose key carol never held. ---
    open_room(&carol, "Full").await?;
    carol.click("leave-room-button").await?;
    carol.click("confirm-button").await?;
    open_room(&alice, "Full").await?;
    alice.wait_for_text("room-epoch", "key epoch 2").await?;
    send(&alice, "full after carol left").await?;
    carol
        .assert_never_text("message", "full after carol left", Duration::from_secs(1))
        .await?;

    // --- a direct conversation, listed by the other person's name. ---
    bob.fill("dm-username-input", "alice").await?;
    bob.click("dm-button").await?;
    bob.wait_for_text("room-title", "alice").await?;
    send(&bob, "dm hi alice").await?;
    alice.wait_for_text("room-item", "bob").await?;
    open_room(&alice, "bob").await?;
    alice.wait_for_text("message", "dm hi alice").await?;

    // --- safety numbers agree in both browsers; alice marks bob verified. ---
    alice.click_in(&member("bob"), "verify-button").await?;
    bob.click_in(&member("alice"), "verify-button").await?;
    let seen_by_alice = alice
        .element("safety-number")
        .await?
        .text()
        .await
        .unwrap_or_default();
    let seen_by_bob = bob
        .element("safety-number")
        .await?
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(
        seen_by_alice.split_whitespace().count(),
        12,
        "{seen_by_alice:?}"
    );
    assert_eq!(seen_by_alice, seen_by_bob);
    alice.click("mark-verified-button").await?;
    alice
        .wait_for_text("verification-state", "verified")
        .await?;
    assert!(alice
        .texts("verification-state")
        .await?
        .iter()
        .any(|text| text.contains("✓")));

    for browser in [&alice, &bob, &carol] {
        assert!(
            browser.texts("message-warning").await?.is_empty(),
            "{} shows warnings",
            browser.name
        );
    }
    alice.close().await?;
    bob.close().await?;
    carol.close().await?;
    Ok(())
}
