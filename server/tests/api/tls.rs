//! Serving HTTPS directly with a certificate from PEM files: the app answers over TLS, its
//! session cookies are `Secure`, and half a TLS configuration is a startup error.

use std::path::PathBuf;

use common::api::{LoginResponse, MeResponse};
use reqwest::StatusCode;
use server::tls::TlsError;
use server::{Application, Config, StartupError};
use tempfile::TempDir;

use crate::helpers::{json, spawn_app_with, TestApp};

/// A self-signed certificate for 127.0.0.1 and its key, written as PEM files.
fn self_signed_files() -> (TempDir, PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let cert = directory.path().join("cert.pem");
    let key = directory.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (directory, cert, key)
}

/// A client that accepts the self-signed certificate and keeps cookies.
fn trusting_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .cookie_store(true)
        .build()
        .unwrap()
}

fn set_cookie(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_app_serves_https_with_secure_cookies() {
    let (_files, cert, key) = self_signed_files();
    let app = spawn_app_with(|config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
    })
    .await;
    assert!(app.address.starts_with("https://"), "{}", app.address);
    let client = trusting_client();
    let response = app.get(&client, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("content-security-policy"));
    assert_eq!(response.text().await.unwrap(), "ok");

    let (request, auth_key, _) = TestApp::registration("alice", "a long passphrase");
    let response = app.register(&client, &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = set_cookie(&response);
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let me: MeResponse = json(app.me(&client).await).await;
    assert_eq!(me.username, "alice");

    let other = trusting_client();
    let response = app.login(&other, "alice", auth_key).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = set_cookie(&response);
    assert!(cookie.contains("; Secure"), "{cookie}");
    let _: LoginResponse = json(response).await;
    let response = app.logout(&other).await;
    assert!(set_cookie(&response).contains("; Secure"));

    // Plain HTTP on the TLS port is not served.
    let plain = app
        .anonymous
        .get(format!("http://127.0.0.1:{}/healthz", app.port))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    app.shut_down().await.unwrap();
}

#[tokio::test]
async fn without_tls_cookies_are_not_secure() {
    let app = crate::helpers::spawn_app().await;
    let (request, _, _) = TestApp::registration("alice", "a long passphrase");
    let response = app.register(&app.anonymous, &request).await;
    assert!(!set_cookie(&response).contains("Secure"));
}

#[tokio::test]
async fn half_a_tls_configuration_or_a_bad_file_does_not_start() {
    let (files, cert, key) = self_signed_files();
    let database = files.path().join("chat.db");
    let config = || {
        let mut config = Config::new(format!("sqlite://{}", database.display()), files.path());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config
    };
    let mut only_cert = config();
    only_cert.tls_cert = Some(cert.clone());
    let error = Application::build(only_cert).await.err().unwrap();
    assert!(
        matches!(error, StartupError::Tls(TlsError::Incomplete)),
        "{error:?}"
    );

    let mut swapped = config();
    swapped.tls_cert = Some(key.clone());
    swapped.tls_key = Some(cert.clone());
    let error = Application::build(swapped).await.err().unwrap();
    assert!(matches!(error, StartupError::Tls(_)), "{error:?}");

    let mut missing = config();
    missing.tls_cert = Some(files.path().join("nowhere.pem"));
    missing.tls_key = Some(key);
    assert!(Application::build(missing).await.is_err());
}
