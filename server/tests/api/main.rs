//! Integration tests of the chat server over real HTTP and WebSocket connections.

#![allow(clippy::unwrap_used)]

mod account_deletion;
mod accounts;
mod administration;
mod attachments;
mod authorization;
mod cast;
mod client_state;
mod contract;
mod deletion;
mod envelopes;
mod health;
mod helpers;
mod instances;
mod join_requests;
mod key_requests;
mod malicious_chains;
mod malicious_server;
mod malicious_views;
mod membership_cache;
mod messages;
mod mfa_service;
mod networks;
mod passkeys;
mod password_change;
mod rate_limit;
mod removal;
mod request_origin;
mod rooms;
mod schemathesis;
mod security_client;
mod security_headers;
mod sessions;
mod storage;
mod throttling;
mod tls;
mod two_factor;
mod validation;
mod websocket;
mod ws_client;
