//! Attachments in the browser: a file the user picks is read slice by slice
//! (`Blob.slice`), each chunk sealed in the format of `common::attachment` and uploaded, then
//! a message describing it goes through the client core ([`client::Command::Send`]),
//! which refuses kinds and sizes the room's policy forbids. A download fetches the chunks one
//! HTTP range at a time, opens and hashes each, checks the hash the message names, and hands
//! the view a `blob:` URL of the plaintext. Neither direction holds the whole file in wasm
//! memory at once: uploads keep one chunk, downloads give each opened chunk to the browser.

use client::Command;
use common::api::endpoints::{
    AnnounceAttachment, AttachmentParams, AttachmentStatusOf, ChunkParams, RoomParams,
};
use common::api::NewAttachmentRequest;
use common::attachment::{
    valid_file_name, AttachmentCipher, AttachmentRef, CiphertextHash, Dimensions, MediaKind,
    DEFAULT_CHUNK_SIZE, MAX_NAME_LEN, MAX_THUMBNAIL_LEN,
};
use common::membership::RoomId;
use common::message::MessageBody;
use common::wire::Base64Array;
use common::OsRng;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::chat::{Chat, ChatError};
use crate::http;

/// The longest side of a thumbnail, in pixels.
const THUMBNAIL_SIDE: f64 = 160.0;

/// Bytes in words: `512 B`, `3.2 KiB`, `25.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    let one_place = |unit: u64| crate::decimal::fixed(bytes as f64 / unit as f64, 1);
    if bytes < KIB {
        format!("{bytes} B")
    } else if bytes < KIB * KIB {
        format!("{} KiB", one_place(KIB))
    } else if bytes < KIB * KIB * KIB {
        format!("{} MiB", one_place(KIB * KIB))
    } else {
        format!("{} GiB", one_place(KIB * KIB * KIB))
    }
}

/// A file name as the message carries it: path separators and control characters become
/// `_`, cut to [`MAX_NAME_LEN`] bytes at a character boundary; `file` when nothing is left.
fn clean_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    while cleaned.len() > MAX_NAME_LEN {
        cleaned.pop();
    }
    if valid_file_name(&cleaned) {
        cleaned
    } else {
        "file".into()
    }
}

fn js_error(error: JsValue) -> ChatError {
    ChatError::Other(
        error
            .as_string()
            .or_else(|| {
                error
                    .dyn_ref::<js_sys::Error>()
                    .map(|error| String::from(error.message()))
            })
            .unwrap_or_else(|| "the browser refused".into()),
    )
}

/// Reads `length` bytes of `file` from `start`.
async fn read_slice(file: &web_sys::Blob, start: u64, length: usize) -> Result<Vec<u8>, ChatError> {
    let slice = file
        .slice_with_f64_and_f64(start as f64, (start + length as u64) as f64)
        .map_err(js_error)?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// An image's size and a JPEG thumbnail of it (at most 160 pixels a side and
/// [`MAX_THUMBNAIL_LEN`] bytes), drawn on a canvas; `None` when the browser cannot decode it.
async fn thumbnail(file: &web_sys::File) -> Option<(Dimensions, Vec<u8>)> {
    let url = web_sys::Url::create_object_url_with_blob(file).ok()?;
    let image = web_sys::HtmlImageElement::new().ok()?;
    let loaded = js_sys::Promise::new(&mut |resolve, reject| {
        image.set_onload(Some(&resolve));
        image.set_onerror(Some(&reject));
    });
    image.set_src(&url);
    let decoded = JsFuture::from(loaded).await;
    let _ = web_sys::Url::revoke_object_url(&url);
    decoded.ok()?;
    let (width, height) = (image.natural_width(), image.natural_height());
    if width == 0 || height == 0 {
        return None;
    }
    let scale = (THUMBNAIL_SIDE / f64::from(width.max(height))).min(1.0);
    let (thumb_width, thumb_height) = (
        (f64::from(width) * scale).round().max(1.0),
        (f64::from(height) * scale).round().max(1.0),
    );
    let canvas: web_sys::HtmlCanvasElement = web_sys::window()?
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    canvas.set_width(thumb_width as u32);
    canvas.set_height(thumb_height as u32);
    let context: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").ok()??.dyn_into().ok()?;
    context
        .draw_image_with_html_image_element_and_dw_and_dh(
            &image,
            0.0,
            0.0,
            thumb_width,
            thumb_height,
        )
        .ok()?;
    let dimensions = Dimensions { width, height };
    for quality in [0.8, 0.6, 0.4, 0.2] {
        let data_url = canvas
            .to_data_url_with_type_and_encoder_options("image/jpeg", &JsValue::from_f64(quality))
            .ok()?;
        let encoded = data_url.split_once(',')?.1;
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok()?;
        if bytes.len() <= MAX_THUMBNAIL_LEN {
            return Some((dimensions, bytes));
        }
    }
    Some((dimensions, Vec::new()))
}

/// How far a transfer got, from 0 to 1, and whether the user asked to stop it.
#[derive(Clone, Copy)]
pub struct Transfer {
    /// The share done, `None` when no transfer runs.
    pub progress: RwSignal<Option<f64>>,
    /// Set by the cancel button; the transfer stops before its next chunk.
    pub cancelled: RwSignal<bool>,
}

impl Transfer {
    /// A transfer not started.
    pub fn new() -> Self {
        Self {
            progress: RwSignal::new(None),
            cancelled: RwSignal::new(false),
        }
    }

    fn check(&self) -> Result<(), ChatError> {
        if self.cancelled.get_untracked() {
            Err(ChatError::Other("cancelled".into()))
        } else {
            Ok(())
        }
    }
}

impl Default for Transfer {
    fn default() -> Self {
        Self::new()
    }
}

/// How many times a chunk is sent again after the connection dropped.
const CHUNK_RETRIES: u32 = 3;
/// The pause before the first retry, in milliseconds; it doubles each time.
const RETRY_PAUSE_MS: u32 = 1_000;

/// Uploads chunk `index` of the attachment `attachment`, resuming after a
/// dropped connection: after a pause the client asks the server which chunks it has, and
/// sends the chunk again unless it arrived (the server takes a chunk again until the
/// attachment is complete), at most [`CHUNK_RETRIES`] times.
async fn put_chunk(
    attachment: &AttachmentParams,
    index: u32,
    sealed: &[u8],
) -> Result<(), ChatError> {
    let chunk = ChunkParams {
        room_id: attachment.room_id,
        attachment_id: attachment.attachment_id,
        index,
    };
    let mut pause = RETRY_PAUSE_MS;
    for _ in 0..CHUNK_RETRIES {
        match http::put_chunk(&chunk, sealed).await {
            Err(http::HttpError::Network(_)) => {
                gloo_timers::future::TimeoutFuture::new(pause).await;
                pause *= 2;
                if let Ok(status) = http::call::<AttachmentStatusOf>(attachment, &()).await {
                    if status.received.contains(&index) {
                        return Ok(());
                    }
                }
            }
            result => return Ok(result?),
        }
    }
    Ok(http::put_chunk(&chunk, sealed).await?)
}

impl Chat {
    /// Encrypts and uploads `file` to the room chunk by chunk, then sends the message that
    /// describes it. Refused before any byte is sent when the room's policy forbids the
    /// file's kind or size.
    ///
    /// # Errors
    /// [`ChatError::Other`] for a kind or size the room does not allow, a cancelled upload,
    /// or a file the browser cannot read; the server's refusal otherwise.
    pub async fn attach(
        &self,
        room_id: RoomId,
        file: web_sys::File,
        transfer: Transfer,
    ) -> Result<(), ChatError> {
        let size = file.size() as u64;
        let mime: String = file.type_().chars().take(MAX_NAME_LEN).collect();
        let mime = if mime.chars().any(char::is_control) {
            String::new()
        } else {
            mime
        };
        let kind = MediaKind::of_mime(&mime);
        let policy = self
            .rooms
            .with_untracked(|rooms| {
                rooms
                    .get(&room_id)
                    .and_then(|room| room.state.as_ref().ok())
                    .map(|state| *state.policy())
            })
            .ok_or_else(|| ChatError::Other("the room is not available".into()))?;
        if policy.allowed_media & kind.policy_bit() == 0 {
            return Err(ChatError::Other(format!(
                "this room does not allow {} attachments",
                format!("{kind:?}").to_lowercase()
            )));
        }
        if size > policy.max_attachment_bytes {
            return Err(ChatError::Other(format!(
                "this room allows files of at most {}; this one has {}",
                human_size(policy.max_attachment_bytes),
                human_size(size)
            )));
        }
        let cipher = AttachmentCipher::generate(size, DEFAULT_CHUNK_SIZE, &mut OsRng)
            .map_err(ChatError::from_display)?;
        let (dimensions, thumbnail) = match kind {
            MediaKind::Image => match thumbnail(&file).await {
                Some((dimensions, thumbnail)) => (Some(dimensions), thumbnail),
                None => (None, Vec::new()),
            },
            _ => (None, Vec::new()),
        };
        transfer.cancelled.set(false);
        transfer.progress.set(Some(0.0));
        let status = http::call::<AnnounceAttachment>(
            &RoomParams { room_id },
            &NewAttachmentRequest {
                id: Base64Array(cipher.id),
                size,
                chunk_size: cipher.layout.chunk_size,
            },
        )
        .await?;
        let count = cipher.layout.chunk_count();
        let uploading = AttachmentParams {
            room_id,
            attachment_id: cipher.id,
        };
        let mut hash = CiphertextHash::default();
        for index in 0..count {
            transfer.check()?;
            let start = u64::from(index) * u64::from(cipher.layout.chunk_size);
            let length = cipher.layout.plaintext_len(index).unwrap_or_default();
            let plaintext = read_slice(&file, start, length).await?;
            let sealed = cipher
                .seal_chunk(index, &plaintext)
                .map_err(ChatError::from_display)?;
            hash.update(&sealed);
            if !status.received.contains(&index) {
                put_chunk(&uploading, index, &sealed).await?;
            }
            transfer
                .progress
                .set(Some(f64::from(index + 1) / f64::from(count)));
        }
        let attachment = AttachmentRef {
            cipher,
            ciphertext_sha256: hash.finish(),
            kind,
            mime,
            name: clean_name(&file.name()),
            dimensions,
            thumbnail_mime: if thumbnail.is_empty() {
                String::new()
            } else {
                "image/jpeg".into()
            },
            thumbnail,
        };
        self.command(
            room_id,
            Command::Send(MessageBody::Attachment(Box::new(attachment))),
        )
        .await
    }

    /// Downloads an attachment chunk by chunk (HTTP ranges), opening and hashing each, and
    /// returns a `blob:` URL of the file once its hash matches the message's. The caller
    /// revokes it when it is no longer shown.
    ///
    /// # Errors
    /// [`ChatError::Other`] for a chunk that does not open, a hash that differs, or a
    /// cancelled download; the server's refusal otherwise.
    pub async fn download(
        &self,
        room_id: RoomId,
        attachment: &AttachmentRef,
        transfer: Transfer,
    ) -> Result<String, ChatError> {
        let cipher = &attachment.cipher;
        let count = cipher.layout.chunk_count();
        let path = AttachmentParams {
            room_id,
            attachment_id: cipher.id,
        };
        let parts = js_sys::Array::new();
        let mut hash = CiphertextHash::default();
        transfer.cancelled.set(false);
        transfer.progress.set(Some(0.0));
        for index in 0..count {
            transfer.check()?;
            let start = cipher.layout.ciphertext_offset(index);
            let length = cipher.layout.ciphertext_len(index).unwrap_or_default() as u64;
            let sealed = http::get_range(&path, start, start + length - 1).await?;
            hash.update(&sealed);
            let plaintext = cipher
                .open_chunk(index, &sealed)
                .map_err(ChatError::from_display)?;
            parts.push(&js_sys::Uint8Array::from(plaintext.as_slice()));
            transfer
                .progress
                .set(Some(f64::from(index + 1) / f64::from(count)));
        }
        attachment
            .check_hash(&hash.finish())
            .map_err(ChatError::from_display)?;
        blob_url(&parts, &attachment.mime)
    }
}

/// A `blob:` URL of `parts` (an array of `Uint8Array`) typed `mime`.
///
/// # Errors
/// [`ChatError::Other`] when the browser refuses.
pub fn blob_url(parts: &js_sys::Array, mime: &str) -> Result<String, ChatError> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(parts, &options).map_err(js_error)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)
}

/// A `blob:` URL of the thumbnail a message carries, if it has one.
pub fn thumbnail_url(attachment: &AttachmentRef) -> Option<String> {
    if attachment.thumbnail.is_empty() {
        return None;
    }
    let parts = js_sys::Array::new();
    parts.push(&js_sys::Uint8Array::from(attachment.thumbnail.as_slice()));
    blob_url(&parts, &attachment.thumbnail_mime).ok()
}
