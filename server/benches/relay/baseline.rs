//! The baseline: a bare axum broadcast relay with no authentication, storage or crypto.
//! `POST /post` hands the body to a `tokio::sync::broadcast` channel and answers 204 at once;
//! every `GET /ws` socket forwards each body as a text frame. What the project's relay is
//! compared with: the cost of HTTP, WebSockets and fan-out on this machine, and nothing more.

use std::future::IntoFuture;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::load::{self, Outcome, Prepared};
use crate::{BenchResult, Workload};

/// Bodies a slow socket may fall behind by before it misses some (counted as lost).
const BACKLOG: usize = 65_536;

async fn publish(State(channel): State<broadcast::Sender<Utf8Bytes>>, body: Bytes) -> StatusCode {
    match Utf8Bytes::try_from(body) {
        Ok(text) => {
            // No subscriber is not an error for a relay.
            let _ = channel.send(text);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn subscribe(
    State(channel): State<broadcast::Sender<Utf8Bytes>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Subscribed before the handshake is answered: nothing sent after it is missed.
    let receiver = channel.subscribe();
    upgrade.on_upgrade(move |socket| forward(socket, receiver))
}

async fn forward(mut socket: WebSocket, mut receiver: broadcast::Receiver<Utf8Bytes>) {
    loop {
        match receiver.recv().await {
            Ok(text) => {
                if socket.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Starts the baseline relay on a loopback port and returns its base URL.
async fn start() -> BenchResult<String> {
    let (channel, _) = broadcast::channel::<Utf8Bytes>(BACKLOG);
    let router = Router::new()
        .route("/post", post(publish))
        .route("/ws", get(subscribe))
        .with_state(channel);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(axum::serve(listener, router).into_future());
    Ok(format!("127.0.0.1:{port}"))
}

/// Runs `workload` through the baseline: the same prepared bodies, the same number of
/// listeners and senders as the project's relay gets.
pub async fn measure(workload: Workload, prepared: Arc<Prepared>) -> BenchResult<Outcome> {
    let address = start().await?;
    let mut listeners = Vec::with_capacity(workload.members);
    for _ in 0..workload.members {
        listeners.push(
            load::listen(
                &format!("ws://{address}/ws"),
                None,
                prepared.clone(),
                prepared.len(),
            )
            .await?,
        );
    }
    let clients = vec![(reqwest::Client::new(), None); workload.senders];
    load::run(
        &format!("http://{address}/post"),
        &prepared,
        &clients,
        listeners,
    )
    .await
}
