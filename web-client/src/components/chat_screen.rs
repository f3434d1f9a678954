//! The main screen once logged in: header with the user's fingerprint, room list, room.

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::deferred::{deferred, split_point};
use crate::components::notices::{JoinInvite, KeyWarnings, TrustWarnings};
use crate::components::room_list::RoomList;
use crate::components::room_view::RoomPanel;
use crate::components::security::SecurityScreen;

split_point! {
    /// [`ChatScreen`] as a split point (see [`crate::components::deferred`]).
    pub fn chat_screen() preload preload_chat_screen {
        view! { <ChatScreen /> }.into_any()
    }
}

/// Header, sidebar with rooms, and the selected room.
#[component]
pub fn ChatScreen() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let username = move || {
        chat.session
            .with(|session| session.as_ref().map(|s| s.username.clone()))
            .unwrap_or_default()
    };
    let fingerprint = move || {
        chat.session
            .with(|session| session.as_ref().map(|s| s.fingerprint.to_string()))
            .unwrap_or_default()
    };
    let showing_security = RwSignal::new(false);
    crate::attention::keep_title_current(chat);
    let kdf_time = move || {
        chat.kdf_millis
            .get()
            .map(|millis| format!("keys derived in {} ms", crate::decimal::fixed(millis, 0)))
    };
    view! {
        <header class="top">
            <h1 class="visually-hidden">"End-to-end encrypted chat"</h1>
            <div class="me">
                <strong data-testid="current-user">{username}</strong>
                <span class="kdf-time" data-testid="kdf-time">{kdf_time}</span>
            </div>
            <div class="fingerprint-box" title="Compare this with what your contacts see for you">
                <span class="label">"Your fingerprint"</span>
                <code data-testid="fingerprint">{fingerprint}</code>
            </div>
            <button
                data-testid="security-button"
                class="secondary"
                on:click=move |_| showing_security.update(|showing| *showing = !*showing)
            >
                {move || if showing_security.get() { "Back to chat" } else { "Security" }}
            </button>
            <button
                data-testid="logout-button"
                class="secondary"
                on:click=move |_| leptos::task::spawn_local(async move { chat.logout().await })
            >
                "Log out"
            </button>
        </header>
        <Show when=move || chat.error.get().is_some()>
            <p class="error banner" role="alert" data-testid="app-error">
                {move || chat.error.get()}
                <button class="link" on:click=move |_| chat.error.set(None)>
                    "dismiss"
                </button>
            </p>
        </Show>
        <TrustWarnings room_id=Signal::derive(|| None) />
        <KeyWarnings />
        <JoinInvite />
        <Show
            when=move || showing_security.get()
            fallback=move || view! {
                <div class="layout" class:room-open=move || chat.room_open.get()>
                    <RoomList />
                    <RoomPanel />
                </div>
            }
        >
            {deferred(security_screen)}
        </Show>
    }
}

split_point! {
    /// [`SecurityScreen`] as a split point (see [`crate::components::deferred`]).
    fn security_screen() {
        view! { <SecurityScreen /> }.into_any()
    }
}
