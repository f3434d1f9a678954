//! Second login factors of the chat: TOTP (RFC 6238) with recovery codes, and the login
//! challenges that wait for them. Kept apart from the chat's accounts so that a deployment
//! can run them as a service of its own, with its own database, key and deploy cycle,
//! reachable only over mutual TLS by the chat servers that need it.
//!
//! - [`SecondFactors`] is everything the chat server asks of second factors;
//! - [`Factors`] answers it from a database (the chat server links it in-process by
//!   default, and `mfa-service` serves it);
//! - [`service`] is the service's HTTP API and [`ServiceConfig`] its settings;
//! - [`RemoteFactors`] answers [`SecondFactors`] by calling the service.
//!
//! The store never sees a password, an auth key, or anything of the end-to-end encryption:
//! only usernames, sealed TOTP secrets, MACs of recovery codes, and hashes of challenges.

pub mod api;
pub mod config;
pub mod error;
pub mod factors;
pub mod key;
pub mod remote;
pub mod service;
pub mod store;
pub mod tls;
pub mod totp;

pub use config::ServiceConfig;
pub use error::{MfaError, MfaResult};
pub use factors::{Factors, SecondFactors};
pub use key::{ServerKey, ServerKeyError};
pub use remote::RemoteFactors;
