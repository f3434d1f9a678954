//! The load both relays are measured under: listeners on WebSockets, senders posting
//! prepared bodies over HTTP one after the other, and the send-to-receive latency of each
//! delivery, found by the message's nonce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::BenchResult;

/// Every wait of a run ends after this long, whatever happened.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// A listener stops counting when nothing arrived for this long (deliveries were lost).
const QUIET: Duration = Duration::from_secs(10);

/// What a listener counted: the latency of each delivery, in microseconds, and when the
/// last one arrived (nanoseconds on the run's clock).
pub type Heard = (Vec<u64>, u64);

/// Where the nonce of a message starts in an event or a post body: both carry the
/// message's nonce as the JSON string `"nonce":"<32 base64 characters>"`.
const NONCE_FIELD: &str = "\"nonce\":\"";
/// Base64 characters of a 24-byte nonce.
const NONCE_CHARS: usize = 32;

/// The nonce (as base64 text) of the message in `json`, if any.
pub fn nonce_of(json: &str) -> Option<&str> {
    let start = json.find(NONCE_FIELD)? + NONCE_FIELD.len();
    json.get(start..start + NONCE_CHARS)
}

/// The messages of a run, prepared before it starts so that sealing them is not measured:
/// each sender's bodies in order, and the send time of each message by its nonce.
pub struct Prepared {
    /// The JSON bodies each sender posts, in order.
    pub bodies: Vec<Vec<Bytes>>,
    /// The index of each message (in `sent_ns`) by its nonce.
    index: HashMap<String, usize>,
    /// When each message was sent, nanoseconds after `origin`.
    sent_ns: Vec<AtomicU64>,
    /// The run's clock.
    origin: Instant,
}

impl Prepared {
    /// Prepares the bodies `make(sender, sequence)` for every sender and sequence.
    pub fn new(
        senders: usize,
        messages: usize,
        mut make: impl FnMut(usize, usize) -> BenchResult<Bytes>,
    ) -> BenchResult<Self> {
        let mut bodies = Vec::with_capacity(senders);
        let mut index = HashMap::with_capacity(senders * messages);
        for sender in 0..senders {
            let mut own = Vec::with_capacity(messages);
            for sequence in 0..messages {
                let body = make(sender, sequence)?;
                let text = std::str::from_utf8(&body).map_err(|e| e.to_string())?;
                let nonce = nonce_of(text).ok_or("a body without a nonce")?;
                index.insert(nonce.to_owned(), index.len());
                own.push(body);
            }
            bodies.push(own);
        }
        let sent_ns = (0..index.len()).map(|_| AtomicU64::new(0)).collect();
        Ok(Self {
            bodies,
            index,
            sent_ns,
            origin: Instant::now(),
        })
    }

    /// Notes that `body` is being sent now.
    fn sent(&self, body: &[u8]) {
        let index = std::str::from_utf8(body)
            .ok()
            .and_then(nonce_of)
            .and_then(|nonce| self.index.get(nonce));
        if let Some(index) = index {
            self.sent_ns[*index].store(self.now_ns(), Ordering::Relaxed);
        }
    }

    /// The latency of a delivery of the message in `event`, in microseconds.
    fn latency_us(&self, event: &str) -> Option<u64> {
        let index = self.index.get(nonce_of(event)?)?;
        let sent = self.sent_ns[*index].load(Ordering::Relaxed);
        Some(self.now_ns().saturating_sub(sent) / 1_000)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Messages in all.
    pub fn len(&self) -> usize {
        self.index.len()
    }
}

/// Opens a WebSocket to `url` (with `cookie`, if any) and returns the task that counts
/// `expected` deliveries on it.
pub async fn listen(
    url: &str,
    cookie: Option<&str>,
    prepared: Arc<Prepared>,
    expected: usize,
) -> BenchResult<tokio::task::JoinHandle<Heard>> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert(
            "cookie",
            cookie.parse().map_err(|_| "bad cookie".to_owned())?,
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(tokio::spawn(async move {
        let (_, mut read) = socket.split();
        let mut latencies = Vec::with_capacity(expected);
        let mut last = 0;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while latencies.len() < expected {
            let wait = (tokio::time::Instant::now() + QUIET).min(deadline);
            let Ok(Some(Ok(frame))) = tokio::time::timeout_at(wait, read.next()).await else {
                break;
            };
            if let Ok(text) = frame.to_text() {
                if let Some(latency) = prepared.latency_us(text) {
                    latencies.push(latency);
                    last = prepared.now_ns();
                }
            }
        }
        (latencies, last)
    }))
}

/// Has each sender post its bodies to `url` one after the other (each waiting for its
/// answer), with `client(sender)` and `cookie(sender)`; returns when all are answered.
///
/// # Errors
/// The first failed post.
pub async fn send_all(
    url: &str,
    prepared: &Arc<Prepared>,
    clients: &[(reqwest::Client, Option<String>)],
) -> BenchResult<()> {
    let mut tasks = Vec::with_capacity(prepared.bodies.len());
    for (sender, bodies) in prepared.bodies.iter().enumerate() {
        let (client, cookie) = clients[sender % clients.len()].clone();
        let (url, bodies, prepared) = (url.to_owned(), bodies.clone(), prepared.clone());
        tasks.push(tokio::spawn(async move {
            for body in bodies {
                prepared.sent(&body);
                let mut request = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some(cookie) = &cookie {
                    request = request.header(reqwest::header::COOKIE, cookie);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("{url}: {}", response.status()));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Posts acknowledged.
    pub posts: usize,
    /// From the first post to the last answer.
    pub posted_in: Duration,
    /// Deliveries counted (expected: posts times listeners).
    pub deliveries: usize,
    /// Deliveries expected.
    pub expected: usize,
    /// From the first post to the last delivery.
    pub delivered_in: Duration,
    /// Send-to-receive latencies, microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

impl Outcome {
    /// Acknowledged posts per second.
    pub fn posts_per_second(&self) -> f64 {
        self.posts as f64 / self.posted_in.as_secs_f64()
    }

    /// Deliveries per second.
    pub fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.delivered_in.as_secs_f64()
    }

    /// The latency at `fraction` (0.5 for the median), in milliseconds.
    pub fn latency_ms(&self, fraction: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let at = ((self.latencies_us.len() - 1) as f64 * fraction).round() as usize;
        self.latencies_us[at] as f64 / 1_000.0
    }
}

/// Runs one fan-out measurement: `listeners` are already connected and counting; the
/// senders post every prepared body to `post_url`.
///
/// # Errors
/// A failed post or a listener that panicked.
pub async fn run(
    post_url: &str,
    prepared: &Arc<Prepared>,
    clients: &[(reqwest::Client, Option<String>)],
    listeners: Vec<tokio::task::JoinHandle<Heard>>,
) -> BenchResult<Outcome> {
    let expected = prepared.len() * listeners.len();
    let started = prepared.now_ns();
    send_all(post_url, prepared, clients).await?;
    let posted_in = Duration::from_nanos(prepared.now_ns() - started);
    let mut latencies_us = Vec::with_capacity(expected);
    let mut last = started;
    for listener in listeners {
        let (heard, last_heard) = listener.await.map_err(|e| e.to_string())?;
        latencies_us.extend(heard);
        last = last.max(last_heard);
    }
    let delivered_in = Duration::from_nanos(last - started);
    latencies_us.sort_unstable();
    Ok(Outcome {
        posts: prepared.len(),
        posted_in,
        deliveries: latencies_us.len(),
        expected,
        delivered_in,
        latencies_us,
    })
}
