//! JSON bodies of the HTTP API and the WebSocket events (docs/PROTOCOL.md section 8).
//!
//! Byte fields are standard base64 with padding; room ids are 64 lowercase hex digits; times
//! are milliseconds since the Unix epoch.

use std::fmt;

use serde::{Deserialize, Serialize};

use rand_core::CryptoRngCore;

use crate::account::{wrap_identity, AccountKeys, KdfParams, SALT_LEN};
use crate::identity::IdentitySecrets;
use crate::identity::PublicIdentity;
use crate::membership::{Role, RoomId};
use crate::message::SealedMessage;
use crate::primitives::NONCE_LEN;
use crate::room_key::KeyEnvelope;
use crate::wire::{Base64, Base64Array};

pub mod endpoints;
#[cfg(feature = "openapi")]
pub mod openapi;

/// A 24-byte XSalsa20 nonce in base64.
pub type NonceBytes = Base64Array<NONCE_LEN>;

/// A 16-byte attachment id in base64.
pub type AttachmentIdBytes = Base64Array<{ crate::attachment::ATTACHMENT_ID_LEN }>;

/// The name of the session cookie (docs/PROTOCOL.md section 8).
pub const SESSION_COOKIE: &str = "chat_session";

fn unknown_code() -> ErrorCode {
    ErrorCode::Unknown
}

/// `POST /api/register`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The account name (see [`crate::identity::validate_username`]).
    pub username: String,
    /// Argon2id parameters the client used.
    pub kdf: KdfParams,
    /// The 16-byte Argon2id salt.
    pub salt: Base64Array<16>,
    /// `auth_key`, 32 bytes; the server stores only its Argon2id hash.
    pub auth_key: Base64Array<32>,
    /// The self-signed public identity; its username must equal `username`.
    pub identity: PublicIdentity,
    /// The identity secrets wrapped under `wrap_key`.
    pub wrapped_identity: Base64,
}

impl RegisterRequest {
    /// The request a client sends to create `username`: the keys derived from the password
    /// with `kdf` and `salt` (see [`crate::account::derive_account_keys`]), the self-signed
    /// public identity of `secrets`, and `secrets` wrapped under the derived `wrap_key`.
    pub fn new(
        username: &str,
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
        keys: &AccountKeys,
        secrets: &IdentitySecrets,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Self {
            username: username.to_owned(),
            kdf,
            salt: Base64Array(salt),
            auth_key: Base64Array(*keys.auth_key.as_bytes()),
            identity: secrets.public_identity(username),
            wrapped_identity: Base64(wrap_identity(&keys.wrap_key, username, secrets, rng)),
        }
    }
}

/// `POST /api/prelogin`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    /// The account name.
    pub username: String,
}

/// Answer to `POST /api/prelogin`: for an unknown name, default parameters and a stable
/// fake salt, so the answer does not reveal which accounts exist.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreloginResponse {
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// The 16-byte salt.
    pub salt: Base64Array<16>,
}

/// `POST /api/login`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account name.
    pub username: String,
    /// `auth_key`, 32 bytes.
    pub auth_key: Base64Array<32>,
}

/// Answer to register and login; the session itself travels in an `HttpOnly` cookie.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionResponse {
    /// The logged-in account.
    pub username: String,
}

/// Answer to `GET /api/session`: whether the browser's cookie names a live session. Always
/// 200, so a page probing at start-up causes no error.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// The logged-in account, or `None` without a valid session.
    pub username: Option<String>,
}

/// Answer to `GET /api/me`: what a client needs to unwrap its keys.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeResponse {
    /// The account name.
    pub username: String,
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// The salt.
    pub salt: Base64Array<16>,
    /// The published identity, which the client compares with its own secrets.
    pub identity: PublicIdentity,
    /// The wrapped identity secrets.
    pub wrapped_identity: Base64,
}

/// `POST /api/rooms`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoomRequest {
    /// The signed genesis entry.
    pub genesis: Base64,
    /// `K_0` sealed to the creator.
    pub key_envelope: KeyEnvelope,
}

/// One room in `GET /api/rooms`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub room_id: RoomId,
    /// The caller's role, as the server's replay of the log says.
    pub role: Role,
    /// Current epoch.
    pub epoch: u64,
    /// Number of log entries.
    pub log_length: u64,
    /// Whether a member left or was removed since the last rotation (from the server's replay).
    #[serde(default)]
    pub rotation_pending: bool,
}

/// Answer to `GET /api/rooms`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomListResponse {
    /// The caller's rooms, oldest first.
    pub rooms: Vec<RoomSummary>,
}

/// Answer to `POST /api/rooms`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoomResponse {
    /// The new room's id.
    pub room_id: RoomId,
}

/// Answer to `GET /api/rooms/{id}/log`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogResponse {
    /// Signed entries in order, from genesis.
    pub entries: Vec<Base64>,
}

/// `POST /api/rooms/{id}/log`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendLogRequest {
    /// One signed entry whose `seq` is the current log length.
    pub entry: Base64,
    /// Key envelopes checked against the log with the entry applied and stored in the same
    /// transaction: for an entry that starts an epoch, the new key sealed to the members, so
    /// that the key is never held by its author alone (a lost second request would leave a
    /// room whose current key nobody else holds). Optional; empty by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envelopes: Vec<KeyEnvelope>,
}

/// `POST /api/rooms/{id}/envelopes`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutEnvelopesRequest {
    /// Envelopes distributed by the caller.
    pub envelopes: Vec<KeyEnvelope>,
}

/// Answer to `GET /api/rooms/{id}/envelopes`: only the caller's own envelopes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopesResponse {
    /// The envelopes addressed to the caller.
    pub envelopes: Vec<KeyEnvelope>,
}

/// `POST /api/rooms/{id}/messages`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    /// The epoch whose key encrypts the message; must be the room's current epoch.
    pub epoch: u64,
    /// The 24-byte nonce.
    pub nonce: NonceBytes,
    /// `tag(16) || encrypted padded plaintext`.
    pub ciphertext: Base64,
    /// The attachments the message names (their ids), each a complete upload of the sender
    /// in this room: the server keeps them rather than collecting them. Optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentIdBytes>,
}

/// A message as the server stores and returns it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Server-assigned id, increasing.
    pub id: i64,
    /// The room.
    pub room_id: RoomId,
    /// The epoch.
    pub epoch: u64,
    /// The authenticated sender, as the server saw it.
    pub sender: String,
    /// When the server received it, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The nonce.
    pub nonce: NonceBytes,
    /// The ciphertext.
    pub ciphertext: Base64,
}

impl StoredMessage {
    /// The parts a reader opens with [`crate::message::open_message`].
    pub fn sealed(&self) -> SealedMessage {
        SealedMessage {
            room_id: self.room_id,
            epoch: self.epoch,
            nonce: self.nonce.0,
            ciphertext: self.ciphertext.0.clone(),
        }
    }
}

/// Answer to `GET /api/rooms/{id}/messages?before=ID&limit=N` (a page back through the
/// history) or `?after=ID&limit=N` (what follows the last id a client saw).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Messages in ascending id order.
    pub messages: Vec<StoredMessage>,
    /// With `before` (or neither): whether older messages exist before the first one
    /// returned. With `after`: whether newer ones exist after the last one returned.
    pub has_more: bool,
}

/// Something the server pushes over the WebSocket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// A new message in one of the caller's rooms.
    Message {
        /// The message.
        message: StoredMessage,
    },
    /// A new log entry in a room the caller is (now) a member of.
    LogEntry {
        /// The room.
        room_id: RoomId,
        /// The entry's position.
        seq: u64,
        /// The signed entry.
        entry: Base64,
    },
    /// A key envelope addressed to the caller.
    KeyEnvelope {
        /// The envelope.
        envelope: KeyEnvelope,
    },
    /// A logged-in user asked to join a room (sent to its owners and admins).
    JoinRequested {
        /// The room.
        room_id: RoomId,
        /// Who asks.
        username: String,
    },
    /// A member lacks the key of an epoch (sent to the room's other members); any member who
    /// holds it seals it to them.
    KeyRequested {
        /// The room.
        room_id: RoomId,
        /// Who lacks the key.
        username: String,
        /// Which epoch.
        epoch: u64,
    },
    /// The owner deleted the room (sent to everyone who was a member).
    RoomDeleted {
        /// The room.
        room_id: RoomId,
    },
    /// One of the caller's browsers saved the sealed client state at `version` (sent to all
    /// the caller's connections): the others fetch and merge it, so pins and read markers
    /// stay in step.
    ClientStateChanged {
        /// The version now stored.
        version: u64,
    },
    /// A frame from the client was refused.
    Error {
        /// What was wrong.
        error: String,
    },
}

/// `POST /api/rooms/{id}/join-requests`: a logged-in non-member asks to join with an invite.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequestBody {
    /// The invite token from the link (its SHA-256 with the invite label is in the log).
    pub token: Base64,
}

/// One pending join request, as admins see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJoinRequest {
    /// Who asks.
    pub username: String,
    /// Their public identity, which the approving admin pins and records in the add entry.
    pub identity: PublicIdentity,
    /// When they asked, milliseconds since the Unix epoch.
    pub requested_at_ms: i64,
}

/// Answer to `GET /api/rooms/{id}/join-requests` (owners and admins).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequestsResponse {
    /// Pending requests, oldest first.
    pub requests: Vec<PendingJoinRequest>,
}

/// `POST /api/rooms/{id}/key-requests`: a member lacks the key of `epoch` and asks the other
/// members' clients for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequestBody {
    /// The epoch whose key is missing.
    pub epoch: u64,
}

/// Answer to `GET /api/me/state`: the caller's durable client state (pins, accepted log
/// heads, chain heads, KDF record), sealed by the client under a key derived from its
/// identity secrets (`client::ClientState::seal`, docs/PROTOCOL.md section 11).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientStateBody {
    /// The version the client stored with it, in the clear (the one clients trust is inside
    /// the ciphertext); 0 with `sealed` absent before the first upload, and 0 for a pins
    /// blob of protocol version 1 kept from before the client state existed.
    pub version: u64,
    /// The sealed state; `None` before the first upload.
    pub sealed: Option<Base64>,
}

/// `PUT /api/me/state`: replaces the caller's client state if the stored one is still the
/// one the client built on (compare-and-swap on the version), so two browsers never
/// overwrite each other's changes unmerged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutClientStateRequest {
    /// The version the client last read or stored (0 when none is stored); the server
    /// answers 409 when the stored version differs.
    pub base_version: u64,
    /// The new version, above `base_version`.
    pub version: u64,
    /// The sealed state, at most 256 KiB with the JSON around it.
    pub sealed: Base64,
}

/// The stable, machine-readable reason of an error response (`ErrorBody::code`), so clients
/// branch on it instead of on the message text. Each code has one HTTP status
/// ([`ErrorCode::status`]); which codes an endpoint can answer with is in its definition
/// ([`endpoints::EndpointInfo::errors`]) and in `docs/openapi.json`. A code this build does not
/// know decodes as [`ErrorCode::Unknown`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request fails a check (the message says which).
    BadRequest,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: a path parameter or the query string does not parse.
    MalformedParameter,
    /// 401: no valid session cookie.
    NotLoggedIn,
    /// 401: wrong auth key or unknown username (indistinguishable on purpose).
    InvalidCredentials,
    /// 401: re-authentication with a wrong auth key.
    InvalidPassword,
    /// 401: a wrong, reused or missing second-factor code or passkey answer.
    InvalidCode,
    /// 401: the login challenge is unknown, expired or out of attempts.
    LoginExpired,
    /// 403: the account's trusted networks do not include the caller's address.
    NetworkRefused,
    /// 403: a state-changing request from another origin.
    OriginRefused,
    /// 403: the caller is known but may not do this.
    Forbidden,
    /// 403: the caller is banned from the room.
    Banned,
    /// 404: no such resource, or one the caller may not know about.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 408: the request took longer than the server's timeout.
    Timeout,
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 409: the username is taken.
    UsernameTaken,
    /// 409: a room with this id exists.
    RoomExists,
    /// 409: the message's epoch is not the room's current one.
    StaleEpoch,
    /// 409: the log asks for a key rotation before more messages.
    KeyRotationPending,
    /// 409: the caller's view of the membership log is out of date (fetch, replay, decide
    /// again).
    LogOutOfDate,
    /// 409: the user is already a member of the room.
    AlreadyMember,
    /// 409: the stored client state is not the version the upload was based on.
    StateVersionConflict,
    /// 410: the invite expired.
    InviteExpired,
    /// 410: the invite admitted as many users as it may.
    InviteUsedUp,
    /// 413: the body is larger than the server takes, or an attachment over a limit (see
    /// `limit_bytes`).
    PayloadTooLarge,
    /// 415: a JSON body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 416: a `Range` outside the resource.
    RangeNotSatisfiable,
    /// 422: well-formed JSON of the wrong shape.
    InvalidBody,
    /// 429: too many messages, attempts or registrations; see `retry_after_s`.
    RateLimited,
    /// 500: the server failed; the cause is in its log, not in the answer.
    Internal,
    /// 503: the server cannot take the request now; a retry may succeed.
    Unavailable,
    /// 503: second factors cannot be checked now (the login fails closed).
    SecondFactorsUnavailable,
    /// A code from a newer server.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends, in declaration order (without [`ErrorCode::Unknown`]).
    pub const ALL: [ErrorCode; 33] = [
        Self::BadRequest,
        Self::MalformedJson,
        Self::MalformedParameter,
        Self::NotLoggedIn,
        Self::InvalidCredentials,
        Self::InvalidPassword,
        Self::InvalidCode,
        Self::LoginExpired,
        Self::NetworkRefused,
        Self::OriginRefused,
        Self::Forbidden,
        Self::Banned,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Timeout,
        Self::Conflict,
        Self::UsernameTaken,
        Self::RoomExists,
        Self::StaleEpoch,
        Self::KeyRotationPending,
        Self::LogOutOfDate,
        Self::AlreadyMember,
        Self::StateVersionConflict,
        Self::InviteExpired,
        Self::InviteUsedUp,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RangeNotSatisfiable,
        Self::InvalidBody,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
        Self::SecondFactorsUnavailable,
    ];

    /// The HTTP status answered with this code (RFC 9110 section 15).
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::MalformedJson | Self::MalformedParameter => 400,
            Self::NotLoggedIn
            | Self::InvalidCredentials
            | Self::InvalidPassword
            | Self::InvalidCode
            | Self::LoginExpired => 401,
            Self::NetworkRefused | Self::OriginRefused | Self::Forbidden | Self::Banned => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::Conflict
            | Self::UsernameTaken
            | Self::RoomExists
            | Self::StaleEpoch
            | Self::KeyRotationPending
            | Self::LogOutOfDate
            | Self::AlreadyMember
            | Self::StateVersionConflict => 409,
            Self::InviteExpired | Self::InviteUsedUp => 410,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RangeNotSatisfiable => 416,
            Self::InvalidBody => 422,
            Self::RateLimited => 429,
            Self::Internal | Self::Unknown => 500,
            Self::Unavailable | Self::SecondFactorsUnavailable => 503,
        }
    }

    /// The code's name on the wire, e.g. `stale_epoch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::MalformedJson => "malformed_json",
            Self::MalformedParameter => "malformed_parameter",
            Self::NotLoggedIn => "not_logged_in",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidPassword => "invalid_password",
            Self::InvalidCode => "invalid_code",
            Self::LoginExpired => "login_expired",
            Self::NetworkRefused => "network_refused",
            Self::OriginRefused => "origin_refused",
            Self::Forbidden => "forbidden",
            Self::Banned => "banned",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Timeout => "timeout",
            Self::Conflict => "conflict",
            Self::UsernameTaken => "username_taken",
            Self::RoomExists => "room_exists",
            Self::StaleEpoch => "stale_epoch",
            Self::KeyRotationPending => "key_rotation_pending",
            Self::LogOutOfDate => "log_out_of_date",
            Self::AlreadyMember => "already_member",
            Self::StateVersionConflict => "state_version_conflict",
            Self::InviteExpired => "invite_expired",
            Self::InviteUsedUp => "invite_used_up",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::InvalidBody => "invalid_body",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::SecondFactorsUnavailable => "second_factors_unavailable",
            Self::Unknown => "unknown",
        }
    }

    /// The generic code of an error status, for answers the server's framework makes itself
    /// (405, 408, a 404 or 400 before any handler): `not_found`, `method_not_allowed`,
    /// `timeout`, `payload_too_large` and so on: the most general code of the status (a 400
    /// before any handler is a path that does not decode, `malformed_parameter`; the only
    /// 410s are invites), else `internal` for a 5xx and `bad_request` for another 4xx.
    pub const fn for_status(status: u16) -> Self {
        match status {
            400 => Self::MalformedParameter,
            401 => Self::NotLoggedIn,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::Timeout,
            409 => Self::Conflict,
            410 => Self::InviteExpired,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            416 => Self::RangeNotSatisfiable,
            422 => Self::InvalidBody,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            500..=599 => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable reason ([`ErrorCode`]); what a client branches on.
    #[serde(default = "unknown_code")]
    pub code: ErrorCode,
    /// For people: lowercase, no final period. It may change between versions.
    pub error: String,
    /// For 429 answers: seconds until a retry may succeed (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// For 413 answers: the limit that was exceeded, in bytes (the room's attachment limit,
    /// the caller's storage quota, or the largest chunk body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
}

/// `POST /api/rooms/{id}/attachments`: the uploader announces an attachment before sending
/// its chunks (docs/PROTOCOL.md section 14).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAttachmentRequest {
    /// The attachment id the uploader drew (16 bytes).
    pub id: AttachmentIdBytes,
    /// The file's size in bytes (plaintext; the server checks it against the room's limit).
    pub size: u64,
    /// Plaintext bytes per chunk (16 KiB to 4 MiB).
    pub chunk_size: u32,
}

/// What the server holds of an attachment: answer to announcing it and to
/// `GET /api/rooms/{id}/attachments/{attachment_id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentStatus {
    /// The attachment id.
    pub id: AttachmentIdBytes,
    /// Who uploads it.
    pub uploader: String,
    /// The file's size, as announced.
    pub size: u64,
    /// The chunk size, as announced.
    pub chunk_size: u32,
    /// How many chunks the layout has.
    pub chunk_count: u32,
    /// The whole ciphertext's size: `size + 16 * chunk_count`.
    pub ciphertext_size: u64,
    /// The chunks stored, ascending: what a resumed upload skips.
    pub received: Vec<u32>,
    /// Whether every chunk is stored (only then can it be downloaded or named by a message).
    pub complete: bool,
}

/// Answer to `POST /api/login`: either a session (cookie set) or a second step.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The account.
    pub username: String,
    /// When true no session was created yet: send a TOTP or recovery code with
    /// `POST /api/login/totp`, or a passkey assertion with `POST /api/login/passkey`.
    #[serde(default)]
    pub totp_required: bool,
    /// The pending-login challenge to send back with the code (32 bytes, valid 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Base64>,
    /// When the account has passkeys: the options for `navigator.credentials.get()`
    /// (W3C Web Authentication, `PublicKeyCredentialRequestOptions` in base64url JSON),
    /// whose challenge is bound to this login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub passkey_options: Option<WebAuthnJson>,
    /// Set when this successful login came from a network (IPv4 /24, IPv6 /48) not seen
    /// before for the account.
    #[serde(default)]
    pub new_network: bool,
}

/// `POST /api/login/totp`: the second login step.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpLoginRequest {
    /// The challenge from [`LoginResponse`].
    pub challenge: Base64,
    /// A 6-digit TOTP code, or one unused recovery code.
    pub code: String,
}

/// `POST /api/login/passkey`: the second login step with a passkey.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginRequest {
    /// The challenge from [`LoginResponse`].
    pub challenge: Base64,
    /// What `navigator.credentials.get()` returned for its `passkey_options`, as its
    /// `toJSON()` gives it (webauthn-rs' `PublicKeyCredential`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: WebAuthnJson,
}

impl fmt::Debug for PasskeyLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasskeyLoginRequest([redacted])")
    }
}

/// `POST /api/passkeys/begin` and `POST /api/passkeys/{id}/remove`: re-authentication for
/// adding or removing a passkey.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyChangeRequest {
    /// The current `auth_key`.
    pub auth_key: Base64Array<32>,
    /// A TOTP or recovery code when TOTP is enabled.
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// Answer to `GET /api/openapi.json`: the OpenAPI 3.1 description of this API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Object))]
pub struct OpenApiDocument(pub serde_json::Value);

/// A WebAuthn object in its JSON form (W3C Web Authentication Level 3, the `...JSON`
/// dictionaries: binary fields as unpadded base64url), carried as JSON text.
///
/// The server reads and writes these with webauthn-rs' types ([`WebAuthnJson::encode`],
/// [`WebAuthnJson::decode`]); the web client hands them to the browser as they are
/// (`PublicKeyCredential.parseCreationOptionsFromJSON()`, `.parseRequestOptionsFromJSON()`
/// and `PublicKeyCredential.toJSON()`), so it never decodes their shape itself.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebAuthnJson(Box<serde_json::value::RawValue>);

impl WebAuthnJson {
    /// `json` as it is, once it is checked to be one JSON value.
    ///
    /// # Errors
    /// serde_json's syntax error when `json` is not one JSON value.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(json).map(Self)
    }

    /// `value` written as JSON.
    ///
    /// # Errors
    /// serde_json's error when `value` does not serialize (a map with non-string keys).
    pub fn encode<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON read as a `T`.
    ///
    /// # Errors
    /// serde_json's data error (with its line and column) when the JSON is no `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl fmt::Debug for WebAuthnJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebAuthnJson({} bytes)", self.0.get().len())
    }
}

/// Answer to `POST /api/passkeys/begin`: the options for `navigator.credentials.create()`
/// (webauthn-rs' `CreationChallengeResponse` in WebAuthn Level 3's JSON form).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Object))]
pub struct PasskeyCreationOptions(pub WebAuthnJson);

/// `POST /api/passkeys/finish`: the new passkey.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyFinishRequest {
    /// A name for the list (1 to 64 characters).
    pub name: String,
    /// What `navigator.credentials.create()` returned for the options of
    /// `POST /api/passkeys/begin`, as its `toJSON()` gives it (webauthn-rs'
    /// `RegisterPublicKeyCredential`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: WebAuthnJson,
}

/// Answer to `POST /api/passkeys/finish`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct PasskeyFinishResponse {
    /// Ten recovery codes, shown once, when the passkey is the account's first second factor.
    #[serde(default)]
    pub recovery_codes: Option<Vec<String>>,
}

/// One passkey of the caller, in [`AccountResponse`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeySummary {
    /// Its id (the credential id in unpadded base64url), for removing it.
    pub id: String,
    /// The name given at registration.
    pub name: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it last completed a login, if ever.
    pub last_used_at_ms: Option<i64>,
}

/// Answer to `POST /api/totp/setup`: a pending secret, active only after
/// `POST /api/totp/enable` with a valid code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct TotpSetupResponse {
    /// The secret in base32 (RFC 4648, no padding), for typing into an authenticator.
    pub secret_base32: String,
    /// `otpauth://totp/...` URI (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// `POST /api/totp/enable` (a code of the pending secret) and `POST /api/totp/disable` (a
/// current TOTP code or an unused recovery code), with re-authentication.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCodeRequest {
    /// The code.
    pub code: String,
    /// Re-authentication: the current `auth_key`.
    pub auth_key: Base64Array<32>,
}

/// Answer to `POST /api/totp/enable`: the ten recovery codes, shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct RecoveryCodesResponse {
    /// Each works once instead of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// One login session of the caller, in `GET /api/sessions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Public identifier of the session (not the token), for revoking it.
    pub id: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was last used, milliseconds since the Unix epoch.
    pub last_seen_at_ms: i64,
    /// Client IP address at login.
    pub ip: String,
    /// Browser user agent at login.
    pub user_agent: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// Answer to `GET /api/sessions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsResponse {
    /// Live sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// One login attempt on the caller's account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginEvent {
    /// When, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Client IP address.
    pub ip: String,
    /// Browser user agent.
    pub user_agent: String,
    /// `success`, `wrong_password`, `wrong_code`, `network_refused` or `throttled`.
    pub result: String,
    /// Whether the attempt came from a network not seen before for the account.
    pub new_network: bool,
}

/// Answer to `GET /api/account`: the caller's security settings and notices.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountResponse {
    /// Whether TOTP is required at login.
    pub totp_enabled: bool,
    /// Unused recovery codes left.
    pub recovery_codes_left: u32,
    /// Networks (CIDR) logins are allowed from; empty means any.
    pub trusted_networks: Vec<String>,
    /// The latest login attempts, newest first (at most 50).
    pub login_history: Vec<LoginEvent>,
    /// Successful logins from new networks that the user has not dismissed yet.
    pub new_network_notices: Vec<LoginEvent>,
    /// The account's passkeys, oldest first.
    #[serde(default)]
    pub passkeys: Vec<PasskeySummary>,
}

/// `PUT /api/account/trusted-networks`: replaces the list (empty allows any network).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedNetworksRequest {
    /// CIDR blocks such as `192.0.2.0/24` or `2001:db8::/32`.
    pub networks: Vec<String>,
    /// Re-authentication: the current `auth_key`.
    pub auth_key: Base64Array<32>,
    /// A TOTP or recovery code when TOTP is enabled.
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// `POST /api/account/password`: re-wraps the same identity under a new password in one
/// transaction; other sessions are signed out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// `auth_key` of the current password.
    pub current_auth_key: Base64Array<32>,
    /// A TOTP or recovery code when TOTP is enabled.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// Argon2id parameters of the new password.
    pub new_kdf: KdfParams,
    /// A fresh 16-byte salt.
    pub new_salt: Base64Array<16>,
    /// `auth_key` of the new password.
    pub new_auth_key: Base64Array<32>,
    /// The same identity secrets wrapped under the new `wrap_key`.
    pub new_wrapped_identity: Base64,
}

/// `POST /api/account/delete`: deletes the account after re-authentication.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The current `auth_key`.
    pub auth_key: Base64Array<32>,
    /// A TOTP or recovery code when TOTP is enabled.
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// What `Debug` prints instead of a secret (a code, a TOTP secret, recovery codes).
const REDACTED: &str = "[redacted]";

/// `[redacted]` for a present optional secret, `None` for an absent one.
fn redacted_option(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

impl fmt::Debug for TotpLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpLoginRequest")
            .field("challenge", &self.challenge)
            .field("code", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for TotpSetupResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSetupResponse([redacted])")
    }
}

impl fmt::Debug for TotpCodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpCodeRequest")
            .field("code", &REDACTED)
            .field("auth_key", &self.auth_key)
            .finish()
    }
}

impl fmt::Debug for RecoveryCodesResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecoveryCodesResponse([{} redacted])",
            self.recovery_codes.len()
        )
    }
}

impl fmt::Debug for TrustedNetworksRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedNetworksRequest")
            .field("networks", &self.networks)
            .field("auth_key", &self.auth_key)
            .field("totp_code", &redacted_option(&self.totp_code))
            .finish()
    }
}

impl fmt::Debug for PasswordChangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChangeRequest")
            .field("current_auth_key", &self.current_auth_key)
            .field("totp_code", &redacted_option(&self.totp_code))
            .field("new_kdf", &self.new_kdf)
            .field("new_salt", &self.new_salt)
            .field("new_auth_key", &self.new_auth_key)
            .field("new_wrapped_identity", &self.new_wrapped_identity)
            .finish()
    }
}

impl fmt::Debug for DeleteAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeleteAccountRequest")
            .field("auth_key", &self.auth_key)
            .field("totp_code", &redacted_option(&self.totp_code))
            .finish()
    }
}

impl fmt::Debug for PasskeyChangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyChangeRequest")
            .field("auth_key", &self.auth_key)
            .field("totp_code", &redacted_option(&self.totp_code))
            .finish()
    }
}

impl fmt::Debug for PasskeyFinishResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyFinishResponse")
            .field(
                "recovery_codes",
                &self.recovery_codes.as_ref().map(|codes| codes.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_code_or_secret() {
        let code = "493817".to_owned();
        let printed = [
            format!(
                "{:?}",
                TotpLoginRequest {
                    challenge: Base64(vec![1; 32]),
                    code: code.clone(),
                }
            ),
            format!(
                "{:?}",
                TotpSetupResponse {
                    secret_base32: "JBSWY3DPEHPK3PXP".to_owned(),
                    otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".to_owned(),
                    qr_svg: "<svg/>".to_owned(),
                }
            ),
            format!(
                "{:?}",
                TotpCodeRequest {
                    code: code.clone(),
                    auth_key: Base64Array([2; 32]),
                }
            ),
            format!(
                "{:?}",
                RecoveryCodesResponse {
                    recovery_codes: vec!["493817-recovery".to_owned()],
                }
            ),
            format!(
                "{:?}",
                TrustedNetworksRequest {
                    networks: vec!["192.0.2.0/24".to_owned()],
                    auth_key: Base64Array([2; 32]),
                    totp_code: Some(code.clone()),
                }
            ),
            format!(
                "{:?}",
                DeleteAccountRequest {
                    auth_key: Base64Array([2; 32]),
                    totp_code: Some(code.clone()),
                }
            ),
            format!(
                "{:?}",
                LoginRequest {
                    username: "alice".to_owned(),
                    auth_key: Base64Array([2; 32]),
                }
            ),
        ];
        for text in printed {
            for secret in [code.as_str(), "JBSWY3DPEHPK3PXP", "2, 2", "AgIC"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}

#[cfg(test)]
mod error_code_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_code_is_written_as_its_wire_name_and_read_back() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(ErrorCode::for_status(code.status()).status(), code.status());
        }
    }

    #[test]
    fn a_code_from_a_newer_server_or_none_at_all_reads_as_unknown() {
        let newer: ErrorBody =
            serde_json::from_str(r#"{"code": "quantum_flux", "error": "odd"}"#).unwrap();
        assert_eq!(newer.code, ErrorCode::Unknown);
        let older: ErrorBody = serde_json::from_str(r#"{"error": "odd"}"#).unwrap();
        assert_eq!(older.code, ErrorCode::Unknown);
    }
}
