//! What asks for the user's attention: unread counts (from the read markers kept in the
//! sealed client state, so every browser of the account agrees and the server learns nothing of
//! who read what), the unread total in the tab title, and browser notifications for messages
//! in rooms not in view (the permission is asked for by a button, never on load; they show the
//! sender and room, and the text only when the user opts in, a choice kept in this browser).

use client::{ShownMessage, Unread};
use common::membership::RoomId;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::chat::Chat;

/// The title of the page; the unread total goes in front.
pub const TITLE: &str = "End-to-end encrypted chat";
/// Where this browser keeps whether notifications may show message text.
const SHOW_TEXT_KEY: &str = "e2ee-chat.notifications.show-text";
/// A notification's body when it may not show the text.
const HIDDEN_BODY: &str = "New encrypted message";

/// What the browser allows for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Not asked yet.
    Ask,
    /// Allowed.
    Granted,
    /// Refused (only the browser's site settings can change it).
    Denied,
    /// This browser has no notifications.
    Unsupported,
}

/// What the browser allows now.
pub fn permission() -> Permission {
    let supported = web_sys::window().is_some_and(|window| {
        js_sys::Reflect::has(&window, &"Notification".into()).unwrap_or(false)
    });
    if !supported {
        return Permission::Unsupported;
    }
    match web_sys::Notification::permission() {
        web_sys::NotificationPermission::Granted => Permission::Granted,
        web_sys::NotificationPermission::Denied => Permission::Denied,
        _ => Permission::Ask,
    }
}

/// Asks the browser for permission (from a button press: browsers ignore it otherwise).
pub async fn request_permission() -> Permission {
    if permission() != Permission::Ask {
        return permission();
    }
    if let Ok(promise) = web_sys::Notification::request_permission() {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    permission()
}

/// Whether notifications in this browser may show the message text.
pub fn shows_text() -> bool {
    crate::storage::local_get(SHOW_TEXT_KEY).is_some_and(|value| value == "1")
}

/// Sets whether notifications in this browser may show the message text.
pub fn set_shows_text(show: bool) {
    crate::storage::local_set(SHOW_TEXT_KEY, if show { "1" } else { "0" });
}

/// Whether the page is in front of the user (the tab shown).
pub fn page_visible() -> bool {
    web_sys::window()
        .and_then(|window| window.document())
        .is_none_or(|document| document.visibility_state() == web_sys::VisibilityState::Visible)
}

impl Chat {
    /// The read marker of `room_id` in the client state (tracked).
    pub fn read_marker(&self, room_id: &RoomId) -> Option<i64> {
        self.machine.with(|machine| {
            machine
                .as_ref()
                .and_then(|machine| machine.state().read_markers.get(room_id).copied())
        })
    }

    /// How many messages of `room_id` are unread (tracked).
    pub fn unread(&self, room_id: &RoomId) -> Unread {
        let me = self.me();
        let marker = self.read_marker(room_id);
        self.rooms.with(|rooms| {
            rooms
                .get(room_id)
                .map(|room| room.unread(&me, marker))
                .unwrap_or_default()
        })
    }

    /// The unread messages of every room, and whether that is a minimum (tracked).
    pub fn unread_total(&self) -> Unread {
        let ids: Vec<RoomId> = self.rooms.with(|rooms| rooms.keys().copied().collect());
        ids.iter().fold(Unread::default(), |total, room_id| {
            let unread = self.unread(room_id);
            Unread {
                count: total.count + unread.count,
                more: total.more || unread.more,
            }
        })
    }

    /// Marks `room_id` read up to message `id` (the user sees its end); the client state is
    /// saved when the marker moved.
    pub fn mark_read(&self, room_id: RoomId, id: i64) {
        if self.update_state(|state| state.mark_read(room_id, id)) == Some(true) {
            self.schedule_save();
        }
    }

    /// Shows a notification for a message of `sender` that just arrived in `room_id`, when
    /// notifications are allowed and the room is not in view; a press on it brings the tab
    /// forward with the room open.
    pub fn notify(&self, room_id: RoomId, message_id: i64, sender: &str) {
        let in_view = self.selected.get_untracked() == Some(room_id) && page_visible();
        if in_view || permission() != Permission::Granted {
            return;
        }
        let me = self.me();
        let (room_name, direct, text) = self.rooms.with_untracked(|rooms| {
            let Some(room) = rooms.get(&room_id) else {
                return (String::new(), false, None);
            };
            let direct = room
                .metadata
                .as_ref()
                .is_some_and(|metadata| metadata.direct);
            let text = room
                .messages
                .iter()
                .rev()
                .find(|shown| shown.id() == message_id)
                .and_then(|shown| match shown {
                    ShownMessage::Verified { text, .. } => Some(text.clone()),
                    ShownMessage::Attachment { attachment, .. } => {
                        Some(format!("📎 {}", attachment.name))
                    }
                    ShownMessage::Warning { .. } => None,
                });
            (room.display_name(&me), direct, text)
        });
        let title = if direct {
            sender.to_owned()
        } else {
            format!("{sender} in {room_name}")
        };
        let body = match text {
            Some(text) if shows_text() => text.chars().take(200).collect(),
            _ => HIDDEN_BODY.to_owned(),
        };
        let options = web_sys::NotificationOptions::new();
        options.set_body(&body);
        options.set_tag(&room_id.to_hex());
        let Ok(notification) = web_sys::Notification::new_with_options(&title, &options) else {
            return;
        };
        let chat = *self;
        let on_click = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            if let Some(window) = web_sys::window() {
                let _ = window.focus();
            }
            chat.selected.set(Some(room_id));
            chat.room_open.set(true);
        });
        notification.set_onclick(Some(on_click.as_ref().unchecked_ref()));
        on_click.forget();
    }
}

/// Keeps the tab title at "(unread) End-to-end encrypted chat" while someone is logged in.
pub fn keep_title_current(chat: Chat) {
    Effect::new(move |_| {
        let total = chat.unread_total();
        let title = match (total.count, total.more) {
            (0, _) => TITLE.to_owned(),
            (count, false) => format!("({count}) {TITLE}"),
            (count, true) => format!("({count}+) {TITLE}"),
        };
        if let Some(document) = web_sys::window().and_then(|window| window.document()) {
            document.set_title(&title);
        }
    });
    on_cleanup(|| {
        if let Some(document) = web_sys::window().and_then(|window| window.document()) {
            document.set_title(TITLE);
        }
    });
}

/// The notification setting: a button that asks for permission, then whether notifications
/// show the message text.
#[component]
pub fn NotificationSetting() -> impl IntoView {
    let state = RwSignal::new(permission());
    let show_text = RwSignal::new(shows_text());
    view! {
        <div class="notification-setting">
            {move || match state.get() {
                Permission::Ask => view! {
                    <button class="secondary" data-testid="enable-notifications-button" type="button"
                        on:click=move |_| leptos::task::spawn_local(async move {
                            state.set(request_permission().await);
                        })>
                        "Enable notifications"
                    </button>
                }
                .into_any(),
                Permission::Granted => view! {
                    <label class="check">
                        <input data-testid="notification-text-toggle" type="checkbox"
                            prop:checked=move || show_text.get()
                            on:change=move |event| {
                                let checked = event_target_checked(&event);
                                set_shows_text(checked);
                                show_text.set(checked);
                            } />
                        "Show message text in notifications"
                    </label>
                }
                .into_any(),
                Permission::Denied => view! {
                    <p class="hint" data-testid="notifications-blocked">
                        "Notifications are blocked for this site in the browser's settings."
                    </p>
                }
                .into_any(),
                Permission::Unsupported => ().into_any(),
            }}
        </div>
    }
}
