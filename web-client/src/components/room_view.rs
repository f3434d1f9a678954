//! The selected room: members (add by username), live messages, and the composer.

use common::identity::Fingerprint;
use common::membership::{Role, RoomId};
use leptos::html;
use leptos::prelude::*;

use crate::chat::{Chat, ShownMessage};

/// One member as the member list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberLine {
    username: String,
    role: Role,
    fingerprint: String,
}

/// What the panel needs of the selected room, recomputed only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RoomSummary {
    room_id: RoomId,
    name: String,
    log_error: Option<String>,
    members: Vec<MemberLine>,
    my_role: Option<Role>,
    epoch: Option<u64>,
    has_key: bool,
    waiting: usize,
}

fn format_time(millis: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// The selected room, or a hint to create one.
#[component]
pub fn RoomPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let me = move || {
        chat.session
            .with_untracked(|session| session.as_ref().map(|s| s.username.clone()))
            .unwrap_or_default()
    };
    let summary = Memo::new(move |_| {
        let room_id = chat.selected.get()?;
        let my_name = me();
        chat.rooms.with(|rooms| {
            let view = rooms.get(&room_id)?;
            let (log_error, members, my_role, epoch) = match &view.state {
                Ok(state) => (
                    None,
                    state
                        .members()
                        .iter()
                        .map(|(username, record)| MemberLine {
                            username: username.clone(),
                            role: record.role,
                            fingerprint: Fingerprint::of(username, &record.keys).to_string(),
                        })
                        .collect(),
                    state.member(&my_name).map(|record| record.role),
                    Some(state.current_epoch()),
                ),
                Err(error) => (Some(error.clone()), Vec::new(), None, None),
            };
            Some(RoomSummary {
                room_id,
                name: view.display_name(),
                log_error,
                members,
                my_role,
                epoch,
                has_key: view.current_key().is_some(),
                waiting: view.pending.len(),
            })
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
                        <p>"Create a room, or wait for someone to add you to one."</p>
                    </div>
                }
                .into_any(),
                Some(room) => view! {
                    <RoomDetails room=room messages=messages />
                }
                .into_any(),
            }}
        </section>
    }
}

/// The header, members, messages and composer of one room.
///
/// `room` is the summary at render time; `messages` is the live list of the selected room.
#[component]
fn RoomDetails(room: RoomSummary, messages: Memo<Option<Vec<ShownMessage>>>) -> impl IntoView {
    let room_id = room.room_id;
    let can_add = matches!(room.my_role, Some(Role::Owner | Role::Admin));
    let member_lines = room.members.clone();
    view! {
        <header class="room-header">
            <h2>{room.name.clone()}</h2>
            <span class="epoch">
                {room.epoch.map(|epoch| format!("key epoch {epoch}")).unwrap_or_default()}
            </span>
        </header>
        {room.log_error.clone().map(|error| view! {
            <p class="warning" role="alert" data-testid="log-warning">{error}</p>
        })}
        <div class="room-body">
            <div class="conversation">
                <MessageList messages=messages />
                {(!room.has_key && room.log_error.is_none()).then(|| view! {
                    <p class="notice">
                        "Waiting for the room key from a member"
                        {(room.waiting > 0).then(|| format!(" ({} messages locked)", room.waiting))}
                        "…"
                    </p>
                })}
                <Composer room_id=room_id enabled=room.has_key />
            </div>
            <aside class="members">
                <h3>"Members"</h3>
                <ul data-testid="member-list">
                    {member_lines
                        .into_iter()
                        .map(|member| view! {
                            <li data-testid="member" title=format!("fingerprint {}", member.fingerprint)>
                                <span class="member-name">{member.username.clone()}</span>
                                <span class=format!("role role-{}", member.role.as_str())>
                                    {member.role.as_str()}
                                </span>
                            </li>
                        })
                        .collect_view()}
                </ul>
                {can_add.then(|| view! { <AddMember room_id=room_id /> })}
            </aside>
        </div>
    }
}

/// The live list of messages; failed checks show as warnings, never as text.
#[component]
fn MessageList(messages: Memo<Option<Vec<ShownMessage>>>) -> impl IntoView {
    let list = NodeRef::<html::Ol>::new();
    Effect::new(move |_| {
        messages.track();
        if let Some(element) = list.get() {
            element.set_scroll_top(element.scroll_height());
        }
    });
    view! {
        <ol class="messages" data-testid="message-list" node_ref=list>
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
            <input
                data-testid="message-input"
                type="text"
                placeholder=if enabled { "Write an encrypted message" } else { "Waiting for the room key" }
                disabled=!enabled
                maxlength="16000"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
            />
            <button data-testid="send-button" type="submit" disabled=move || !enabled || sending.get()>
                "Send"
            </button>
        </form>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="send-error">{move || error.get()}</p>
        </Show>
    }
}

/// Add a member by username (owners and admins).
#[component]
fn AddMember(room_id: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let username = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let add = move || {
        let name = username.get_untracked();
        if name.trim().is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.add_member(room_id, &name).await {
                Ok(()) => {
                    username.try_set(String::new());
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <form class="add-member" on:submit=move |event| {
            event.prevent_default();
            add();
        }>
            <input
                data-testid="member-username-input"
                type="text"
                placeholder="Add by username"
                autocapitalize="none"
                prop:value=move || username.get()
                on:input=move |event| username.set(event_target_value(&event))
            />
            <button data-testid="add-member-button" type="submit" disabled=move || busy.get()>
                "Add"
            </button>
        </form>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="add-member-error">{move || error.get()}</p>
        </Show>
    }
}
