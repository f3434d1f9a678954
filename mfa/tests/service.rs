//! The service over mutual TLS on port 0: its API through [`RemoteFactors`], the clients it
//! refuses (another CA's certificate, no certificate), the service a client refuses (another
//! CA's), bad input, and a service that is not there.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dev_certificates::{generate, DevCertificates};
use mfa::api::{ErrorBody, LoginOutcome};
use mfa::config::Service;
use mfa::{MfaError, RemoteFactors, SecondFactors, ServiceConfig};
use tempfile::TempDir;
use totp_rs::{Algorithm, Secret, TOTP};

/// A running service, its folder and certificates.
struct TestService {
    url: url::Url,
    certificates: DevCertificates,
    _directory: TempDir,
}

async fn start_service() -> TestService {
    let directory = tempfile::tempdir().unwrap();
    let certificates = generate(&directory.path().join("tls"), "service test CA").unwrap();
    let config = ServiceConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", directory.path().join("mfa.db").display()),
        key: None,
        key_file: Some(directory.path().join("mfa.key")),
        tls_cert: certificates.service_cert.clone(),
        tls_key: certificates.service_key.clone(),
        client_ca: certificates.ca_cert.clone(),
        webauthn_rp_id: "localhost".to_owned(),
        webauthn_origin: mfa::factors::RelyingParty::localhost().origin,
    };
    let service = Service::build(config).await.unwrap();
    let url = format!("https://127.0.0.1:{}/", service.port())
        .parse()
        .unwrap();
    tokio::spawn(service.run_until(std::future::pending()));
    TestService {
        url,
        certificates,
        _directory: directory,
    }
}

fn client_of(service: &TestService) -> RemoteFactors {
    let files = &service.certificates;
    RemoteFactors::new(
        &service.url,
        &files.ca_cert,
        &files.client_cert,
        &files.client_key,
    )
    .unwrap()
}

/// An authenticator app for a base32 secret.
fn authenticator(secret_base32: &str) -> TOTP {
    let secret = Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_chat_server_of_its_ca_uses_every_operation() {
    let service = start_service().await;
    let factors = client_of(&service);
    factors.health().await.unwrap();
    assert!(!factors.status("alice").await.unwrap().any());
    // An account the store never heard of is not one without a factor.
    let unknown = factors.begin_login("alice").await.unwrap_err();
    assert!(matches!(unknown, MfaError::UnknownUser), "{unknown:?}");

    let setup = factors.totp_setup("alice").await.unwrap();
    assert!(setup
        .otpauth_uri
        .starts_with("otpauth://totp/e2ee-chat:alice?"));
    let app = authenticator(&setup.secret_base32);
    let step = now() / 30;
    let wrong = match factors.totp_enable("alice", "000000").await {
        Err(error) => error,
        Ok(_) => {
            // One chance in a million that 000000 is the code: then it is enabled.
            return;
        }
    };
    assert!(matches!(wrong, MfaError::InvalidCode), "{wrong:?}");
    let codes = factors
        .totp_enable("alice", &app.generate(step * 30))
        .await
        .unwrap();
    assert_eq!(codes.recovery_codes.len(), 10);
    let status = factors.status("alice").await.unwrap();
    assert!(status.totp_enabled);
    assert_eq!(status.recovery_codes_left, 10);
    let again = factors.totp_setup("alice").await.unwrap_err();
    assert!(matches!(again, MfaError::Conflict(_)), "{again:?}");

    // Re-authentication: the code of the step that enabled it is used up.
    assert!(!factors
        .verify_code("alice", &app.generate(step * 30))
        .await
        .unwrap());
    assert!(factors
        .verify_code("alice", &codes.recovery_codes[0])
        .await
        .unwrap());
    assert!(!factors
        .verify_code("alice", &codes.recovery_codes[0])
        .await
        .unwrap());

    // A login: the owner of the challenge, a wrong code, the right one, then no more.
    let challenge = factors
        .begin_login("alice")
        .await
        .unwrap()
        .unwrap()
        .challenge;
    assert_eq!(
        factors
            .challenge_owner(challenge.0.as_slice())
            .await
            .unwrap(),
        Some("alice".to_owned())
    );
    assert_eq!(
        factors
            .complete_login(challenge.0.as_slice(), "not a code")
            .await
            .unwrap(),
        LoginOutcome::WrongCode
    );
    assert_eq!(
        factors
            .complete_login(challenge.0.as_slice(), &codes.recovery_codes[1])
            .await
            .unwrap(),
        LoginOutcome::Accepted
    );
    assert_eq!(
        factors
            .complete_login(challenge.0.as_slice(), &codes.recovery_codes[2])
            .await
            .unwrap(),
        LoginOutcome::Expired
    );
    assert_eq!(factors.challenge_owner(&[9; 32]).await.unwrap(), None);

    factors.totp_disable("alice").await.unwrap();
    let twice = factors.totp_disable("alice").await.unwrap_err();
    assert!(matches!(twice, MfaError::Conflict(_)), "{twice:?}");
    factors.totp_setup("alice").await.unwrap();
    factors.delete_user("alice").await.unwrap();
    assert!(!factors.status("alice").await.unwrap().any());
}

/// Asserts that `result` failed because the service could not be used.
fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, MfaError>, what: &str) {
    match result {
        Err(MfaError::Unavailable(detail)) => eprintln!("{what}: {detail}"),
        other => panic!("{what}: expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused() {
    let service = start_service().await;
    let other = tempfile::tempdir().unwrap();
    let stranger = generate(other.path(), "another CA").unwrap();
    let factors = RemoteFactors::new(
        &service.url,
        &service.certificates.ca_cert,
        &stranger.client_cert,
        &stranger.client_key,
    )
    .unwrap();
    assert_unavailable(factors.status("alice").await, "another CA's client");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let service = start_service().await;
    let ca = std::fs::read(&service.certificates.ca_cert).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let result = client
        .get(service.url.join("v1/users/alice/factors").unwrap())
        .send()
        .await;
    assert!(result.is_err(), "answered without a client certificate");
    // The health check is behind the same wall.
    let result = client
        .get(service.url.join("healthz").unwrap())
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn a_service_certificate_of_another_ca_is_not_trusted() {
    let service = start_service().await;
    let other = tempfile::tempdir().unwrap();
    let stranger = generate(other.path(), "another CA").unwrap();
    let factors = RemoteFactors::new(
        &service.url,
        &stranger.ca_cert,
        &service.certificates.client_cert,
        &service.certificates.client_key,
    )
    .unwrap();
    assert_unavailable(
        factors.health().await,
        "a service the pinned CA did not issue",
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_with_a_code() {
    let service = start_service().await;
    let files = &service.certificates;
    let tls =
        mfa::tls::client_config(&files.ca_cert, &files.client_cert, &files.client_key).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let cases = [
        (
            "v1/users/alice/codes/verify",
            "{not json",
            400,
            "bad_request",
        ),
        (
            "v1/users/alice/codes/verify",
            r#"{"code": 5}"#,
            400,
            "bad_request",
        ),
        (
            "v1/users/alice/codes/verify",
            r#"{"code": "1", "extra": 1}"#,
            400,
            "bad_request",
        ),
        ("v1/users/Not%20A%20Name/logins", "", 400, "bad_request"),
        (
            "v1/logins/complete",
            r#"{"challenge": "!!"}"#,
            400,
            "bad_request",
        ),
        ("v1/nothing/here", "", 404, "not_found"),
    ];
    for (path, body, status, code) in cases {
        let response = client
            .post(service.url.join(path).unwrap())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body}");
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(error.code, code, "{path} {body}: {}", error.error);
    }
    let huge = format!(r#"{{"code": "{}"}}"#, "1".repeat(64 * 1024));
    let response = client
        .post(service.url.join("v1/users/alice/codes/verify").unwrap())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn a_service_that_is_not_there_is_unavailable_after_bounded_retries() {
    let service = start_service().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url: url::Url = format!("https://127.0.0.1:{port}/").parse().unwrap();
    let files = &service.certificates;
    let factors =
        RemoteFactors::new(&url, &files.ca_cert, &files.client_cert, &files.client_key).unwrap();
    let started = Instant::now();
    assert_unavailable(factors.begin_login("alice").await, "nothing listening");
    let bound = (mfa::remote::CONNECT_TIMEOUT + mfa::remote::RETRY_PAUSE)
        * mfa::remote::CONNECT_ATTEMPTS
        + Duration::from_secs(1);
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    let not_https = RemoteFactors::new(
        &"http://127.0.0.1:1/".parse().unwrap(),
        &files.ca_cert,
        &files.client_cert,
        &files.client_key,
    );
    assert!(not_https.is_err());
}
