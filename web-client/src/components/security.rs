//! The security screen: two-factor enrolment with a QR code and recovery codes, sessions,
//! login history and new-network notices, trusted networks, password change, account
//! deletion.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::api::{AccountResponse, SessionInfo, TotpSetupResponse};
use leptos::prelude::*;

use crate::chat::{Chat, ChatError};

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ChatError>>>>;

fn format_time(millis: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes()
    )
}

/// Everything the screen shows, reloaded after each action.
#[derive(Clone, Default)]
struct Loaded {
    account: Option<AccountResponse>,
    sessions: Vec<SessionInfo>,
}

/// The account security screen.
#[component]
pub fn SecurityScreen() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let loaded = RwSignal::new(Loaded::default());
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<String>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            let account = chat.account().await;
            let sessions = chat.sessions().await;
            match (account, sessions) {
                (Ok(account), Ok(sessions)) => {
                    loaded.try_set(Loaded {
                        account: Some(account),
                        sessions: sessions.sessions,
                    });
                }
                (Err(failure), _) | (_, Err(failure)) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    reload();
    let run = move |done: &'static str, task: Task| {
        error.set(None);
        status.set(None);
        leptos::task::spawn_local(async move {
            match task.await {
                Ok(()) => {
                    status.try_set(Some(done.to_owned()));
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            reload();
        });
    };
    let totp_enabled = move || loaded.with(|l| l.account.as_ref().is_some_and(|a| a.totp_enabled));
    view! {
        <div class="security card">
            <h1>"Security"</h1>
            <Show when=move || status.get().is_some()>
                <p class="notice" role="status" data-testid="security-status">{move || status.get()}</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="security-error">{move || error.get()}</p>
            </Show>
            <Notices loaded=loaded run=run />
            <section>
                <h2>"Two-factor authentication"</h2>
                <p data-testid="totp-status">
                    {move || if totp_enabled() {
                        format!("On. {} recovery codes left.", loaded.with(|l| l.account.as_ref().map_or(0, |a| a.recovery_codes_left)))
                    } else {
                        "Off. Add a code from an authenticator app to every login.".to_owned()
                    }}
                </p>
                {move || if totp_enabled() {
                    view! { <DisableTotp run=run /> }.into_any()
                } else {
                    view! { <EnrolTotp error=error reload=reload /> }.into_any()
                }}
            </section>
            <Passkeys loaded=loaded run=run reload=reload />
            <Sessions loaded=loaded run=run />
            <section>
                <h2>"Login history"</h2>
                <ul>
                    {move || loaded.with(|l| l.account.as_ref().map(|a| a.login_history.clone()).unwrap_or_default())
                        .into_iter()
                        .map(|event| view! {
                            <li data-testid="login-event">
                                <span>{format_time(event.at_ms)}</span>
                                <span>{event.ip.clone()}</span>
                                <span class=if event.result == "success" { "tag" } else { "tag bad" }>{event.result.clone()}</span>
                                {event.new_network.then(|| view! { <span class="tag bad">"new network"</span> })}
                                <span class="hint">{event.user_agent.clone()}</span>
                            </li>
                        })
                        .collect_view()}
                </ul>
            </section>
            <TrustedNetworks loaded=loaded run=run />
            <ChangePassword run=run />
            <DeleteAccount run=run />
        </div>
    }
}

/// New-network notices with a dismiss button.
#[component]
fn Notices(
    loaded: RwSignal<Loaded>,
    run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let notices = move || {
        loaded.with(|l| {
            l.account
                .as_ref()
                .map(|a| a.new_network_notices.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <Show when=move || !notices().is_empty()>
            <div class="warning banner" role="alert" data-testid="new-network-notice">
                <strong>"Sign-ins from new networks: "</strong>
                {move || notices().iter().map(|event| format!("{} at {}; ", event.ip, format_time(event.at_ms))).collect::<String>()}
                "Not you? Revoke the sessions below and change your password."
                <button class="secondary" data-testid="dismiss-notices-button"
                    on:click=move |_| run("Notices dismissed.", Box::pin(async move { chat.dismiss_notices().await }))>
                    "Dismiss"
                </button>
            </div>
        </Show>
    }
}

/// TOTP enrolment: QR code and secret, confirmation code, then the recovery codes once.
#[component]
fn EnrolTotp(
    error: RwSignal<Option<String>>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let setup = RwSignal::new(None::<TotpSetupResponse>);
    let code = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let recovery = RwSignal::new(Vec::<String>::new());
    let start = move |_| {
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.totp_setup().await {
                Ok(response) => {
                    setup.try_set(Some(response));
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    let enable = move || {
        let entered = code.get_untracked();
        let typed_password = password.get_untracked();
        error.set(None);
        leptos::task::spawn_local(async move {
            match chat.totp_enable(&entered, &typed_password).await {
                Ok(codes) => {
                    recovery.try_set(codes);
                    setup.try_set(None);
                    password.try_set(String::new());
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
        });
    };
    view! {
        <Show when=move || recovery.with(Vec::is_empty) fallback=move || view! {
            <div class="notice-card" data-testid="recovery-codes">
                <div>
                    <p><strong>"Two-factor authentication is on."</strong>" Save these recovery codes somewhere safe: each works once instead of a code, and they are shown only now."</p>
                    <div class="recovery-codes">
                        {move || recovery.get().into_iter().map(|code| view! { <code data-testid="recovery-code">{code}</code> }).collect_view()}
                    </div>
                    <button class="secondary" data-testid="recovery-codes-done" on:click=move |_| { recovery.set(Vec::new()); reload(); }>"I saved them"</button>
                </div>
            </div>
        }>
            {move || match setup.get() {
                None => view! { <button data-testid="totp-setup-button" on:click=start>"Set up two-factor authentication"</button> }.into_any(),
                Some(pending) => {
                    let image = format!("data:image/svg+xml;base64,{}", STANDARD.encode(pending.qr_svg.as_bytes()));
                    view! {
                        <div class="row">
                            <img class="qr" data-testid="totp-qr" src=image alt="QR code for your authenticator app" />
                            <div>
                                <p>"Scan the code with an authenticator app, or type this secret:"</p>
                                <code data-testid="totp-secret">{pending.secret_base32.clone()}</code>
                                <form on:submit=move |event| { event.prevent_default(); enable(); }>
                                    <input data-testid="totp-code-input" type="text" inputmode="numeric" autocomplete="one-time-code"
                                        placeholder="6-digit code" prop:value=move || code.get()
                                        on:input=move |event| code.set(event_target_value(&event)) />
                                    <input data-testid="totp-enable-password-input" type="password" placeholder="your password" autocomplete="current-password"
                                        aria-label="your password" prop:value=move || password.get()
                                        on:input=move |event| password.set(event_target_value(&event)) />
                                    <button data-testid="totp-enable-button" type="submit">"Turn on"</button>
                                </form>
                            </div>
                        </div>
                    }.into_any()
                }
            }}
        </Show>
    }
}

/// Turning TOTP off, with a current code and the password.
#[component]
fn DisableTotp(run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let code = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    view! {
        <form on:submit=move |event| {
            event.prevent_default();
            let entered = code.get_untracked();
            let typed_password = password.get_untracked();
            password.set(String::new());
            run("Two-factor authentication is off.", Box::pin(async move { chat.totp_disable(&entered, &typed_password).await }));
        }>
            <input data-testid="totp-disable-input" type="text" placeholder="current code" prop:value=move || code.get()
                on:input=move |event| code.set(event_target_value(&event)) />
            <input data-testid="totp-disable-password-input" type="password" placeholder="your password" autocomplete="current-password"
                aria-label="your password" prop:value=move || password.get()
                on:input=move |event| password.set(event_target_value(&event)) />
            <button class="secondary" data-testid="totp-disable-button" type="submit">"Turn off"</button>
        </form>
    }
}

/// Passkeys: the list with remove buttons, and adding one (with the password, and a code
/// when TOTP is on); the recovery codes when the first passkey is the account's first second
/// factor.
#[component]
fn Passkeys(
    loaded: RwSignal<Loaded>,
    run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let recovery = RwSignal::new(Vec::<String>::new());
    let adding = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let passkeys = move || {
        loaded.with(|l| {
            l.account
                .as_ref()
                .map(|a| a.passkeys.clone())
                .unwrap_or_default()
        })
    };
    let totp_enabled = move || loaded.with(|l| l.account.as_ref().is_some_and(|a| a.totp_enabled));
    let add = move || {
        let (typed_name, typed_password, typed_code) = (
            name.get_untracked(),
            password.get_untracked(),
            code.get_untracked(),
        );
        error.set(None);
        adding.set(true);
        leptos::task::spawn_local(async move {
            match chat
                .add_passkey(&typed_name, &typed_password, &typed_code)
                .await
            {
                Ok(codes) => {
                    name.try_set(String::new());
                    password.try_set(String::new());
                    code.try_set(String::new());
                    recovery.try_set(codes.unwrap_or_default());
                    reload();
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            adding.try_set(false);
        });
    };
    view! {
        <section>
            <h2>"Passkeys"</h2>
            <p class="hint">"A passkey on this device or a security key can stand in for the code at login. Passkeys work on https:// pages and on http://localhost."</p>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="passkey-error">{move || error.get()}</p>
            </Show>
            <Show when=move || !recovery.with(Vec::is_empty)>
                <div class="notice-card" data-testid="recovery-codes">
                    <div>
                        <p><strong>"Your first second factor is on."</strong>" Save these recovery codes somewhere safe: each works once instead of a passkey or code, and they are shown only now."</p>
                        <div class="recovery-codes">
                            {move || recovery.get().into_iter().map(|code| view! { <code data-testid="recovery-code">{code}</code> }).collect_view()}
                        </div>
                        <button class="secondary" data-testid="recovery-codes-done" on:click=move |_| recovery.set(Vec::new())>"I saved them"</button>
                    </div>
                </div>
            </Show>
            <ul data-testid="passkey-list">
                {move || passkeys().into_iter().map(|passkey| {
                    let id = passkey.id.clone();
                    let used = passkey.last_used_at_ms.map_or_else(|| "never used".to_owned(), |at| format!("last used {}", format_time(at)));
                    view! {
                        <li data-testid="passkey-item">
                            <span>{passkey.name.clone()}</span>
                            <span class="hint">{format!("added {}, {used}", format_time(passkey.created_at_ms))}</span>
                            <button class="secondary" data-testid="passkey-remove-button" aria-label=format!("Remove the passkey {}", passkey.name)
                                on:click=move |_| {
                                    let id = id.clone();
                                    let (typed_password, typed_code) = (password.get_untracked(), code.get_untracked());
                                    password.set(String::new());
                                    run("Passkey removed.", Box::pin(async move { chat.remove_passkey(&id, &typed_password, &typed_code).await }));
                                }>
                                "Remove"
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form on:submit=move |event| { event.prevent_default(); add(); }>
                <input data-testid="passkey-name-input" type="text" placeholder="name, e.g. laptop" aria-label="passkey name"
                    maxlength="64" prop:value=move || name.get() on:input=move |event| name.set(event_target_value(&event)) />
                <input data-testid="passkey-password-input" type="password" placeholder="your password" aria-label="your password"
                    autocomplete="current-password" prop:value=move || password.get()
                    on:input=move |event| password.set(event_target_value(&event)) />
                <Show when=totp_enabled>
                    <input data-testid="passkey-code-input" type="text" inputmode="numeric" placeholder="current code" aria-label="current code"
                        prop:value=move || code.get() on:input=move |event| code.set(event_target_value(&event)) />
                </Show>
                <button data-testid="passkey-add-button" type="submit" disabled=move || adding.get()>
                    {move || if adding.get() { "Waiting for the passkey…" } else { "Add a passkey" }}
                </button>
            </form>
            <p class="hint">"Removing a passkey also asks for your password above."</p>
        </section>
    }
}

/// The account's sessions, with revoke buttons.
#[component]
fn Sessions(
    loaded: RwSignal<Loaded>,
    run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <section>
            <h2>"Sessions"</h2>
            <ul data-testid="session-list">
                {move || loaded.with(|l| l.sessions.clone()).into_iter().map(|session| {
                    let id = session.id.clone();
                    view! {
                        <li data-testid="session-item" data-current=session.current.to_string()>
                            <span>{session.user_agent.clone()}</span>
                            <span>{session.ip.clone()}</span>
                            <span class="hint">{format!("since {}, last seen {}", format_time(session.created_at_ms), format_time(session.last_seen_at_ms))}</span>
                            {if session.current {
                                view! { <span class="tag">"this browser"</span> }.into_any()
                            } else {
                                view! {
                                    <button class="link danger" data-testid="revoke-session-button" on:click=move |_| {
                                        let id = id.clone();
                                        run("Session revoked.", Box::pin(async move { chat.revoke_session(&id).await }));
                                    }>"revoke"</button>
                                }.into_any()
                            }}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <button class="secondary" data-testid="revoke-others-button"
                on:click=move |_| run("Other sessions signed out.", Box::pin(async move { chat.revoke_other_sessions().await }))>
                "Sign out everywhere else"
            </button>
        </section>
    }
}

/// The trusted-network list (the third factor).
#[component]
fn TrustedNetworks(
    loaded: RwSignal<Loaded>,
    run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let networks = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(list) =
            loaded.with(|l| l.account.as_ref().map(|a| a.trusted_networks.join(", ")))
        {
            networks.set(list);
        }
    });
    view! {
        <section>
            <h2>"Trusted networks"</h2>
            <p class="hint">"Logins are refused from anywhere else. Leave empty to allow any network; you are then told about logins from networks never seen before."</p>
            <form on:submit=move |event| {
                event.prevent_default();
                let (list, secret, entered) = (networks.get_untracked(), password.get_untracked(), code.get_untracked());
                password.set(String::new());
                run("Trusted networks saved.", Box::pin(async move { chat.set_trusted_networks(&list, &secret, &entered).await }));
            }>
                <input data-testid="trusted-networks-input" type="text" placeholder="192.0.2.0/24, 2001:db8::/32"
                    prop:value=move || networks.get() on:input=move |event| networks.set(event_target_value(&event)) />
                <input data-testid="trusted-networks-password" type="password" placeholder="password"
                    prop:value=move || password.get() on:input=move |event| password.set(event_target_value(&event)) />
                <input data-testid="trusted-networks-code" type="text" placeholder="code (if two-factor is on)"
                    prop:value=move || code.get() on:input=move |event| code.set(event_target_value(&event)) />
                <button data-testid="trusted-networks-button" type="submit">"Save"</button>
            </form>
        </section>
    }
}

/// Password change: the same identity, re-wrapped under the new password.
#[component]
fn ChangePassword(
    run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    view! {
        <section>
            <h2>"Change password"</h2>
            <p class="hint">"Your keys stay the same, so your history stays readable. Other sessions are signed out."</p>
            <form on:submit=move |event| {
                event.prevent_default();
                let (old, fresh, entered) = (current.get_untracked(), new.get_untracked(), code.get_untracked());
                current.set(String::new());
                new.set(String::new());
                run("Password changed; other sessions were signed out.", Box::pin(async move { chat.change_password(&old, &fresh, &entered).await }));
            }>
                <input data-testid="current-password-input" type="password" placeholder="current password" autocomplete="current-password"
                    prop:value=move || current.get() on:input=move |event| current.set(event_target_value(&event)) />
                <input data-testid="new-password-input" type="password" placeholder="new password" autocomplete="new-password"
                    prop:value=move || new.get() on:input=move |event| new.set(event_target_value(&event)) />
                <input data-testid="password-code-input" type="text" placeholder="code (if two-factor is on)"
                    prop:value=move || code.get() on:input=move |event| code.set(event_target_value(&event)) />
                <button data-testid="change-password-button" type="submit">"Change password"</button>
            </form>
        </section>
    }
}

/// Account deletion after re-authentication.
#[component]
fn DeleteAccount(run: impl Fn(&'static str, Task) + Copy + Send + Sync + 'static) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    view! {
        <section>
            <h2>"Delete account"</h2>
            <p class="hint">"You leave every room (rooms you own are deleted) and your account is removed. This cannot be undone."</p>
            <form on:submit=move |event| {
                event.prevent_default();
                let (secret, entered) = (password.get_untracked(), code.get_untracked());
                run("Account deleted.", Box::pin(async move { chat.delete_account(&secret, &entered).await }));
            }>
                <input data-testid="delete-password-input" type="password" placeholder="password"
                    prop:value=move || password.get() on:input=move |event| password.set(event_target_value(&event)) />
                <input data-testid="delete-code-input" type="text" placeholder="code (if two-factor is on)"
                    prop:value=move || code.get() on:input=move |event| code.set(event_target_value(&event)) />
                <button class="danger" data-testid="delete-account-button" type="submit">"Delete my account"</button>
            </form>
        </section>
    }
}
