//! Health check, the web client's static files, and unknown paths.

use common::api::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{error_body, error_message, spawn_app, INDEX_HTML};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get(&app.anonymous, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_root_and_unknown_pages_serve_the_web_client() {
    let app = spawn_app().await;
    for path in ["/", "/index.html", "/rooms/some-room", "/login"] {
        let response = app.get(&app.anonymous, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.text().await.unwrap(), INDEX_HTML, "{path}");
    }
}

#[tokio::test]
async fn unknown_api_paths_get_a_json_404() {
    let app = spawn_app().await;
    for path in ["/api/nope", "/api/rooms/x/y/z", "/api"] {
        let response = app.get(&app.anonymous, path).await;
        assert_eq!(
            error_message(response, StatusCode::NOT_FOUND).await,
            "no such endpoint"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_gets_a_json_405() {
    let app = spawn_app().await;
    let response = app.get(&app.anonymous, "/api/login").await;
    assert_eq!(
        error_message(response, StatusCode::METHOD_NOT_ALLOWED).await,
        "method not allowed"
    );
}

/// A load balancer takes an instance whose database does not answer out of rotation: its
/// health check says 503, and 200 again once the database is back. (PostgreSQL only: the
/// test shuts the database's connections out as an outage would.)
#[tokio::test]
async fn healthz_says_503_while_the_database_is_unreachable() {
    let app = spawn_app().await;
    let Some((mut admin, name)) = crate::helpers::postgres_admin(&app).await else {
        eprintln!("skipped: needs CHAT_TEST_POSTGRES_URL (cargo xtask test)");
        return;
    };
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    let response = app.get(&app.anonymous, "/healthz").await;
    let body = error_body(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body.code, ErrorCode::Unavailable);
    assert_eq!(body.error, "database unavailable");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    let response = app.get(&app.anonymous, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
}
