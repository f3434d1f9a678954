//! `chat-cli`: a command-line client of the end-to-end encrypted chat. It is a thin driver
//! over the same client core as the browser (`client`: [`client::Room`] for a room's log,
//! keys, messages and their checks, [`client::ClientState`] for what this account has seen):
//! it fetches, hands the answers to the core, prints what the core shows and warns of, and
//! sends what the core prepares.
//!
//! Its client state (pins, each room's accepted log head, each sender's chain heads) is kept
//! sealed in a file of its own (`<state dir>/<username>.state`) and mirrored to the server as
//! the browser's is ([`client::state::reconcile`] at log-in, one compare-and-swap upload at
//! the end of a run), so a server that rolls a log back, withholds or replays messages
//! between two runs, or serves an older copy of the state, is caught as in the browser.

pub mod connection;
pub mod session;

use thiserror::Error;

pub use connection::Connection;
pub use session::{register, Session};

/// Why a command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// The server answered with an error status.
    #[error("server refused ({status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's code ([`common::api::ErrorCode::Unknown`] for an answer without one).
        code: common::api::ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or answered something unexpected.
    #[error("network: {0}")]
    Network(String),
    /// Wrong arguments, files or settings.
    #[error("{0}")]
    Usage(String),
    /// A check of the client core failed (a key change, a refused log, a wrong password).
    #[error("{0}")]
    Refused(String),
}

impl From<reqwest::Error> for CliError {
    fn from(error: reqwest::Error) -> Self {
        Self::Network(error.to_string())
    }
}
