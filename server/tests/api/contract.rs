//! The server serves exactly the endpoints defined in `common::api::endpoints`.

use common::api::endpoints::{EndpointInfo, ParamKind, ENDPOINTS};
use common::api::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{error_body, reqwest_method, spawn_app, TestApp};

/// A well-formed value of each parameter shape (naming nothing that exists).
fn sample(kind: ParamKind) -> String {
    match kind {
        ParamKind::RoomId => "ab".repeat(32),
        ParamKind::AttachmentId => "cd".repeat(16),
        ParamKind::Index => "0".to_owned(),
        ParamKind::Username => "nobody".to_owned(),
        ParamKind::Opaque => "bm9uZQ".to_owned(),
    }
}

fn sample_path(endpoint: &EndpointInfo) -> String {
    let values: Vec<String> = endpoint.params.iter().map(|p| sample(p.kind)).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    endpoint.render_path(&values)
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.anonymous
        .request(method, app.url(path))
        .send()
        .await
        .expect("request is sent")
}

#[tokio::test]
async fn every_defined_endpoint_is_routed() {
    let app = spawn_app().await;
    for endpoint in ENDPOINTS {
        let path = sample_path(endpoint);
        let response = send(&app, reqwest_method(endpoint.method), &path).await;
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{}", endpoint.id);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("no such endpoint"),
            "{} {path} is not routed",
            endpoint.id
        );
    }
}

#[tokio::test]
async fn a_method_no_endpoint_defines_is_405_with_its_code() {
    let app = spawn_app().await;
    for endpoint in ENDPOINTS {
        let path = sample_path(endpoint);
        let response = send(&app, reqwest::Method::PATCH, &path).await;
        let body = error_body(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(body.code, ErrorCode::MethodNotAllowed, "{}", endpoint.id);
    }
}

/// Where the description is checked in.
fn checked_in_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// The variable that makes [`the_checked_in_description_is_the_generated_one`] rewrite the
/// file instead of failing.
const UPDATE_VARIABLE: &str = "CHAT_UPDATE_OPENAPI";

#[test]
fn the_checked_in_description_is_the_generated_one() {
    let generated = common::api::openapi::document_json();
    let path = checked_in_path();
    if std::env::var_os(UPDATE_VARIABLE).is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from the endpoint definitions; if the change is meant, run \
         `{UPDATE_VARIABLE}=1 cargo test -p server --test api contract` and commit the file"
    );
}

#[tokio::test]
async fn the_server_serves_its_description() {
    let app = spawn_app().await;
    let response = send(&app, reqwest::Method::GET, "/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: serde_json::Value = response.json().await.unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&common::api::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
}
