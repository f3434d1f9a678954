//! Integration tests of the chat server over real HTTP and WebSocket connections.

#![allow(clippy::unwrap_used)]

mod accounts;
mod envelopes;
mod health;
mod helpers;
mod messages;
mod rooms;
mod storage;
mod validation;
mod websocket;
