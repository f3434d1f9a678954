//! The load the fault tests put on a deployment, through nginx like real clients: accounts
//! that register, rooms whose members all listen on a WebSocket, posters that send real
//! encrypted messages, and listeners that, when their socket ends, connect again and resume
//! each room from the last id they saw (`GET /api/rooms/{id}/messages?after=ID`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::account::{derive_account_keys, KdfParams};
use common::api::endpoints::{
    AppendLog, Connect, CreateRoom, Endpoint, ListMessages, PageQuery, PostMessage, QueryParams,
    Register, RoomParams,
};
use common::api::{
    AppendLogRequest, CreateRoomRequest, MessagesResponse, PostMessageRequest, RegisterRequest,
    ServerEvent, StoredMessage,
};
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomId, RoomPolicy, RoomState};
use common::message::{seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A registered account and its session.
pub struct Account {
    pub name: String,
    pub secrets: IdentitySecrets,
    cookie: String,
    http: reqwest::Client,
}

/// A room of the load: its members (indexes into the accounts), key and log.
pub struct LoadRoom {
    pub id: RoomId,
    pub key: RoomKey,
    pub state: RoomState,
    pub members: Vec<usize>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Registers `name` through `base` with the cheapest KDF parameters a client accepts.
pub async fn register(base: &str, name: &str) -> Account {
    let params = KdfParams {
        m_kib: KdfParams::MIN_M_KIB,
        t: KdfParams::MIN_T,
        p: 1,
    };
    let salt = [7u8; 16];
    let keys = tokio::task::spawn_blocking(move || {
        derive_account_keys("fault test password", &salt, &params).unwrap()
    })
    .await
    .unwrap();
    let secrets = IdentitySecrets::generate(&mut OsRng);
    let request = RegisterRequest::new(name, params, salt, &keys, &secrets, &mut OsRng);
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base}{}", Register::INFO.path))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "register {name}: {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    Account {
        name: name.to_owned(),
        secrets,
        cookie,
        http,
    }
}

impl Account {
    async fn post_json<T: serde::Serialize>(&self, url: &str, body: &T) -> reqwest::Response {
        self.http
            .post(url)
            .header(reqwest::header::COOKIE, &self.cookie)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()));
        }
        response.json().await.map_err(|error| error.to_string())
    }
}

/// Creates a room owned by `accounts[members[0]]` with every other member added and no rate
/// limit.
pub async fn create_load_room(base: &str, accounts: &[Account], members: Vec<usize>) -> LoadRoom {
    let owner = &accounts[members[0]];
    let room = create_room(
        &owner.name,
        &owner.secrets,
        &RoomMetadata::named("load"),
        now_ms(),
        &mut OsRng,
    )
    .unwrap();
    let response = owner
        .post_json(
            &format!("{base}{}", CreateRoom::INFO.path),
            &CreateRoomRequest {
                genesis: Base64(room.genesis.as_bytes().to_vec()),
                key_envelope: room.creator_envelope.clone(),
            },
        )
        .await;
    assert!(
        response.status().is_success(),
        "create: {}",
        response.status()
    );
    let mut state = room.state.clone();
    let mut actions = vec![LogAction::SetPolicy {
        policy: RoomPolicy {
            messages_per_minute: 0,
            ..RoomPolicy::default()
        },
    }];
    for &member in &members[1..] {
        actions.push(LogAction::AddMember {
            username: accounts[member].name.clone(),
            keys: accounts[member].secrets.public_keys(),
            role: Role::Member,
        });
    }
    for action in actions {
        let entry = state
            .next_entry(&owner.name, now_ms(), action)
            .sign(&owner.secrets);
        state.apply(&entry).unwrap();
        let response = owner
            .post_json(
                &format!(
                    "{base}{}",
                    AppendLog::path(&RoomParams {
                        room_id: state.room_id()
                    })
                ),
                &AppendLogRequest {
                    entry: Base64(entry.as_bytes().to_vec()),
                    envelopes: Vec::new(),
                },
            )
            .await;
        assert!(
            response.status().is_success(),
            "append: {}",
            response.status()
        );
    }
    LoadRoom {
        id: state.room_id(),
        key: room.key,
        state,
        members,
    }
}

/// The text of message `sequence` of `poster`: what the final check decrypts to find
/// duplicates.
pub fn body_of(poster: &str, sequence: usize) -> String {
    format!("{poster}:{sequence}")
}

/// How long a poster waits after a post that failed.
const FAILED_POST_PAUSE: Duration = Duration::from_millis(200);

/// What the posters did.
#[derive(Debug, Default)]
pub struct Posted {
    /// Posts sent.
    pub sent: usize,
    /// (room, id) of every post answered 201.
    pub acknowledged: Vec<(RoomId, i64)>,
}

/// Posts `count` messages from `poster` to `room`, one after the other, each waiting for its
/// answer; a failed post is not sent again (it may have been stored; a real client would
/// send it again with the same chain link, and its readers would drop the copy), and the
/// next one waits [`FAILED_POST_PAUSE`].
pub async fn post_messages(
    base: String,
    poster: Arc<Account>,
    room: Arc<LoadRoom>,
    count: usize,
    posted: Arc<Mutex<Posted>>,
) {
    for sequence in 0..count {
        let inner = InnerMessage {
            room_id: room.id,
            epoch: room.state.current_epoch(),
            sender: poster.name.clone(),
            chain: ChainLink {
                device: [1; 16],
                counter: sequence as u64 + 1,
                prev_hash: if sequence == 0 { [0; 32] } else { [1; 32] },
            },
            log_length: room.state.length(),
            log_head: room.state.head_hash(),
            sent_at_ms: now_ms(),
            kind: MessageKind::Text,
            body: body_of(&poster.name, sequence).into_bytes(),
        };
        let sealed = seal_message(&inner, &room.key, &poster.secrets, &mut OsRng).unwrap();
        let body = PostMessageRequest {
            epoch: room.state.current_epoch(),
            nonce: Base64Array(sealed.nonce),
            ciphertext: Base64(sealed.ciphertext),
            attachments: Vec::new(),
        };
        posted.lock().unwrap().sent += 1;
        let response = poster
            .http
            .post(format!(
                "{base}{}",
                PostMessage::path(&RoomParams { room_id: room.id })
            ))
            .header(reqwest::header::COOKIE, &poster.cookie)
            .json(&body)
            .send()
            .await;
        let stored = match response {
            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                response.json::<StoredMessage>().await.ok()
            }
            _ => None,
        };
        match stored {
            Some(stored) => posted
                .lock()
                .unwrap()
                .acknowledged
                .push((room.id, stored.id)),
            // The deployment is failing over, say: wait a moment, as a client would.
            None => tokio::time::sleep(FAILED_POST_PAUSE).await,
        }
    }
}

/// What one listener received of one room.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    /// Ids in the order they were taken (each above the one before).
    pub ids: Vec<i64>,
    /// Messages received again (over the socket after a resume page had them), dropped.
    pub redelivered: usize,
    /// Messages received with an id below the last one taken that had not been received:
    /// a break of the room's order.
    pub out_of_order: usize,
}

impl Stream {
    fn last(&self) -> i64 {
        self.ids.last().copied().unwrap_or(0)
    }

    fn take(&mut self, id: i64) {
        if id > self.last() {
            self.ids.push(id);
        } else if self.ids.binary_search(&id).is_ok() {
            self.redelivered += 1;
        } else {
            self.out_of_order += 1;
        }
    }
}

/// One account's view of its rooms, shared with the test.
pub type Streams = Arc<Mutex<HashMap<RoomId, Stream>>>;

/// A room id as the bytes it is made of (for sets).
pub type RoomIdKey = [u8; 32];

/// Listens as `account` until `stop` is set: the WebSocket through nginx, connected again
/// (after a short pause) whenever it ends, each room then resumed from its last id. Returns
/// how many times it connected again.
pub async fn listen(
    base: String,
    account: Arc<Account>,
    rooms: Vec<RoomId>,
    streams: Streams,
    stop: Arc<std::sync::atomic::AtomicBool>,
    connected: tokio::sync::mpsc::Sender<()>,
) -> usize {
    let mut reconnects = 0;
    let mut first = true;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut request = format!("{}{}", base.replace("http://", "ws://"), Connect::INFO.path)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(&account.cookie).unwrap());
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(&base).unwrap());
        let Ok((socket, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        if first {
            first = false;
            let _ = connected.send(()).await;
        } else {
            reconnects += 1;
            // The socket is registered: what is stored from now on comes over it; what was
            // stored before is in the resume pages.
            if resume(&base, &account, &rooms, &streams).await.is_err() {
                continue;
            }
        }
        let (_, mut read) = socket.split();
        loop {
            let frame = tokio::time::timeout(Duration::from_millis(500), read.next()).await;
            match frame {
                Err(_) if stop.load(std::sync::atomic::Ordering::Relaxed) => return reconnects,
                Err(_) => continue,
                Ok(Some(Ok(frame))) => {
                    let Ok(text) = frame.into_text() else {
                        continue;
                    };
                    if let Ok(ServerEvent::Message { message }) =
                        serde_json::from_str::<ServerEvent>(&text)
                    {
                        let mut streams = streams.lock().unwrap();
                        streams.entry(message.room_id).or_default().take(message.id);
                    }
                }
                // Closed or broken: connect again.
                Ok(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reconnects
}

/// Takes every message after each room's last id, page by page.
async fn resume(
    base: &str,
    account: &Account,
    rooms: &[RoomId],
    streams: &Streams,
) -> Result<(), String> {
    for room in rooms {
        loop {
            let after = streams
                .lock()
                .unwrap()
                .get(room)
                .map(Stream::last)
                .unwrap_or(0);
            let page: MessagesResponse = account
                .get_json(&format!(
                    "{base}{}{}",
                    ListMessages::path(&RoomParams { room_id: *room }),
                    PageQuery {
                        before: None,
                        after: Some(after),
                        limit: Some(200),
                    }
                    .to_query()
                ))
                .await?;
            {
                let mut streams = streams.lock().unwrap();
                let stream = streams.entry(*room).or_default();
                for message in &page.messages {
                    stream.take(message.id);
                }
            }
            if !page.has_more {
                break;
            }
        }
    }
    Ok(())
}

/// What the database holds of one room at the end: its ids in order, and the bodies that
/// are there more than once.
pub struct Stored {
    pub ids: Vec<i64>,
    pub duplicated: usize,
}

/// Reads and opens every message of `room` from the database at `database_url`.
pub async fn stored(database_url: &str, room: &LoadRoom) -> Stored {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
    let rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT id, sender, nonce, ciphertext FROM messages WHERE room_id = $1 ORDER BY id",
    )
    .bind(room.id.0.as_slice())
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let mut bodies = BTreeSet::new();
    let mut duplicated = 0;
    let mut ids = Vec::with_capacity(rows.len());
    for (id, sender, nonce, ciphertext) in rows {
        let sealed = common::message::SealedMessage {
            room_id: room.id,
            epoch: room.state.current_epoch(),
            nonce: nonce.try_into().unwrap(),
            ciphertext,
        };
        let inner = common::message::open_message(&sealed, &sender, &room.key, &room.state)
            .expect("every stored message opens");
        if !bodies.insert(inner.body) {
            duplicated += 1;
        }
        ids.push(id);
    }
    Stored { ids, duplicated }
}
