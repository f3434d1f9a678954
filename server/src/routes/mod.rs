//! The HTTP routes, one module per resource, each with a `router()` to merge.

pub mod account;
pub mod accounts;
pub mod attachments;
pub mod client_state;
pub mod health;
pub mod join_requests;
pub mod login;
pub mod messages;
pub mod passkeys;
pub mod rooms;
pub mod sessions;
pub mod totp;
pub mod ws;
