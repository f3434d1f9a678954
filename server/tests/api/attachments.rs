//! Attachments over the real server: announcing, uploading chunk by chunk (resumable), the
//! room's size limit and the uploader's quota, downloading whole and by range, who may do
//! what (non-members, removed and banned users, members who are not the uploader), what is
//! written to disk (never a readable byte), and what clearing the history, deleting the room
//! and the collector of unattached uploads remove.

use common::api::{AttachmentStatus, ErrorBody, NewAttachmentRequest};
use common::attachment::{AttachmentCipher, CiphertextHash, MIN_CHUNK_SIZE};
use common::membership::{LogAction, RoomPolicy};
use common::room_key::EpochChange;
use common::wire::Base64Array;
use common::OsRng;
use reqwest::{Client, StatusCode};

use crate::cast::{expect_status, Cast};
use crate::helpers::{error_message, json, spawn_app_with, TestApp, TestRoom};

const CHUNK: u32 = MIN_CHUNK_SIZE;

/// A file of `size` bytes (a recognisable plaintext pattern), its cipher and sealed chunks.
pub fn sealed_file(size: usize) -> (Vec<u8>, AttachmentCipher, Vec<Vec<u8>>) {
    let file: Vec<u8> = b"PLAINTEXT-MARKER "
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect();
    let cipher = AttachmentCipher::generate(size as u64, CHUNK, &mut OsRng).expect("layout");
    let chunks = file
        .chunks(CHUNK as usize)
        .enumerate()
        .map(|(index, part)| cipher.seal_chunk(index as u32, part).expect("seals"))
        .collect::<Vec<_>>();
    let chunks = if chunks.is_empty() {
        vec![cipher.seal_chunk(0, &[]).expect("seals")]
    } else {
        chunks
    };
    (file, cipher, chunks)
}

fn attachments_path(room: &TestRoom) -> String {
    format!("/api/rooms/{}/attachments", room.hex())
}

pub async fn announce(
    app: &TestApp,
    client: &Client,
    room: &TestRoom,
    cipher: &AttachmentCipher,
) -> reqwest::Response {
    let request = NewAttachmentRequest {
        id: Base64Array(cipher.id),
        size: cipher.layout.size,
        chunk_size: cipher.layout.chunk_size,
    };
    app.post_json(client, &attachments_path(room), &request)
        .await
}

pub async fn put_chunk(
    app: &TestApp,
    client: &Client,
    room: &TestRoom,
    id: &[u8; 16],
    index: u32,
    bytes: Vec<u8>,
) -> reqwest::Response {
    client
        .put(app.url(&format!(
            "{}/{}/chunks/{index}",
            attachments_path(room),
            hex::encode(id)
        )))
        .body(bytes)
        .send()
        .await
        .expect("request is sent")
}

async fn content(
    app: &TestApp,
    client: &Client,
    room: &TestRoom,
    id: &[u8; 16],
    range: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(app.url(&format!(
        "{}/{}/content",
        attachments_path(room),
        hex::encode(id)
    )));
    if let Some(range) = range {
        request = request.header(reqwest::header::RANGE, range);
    }
    request.send().await.expect("request is sent")
}

/// Every byte of every file under `folder`.
fn all_bytes(folder: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                bytes.extend(all_bytes(&path));
            } else {
                bytes.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    bytes
}

fn files_under(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    if path.is_dir() {
                        files_under(&path)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn an_upload_resumes_completes_and_downloads_whole_and_by_range_without_plaintext_on_disk() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let (file, cipher, chunks) = sealed_file(CHUNK as usize * 2 + 1000);
    let response = announce(app, &cast.carol.client, &cast.room, &cipher).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let status: AttachmentStatus = json(response).await;
    assert_eq!(status.chunk_count, 3);
    assert_eq!(status.uploader, "carol");
    assert!(status.received.is_empty() && !status.complete);

    // Chunks 0 and 2, then the connection drops; the uploader asks what is there.
    for index in [0, 2] {
        let response = put_chunk(
            app,
            &cast.carol.client,
            &cast.room,
            &cipher.id,
            index,
            chunks[index as usize].clone(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let response = content(app, &cast.bob.client, &cast.room, &cipher.id, None).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "attachment incomplete"
    );
    let response = announce(app, &cast.carol.client, &cast.room, &cipher).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "announcing again resumes"
    );
    let status: AttachmentStatus = json(response).await;
    assert_eq!(status.received, vec![0, 2]);
    let response = put_chunk(
        app,
        &cast.carol.client,
        &cast.room,
        &cipher.id,
        1,
        chunks[1].clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let status: AttachmentStatus = json(
        app.get(
            &cast.bob.client,
            &format!(
                "{}/{}",
                attachments_path(&cast.room),
                hex::encode(cipher.id)
            ),
        )
        .await,
    )
    .await;
    assert!(status.complete);
    // Complete: no chunk is written over.
    let response = put_chunk(
        app,
        &cast.carol.client,
        &cast.room,
        &cipher.id,
        1,
        chunks[1].clone(),
    )
    .await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "attachment complete"
    );

    // Another member downloads it whole; it opens and matches its hash.
    let response = content(app, &cast.bob.client, &cast.room, &cipher.id, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert!(response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_none());
    let downloaded = response.bytes().await.expect("body").to_vec();
    assert_eq!(downloaded, chunks.concat());
    let mut hash = CiphertextHash::default();
    hash.update(&downloaded);
    let mut expected_hash = CiphertextHash::default();
    chunks.iter().for_each(|chunk| expected_hash.update(chunk));
    assert_eq!(hash.finish(), expected_hash.finish());
    let mut opened = Vec::new();
    let mut offset = 0;
    for index in 0..cipher.layout.chunk_count() {
        let length = cipher.layout.ciphertext_len(index).expect("chunk");
        opened.extend(
            cipher
                .open_chunk(index, &downloaded[offset..offset + length])
                .expect("opens"),
        );
        offset += length;
    }
    assert_eq!(opened, file);

    // A range across the first two chunks, and one past the end.
    let start = CHUNK as usize + 10;
    let response = content(
        app,
        &cast.bob.client,
        &cast.room,
        &cipher.id,
        Some(&format!("bytes={}-{}", start - 20, start + 20)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_RANGE]
            .to_str()
            .unwrap(),
        format!("bytes {}-{}/{}", start - 20, start + 20, downloaded.len())
    );
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        downloaded[start - 20..=start + 20].to_vec()
    );
    let response = content(
        app,
        &cast.bob.client,
        &cast.room,
        &cipher.id,
        Some("bytes=-100"),
    )
    .await;
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        downloaded[downloaded.len() - 100..].to_vec()
    );
    let response = content(
        app,
        &cast.bob.client,
        &cast.room,
        &cipher.id,
        Some(&format!("bytes={}-", downloaded.len() + 5)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_RANGE]
            .to_str()
            .unwrap(),
        format!("bytes */{}", downloaded.len())
    );

    // Nothing readable on disk: not the file's text, in the chunk folder or the database.
    let folder = app.directory.path().join("db").join("attachments");
    assert_eq!(files_under(&folder), 3);
    let stored = all_bytes(&folder);
    assert!(!contains(&stored, b"PLAINTEXT-MARKER"));
    assert!(
        contains(&stored, &chunks[1]),
        "the chunks are there, as ciphertext"
    );
    for database_file in app.database_files().await {
        let bytes = std::fs::read(database_file).unwrap();
        assert!(!contains(&bytes, b"PLAINTEXT-MARKER"));
    }
}

/// Announcing reads (the uploader's quota) before it writes: on SQLite that transaction must
/// be taken for writing at once, or it fails with a 500 when another connection wrote in
/// between, as many members uploading at the same moment do.
#[tokio::test]
async fn announcements_at_the_same_moment_all_succeed() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let uploaders = [&cast.alice, &cast.bob, &cast.carol];
    let ciphers: Vec<_> = (0..24).map(|_| sealed_file(100).1).collect();
    let responses =
        futures_util::future::join_all(ciphers.iter().enumerate().map(|(index, cipher)| {
            let uploader = uploaders[index % uploaders.len()];
            announce(app, &uploader.client, &cast.room, cipher)
        }))
        .await;
    let statuses: Vec<StatusCode> = responses.iter().map(reqwest::Response::status).collect();
    assert!(
        statuses.iter().all(|status| *status == StatusCode::CREATED),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn only_current_members_read_and_only_the_uploader_writes() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let (_, cipher, chunks) = sealed_file(100);
    assert_eq!(
        announce(app, &cast.carol.client, &cast.room, &cipher)
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = put_chunk(
        app,
        &cast.carol.client,
        &cast.room,
        &cipher.id,
        0,
        chunks[0].clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // A member who did not upload it may not write it.
    let response = put_chunk(
        app,
        &cast.bob.client,
        &cast.room,
        &cipher.id,
        0,
        chunks[0].clone(),
    )
    .await;
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "only the uploader writes an attachment"
    );
    // Outsiders, the removed and the banned find no room; the anonymous are not logged in.
    for user in [&cast.eve, &cast.erin, &cast.frank, &cast.dave] {
        let response = content(app, &user.client, &cast.room, &cipher.id, None).await;
        assert_eq!(
            error_message(response, StatusCode::NOT_FOUND).await,
            "room not found",
            "{}",
            user.username
        );
        let response = announce(app, &user.client, &cast.room, &cipher).await;
        assert_eq!(
            error_message(response, StatusCode::NOT_FOUND).await,
            "room not found"
        );
        let response = put_chunk(
            app,
            &user.client,
            &cast.room,
            &cipher.id,
            0,
            chunks[0].clone(),
        )
        .await;
        assert_eq!(
            error_message(response, StatusCode::NOT_FOUND).await,
            "room not found"
        );
    }
    let response = content(app, &app.anonymous, &cast.room, &cipher.id, None).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
    // The id is the uploader's: another member announcing it is refused.
    let response = announce(app, &cast.bob.client, &cast.room, &cipher).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "attachment id already in use"
    );
}

#[tokio::test]
async fn bad_uploads_get_clear_refusals() {
    let cast = Cast::new().await;
    let app = &cast.app;
    let (_, cipher, chunks) = sealed_file(CHUNK as usize + 5);
    announce(app, &cast.carol.client, &cast.room, &cipher).await;
    let carol = &cast.carol.client;
    let response = put_chunk(app, carol, &cast.room, &cipher.id, 2, chunks[0].clone()).await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "chunk index 2 is past the last chunk (1)"
    );
    let response = put_chunk(
        app,
        carol,
        &cast.room,
        &cipher.id,
        0,
        chunks[0][..100].to_vec(),
    )
    .await;
    assert!(error_message(response, StatusCode::BAD_REQUEST)
        .await
        .starts_with("chunk 0 must be"));
    let response = put_chunk(
        app,
        carol,
        &cast.room,
        &cipher.id,
        0,
        vec![0; 5 * 1024 * 1024],
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: ErrorBody = json(response).await;
    assert_eq!(body.limit_bytes, Some(4 * 1024 * 1024 + 16));
    let unknown = [7u8; 16];
    let response = put_chunk(app, carol, &cast.room, &unknown, 0, chunks[0].clone()).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "attachment not found"
    );
    let response = app
        .get(carol, &format!("{}/not-hex", attachments_path(&cast.room)))
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "malformed attachment id"
    );
    let response = app
        .post_json(
            carol,
            &attachments_path(&cast.room),
            &serde_json::json!({"id": "AAAA", "size": 1, "chunk_size": CHUNK}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .post_json(
            carol,
            &attachments_path(&cast.room),
            &NewAttachmentRequest {
                id: Base64Array([9; 16]),
                size: 10,
                chunk_size: 100,
            },
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::BAD_REQUEST).await,
        "invalid attachment layout: chunk size out of range"
    );
    // A message may name only complete uploads of its sender in this room.
    let mut message = TestApp::sealed_text(&cast.room, &cast.carol, 1, "see attached");
    message.attachments = vec![Base64Array(cipher.id)];
    let response = app.post_message(carol, &cast.hex(), &message).await;
    assert!(error_message(response, StatusCode::BAD_REQUEST)
        .await
        .contains("is not a complete upload of yours"));
}

#[tokio::test]
async fn the_room_limit_and_the_quota_are_enforced_with_the_limit_in_the_answer() {
    let mut cast = Cast::new().await;
    let (_, small, _) = sealed_file(1);
    // The room allows 1 MiB; a 2 MiB file is refused before any byte is sent.
    let policy = RoomPolicy {
        max_attachment_bytes: 1024 * 1024,
        ..*cast.room.state.policy()
    };
    cast.app
        .expect_action(
            &mut cast.room,
            &cast.bob,
            LogAction::SetPolicy { policy },
            StatusCode::CREATED,
        )
        .await;
    let large = AttachmentCipher::generate(2 * 1024 * 1024, CHUNK, &mut OsRng).expect("layout");
    let response = announce(&cast.app, &cast.carol.client, &cast.room, &large).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: ErrorBody = json(response).await;
    assert_eq!(body.error, "attachment larger than this room allows");
    assert_eq!(body.limit_bytes, Some(1024 * 1024));
    assert_eq!(
        announce(&cast.app, &cast.carol.client, &cast.room, &small)
            .await
            .status(),
        StatusCode::CREATED
    );

    // A server with a 1 MiB quota per user.
    let app = spawn_app_with(|config| config.attachment_quota_mib = 1).await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "files").await;
    let first = AttachmentCipher::generate(700 * 1024, CHUNK, &mut OsRng).expect("layout");
    let second = AttachmentCipher::generate(700 * 1024, CHUNK, &mut OsRng).expect("layout");
    assert_eq!(
        announce(&app, &alice.client, &room, &first).await.status(),
        StatusCode::CREATED
    );
    let response = announce(&app, &alice.client, &room, &second).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: ErrorBody = json(response).await;
    assert_eq!(body.error, "attachment storage quota exceeded");
    assert_eq!(body.limit_bytes, Some(1024 * 1024));
}

/// Uploads a whole attachment as `uploader` and names it in a message.
async fn upload_and_attach(cast: &Cast, size: usize) -> AttachmentCipher {
    let app = &cast.app;
    let (_, cipher, chunks) = sealed_file(size);
    expect_status(
        announce(app, &cast.carol.client, &cast.room, &cipher).await,
        StatusCode::CREATED,
        "announce",
    )
    .await;
    for (index, chunk) in chunks.into_iter().enumerate() {
        let response = put_chunk(
            app,
            &cast.carol.client,
            &cast.room,
            &cipher.id,
            index as u32,
            chunk,
        )
        .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let mut message = TestApp::sealed_text(&cast.room, &cast.carol, 1, "attachment");
    message.attachments = vec![Base64Array(cipher.id)];
    let response = app
        .post_message(&cast.carol.client, &cast.hex(), &message)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    cipher
}

#[tokio::test]
async fn clearing_the_history_and_deleting_the_room_remove_every_chunk() {
    let mut cast = Cast::new().await;
    let folder = cast.app.directory.path().join("db").join("attachments");
    let cipher = upload_and_attach(&cast, CHUNK as usize * 2).await;
    assert_eq!(files_under(&folder), 2);
    let response = cast
        .app
        .rotate_room_with(&mut cast.room, &cast.bob, EpochChange::ClearHistory)
        .await;
    expect_status(response, StatusCode::CREATED, "bob clears the history").await;
    assert_eq!(files_under(&folder), 0, "the chunks went with the history");
    let response = content(&cast.app, &cast.bob.client, &cast.room, &cipher.id, None).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "attachment not found"
    );

    upload_and_attach(&cast, 10).await;
    assert_eq!(files_under(&folder), 1);
    cast.app
        .expect_action(
            &mut cast.room,
            &cast.alice,
            LogAction::DeleteRoom,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(files_under(&folder), 0, "the chunks went with the room");
}

#[tokio::test]
async fn uploads_no_message_names_are_collected_after_their_time() {
    // Unattached uploads live two seconds here; the collector looks every second.
    let app = spawn_app_with(|config| {
        config.attachment_ttl_secs = 2;
        config.attachment_collect_secs = 1;
    })
    .await;
    let alice = app.register_user("alice").await;
    let room = app.create_test_room(&alice, "files").await;
    let folder = app.directory.path().join("db").join("attachments");
    let upload = |cipher: AttachmentCipher, chunks: Vec<Vec<u8>>| {
        let app = &app;
        let alice = &alice;
        let room = &room;
        async move {
            announce(app, &alice.client, room, &cipher).await;
            for (index, chunk) in chunks.into_iter().enumerate() {
                put_chunk(app, &alice.client, room, &cipher.id, index as u32, chunk).await;
            }
            cipher
        }
    };
    let (_, kept, chunks) = sealed_file(10);
    let kept = upload(kept, chunks).await;
    let mut message = TestApp::sealed_text(&room, &alice, 1, "attached");
    message.attachments = vec![Base64Array(kept.id)];
    let response = app.post_message(&alice.client, &room.hex(), &message).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, orphan, orphan_chunks) = sealed_file(10);
    let orphan = upload(orphan, orphan_chunks.clone()).await;
    assert_eq!(files_under(&folder), 2);
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    assert_eq!(
        files_under(&folder),
        1,
        "the unattached upload was collected"
    );
    let response = content(&app, &alice.client, &room, &kept.id, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = content(&app, &alice.client, &room, &orphan.id, None).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "attachment not found"
    );
    // A chunk of the collected upload sent now finds nothing to join, and leaves nothing.
    let response = put_chunk(
        &app,
        &alice.client,
        &room,
        &orphan.id,
        0,
        orphan_chunks[0].clone(),
    )
    .await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "attachment not found"
    );
    assert_eq!(files_under(&folder), 1);
}
