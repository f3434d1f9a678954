//! TOTP as the second login factor: setup and enabling, the two-step login, wrong and
//! replayed codes, recovery codes, and disabling.

use common::api::{AccountResponse, LoginResponse, MeResponse, TotpSetupResponse};
use reqwest::StatusCode;

use crate::helpers::{client_with_jar, error_message, json, spawn_app};
use crate::security_client::{Authenticator, HOME_IP};

#[tokio::test]
async fn setup_shows_a_pending_secret_that_a_valid_code_enables() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let first: TotpSetupResponse = json(app.totp_setup(&alice.client).await).await;
    assert_eq!(first.secret_base32.len(), 32, "160 bits in base32");
    assert!(
        first
            .otpauth_uri
            .starts_with("otpauth://totp/e2ee-chat:alice?"),
        "{}",
        first.otpauth_uri
    );
    assert!(first.otpauth_uri.contains("issuer=e2ee-chat"));
    assert!(first
        .otpauth_uri
        .contains(&format!("secret={}", first.secret_base32)));
    assert!(first.qr_svg.contains("<svg"), "{}", first.qr_svg);

    // A second setup replaces the pending secret: codes of the first no longer enable.
    let second: TotpSetupResponse = json(app.totp_setup(&alice.client).await).await;
    assert_ne!(first.secret_base32, second.secret_base32);
    let stale = Authenticator::new(&first.secret_base32);
    let response = app.totp_enable(&alice, &stale.code(0)).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(!account.totp_enabled, "a pending secret is not enabled");

    let authenticator = Authenticator::new(&second.secret_base32);
    let response = app.totp_enable(&alice, &authenticator.code(0)).await;
    let codes: common::api::RecoveryCodesResponse = json(response).await;
    assert_eq!(codes.recovery_codes.len(), 10);
    for code in &codes.recovery_codes {
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(code.matches('-').count(), 2, "{code}");
    }
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(account.totp_enabled);
    assert_eq!(account.recovery_codes_left, 10);

    let response = app.totp_setup(&alice.client).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "totp is already enabled"
    );
    let response = app.totp_enable(&alice, &authenticator.code(1)).await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "totp is already enabled"
    );
}

#[tokio::test]
async fn enabling_without_a_setup_is_409_and_needs_a_session() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let response = app.totp_enable(&alice, "123456").await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "no totp setup in progress"
    );
    let response = app.totp_disable(&alice, "123456").await;
    assert_eq!(
        error_message(response, StatusCode::CONFLICT).await,
        "totp is not enabled"
    );
    let response = app.totp_setup(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn with_totp_a_login_needs_a_code_that_works_once() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, _) = app.enable_totp(&alice).await;

    let client = client_with_jar(Default::default());
    let response = app
        .login_from(&client, "alice", alice.auth_key, HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_none(),
        "no session before the code"
    );
    let body: LoginResponse = json(response).await;
    assert!(body.totp_required);
    let challenge = body.challenge.expect("a challenge");
    assert_eq!(
        challenge.0.len(),
        48,
        "the store's 32 bytes and the account's tag"
    );
    app.assert_logged_out(&client, "the password step alone")
        .await;

    let response = app
        .login_totp(&client, &challenge, &authenticator.wrong_code(), HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    // The code that enabled TOTP was used already.
    let enabling_code = authenticator.code_at_step(authenticator.enabled_step);
    let response = app
        .login_totp(&client, &challenge, &enabling_code, HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    let next_code = authenticator.next_code();
    let response = app
        .login_totp(&client, &challenge, &next_code, HOME_IP)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: LoginResponse = json(response).await;
    assert!(!body.totp_required);
    assert!(body.challenge.is_none());
    let me: MeResponse = json(app.me(&client).await).await;
    assert_eq!(me.username, "alice");

    // The challenge is spent, and the code cannot log in a second time.
    let response = app
        .login_totp(&client, &challenge, &next_code, HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
    let other = client_with_jar(Default::default());
    let challenge = app.password_step(&other, &alice).await;
    let response = app
        .login_totp(&other, &challenge, &next_code, HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );

    let account: AccountResponse = json(app.account(&client).await).await;
    let results: Vec<&str> = account
        .login_history
        .iter()
        .map(|event| event.result.as_str())
        .collect();
    assert_eq!(
        results,
        ["wrong_code", "success", "wrong_code", "wrong_code"],
        "newest first"
    );
}

#[tokio::test]
async fn a_challenge_allows_five_codes_and_an_unknown_one_is_expired() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, _) = app.enable_totp(&alice).await;
    let client = client_with_jar(Default::default());
    let challenge = app.password_step(&client, &alice).await;
    let wrong = authenticator.wrong_code();
    for _ in 0..5 {
        let response = app.login_totp(&client, &challenge, &wrong, HOME_IP).await;
        assert_eq!(
            error_message(response, StatusCode::UNAUTHORIZED).await,
            "invalid code"
        );
    }
    let response = app
        .login_totp(&client, &challenge, &authenticator.next_code(), HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
    let unknown = common::wire::Base64(vec![7; 32]);
    let response = app
        .login_totp(&client, &unknown, &authenticator.next_code(), HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (_, recovery_codes) = app.enable_totp(&alice).await;
    let recovery_code = &recovery_codes[3];

    let first = app.new_browser(&alice, HOME_IP, Some(recovery_code)).await;
    app.assert_logged_in(&first.client, "logged in with a recovery code")
        .await;
    let account: AccountResponse = json(app.account(&first.client).await).await;
    assert_eq!(account.recovery_codes_left, 9);

    let client = client_with_jar(Default::default());
    let challenge = app.password_step(&client, &alice).await;
    let response = app
        .login_totp(&client, &challenge, recovery_code, HOME_IP)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code",
        "a spent recovery code"
    );
    // Typed in capitals and without dashes, another code still works.
    let typed = recovery_codes[4].replace('-', "").to_uppercase();
    let response = app.login_totp(&client, &challenge, &typed, HOME_IP).await;
    assert_eq!(response.status(), StatusCode::OK);
    let account: AccountResponse = json(app.account(&client).await).await;
    assert_eq!(account.recovery_codes_left, 8);
}

#[tokio::test]
async fn disabling_needs_a_valid_code() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (authenticator, recovery_codes) = app.enable_totp(&alice).await;

    let response = app.totp_disable(&alice, &authenticator.wrong_code()).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    let response = app.totp_disable(&alice, "not a code").await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    // A recovery code disables as well as a TOTP code does.
    let response = app.totp_disable(&alice, &recovery_codes[0]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(!account.totp_enabled);
    assert_eq!(account.recovery_codes_left, 0);

    let client = client_with_jar(Default::default());
    let body: LoginResponse = json(
        app.login_from(&client, "alice", alice.auth_key, HOME_IP)
            .await,
    )
    .await;
    assert!(!body.totp_required, "no second step any more");
    app.assert_logged_in(&client, "one step").await;

    // Enabled again, a current code disables it too.
    let (authenticator, _) = app.enable_totp(&alice).await;
    let response = app.totp_disable(&alice, &authenticator.next_code()).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn secrets_and_recovery_codes_are_not_stored_in_the_clear() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let setup: TotpSetupResponse = json(app.totp_setup(&alice.client).await).await;
    let authenticator = Authenticator::new(&setup.secret_base32);
    let codes: common::api::RecoveryCodesResponse =
        json(app.totp_enable(&alice, &authenticator.code(0)).await).await;
    let secret = totp_rs::Secret::Encoded(setup.secret_base32.clone())
        .to_bytes()
        .unwrap();
    let mut files = app.database_files().await;
    if let Some(service) = &app.mfa {
        files.extend(service.database_files());
    }
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(file).unwrap());
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(!contains(&secret), "the raw secret is stored");
    assert!(!contains(setup.secret_base32.as_bytes()));
    for code in &codes.recovery_codes {
        assert!(!contains(code.as_bytes()), "{code} is stored");
        assert!(
            !contains(code.replace('-', "").as_bytes()),
            "{code} is stored"
        );
    }
    // The key lives next to the database (the service's with a remote store), readable
    // by its owner only.
    let key_file = match &app.mfa {
        Some(service) => service.directory.path().join("mfa.key"),
        None => app.directory.path().join("db").join("server.key"),
    };
    let metadata = std::fs::metadata(&key_file).unwrap();
    assert_eq!(metadata.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn enabling_and_disabling_need_the_current_auth_key() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let setup: TotpSetupResponse = json(app.totp_setup(&alice.client).await).await;
    let authenticator = Authenticator::new(&setup.secret_base32);
    let mut wrong_key = alice.auth_key;
    wrong_key[31] ^= 1;
    let response = app
        .totp_enable_with_key(&alice, &authenticator.code(0), wrong_key)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(
        !account.totp_enabled,
        "a session alone does not enable totp"
    );

    let response = app.totp_enable(&alice, &authenticator.code(0)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .totp_disable_with_key(&alice, &authenticator.code(1), wrong_key)
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(
        account.totp_enabled,
        "a session alone does not disable totp"
    );
    // The code was not spent by the refused request.
    let response = app.totp_disable(&alice, &authenticator.code(1)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_store_that_reassigns_a_challenge_does_not_log_anyone_in() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    app.enable_totp(&alice).await;
    let (bob_authenticator, _) = app.enable_totp(&bob).await;
    // alice passes her password step; the store then claims her challenge is bob's, as a
    // compromised second-factor service (or an edit of its database) could.
    let challenge = app.password_step(&app.anonymous, &alice).await;
    assert_eq!(
        challenge.0.len(),
        48,
        "the store's 32 bytes and a 16-byte tag"
    );
    let store = app.factor_store().await;
    let moved =
        sqlx::query("UPDATE login_challenges SET username = 'bob' WHERE username = 'alice'")
            .execute(&store)
            .await
            .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    let response = app
        .login_totp(
            &app.anonymous,
            &challenge,
            &bob_authenticator.next_code(),
            HOME_IP,
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
    assert_eq!(
        app.get(&app.anonymous, "/api/me").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A tag changed by the client is refused the same way.
    let mut challenge = app.password_step(&app.anonymous, &bob).await;
    challenge.0[40] ^= 1;
    let response = app
        .login_totp(
            &app.anonymous,
            &challenge,
            &bob_authenticator.next_code(),
            HOME_IP,
        )
        .await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "login expired, start again"
    );
}
