//! The sidebar: create a room, start a direct conversation, and the list of rooms with
//! their decrypted names (direct conversations by the other person's name).

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::deferred::deferred;
use crate::search::search_panel;

/// "New room" and "Message a person" forms and the list of the user's rooms.
#[component]
pub fn RoomList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let create = move || {
        let room_name = name.get_untracked();
        if room_name.trim().is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.create_room(&room_name).await {
                Ok(()) => name.set(String::new()),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            busy.set(false);
        });
    };
    let dm_name = RwSignal::new(String::new());
    let dm_busy = RwSignal::new(false);
    let start_dm = move || {
        let username = dm_name.get_untracked();
        if username.trim().is_empty() || dm_busy.get_untracked() {
            return;
        }
        dm_busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.message_user(&username).await {
                Ok(()) => dm_name.set(String::new()),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            dm_busy.set(false);
        });
    };
    let rooms = move || {
        let me = chat.me();
        chat.rooms.with(|rooms| {
            rooms
                .values()
                .map(|view| {
                    let direct = view
                        .metadata
                        .as_ref()
                        .is_some_and(|metadata| metadata.direct);
                    (view.room_id, view.display_name(&me), direct)
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <aside class="sidebar">
            <form class="new-room" on:submit=move |event| {
                event.prevent_default();
                create();
            }>
                <input
                    data-testid="room-name-input"
                    aria-label="new room name"
                    type="text"
                    placeholder="New room name"
                    maxlength="100"
                    prop:value=move || name.get()
                    on:input=move |event| name.set(event_target_value(&event))
                />
                <button data-testid="create-room-button" type="submit" disabled=move || busy.get()>
                    "Create"
                </button>
            </form>
            <form class="new-room" on:submit=move |event| {
                event.prevent_default();
                start_dm();
            }>
                <input
                    data-testid="dm-username-input"
                    aria-label="username to message"
                    type="text"
                    placeholder="Message a person"
                    autocapitalize="none"
                    prop:value=move || dm_name.get()
                    on:input=move |event| dm_name.set(event_target_value(&event))
                />
                <button data-testid="dm-button" type="submit" disabled=move || dm_busy.get()>
                    "Message"
                </button>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            {deferred(search_panel)}
            <crate::attention::NotificationSetting />
            <ul class="room-list" data-testid="room-list">
                <For
                    each=rooms
                    key=|(room_id, name, direct)| (*room_id, name.clone(), *direct)
                    children=move |(room_id, room_name, direct)| {
                        view! {
                            <li
                                data-testid="room-item"
                                class:selected=move || chat.selected.get() == Some(room_id)
                                on:click=move |_| {
                                    chat.selected.set(Some(room_id));
                                    chat.room_open.set(true);
                                    chat.members_open.set(false);
                                    // Opening a room is acting in it: its members are pinned.
                                    leptos::task::spawn_local(async move {
                                        chat.open_room(room_id).await;
                                    });
                                }
                            >
                                <span class="room-icon" aria-hidden="true">{if direct { "@" } else { "#" }}</span>
                                <span class=move || { if chat.unread(&room_id).count > 0 { "room-name unread" } else { "room-name" } }>{room_name}</span>
                                {move || {
                                    let unread = chat.unread(&room_id);
                                    (unread.count > 0).then(|| {
                                        let shown = if unread.more {
                                            format!("{}+", unread.count)
                                        } else {
                                            unread.count.to_string()
                                        };
                                        view! {
                                            <span class="unread-count" data-testid="unread-count">
                                                {shown}<span class="visually-hidden">" unread"</span>
                                            </span>
                                        }
                                    })
                                }}
                            </li>
                        }
                    }
                />
            </ul>
        </aside>
    }
}
