//! The WebSocket side of the test client: opening a socket with a user's session cookie and
//! reading the server's events.

use common::api::ServerEvent;
use futures_util::StreamExt;
use reqwest::cookie::CookieStore;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, TestUser};

/// A client-side WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl TestApp {
    /// Opens a WebSocket as `user` (with their session cookie), optionally with an `Origin`.
    ///
    /// # Errors
    /// The handshake error, e.g. an HTTP refusal.
    pub async fn try_connect_ws(
        &self,
        cookie: Option<HeaderValue>,
        origin: Option<&str>,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://127.0.0.1:{}/api/ws", self.port)
            .into_client_request()
            .expect("websocket request");
        if let Some(cookie) = cookie {
            request.headers_mut().insert("cookie", cookie);
        }
        if let Some(origin) = origin {
            let origin = HeaderValue::from_str(origin).expect("origin header");
            request.headers_mut().insert("origin", origin);
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(socket, _)| socket)
    }

    /// Opens a WebSocket as `user` from the app's own origin.
    pub async fn connect_ws(&self, user: &TestUser) -> Socket {
        let origin = self.address.clone();
        self.try_connect_ws(Some(self.session_cookie(user)), Some(&origin))
            .await
            .expect("websocket connects")
    }

    /// The `Cookie` header `user`'s client would send to this app.
    pub fn session_cookie(&self, user: &TestUser) -> HeaderValue {
        let url = self.address.parse().expect("url");
        let cookie = user.jar.cookies(&url).expect("user has a session cookie");
        HeaderValue::from_bytes(cookie.as_bytes()).expect("cookie header")
    }
}

/// The next server event on `socket` if one arrives within `wait`, skipping pings.
pub async fn event_within(socket: &mut Socket, wait: std::time::Duration) -> Option<ServerEvent> {
    tokio::time::timeout(wait, next_event(socket)).await.ok()
}

/// The ids of the next `count` events on `socket`, each of which must be a message.
pub async fn message_ids(socket: &mut Socket, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        match next_event(socket).await {
            ServerEvent::Message { message } => ids.push(message.id),
            other => panic!("expected a message, got {other:?}"),
        }
    }
    ids
}

/// Waits (at most five seconds) for the next server event on `socket`, skipping pings.
pub async fn next_event(socket: &mut Socket) -> ServerEvent {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str::<ServerEvent>(&text)
                        .unwrap_or_else(|error| panic!("{text}: {error}"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("unexpected websocket item: {other:?}"),
            }
        }
    });
    wait.await.expect("an event arrives within five seconds")
}
