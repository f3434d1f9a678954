//! The WebSocket that carries live messages, log entries and key envelopes from the server.
//! It reconnects after a drop and then re-synchronizes the rooms, so nothing sent meanwhile
//! is missed.

use common::api::endpoints::{NoParams, Session};
use common::api::ServerEvent;
use futures_util::StreamExt;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::Message;
use leptos::prelude::*;

use crate::chat::Chat;

/// Delay before reconnecting after the socket closed, in milliseconds.
const RECONNECT_DELAY_MS: u32 = 2_000;

fn socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/api/ws", location.host().ok()?))
}

/// Starts the socket task for the current session; it ends when the user logs out.
pub fn start(chat: Chat) {
    let generation = chat.generation.get_untracked();
    leptos::task::spawn_local(async move {
        let mut first = true;
        while chat.generation.get_untracked() == generation
            && chat.session.with_untracked(Option::is_some)
        {
            if !first {
                gloo_timers::future::TimeoutFuture::new(RECONNECT_DELAY_MS).await;
                if chat.generation.get_untracked() != generation {
                    break;
                }
                // Catch up on whatever arrived while the socket was down.
                if let Err(error) = chat.load_rooms().await {
                    chat.error.set(Some(error.to_string()));
                }
            }
            first = false;
            let Some(url) = socket_url() else {
                chat.error
                    .set(Some("cannot work out the server address".into()));
                return;
            };
            let Ok(socket) = WebSocket::open(&url) else {
                continue;
            };
            let (_write, mut read) = socket.split();
            while let Some(frame) = read.next().await {
                if chat.generation.get_untracked() != generation {
                    return;
                }
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Bytes(_)) => continue,
                    Err(_) => break,
                };
                match serde_json::from_str::<ServerEvent>(&text) {
                    Ok(event) => chat.handle_event(event).await,
                    Err(error) => {
                        web_sys::console::warn_1(
                            &format!("unreadable server event: {error}").into(),
                        );
                    }
                }
            }
            // The server closes the socket of a revoked session at once: if the session is
            // gone, sign out here too instead of reconnecting.
            if chat.generation.get_untracked() == generation && session_ended().await {
                chat.end_session_locally(Some(
                    "You were signed out: this session was revoked or the password was changed."
                        .into(),
                ));
                return;
            }
        }
    });
}

/// Whether the server no longer accepts this tab's session.
async fn session_ended() -> bool {
    matches!(
        crate::http::call::<Session>(&NoParams, &()).await,
        Ok(status) if status.username.is_none()
    )
}
