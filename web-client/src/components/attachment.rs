//! Attachments on screen: the attach button of the composer with its progress and cancel,
//! and one attachment in the timeline: an image's thumbnail inline, the name and size, and a
//! download that decrypts, checks and shows the file (images full size, video and audio in a
//! player, any file saved under its name). Decrypted bytes are `blob:` URLs, revoked when
//! the message leaves the screen.

use common::attachment::{AttachmentRef, MediaKind};
use common::membership::RoomId;
use leptos::html;
use leptos::prelude::*;

use crate::attachments::{human_size, thumbnail_url, Transfer};
use crate::chat::Chat;
use crate::components::deferred::split_point;

/// A transfer's progress as a whole percentage, `37 %`.
fn percent(progress: Option<f64>) -> String {
    format!(
        "{} %",
        crate::decimal::fixed(progress.unwrap_or_default() * 100.0, 0)
    )
}

/// Revokes `url` when the component that made it is dropped.
fn revoke_on_cleanup(url: Option<String>) {
    if let Some(url) = url {
        on_cleanup(move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        });
    }
}

/// Starts uploading `file` to the room, reporting a refusal in `error`.
fn start_upload(
    chat: Chat,
    room_id: RoomId,
    file: web_sys::File,
    transfer: Transfer,
    error: RwSignal<Option<String>>,
) {
    if transfer.progress.get_untracked().is_some() {
        error.set(Some(
            "another file is being sent; wait for it or cancel it".into(),
        ));
        return;
    }
    error.set(None);
    leptos::task::spawn_local(async move {
        if let Err(failure) = chat.attach(room_id, file, transfer).await {
            error.try_set(Some(failure.to_string()));
        }
        transfer.progress.try_set(None);
    });
}

/// The first file of a drop, if the drop carries files (the default, opening the file in the
/// tab, is prevented).
pub fn dropped_file(event: &web_sys::DragEvent) -> Option<web_sys::File> {
    event.prevent_default();
    event.data_transfer()?.files()?.get(0)
}

split_point! {
    /// [`AttachButton`] as a split point (see [`crate::components::deferred`]).
    pub fn attach_button(room_id: RoomId, enabled: bool) {
        view! { <AttachButton room_id enabled /> }.into_any()
    }
}

/// The attach button, its hidden file input, and the upload's progress and cancel button.
#[component]
pub fn AttachButton(
    /// The room the file goes to.
    room_id: RoomId,
    /// Whether the user can write to the room now (holds its key, is a member).
    enabled: bool,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let input = NodeRef::<html::Input>::new();
    let transfer = Transfer::new();
    let error = RwSignal::new(None::<String>);
    let on_change = move |_| {
        let Some(element) = input.get() else {
            return;
        };
        let Some(file) = element.files().and_then(|files| files.get(0)) else {
            return;
        };
        // The same file can be picked again after this one.
        element.set_value("");
        start_upload(chat, room_id, file, transfer, error);
    };
    // A file dropped anywhere on the room is sent as if picked.
    if let Some(drops) = use_context::<DroppedFiles>() {
        Effect::new(move |_| {
            drops.0.track();
            let dropped = drops.0.try_update_untracked(Option::take).flatten();
            if let Some(file) = dropped.filter(|_| enabled) {
                start_upload(chat, room_id, file, transfer, error);
            }
        });
    }
    view! {
        <input
            type="file"
            class="attach-input"
            data-testid="attach-input"
            aria-label="attach a file"
            node_ref=input
            disabled=!enabled
            on:change=on_change
        />
        <button
            type="button"
            data-testid="attach-button"
            title="Attach a file (encrypted before it leaves this browser)"
            disabled=move || !enabled || transfer.progress.get().is_some()
            on:click=move |_| {
                if let Some(element) = input.get() {
                    element.click();
                }
            }
        >
            "Attach"
        </button>
        <Show when=move || transfer.progress.get().is_some()>
            <progress
                data-testid="upload-progress"
                max="1"
                value=move || crate::decimal::fixed(transfer.progress.get().unwrap_or_default(), 3)
            ></progress>
            <span class="percent">{move || percent(transfer.progress.get())}</span>
            <button
                type="button"
                data-testid="upload-cancel"
                on:click=move |_| transfer.cancelled.set(true)
            >
                "Cancel"
            </button>
        </Show>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="attachment-warning">{move || error.get()}</p>
        </Show>
    }
}

/// A file dropped on the room, handed from the drop zone to the attach button.
#[derive(Clone, Copy)]
pub struct DroppedFiles(pub RwSignal<Option<web_sys::File>, LocalStorage>);

split_point! {
    /// [`AttachmentView`] as a split point (see [`crate::components::deferred`]).
    pub fn attachment_view(room_id: RoomId, attachment: AttachmentRef) {
        view! { <AttachmentView room_id attachment /> }.into_any()
    }
}

/// One attachment in the timeline.
#[component]
pub fn AttachmentView(
    /// The room the attachment was sent to.
    room_id: RoomId,
    /// What its message says of it.
    attachment: AttachmentRef,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let thumbnail = thumbnail_url(&attachment);
    revoke_on_cleanup(thumbnail.clone());
    let transfer = Transfer::new();
    let opened = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let saver = NodeRef::<html::A>::new();
    on_cleanup(move || {
        if let Some(url) = opened.try_get_untracked().flatten() {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    });
    let kind = attachment.kind;
    let name = attachment.name.clone();
    let label = format!(
        "{} ({})",
        attachment.name,
        human_size(attachment.cipher.layout.size)
    );
    let described = attachment.clone();
    let download = move |_| {
        if transfer.progress.get_untracked().is_some() || opened.get_untracked().is_some() {
            return;
        }
        error.set(None);
        let attachment = described.clone();
        leptos::task::spawn_local(async move {
            match chat.download(room_id, &attachment, transfer).await {
                Ok(url) => {
                    // A plain file is saved at once, as a download link would; the link gets
                    // its address here, before the view catches up.
                    if kind == MediaKind::File {
                        if let Some(link) = saver.get_untracked() {
                            link.set_href(&url);
                            link.click();
                        }
                    }
                    opened.try_set(Some(url));
                }
                Err(failure) => {
                    error.try_set(Some(format!("could not open the attachment: {failure}")));
                }
            }
            transfer.progress.try_set(None);
        });
    };
    let full_view = move || {
        let url = opened.get()?;
        Some(match kind {
            MediaKind::Image => view! { <img class="attachment-full" src=url alt="" /> }.into_any(),
            MediaKind::Video => {
                view! { <video class="attachment-full" controls=true src=url></video> }.into_any()
            }
            MediaKind::Audio => view! { <audio controls=true src=url></audio> }.into_any(),
            MediaKind::File => ().into_any(),
        })
    };
    view! {
        <div class="attachment" data-testid="attachment">
            {thumbnail.map(|url| view! {
                <img
                    class="attachment-thumbnail"
                    data-testid="attachment-image"
                    src=url
                    alt=name.clone()
                    on:click=download.clone()
                />
            })}
            <span class="attachment-name">{label}</span>
            <button type="button" data-testid="attachment-download" on:click=download>
                {match kind {
                    MediaKind::Image => "Open",
                    MediaKind::Video | MediaKind::Audio => "Play",
                    MediaKind::File => "Download",
                }}
            </button>
            <Show when=move || transfer.progress.get().is_some()>
                <progress
                    data-testid="download-progress"
                    max="1"
                    value=move || crate::decimal::fixed(transfer.progress.get().unwrap_or_default(), 3)
                ></progress>
                <span class="percent">{move || percent(transfer.progress.get())}</span>
                <button type="button" on:click=move |_| transfer.cancelled.set(true)>"Cancel"</button>
            </Show>
            {full_view}
            <a
                data-testid="attachment-saved"
                class="attachment-saved"
                node_ref=saver
                download=name.clone()
                href=move || opened.get().unwrap_or_default()
                hidden=move || opened.get().is_none()
            >
                {format!("Save {name}")}
            </a>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="attachment-warning">{move || error.get()}</p>
            </Show>
        </div>
    }
}
