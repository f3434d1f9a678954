//! The project's relay under load: the real server (in this process, on a loopback port,
//! with a fresh database), real accounts and sessions, a real room with a signed log, and
//! real sealed messages.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::account::{derive_account_keys, KdfParams};
use common::api::endpoints::{
    AppendLog, Connect, CreateRoom, Endpoint, PostMessage, Register, RoomParams,
};
use common::api::{AppendLogRequest, CreateRoomRequest, PostMessageRequest, RegisterRequest};
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomPolicy, RoomState};
use common::message::{seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;

use crate::load::{self, Outcome, Prepared};
use crate::{BenchResult, Workload};

/// A registered account with its session.
pub struct Member {
    /// The username.
    pub name: String,
    secrets: IdentitySecrets,
    client: reqwest::Client,
    /// `name=value` of the session cookie.
    pub cookie: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

/// Registers `name` at `base` (with the smallest KDF parameters the server accepts: the
/// bench measures the relay, not Argon2) and returns the account with its session.
pub async fn register(base: &str, name: &str) -> BenchResult<Member> {
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
        .post(format!("{base}{}", Register::INFO.path))
        .json(&request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("register {name}: {}", response.status()));
    }
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

/// Posts the JSON `body` (already serialized) to `url` as `member`.
async fn post_bytes(member: &Member, url: &str, body: Bytes) -> BenchResult<()> {
    let response = member
        .client
        .post(url)
        .header(reqwest::header::COOKIE, &member.cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: {}", response.status()))
    }
}

async fn post_json<T: serde::Serialize>(member: &Member, url: &str, body: &T) -> BenchResult<()> {
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    post_bytes(member, url, Bytes::from(body)).await
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
        &format!("{base}{}", AppendLog::path(&room_of(state))),
        &AppendLogRequest {
            entry: Base64(entry.as_bytes().to_vec()),
            envelopes: Vec::new(),
        },
    )
    .await
}

/// A running server with a room whose members are registered.
pub struct Deployment {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The members, the owner first.
    pub members: Vec<Member>,
    /// The room's log as its members replayed it.
    pub state: RoomState,
    /// The room key of epoch 0.
    pub key: RoomKey,
    _data: tempfile::TempDir,
}

/// Starts the server on `database_url` (a fresh SQLite file when `None`) and sets up a room
/// of `members` members with no rate limit.
pub async fn deploy(database_url: Option<String>, members: usize) -> BenchResult<Deployment> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let database_url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", data.path().join("relay.db").display()));
    let mut config = server::Config::new(database_url, data.path());
    config.bind = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    config.server_key_file = Some(data.path().join("server.key"));
    config.register_attempts = u32::MAX;
    let attachments = url::Url::from_directory_path(data.path().join("attachments"))
        .map_err(|()| "bad attachment folder")?;
    config.attachments_url = Some(attachments.to_string());
    let application = server::Application::build(config)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());

    let mut registered = Vec::with_capacity(members);
    for index in 0..members {
        registered.push(register(&base, &format!("member{index:03}")).await?);
    }
    let (state, key) = create_room_of(&base, &registered).await?;
    Ok(Deployment {
        base,
        members: registered,
        state,
        key,
        _data: data,
    })
}

/// Creates a room owned by the first of `members` with the others added and no rate limit,
/// and returns its log and epoch 0 key.
pub async fn create_room_of(base: &str, members: &[Member]) -> BenchResult<(RoomState, RoomKey)> {
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
        &format!("{base}{}", CreateRoom::INFO.path),
        &CreateRoomRequest {
            genesis: Base64(room.genesis.as_bytes().to_vec()),
            key_envelope: room.creator_envelope.clone(),
        },
    )
    .await?;
    let mut state = room.state.clone();
    // No per-member rate limit for the load test.
    let unlimited = RoomPolicy {
        messages_per_minute: 0,
        ..RoomPolicy::default()
    };
    append(
        base,
        owner,
        &mut state,
        LogAction::SetPolicy { policy: unlimited },
    )
    .await?;
    for member in &members[1..] {
        append(
            base,
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
    Ok((state, room.key.clone()))
}

/// The JSON body posting text number `sequence` of `payload` bytes by `member` (writing from
/// device number `device`), sealed under `key` in epoch 0 of the room `state` describes.
pub fn sealed_body(
    state: &RoomState,
    key: &RoomKey,
    member: &Member,
    device: usize,
    sequence: usize,
    payload: usize,
) -> BenchResult<Bytes> {
    let inner = InnerMessage {
        room_id: state.room_id(),
        epoch: 0,
        sender: member.name.clone(),
        chain: ChainLink {
            device: [u8::try_from(device % 256).unwrap_or(0); 16],
            counter: sequence as u64 + 1,
            prev_hash: if sequence == 0 { [0; 32] } else { [1; 32] },
        },
        log_length: state.length(),
        log_head: state.head_hash(),
        sent_at_ms: now_ms() as u64,
        kind: MessageKind::Text,
        body: vec![b'x'; payload],
    };
    let sealed =
        seal_message(&inner, key, &member.secrets, &mut OsRng).map_err(|e| e.to_string())?;
    let body = PostMessageRequest {
        epoch: 0,
        nonce: Base64Array(sealed.nonce),
        ciphertext: Base64(sealed.ciphertext),
        attachments: Vec::new(),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Posts `body` to the room `state` describes as `member`.
pub async fn post_body(
    base: &str,
    state: &RoomState,
    member: &Member,
    body: Bytes,
) -> BenchResult<()> {
    let url = format!("{base}{}", PostMessage::path(&room_of(state)));
    post_bytes(member, &url, body).await
}

impl Deployment {
    /// `messages` sealed messages of `payload` bytes of text for each of `senders` members
    /// (taken in turn), as post bodies.
    pub fn prepare(
        &self,
        senders: usize,
        messages: usize,
        payload: usize,
    ) -> BenchResult<Prepared> {
        Prepared::new(senders, messages, |sender, sequence| {
            let member = &self.members[sender % self.members.len()];
            sealed_body(&self.state, &self.key, member, sender, sequence, payload)
        })
    }

    fn messages_url(&self) -> String {
        format!("{}{}", self.base, PostMessage::path(&room_of(&self.state)))
    }

    /// Each poster's client and session cookie.
    fn clients(&self, senders: usize) -> Vec<(reqwest::Client, Option<String>)> {
        (0..senders)
            .map(|sender| {
                let member = &self.members[sender % self.members.len()];
                (member.client.clone(), Some(member.cookie.clone()))
            })
            .collect()
    }
}

/// Runs `workload` through the project's relay on SQLite: every member connected, the first
/// `senders` members posting the prepared messages.
pub async fn fan_out(
    deployment: &Deployment,
    prepared: Arc<Prepared>,
    workload: Workload,
) -> BenchResult<Outcome> {
    let ws_url = format!(
        "{}{}",
        deployment.base.replace("http://", "ws://"),
        Connect::INFO.path
    );
    let mut listeners = Vec::with_capacity(deployment.members.len());
    for member in &deployment.members {
        listeners.push(
            load::listen(
                &ws_url,
                Some(&member.cookie),
                prepared.clone(),
                prepared.len(),
            )
            .await?,
        );
    }
    load::run(
        &deployment.messages_url(),
        &prepared,
        &deployment.clients(workload.senders),
        listeners,
    )
    .await
}

/// Durable posts per second: `concurrency` posts in flight at all times (spread over the
/// room's members, nobody connected), `total` in all, each acknowledged only once its
/// batch is committed.
pub async fn durable(
    deployment: &Deployment,
    concurrency: usize,
    total: usize,
    payload: usize,
) -> BenchResult<(usize, Duration)> {
    let per_task = total.div_ceil(concurrency);
    let prepared = Arc::new(deployment.prepare(concurrency, per_task, payload)?);
    let started = Instant::now();
    load::send_all(
        &deployment.messages_url(),
        &prepared,
        &deployment.clients(concurrency),
    )
    .await?;
    Ok((prepared.len(), started.elapsed()))
}

/// The path parameters of `state`'s room.
fn room_of(state: &RoomState) -> RoomParams {
    RoomParams {
        room_id: state.room_id(),
    }
}
