//! Attachment throughput, natively: starts the real server on a loopback port with a fresh
//! database and attachment folder, then for each chunk size encrypts and uploads a 100 MiB
//! file chunk by chunk (one `PUT` per chunk, as the browser does), and downloads it again
//! one HTTP range per chunk, opening each chunk and checking the whole ciphertext's hash.
//! Reports MB/s both ways. Only 127.0.0.1 is contacted; every loop is bounded. Run with
//! `cargo xtask bench` (or `cargo bench -p server --bench attachments`).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::account::{derive_account_keys, KdfParams};
use common::api::endpoints::{
    AnnounceAttachment, AppendLog, AttachmentParams, ChunkParams, CreateRoom, DownloadAttachment,
    Endpoint, Register, RoomParams, UploadChunk,
};
use common::api::{CreateRoomRequest, NewAttachmentRequest, RegisterRequest};
use common::attachment::{AttachmentCipher, CiphertextHash};
use common::identity::IdentitySecrets;
use common::room_key::{create_room, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;

/// The file's size: 100 MiB.
const FILE_SIZE: usize = 100 * 1024 * 1024;
/// The chunk sizes compared.
const CHUNK_SIZES: [u32; 3] = [64 * 1024, 256 * 1024, 1024 * 1024];

type BenchResult<T> = Result<T, String>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

fn check(response: reqwest::Response, what: &str) -> BenchResult<reqwest::Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(format!("{what}: {}", response.status()))
    }
}

async fn run() -> BenchResult<()> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = server::Config::new(
        format!("sqlite://{}", data.path().join("bench.db").display()),
        data.path(),
    );
    config.bind = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    config.attachment_quota_mib = 4096;
    let application = server::Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());

    // One user, one room whose policy allows the file.
    let params = KdfParams {
        m_kib: KdfParams::MIN_M_KIB,
        t: KdfParams::MIN_T,
        p: 1,
    };
    let salt = [7u8; 16];
    let keys = derive_account_keys("bench password", &salt, &params).map_err(|e| e.to_string())?;
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .map_err(|e| e.to_string())?;
    let register = RegisterRequest::new("uploader", params, salt, &keys, &secrets, &mut OsRng);
    check(
        client
            .post(format!("{base}{}", Register::INFO.path))
            .json(&register)
            .send()
            .await
            .map_err(|e| e.to_string())?,
        "register",
    )?;
    let room = create_room(
        "uploader",
        &secrets,
        &RoomMetadata::named("files"),
        now_ms(),
        &mut OsRng,
    )
    .map_err(|e| e.to_string())?;
    check(
        client
            .post(format!("{base}{}", CreateRoom::INFO.path))
            .json(&CreateRoomRequest {
                genesis: Base64(room.genesis.as_bytes().to_vec()),
                key_envelope: room.creator_envelope.clone(),
            })
            .send()
            .await
            .map_err(|e| e.to_string())?,
        "create room",
    )?;
    let mut state = room.state.clone();
    let policy = common::membership::RoomPolicy {
        max_attachment_bytes: FILE_SIZE as u64,
        ..*state.policy()
    };
    let entry = state
        .next_entry(
            "uploader",
            now_ms(),
            common::membership::LogAction::SetPolicy { policy },
        )
        .sign(&secrets);
    state.apply(&entry).map_err(|e| e.to_string())?;
    let room_params = RoomParams {
        room_id: state.room_id(),
    };
    check(
        client
            .post(format!("{base}{}", AppendLog::path(&room_params)))
            .json(&common::api::AppendLogRequest {
                entry: Base64(entry.as_bytes().to_vec()),
                envelopes: Vec::new(),
            })
            .send()
            .await
            .map_err(|e| e.to_string())?,
        "set policy",
    )?;
    let file: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let megabytes = FILE_SIZE as f64 / 1_000_000.0;

    for chunk_size in CHUNK_SIZES {
        let cipher = AttachmentCipher::generate(FILE_SIZE as u64, chunk_size, &mut OsRng)
            .map_err(|e| e.to_string())?;
        let attachment = AttachmentParams {
            room_id: room_params.room_id,
            attachment_id: cipher.id,
        };
        let started = Instant::now();
        check(
            client
                .post(format!("{base}{}", AnnounceAttachment::path(&room_params)))
                .json(&NewAttachmentRequest {
                    id: Base64Array(cipher.id),
                    size: FILE_SIZE as u64,
                    chunk_size,
                })
                .send()
                .await
                .map_err(|e| e.to_string())?,
            "announce",
        )?;
        let mut hash = CiphertextHash::default();
        for (index, part) in (0u32..).zip(file.chunks(chunk_size as usize)) {
            let sealed = cipher.seal_chunk(index, part).map_err(|e| e.to_string())?;
            hash.update(&sealed);
            check(
                client
                    .put(format!(
                        "{base}{}",
                        UploadChunk::path(&ChunkParams {
                            room_id: room_params.room_id,
                            attachment_id: cipher.id,
                            index,
                        })
                    ))
                    .body(sealed)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?,
                "chunk",
            )?;
        }
        let digest = hash.finish();
        let upload = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut hash = CiphertextHash::default();
        let mut opened = 0usize;
        for index in 0..cipher.layout.chunk_count() {
            let start = cipher.layout.ciphertext_offset(index);
            let length = cipher.layout.ciphertext_len(index).unwrap_or_default() as u64;
            let bytes = check(
                client
                    .get(format!("{base}{}", DownloadAttachment::path(&attachment)))
                    .header(
                        reqwest::header::RANGE,
                        format!("bytes={start}-{}", start + length - 1),
                    )
                    .send()
                    .await
                    .map_err(|e| e.to_string())?,
                "range",
            )?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
            hash.update(&bytes);
            opened += cipher
                .open_chunk(index, &bytes)
                .map_err(|e| e.to_string())?
                .len();
        }
        if hash.finish() != digest || opened != FILE_SIZE {
            return Err("the downloaded file differs".into());
        }
        let download = started.elapsed().as_secs_f64();
        println!(
            "attachment 100 MiB, chunks of {} KiB ({} requests each way): encrypt+upload {:.0} MB/s, download+decrypt {:.0} MB/s",
            chunk_size / 1024,
            cipher.layout.chunk_count(),
            megabytes / upload,
            megabytes / download
        );
    }
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("cannot start tokio: {error}"));
    if let Err(error) = runtime.block_on(run()) {
        eprintln!("attachment bench failed: {error}");
        std::process::exit(1);
    }
}
