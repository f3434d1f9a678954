//! Attachment throughput in headless Chromium (`cargo xtask bench`; ignored by `cargo xtask
//! test`): alice's browser encrypts and uploads a 100 MiB file through the Attach input, and
//! bob's downloads, decrypts, checks and saves it. Prints MB/s each way and the peak memory
//! (resident set size) of each browser's processes, sampled every 50 ms from `/proc`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{Driver, E2eResult, TestServer};

const PASSWORD: &str = "bench-horse-staple-3390";
const FILE_SIZE: usize = 100 * 1024 * 1024;

/// The resident set size, in bytes, of every process whose command line names `profile`.
fn resident_bytes(profile: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(profile) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        if let Some(line) = status.lines().find(|line| line.starts_with("VmRSS:")) {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            total += kib * 1024;
        }
    }
    total
}

/// Samples the peak of [`resident_bytes`] for `profile` until `stop` is set.
fn sample_peak(profile: String, stop: Arc<AtomicBool>, peak: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(resident_bytes(&profile), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by cargo xtask bench"]
async fn attachment_throughput_in_chromium() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    alice.register(&server.base_url, "alice", PASSWORD).await?;
    bob.register(&server.base_url, "bob", PASSWORD).await?;
    alice.fill("room-name-input", "Bench").await?;
    alice.click("create-room-button").await?;
    alice.wait_for_text("room-item", "Bench").await?;
    // Room policy: allow the 100 MiB file.
    alice.fill("max-attachment-input", "200").await?;
    alice.click("save-settings-button").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.fill("member-username-input", "bob").await?;
    alice.click("add-member-button").await?;
    bob.wait_for_text("room-list", "Bench").await?;
    bob.click_text("room-item", "Bench").await?;

    let files = tempfile::tempdir().map_err(|error| error.to_string())?;
    let path = files.path().join("big.bin");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut file = Vec::with_capacity(FILE_SIZE);
    while file.len() < FILE_SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        file.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(&path, &file).map_err(|error| error.to_string())?;
    let megabytes = FILE_SIZE as f64 / 1_000_000.0;

    let alice_before = resident_bytes(&driver.profile("alice")) / (1024 * 1024);
    let bob_before = resident_bytes(&driver.profile("bob")) / (1024 * 1024);
    let stop = Arc::new(AtomicBool::new(false));
    let alice_peak = Arc::new(AtomicU64::new(0));
    let bob_peak = Arc::new(AtomicU64::new(0));
    sample_peak(driver.profile("alice"), stop.clone(), alice_peak.clone());
    sample_peak(driver.profile("bob"), stop.clone(), bob_peak.clone());

    let started = Instant::now();
    alice.attach_file(&path).await?;
    bob.wait_for_text_within("attachment", "big.bin", Duration::from_secs(300))
        .await?;
    let upload = started.elapsed().as_secs_f64();

    let downloads = tempfile::tempdir().map_err(|error| error.to_string())?;
    bob.allow_downloads(downloads.path()).await?;
    let started = Instant::now();
    bob.click_text("attachment-download", "Download").await?;
    let saved = bob
        .downloaded_within(downloads.path(), "big.bin", Duration::from_secs(300))
        .await?;
    let download = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(saved.len(), FILE_SIZE);
    assert!(saved == file, "the saved file differs");
    println!(
        "attachment 100 MiB in headless Chromium (release wasm, loopback): encrypt+upload \
         {:.0} MB/s (until the other browser shows it), download+decrypt+save {:.0} MB/s; \
         resident memory of all the browser's processes, peak (before the transfer): \
         uploading {} MiB ({alice_before} MiB), downloading {} MiB ({bob_before} MiB)",
        megabytes / upload,
        megabytes / download,
        alice_peak.load(Ordering::Relaxed) / (1024 * 1024),
        bob_peak.load(Ordering::Relaxed) / (1024 * 1024),
    );
    Ok(())
}
