//! Every endpoint of the chat server's HTTP API, defined once: method, path template with
//! typed parameters, query, request and response types, success statuses and the
//! [`ErrorCode`]s it can answer with.
//!
//! Each endpoint is a unit struct implementing [`Endpoint`], in the manner of ruma's
//! `Metadata` for the Matrix API: the server registers its handler under
//! [`EndpointInfo::method`] and [`EndpointInfo::path`], handlers take `E::Request` and
//! answer `E::Response`, the web client, the command-line client, the server's tests and
//! the load generator build their requests with [`Endpoint::path`] and
//! [`QueryParams::to_query`], and `docs/openapi.json` is generated from [`ENDPOINTS`]. So a
//! path, a method or a body shape cannot differ between them.
//!
//! Paths use axum's template syntax (`/api/rooms/{room_id}/log`), which is also OpenAPI's.

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    AccountResponse, AppendLogRequest, AttachmentStatus, ClientStateBody, CreateRoomRequest,
    CreateRoomResponse, DeleteAccountRequest, EnvelopesResponse, ErrorCode, JoinRequestBody,
    JoinRequestsResponse, KeyRequestBody, LogResponse, LoginRequest, LoginResponse, MeResponse,
    MessagesResponse, NewAttachmentRequest, OpenApiDocument, PasskeyChangeRequest,
    PasskeyCreationOptions, PasskeyFinishRequest, PasskeyFinishResponse, PasskeyLoginRequest,
    PasswordChangeRequest, PostMessageRequest, PreloginRequest, PreloginResponse,
    PutClientStateRequest, PutEnvelopesRequest, RecoveryCodesResponse, RegisterRequest,
    RoomListResponse, SessionResponse, SessionStatus, SessionsResponse, StoredMessage,
    TotpCodeRequest, TotpLoginRequest, TotpSetupResponse, TrustedNetworksRequest,
};
use crate::attachment::ATTACHMENT_ID_LEN;
use crate::identity::PublicIdentity;
use crate::membership::RoomId;

/// An HTTP method (RFC 9110 section 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name, e.g. `"GET"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// What a request or a successful response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Nothing (the Rust type is `()`).
    Empty,
    /// `application/json` of the endpoint's type.
    Json,
    /// `application/octet-stream` (the Rust type is `Vec<u8>`).
    Octets,
    /// `text/plain` (the Rust type is `String`).
    Text,
}

/// Who may call an endpoint at all (what a room route allows a member is in its errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone; a session cookie is ignored or optional.
    Public,
    /// Only with a live session cookie, else 401 [`ErrorCode::NotLoggedIn`].
    Session,
}

/// The shape of a path parameter, for the description and for checking templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// 64 hex digits (clients write them lowercase): a [`RoomId`].
    RoomId,
    /// 32 hex digits (clients write them lowercase): an attachment id.
    AttachmentId,
    /// A chunk index, 0 to 2^32 - 1.
    Index,
    /// A username.
    Username,
    /// An opaque id the server handed out (a session's or a passkey's).
    Opaque,
}

/// A path parameter: its name in the template and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathParam {
    /// The name between braces in [`EndpointInfo::path`].
    pub name: &'static str,
    /// What it holds.
    pub kind: ParamKind,
}

/// A query parameter: an optional integer, unsigned 32-bit or signed 64-bit, perhaps with a
/// smallest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryField {
    /// The parameter's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// `u32` when true, `i64` when false.
    pub unsigned_32: bool,
    /// The smallest value the server takes.
    pub minimum: Option<i64>,
}

/// Everything known about an endpoint apart from its Rust types.
#[derive(Debug, Clone, Copy)]
pub struct EndpointInfo {
    /// A stable name, unique among the endpoints (OpenAPI `operationId`), e.g. `append_log`.
    pub id: &'static str,
    /// The method.
    pub method: Method,
    /// The path template, e.g. `/api/rooms/{room_id}/log`.
    pub path: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Whether it needs a session.
    pub access: Access,
    /// The path parameters, in template order.
    pub params: &'static [PathParam],
    /// The query parameters.
    pub query: &'static [QueryField],
    /// What the request carries.
    pub request_body: BodyKind,
    /// What a successful response carries.
    pub response_body: BodyKind,
    /// The success statuses (the first is the usual one).
    pub success: &'static [u16],
    /// The errors particular to this endpoint; [`EndpointInfo::errors`] adds the ones every
    /// endpoint of its kind can answer.
    pub specific_errors: &'static [ErrorCode],
}

impl EndpointInfo {
    /// Every error code this endpoint can answer with: its own, and those implied by its
    /// kind: 401 without a session, 400/415/422/413 for a JSON body, 400 for path
    /// parameters, 403 from another origin for anything but `GET`, 408 for the API routes
    /// under the server's request timeout (all of `/api/` but the WebSocket and this
    /// description), 429 nowhere implicitly, 500 everywhere. Sorted by status, without
    /// repeats.
    pub fn errors(&self) -> Vec<ErrorCode> {
        let mut codes = self.specific_errors.to_vec();
        if self.access == Access::Session {
            codes.push(ErrorCode::NotLoggedIn);
        }
        if self.request_body == BodyKind::Json {
            codes.extend([
                ErrorCode::MalformedJson,
                ErrorCode::UnsupportedMediaType,
                ErrorCode::InvalidBody,
                ErrorCode::PayloadTooLarge,
            ]);
        }
        if !self.params.is_empty() || !self.query.is_empty() {
            codes.push(ErrorCode::MalformedParameter);
        }
        if self.method != Method::Get {
            codes.push(ErrorCode::OriginRefused);
        }
        if self.path.starts_with("/api/") && !matches!(self.id, "connect" | "openapi") {
            codes.push(ErrorCode::Timeout);
        }
        codes.push(ErrorCode::Internal);
        let order = |code: &ErrorCode| {
            ErrorCode::ALL
                .iter()
                .position(|known| known == code)
                .unwrap_or(usize::MAX)
        };
        codes.sort_by_key(|code| (code.status(), order(code)));
        codes.dedup();
        codes
    }

    /// The path with `values` (already rendered, unencoded) for its parameters in template
    /// order, each percent-encoded as a path segment (a value of only dots included, so `..`
    /// cannot climb). Extra values are ignored, missing ones leave the template's `{name}`.
    pub fn render_path(&self, values: &[&str]) -> String {
        let mut path = String::with_capacity(self.path.len() + 64);
        let mut rest = self.path;
        let mut values = values.iter();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            path.push_str(&rest[..open]);
            match values.next() {
                // A segment of only dots would be collapsed by URL resolution (RFC 3986
                // section 5.2.4) into another path.
                Some(value) if !value.is_empty() && value.bytes().all(|b| b == b'.') => {
                    path.extend(std::iter::repeat_n("%2E", value.len()));
                }
                Some(value) => path.extend(utf8_percent_encode(value, SEGMENT)),
                None => path.push_str(&rest[open..=open + close]),
            }
            rest = &rest[open + close + 1..];
        }
        path.push_str(rest);
        path
    }
}

/// Bytes percent-encoded in a path segment: everything but RFC 3986 section 2.3's
/// unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The path parameters of an endpoint, typed.
pub trait PathParams {
    /// Their names and shapes, in template order.
    const PARAMS: &'static [PathParam];
    /// Their values as they go in the path, unencoded, in template order.
    fn values(&self) -> Vec<String>;
}

/// The query of an endpoint, typed.
pub trait QueryParams {
    /// The parameters it may carry.
    const FIELDS: &'static [QueryField];
    /// `?name=value&...` for the parameters that are set, or an empty string.
    fn to_query(&self) -> String;
}

/// One endpoint: its [`EndpointInfo`] and its types. Implemented by the unit structs of
/// this module.
pub trait Endpoint {
    /// Everything but the types.
    const INFO: EndpointInfo;
    /// The path parameters.
    type Params: PathParams;
    /// The query.
    type Query: QueryParams + Default + DeserializeOwned;
    /// The request body: `()` when [`BodyKind::Empty`], `Vec<u8>` for octets.
    type Request: Serialize + DeserializeOwned + 'static;
    /// The body of a successful response: `()` when [`BodyKind::Empty`], `Vec<u8>` for
    /// octets, `String` for text.
    type Response: Serialize + DeserializeOwned;

    /// The path of a request with `params`, parameters percent-encoded.
    fn path(params: &Self::Params) -> String {
        let values = params.values();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        Self::INFO.render_path(&values)
    }
}

/// Something done with the type of every endpoint ([`visit_endpoints`]): how code that
/// needs the types (a router of decoders, say) goes over the list.
pub trait EndpointVisitor {
    /// Called once per endpoint.
    fn visit<E: Endpoint + Default + Send + Sync + 'static>(&mut self);
}

/// No path parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoParams;

impl PathParams for NoParams {
    const PARAMS: &'static [PathParam] = &[];
    fn values(&self) -> Vec<String> {
        Vec::new()
    }
}

/// No query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

impl QueryParams for NoQuery {
    const FIELDS: &'static [QueryField] = &[];
    fn to_query(&self) -> String {
        String::new()
    }
}

const ROOM_ID: PathParam = PathParam {
    name: "room_id",
    kind: ParamKind::RoomId,
};

/// `{room_id}`.
#[derive(Debug, Clone, Copy)]
pub struct RoomParams {
    /// The room.
    pub room_id: RoomId,
}

impl PathParams for RoomParams {
    const PARAMS: &'static [PathParam] = &[ROOM_ID];
    fn values(&self) -> Vec<String> {
        vec![self.room_id.to_hex()]
    }
}

/// `{username}`.
#[derive(Debug, Clone)]
pub struct UserParams {
    /// The user.
    pub username: String,
}

impl PathParams for UserParams {
    const PARAMS: &'static [PathParam] = &[PathParam {
        name: "username",
        kind: ParamKind::Username,
    }];
    fn values(&self) -> Vec<String> {
        vec![self.username.clone()]
    }
}

/// `{id}`: a session's or a passkey's id, as the server listed it.
#[derive(Debug, Clone)]
pub struct IdParams {
    /// The id.
    pub id: String,
}

impl PathParams for IdParams {
    const PARAMS: &'static [PathParam] = &[PathParam {
        name: "id",
        kind: ParamKind::Opaque,
    }];
    fn values(&self) -> Vec<String> {
        vec![self.id.clone()]
    }
}

/// `{room_id}` and `{username}`: one user's join request.
#[derive(Debug, Clone)]
pub struct JoinRequestParams {
    /// The room.
    pub room_id: RoomId,
    /// The requester.
    pub username: String,
}

impl PathParams for JoinRequestParams {
    const PARAMS: &'static [PathParam] = &[
        ROOM_ID,
        PathParam {
            name: "username",
            kind: ParamKind::Username,
        },
    ];
    fn values(&self) -> Vec<String> {
        vec![self.room_id.to_hex(), self.username.clone()]
    }
}

const ATTACHMENT_ID: PathParam = PathParam {
    name: "attachment_id",
    kind: ParamKind::AttachmentId,
};

/// `{room_id}` and `{attachment_id}` (hex in the path).
#[derive(Debug, Clone, Copy)]
pub struct AttachmentParams {
    /// The room.
    pub room_id: RoomId,
    /// The attachment.
    pub attachment_id: [u8; ATTACHMENT_ID_LEN],
}

impl PathParams for AttachmentParams {
    const PARAMS: &'static [PathParam] = &[ROOM_ID, ATTACHMENT_ID];
    fn values(&self) -> Vec<String> {
        vec![self.room_id.to_hex(), hex::encode(self.attachment_id)]
    }
}

/// `{room_id}`, `{attachment_id}` and the chunk `{index}`.
#[derive(Debug, Clone, Copy)]
pub struct ChunkParams {
    /// The room.
    pub room_id: RoomId,
    /// The attachment.
    pub attachment_id: [u8; ATTACHMENT_ID_LEN],
    /// The chunk, from 0.
    pub index: u32,
}

impl PathParams for ChunkParams {
    const PARAMS: &'static [PathParam] = &[
        ROOM_ID,
        ATTACHMENT_ID,
        PathParam {
            name: "index",
            kind: ParamKind::Index,
        },
    ];
    fn values(&self) -> Vec<String> {
        vec![
            self.room_id.to_hex(),
            hex::encode(self.attachment_id),
            self.index.to_string(),
        ]
    }
}

/// The query of `GET /api/rooms/{room_id}/messages`: a page of messages before or after an
/// id (not both).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Only messages with a smaller id: the newest of them.
    pub before: Option<i64>,
    /// Only messages with a larger id: the oldest of them.
    pub after: Option<i64>,
    /// How many messages, 1 to 200 (50 when absent).
    pub limit: Option<u32>,
}

impl PageQuery {
    /// `limit` messages: the newest, or with `before` the newest of those before it (how a
    /// client scrolls back).
    pub fn backwards(before: Option<i64>, limit: u32) -> Self {
        Self {
            before,
            after: None,
            limit: Some(limit),
        }
    }
}

impl QueryParams for PageQuery {
    const FIELDS: &'static [QueryField] = &[
        QueryField {
            name: "before",
            description: "only messages with a smaller id: the newest of them",
            unsigned_32: false,
            minimum: None,
        },
        QueryField {
            name: "after",
            description: "only messages with a larger id: the oldest of them",
            unsigned_32: false,
            minimum: None,
        },
        QueryField {
            name: "limit",
            description: "how many messages (50 when absent; more than 200 count as 200)",
            unsigned_32: true,
            minimum: Some(1),
        },
    ];

    fn to_query(&self) -> String {
        let mut query = String::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                let separator = if query.is_empty() { '?' } else { '&' };
                let _ = write!(query, "{separator}{name}={value}");
            }
        };
        push("before", self.before.map(|id| id.to_string()));
        push("after", self.after.map(|id| id.to_string()));
        push("limit", self.limit.map(|limit| limit.to_string()));
        query
    }
}

/// Defines the endpoint unit structs and [`ENDPOINTS`].
macro_rules! endpoints {
    ($(
        $(#[$doc:meta])*
        $name:ident {
            id: $id:literal,
            $method:ident $path:literal,
            access: $access:ident,
            params: $params:ty,
            query: $query:ty,
            request: $request:ty as $request_body:ident,
            response: $response:ty as $response_body:ident,
            success: [$($success:literal),+],
            errors: [$($error:ident),*],
            summary: $summary:literal,
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;

            impl Endpoint for $name {
                const INFO: EndpointInfo = EndpointInfo {
                    id: $id,
                    method: Method::$method,
                    path: $path,
                    summary: $summary,
                    access: Access::$access,
                    params: <$params as PathParams>::PARAMS,
                    query: <$query as QueryParams>::FIELDS,
                    request_body: BodyKind::$request_body,
                    response_body: BodyKind::$response_body,
                    success: &[$($success),+],
                    specific_errors: &[$(ErrorCode::$error),*],
                };
                type Params = $params;
                type Query = $query;
                type Request = $request;
                type Response = $response;
            }
        )*

        /// Every endpoint, in the order of `docs/openapi.json`.
        pub const ENDPOINTS: &[EndpointInfo] = &[$(<$name as Endpoint>::INFO),*];

        /// Calls `visitor` with the type of every endpoint, in the order of [`ENDPOINTS`].
        pub fn visit_endpoints<V: EndpointVisitor>(visitor: &mut V) {
            $(visitor.visit::<$name>();)*
        }

        /// Every endpoint with the schemas of its JSON request and response bodies (references
        /// into `components`, where the named schemas they use are added).
        #[cfg(feature = "openapi")]
        pub(crate) fn body_schemas(
            components: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
        ) -> Vec<super::openapi::Bodies> {
            vec![$(
                super::openapi::Bodies {
                    info: <$name as Endpoint>::INFO,
                    request: body_schema!($request_body, $request, components),
                    response: body_schema!($response_body, $response, components),
                }
            ),*]
        }
    };
}

/// The schema reference of a JSON body type, or `None` for the other kinds.
#[cfg(feature = "openapi")]
macro_rules! body_schema {
    (Json, $type:ty, $components:ident) => {
        Some(super::openapi::named::<$type>($components))
    };
    ($kind:ident, $type:ty, $components:ident) => {
        None
    };
}

endpoints! {
    /// Creates an account and its first session (sets the session cookie).
    Register {
        id: "register",
        Post "/api/register",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: RegisterRequest as Json,
        response: SessionResponse as Json,
        success: [201],
        errors: [BadRequest, UsernameTaken, RateLimited],
        summary: "Create an account and its first session",
    }
    /// The account's salt and KDF parameters (made up, and stable, for an unknown name).
    Prelogin {
        id: "prelogin",
        Post "/api/prelogin",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: PreloginRequest as Json,
        response: PreloginResponse as Json,
        success: [200],
        errors: [RateLimited],
        summary: "Get the KDF parameters and salt of an account",
    }
    /// Logs in with the auth key: a session, or a second-factor challenge.
    Login {
        id: "login",
        Post "/api/login",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: LoginRequest as Json,
        response: LoginResponse as Json,
        success: [200],
        errors: [InvalidCredentials, NetworkRefused, RateLimited, SecondFactorsUnavailable],
        summary: "Log in with the auth key derived from the password",
    }
    /// The second login step with a TOTP or recovery code.
    LoginTotp {
        id: "login_totp",
        Post "/api/login/totp",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: TotpLoginRequest as Json,
        response: LoginResponse as Json,
        success: [200],
        errors: [InvalidCode, LoginExpired, NetworkRefused, RateLimited, SecondFactorsUnavailable],
        summary: "Finish a login with a TOTP or recovery code",
    }
    /// The second login step with a passkey assertion.
    LoginPasskey {
        id: "login_passkey",
        Post "/api/login/passkey",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: PasskeyLoginRequest as Json,
        response: LoginResponse as Json,
        success: [200],
        errors: [InvalidCode, LoginExpired, NetworkRefused, RateLimited, SecondFactorsUnavailable],
        summary: "Finish a login with a passkey",
    }
    /// Ends the session, closes its sockets and clears the cookie.
    Logout {
        id: "logout",
        Post "/api/logout",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [204],
        errors: [],
        summary: "End this session",
    }
    /// The caller's account: username, wrapped identity and KDF parameters.
    Me {
        id: "me",
        Get "/api/me",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: MeResponse as Json,
        success: [200],
        errors: [],
        summary: "The caller's account and wrapped identity",
    }
    /// Whether the cookie names a live session; never 401.
    Session {
        id: "session",
        Get "/api/session",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: SessionStatus as Json,
        success: [200],
        errors: [],
        summary: "Whether the caller has a live session",
    }
    /// A user's signed public identity.
    UserIdentity {
        id: "user_identity",
        Get "/api/users/{username}",
        access: Session,
        params: UserParams,
        query: NoQuery,
        request: () as Empty,
        response: PublicIdentity as Json,
        success: [200],
        errors: [NotFound],
        summary: "A user's signed public identity",
    }
    /// A new pending TOTP secret, its `otpauth://` URI and QR code.
    TotpSetup {
        id: "totp_setup",
        Post "/api/totp/setup",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: TotpSetupResponse as Json,
        success: [200],
        errors: [Conflict, SecondFactorsUnavailable],
        summary: "Start enrolling a TOTP authenticator",
    }
    /// Enables the pending TOTP secret; answers with fresh recovery codes.
    TotpEnable {
        id: "totp_enable",
        Post "/api/totp/enable",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: TotpCodeRequest as Json,
        response: RecoveryCodesResponse as Json,
        success: [200],
        errors: [InvalidPassword, InvalidCode, Conflict, RateLimited, SecondFactorsUnavailable],
        summary: "Confirm a TOTP authenticator with a code",
    }
    /// Disables TOTP after re-authentication and a code.
    TotpDisable {
        id: "totp_disable",
        Post "/api/totp/disable",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: TotpCodeRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [InvalidPassword, InvalidCode, Conflict, RateLimited, SecondFactorsUnavailable],
        summary: "Turn TOTP off",
    }
    /// The options for `navigator.credentials.create()` (webauthn-rs'
    /// `CreationChallengeResponse`).
    PasskeyBegin {
        id: "passkey_begin",
        Post "/api/passkeys/begin",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: PasskeyChangeRequest as Json,
        response: PasskeyCreationOptions as Json,
        success: [200],
        errors: [InvalidPassword, InvalidCode, Conflict, RateLimited, SecondFactorsUnavailable],
        summary: "Start registering a passkey",
    }
    /// Registers the new passkey.
    PasskeyFinish {
        id: "passkey_finish",
        Post "/api/passkeys/finish",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: PasskeyFinishRequest as Json,
        response: PasskeyFinishResponse as Json,
        success: [200],
        errors: [BadRequest, InvalidCode, Conflict, SecondFactorsUnavailable],
        summary: "Finish registering a passkey",
    }
    /// Removes a passkey after re-authentication.
    PasskeyRemove {
        id: "passkey_remove",
        Post "/api/passkeys/{id}/remove",
        access: Session,
        params: IdParams,
        query: NoQuery,
        request: PasskeyChangeRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [InvalidPassword, InvalidCode, Conflict, RateLimited, SecondFactorsUnavailable],
        summary: "Remove a passkey",
    }
    /// The caller's live sessions, newest first.
    Sessions {
        id: "sessions",
        Get "/api/sessions",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: SessionsResponse as Json,
        success: [200],
        errors: [],
        summary: "List the caller's sessions",
    }
    /// Ends one of the caller's sessions.
    RevokeSession {
        id: "revoke_session",
        Delete "/api/sessions/{id}",
        access: Session,
        params: IdParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [204],
        errors: [NotFound],
        summary: "End one of the caller's sessions",
    }
    /// Ends every other session of the caller.
    RevokeOtherSessions {
        id: "revoke_other_sessions",
        Post "/api/sessions/revoke-others",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [204],
        errors: [],
        summary: "End every other session of the caller",
    }
    /// Second factors, trusted networks, login history and new-network notices.
    Account {
        id: "account",
        Get "/api/account",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: AccountResponse as Json,
        success: [200],
        errors: [SecondFactorsUnavailable],
        summary: "The caller's account security overview",
    }
    /// Dismisses every new-network notice.
    DismissNotices {
        id: "dismiss_notices",
        Post "/api/account/notices/dismiss",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [204],
        errors: [],
        summary: "Dismiss the new-network notices",
    }
    /// Replaces the trusted networks (empty allows any).
    SetTrustedNetworks {
        id: "set_trusted_networks",
        Put "/api/account/trusted-networks",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: TrustedNetworksRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [BadRequest, InvalidPassword, InvalidCode, RateLimited, SecondFactorsUnavailable],
        summary: "Replace the networks logins may come from",
    }
    /// Re-wraps the identity under a new password and ends the other sessions.
    ChangePassword {
        id: "change_password",
        Post "/api/account/password",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: PasswordChangeRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [BadRequest, InvalidPassword, InvalidCode, RateLimited, SecondFactorsUnavailable],
        summary: "Change the password",
    }
    /// Deletes the account and every row of it.
    DeleteAccount {
        id: "delete_account",
        Post "/api/account/delete",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: DeleteAccountRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [InvalidPassword, InvalidCode, RateLimited, Unavailable, SecondFactorsUnavailable],
        summary: "Delete the account",
    }
    /// The caller's sealed client state.
    GetClientState {
        id: "get_client_state",
        Get "/api/me/state",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: ClientStateBody as Json,
        success: [200],
        errors: [],
        summary: "The caller's sealed client state",
    }
    /// Replaces the sealed client state if the stored one is the version it was based on.
    PutClientState {
        id: "put_client_state",
        Put "/api/me/state",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: PutClientStateRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [BadRequest, StateVersionConflict],
        summary: "Replace the caller's sealed client state",
    }
    /// Creates a room from its signed genesis entry and the owner's key envelope.
    CreateRoom {
        id: "create_room",
        Post "/api/rooms",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: CreateRoomRequest as Json,
        response: CreateRoomResponse as Json,
        success: [201],
        errors: [BadRequest, Forbidden, RoomExists],
        summary: "Create a room",
    }
    /// The caller's rooms.
    ListRooms {
        id: "list_rooms",
        Get "/api/rooms",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: RoomListResponse as Json,
        success: [200],
        errors: [],
        summary: "List the caller's rooms",
    }
    /// The room's membership log.
    GetLog {
        id: "get_log",
        Get "/api/rooms/{room_id}/log",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: () as Empty,
        response: LogResponse as Json,
        success: [200],
        errors: [NotFound],
        summary: "Read a room's membership log",
    }
    /// Appends a signed entry to the membership log (204 when it deletes the room).
    AppendLog {
        id: "append_log",
        Post "/api/rooms/{room_id}/log",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: AppendLogRequest as Json,
        response: () as Empty,
        success: [201, 204],
        errors: [BadRequest, Forbidden, NotFound, LogOutOfDate, AlreadyMember, Unavailable],
        summary: "Append an entry to a room's membership log",
    }
    /// Stores key envelopes for members.
    PutEnvelopes {
        id: "put_envelopes",
        Post "/api/rooms/{room_id}/envelopes",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: PutEnvelopesRequest as Json,
        response: () as Empty,
        success: [204],
        errors: [BadRequest, Forbidden, NotFound],
        summary: "Hand room keys to members",
    }
    /// The caller's key envelopes of the room.
    GetEnvelopes {
        id: "get_envelopes",
        Get "/api/rooms/{room_id}/envelopes",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: () as Empty,
        response: EnvelopesResponse as Json,
        success: [200],
        errors: [NotFound],
        summary: "The caller's key envelopes of a room",
    }
    /// Asks the other connected members for the key of an epoch.
    RequestKey {
        id: "request_key",
        Post "/api/rooms/{room_id}/key-requests",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: KeyRequestBody as Json,
        response: () as Empty,
        success: [202],
        errors: [BadRequest, NotFound],
        summary: "Ask the other members for a missing epoch key",
    }
    /// A page of the room's messages.
    ListMessages {
        id: "list_messages",
        Get "/api/rooms/{room_id}/messages",
        access: Session,
        params: RoomParams,
        query: PageQuery,
        request: () as Empty,
        response: MessagesResponse as Json,
        success: [200],
        errors: [BadRequest, NotFound],
        summary: "Read a page of a room's messages",
    }
    /// Posts a sealed, signed message.
    PostMessage {
        id: "post_message",
        Post "/api/rooms/{room_id}/messages",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: PostMessageRequest as Json,
        response: StoredMessage as Json,
        success: [201],
        errors: [BadRequest, NotFound, StaleEpoch, KeyRotationPending, RateLimited, Unavailable],
        summary: "Post a message",
    }
    /// Asks to join with an invite token.
    RequestToJoin {
        id: "request_to_join",
        Post "/api/rooms/{room_id}/join-requests",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: JoinRequestBody as Json,
        response: () as Empty,
        success: [202],
        errors: [Banned, NotFound, AlreadyMember, Conflict, InviteExpired, InviteUsedUp],
        summary: "Ask to join a room with an invite",
    }
    /// The room's pending join requests (owners and admins).
    ListJoinRequests {
        id: "list_join_requests",
        Get "/api/rooms/{room_id}/join-requests",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: () as Empty,
        response: JoinRequestsResponse as Json,
        success: [200],
        errors: [Forbidden, NotFound],
        summary: "List a room's join requests",
    }
    /// Refuses a join request (owners and admins).
    RefuseJoinRequest {
        id: "refuse_join_request",
        Delete "/api/rooms/{room_id}/join-requests/{username}",
        access: Session,
        params: JoinRequestParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [204],
        errors: [Forbidden, NotFound],
        summary: "Refuse a join request",
    }
    /// Announces an attachment before its chunks (200 for a resumed upload).
    AnnounceAttachment {
        id: "announce_attachment",
        Post "/api/rooms/{room_id}/attachments",
        access: Session,
        params: RoomParams,
        query: NoQuery,
        request: NewAttachmentRequest as Json,
        response: AttachmentStatus as Json,
        success: [201, 200],
        errors: [BadRequest, NotFound, Conflict],
        summary: "Announce an attachment",
    }
    /// What the server holds of an attachment.
    AttachmentStatusOf {
        id: "attachment_status",
        Get "/api/rooms/{room_id}/attachments/{attachment_id}",
        access: Session,
        params: AttachmentParams,
        query: NoQuery,
        request: () as Empty,
        response: AttachmentStatus as Json,
        success: [200],
        errors: [NotFound],
        summary: "The upload state of an attachment",
    }
    /// Stores one chunk's ciphertext (the uploader only).
    UploadChunk {
        id: "upload_chunk",
        Put "/api/rooms/{room_id}/attachments/{attachment_id}/chunks/{index}",
        access: Session,
        params: ChunkParams,
        query: NoQuery,
        request: Vec<u8> as Octets,
        response: () as Empty,
        success: [204],
        errors: [BadRequest, Forbidden, NotFound, Conflict, PayloadTooLarge],
        summary: "Upload a chunk of an attachment",
    }
    /// The attachment's whole ciphertext, or a single `Range` of it (206).
    DownloadAttachment {
        id: "download_attachment",
        Get "/api/rooms/{room_id}/attachments/{attachment_id}/content",
        access: Session,
        params: AttachmentParams,
        query: NoQuery,
        request: () as Empty,
        response: Vec<u8> as Octets,
        success: [200, 206],
        errors: [BadRequest, NotFound, Conflict, RangeNotSatisfiable],
        summary: "Download an attachment's ciphertext",
    }
    /// The WebSocket of server events (JSON text frames of `ServerEvent`).
    Connect {
        id: "connect",
        Get "/api/ws",
        access: Session,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: () as Empty,
        success: [101],
        errors: [BadRequest, OriginRefused],
        summary: "Open the WebSocket of server events",
    }
    /// The description of this API (OpenAPI 3.1), as in `docs/openapi.json`.
    OpenApi {
        id: "openapi",
        Get "/api/openapi.json",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: OpenApiDocument as Json,
        success: [200],
        errors: [],
        summary: "This API's OpenAPI description",
    }
    /// `ok` while the database answers (for load balancers).
    Health {
        id: "health",
        Get "/healthz",
        access: Public,
        params: NoParams,
        query: NoQuery,
        request: () as Empty,
        response: String as Text,
        success: [200],
        errors: [Unavailable],
        summary: "Whether this instance can serve requests",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use super::*;

    fn template_params(path: &str) -> Vec<&str> {
        path.split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }

    #[test]
    fn every_template_names_exactly_its_typed_parameters() {
        for endpoint in ENDPOINTS {
            let names: Vec<&str> = endpoint.params.iter().map(|param| param.name).collect();
            assert_eq!(template_params(endpoint.path), names, "{}", endpoint.id);
        }
    }

    #[test]
    fn the_visitor_sees_every_endpoint_in_order() {
        struct Ids(Vec<&'static str>);
        impl EndpointVisitor for Ids {
            fn visit<E: Endpoint + Default + Send + Sync + 'static>(&mut self) {
                self.0.push(E::INFO.id);
            }
        }
        let mut ids = Ids(Vec::new());
        visit_endpoints(&mut ids);
        let expected: Vec<&str> = ENDPOINTS.iter().map(|endpoint| endpoint.id).collect();
        assert_eq!(ids.0, expected);
    }

    #[test]
    fn ids_and_routes_are_unique() {
        let ids: BTreeSet<_> = ENDPOINTS.iter().map(|endpoint| endpoint.id).collect();
        assert_eq!(ids.len(), ENDPOINTS.len());
        let routes: BTreeSet<_> = ENDPOINTS
            .iter()
            .map(|endpoint| (endpoint.method, endpoint.path))
            .collect();
        assert_eq!(routes.len(), ENDPOINTS.len());
    }

    #[test]
    fn bodies_match_their_kinds() {
        for endpoint in ENDPOINTS {
            if endpoint.method == Method::Get || endpoint.method == Method::Delete {
                assert_eq!(endpoint.request_body, BodyKind::Empty, "{}", endpoint.id);
            }
            let bodiless = endpoint.success.iter().all(|&s| s == 204 || s == 101);
            assert_eq!(
                bodiless,
                endpoint.response_body == BodyKind::Empty
                    && !endpoint.success.contains(&201)
                    && !endpoint.success.contains(&202),
                "{}",
                endpoint.id
            );
        }
    }

    #[test]
    fn parameters_are_encoded_as_path_segments() {
        let path = RefuseJoinRequest::path(&JoinRequestParams {
            room_id: RoomId([0xab; 32]),
            username: "a b/c?".to_owned(),
        });
        assert_eq!(
            path,
            format!("/api/rooms/{}/join-requests/a%20b%2Fc%3F", "ab".repeat(32))
        );
        let chunk = UploadChunk::path(&ChunkParams {
            room_id: RoomId([1; 32]),
            attachment_id: [2; ATTACHMENT_ID_LEN],
            index: 7,
        });
        assert!(chunk.ends_with(&format!("/attachments/{}/chunks/7", "02".repeat(16))));
        assert_eq!(GetLog::INFO.render_path(&[]), "/api/rooms/{room_id}/log");
        assert_eq!(UserIdentity::INFO.render_path(&[".."]), "/api/users/%2E%2E");
    }

    #[test]
    fn a_page_query_names_only_what_is_set() {
        assert_eq!(PageQuery::default().to_query(), "");
        let query = PageQuery {
            before: None,
            after: Some(-3),
            limit: Some(20),
        };
        assert_eq!(query.to_query(), "?after=-3&limit=20");
    }

    #[test]
    fn implied_errors_follow_the_endpoint_kind() {
        let errors = PostMessage::INFO.errors();
        for code in [
            ErrorCode::NotLoggedIn,
            ErrorCode::MalformedJson,
            ErrorCode::InvalidBody,
            ErrorCode::MalformedParameter,
            ErrorCode::OriginRefused,
            ErrorCode::StaleEpoch,
            ErrorCode::Internal,
        ] {
            assert!(errors.contains(&code), "{code:?}");
        }
        let statuses: Vec<u16> = errors.iter().map(|code| code.status()).collect();
        assert!(statuses.is_sorted());
        let session = Session::INFO.errors();
        assert_eq!(session, vec![ErrorCode::Timeout, ErrorCode::Internal]);
        // The WebSocket and /healthz are outside the request timeout.
        assert!(!Connect::INFO.errors().contains(&ErrorCode::Timeout));
        assert_eq!(
            Health::INFO.errors(),
            vec![ErrorCode::Internal, ErrorCode::Unavailable]
        );
    }
}
