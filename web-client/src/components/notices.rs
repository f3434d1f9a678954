//! Notices above the chat: trust warnings (the server served less than this account had
//! seen), contacts whose keys changed, and the invite this tab was opened with.

use common::membership::RoomId;
use leptos::prelude::*;

use crate::chat::Chat;

/// The unacknowledged trust warnings of one room (`room_id`), or of the account (`None`), in
/// one `data-testid="trust-warning"` element: each cause in plain words, and a button to
/// acknowledge them. Nothing is shown when there are none.
#[component]
pub fn TrustWarnings(
    /// The room whose warnings to show; `None` for the account's.
    #[prop(into)]
    room_id: Signal<Option<RoomId>>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let texts = move || {
        let room_id = room_id.get();
        chat.trust_warnings.with(|warnings| {
            warnings
                .iter()
                .filter(|warning| warning.room_id() == room_id)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
    };
    let scope = move || {
        if room_id.get().is_some() {
            "room"
        } else {
            "account"
        }
    };
    view! {
        <Show when=move || !texts().is_empty()>
            <div
                class="warning banner trust-warning"
                role="alert"
                data-testid="trust-warning"
                data-scope=scope
            >
                <strong>"⚠ Trust warning: what the server served does not match what you have seen"</strong>
                <ul>
                    {move || {
                        texts()
                            .into_iter()
                            .map(|text| view! { <li>{text}</li> })
                            .collect_view()
                    }}
                </ul>
                <button
                    class="secondary"
                    data-testid="trust-warning-ack"
                    on:click=move |_| chat.acknowledge_warnings(room_id.get_untracked())
                >
                    "I understand"
                </button>
            </div>
        </Show>
    }
}

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
