//! Notices above the chat: contacts whose keys changed, and the invite this tab was opened
//! with.

use leptos::prelude::*;

use crate::chat::Chat;

/// A loud warning per contact whose keys differ from the ones first seen, with the choice to
/// accept the new keys (after comparing safety numbers out of band).
#[component]
pub fn KeyWarnings() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let warnings = move || {
        chat.key_warnings.with(|warnings| {
            warnings
                .iter()
                .map(|(name, warning)| (name.clone(), warning.seen_in.clone()))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For
            each=warnings
            key=|(name, seen_in)| (name.clone(), seen_in.clone())
            children=move |(name, seen_in)| {
                let accept_name = name.clone();
                view! {
                    <div class="warning banner key-warning" role="alert" data-testid="key-change-warning">
                        <strong>{format!("⚠ The keys of {name} changed")}</strong>
                        {format!(
                            " (seen in {seen_in}). Someone may be impersonating them. Nothing is \
                             sealed to the new keys until you accept them; compare safety numbers \
                             with {name} first."
                        )}
                        <button
                            class="secondary"
                            data-testid="accept-key-button"
                            on:click=move |_| {
                                let name = accept_name.clone();
                                leptos::task::spawn_local(async move {
                                    if let Err(error) = chat.accept_new_keys(&name).await {
                                        chat.error.set(Some(error.to_string()));
                                    }
                                });
                            }
                        >
                            "Accept new keys"
                        </button>
                    </div>
                }
            }
        />
    }
}

/// Shown when the page was opened with an invite link: request to join the room.
#[component]
pub fn JoinInvite() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let status = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let request = move |_| {
        busy.set(true);
        leptos::task::spawn_local(async move {
            let text = match chat.request_join().await {
                Ok(()) => {
                    "Request sent. The room appears here once an admin approves it.".to_owned()
                }
                Err(error) => format!("Could not request to join: {error}"),
            };
            status.set(Some(text));
            busy.set(false);
        });
    };
    view! {
        <Show when=move || chat.invite.with(Option::is_some)>
            <div class="notice-card">
                <p>"You were invited to a room. Admins see your username and public keys when you ask to join."</p>
                <button data-testid="join-request-button" disabled=move || busy.get() on:click=request>
                    "Request to join"
                </button>
            </div>
        </Show>
        <Show when=move || status.get().is_some()>
            <p class="notice-card" data-testid="join-status" role="status">{move || status.get()}</p>
        </Show>
    }
}
