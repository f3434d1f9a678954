//! A button for an action that cannot be undone (deleting a room, clearing its history,
//! removing, banning, leaving): the first press asks, in place, and only "Yes" acts.

use leptos::prelude::*;

/// A button labelled `label` (with `class` and `data-testid` `testid`) that, when pressed,
/// shows `question` with a "Yes, …" button (`confirm-button`), which runs `on_confirm`, and
/// "Cancel" (`cancel-button`), which puts the first button back.
#[component]
pub fn ConfirmButton(
    /// What the button says, e.g. "Delete room".
    label: &'static str,
    /// The question shown before acting, in plain words.
    #[prop(into)]
    question: String,
    /// The button's CSS classes.
    class: &'static str,
    /// The button's `data-testid`.
    testid: &'static str,
    /// What to do once confirmed.
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    view! {
        <Show when=move || asking.get() fallback=move || view! {
            <button class=class data-testid=testid on:click=move |_| asking.set(true)>{label}</button>
        }>
            <span class="confirm" role="alertdialog" aria-label=question.clone() data-testid="confirm-dialog">
                <span>{question.clone()}</span>
                <button class="danger" data-testid="confirm-button" on:click=move |_| {
                    asking.set(false);
                    on_confirm.run(());
                }>{format!("Yes, {}", label.to_lowercase())}</button>
                <button class="secondary" data-testid="cancel-button" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}
