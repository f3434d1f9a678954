//! The register / log-in screen, with visible progress while keys are derived.

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::notices::TrustWarnings;

/// Username and password form with "Log in" and "Create account" buttons. Registration and
/// log-in both run Argon2id in the browser, which takes a moment: a progress line says so.
#[component]
pub fn AuthScreen() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let progress = RwSignal::new(None::<&'static str>);
    let error = RwSignal::new(None::<String>);

    let run = move |register: bool| {
        if progress.get_untracked().is_some() {
            return;
        }
        let name = username.get_untracked().trim().to_lowercase();
        let secret = password.get_untracked();
        if name.is_empty() || secret.is_empty() {
            error.set(Some("enter a username and a password".into()));
            return;
        }
        error.set(None);
        progress.set(Some(if register {
            "Creating your keys and deriving the password key (Argon2id)…"
        } else {
            "Deriving your keys from the password (Argon2id)…"
        }));
        leptos::task::spawn_local(async move {
            let result = if register {
                chat.register(&name, &secret).await
            } else {
                chat.login(&name, &secret).await
            };
            // On success this screen is gone, so its signals may be disposed already.
            progress.try_set(None);
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
        });
    };

    let code = RwSignal::new(String::new());
    let submit_code = move || {
        let entered = code.get_untracked();
        if entered.trim().is_empty() || progress.get_untracked().is_some() {
            return;
        }
        error.set(None);
        progress.set(Some("Checking the code and unlocking your keys…"));
        leptos::task::spawn_local(async move {
            let result = chat.submit_login_code(&entered).await;
            progress.try_set(None);
            code.try_set(String::new());
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
        });
    };
    let use_passkey = move |_| {
        if progress.get_untracked().is_some() {
            return;
        }
        error.set(None);
        progress.set(Some("Waiting for your passkey, then unlocking your keys…"));
        leptos::task::spawn_local(async move {
            let result = chat.submit_login_passkey().await;
            progress.try_set(None);
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
        });
    };
    let waiting_for_code = move || chat.pending_login.with(Option::is_some);
    let passkey_offered = move || {
        chat.pending_login.with(|pending| {
            pending
                .as_ref()
                .is_some_and(|p| p.passkey_options.is_some())
        })
    };

    view! {
        <section class="auth card">
            <h1>"End-to-end encrypted chat"</h1>
            <TrustWarnings room_id=Signal::derive(|| None) />
            <Show when=move || chat.notice.get().is_some()>
                <p class="notice" role="status" data-testid="auth-notice">{move || chat.notice.get()}</p>
            </Show>
            <Show when=waiting_for_code>
                <form class="totp-step" on:submit=move |event| {
                    event.prevent_default();
                    submit_code();
                }>
                    <label>
                        "Code from your authenticator app (or a recovery code)"
                        <input
                            data-testid="totp-login-input"
                            type="text"
                            inputmode="numeric"
                            autocomplete="one-time-code"
                            prop:value=move || code.get()
                            on:input=move |event| code.set(event_target_value(&event))
                        />
                    </label>
                    <div class="buttons">
                        <button data-testid="totp-login-button" type="submit" disabled=move || progress.get().is_some()>
                            "Verify"
                        </button>
                        <Show when=passkey_offered>
                            <button data-testid="passkey-login-button" type="button" disabled=move || progress.get().is_some()
                                on:click=use_passkey>
                                "Use a passkey"
                            </button>
                        </Show>
                        <button type="button" class="secondary" on:click=move |_| chat.pending_login.set(None)>
                            "Cancel"
                        </button>
                    </div>
                </form>
            </Show>
            <p class="tagline">
                "Your password and keys never leave this browser. The server stores only "
                "ciphertext it cannot read."
            </p>
            <form class:hidden=waiting_for_code on:submit=move |event| {
                event.prevent_default();
                run(false);
            }>
                <label>
                    "Username"
                    <input
                        data-testid="username-input"
                        type="text"
                        autocomplete="username"
                        autocapitalize="none"
                        spellcheck="false"
                        prop:value=move || username.get()
                        on:input=move |event| username.set(event_target_value(&event))
                    />
                </label>
                <label>
                    "Password"
                    <input
                        data-testid="password-input"
                        type="password"
                        autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |event| password.set(event_target_value(&event))
                    />
                </label>
                <div class="buttons">
                    <button
                        data-testid="login-button"
                        type="submit"
                        disabled=move || progress.get().is_some()
                    >
                        "Log in"
                    </button>
                    <button
                        data-testid="register-button"
                        type="button"
                        class="secondary"
                        disabled=move || progress.get().is_some()
                        on:click=move |_| run(true)
                    >
                        "Create account"
                    </button>
                </div>
            </form>
            <Show when=move || progress.get().is_some()>
                <p class="progress" role="status">
                    <span class="spinner"></span>
                    {move || progress.get()}
                </p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="auth-error" role="alert">
                    {move || error.get()}
                </p>
            </Show>
        </section>
    }
}
