//! Search in the browser: the index of `client::search`, fed with each room's timeline as it
//! changes, kept sealed in IndexedDB on this device (never sent to the server), and queried
//! from the sidebar; a result opens its room at the message, loading older pages until it is
//! there.

use client::search::{SearchHit, SearchIndex};
use common::membership::RoomId;
use common::OsRng;
use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::deferred::split_point;
use crate::storage;

/// How long index changes gather before the sealed index is saved, in milliseconds.
const SAVE_DELAY_MS: u32 = 3_000;
/// Older pages loaded at most to reach a result's message.
const MAX_PAGES_TO_RESULT: usize = 100;

/// The index of the logged-in account, with whether a save is scheduled.
#[derive(Clone, Copy)]
pub struct Search {
    index: StoredValue<SearchIndex>,
    save_scheduled: RwSignal<bool>,
    /// Bumped whenever the index changes, so open results refresh.
    pub changed: RwSignal<u64>,
}

impl Search {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            index: StoredValue::new(SearchIndex::default()),
            save_scheduled: RwSignal::new(false),
            changed: RwSignal::new(0),
        }
    }

    /// Indexes what a room's timeline now shows ([`SearchIndex::index_timeline`]); whether
    /// anything changed.
    pub fn index_timeline(&self, room_id: RoomId, items: &[client::TimelineItem]) -> bool {
        let changed = self
            .index
            .try_update_value(|index| index.index_timeline(room_id, items))
            .unwrap_or(false);
        if changed {
            self.changed.update(|changed| *changed += 1);
        }
        changed
    }

    /// Forgets the index (logging out): no decrypted text stays in the tab.
    pub fn clear(&self) {
        self.index.set_value(SearchIndex::default());
        self.changed.update(|changed| *changed += 1);
    }

    /// Runs `query` over the index (of `room`, or every room), with how long it took in
    /// milliseconds.
    pub fn query(&self, query: &str, room: Option<RoomId>) -> (Vec<SearchHit>, f64) {
        let started = crate::search::now();
        let hits = self.index.with_value(|index| index.search(query, room));
        (hits, crate::search::now() - started)
    }
}

impl Default for Search {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

impl Chat {
    /// Loads this browser's sealed index of the logged-in account (a missing or unreadable
    /// one starts empty: everything in it can be indexed again from the rooms).
    pub async fn load_search_index(&self) {
        let Ok(session) = self.session() else {
            return;
        };
        let sealed = storage::load_search_index(&session.username)
            .await
            .ok()
            .flatten();
        let index = sealed
            .and_then(|sealed| SearchIndex::open(&session.state_key, &sealed))
            .unwrap_or_default();
        self.search.index.set_value(index);
        self.search.changed.update(|changed| *changed += 1);
        let rooms: Vec<RoomId> = self
            .rooms
            .with_untracked(|rooms| rooms.keys().copied().collect());
        for room_id in rooms {
            self.index_room(room_id);
        }
    }

    /// Indexes what `room_id` now shows, and schedules a save when that changed anything.
    pub fn index_room(&self, room_id: RoomId) {
        let Some(items) = self
            .rooms
            .with_untracked(|rooms| rooms.get(&room_id).map(client::timeline))
        else {
            return;
        };
        if self.search.index_timeline(room_id, &items) {
            self.schedule_search_save();
        }
    }

    /// Drops a room that is gone from the index.
    pub fn unindex_room(&self, room_id: RoomId) {
        self.search
            .index
            .update_value(|index| index.remove_room(&room_id));
        self.search.changed.update(|changed| *changed += 1);
        self.schedule_search_save();
    }

    fn schedule_search_save(&self) {
        if self.search.save_scheduled.get_untracked() {
            return;
        }
        self.search.save_scheduled.set(true);
        let chat = *self;
        let generation = self.generation.get_untracked();
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(SAVE_DELAY_MS).await;
            chat.search.save_scheduled.set(false);
            if chat.generation.get_untracked() != generation {
                return;
            }
            let Ok(session) = chat.session() else {
                return;
            };
            let sealed = chat
                .search
                .index
                .with_value(|index| index.seal(&session.state_key, &mut OsRng));
            if let Err(error) = storage::save_search_index(&session.username, &sealed).await {
                web_sys::console::warn_1(&format!("search index not saved: {error}").into());
            }
        });
    }

    /// Opens `room_id` at message `message_id`: older pages are loaded until it is there, then
    /// it is scrolled into view and focused.
    pub async fn open_at_message(&self, room_id: RoomId, message_id: i64) {
        self.selected.set(Some(room_id));
        self.room_open.set(true);
        self.members_open.set(false);
        for _ in 0..MAX_PAGES_TO_RESULT {
            let loaded = self.rooms.with_untracked(|rooms| {
                rooms
                    .get(&room_id)
                    .is_some_and(|room| room.messages.iter().any(|shown| shown.id() == message_id))
            });
            if loaded {
                break;
            }
            match self.load_older(room_id, || {}).await {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
        // The room view draws it on the next frames.
        for _ in 0..40 {
            if crate::components::room_view::jump_to_message(message_id) {
                return;
            }
            gloo_timers::future::TimeoutFuture::new(50).await;
        }
    }
}

split_point! {
    /// [`SearchPanel`] as a split point (see [`crate::components::deferred`]).
    pub fn search_panel() {
        view! { <SearchPanel /> }.into_any()
    }
}

/// The search box, its scope and its results.
#[component]
pub fn SearchPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let query = RwSignal::new(String::new());
    let this_room = RwSignal::new(false);
    let results = Memo::new(move |_| {
        chat.search.changed.track();
        let text = query.get();
        if text.trim().is_empty() {
            return None;
        }
        let room = if this_room.get() {
            chat.selected.get()
        } else {
            None
        };
        Some(chat.search.query(&text, room))
    });
    let room_name = move |room_id: RoomId| {
        let me = chat.me();
        chat.rooms.with_untracked(|rooms| {
            rooms
                .get(&room_id)
                .map(|room| room.display_name(&me))
                .unwrap_or_default()
        })
    };
    view! {
        <search class="search" aria-label="search messages">
            <input
                data-testid="search-input"
                type="search"
                placeholder="Search messages"
                aria-label="search messages"
                prop:value=move || query.get()
                on:input=move |event| query.set(event_target_value(&event))
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    if event.key() == "Escape" {
                        query.set(String::new());
                    }
                }
            />
            <label class="check">
                <input data-testid="search-this-room" type="checkbox"
                    prop:checked=move || this_room.get()
                    on:change=move |event| this_room.set(event_target_checked(&event)) />
                "This room only"
            </label>
            {move || results.get().map(|(hits, millis)| {
                if hits.is_empty() {
                    return view! {
                        <p class="hint" data-testid="search-empty" role="status">"No messages match."</p>
                    }
                    .into_any();
                }
                let count = hits.len();
                view! {
                    <p class="hint" data-testid="search-count" role="status" data-ms=crate::decimal::fixed(millis, 2)>
                        {if count == 1 { "1 message".to_owned() } else { format!("{count} messages") }}
                    </p>
                    <ul class="search-results" data-testid="search-results">
                        {hits.into_iter().map(|hit| {
                            let room_id = hit.room_id;
                            let message_id = hit.message_id;
                            let excerpt: String = hit.text.chars().take(120).collect();
                            view! {
                                <li>
                                    <button class="search-result" data-testid="search-result" type="button"
                                        on:click=move |_| leptos::task::spawn_local(async move {
                                            chat.open_at_message(room_id, message_id).await;
                                        })>
                                        <span class="where">{format!("{} · {}", room_name(room_id), hit.sender)}</span>
                                        <span class="excerpt">{excerpt}</span>
                                    </button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            })}
        </search>
    }
}
