//! The browser client of the end-to-end encrypted chat (Leptos, client-side rendered).
//!
//! Keys are derived from the password with Argon2id in the browser; the identity secrets are
//! unwrapped here and never leave the tab. Every message is encrypted and signed before it is
//! sent, and every message, log entry and key envelope received is checked with `common`
//! before anything is shown.

pub mod account;
pub mod admin;
pub mod attachments;
pub mod attention;
pub mod chat;
pub mod components;
pub mod decimal;
pub mod http;
pub mod passkeys;
pub mod rooms;
pub mod search;
pub mod socket;
pub mod storage;
pub mod trust;

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::auth::AuthScreen;
use crate::components::chat_screen::chat_screen;
use crate::components::deferred::deferred;
use crate::components::unlock::UnlockScreen;

/// The whole app: the log-in screen, the unlock screen of a returning tab, or the chat once
/// keys are unlocked.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::new();
    chat.invite.set(admin::invite_from_location());
    provide_context(chat);
    leptos::task::spawn_local(async move { chat.detect_session().await });
    // The chat screen's chunk is fetched while the log-in screen is shown. A failure here is
    // shown (with a retry) when the chat screen is, so it is not reported twice.
    leptos::task::spawn_local(async {
        let _ = components::chat_screen::preload_chat_screen().await;
    });
    // Memos, so that replacing the session (a new wrap key after a password change) does not
    // rebuild the screen.
    let logged_in = Memo::new(move |_| chat.session.with(Option::is_some));
    let locked = Memo::new(move |_| chat.locked.with(Option::is_some));
    view! {
        <main class="app">
            {move || {
                if logged_in.get() {
                    deferred(chat_screen).into_any()
                } else if locked.get() {
                    view! { <UnlockScreen /> }.into_any()
                } else {
                    view! { <AuthScreen /> }.into_any()
                }
            }}
        </main>
    }
}
