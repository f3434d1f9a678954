//! The security headers on every response, with a Content Security Policy that allows the
//! inline script of `index.html` by its hash.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, INLINE_SCRIPT};

/// The policy for a web client whose `index.html` has inline scripts with these hashes.
fn expected_policy(script_hashes: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{script_hashes}; \
         style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn assert_security_headers(response: &reqwest::Response, policy: &str, what: &str) {
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what} lacks {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("content-security-policy"), policy, "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header("cross-origin-opener-policy"),
        "same-origin",
        "{what}"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let hash = STANDARD.encode(Sha256::digest(INLINE_SCRIPT.as_bytes()));
    let policy = expected_policy(&format!(" 'sha256-{hash}'"));
    let alice = app.register_user("alice").await;
    let cases = [
        ("/", &app.anonymous, StatusCode::OK),
        ("/rooms/somewhere", &app.anonymous, StatusCode::OK),
        // A chunk of a build that is no longer served is missing, not the page.
        (
            "/pkg-0123abcd/split_gone.wasm",
            &app.anonymous,
            StatusCode::NOT_FOUND,
        ),
        ("/healthz", &app.anonymous, StatusCode::OK),
        ("/api/me", &alice.client, StatusCode::OK),
        ("/api/me", &app.anonymous, StatusCode::UNAUTHORIZED),
        ("/api/nope", &app.anonymous, StatusCode::NOT_FOUND),
    ];
    for (path, client, status) in cases {
        let response = app.get(client, path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_security_headers(&response, &policy, path);
    }
    let response = app.logout(&alice.client).await;
    assert_security_headers(&response, &policy, "logout");
}

#[tokio::test]
async fn without_an_index_html_the_policy_has_no_hashes() {
    let app = spawn_app_with(|config| config.static_dir = config.static_dir.join("missing")).await;
    let response = app.get(&app.anonymous, "/healthz").await;
    assert_security_headers(&response, &expected_policy(""), "healthz");
}
