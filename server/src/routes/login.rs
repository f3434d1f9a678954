//! Logging in: prelogin, the password step, and the second-factor step; with throttling,
//! trusted networks, login history and new-network notices.
//!
//! A login is one or two steps. `POST /api/login` checks the auth key, then the account's
//! trusted networks; without a second factor it starts the session at once, with one it
//! answers a challenge from the second-factor store ([`mfa::SecondFactors::begin_login`]:
//! 32 random bytes, valid 5 minutes, for at most 5 codes) followed by a 16-byte tag that
//! binds it to the account ([`crate::store::secrets::ServerSecret::login_challenge_tag`]) and `POST /api/login/totp` starts
//! the session when the store accepts the code. Every attempt on a known account is
//! recorded in its login history. An account without a second factor never waits on the
//! store (see [`crate::factors`]); one with a second factor cannot log in while the store
//! cannot be reached (503).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use common::account::KdfParams;
use common::api::endpoints::{Login, LoginPasskey, LoginTotp, Prelogin};
use common::api::{LoginResponse, PreloginResponse, WebAuthnJson};
use common::identity::validate_username;
use common::wire::{Base64, Base64Array};
use mfa::api::LoginOutcome;

use super::{EndpointRouter, Reply, Request};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::password;
use crate::session;
use crate::store::login_events::{self, LoginResult, NewLoginEvent};
use crate::store::{self, trusted_networks, users};
use crate::throttle::Endpoint;
use crate::AppState;

/// Routes of this module. Each counts against the login throttle of its username and of the
/// client's address (see [`crate::throttle`]): beyond the limit they answer 429
/// `too many attempts, try again later` with `Retry-After` and `retry_after_s`.
///
/// - `POST /api/prelogin` [`PreloginRequest`] -> 200 [`PreloginResponse`]; an unknown name
///   gets default parameters and a stable fake salt.
/// - `POST /api/login` [`LoginRequest`] -> 200 [`LoginResponse`]: with the session cookie
///   and `totp_required: false` (and `new_network` for a login from a network new to the
///   account), or without a cookie, with `totp_required: true` and a `challenge`. 401
///   `invalid username or password` for a wrong key or an unknown name alike; 403
///   `login from this network is not allowed for this account` when the account's trusted
///   networks exclude the client.
/// - `POST /api/login/totp` [`TotpLoginRequest`] -> 200 [`LoginResponse`] with the session
///   cookie; 401 `invalid code` for a wrong or reused code (5 tries per challenge), 401
///   `login expired, start again` for an unknown, expired or used-up challenge, 403 as for
///   login, 503 while the second-factor store cannot be reached.
/// - `POST /api/login/passkey` [`PasskeyLoginRequest`] -> as `/api/login/totp`, answered
///   with a passkey assertion for the login's `passkey_options` instead of a code (a refused
///   assertion is 401 `invalid code` and counts as a wrong code; one that is not a
///   `PublicKeyCredential` is 422 `invalid_body` and counts as nothing).
pub fn router() -> Router<AppState> {
    Router::new()
        .endpoint(Prelogin, prelogin)
        .endpoint(Login, login)
        .endpoint(LoginTotp, login_totp)
        .endpoint(LoginPasskey, login_passkey)
}

/// Counts an attempt on `endpoint`, or refuses it with 429.
async fn throttle(
    state: &AppState,
    endpoint: Endpoint,
    username: Option<&str>,
    client: &ClientInfo,
) -> ApiResult<()> {
    state
        .throttle
        .attempt(&state.pool, endpoint, username, client.ip)
        .await
}

/// Records a failed login attempt on `username`'s account.
async fn record_failure(
    state: &AppState,
    username: &str,
    client: &ClientInfo,
    result: LoginResult,
) -> ApiResult<()> {
    let network = client.network().to_string();
    let new_network = login_events::is_new_network(&state.pool, username, &network).await?;
    let event = NewLoginEvent {
        username,
        ip: &client.ip.to_string(),
        user_agent: &client.user_agent,
        result,
        new_network,
    };
    login_events::record(&state.pool, &event, store::now_ms()).await
}

/// Refuses (403, recorded as `network_refused`) a login from outside the account's trusted
/// networks, when it has any.
async fn require_trusted_network(
    state: &AppState,
    username: &str,
    client: &ClientInfo,
) -> ApiResult<()> {
    let networks = trusted_networks::list(&state.pool, username).await?;
    if networks.is_empty() || networks.iter().any(|network| network.contains(&client.ip)) {
        return Ok(());
    }
    tracing::info!(%username, ip = %client.ip, "login refused from an untrusted network");
    record_failure(state, username, client, LoginResult::NetworkRefused).await?;
    Err(ApiError::NetworkRefused)
}

/// Starts the session of a login that passed every check: remembers the client's network
/// (a new one becomes a notice), records the success, and answers with the cookie.
async fn finish_login(
    state: &AppState,
    username: &str,
    client: &ClientInfo,
) -> ApiResult<Response> {
    let now_ms = store::now_ms();
    let network = client.network().to_string();
    let new_network =
        login_events::remember_network(&state.pool, username, &network, now_ms).await?;
    let cookie = session::start(state, username, client).await?;
    let event = NewLoginEvent {
        username,
        ip: &client.ip.to_string(),
        user_agent: &client.user_agent,
        result: LoginResult::Success,
        new_network,
    };
    login_events::record(&state.pool, &event, now_ms).await?;
    if new_network {
        tracing::info!(%username, %network, "login from a new network");
    }
    let body = LoginResponse {
        username: username.to_owned(),
        totp_required: false,
        challenge: None,
        passkey_options: None,
        new_network,
    };
    Ok(([cookie], Json(body)).into_response())
}

async fn prelogin(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(request): Request<Prelogin>,
) -> ApiResult<Reply<Prelogin>> {
    let valid_name = validate_username(&request.username).is_ok();
    throttle(
        &state,
        Endpoint::Prelogin,
        valid_name.then_some(request.username.as_str()),
        &client,
    )
    .await?;
    let known = if valid_name {
        users::find(&state.pool, &request.username).await?
    } else {
        None
    };
    let response = match known {
        Some(user) => PreloginResponse {
            kdf: user.kdf,
            salt: Base64Array(user.salt),
        },
        None => PreloginResponse {
            kdf: KdfParams::DEFAULT,
            salt: Base64Array(state.secret.fake_salt(&request.username)),
        },
    };
    Ok(Json(response))
}

async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(request): Request<Login>,
) -> ApiResult<Response> {
    let valid_name = validate_username(&request.username).is_ok();
    let user = if valid_name {
        users::find(&state.pool, &request.username).await?
    } else {
        None
    };
    let counted_name = valid_name.then_some(request.username.as_str());
    match throttle(&state, Endpoint::Login, counted_name, &client).await {
        Err(refusal @ ApiError::TooManyAttempts { .. }) => {
            if let Some(user) = &user {
                record_failure(&state, &user.username, &client, LoginResult::Throttled).await?;
            }
            return Err(refusal);
        }
        other => other?,
    }
    // An unknown name is checked against a dummy hash, so both failures take as long.
    let stored_hash = user.as_ref().map_or_else(
        || state.dummy_auth_hash.to_string(),
        |user| user.auth_hash.clone(),
    );
    let key_matches = password::verify_auth_key(request.auth_key.0, stored_hash).await?;
    let user = match user {
        Some(user) if key_matches => user,
        Some(user) => {
            record_failure(&state, &user.username, &client, LoginResult::WrongPassword).await?;
            return Err(ApiError::InvalidCredentials);
        }
        None => return Err(ApiError::InvalidCredentials),
    };
    require_trusted_network(&state, &user.username, &client).await?;
    let may_have_factor = users::second_factor(&state.pool, &user.username)
        .await?
        .unwrap_or(false);
    let started = if may_have_factor {
        state.factors.begin_login(&user.username).await?
    } else {
        None
    };
    let Some(started) = started else {
        return finish_login(&state, &user.username, &client).await;
    };
    // The client holds the store's challenge and a tag binding it to this account.
    let mut challenge = started.challenge.0.to_vec();
    challenge.extend_from_slice(&state.secret.login_challenge_tag(&user.username, &challenge));
    let body = LoginResponse {
        username: user.username,
        totp_required: true,
        challenge: Some(Base64(challenge)),
        passkey_options: started
            .passkey_options
            .map(|options| WebAuthnJson::encode(&options))
            .transpose()
            .map_err(ApiError::webauthn_encoding)?,
        new_network: false,
    };
    Ok(Json(body).into_response())
}

/// Bytes of the second-factor store's login challenge (the client holds them and a tag).
const STORE_CHALLENGE_BYTES: usize = 32;

/// The longest code the second step passes on to the store (a recovery code typed with
/// spaces fits easily).
const MAX_CODE_CHARS: usize = 64;

/// How the second step is answered.
enum SecondFactorProof {
    /// A TOTP or recovery code.
    Code(String),
    /// A passkey assertion.
    Passkey(Box<webauthn_rs_proto::PublicKeyCredential>),
}

/// The second step of a login: the challenge's owner (before the throttle counts the
/// attempt for them), the trusted networks again, then the store's verdict.
async fn second_step(
    state: &AppState,
    client: &ClientInfo,
    challenge: &[u8],
    proof: SecondFactorProof,
) -> ApiResult<Response> {
    // Malformed input never reaches the store: a challenge is the store's 32 bytes and a
    // 16-byte tag, which must name the account the store says the challenge is for.
    let (challenge, tag) = challenge.split_at(challenge.len().min(STORE_CHALLENGE_BYTES));
    let username = if challenge.len() == STORE_CHALLENGE_BYTES && tag.len() == 16 {
        state
            .factors
            .challenge_owner(challenge)
            .await?
            .filter(|owner| {
                let expected = state.secret.login_challenge_tag(owner, challenge);
                bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_slice(), tag))
            })
    } else {
        None
    };
    match throttle(state, Endpoint::LoginTotp, username.as_deref(), client).await {
        Err(refusal @ ApiError::TooManyAttempts { .. }) => {
            if let Some(username) = &username {
                record_failure(state, username, client, LoginResult::Throttled).await?;
            }
            return Err(refusal);
        }
        other => other?,
    }
    let username = username.ok_or(ApiError::LoginExpired)?;
    // The address may have changed since the password step.
    require_trusted_network(state, &username, client).await?;
    let outcome = match proof {
        SecondFactorProof::Code(code) if code.chars().count() > MAX_CODE_CHARS => {
            LoginOutcome::WrongCode
        }
        SecondFactorProof::Code(code) => {
            state.factors.complete_login(challenge, code.trim()).await?
        }
        SecondFactorProof::Passkey(credential) => {
            state
                .factors
                .complete_login_passkey(challenge, &credential)
                .await?
        }
    };
    match outcome {
        LoginOutcome::Accepted => finish_login(state, &username, client).await,
        LoginOutcome::WrongCode => {
            record_failure(state, &username, client, LoginResult::WrongCode).await?;
            Err(ApiError::InvalidCode)
        }
        // Used up meanwhile, or completed by another request.
        LoginOutcome::Expired => Err(ApiError::LoginExpired),
    }
}

async fn login_totp(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(request): Request<LoginTotp>,
) -> ApiResult<Response> {
    let proof = SecondFactorProof::Code(request.code);
    second_step(&state, &client, &request.challenge.0, proof).await
}

async fn login_passkey(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(request): Request<LoginPasskey>,
) -> ApiResult<Response> {
    let credential = super::passkeys::credential(&request.credential)?;
    let proof = SecondFactorProof::Passkey(Box::new(credential));
    second_step(&state, &client, &request.challenge.0, proof).await
}
