//! [`RemoteFactors`]: [`SecondFactors`] answered by the service in another process, over
//! mutual TLS.
//!
//! Timeouts and retries are bounded: a connection must open within [`CONNECT_TIMEOUT`] and
//! a request be answered within [`REQUEST_TIMEOUT`]. A request that could not even connect
//! is tried again, at most [`CONNECT_ATTEMPTS`] times in all, [`RETRY_PAUSE`] apart: it never
//! reached the service, so trying again cannot use a code twice. Nothing else is retried.
//! Any failure to get a well-formed answer is [`MfaError::Unavailable`], so that the chat
//! server fails closed.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use common::api::WebAuthnJson;
use common::wire::Base64;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;
use zeroize::Zeroizing;

use crate::api::{
    Challenge, ChallengeOwner, ChallengeRequest, CodeRequest, CompleteLoginRequest, ErrorBody,
    FactorStatus, LoginChallenge, LoginOutcome, LoginStart, PasskeyLoginRequest, PasskeyRegistered,
    PasskeyRegistration, RecoveryCodes, TotpSetup, Verdict,
};
use crate::error::{error_chain, MfaError, MfaResult};
use crate::factors::SecondFactors;
use crate::tls::{self, MutualTlsError};

/// How long opening a connection to the service may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at a request whose connection fails, in all.
pub const CONNECT_ATTEMPTS: u32 = 3;
/// The pause between two of those attempts.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Why a [`RemoteFactors`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSetupError {
    /// The service URL is not an `https://` URL.
    #[error("the second-factor service url must be https://HOST[:PORT]/")]
    Url,
    /// A certificate, key or CA file is unusable.
    #[error(transparent)]
    Tls(#[from] MutualTlsError),
    /// The HTTP client could not be built.
    #[error("cannot build the http client")]
    Client(#[from] reqwest::Error),
}

/// The service at a URL, reached with a client certificate.
#[derive(Clone)]
pub struct RemoteFactors {
    base: Url,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteFactors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFactors")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl RemoteFactors {
    /// The service at `base` (`https://HOST[:PORT]`), trusted only when its certificate
    /// is issued by the CA of `ca_path`, reached with the client certificate chain and key
    /// of `cert_path` and `key_path` (PEM).
    ///
    /// # Errors
    /// [`RemoteSetupError`] naming what is unusable.
    pub fn new(
        base: &Url,
        ca_path: &Path,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, RemoteSetupError> {
        if base.scheme() != "https" || base.host().is_none() {
            return Err(RemoteSetupError::Url);
        }
        let tls = tls::client_config(ca_path, cert_path, key_path)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // Straight to the service: never through a proxy from the environment.
            .no_proxy()
            .build()?;
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { base, http })
    }

    /// `GET /healthz`: whether the service answers (for startup checks and diagnostics).
    ///
    /// # Errors
    /// [`MfaError::Unavailable`].
    pub async fn health(&self) -> MfaResult<()> {
        let url = self.url("healthz")?;
        let response = self.send(Method::GET, &url, None::<&()>).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(unavailable(format!(
                "healthz answered {}",
                response.status()
            )))
        }
    }

    fn url(&self, path: &str) -> MfaResult<Url> {
        self.base
            .join(path)
            .map_err(|error| MfaError::BadRequest(format!("bad service path: {error}")))
    }

    fn user_url(&self, username: &str, rest: &str) -> MfaResult<Url> {
        // Usernames are checked by the chat before they get here; escaping keeps a stray one
        // from naming another path.
        let mut url = self.url("v1/users/")?;
        url.path_segments_mut()
            .map_err(|()| MfaError::BadRequest("bad service url".to_owned()))?
            .pop_if_empty()
            .push(username)
            .extend(rest.split('/').filter(|segment| !segment.is_empty()));
        Ok(url)
    }

    /// Sends a request, trying again while the connection cannot be opened.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&(impl Serialize + Sync)>,
    ) -> MfaResult<reqwest::Response> {
        let mut attempt = 1;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_connect() && attempt < CONNECT_ATTEMPTS => {
                    tracing::debug!(%error, attempt, "second-factor service: connection failed, trying again");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(error) => return Err(unavailable(error_chain(&error))),
            }
        }
    }

    /// Sends a request and decodes its JSON answer, or the error it carries.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + Sync)>,
    ) -> MfaResult<T> {
        let response = self.send(method, &url, body).await?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|error| unavailable(format!("malformed answer: {error}")));
        }
        Err(remote_error(status, response).await)
    }

    /// Sends a request whose success has no body (204).
    async fn call_empty(&self, method: Method, url: Url) -> MfaResult<()> {
        let response = self.send(method, &url, None::<&()>).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(remote_error(status, response).await)
    }
}

fn unavailable(detail: String) -> MfaError {
    tracing::warn!(%detail, "second-factor service unavailable");
    MfaError::Unavailable(detail)
}

/// The error an unsuccessful answer stands for: the service's own for 4xx answers with an
/// [`ErrorBody`], [`MfaError::Unavailable`] for everything else.
async fn remote_error(status: StatusCode, response: reqwest::Response) -> MfaError {
    let body: Option<ErrorBody> = response.json().await.ok();
    match (status, body) {
        (StatusCode::UNAUTHORIZED, Some(body)) if body.code == "invalid_code" => {
            MfaError::InvalidCode
        }
        (StatusCode::CONFLICT, Some(body)) => MfaError::Conflict(body.error),
        (StatusCode::NOT_FOUND, Some(body)) if body.code == "unknown_user" => MfaError::UnknownUser,
        (StatusCode::BAD_REQUEST, Some(body)) => MfaError::BadRequest(body.error),
        (status, body) => unavailable(format!(
            "answered {status}{}",
            body.map(|body| format!(": {}", body.error))
                .unwrap_or_default()
        )),
    }
}

fn challenge_from_wire(challenge: Option<Base64>) -> MfaResult<Option<Challenge>> {
    challenge
        .map(|challenge| {
            let bytes: [u8; 32] = challenge
                .0
                .as_slice()
                .try_into()
                .map_err(|_| unavailable("a challenge of the wrong length".to_owned()))?;
            Ok(Challenge(Zeroizing::new(bytes)))
        })
        .transpose()
}

#[async_trait]
impl SecondFactors for RemoteFactors {
    async fn status(&self, username: &str) -> MfaResult<FactorStatus> {
        let url = self.user_url(username, "factors")?;
        self.call(Method::GET, url, None::<&()>).await
    }

    async fn totp_setup(&self, username: &str) -> MfaResult<TotpSetup> {
        let url = self.user_url(username, "totp/setup")?;
        self.call(Method::POST, url, None::<&()>).await
    }

    async fn totp_enable(&self, username: &str, code: &str) -> MfaResult<RecoveryCodes> {
        let url = self.user_url(username, "totp/enable")?;
        let body = CodeRequest {
            code: code.to_owned(),
        };
        self.call(Method::POST, url, Some(&body)).await
    }

    async fn totp_disable(&self, username: &str) -> MfaResult<()> {
        let url = self.user_url(username, "totp/disable")?;
        self.call_empty(Method::POST, url).await
    }

    async fn verify_code(&self, username: &str, code: &str) -> MfaResult<bool> {
        let url = self.user_url(username, "codes/verify")?;
        let body = CodeRequest {
            code: code.to_owned(),
        };
        let verdict: Verdict = self.call(Method::POST, url, Some(&body)).await?;
        Ok(verdict.valid)
    }

    async fn begin_login(&self, username: &str) -> MfaResult<Option<LoginChallenge>> {
        let url = self.user_url(username, "logins")?;
        let start: LoginStart = self.call(Method::POST, url, None::<&()>).await?;
        Ok(
            challenge_from_wire(start.challenge)?.map(|challenge| LoginChallenge {
                challenge,
                passkey_options: start.passkey_options,
            }),
        )
    }

    async fn complete_login_passkey(
        &self,
        challenge: &[u8],
        credential: &webauthn_rs_proto::PublicKeyCredential,
    ) -> MfaResult<LoginOutcome> {
        let body = PasskeyLoginRequest {
            challenge: Base64(challenge.to_vec()),
            credential: WebAuthnJson::encode(credential)
                .map_err(|error| MfaError::Corrupt(format!("credential: {error}")))?,
        };
        self.call(
            Method::POST,
            self.url("v1/logins/complete-passkey")?,
            Some(&body),
        )
        .await
    }

    async fn passkey_register_begin(
        &self,
        username: &str,
    ) -> MfaResult<webauthn_rs_proto::CreationChallengeResponse> {
        let url = self.user_url(username, "passkeys/begin")?;
        self.call(Method::POST, url, None::<&()>).await
    }

    async fn passkey_register_finish(
        &self,
        username: &str,
        registration: &PasskeyRegistration,
    ) -> MfaResult<PasskeyRegistered> {
        let url = self.user_url(username, "passkeys/finish")?;
        self.call(Method::POST, url, Some(registration)).await
    }

    async fn passkey_remove(&self, username: &str, id: &str) -> MfaResult<()> {
        let mut url = self.user_url(username, "passkeys")?;
        url.path_segments_mut()
            .map_err(|()| MfaError::BadRequest("bad service url".to_owned()))?
            .push(id);
        self.call_empty(Method::DELETE, url).await
    }

    async fn challenge_owner(&self, challenge: &[u8]) -> MfaResult<Option<String>> {
        let body = ChallengeRequest {
            challenge: Base64(challenge.to_vec()),
        };
        let owner: ChallengeOwner = self
            .call(Method::POST, self.url("v1/logins/owner")?, Some(&body))
            .await?;
        Ok(owner.username)
    }

    async fn complete_login(&self, challenge: &[u8], code: &str) -> MfaResult<LoginOutcome> {
        let body = CompleteLoginRequest {
            challenge: Base64(challenge.to_vec()),
            code: code.to_owned(),
        };
        self.call(Method::POST, self.url("v1/logins/complete")?, Some(&body))
            .await
    }

    async fn delete_user(&self, username: &str) -> MfaResult<()> {
        let url = self.user_url(username, "")?;
        self.call_empty(Method::DELETE, url).await
    }
}
