//! The memory of idle connections: the server binary runs as its own process (so that its
//! resident memory is its own), accounts register and log in, and then `connections`
//! authenticated WebSockets open and stay idle. The growth of the server's resident set
//! (`VmRSS` in `/proc/PID/status`) divided by the connections is the cost of each.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::api::endpoints::{Connect, Endpoint};
use futures_util::stream::{self, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::chat::{create_room_of, post_body, register, sealed_body};
use crate::BenchResult;

/// Connections opened at the same time.
const OPENING_AT_ONCE: usize = 64;
/// How long the server is left to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);

/// What the idle run measured.
#[derive(Debug, Clone, Copy)]
pub struct IdleMemory {
    /// Connections open when memory was read.
    pub connections: usize,
    /// The server's resident set before the connections, KiB.
    pub before_kib: u64,
    /// The server's resident set with them, KiB.
    pub after_kib: u64,
    /// Messages each connection then received.
    pub burst: usize,
    /// The server's resident set after they did, KiB.
    pub after_burst_kib: u64,
}

impl IdleMemory {
    /// KiB of resident memory per connection.
    pub fn kib_each(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.connections.max(1) as f64
    }

    /// KiB of resident memory per connection once each received [`Self::burst`] messages.
    pub fn kib_each_after_burst(&self) -> f64 {
        self.after_burst_kib.saturating_sub(self.before_kib) as f64 / self.connections.max(1) as f64
    }
}

/// The server process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` of process `pid`, in KiB.
fn resident_kib(pid: u32) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_owned())
}

/// The soft limit on open files of this process (`ulimit -n`), which the server inherits.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Starts `server_bin` on a free loopback port with a fresh SQLite database in `data`.
async fn start(server_bin: &Path, data: &Path) -> BenchResult<(ServerProcess, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new(server_bin)
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", data.join("idle.db").display()))
        .arg("--static-dir")
        .arg(data)
        .arg("--register-attempts")
        .arg(u32::MAX.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", server_bin.display()))?;
    let process = ServerProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                return Ok((process, base));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{} did not become healthy", server_bin.display()))
}

/// Opens `connections` idle WebSockets, spread over `users` accounts, to `server_bin` and
/// returns the server's memory before and with them, and after `burst` messages posted at
/// once to a room of all the accounts reached every connection.
///
/// # Errors
/// A limit on open files too low for the connections, a server that does not start, or a
/// connection refused.
pub async fn measure(
    server_bin: &Path,
    connections: usize,
    users: usize,
    burst: usize,
) -> BenchResult<IdleMemory> {
    let needed = connections + 1_000;
    if let Some(limit) = open_file_limit() {
        if limit < needed {
            return Err(format!(
                "{connections} connections need `ulimit -n` of at least {needed} (it is {limit})"
            ));
        }
    }
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (process, base) = start(server_bin, data.path()).await?;
    let mut accounts = Vec::with_capacity(users);
    for index in 0..users.max(1) {
        accounts.push(register(&base, &format!("idle{index:04}")).await?);
    }
    let ws_url = format!("{}{}", base.replace("http://", "ws://"), Connect::INFO.path);
    tokio::time::sleep(SETTLE).await;
    let before_kib = resident_kib(process.0.id())?;
    let sockets: Vec<_> = stream::iter(0..connections)
        .map(|index| {
            let cookie = accounts[index % accounts.len()].cookie.clone();
            let ws_url = ws_url.clone();
            async move {
                let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
                request.headers_mut().insert(
                    "cookie",
                    cookie.parse().map_err(|_| "bad cookie".to_owned())?,
                );
                tokio_tungstenite::connect_async(request)
                    .await
                    .map(|(socket, _)| socket)
                    .map_err(|e| format!("connection {index}: {e}"))
            }
        })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let mut sockets = sockets.into_iter().collect::<BenchResult<Vec<_>>>()?;
    tokio::time::sleep(SETTLE).await;
    let after_kib = resident_kib(process.0.id())?;

    let (state, key) = create_room_of(&base, &accounts).await?;
    let owner = &accounts[0];
    let posts = (0..burst).map(|sequence| {
        let body = sealed_body(&state, &key, owner, 0, sequence, 256);
        let (base, state) = (&base, &state);
        async move { post_body(base, state, owner, body?).await }
    });
    for posted in futures_util::future::join_all(posts).await {
        posted?;
    }
    // Every connection reads its messages, then idles.
    let reads = sockets.iter_mut().map(|socket| async move {
        let mut messages = 0;
        while messages < burst {
            match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                Ok(Some(Ok(frame))) => {
                    if frame.to_text().is_ok_and(|text| text.contains("\"nonce\"")) {
                        messages += 1;
                    }
                }
                _ => break,
            }
        }
        messages
    });
    let received: usize = stream::iter(reads)
        .buffer_unordered(OPENING_AT_ONCE)
        .collect::<Vec<usize>>()
        .await
        .into_iter()
        .sum();
    if received < connections * burst {
        return Err(format!(
            "only {received} of {} messages reached the connections",
            connections * burst
        ));
    }
    tokio::time::sleep(SETTLE).await;
    let after_burst_kib = resident_kib(process.0.id())?;
    drop(sockets);
    Ok(IdleMemory {
        connections,
        before_kib,
        after_kib,
        burst,
        after_burst_kib,
    })
}
