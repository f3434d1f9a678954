//! The hub of live WebSocket connections, and the handling of one connection.
//!
//! Each connection registers a bounded channel under its username and session; the handlers
//! push events with `try_send` and never wait on a slow client: a connection whose channel
//! is full is dropped from the hub, which closes it. When a session ends (revoked, logged
//! out, signed out by a password change, or the account deleted) its connections are sent a
//! close frame with code [`SESSION_ENDED_CLOSE_CODE`] and dropped from the hub; when the
//! server shuts down, every connection gets [`RESTART_CLOSE_CODE`].
//! [`serve_connection`] is written over any `Sink`/`Stream` pair so that tests can drive it
//! with channels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use common::api::ServerEvent;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::relay::Publisher;

/// Events a connection may have waiting before it is considered too slow and dropped.
pub const CONNECTION_BUFFER: usize = 256;
/// The most frames a connection's writer gathers before it flushes them (when that many are
/// waiting), so one busy connection cannot hold its task for long.
pub const MAX_FRAMES_PER_FLUSH: usize = 64;
/// How often the server pings each client to keep the connection (and proxies) alive.
pub const PING_INTERVAL: Duration = Duration::from_secs(25);
/// The answer to any text or binary frame a client sends.
pub const CLIENTS_USE_HTTP: &str = "clients send messages over http";
/// Close code sent when the connection's session ended (in the 4000-4999 range RFC 6455
/// section 7.4.2 leaves to applications; 4401 echoes HTTP 401).
pub const SESSION_ENDED_CLOSE_CODE: u16 = 4401;
/// Close reason sent with [`SESSION_ENDED_CLOSE_CODE`].
pub const SESSION_ENDED_REASON: &str = "session ended";
/// Close code sent to every connection when the server shuts down (SIGTERM or Ctrl-C) or
/// loses events it should have relayed: 1012 "Service Restart" (RFC 6455 section 7.4.1,
/// IANA WebSocket close code registry), which tells clients to reconnect (to this instance
/// once it is back, or to another behind the load balancer) and catch up.
pub const RESTART_CLOSE_CODE: u16 = 1012;
/// Close reason sent with [`RESTART_CLOSE_CODE`].
pub const RESTART_REASON: &str = "server restarting";

/// What the hub hands a connection's writer.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// An event's JSON text, serialized once and shared (reference-counted) by every
    /// connection it fans out to.
    Event(Utf8Bytes),
    /// The session ended: send a close frame and stop.
    SessionEnded,
    /// The server is shutting down: send a close frame asking the client to reconnect,
    /// and stop.
    Restarting,
}

/// One registered connection.
struct Connection {
    session_id: String,
    sender: mpsc::Sender<Outgoing>,
}

type Connections = HashMap<String, HashMap<u64, Connection>>;

/// Open connections by username, then by connection id. Cloning shares the same hub.
///
/// With a [`Publisher`] (on PostgreSQL, see [`crate::relay`]) the hub also tells the other
/// instances of the deployment what it sends and closes, and messages reach connections
/// through the relay only.
#[derive(Clone, Default)]
pub struct Hub {
    connections: Arc<Mutex<Connections>>,
    next_id: Arc<AtomicU64>,
    publisher: Option<Publisher>,
}

/// A connection's place in the hub; dropping it removes the connection.
#[derive(Debug)]
pub struct Registration {
    hub: Hub,
    username: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(&self.username, self.id);
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose events and closes also go to the other instances through `publisher`.
    pub fn relayed(publisher: Publisher) -> Self {
        Self {
            publisher: Some(publisher),
            ..Self::default()
        }
    }

    /// Whether stored messages reach connections through the relay (every instance, this
    /// one included, pushes them as the database announces them) rather than from the
    /// request that stored them.
    pub fn relays_messages(&self) -> bool {
        self.publisher.is_some()
    }

    /// Locks the map. A panic while the lock was held cannot leave the map half-changed
    /// (every change is one insert or remove), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection for `username` on the session with public id
    /// `session_id`, and returns its guard and the receiving end of its channel.
    pub fn register(
        &self,
        username: &str,
        session_id: &str,
    ) -> (Registration, mpsc::Receiver<Outgoing>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(CONNECTION_BUFFER);
        let connection = Connection {
            session_id: session_id.to_owned(),
            sender,
        };
        self.lock()
            .entry(username.to_owned())
            .or_default()
            .insert(id, connection);
        let registration = Registration {
            hub: self.clone(),
            username: username.to_owned(),
            id,
        };
        (registration, receiver)
    }

    fn remove(&self, username: &str, id: u64) {
        let mut connections = self.lock();
        if let Some(user_connections) = connections.get_mut(username) {
            user_connections.remove(&id);
            if user_connections.is_empty() {
                connections.remove(username);
            }
        }
    }

    /// Pushes `event` to every connection of every user in `usernames`, on this instance
    /// and (through the relay) on the others. A connection whose channel is full or closed
    /// is dropped from the hub.
    pub fn send_to_users<'a>(
        &self,
        usernames: impl IntoIterator<Item = &'a str>,
        event: &ServerEvent,
    ) {
        match &self.publisher {
            Some(publisher) => {
                let usernames: Vec<String> = usernames.into_iter().map(str::to_owned).collect();
                self.deliver(usernames.iter().map(String::as_str), event);
                publisher.event(&usernames, event);
            }
            None => self.deliver(usernames, event),
        }
    }

    /// Pushes `event` to this instance's connections of the users in `usernames`.
    pub fn deliver<'a>(&self, usernames: impl IntoIterator<Item = &'a str>, event: &ServerEvent) {
        let Some(text) = event_text(event) else {
            return;
        };
        let mut connections = self.lock();
        for username in usernames {
            let Some(user_connections) = connections.get_mut(username) else {
                continue;
            };
            user_connections.retain(|id, connection| {
                match connection.sender.try_send(Outgoing::Event(text.clone())) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(%username, connection = id, "dropping a slow websocket");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if user_connections.is_empty() {
                connections.remove(username);
            }
        }
    }

    /// Pushes `event` to every connection of `username`.
    pub fn send_to_user(&self, username: &str, event: &ServerEvent) {
        self.send_to_users([username], event);
    }

    /// Closes every connection of `username` made on one of the sessions in `session_ids`,
    /// on this instance and (through the relay) on the others: each is told
    /// [`Outgoing::SessionEnded`] (after the events already queued) and dropped from the
    /// hub, so no further event reaches it. Returns how many were closed here.
    pub fn close_sessions(&self, username: &str, session_ids: &[String]) -> usize {
        if let Some(publisher) = &self.publisher {
            if !session_ids.is_empty() {
                publisher.close_sessions(username, session_ids);
            }
        }
        self.close_local_sessions(username, session_ids)
    }

    /// [`Hub::close_sessions`] on this instance only.
    pub fn close_local_sessions(&self, username: &str, session_ids: &[String]) -> usize {
        if session_ids.is_empty() {
            return 0;
        }
        let mut connections = self.lock();
        let Some(user_connections) = connections.get_mut(username) else {
            return 0;
        };
        let before = user_connections.len();
        user_connections.retain(|_, connection| {
            if !session_ids.contains(&connection.session_id) {
                return true;
            }
            // A full channel cannot take the notice; dropping the sender still ends the
            // writer once it has sent what is queued.
            let _ = connection.sender.try_send(Outgoing::SessionEnded);
            false
        });
        let closed = before - user_connections.len();
        if user_connections.is_empty() {
            connections.remove(username);
        }
        closed
    }

    /// Closes this instance's connections of `username` with [`Outgoing::Restarting`], so
    /// that their clients reconnect and catch up.
    pub fn restart_user(&self, username: &str) {
        if let Some(user_connections) = self.lock().remove(username) {
            for connection in user_connections.into_values() {
                let _ = connection.sender.try_send(Outgoing::Restarting);
            }
        }
    }

    /// Closes every connection: each is told [`Outgoing::Restarting`] (after the events
    /// already queued) and dropped from the hub. Returns how many were closed.
    pub fn close_all(&self) -> usize {
        let mut connections = self.lock();
        let mut closed = 0;
        for (_, user_connections) in connections.drain() {
            for (_, connection) in user_connections {
                // A full channel cannot take the notice; dropping the sender still ends
                // the writer once it has sent what is queued.
                let _ = connection.sender.try_send(Outgoing::Restarting);
                closed += 1;
            }
        }
        closed
    }

    /// How many connections `username` has open.
    pub fn connection_count(&self, username: &str) -> usize {
        self.lock().get(username).map_or(0, HashMap::len)
    }
}

/// Serializes an event as JSON text, once for all its recipients.
fn event_text(event: &ServerEvent) -> Option<Utf8Bytes> {
    match serde_json::to_string(event) {
        Ok(text) => Some(text.into()),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a server event");
            None
        }
    }
}

/// Serializes an event as a text frame.
fn event_frame(event: &ServerEvent) -> Option<Message> {
    event_text(event).map(Message::Text)
}

/// Serves one WebSocket connection until either side ends it.
///
/// Two tasks run: the reader answers any text or binary frame with a [`ServerEvent::Error`]
/// (clients send messages over HTTP) and ends on an error or at the end of the stream (which
/// follows a close frame); the writer sends the hub's events as JSON text frames, the
/// reader's answers, and a ping every `ping_interval`, and ends when the sink fails, the
/// hub drops the connection (close frame without a code), or the session ends (close frame
/// with [`SESSION_ENDED_CLOSE_CODE`]). When one task ends the other is aborted, and both are aborted
/// if this future is dropped. `registration` is dropped on return, which removes the
/// connection from the hub.
pub async fn serve_connection<S, R, E>(
    sink: S,
    stream: R,
    registration: Registration,
    events: mpsc::Receiver<Outgoing>,
    ping_interval: Duration,
) where
    S: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: Send + 'static,
{
    let (replies_sender, replies) = mpsc::channel(16);
    let mut reader = AbortOnDrop(tokio::spawn(read_frames(stream, replies_sender)));
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(
        sink,
        events,
        replies,
        ping_interval,
    )));
    tokio::select! {
        _ = &mut reader.0 => {}
        _ = &mut writer.0 => {}
    }
    // Dropping the guards aborts whichever task is still running.
    drop((reader, writer));
    drop(registration);
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn read_frames<R, E>(mut stream: R, replies: mpsc::Sender<ServerEvent>)
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            Message::Text(_) | Message::Binary(_) => {
                let refusal = ServerEvent::Error {
                    error: CLIENTS_USE_HTTP.to_owned(),
                };
                if replies.send(refusal).await.is_err() {
                    return;
                }
            }
            // The WebSocket library answers pings and close frames itself; after a close
            // frame it ends the stream once the answer is sent, which ends this loop.
            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

async fn write_frames<S>(
    mut sink: S,
    mut events: mpsc::Receiver<Outgoing>,
    mut replies: mpsc::Receiver<ServerEvent>,
    ping_interval: Duration,
) where
    S: Sink<Message> + Unpin,
{
    let mut pings =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let close_frame = loop {
        let frame = tokio::select! {
            event = events.recv() => match event {
                Some(Outgoing::Event(text)) => Some(Message::Text(text)),
                Some(other) => break close_frame_for(other),
                // The hub dropped this connection (it was too slow).
                None => break None,
            },
            Some(reply) = replies.recv() => event_frame(&reply),
            _ = pings.tick() => Some(Message::Ping(Default::default())),
        };
        let Some(frame) = frame else {
            continue;
        };
        if sink.feed(frame).await.is_err() {
            return;
        }
        // The events already waiting go out with it, in as few writes as the write buffer
        // allows, then everything is flushed.
        let mut ending = None;
        for _ in 1..MAX_FRAMES_PER_FLUSH {
            match events.try_recv() {
                Ok(Outgoing::Event(text)) => {
                    if sink.feed(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Ok(other) => {
                    ending = Some(close_frame_for(other));
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    ending = Some(None);
                    break;
                }
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
        if let Some(close_frame) = ending {
            break close_frame;
        }
    };
    // Best effort: tell the client why the connection ends.
    let _ = sink.send(Message::Close(close_frame)).await;
}

/// The close frame of an [`Outgoing`] that ends a connection (none for an event).
fn close_frame_for(outgoing: Outgoing) -> Option<CloseFrame> {
    match outgoing {
        Outgoing::Event(_) => None,
        Outgoing::SessionEnded => Some(CloseFrame {
            code: SESSION_ENDED_CLOSE_CODE,
            reason: SESSION_ENDED_REASON.into(),
        }),
        Outgoing::Restarting => Some(CloseFrame {
            code: RESTART_CLOSE_CODE,
            reason: RESTART_REASON.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::pin::Pin;

    use common::wire::Base64;

    use super::*;

    /// The test's ends of a connection: frames the client "sends" go into `to_server`,
    /// frames the server writes come out of `from_server`.
    struct Client {
        to_server: mpsc::UnboundedSender<Message>,
        from_server: mpsc::UnboundedReceiver<Message>,
        task: tokio::task::JoinHandle<()>,
    }

    type BoxSink = Pin<Box<dyn Sink<Message, Error = mpsc::error::SendError<Message>> + Send>>;

    /// Serves a connection for `username` over channels instead of a socket.
    fn connect(hub: &Hub, username: &str, ping_interval: Duration) -> Client {
        connect_on_session(hub, username, &format!("{username} session"), ping_interval)
    }

    /// Like [`connect`], on the session with public id `session_id`.
    fn connect_on_session(
        hub: &Hub,
        username: &str,
        session_id: &str,
        ping_interval: Duration,
    ) -> Client {
        let (registration, events) = hub.register(username, session_id);
        serve_registered(registration, events, ping_interval)
    }

    /// Serves a connection registered already (events may be waiting) over channels.
    fn serve_registered(
        registration: Registration,
        events: mpsc::Receiver<Outgoing>,
        ping_interval: Duration,
    ) -> Client {
        let (to_server, mut server_inbox) = mpsc::unbounded_channel::<Message>();
        let (server_outbox, from_server) = mpsc::unbounded_channel::<Message>();
        let stream = futures_util::stream::poll_fn(move |context| server_inbox.poll_recv(context))
            .map(Ok::<_, Infallible>);
        let sink: BoxSink = Box::pin(futures_util::sink::unfold(
            server_outbox,
            |outbox, frame: Message| async move { outbox.send(frame).map(|()| outbox) },
        ));
        let task = tokio::spawn(serve_connection(
            sink,
            stream,
            registration,
            events,
            ping_interval,
        ));
        Client {
            to_server,
            from_server,
            task,
        }
    }

    async fn next_frame(client: &mut Client) -> Message {
        tokio::time::timeout(Duration::from_secs(5), client.from_server.recv())
            .await
            .unwrap()
            .unwrap()
    }

    async fn next_event(client: &mut Client) -> ServerEvent {
        loop {
            match next_frame(client).await {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    fn error_event(text: &str) -> ServerEvent {
        ServerEvent::Error {
            error: text.to_owned(),
        }
    }

    #[tokio::test]
    async fn hub_events_arrive_as_json_text_frames() {
        let hub = Hub::default();
        let mut alice = connect(&hub, "alice", PING_INTERVAL);
        let mut bob = connect(&hub, "bob", PING_INTERVAL);
        hub.send_to_users(["alice", "nobody"], &error_event("for alice"));
        hub.send_to_user("bob", &error_event("for bob"));
        assert!(
            matches!(next_event(&mut alice).await, ServerEvent::Error { error } if error == "for alice")
        );
        assert!(
            matches!(next_event(&mut bob).await, ServerEvent::Error { error } if error == "for bob")
        );
    }

    #[tokio::test]
    async fn client_frames_get_an_error_and_the_connection_stays_open() {
        let hub = Hub::default();
        let mut alice = connect(&hub, "alice", PING_INTERVAL);
        alice.to_server.send(Message::Text("hi".into())).unwrap();
        alice
            .to_server
            .send(Message::Binary(vec![1, 2, 3].into()))
            .unwrap();
        for _ in 0..2 {
            match next_event(&mut alice).await {
                ServerEvent::Error { error } => assert_eq!(error, CLIENTS_USE_HTTP),
                other => panic!("expected an error, got {other:?}"),
            }
        }
        let event = ServerEvent::LogEntry {
            room_id: common::membership::RoomId([1; 32]),
            seq: 3,
            entry: Base64(vec![4, 5]),
        };
        hub.send_to_user("alice", &event);
        assert!(matches!(
            next_event(&mut alice).await,
            ServerEvent::LogEntry { seq: 3, .. }
        ));
    }

    #[tokio::test]
    async fn the_server_pings_at_the_interval() {
        let hub = Hub::default();
        let mut alice = connect(&hub, "alice", Duration::from_millis(20));
        for _ in 0..2 {
            assert!(matches!(next_frame(&mut alice).await, Message::Ping(_)));
        }
    }

    #[tokio::test]
    async fn a_closed_client_is_removed_from_the_hub() {
        let hub = Hub::default();
        let alice = connect(&hub, "alice", PING_INTERVAL);
        let _second = connect(&hub, "alice", PING_INTERVAL);
        assert_eq!(hub.connection_count("alice"), 2);
        // The client's stream ends: the reader stops, the writer is aborted, and the
        // registration is dropped.
        drop(alice.to_server);
        tokio::time::timeout(Duration::from_secs(5), alice.task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hub.connection_count("alice"), 1);
    }

    #[tokio::test]
    async fn a_client_whose_socket_fails_is_removed_from_the_hub() {
        let hub = Hub::default();
        let mut alice = connect(&hub, "alice", PING_INTERVAL);
        // The socket's write side fails: the writer stops at its next frame.
        alice.from_server.close();
        hub.send_to_user("alice", &error_event("undeliverable"));
        tokio::time::timeout(Duration::from_secs(5), alice.task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hub.connection_count("alice"), 0);
    }

    #[tokio::test]
    async fn a_connection_that_falls_behind_is_dropped() {
        let hub = Hub::default();
        // Registered but never served, like a client that stopped reading.
        let (_registration, mut events) = hub.register("slow", "slow session");
        for _ in 0..CONNECTION_BUFFER {
            hub.send_to_user("slow", &error_event("backlog"));
        }
        assert_eq!(hub.connection_count("slow"), 1);
        hub.send_to_user("slow", &error_event("one too many"));
        assert_eq!(hub.connection_count("slow"), 0);
        // The channel ends after the backlog, which ends the connection's writer.
        let mut received = 0;
        while events.recv().await.is_some() {
            received += 1;
        }
        assert_eq!(received, CONNECTION_BUFFER);
    }

    #[tokio::test]
    async fn waiting_events_go_out_in_order_before_the_close_that_follows_them() {
        let hub = Hub::default();
        let (registration, events) = hub.register("alice", "one");
        let count = MAX_FRAMES_PER_FLUSH * 2 + 3;
        for index in 0..count {
            hub.send_to_user("alice", &error_event(&format!("event {index}")));
        }
        hub.close_sessions("alice", &["one".to_owned()]);
        let mut client = serve_registered(registration, events, PING_INTERVAL);
        for index in 0..count {
            let expected = format!("event {index}");
            assert!(
                matches!(next_event(&mut client).await, ServerEvent::Error { error } if error == expected),
                "{expected}"
            );
        }
        match next_frame(&mut client).await {
            Message::Close(Some(frame)) => assert_eq!(frame.code, SESSION_ENDED_CLOSE_CODE),
            other => panic!("expected the close frame, got {other:?}"),
        }
        tokio::time::timeout(Duration::from_secs(5), client.task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn ending_a_session_closes_its_connections_only() {
        let hub = Hub::default();
        let mut revoked = connect_on_session(&hub, "alice", "one", PING_INTERVAL);
        let mut kept = connect_on_session(&hub, "alice", "two", PING_INTERVAL);
        let closed = hub.close_sessions("alice", &["one".to_owned(), "three".to_owned()]);
        assert_eq!(closed, 1);
        assert_eq!(hub.connection_count("alice"), 1);
        match next_frame(&mut revoked).await {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, SESSION_ENDED_CLOSE_CODE);
                assert_eq!(frame.reason.as_str(), SESSION_ENDED_REASON);
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
        tokio::time::timeout(Duration::from_secs(5), revoked.task)
            .await
            .unwrap()
            .unwrap();
        hub.send_to_user("alice", &error_event("still here"));
        assert!(
            matches!(next_event(&mut kept).await, ServerEvent::Error { error } if error == "still here")
        );
        assert_eq!(hub.close_sessions("bob", &["two".to_owned()]), 0);
    }
}
