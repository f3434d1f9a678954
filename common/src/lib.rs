//! Wire types and the sans-I/O crypto core of the end-to-end encrypted chat.
//!
//! Everything here takes bytes and returns bytes or typed errors; nothing does I/O, so the
//! same code runs in the server (native) and in the browser (wasm32). The byte layouts are
//! specified in `docs/PROTOCOL.md`, and every module names the section it implements.
//!
//! - [`account`]: password -> Argon2id -> `auth_key` / `wrap_key`, and the wrapped identity.
//! - [`identity`]: X25519 + Ed25519 identity, public identity record, fingerprints.
//! - [`membership`]: the signed, hash-chained membership log and its replay.
//! - [`room_key`]: epoch keys, commitments, key envelopes, room creation.
//! - [`message`]: sealing and opening messages.
//! - [`trust`]: trust-on-first-use pins and safety numbers.
//! - [`api`]: JSON bodies of the HTTP API and WebSocket events.

pub mod account;
pub mod api;
pub mod attachment;
pub mod encoding;
pub mod identity;
pub mod membership;
pub mod message;
pub mod primitives;
pub mod room_key;
pub mod trust;
pub mod wire;

/// The operating system's (or, in a browser, `crypto.getRandomValues`') random generator.
pub use rand_core::OsRng;
