//! The unlock screen of a returning tab: the session is still valid, so only the password is
//! needed to unwrap the keys (no second factor again).

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::notices::TrustWarnings;

/// Asks for the password of the account whose session this browser still holds.
#[component]
pub fn UnlockScreen() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let username = move || {
        chat.locked.with(|me| {
            me.as_ref()
                .map(|me| me.username.clone())
                .unwrap_or_default()
        })
    };
    let unlock = move || {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let secret = password.get_untracked();
        leptos::task::spawn_local(async move {
            let result = chat.unlock(&secret).await;
            busy.try_set(false);
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
        });
    };
    view! {
        <section class="auth card">
            <h1>"Welcome back"</h1>
            <TrustWarnings room_id=Signal::derive(|| None) />
            <p class="tagline">
                "You are still signed in as " <strong data-testid="unlock-username">{username}</strong>
                ". Your keys never leave this browser, so enter your password to unlock them."
            </p>
            <form on:submit=move |event| {
                event.prevent_default();
                unlock();
            }>
                <label>
                    "Password"
                    <input
                        data-testid="unlock-password-input"
                        type="password"
                        autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |event| password.set(event_target_value(&event))
                    />
                </label>
                <div class="buttons">
                    <button data-testid="unlock-button" type="submit" disabled=move || busy.get()>"Unlock"</button>
                    <button
                        type="button"
                        class="secondary"
                        data-testid="unlock-logout-button"
                        on:click=move |_| leptos::task::spawn_local(async move { chat.logout().await })
                    >
                        "Sign out"
                    </button>
                </div>
            </form>
            <Show when=move || busy.get()>
                <p class="progress" role="status"><span class="spinner"></span>"Deriving your keys from the password (Argon2id)…"</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="auth-error" role="alert">{move || error.get()}</p>
            </Show>
        </section>
    }
}
