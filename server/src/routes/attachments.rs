//! Attachments: announcing one, uploading its encrypted chunks (resumable: the uploader asks
//! which chunks are stored), and downloading its ciphertext, whole or by HTTP range
//! (RFC 9110 section 14). The server never sees a key, a name or a byte of plaintext: it
//! checks the caller, the room's size limit, the uploader's quota and each chunk's length,
//! and stores what it is given (docs/PROTOCOL.md sections 8 and 14).
//!
//! As on every room route, a caller who is not a current member gets 404 `room not found`.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use common::api::endpoints::{
    AnnounceAttachment, AttachmentStatusOf, DownloadAttachment, UploadChunk,
};
use common::api::AttachmentStatus;
use common::attachment::{ChunkLayout, ATTACHMENT_ID_LEN, MAX_CHUNK_SIZE};
use common::membership::RoomId;
use common::primitives::TAG_LEN;
use common::wire::Base64Array;
use futures_util::StreamExt;

use super::{EndpointRouter, Reply, Request};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RoomPath};
use crate::routes::rooms::require_member;
use crate::session::AuthUser;
use crate::store::attachments::{self, Attachment, Created, Doomed};
use crate::store::{self, rooms};
use crate::AppState;

/// Largest chunk upload body: the largest chunk a reader accepts plus its tag.
pub const MAX_CHUNK_BODY: usize = MAX_CHUNK_SIZE as usize + TAG_LEN;

/// Routes of this module (all need a session, else 401; all answer 404 `room not found` to
/// a caller who is not a current member):
///
/// - `POST /api/rooms/{room_id}/attachments` [`NewAttachmentRequest`] -> 201
///   [`AttachmentStatus`] (200 when the caller announced the same id and layout before: a
///   resumed upload); 400 for a layout out of bounds, 409 `attachment id already in use`,
///   413 with `limit_bytes` when the file is larger than the room's policy allows
///   (`attachment larger than this room allows`) or the caller's stored attachments would
///   exceed the quota (`attachment storage quota exceeded`).
/// - `GET /api/rooms/{room_id}/attachments/{attachment_id}` -> 200 [`AttachmentStatus`];
///   404 `attachment not found`.
/// - `PUT /api/rooms/{room_id}/attachments/{attachment_id}/chunks/{index}` with the chunk's
///   ciphertext as the body -> 204; 403 for anyone but the uploader, 400 for an index past
///   the last chunk or a body whose length is not the chunk's, 409 once the attachment is
///   complete, 413 for a body over [`MAX_CHUNK_BODY`]. A chunk may be sent again until then
///   (it replaces the earlier one).
/// - `GET /api/rooms/{room_id}/attachments/{attachment_id}/content` -> 200 with the whole
///   ciphertext (`application/octet-stream`), or 206 with `Content-Range` for a single
///   `Range: bytes=…`; 416 for a range outside it, 409 `attachment incomplete` before every
///   chunk is stored.
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(AnnounceAttachment, announce)
        .endpoint(AttachmentStatusOf, status)
        .endpoint(
            UploadChunk,
            upload_chunk.layer(DefaultBodyLimit::max(MAX_CHUNK_BODY)),
        )
        .endpoint(DownloadAttachment, download)
}

/// Deletes the chunks of attachments whose rows are gone (a cleared or deleted room, an
/// upload no message named). A failure is logged: the rows are gone, so nothing serves the
/// chunks, and the next collection does not see them again.
pub async fn delete_blobs(state: &AppState, doomed: &[Doomed]) {
    for attachment in doomed {
        if let Err(error) = state
            .blobs
            .delete_attachment(&attachment.room_id, &attachment.id, attachment.chunk_count)
            .await
        {
            tracing::error!(%error, room_id = %attachment.room_id, "attachment chunks not deleted");
        }
    }
}

/// Collects, every `period`, the uploads that no message named within the configured time.
pub fn spawn_collector(state: AppState, period: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            let ttl_ms =
                i64::try_from(state.config.attachment_ttl().as_millis()).unwrap_or(i64::MAX);
            match attachments::take_unattached(&state.pool, store::now_ms().saturating_sub(ttl_ms))
                .await
            {
                Ok(doomed) => {
                    if !doomed.is_empty() {
                        tracing::info!(count = doomed.len(), "collecting unattached uploads");
                    }
                    delete_blobs(&state, &doomed).await;
                }
                Err(error) => tracing::error!(%error, "collecting unattached uploads failed"),
            }
        }
    });
}

/// Parses a 32-hex-digit attachment id.
pub(crate) fn parse_id(text: &str) -> ApiResult<[u8; ATTACHMENT_ID_LEN]> {
    let mut id = [0u8; ATTACHMENT_ID_LEN];
    hex::decode_to_slice(text, &mut id)
        .map_err(|_| ApiError::malformed_parameter("malformed attachment id"))?;
    Ok(id)
}

fn status_of(attachment: &Attachment) -> AttachmentStatus {
    AttachmentStatus {
        id: Base64Array(attachment.id),
        uploader: attachment.uploader.clone(),
        size: attachment.layout.size,
        chunk_size: attachment.layout.chunk_size,
        chunk_count: attachment.layout.chunk_count(),
        ciphertext_size: attachment.layout.ciphertext_size(),
        received: attachment.received.clone(),
        complete: attachment.complete(),
    }
}

/// The attachment `id` of a room whose current member is the caller.
async fn find(state: &AppState, room_id: &RoomId, id: &str) -> ApiResult<Attachment> {
    let id = parse_id(id)?;
    attachments::get(&state.pool, room_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment not found"))
}

async fn announce(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    ApiJson(request): Request<AnnounceAttachment>,
) -> ApiResult<(StatusCode, Reply<AnnounceAttachment>)> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let layout = ChunkLayout::new(request.size, request.chunk_size)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let limit = rooms::max_attachment_bytes(&state.pool, &room_id)
        .await?
        .ok_or_else(|| ApiError::not_found("room not found"))?;
    if layout.size > limit {
        return Err(ApiError::TooLarge {
            message: "attachment larger than this room allows".into(),
            limit_bytes: limit,
        });
    }
    let created = attachments::create(
        &state.pool,
        &room_id,
        &request.id.0,
        &user.username,
        layout,
        state.config.attachment_quota_bytes(),
        store::now_ms(),
    )
    .await?;
    let attachment = attachments::get(&state.pool, &room_id, &request.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment not found"))?;
    let code = match created {
        Created::New => StatusCode::CREATED,
        Created::Existing => StatusCode::OK,
    };
    Ok((code, Json(status_of(&attachment))))
}

async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Reply<AttachmentStatusOf>> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let attachment = find(&state, &room_id, &id).await?;
    Ok(Json(status_of(&attachment)))
}

async fn upload_chunk(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    Path((_, id, index)): Path<(String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let attachment = find(&state, &room_id, &id).await?;
    if attachment.uploader != user.username {
        return Err(ApiError::forbidden(
            "only the uploader writes an attachment",
        ));
    }
    let index: u32 = index
        .parse()
        .map_err(|_| ApiError::malformed_parameter("malformed chunk index"))?;
    let expected = attachment.layout.ciphertext_len(index).ok_or_else(|| {
        ApiError::bad_request(format!(
            "chunk index {index} is past the last chunk ({})",
            attachment.layout.chunk_count() - 1
        ))
    })?;
    if attachment.complete() {
        return Err(ApiError::conflict("attachment complete"));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            message: "chunk larger than any chunk can be".into(),
            limit_bytes: MAX_CHUNK_BODY as u64,
        },
        _ => ApiError::bad_request(rejection.body_text()),
    })?;
    if body.len() != expected {
        return Err(ApiError::bad_request(format!(
            "chunk {index} must be {expected} bytes, not {}",
            body.len()
        )));
    }
    state
        .blobs
        .put_chunk(&room_id, &attachment.id, index, body)
        .await?;
    if !attachments::record_chunk(&state.pool, &room_id, &attachment.id, index).await? {
        // Collected or cleared while this chunk was written: nothing may stay behind.
        state
            .blobs
            .delete_attachment(&room_id, &attachment.id, attachment.layout.chunk_count())
            .await?;
        return Err(ApiError::not_found("attachment not found"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The byte range a `Range` header asks for within `size` bytes: `None` for the whole;
/// only single ranges are served (several ranges get the whole, as RFC 9110 allows).
///
/// # Errors
/// [`ApiError::RangeNotSatisfiable`] for a range that lies outside.
pub(crate) fn requested_range(
    headers: &HeaderMap,
    size: u64,
) -> ApiResult<Option<std::ops::Range<u64>>> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("malformed range"))?;
    let parsed = http_range_header::parse_range_header(text)
        .map_err(|_| ApiError::bad_request("malformed range"))?;
    let ranges = parsed
        .validate(size)
        .map_err(|_| ApiError::RangeNotSatisfiable { size })?;
    Ok(match ranges.as_slice() {
        [range] => Some(*range.start()..range.end() + 1),
        _ => None,
    })
}

async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    RoomPath(room_id): RoomPath,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require_member(&state.pool, &room_id, &user.username).await?;
    let attachment = find(&state, &room_id, &id).await?;
    if !attachment.complete() {
        return Err(ApiError::conflict("attachment incomplete"));
    }
    let layout = attachment.layout;
    let size = layout.ciphertext_size();
    let range = requested_range(&headers, size)?;
    let wanted = range.clone().unwrap_or(0..size);
    // The chunks that overlap the range, each with the part of it that is wanted.
    let full_chunk = u64::from(layout.chunk_size) + TAG_LEN as u64;
    let first = u32::try_from(wanted.start / full_chunk).unwrap_or(u32::MAX);
    let parts: Vec<(u32, std::ops::Range<u64>)> = (first..layout.chunk_count())
        .map_while(|index| {
            let start = layout.ciphertext_offset(index);
            let length = layout.ciphertext_len(index)? as u64;
            (start < wanted.end).then(|| {
                let from = wanted.start.max(start) - start;
                let to = wanted.end.min(start + length) - start;
                (index, from..to)
            })
        })
        .collect();
    let blobs = state.blobs.clone();
    let attachment_id = attachment.id;
    let stream = futures_util::stream::iter(parts).then(move |(index, part)| {
        let blobs = blobs.clone();
        async move {
            blobs
                .get_chunk(&room_id, &attachment_id, index, part)
                .await
                .map_err(std::io::Error::other)
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(wanted.end - wanted.start),
    );
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {}-{}/{size}", wanted.start, wanted.end - 1);
        if let Ok(value) = header::HeaderValue::from_str(&content_range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}
