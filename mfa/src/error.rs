//! What can go wrong with second factors, wherever they are kept.

/// A second-factor operation failed.
///
/// The chat server turns these into its API errors: [`MfaError::InvalidCode`] into 401,
/// [`MfaError::Conflict`] into 409, [`MfaError::BadRequest`] into 400, and
/// [`MfaError::Unavailable`] and [`MfaError::UnknownUser`] into 503, so that a login needing a second factor fails closed
/// while the store cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The code does not match (wrong, expired, reused, or no setup to check it against).
    #[error("invalid code")]
    InvalidCode,
    /// The request does not fit the user's current state (`totp is already enabled`, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed (an invalid username, say).
    #[error("{0}")]
    BadRequest(String),
    /// The store has never heard of an account whose login the chat server says needs a
    /// second factor: the wrong database, or an emptied or restored one. The login must not
    /// pass on this store's word (the chat server answers 503 and logs an error).
    #[error("the second-factor store does not know this account")]
    UnknownUser,
    /// The remote service could not be reached, timed out, or answered badly.
    #[error("the second-factor service is unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not open or decode (a secret sealed under another key, say).
    #[error("corrupt second-factor data: {0}")]
    Corrupt(String),
    /// The store's database failed.
    #[error("second-factor database error")]
    Database(#[from] sqlx::Error),
}

impl MfaError {
    /// A [`MfaError::Conflict`] with this message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// The stable machine-readable code the service sends with this error (see
    /// [`crate::api::ErrorBody`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCode => "invalid_code",
            Self::Conflict(_) => "conflict",
            Self::BadRequest(_) => "bad_request",
            Self::Unavailable(_) => "unavailable",
            Self::UnknownUser => "unknown_user",
            Self::Corrupt(_) | Self::Database(_) => "internal",
        }
    }
}

/// The result of a second-factor operation.
pub type MfaResult<T> = Result<T, MfaError>;

/// An error and its sources, joined as `error: source: source` (reqwest's and rustls' own
/// messages leave their causes out).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
