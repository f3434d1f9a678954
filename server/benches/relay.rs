//! Load generator for the relay: starts the real server on a loopback port with a fresh
//! database, connects every member of one room over a WebSocket, has several members post
//! real encrypted messages at once, and reports throughput and fan-out latency (from the
//! server's receive time to each member's socket). Every loop is bounded in count and time and
//! only 127.0.0.1 is contacted. Run with `cargo xtask bench` (or `cargo bench -p server`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::account::{derive_account_keys, KdfParams};
use common::api::{
    AppendLogRequest, CreateRoomRequest, PostMessageRequest, RegisterRequest, ServerEvent,
};
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomPolicy, RoomState};
use common::message::{seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What to run: `cargo bench -p server --bench relay -- --members 100 --senders 50`.
#[derive(Debug, Clone, Copy, clap::Parser)]
struct Flags {
    /// Members of the room, all connected (the fan-out).
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Members who post at the same time, each waiting for its answer before the next.
    #[arg(long, default_value_t = 5)]
    senders: usize,
    /// Messages each sender posts.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Bytes of text in each message (before padding and encryption).
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}
/// The whole run stops after this long, whatever happened.
const DEADLINE: Duration = Duration::from_secs(120);

type BenchResult<T> = Result<T, String>;

struct Member {
    name: String,
    secrets: IdentitySecrets,
    client: reqwest::Client,
    cookie: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

async fn register(base: &str, name: &str) -> BenchResult<Member> {
    let params = KdfParams {
        m_kib: KdfParams::MIN_M_KIB,
        t: KdfParams::MIN_T,
        p: 1,
    };
    let salt = [7u8; 16];
    let keys = derive_account_keys("load generator password", &salt, &params)
        .map_err(|e| e.to_string())?;
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let request = RegisterRequest::new(name, params, salt, &keys, &secrets, &mut OsRng);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/api/register"))
        .json(&request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .ok_or("register set no cookie")?
        .to_owned();
    Ok(Member {
        name: name.to_owned(),
        secrets,
        client,
        cookie,
    })
}

async fn post_json<T: serde::Serialize>(
    member: &Member,
    url: &str,
    body: &T,
) -> BenchResult<reqwest::Response> {
    let response = member
        .client
        .post(url)
        .header(reqwest::header::COOKIE, &member.cookie)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(format!("{url}: {}", response.status()))
    }
}

async fn append(
    base: &str,
    owner: &Member,
    state: &mut RoomState,
    action: LogAction,
) -> BenchResult<()> {
    let entry = state
        .next_entry(&owner.name, now_ms() as u64, action)
        .sign(&owner.secrets);
    state.apply(&entry).map_err(|e| e.to_string())?;
    post_json(
        owner,
        &format!("{base}/api/rooms/{}/log", state.room_id()),
        &AppendLogRequest {
            entry: Base64(entry.as_bytes().to_vec()),
            envelopes: Vec::new(),
        },
    )
    .await
    .map(|_| ())
}

/// Counts `expected` message events on one member's socket and returns each one's latency
/// from the server's receive time, in milliseconds.
async fn listen(
    base: &str,
    member: &Member,
    expected: usize,
) -> BenchResult<tokio::task::JoinHandle<Vec<i64>>> {
    let mut request = format!("{}/api/ws", base.replace("http://", "ws://"))
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "cookie",
        member.cookie.parse().map_err(|_| "bad cookie".to_owned())?,
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tokio::spawn(async move {
        let (_, mut read) = socket.split();
        let mut latencies = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while latencies.len() < expected {
            let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, read.next()).await else {
                break;
            };
            if let Ok(text) = frame.into_text() {
                if let Ok(ServerEvent::Message { message }) =
                    serde_json::from_str::<ServerEvent>(&text)
                {
                    latencies.push(now_ms() - message.received_at_ms);
                }
            }
        }
        latencies
    }))
}

fn percentile(sorted: &[i64], fraction: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

async fn run(flags: Flags) -> BenchResult<()> {
    let Flags {
        members: member_count,
        senders: sender_count,
        messages: messages_per_sender,
        payload,
        ..
    } = flags;
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = server::Config::new(
        format!("sqlite://{}", data.path().join("relay.db").display()),
        data.path(),
    );
    config.bind = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    let application = server::Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());

    let mut members = Vec::with_capacity(member_count);
    for index in 0..member_count {
        members.push(register(&base, &format!("member{index:02}")).await?);
    }
    let owner = &members[0];
    let room = create_room(
        &owner.name,
        &owner.secrets,
        &RoomMetadata::named("load"),
        now_ms() as u64,
        &mut OsRng,
    )
    .map_err(|e| e.to_string())?;
    post_json(
        owner,
        &format!("{base}/api/rooms"),
        &CreateRoomRequest {
            genesis: Base64(room.genesis.as_bytes().to_vec()),
            key_envelope: room.creator_envelope.clone(),
        },
    )
    .await?;
    let mut state = room.state.clone();
    // No per-member rate limit for the load test.
    append(
        &base,
        owner,
        &mut state,
        LogAction::SetPolicy {
            policy: RoomPolicy {
                messages_per_minute: 0,
                ..RoomPolicy::default()
            },
        },
    )
    .await?;
    for member in &members[1..] {
        append(
            &base,
            owner,
            &mut state,
            LogAction::AddMember {
                username: member.name.clone(),
                keys: member.secrets.public_keys(),
                role: Role::Member,
            },
        )
        .await?;
    }

    let total = sender_count * messages_per_sender;
    let mut listeners = Vec::new();
    for member in &members {
        listeners.push(listen(&base, member, total).await?);
    }
    let members = Arc::new(members);
    let key = Arc::new(room.key.clone());
    let started = Instant::now();
    let mut senders = Vec::new();
    for sender in 0..sender_count {
        let (members, key, base, room_id) =
            (members.clone(), key.clone(), base.clone(), state.room_id());
        let (log_length, log_head) = (state.length(), state.head_hash());
        senders.push(tokio::spawn(async move {
            let member = &members[sender];
            for sequence in 0..messages_per_sender {
                let inner = InnerMessage {
                    room_id,
                    epoch: 0,
                    sender: member.name.clone(),
                    chain: ChainLink {
                        device: [1; 16],
                        counter: sequence as u64 + 1,
                        prev_hash: if sequence == 0 { [0; 32] } else { [1; 32] },
                    },
                    log_length,
                    log_head,
                    sent_at_ms: now_ms() as u64,
                    kind: MessageKind::Text,
                    body: vec![b'x'; payload],
                };
                let sealed =
                    seal_message(&inner, &RoomKey::clone(&key), &member.secrets, &mut OsRng)
                        .map_err(|e| e.to_string())?;
                post_json(
                    member,
                    &format!("{base}/api/rooms/{room_id}/messages"),
                    &PostMessageRequest {
                        epoch: 0,
                        nonce: Base64Array(sealed.nonce),
                        ciphertext: Base64(sealed.ciphertext),
                        attachments: Vec::new(),
                    },
                )
                .await?;
            }
            Ok::<(), String>(())
        }));
    }
    for sender in senders {
        sender.await.map_err(|e| e.to_string())??;
    }
    let posted_in = started.elapsed();
    let mut latencies = Vec::new();
    for listener in listeners {
        latencies.extend(listener.await.map_err(|e| e.to_string())?);
    }
    let delivered_in = started.elapsed();
    latencies.sort_unstable();
    let expected = total * member_count;
    println!(
        "relay load: {member_count} members connected, {sender_count} senders x {messages_per_sender} messages of {payload} bytes = {total} posts in {:.2} s ({:.0} posts/s); \
         {} of {expected} deliveries in {:.2} s ({:.0} deliveries/s); fan-out latency p50 {} ms, p99 {} ms, max {} ms",
        posted_in.as_secs_f64(),
        total as f64 / posted_in.as_secs_f64(),
        latencies.len(),
        delivered_in.as_secs_f64(),
        latencies.len() as f64 / delivered_in.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    if latencies.len() != expected {
        return Err(format!(
            "only {} of {expected} deliveries arrived",
            latencies.len()
        ));
    }
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("cannot start tokio: {error}"));
    let flags = <Flags as clap::Parser>::parse();
    if let Err(error) = runtime.block_on(run(flags)) {
        eprintln!("relay load failed: {error}");
        std::process::exit(1);
    }
}
