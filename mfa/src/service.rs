//! The service's HTTP API, for chat servers only (over mutual TLS, see [`crate::tls`]).
//! Every body is JSON of [`crate::api`]; every error is an [`ErrorBody`] with a stable
//! `code`. Usernames in paths are checked as the chat checks them (400 otherwise).
//!
//! - `GET /healthz` -> 200 `ok` (also without a path prefix, for load balancers).
//! - `GET /v1/users/{username}/factors` -> 200 [`FactorStatus`].
//! - `POST /v1/users/{username}/totp/setup` -> 200 [`TotpSetup`]; 409.
//! - `POST /v1/users/{username}/totp/enable` [`CodeRequest`] -> 200 [`RecoveryCodes`]; 401
//!   `invalid_code`, 409.
//! - `POST /v1/users/{username}/totp/disable` -> 204; 409.
//! - `POST /v1/users/{username}/codes/verify` [`CodeRequest`] -> 200 [`Verdict`].
//! - `POST /v1/users/{username}/passkeys/begin` -> 200 `CreationChallengeResponse` (the
//!   options for `navigator.credentials.create()`); 409 beyond 16 passkeys.
//! - `POST /v1/users/{username}/passkeys/finish` [`PasskeyRegistration`] -> 200
//!   [`PasskeyRegistered`]; 401 `invalid_code` for a credential that does not answer the
//!   registration, 400 for a bad name or a credential of another shape, 409 with no
//!   registration in progress or for a credential registered already.
//! - `DELETE /v1/users/{username}/passkeys/{id}` -> 204; 409 `no such passkey`.
//! - `POST /v1/users/{username}/logins` -> 200 [`LoginStart`] (no challenge for an account
//!   without a factor); 404 `unknown_user` for an account that never began setting one up.
//! - `POST /v1/logins/owner` [`ChallengeRequest`] -> 200 [`ChallengeOwner`].
//! - `POST /v1/logins/complete` [`CompleteLoginRequest`] -> 200 [`LoginOutcome`].
//! - `POST /v1/logins/complete-passkey` [`PasskeyLoginRequest`] -> 200 [`LoginOutcome`]; 400
//!   for a credential that is not a `PublicKeyCredential`.
//! - `DELETE /v1/users/{username}` -> 204.
//!
//! [`FactorStatus`]: crate::api::FactorStatus
//! [`TotpSetup`]: crate::api::TotpSetup
//! [`RecoveryCodes`]: crate::api::RecoveryCodes
//! [`PasskeyRegistration`]: crate::api::PasskeyRegistration
//! [`PasskeyRegistered`]: crate::api::PasskeyRegistered
//! [`LoginOutcome`]: crate::api::LoginOutcome

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use common::identity::validate_username;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{
    ChallengeOwner, ChallengeRequest, CodeRequest, CompleteLoginRequest, ErrorBody, LoginStart,
    PasskeyLoginRequest, PasskeyRegistration, Verdict,
};
use crate::error::MfaError;
use crate::factors::{challenge_to_wire, Factors, SecondFactors};

/// Largest request body, in bytes (16 KiB: codes and challenges are tiny).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long one request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An error answer: the status of its kind and an [`ErrorBody`].
struct ServiceError(MfaError);

impl From<MfaError> for ServiceError {
    fn from(error: MfaError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            MfaError::InvalidCode => StatusCode::UNAUTHORIZED,
            MfaError::Conflict(_) => StatusCode::CONFLICT,
            MfaError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MfaError::UnknownUser => StatusCode::NOT_FOUND,
            MfaError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            MfaError::Corrupt(_) | MfaError::Database(_) => {
                tracing::error!(error = %self.0, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let error = match &self.0 {
            MfaError::Corrupt(_) | MfaError::Database(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error,
            code: self.0.code().to_owned(),
        };
        (status, Json(body)).into_response()
    }
}

type ServiceResult<T> = Result<T, ServiceError>;

/// A JSON body; 413 `too_large` over [`MAX_BODY_BYTES`], else 400 `bad_request` naming
/// what is wrong with it.
struct Body<T>(T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let body = ErrorBody {
                    error: "request body is too large".to_owned(),
                    code: "too_large".to_owned(),
                };
                Err((StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response())
            }
            Err(rejection) => {
                Err(ServiceError(MfaError::BadRequest(rejection.body_text())).into_response())
            }
        }
    }
}

/// A username from the path, checked.
fn checked(username: &str) -> ServiceResult<&str> {
    validate_username(username).map_err(|error| MfaError::BadRequest(error.to_string()))?;
    Ok(username)
}

type Shared = Arc<Factors>;

/// The routes above, over `factors`.
pub fn router(factors: Factors) -> Router {
    let api = Router::new()
        .route("/v1/users/{username}/factors", get(status))
        .route("/v1/users/{username}/totp/setup", post(totp_setup))
        .route("/v1/users/{username}/totp/enable", post(totp_enable))
        .route("/v1/users/{username}/totp/disable", post(totp_disable))
        .route("/v1/users/{username}/codes/verify", post(verify_code))
        .route("/v1/users/{username}/logins", post(begin_login))
        .route("/v1/users/{username}/passkeys/begin", post(passkey_begin))
        .route("/v1/users/{username}/passkeys/finish", post(passkey_finish))
        .route("/v1/users/{username}/passkeys/{id}", delete(passkey_remove))
        .route("/v1/logins/complete-passkey", post(complete_login_passkey))
        .route("/v1/users/{username}", delete(delete_user))
        .route("/v1/logins/owner", post(challenge_owner))
        .route("/v1/logins/complete", post(complete_login))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(factors));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .layer(TraceLayer::new_for_http())
}

async fn not_found() -> Response {
    let body = ErrorBody {
        error: "no such endpoint".to_owned(),
        code: "not_found".to_owned(),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn status(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<Response> {
    Ok(Json(factors.status(checked(&username)?).await?).into_response())
}

async fn totp_setup(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<Response> {
    Ok(Json(factors.totp_setup(checked(&username)?).await?).into_response())
}

async fn totp_enable(
    State(factors): State<Shared>,
    Path(username): Path<String>,
    Body(request): Body<CodeRequest>,
) -> ServiceResult<Response> {
    let codes = factors
        .totp_enable(checked(&username)?, &request.code)
        .await?;
    Ok(Json(codes).into_response())
}

async fn totp_disable(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<StatusCode> {
    factors.totp_disable(checked(&username)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_code(
    State(factors): State<Shared>,
    Path(username): Path<String>,
    Body(request): Body<CodeRequest>,
) -> ServiceResult<Json<Verdict>> {
    let valid = factors
        .verify_code(checked(&username)?, &request.code)
        .await?;
    Ok(Json(Verdict { valid }))
}

async fn begin_login(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<Json<LoginStart>> {
    let start = factors.begin_login(checked(&username)?).await?;
    Ok(Json(match start {
        Some(start) => LoginStart {
            challenge: Some(challenge_to_wire(&start.challenge)),
            passkey_options: start.passkey_options,
        },
        None => LoginStart {
            challenge: None,
            passkey_options: None,
        },
    }))
}

async fn passkey_begin(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<Response> {
    let options = factors.passkey_register_begin(checked(&username)?).await?;
    Ok(Json(options).into_response())
}

async fn passkey_finish(
    State(factors): State<Shared>,
    Path(username): Path<String>,
    Body(registration): Body<PasskeyRegistration>,
) -> ServiceResult<Response> {
    let registered = factors
        .passkey_register_finish(checked(&username)?, &registration)
        .await?;
    Ok(Json(registered).into_response())
}

async fn passkey_remove(
    State(factors): State<Shared>,
    Path((username, id)): Path<(String, String)>,
) -> ServiceResult<StatusCode> {
    factors.passkey_remove(checked(&username)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn complete_login_passkey(
    State(factors): State<Shared>,
    Body(request): Body<PasskeyLoginRequest>,
) -> ServiceResult<Response> {
    let credential = request
        .credential
        .decode()
        .map_err(|error| MfaError::BadRequest(format!("credential: {error}")))?;
    let outcome = factors
        .complete_login_passkey(&request.challenge.0, &credential)
        .await?;
    Ok(Json(outcome).into_response())
}

async fn delete_user(
    State(factors): State<Shared>,
    Path(username): Path<String>,
) -> ServiceResult<StatusCode> {
    factors.delete_user(checked(&username)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn challenge_owner(
    State(factors): State<Shared>,
    Body(request): Body<ChallengeRequest>,
) -> ServiceResult<Json<ChallengeOwner>> {
    let username = factors.challenge_owner(&request.challenge.0).await?;
    Ok(Json(ChallengeOwner { username }))
}

async fn complete_login(
    State(factors): State<Shared>,
    Body(request): Body<CompleteLoginRequest>,
) -> ServiceResult<Response> {
    let outcome = factors
        .complete_login(&request.challenge.0, &request.code)
        .await?;
    Ok(Json(outcome).into_response())
}

/// Serves `router` on `listener` over TLS with `tls` (see [`crate::tls::server_config`])
/// until `shutdown` completes, then lets requests in flight finish (at most
/// [`REQUEST_TIMEOUT`]).
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::<SocketAddr>::new();
    let shutdown_handle = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        shutdown_handle.graceful_shutdown(Some(REQUEST_TIMEOUT));
    });
    axum_server::Server::from_listener(listener)
        .acceptor(RustlsAcceptor::new(RustlsConfig::from_config(tls)))
        .handle(handle)
        .serve(router.into_make_service())
        .await
}
