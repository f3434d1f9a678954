//! Integration tests of the chat server over real HTTP and WebSocket connections.

#![allow(clippy::unwrap_used)]

mod accounts;
mod administration;
mod cast;
mod deletion;
mod envelopes;
mod health;
mod helpers;
mod join_requests;
mod key_requests;
mod malicious_server;
mod messages;
mod pins;
mod rate_limit;
mod removal;
mod rooms;
mod storage;
mod validation;
mod websocket;
mod ws_client;
