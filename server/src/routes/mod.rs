//! The HTTP routes, one module per resource, each with a `router()` to merge.

pub mod accounts;
pub mod health;
pub mod join_requests;
pub mod messages;
pub mod pins;
pub mod rooms;
pub mod ws;
