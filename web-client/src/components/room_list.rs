//! The sidebar: create a room, and the list of rooms with their decrypted names.

use leptos::prelude::*;

use crate::chat::Chat;

/// "New room" form and the list of the user's rooms.
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
    let rooms = move || {
        chat.rooms.with(|rooms| {
            rooms
                .values()
                .map(|view| (view.room_id, view.display_name()))
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
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <ul class="room-list" data-testid="room-list">
                <For
                    each=rooms
                    key=|(room_id, name)| (*room_id, name.clone())
                    children=move |(room_id, room_name)| {
                        view! {
                            <li
                                data-testid="room-item"
                                class:selected=move || chat.selected.get() == Some(room_id)
                                on:click=move |_| chat.selected.set(Some(room_id))
                            >
                                <span class="room-icon">"#"</span>
                                {room_name}
                            </li>
                        }
                    }
                />
            </ul>
        </aside>
    }
}
