//! Attachments between two real Chromium sessions: alice attaches a 5 MiB file and a PNG
//! image (the README's screenshot); bob sees the image inline and downloads the file, whose SHA-256 is the original's;
//! a file over the room's limit is refused before any byte leaves alice's browser; neither
//! the database nor the attachment folder ever holds the file's bytes; clearing the history
//! empties the folder.

use e2e::{contains_bytes, Driver, E2eResult, TestServer};

const ROOM_NAME: &str = "Shared files";
const PASSWORD: &str = "attachments-horse-5521";

/// `length` bytes from a xorshift generator: incompressible, reproducible.
fn noise(length: usize, mut state: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// Every byte of every file under `folder`, and how many files there are.
fn folder_bytes(folder: &std::path::Path) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut files = 0;
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let (inner, count) = folder_bytes(&path);
                bytes.extend(inner);
                files += count;
            } else {
                bytes.extend(std::fs::read(&path).unwrap_or_default());
                files += 1;
            }
        }
    }
    (bytes, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_encrypted_in_one_browser_and_open_in_the_other() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    alice.fill("room-name-input", ROOM_NAME).await?;
    alice.click("create-room-button").await?;
    alice.wait_for_text("room-item", ROOM_NAME).await?;
    alice.fill("member-username-input", "bob").await?;
    alice.click("add-member-button").await?;
    alice.wait_for_text("member-list", "bob").await?;
    bob.wait_for_text("room-list", ROOM_NAME).await?;
    bob.click_text("room-item", ROOM_NAME).await?;
    bob.wait_for_text("member-list", "alice").await?;

    let files = tempfile::tempdir().map_err(|error| error.to_string())?;
    let report = noise(5 * 1024 * 1024, 0x9e37_79b9_7f4a_7c15);
    let report_path = files.path().join("report.bin");
    let image_path = files.path().join("app.png");
    let huge_path = files.path().join("huge.bin");
    std::fs::write(&report_path, &report).map_err(|error| error.to_string())?;
    // A real image: the README's screenshot of the app.
    let image = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/screenshot.png"
    ))
    .map_err(|error| error.to_string())?;
    std::fs::write(&image_path, &image).map_err(|error| error.to_string())?;
    // Over the room's 25 MiB default; refused in alice's browser, so its content is moot.
    std::fs::write(&huge_path, vec![0u8; 26 * 1024 * 1024]).map_err(|error| error.to_string())?;

    alice.attach_file(&report_path).await?;
    alice.wait_for_text("attachment", "report.bin").await?;
    alice.attach_file(&image_path).await?;
    alice.wait_for_text("attachment", "app.png").await?;
    alice.attach_file(&huge_path).await?;
    alice
        .wait_for_text(
            "attachment-warning",
            "this room allows files of at most 25.0 MiB",
        )
        .await?;

    // A file dropped on the room is sent as if picked.
    alice
        .run_script(
            r#"
            const data = new DataTransfer();
            data.items.add(new File(['dropped in the room'], 'dropped.txt', { type: 'text/plain' }));
            document.querySelector('[data-testid="message-list"]').dispatchEvent(
                new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
            "#,
        )
        .await?;
    alice.wait_for_text("attachment", "dropped.txt").await?;

    // bob sees them; the image inline from its thumbnail.
    bob.wait_for_text("attachment", "report.bin").await?;
    bob.wait_for_text("attachment", "app.png").await?;
    bob.wait_for_text("attachment", "dropped.txt").await?;
    bob.element("attachment-image").await?;
    assert!(bob.texts("attachment-warning").await?.is_empty());
    assert!(bob.texts("message-warning").await?.is_empty());

    // bob downloads the file: it decrypts, its hash checks, and it is saved whole, under
    // its name.
    let downloads = tempfile::tempdir().map_err(|error| error.to_string())?;
    bob.allow_downloads(downloads.path()).await?;
    bob.click_text("attachment-download", "Download").await?;
    let saved = bob.downloaded(downloads.path(), "report.bin").await?;
    assert_eq!(
        e2e::sha256_hex(&saved),
        e2e::sha256_hex(&report),
        "the downloaded file differs from the original"
    );

    // Nothing of the file is in the database or the attachment folder.
    let folder = server.data_dir.path().join("attachments");
    let (stored, count) = folder_bytes(&folder);
    // Chunks of 1 MiB: five of the file, the image's, one of the dropped file.
    let image_chunks = image.len().div_ceil(1024 * 1024).max(1);
    assert_eq!(count, 5 + image_chunks + 1, "chunks stored: {count}");
    let database = server.database_bytes();
    for offset in [0, 1_000_000, 5 * 1024 * 1024 - 64] {
        let sample = &report[offset..offset + 64];
        assert!(
            !contains_bytes(&stored, sample),
            "file bytes at {offset} in the folder"
        );
        assert!(
            !contains_bytes(&database, sample),
            "file bytes at {offset} in the database"
        );
    }
    let middle = image.len() / 2;
    assert!(!contains_bytes(&stored, &image[middle..middle + 64]));
    assert!(!contains_bytes(&database, &image[middle..middle + 64]));

    // For the README: set CHAT_E2E_ATTACHMENT_SCREENSHOT to a path to save bob's view, with
    // the image opened full size.
    if let Some(path) = std::env::var_os("CHAT_E2E_ATTACHMENT_SCREENSHOT") {
        bob.click_text("attachment-download", "Open").await?;
        bob.wait_until_none("download-progress").await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        bob.screenshot(std::path::Path::new(&path)).await?;
    }

    // Clearing the history removes every chunk.
    alice.click("clear-history-button").await?;
    alice.click("confirm-button").await?;
    bob.wait_until_none("attachment").await?;
    let (_, count) = folder_bytes(&folder);
    assert_eq!(count, 0, "the attachment folder still holds {count} files");
    Ok(())
}
