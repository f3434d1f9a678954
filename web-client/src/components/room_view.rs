//! The selected room: header (name, topic, key epoch, pending rotation), members and
//! administration, live messages, and the composer.

use common::api::PendingJoinRequest;
use common::membership::{Role, RoomId, RoomPolicy, RotationSchedule};
use leptos::html;
use leptos::prelude::*;

use client::{ItemContent, TimelineItem};
use common::message::{MessageBody, MessageHash};

use crate::chat::{now_ms, Chat};
use crate::components::attachment::{attach_button, attachment_view, dropped_file, DroppedFiles};
use crate::components::confirm::ConfirmButton;
use crate::components::deferred::deferred;
use crate::components::members::{MemberLine, MemberList};
use crate::components::notices::TrustWarnings;
use crate::components::room_admin::room_admin;

/// What the panel needs of the selected room, recomputed only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RoomSummary {
    room_id: RoomId,
    name: String,
    topic: String,
    log_error: Option<String>,
    members: Vec<MemberLine>,
    my_role: Option<Role>,
    epoch: Option<u64>,
    rotation_pending: bool,
    policy: RoomPolicy,
    schedule: RotationSchedule,
    join_requests: Vec<PendingJoinRequest>,
    has_key: bool,
    waiting: usize,
    not_shared: usize,
    removed: bool,
}

fn format_time(millis: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// The selected room, or a hint to create one.
#[component]
pub fn RoomPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let summary = Memo::new(move |_| {
        let room_id = chat.selected.get()?;
        let me = chat.me();
        chat.rooms.with(|rooms| {
            let view = rooms.get(&room_id)?;
            let mut summary = RoomSummary {
                room_id,
                name: view.display_name(&me),
                topic: view
                    .metadata
                    .as_ref()
                    .map(|m| m.topic.clone())
                    .unwrap_or_default(),
                log_error: None,
                members: Vec::new(),
                my_role: None,
                epoch: None,
                rotation_pending: false,
                policy: RoomPolicy::default(),
                schedule: RotationSchedule::default(),
                join_requests: view.join_requests.clone(),
                has_key: view.current_key().is_some(),
                waiting: view.pending.len(),
                not_shared: view.not_shared,
                removed: view.removed,
            };
            match &view.state {
                Ok(state) => {
                    summary.members = state
                        .members()
                        .iter()
                        .map(|(username, record)| MemberLine {
                            username: username.clone(),
                            role: record.role,
                            keys: record.keys,
                        })
                        .collect();
                    summary.my_role = state.member(&me).map(|record| record.role);
                    summary.epoch = Some(state.current_epoch());
                    summary.rotation_pending = state.rotation_pending();
                    summary.policy = *state.policy();
                    summary.schedule = *state.rotation_schedule();
                }
                Err(error) => summary.log_error = Some(error.clone()),
            }
            Some(summary)
        })
    });
    // The read marker of the room when it was opened, so that the "new messages" line stays
    // put while the user reads on (which moves the marker).
    let opened_at = Memo::new(move |_| {
        let room_id = chat.selected.get()?;
        Some((room_id, untrack(|| chat.read_marker(&room_id))))
    });
    let messages = Memo::new(move |_| {
        let room_id = chat.selected.get()?;
        let items = chat
            .rooms
            .with(|rooms| rooms.get(&room_id).map(client::timeline))?;
        let read_up_to = opened_at
            .get()
            .filter(|(opened, _)| *opened == room_id)
            .and_then(|(_, marker)| marker);
        Some(rows(items, now_ms(), read_up_to, &chat.me()))
    });

    view! {
        <section class="room">
            {move || match summary.get() {
                None => view! {
                    <div class="empty">
                        <p>"Create a room, message someone, or wait for someone to add you."</p>
                    </div>
                }
                .into_any(),
                Some(room) => view! { <RoomDetails room=room messages=messages /> }.into_any(),
            }}
        </section>
    }
}

/// The header, members, messages and composer of one room.
///
/// `room` is the summary at render time; `messages` is the live list of the selected room.
#[component]
fn RoomDetails(room: RoomSummary, messages: Memo<Option<Vec<Row>>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let room_id = room.room_id;
    let can_write = room.has_key && !room.removed && room.log_error.is_none();
    provide_context(DroppedFiles(RwSignal::new_local(None)));
    provide_context(ComposerState {
        text: RwSignal::new(String::new()),
        draft: RwSignal::new(None),
    });
    view! {
        <header class="room-header">
            <button class="secondary phone-only back" data-testid="back-button" type="button"
                aria-label="back to the rooms" on:click=move |_| {
                    chat.room_open.set(false);
                    chat.members_open.set(false);
                }>"←"</button>
            <h2 data-testid="room-title">{room.name.clone()}</h2>
            {(!room.topic.is_empty()).then(|| view! { <span class="topic" data-testid="room-topic">{room.topic.clone()}</span> })}
            <span class="epoch" data-testid="room-epoch">
                {room.epoch.map(|epoch| format!("key epoch {epoch}")).unwrap_or_default()}
            </span>
            <button class="secondary phone-only members-toggle" data-testid="members-button" type="button"
                aria-expanded=move || if chat.members_open.get() { "true" } else { "false" }
                aria-controls="room-members"
                on:click=move |_| chat.members_open.update(|open| *open = !*open)>
                {format!("Members ({})", room.members.len())}
            </button>
            {room.rotation_pending.then(|| view! {
                <span class="badge warning" data-testid="rotation-pending"
                    title="A member left or was removed; until an admin rotates the key, they could still read new messages">
                    "key pending rotation"
                </span>
            })}
        </header>
        <TrustWarnings room_id=Signal::derive(move || Some(room_id)) />
        {room.log_error.clone().map(|error| view! {
            <p class="warning" role="alert" data-testid="log-warning">{error}</p>
        })}
        {room.removed.then(|| view! {
            <p class="warning" role="status" data-testid="removed-notice">
                "You are no longer a member of this room. New messages are not sent to you."
            </p>
        })}
        <div class="room-body">
            <div class="conversation">
                {(room.not_shared > 0).then(|| view! {
                    <p class="notice" data-testid="history-not-shared">
                        {format!("{} earlier messages are from before you joined; this room does not share them.", room.not_shared)}
                    </p>
                })}
                <MessageList room_id=room_id rows=messages />
                {(!room.has_key && room.log_error.is_none() && !room.removed).then(|| view! {
                    <p class="notice">
                        "Waiting for the room key from a member"
                        {(room.waiting > 0).then(|| format!(" ({} messages locked)", room.waiting))}
                        "…"
                    </p>
                })}
                <Composer room_id=room_id enabled=can_write />
            </div>
            <aside class="members" id="room-members" class:open=move || chat.members_open.get()
                aria-label="members and administration">
                <div class="drawer-head">
                    <h3>"Members"</h3>
                    <button class="secondary phone-only" data-testid="close-members-button" type="button"
                        aria-label="close the members panel"
                        on:click=move |_| chat.members_open.set(false)>"✕"</button>
                </div>
                <MemberList room_id=room_id members=room.members.clone() my_role=room.my_role me=chat.me() />
                {room.my_role.filter(|_| !room.removed).map(|role| {
                    let (policy, schedule, requests) = (room.policy, room.schedule, room.join_requests.clone());
                    deferred(move || room_admin(room_id, role, policy, schedule, requests.clone()))
                })}
            </aside>
        </div>
    }
}

/// What the composer is writing besides a plain message: a reply to a message, or a new
/// text for one of the user's own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Draft {
    /// A reply to `target`, quoting `sender` and `excerpt` above the input.
    Reply {
        target: MessageHash,
        sender: String,
        excerpt: String,
    },
    /// An edit of `target`.
    Edit { target: MessageHash },
}

/// The composer's text and draft, shared with the message list (whose Reply and Edit buttons
/// fill them).
#[derive(Clone, Copy)]
struct ComposerState {
    text: RwSignal<String>,
    draft: RwSignal<Option<Draft>>,
}

/// Reactions offered by the picker; readers accept any short reaction.
const REACTIONS: [&str; 6] = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

/// Puts the keyboard focus in the composer.
fn focus_composer() {
    let input = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| {
            document
                .query_selector("[data-testid=\"message-input\"]")
                .ok()
                .flatten()
        });
    if let Some(input) = input
        .and_then(|element| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element).ok())
    {
        let _ = input.focus();
    }
}

/// Scrolls the message `id` into view, marks it for a moment and gives it the focus (a
/// reply's quote and a search result jump there); whether it is on the page.
pub fn jump_to_message(id: i64) -> bool {
    let element = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id(&format!("message-{id}")));
    let Some(element) = element
        .and_then(|element| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element).ok())
    else {
        return false;
    };
    element.scroll_into_view();
    let _ = element.focus();
    let _ = element.class_list().add_1("jumped");
    leptos::task::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(2_000).await;
        let _ = element.class_list().remove_1("jumped");
    });
    true
}

/// One line of the message list: a timeline item, the day it starts (its label) when it is
/// the first of its day, and whether it follows a message of the same sender closely enough
/// to be grouped under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The message, warning or refused relation.
    pub item: TimelineItem,
    /// "Today", "Yesterday" or the date, above the first message of a day.
    pub day: Option<String>,
    /// Same sender as the message before, on the same day, within [`GROUP_GAP_MS`].
    pub grouped: bool,
    /// The first message of others after the read marker the room had when it was opened:
    /// the "new messages" line goes above it.
    pub first_unread: bool,
}

/// Messages of one sender less than this many milliseconds apart are grouped.
pub const GROUP_GAP_MS: u64 = 5 * 60 * 1000;

/// The local calendar day of `millis` (since the Unix epoch), as a sortable number.
fn local_day(millis: u64) -> u32 {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    date.get_full_year() * 10_000 + (date.get_month() + 1) * 100 + date.get_date()
}

/// "Today", "Yesterday", or the date in the browser's language ("Monday, 30 November 2026").
fn day_label(millis: u64, today: u32, yesterday: u32) -> String {
    match local_day(millis) {
        day if day == today => "Today".to_owned(),
        day if day == yesterday => "Yesterday".to_owned(),
        _ => {
            let options = js_sys::Object::new();
            for (key, value) in [
                ("weekday", "long"),
                ("day", "numeric"),
                ("month", "long"),
                ("year", "numeric"),
            ] {
                let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
            }
            js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64))
                .to_locale_date_string("default", &options)
                .into()
        }
    }
}

/// The rows of `items`: day separators and grouping, in the browser's time zone, and where
/// the messages of others after `read_up_to` (a read marker; `None` for a room never read)
/// start, for `me`.
pub fn rows(items: Vec<TimelineItem>, now_ms: u64, read_up_to: Option<i64>, me: &str) -> Vec<Row> {
    let today = local_day(now_ms);
    let yesterday = local_day(now_ms.saturating_sub(24 * 60 * 60 * 1000));
    let mut rows = Vec::with_capacity(items.len());
    // The sender, time and day of the message before, when it was a message.
    let mut previous: Option<(String, u64, u32)> = None;
    // A room never read is unread from its start.
    let read_up_to = read_up_to.unwrap_or(0);
    let mut unread_found = false;
    for item in items {
        let first_unread = !unread_found && item.id > read_up_to && item.sender != me;
        unread_found |= first_unread;
        let Some(sent_at_ms) = item.sent_at_ms else {
            previous = None;
            rows.push(Row {
                item,
                day: None,
                grouped: false,
                first_unread,
            });
            continue;
        };
        let day = local_day(sent_at_ms);
        let new_day = previous
            .as_ref()
            .is_none_or(|(_, _, before)| *before != day);
        let grouped = previous.as_ref().is_some_and(|(sender, time, before)| {
            *sender == item.sender
                && *before == day
                && sent_at_ms.saturating_sub(*time) < GROUP_GAP_MS
        });
        previous = Some((item.sender.clone(), sent_at_ms, day));
        rows.push(Row {
            day: new_day.then(|| day_label(sent_at_ms, today, yesterday)),
            grouped: grouped && !first_unread,
            first_unread,
            item,
        });
    }
    rows
}

/// How close to the bottom (in pixels) the list counts as showing the latest messages, and
/// how close to the top a scroll loads the older page.
const BOTTOM_SLACK_PX: i32 = 48;
const LOAD_OLDER_PX: i32 = 400;

/// The live list of messages with their edits, deletions and reactions applied; failed
/// checks and refused edits show as warnings, never as text. It opens at the newest page,
/// loads older pages when scrolled near the top (keeping what is on screen in place), stays
/// at the bottom while the user is there, and offers "Jump to latest" otherwise.
#[component]
fn MessageList(room_id: RoomId, rows: Memo<Option<Vec<Row>>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let list = NodeRef::<html::Ol>::new();
    let at_bottom = RwSignal::new(true);
    let loading = RwSignal::new(false);
    let load_error = RwSignal::new(None::<String>);
    // The distance from the list's bottom to what was on screen when an older page was
    // handed to the client core: restored once it is drawn.
    let keep_from_bottom = StoredValue::new(None::<i32>);
    // Reading: while the end of the list is on screen in a visible tab, the room is read up
    // to its newest message.
    let visible = RwSignal::new(crate::attention::page_visible());
    let listener = window_event_listener_untyped("visibilitychange", move |_| {
        visible.set(crate::attention::page_visible());
    });
    on_cleanup(move || listener.remove());
    Effect::new(move |_| {
        rows.track();
        if at_bottom.get() && visible.get() {
            let newest = chat
                .rooms
                .with_untracked(|rooms| rooms.get(&room_id).and_then(client::Room::newest_id));
            if let Some(newest) = newest {
                chat.mark_read(room_id, newest);
            }
        }
    });
    let has_older = Memo::new(move |_| {
        chat.rooms.with(|rooms| {
            rooms
                .get(&room_id)
                .is_some_and(|room| room.oldest_loaded_id.is_some())
        })
    });
    Effect::new(move |_| {
        rows.track();
        // After the list is drawn; by then the room may have been closed (its signals
        // disposed), hence the `try_` reads.
        request_animation_frame(move || {
            let Some(element) = list.try_get_untracked().flatten() else {
                return;
            };
            if let Some(distance) = keep_from_bottom.try_get_value().flatten() {
                keep_from_bottom.try_set_value(None);
                element.set_scroll_top(element.scroll_height() - distance);
            } else if at_bottom.try_get_untracked() == Some(true) {
                element.set_scroll_top(element.scroll_height());
            }
        });
    });
    let load_older = move || {
        if loading.get_untracked() || !has_older.get_untracked() {
            return;
        }
        loading.set(true);
        load_error.set(None);
        leptos::task::spawn_local(async move {
            let keep = move || {
                if let Some(element) = list.try_get_untracked().flatten() {
                    keep_from_bottom
                        .try_set_value(Some(element.scroll_height() - element.scroll_top()));
                }
            };
            if let Err(error) = chat.load_older(room_id, keep).await {
                keep_from_bottom.try_set_value(None);
                load_error.try_set(Some(format!("Older messages could not be loaded: {error}")));
            }
            loading.try_set(false);
        });
    };
    let jump_to_latest = move || {
        at_bottom.set(true);
        if let Some(element) = list.get_untracked() {
            element.set_scroll_top(element.scroll_height());
        }
    };
    view! {
        <div class="message-scroller">
            <ol
                class="messages"
                data-testid="message-list"
                aria-label="messages"
                aria-busy=move || if loading.get() { "true" } else { "false" }
                node_ref=list
                on:scroll=move |_| {
                    let Some(element) = list.get_untracked() else {
                        return;
                    };
                    let from_bottom = element.scroll_height() - element.scroll_top() - element.client_height();
                    at_bottom.set(from_bottom < BOTTOM_SLACK_PX);
                    if element.scroll_top() < LOAD_OLDER_PX {
                        load_older();
                    }
                }
                on:dragover=move |event: web_sys::DragEvent| event.prevent_default()
                on:drop=move |event: web_sys::DragEvent| {
                    if let (Some(file), Some(drops)) = (dropped_file(&event), use_context::<DroppedFiles>()) {
                        drops.0.set(Some(file));
                    }
                }
            >
                <li class="history-edge">
                    {move || if has_older.get() {
                        view! {
                            <button class="secondary" data-testid="load-older-button" type="button"
                                disabled=move || loading.get() on:click=move |_| load_older()>
                                {move || if loading.get() { "Loading older messages…" } else { "Load older messages" }}
                            </button>
                        }
                        .into_any()
                    } else if rows.with(|rows| rows.as_ref().is_some_and(|rows| !rows.is_empty())) {
                        view! {
                            <span class="history-start" data-testid="history-start">"This is the start of the room's history."</span>
                        }
                        .into_any()
                    } else {
                        view! {
                            <span class="history-start" data-testid="empty-room">"No messages yet. Write the first one below: it is encrypted before it leaves this browser."</span>
                        }
                        .into_any()
                    }}
                    <Show when=move || load_error.get().is_some()>
                        <p class="error" role="alert" data-testid="load-older-error">{move || load_error.get()}</p>
                    </Show>
                </li>
                <For
                    each=move || rows.get().unwrap_or_default()
                    key=|row| (row.item.id, row.item.revision, row.grouped, row.day.clone(), row.first_unread)
                    children=move |row| view! {
                        {row.first_unread.then(|| view! {
                            <li class="new-messages" data-testid="new-messages-line"><span>"New messages"</span></li>
                        })}
                        {row.day.clone().map(|day| view! {
                            <li class="day-separator" data-testid="day-separator">
                                <span>{day}</span>
                            </li>
                        })}
                        <MessageItem room_id=room_id item=row.item grouped=row.grouped />
                    }
                />
            </ol>
            <Show when=move || !at_bottom.get()>
                <button class="jump-to-latest" data-testid="jump-to-latest-button" type="button"
                    on:click=move |_| jump_to_latest()>"↓ Jump to latest"</button>
            </Show>
        </div>
    }
}

/// One message: sender, time, what it answers, its text or attachment (or the placeholder of
/// a deleted one, or a warning), its reactions, and the actions on it.
#[component]
fn MessageItem(room_id: RoomId, item: TimelineItem, grouped: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let me = chat.me();
    let id = item.id;
    let element_id = format!("message-{id}");
    let (Some(hash), Some(sent_at_ms)) = (item.hash, item.sent_at_ms) else {
        let reason = match &item.content {
            ItemContent::Warning(reason) => reason.clone(),
            _ => String::new(),
        };
        return view! {
            <li class="message warning" data-testid="message-warning" role="alert" id=element_id>
                <strong>"⚠ Unverified message hidden"</strong>
                <span>{format!(" (claimed sender {}): {reason}", item.sender)}</span>
            </li>
        }
        .into_any();
    };
    let composer = expect_context::<ComposerState>();
    let failure = RwSignal::new(None::<String>);
    let picking = RwSignal::new(false);
    let send = move |body: MessageBody| {
        failure.set(None);
        leptos::task::spawn_local(async move {
            if let Err(error) = chat.send(room_id, body).await {
                failure.try_set(Some(error.to_string()));
            }
        });
    };
    let own = item.sender == me;
    let deleted = matches!(item.content, ItemContent::Deleted);
    let text = match &item.content {
        ItemContent::Text(text) => Some(text.clone()),
        _ => None,
    };
    let excerpt = match &item.content {
        ItemContent::Text(text) => text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect(),
        ItemContent::Attachment(attachment) => format!("📎 {}", attachment.name),
        _ => String::new(),
    };
    let reply_sender = item.sender.clone();
    let edit_text = text.clone();
    let quote = item.reply_to.clone().map(|reply| match reply.quoted {
        Some(quoted) => view! {
            <button class="reply-quote" data-testid="reply-quote" type="button"
                aria-label=format!("reply to {}: {}; show that message", quoted.sender, quoted.excerpt)
                on:click=move |_| { jump_to_message(quoted.id); }>
                <span class="quoted-sender">{quoted.sender.clone()}</span>
                <span class="quoted-text">{quoted.excerpt.clone()}</span>
            </button>
        }
        .into_any(),
        None => view! {
            <span class="reply-quote" data-testid="reply-quote">"reply to an older message"</span>
        }
        .into_any(),
    });
    let reactions = item
        .reactions
        .iter()
        .map(|count| {
            let mine = count.senders.contains(&me);
            let reaction = count.reaction.clone();
            let who = count.senders.join(", ");
            view! {
                <button class="reaction" class:mine=mine data-testid="reaction" type="button"
                    aria-pressed=if mine { "true" } else { "false" }
                    aria-label=format!("{reaction} by {who}")
                    title=who.clone()
                    disabled=deleted
                    on:click=move |_| send(MessageBody::Reaction {
                        target: hash,
                        reaction: reaction.clone(),
                        added: !mine,
                    })>
                    {count.reaction.clone()}" "
                    <span data-testid="reaction-count">{count.senders.len()}</span>
                </button>
            }
        })
        .collect_view();
    view! {
        <li class="message" class:grouped=grouped data-testid="message" id=element_id tabindex="-1">
            <div class="meta">
                <span class="sender" class:visually-hidden=grouped>{item.sender.clone()}</span>
                <time>{format_time(sent_at_ms)}</time>
                {item.edited.then(|| view! { <span class="edited" data-testid="message-edited">"(edited)"</span> })}
            </div>
            {quote}
            {match item.content.clone() {
                ItemContent::Text(text) => view! { <p class="body" data-testid="message-body">{text}</p> }.into_any(),
                ItemContent::Attachment(attachment) => deferred(move || attachment_view(room_id, (*attachment).clone())).into_any(),
                ItemContent::Deleted => view! {
                    <p class="body deleted" data-testid="message-deleted">"This message was deleted."</p>
                }
                .into_any(),
                ItemContent::Warning(_) => ().into_any(),
            }}
            <div class="reactions">{reactions}</div>
            {(!deleted).then(|| view! {
                <div class="actions" role="toolbar" aria-label="message actions">
                    <button class="link" data-testid="reply-button" type="button" on:click=move |_| {
                        composer.draft.set(Some(Draft::Reply {
                            target: hash,
                            sender: reply_sender.clone(),
                            excerpt: excerpt.clone(),
                        }));
                        focus_composer();
                    }>"Reply"</button>
                    <button class="link" data-testid="react-button" type="button"
                        aria-expanded=move || if picking.get() { "true" } else { "false" }
                        on:click=move |_| picking.update(|open| *open = !*open)>"React"</button>
                    {(own && text.is_some()).then(|| view! {
                        <button class="link" data-testid="edit-button" type="button" on:click=move |_| {
                            composer.text.set(edit_text.clone().unwrap_or_default());
                            composer.draft.set(Some(Draft::Edit { target: hash }));
                            focus_composer();
                        }>"Edit"</button>
                    })}
                    {own.then(|| view! {
                        <ConfirmButton label="Delete" class="link danger" testid="delete-message-button"
                            question="Delete this message for everyone?"
                            on_confirm=Callback::new(move |()| send(MessageBody::Delete { target: hash })) />
                    })}
                </div>
                <Show when=move || picking.get()>
                    <div class="reaction-picker" data-testid="reaction-picker" role="group" aria-label="pick a reaction">
                        {REACTIONS.iter().map(|reaction| view! {
                            <button class="secondary" data-testid="reaction-option" type="button" aria-label=*reaction
                                on:click=move |_| {
                                    picking.set(false);
                                    send(MessageBody::Reaction {
                                        target: hash,
                                        reaction: (*reaction).to_owned(),
                                        added: true,
                                    });
                                }>{*reaction}</button>
                        }).collect_view()}
                    </div>
                </Show>
            })}
            <Show when=move || failure.get().is_some()>
                <p class="error" role="alert" data-testid="message-action-error">{move || failure.get()}</p>
            </Show>
        </li>
    }
    .into_any()
}

/// The message input and send button, with the reply or edit under way above them.
#[component]
fn Composer(room_id: RoomId, enabled: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let ComposerState { text, draft } = expect_context::<ComposerState>();
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let cancel = move || {
        if matches!(draft.get_untracked(), Some(Draft::Edit { .. })) {
            text.set(String::new());
        }
        draft.set(None);
    };
    let send = move || {
        let written = text.get_untracked();
        if written.trim().is_empty() || sending.get_untracked() {
            return;
        }
        let body = match draft.get_untracked() {
            None => MessageBody::Text(written),
            Some(Draft::Reply { target, .. }) => MessageBody::Reply {
                target,
                text: written,
            },
            Some(Draft::Edit { target }) => MessageBody::Edit {
                target,
                text: written,
            },
        };
        sending.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.send(room_id, body).await {
                Ok(()) => {
                    text.try_set(String::new());
                    draft.try_set(None);
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            sending.try_set(false);
        });
    };
    view! {
        {move || draft.get().map(|current| {
            let what = match current {
                Draft::Reply { sender, excerpt, .. } => format!("Replying to {sender}: {excerpt}"),
                Draft::Edit { .. } => "Editing your message".to_owned(),
            };
            view! {
                <div class="composer-context" data-testid="composer-context" role="status">
                    <span>{what}</span>
                    <button class="link" data-testid="composer-cancel-button" type="button"
                        on:click=move |_| cancel()>"Cancel"</button>
                </div>
            }
        })}
        <form class="composer" on:submit=move |event| {
            event.prevent_default();
            send();
        }>
            // Enter sends; Shift+Enter breaks the line (and Enter while an input method is
            // composing a character does neither); Escape drops a reply or edit.
            <textarea
                data-testid="message-input"
                rows="1"
                aria-label="message"
                placeholder=if enabled { "Write an encrypted message (Shift+Enter for a new line)" } else { "Waiting for the room key" }
                disabled=!enabled
                maxlength="16000"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
                        event.prevent_default();
                        send();
                    } else if event.key() == "Escape" {
                        cancel();
                    }
                }
            ></textarea>
            <button data-testid="send-button" type="submit" disabled=move || !enabled || sending.get()>
                {move || if matches!(draft.get(), Some(Draft::Edit { .. })) { "Save" } else { "Send" }}
            </button>
            {deferred(move || attach_button(room_id, enabled))}
        </form>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="send-error">{move || error.get()}</p>
        </Show>
    }
}
