//! The chat server with its second factors in the remote service over mutual TLS: the chat
//! database keeps none of them, logins that need one fail closed while the service is down
//! and the others do not, and factors an older version left in the chat database move into
//! the in-process store (and keep a remote store from starting).

use common::api::{ErrorBody, ErrorCode, LoginResponse, MeResponse};
use reqwest::StatusCode;
use server::{Application, Config};

use crate::helpers::{client_with_jar, error_code, json, spawn_app, spawn_app_with_mfa_service};
use crate::security_client::HOME_IP;

/// Rows of `table` in the chat database of `app`.
async fn rows(app: &crate::helpers::TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.database().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_chat_database_holds_no_factor_of_a_remote_store() {
    let app = spawn_app_with_mfa_service().await;
    let alice = app.register_user("alice").await;
    let (authenticator, recovery_codes) = app.enable_totp(&alice).await;
    for table in ["user_totp", "recovery_codes", "login_challenges"] {
        assert_eq!(rows(&app, table).await, 0, "{table} in the chat database");
    }
    let flag: i64 = sqlx::query_scalar("SELECT second_factor FROM users WHERE username = 'alice'")
        .fetch_one(&app.database().await)
        .await
        .unwrap();
    assert_eq!(flag, 1);

    // The service has them, and logins go through it.
    let service = app.mfa.as_ref().unwrap();
    let service_bytes: Vec<u8> = service
        .database_files()
        .iter()
        .flat_map(|file| std::fs::read(file).unwrap())
        .collect();
    assert!(
        service_bytes.windows(5).any(|window| window == b"alice"),
        "the service's database names alice"
    );
    let browser = app
        .new_browser(&alice, HOME_IP, Some(&authenticator.next_code()))
        .await;
    let me: MeResponse = json(app.get(&browser.client, "/api/me").await).await;
    assert_eq!(me.username, "alice");
    let challenge = app.password_step(&app.anonymous, &alice).await;
    let response = app
        .login_totp(&app.anonymous, &challenge, &recovery_codes[0], HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(rows(&app, "login_challenges").await, 0);
}

#[tokio::test]
async fn logins_needing_a_second_factor_fail_closed_while_the_service_is_down() {
    let mut app = spawn_app_with_mfa_service().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let (authenticator, recovery_codes) = app.enable_totp(&alice).await;
    let alice_browser = app
        .new_browser(&alice, HOME_IP, Some(&authenticator.next_code()))
        .await;
    // A login half-way through when the service goes.
    let pending = app.password_step(&app.anonymous, &alice).await;

    app.mfa.as_mut().unwrap().stop().await;

    let response = app
        .login_from(&app.anonymous, &alice.username, alice.auth_key, HOME_IP)
        .await;
    let body: ErrorBody = {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        json(response).await
    };
    assert_eq!(body.code, ErrorCode::SecondFactorsUnavailable);
    assert_eq!(
        body.error,
        "two-factor authentication is unavailable right now, try again later"
    );
    let response = app
        .login_totp(&app.anonymous, &pending, &authenticator.code(0), HOME_IP)
        .await;
    assert_eq!(
        error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
        ErrorCode::SecondFactorsUnavailable
    );
    // Re-authentication of a user with a second factor waits too.
    let response = app.totp_disable(&alice, &authenticator.code(0)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // A user without a second factor logs in, and open sessions keep working.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let bob_browser = client_with_jar(jar);
    let response = app
        .login_from(&bob_browser, &bob.username, bob.auth_key, HOME_IP)
        .await;
    let login: LoginResponse = json(response).await;
    assert!(!login.totp_required);
    let me: MeResponse = json(app.get(&bob_browser, "/api/me").await).await;
    assert_eq!(me.username, "bob");
    let me: MeResponse = json(app.get(&alice_browser.client, "/api/me").await).await;
    assert_eq!(me.username, "alice");

    // Back up: alice logs in again.
    app.mfa.as_mut().unwrap().start_again().await;
    let challenge = app.password_step(&app.anonymous, &alice).await;
    let response = app
        .login_totp(&app.anonymous, &challenge, &recovery_codes[0], HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Moves alice's factors from the in-process store of `app` back into the chat database's
/// old tables, as an older version kept them; returns the database URLs of both.
async fn make_factors_old(app: &crate::helpers::TestApp) -> (String, String) {
    let chat = app.database().await;
    let store_url = if app.on_postgres() {
        mfa::store::postgres_schema_url(&app.database_url, "mfa")
    } else {
        format!(
            "sqlite://{}",
            app.directory.path().join("db").join("mfa.db").display()
        )
    };
    let store = sqlx::AnyPool::connect(&store_url).await.unwrap();
    let totp: Vec<(String, Option<Vec<u8>>, i64)> =
        sqlx::query_as("SELECT username, sealed_secret, last_step FROM user_totp")
            .fetch_all(&store)
            .await
            .unwrap();
    for (username, sealed_secret, last_step) in totp {
        sqlx::query(
            "INSERT INTO user_totp (username, sealed_secret, last_step) VALUES ($1, $2, $3)",
        )
        .bind(&username)
        .bind(sealed_secret)
        .bind(last_step)
        .execute(&chat)
        .await
        .unwrap();
    }
    let codes: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT username, code_mac FROM recovery_codes")
            .fetch_all(&store)
            .await
            .unwrap();
    for (username, code_mac) in codes {
        sqlx::query("INSERT INTO recovery_codes (username, code_mac) VALUES ($1, $2)")
            .bind(&username)
            .bind(code_mac)
            .execute(&chat)
            .await
            .unwrap();
    }
    for table in ["user_totp", "recovery_codes", "login_challenges"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&store)
            .await
            .unwrap();
    }
    (app.database_url.clone(), store_url)
}

#[tokio::test]
async fn factors_an_older_version_left_in_the_chat_database_move_into_the_store() {
    if crate::helpers::remote_mfa() {
        // This is about the in-process store.
        return;
    }
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, recovery_codes) = app.enable_totp(&alice).await;
    make_factors_old(&app).await;
    assert_eq!(rows(&app, "user_totp").await, 1);

    // The next server to start on this database moves them.
    let restarted = crate::helpers::spawn_app_with(|config| {
        config.database_url = app.database_url.clone();
        config.server_key_file = Some(app.directory.path().join("db").join("server.key"));
        config.mfa_database_url = Some(if app.on_postgres() {
            mfa::store::postgres_schema_url(&app.database_url, "mfa")
        } else {
            format!(
                "sqlite://{}",
                app.directory.path().join("db").join("mfa.db").display()
            )
        });
    })
    .await;
    assert_eq!(rows(&restarted, "user_totp").await, 0);
    assert_eq!(rows(&restarted, "recovery_codes").await, 0);
    let challenge = restarted.password_step(&restarted.anonymous, &alice).await;
    let response = restarted
        .login_totp(
            &restarted.anonymous,
            &challenge,
            &authenticator.next_code(),
            HOME_IP,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the old secret opens");
    let challenge = restarted.password_step(&restarted.anonymous, &alice).await;
    let response = restarted
        .login_totp(
            &restarted.anonymous,
            &challenge,
            &recovery_codes[3],
            HOME_IP,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "old recovery codes work");
}

#[tokio::test]
async fn a_remote_store_does_not_start_over_old_factors_in_the_chat_database() {
    if crate::helpers::remote_mfa() {
        return;
    }
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    app.enable_totp(&alice).await;
    make_factors_old(&app).await;
    let service = crate::helpers::TestMfaService::start().await;
    let mut config = Config::new(app.database_url.clone(), app.directory.path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.server_key_file = Some(app.directory.path().join("db").join("server.key"));
    service.configure(&mut config);
    let error = Application::build(config).await.err().expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("second factors of 1 accounts"),
        "{message}"
    );
    // Nothing was lost meanwhile.
    assert_eq!(rows(&app, "user_totp").await, 1);
}

#[tokio::test]
async fn a_store_that_lost_an_account_with_a_second_factor_fails_closed() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    app.enable_totp(&alice).await;
    // The store is emptied (or swapped for the wrong database) behind the chat's back.
    let store = app.factor_store().await;
    for table in [
        "user_totp",
        "recovery_codes",
        "login_challenges",
        "enrolled_users",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&store)
            .await
            .unwrap();
    }
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, HOME_IP)
        .await;
    assert_eq!(
        error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
        ErrorCode::SecondFactorsUnavailable,
        "alice's login must not pass without her second factor"
    );
    let login: LoginResponse = json(
        app.login_from(&app.anonymous, "bob", bob.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(!login.totp_required, "bob has no second factor and logs in");
}

#[tokio::test]
async fn an_account_whose_enabling_failed_still_logs_in() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    // A setup, then a wrong code: the flag is set, no factor exists.
    app.totp_setup(&alice.client).await;
    let response = app.totp_enable(&alice, "000000").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let flag: i64 = sqlx::query_scalar("SELECT second_factor FROM users WHERE username = 'alice'")
        .fetch_one(&app.database().await)
        .await
        .unwrap();
    assert_eq!(flag, 1, "set before the store was asked");
    let login: LoginResponse = json(
        app.login_from(&app.anonymous, "alice", alice.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(!login.totp_required, "the store knows alice has no factor");
}
