//! Replies, edits, deletions and reactions between two browsers (alice, bob), and an edit
//! forged by a third member (carol, a modified command-line client that signs what an honest
//! client core refuses to send): both browsers show it as a warning and keep the text.

use std::time::Duration;

use common::api::endpoints::{PostMessage, RoomParams};
use common::api::{PostMessageRequest, StoredMessage};
use common::message::{seal_message, MessageBody};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use e2e::{cli_member, Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "correct-horse-battery-58";
const ROOM: &str = "Plans";
const QUESTION: &str = "Lunch at noon 4a1f";
const ANSWER: &str = "Noon works 77b2";
const EDITED: &str = "Lunch at one 5c3d";
const FORGED: &str = "Lunch is cancelled 0bad";
const MISTAKE: &str = "Wrong room, sorry 9e8d";

/// Waits until the message containing `needle` shows `id` with a text containing `expected`.
async fn wait_in_message(
    browser: &Browser,
    needle: &str,
    id: &str,
    expected: &str,
) -> E2eResult<()> {
    let script = format!(
        r#"return [...document.querySelectorAll('[data-testid="message"]')]
            .filter(m => m.innerText.includes({needle:?}))
            .flatMap(m => [...m.querySelectorAll('[data-testid="{id}"]')])
            .map(e => e.innerText);"#
    );
    browser
        .wait_for_script(
            &script,
            &format!("{expected:?} in {id} of {needle:?}"),
            |found| {
                serde_json::from_value::<Vec<String>>(found.clone())
                    .is_ok_and(|texts| texts.iter().any(|text| text.contains(expected)))
            },
        )
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_edits_deletions_and_reactions_reach_the_other_browser() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    let (connection, mut carol, _carol_state) = cli_member(&server, "carol", PASSWORD).await?;
    alice.create_room(ROOM).await?;
    for member in ["bob", "carol"] {
        alice.add_member(member).await?;
    }
    bob.open_room(ROOM).await?;
    alice.send_message(QUESTION).await?;

    // bob replies; alice sees the quote and jumps to what it answers.
    bob.click_in_message(QUESTION, "reply-button").await?;
    bob.wait_for_text("composer-context", "Replying to alice")
        .await?;
    bob.send_message(ANSWER).await?;
    bob.wait_until_none("composer-context").await?;
    wait_in_message(&alice, ANSWER, "reply-quote", QUESTION).await?;
    alice.click_in_message(ANSWER, "reply-quote").await?;

    // alice edits her question; bob sees the new text, marked, and in his reply's quote.
    alice.click_in_message(QUESTION, "edit-button").await?;
    alice.wait_for_text("composer-context", "Editing").await?;
    assert_eq!(alice.value("message-input").await?, QUESTION);
    alice.fill("message-input", EDITED).await?;
    alice.click("send-button").await?;
    for browser in [&alice, &bob] {
        wait_in_message(browser, EDITED, "message-edited", "edited").await?;
        wait_in_message(browser, ANSWER, "reply-quote", EDITED).await?;
        browser
            .assert_never_text("message-body", QUESTION, Duration::from_millis(300))
            .await?;
    }

    // Reactions: bob picks 👍, alice adds hers by pressing it; both count two.
    bob.click_in_message(EDITED, "react-button").await?;
    bob.click_in("[data-testid=\"reaction-picker\"]", "reaction-option")
        .await?;
    wait_in_message(&alice, EDITED, "reaction", "👍 1").await?;
    alice.click_in_message(EDITED, "reaction").await?;
    for browser in [&alice, &bob] {
        wait_in_message(browser, EDITED, "reaction-count", "2").await?;
    }

    // alice takes a message back, after confirming; bob sees the placeholder only.
    alice.send_message(MISTAKE).await?;
    bob.wait_for_text("message", MISTAKE).await?;
    alice
        .click_in_message(MISTAKE, "delete-message-button")
        .await?;
    alice.click("confirm-button").await?;
    for browser in [&alice, &bob] {
        browser
            .wait_for_text("message-deleted", "This message was deleted")
            .await?;
        browser
            .assert_never_text("message", MISTAKE, Duration::from_millis(300))
            .await?;
    }

    // carol, a member whose client is modified, signs an edit of alice's question.
    let mut out = Vec::new();
    let room_id = carol
        .find_room(&connection, ROOM, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    let room = carol.room(&room_id).map_err(|e| e.to_string())?;
    let target = room
        .messages
        .iter()
        .find(|shown| matches!(shown, client::ShownMessage::Verified { text, .. } if text == QUESTION))
        .and_then(client::ShownMessage::hash)
        .ok_or("carol does not see alice's question")?;
    let body = MessageBody::Edit {
        target,
        text: FORGED.into(),
    };
    let (inner, key) = room
        .prepare_message("carol", [0xca; 16], body.kind(), body.to_bytes(), 5_000_000)
        .ok_or("carol holds no key")?;
    let sealed = seal_message(&inner, &key, carol.identity_secrets(), &mut OsRng)
        .map_err(|e| e.to_string())?;
    let _: StoredMessage = connection
        .call::<PostMessage>(
            &RoomParams { room_id },
            &PostMessageRequest {
                epoch: sealed.epoch,
                nonce: Base64Array(sealed.nonce),
                ciphertext: Base64(sealed.ciphertext),
                attachments: Vec::new(),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    for browser in [&alice, &bob] {
        browser
            .wait_for_text(
                "message-warning",
                "carol tried to edit a message of alice's",
            )
            .await?;
        browser.wait_for_text("message-body", EDITED).await?;
        browser
            .assert_never_text("message", FORGED, Duration::from_millis(500))
            .await?;
        let errors = browser.console_errors().await?;
        assert!(
            errors.is_empty(),
            "{}: console errors {errors:?}",
            browser.name
        );
    }
    Ok(())
}
