//! The selected room: header (name, topic, key epoch, pending rotation), members and
//! administration, live messages, and the composer.

use common::api::PendingJoinRequest;
use common::membership::{Role, RoomId, RoomPolicy, RotationSchedule};
use leptos::html;
use leptos::prelude::*;

use crate::chat::{Chat, ShownMessage};
use crate::components::attachment::{dropped_file, AttachButton, AttachmentView, DroppedFiles};
use crate::components::members::{MemberLine, MemberList};
use crate::components::notices::TrustWarnings;
use crate::components::room_admin::RoomAdmin;

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
    let messages = Memo::new(move |_| {
        let room_id = chat.selected.get()?;
        chat.rooms
            .with(|rooms| rooms.get(&room_id).map(|view| view.messages.clone()))
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
fn RoomDetails(room: RoomSummary, messages: Memo<Option<Vec<ShownMessage>>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let room_id = room.room_id;
    let can_write = room.has_key && !room.removed && room.log_error.is_none();
    provide_context(DroppedFiles(RwSignal::new_local(None)));
    view! {
        <header class="room-header">
            <h2 data-testid="room-title">{room.name.clone()}</h2>
            {(!room.topic.is_empty()).then(|| view! { <span class="topic" data-testid="room-topic">{room.topic.clone()}</span> })}
            <span class="epoch" data-testid="room-epoch">
                {room.epoch.map(|epoch| format!("key epoch {epoch}")).unwrap_or_default()}
            </span>
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
                <MessageList room_id=room_id messages=messages />
                {(!room.has_key && room.log_error.is_none() && !room.removed).then(|| view! {
                    <p class="notice">
                        "Waiting for the room key from a member"
                        {(room.waiting > 0).then(|| format!(" ({} messages locked)", room.waiting))}
                        "…"
                    </p>
                })}
                <Composer room_id=room_id enabled=can_write />
            </div>
            <aside class="members">
                <h3>"Members"</h3>
                <MemberList room_id=room_id members=room.members.clone() my_role=room.my_role me=chat.me() />
                {room.my_role.filter(|_| !room.removed).map(|role| view! {
                    <RoomAdmin room_id=room_id my_role=role policy=room.policy schedule=room.schedule requests=room.join_requests.clone() />
                })}
            </aside>
        </div>
    }
}

/// The live list of messages; failed checks show as warnings, never as text.
#[component]
fn MessageList(room_id: RoomId, messages: Memo<Option<Vec<ShownMessage>>>) -> impl IntoView {
    let list = NodeRef::<html::Ol>::new();
    Effect::new(move |_| {
        messages.track();
        if let Some(element) = list.get() {
            element.set_scroll_top(element.scroll_height());
        }
    });
    view! {
        <ol
            class="messages"
            data-testid="message-list"
            node_ref=list
            on:dragover=move |event: web_sys::DragEvent| event.prevent_default()
            on:drop=move |event: web_sys::DragEvent| {
                if let (Some(file), Some(drops)) = (dropped_file(&event), use_context::<DroppedFiles>()) {
                    drops.0.set(Some(file));
                }
            }
        >
            <For
                each=move || messages.get().unwrap_or_default()
                key=ShownMessage::id
                children=move |message| match message {
                    ShownMessage::Verified { sender, sent_at_ms, text, .. } => view! {
                        <li class="message" data-testid="message">
                            <div class="meta">
                                <span class="sender">{sender}</span>
                                <time>{format_time(sent_at_ms)}</time>
                            </div>
                            <p class="body">{text}</p>
                        </li>
                    }
                    .into_any(),
                    ShownMessage::Attachment { sender, sent_at_ms, attachment, .. } => view! {
                        <li class="message" data-testid="message">
                            <div class="meta">
                                <span class="sender">{sender}</span>
                                <time>{format_time(sent_at_ms)}</time>
                            </div>
                            <AttachmentView room_id=room_id attachment=*attachment />
                        </li>
                    }
                    .into_any(),
                    ShownMessage::Warning { claimed_sender, reason, .. } => view! {
                        <li class="message warning" data-testid="message-warning" role="alert">
                            <strong>"⚠ Unverified message hidden"</strong>
                            <span>
                                {format!(" (claimed sender {claimed_sender}): {reason}")}
                            </span>
                        </li>
                    }
                    .into_any(),
                }
            />
        </ol>
    }
}

/// The message input and send button.
#[component]
fn Composer(room_id: RoomId, enabled: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let send = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() || sending.get_untracked() {
            return;
        }
        sending.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.send(room_id, &body).await {
                Ok(()) => {
                    text.try_set(String::new());
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            sending.try_set(false);
        });
    };
    view! {
        <form class="composer" on:submit=move |event| {
            event.prevent_default();
            send();
        }>
            // Enter sends; Shift+Enter breaks the line (and Enter while an input method is
            // composing a character does neither).
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
                    }
                }
            ></textarea>
            <button data-testid="send-button" type="submit" disabled=move || !enabled || sending.get()>
                "Send"
            </button>
            <AttachButton room_id=room_id enabled=enabled />
        </form>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="send-error">{move || error.get()}</p>
        </Show>
    }
}
