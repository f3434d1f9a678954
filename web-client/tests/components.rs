//! Component tests of the web client in headless Chromium (`wasm-pack test --headless
//! --chrome web-client`, run by `cargo xtask test`): each mounts a component into the page,
//! drives it as a user would (clicks, typing) and checks the DOM. They also print how long
//! the message list's rows and a search over 10,000 messages take in the browser (figures for
//! the README; `cargo xtask bench` measures the same natively).
#![cfg(target_family = "wasm")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use client::{ItemContent, TimelineItem};
use common::membership::RoomId;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use web_client::chat::Chat;
use web_client::components::confirm::ConfirmButton;
use web_client::components::room_view::rows;
use web_client::search::SearchPanel;

wasm_bindgen_test_configure!(run_in_browser);

/// A fresh element in the page to mount into.
fn container() -> web_sys::HtmlElement {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .expect("document");
    let element = document
        .create_element("div")
        .expect("div")
        .dyn_into::<web_sys::HtmlElement>()
        .expect("html element");
    document
        .body()
        .expect("body")
        .append_child(&element)
        .expect("appended");
    element
}

/// The elements with `data-testid` `id` inside `root`.
fn all(root: &web_sys::HtmlElement, id: &str) -> Vec<web_sys::HtmlElement> {
    let found = root
        .query_selector_all(&format!("[data-testid=\"{id}\"]"))
        .expect("selector");
    (0..found.length())
        .filter_map(|index| found.item(index))
        .filter_map(|node| node.dyn_into::<web_sys::HtmlElement>().ok())
        .collect()
}

fn one(root: &web_sys::HtmlElement, id: &str) -> web_sys::HtmlElement {
    all(root, id)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {id} in {}", root.inner_html()))
}

/// Lets the reactive system run what a change scheduled.
async fn settle() {
    gloo_timers::future::TimeoutFuture::new(20).await;
}

/// Types `text` into the input `input` as a user does: its value, then an `input` event.
fn type_into(input: &web_sys::HtmlElement, text: &str) {
    let field = input
        .clone()
        .dyn_into::<web_sys::HtmlInputElement>()
        .expect("an input");
    field.set_value(text);
    let event = web_sys::Event::new("input").expect("event");
    field.dispatch_event(&event).expect("dispatched");
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

fn text_item(id: i64, sender: &str, sent_at_ms: u64, text: &str) -> TimelineItem {
    TimelineItem {
        id,
        sender: sender.into(),
        sent_at_ms: Some(sent_at_ms),
        hash: Some([1; 32]),
        content: ItemContent::Text(text.into()),
        edited: false,
        reply_to: None,
        reactions: Vec::new(),
        revision: 0,
    }
}

#[wasm_bindgen_test]
async fn a_confirm_button_acts_only_once_confirmed() {
    let root = container();
    let confirmed = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&confirmed);
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        view! {
            <ConfirmButton label="Delete room" class="danger" testid="delete-room-button"
                question="Delete this room for everyone?"
                on_confirm=Callback::new(move |()| {
                    count.fetch_add(1, Ordering::SeqCst);
                }) />
        }
    });
    one(&root, "delete-room-button").click();
    settle().await;
    assert!(one(&root, "confirm-dialog")
        .inner_text()
        .contains("Delete this room for everyone?"));
    assert!(all(&root, "delete-room-button").is_empty());
    one(&root, "cancel-button").click();
    settle().await;
    assert!(all(&root, "confirm-dialog").is_empty());
    assert_eq!(confirmed.load(Ordering::SeqCst), 0, "cancel does nothing");

    one(&root, "delete-room-button").click();
    settle().await;
    let yes = one(&root, "confirm-button");
    assert_eq!(yes.inner_text(), "Yes, delete room");
    yes.click();
    settle().await;
    assert_eq!(confirmed.load(Ordering::SeqCst), 1);
    assert_eq!(
        all(&root, "delete-room-button").len(),
        1,
        "back to the button"
    );
}

#[wasm_bindgen_test]
fn rows_separate_days_group_one_senders_run_and_mark_the_first_unread() {
    let day = 24 * 60 * 60 * 1000;
    let noon = 1_764_590_400_000; // 2025-12-01 12:00 UTC
    let items = vec![
        text_item(1, "alice", noon, "one"),
        text_item(2, "alice", noon + 60_000, "two, a minute later"),
        text_item(
            3,
            "alice",
            noon + 20 * 60_000,
            "three, twenty minutes later",
        ),
        text_item(4, "bob", noon + 21 * 60_000, "bob's"),
        text_item(5, "bob", noon + day, "the next day"),
        text_item(6, "bob", noon + day + 1_000, "unread from here"),
    ];
    let shown = rows(items, noon + 2 * day, Some(5), "alice");
    let grouped: Vec<bool> = shown.iter().map(|row| row.grouped).collect();
    assert_eq!(grouped, [false, true, false, false, false, false]);
    let days: Vec<Option<String>> = shown.iter().map(|row| row.day.clone()).collect();
    assert!(days[0].is_some());
    assert!(days[1..4].iter().all(Option::is_none));
    assert_eq!(days[4].as_deref(), Some("Yesterday"));
    let unread: Vec<bool> = shown.iter().map(|row| row.first_unread).collect();
    assert_eq!(unread, [false, false, false, false, false, true]);
    // Never read: unread from the first message of someone else.
    let never = rows(
        shown.iter().map(|row| row.item.clone()).collect(),
        noon,
        None,
        "alice",
    );
    assert!(never[3].first_unread && never.iter().filter(|row| row.first_unread).count() == 1);

    // The figure: rows of 10,000 messages.
    let many: Vec<TimelineItem> = (1..=10_000)
        .map(|id| {
            text_item(
                id,
                if id % 3 == 0 { "bob" } else { "alice" },
                noon + id as u64 * 30_000,
                "words",
            )
        })
        .collect();
    let started = now();
    let shown = rows(many, noon, Some(9_000), "alice");
    console_log!(
        "figure: rows of {} messages in {:.1} ms in Chromium",
        shown.len(),
        now() - started
    );
}

#[wasm_bindgen_test]
async fn the_search_panel_finds_counts_and_says_when_nothing_matches() {
    let chat = Chat::new();
    let room = RoomId([3; 32]);
    let items: Vec<TimelineItem> = (1..=10_000)
        .map(|id| {
            let text = if id % 1_000 == 0 {
                format!("ferry to the island, trip {id}")
            } else {
                format!("message {id} about lunch and the weather")
            };
            text_item(id, "bob", 1_000 * id as u64, &text)
        })
        .collect();
    let started = now();
    assert!(chat.search.index_timeline(room, &items));
    console_log!(
        "figure: indexing 10,000 messages in {:.0} ms in Chromium",
        now() - started
    );
    let root = container();
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        provide_context(chat);
        view! { <SearchPanel /> }
    });
    let input = one(&root, "search-input");
    type_into(&input, "island fer");
    settle().await;
    let count = one(&root, "search-count");
    assert_eq!(count.inner_text(), "10 messages");
    let results = all(&root, "search-result");
    assert_eq!(results.len(), 10);
    assert!(
        results[0].inner_text().contains("trip 10000"),
        "newest first"
    );
    console_log!(
        "figure: search over 10,000 messages in {} ms in Chromium",
        count.get_attribute("data-ms").unwrap_or_default()
    );
    for (query, expected) in [("weather", 50), ("lunch weather message", 50)] {
        type_into(&input, query);
        settle().await;
        assert_eq!(all(&root, "search-result").len(), expected, "{query}");
    }
    type_into(&input, "submarine");
    settle().await;
    assert_eq!(
        one(&root, "search-empty").inner_text(),
        "No messages match."
    );
    type_into(&input, "");
    settle().await;
    assert!(all(&root, "search-empty").is_empty() && all(&root, "search-results").is_empty());
}
