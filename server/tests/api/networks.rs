//! Networks: the trusted networks an account allows logins from, and the notices of logins
//! from networks the account had not used.

use common::api::{AccountResponse, LoginResponse, TrustedNetworksRequest};
use common::wire::Base64Array;
use reqwest::StatusCode;

use crate::helpers::{client_with_jar, error_message, json, spawn_app, TestApp, TestUser};
use crate::security_client::HOME_IP;

fn networks_request(user: &TestUser, networks: &[&str]) -> TrustedNetworksRequest {
    TrustedNetworksRequest {
        networks: networks.iter().map(|network| network.to_string()).collect(),
        auth_key: Base64Array(user.auth_key),
        totp_code: None,
    }
}

#[tokio::test]
async fn trusted_networks_refuse_logins_from_elsewhere() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let body = networks_request(&alice, &["10.1.2.0/24"]);
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert_eq!(account.trusted_networks, ["10.1.2.0/24"]);

    let client = client_with_jar(Default::default());
    let response = app
        .login_from(&client, "alice", alice.auth_key, "10.1.2.7")
        .await;
    assert_eq!(response.status(), StatusCode::OK, "inside the network");
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "10.9.9.9")
        .await;
    assert!(response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .is_none());
    assert_eq!(
        error_message(response, StatusCode::FORBIDDEN).await,
        "login from this network is not allowed for this account"
    );
    // A wrong key from outside is a wrong key: the network is not revealed to it.
    let mut wrong_key = alice.auth_key;
    wrong_key[0] ^= 1;
    let response = app
        .login_from(&app.anonymous, "alice", wrong_key, "10.9.9.9")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let account: AccountResponse = json(app.account(&client).await).await;
    let refused = &account.login_history[1];
    assert_eq!(refused.result, "network_refused");
    assert_eq!(refused.ip, "10.9.9.9");
    assert!(refused.new_network);
    assert_eq!(account.login_history[0].result, "wrong_password");
    assert_eq!(account.login_history[2].result, "success");

    // An empty list allows every network again.
    let response = app
        .set_trusted_networks(&alice.client, &networks_request(&alice, &[]))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "10.9.9.9")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn setting_trusted_networks_checks_the_blocks_and_the_key() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    for invalid in ["10.1.2.0/33", "not a network", "10.1.2.7", "2001:db8::/129"] {
        let body = networks_request(&alice, &["192.0.2.0/24", invalid]);
        let response = app.set_trusted_networks(&alice.client, &body).await;
        let message = error_message(response, StatusCode::BAD_REQUEST).await;
        assert!(
            message.starts_with("invalid network"),
            "{invalid}: {message}"
        );
    }
    let mut body = networks_request(&alice, &["192.0.2.0/24"]);
    body.auth_key.0[0] ^= 1;
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid password"
    );
    // Blocks are stored by their network address, once each, IPv6 too.
    let body = networks_request(&alice, &["10.1.2.7/24", "10.1.2.0/24", "2001:db8::1/32"]);
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert_eq!(account.trusted_networks, ["10.1.2.0/24", "2001:db8::/32"]);
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "2001:db8:5::1")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_totp_setting_trusted_networks_needs_a_code() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let (_, recovery_codes) = app.enable_totp(&alice).await;
    let mut body = networks_request(&alice, &["10.1.2.0/24"]);
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    body.totp_code = Some("wrong-code-here".to_owned());
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "invalid code"
    );
    body.totp_code = Some(recovery_codes[0].clone());
    let response = app.set_trusted_networks(&alice.client, &body).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The refusal comes before the code step, so no challenge reaches the wrong network.
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "10.9.9.9")
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .login_from(&app.anonymous, "alice", alice.auth_key, "10.1.2.8")
        .await;
    let login: LoginResponse = json(response).await;
    assert!(login.totp_required);
    // The second step is refused too when it comes from outside.
    let response = app
        .login_totp(
            &app.anonymous,
            &login.challenge.unwrap(),
            &recovery_codes[1],
            "10.9.9.9",
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Logs `user` in from `ip` on a fresh client; returns the answer's `new_network`.
async fn login(app: &TestApp, user: &TestUser, ip: &str) -> bool {
    let client = client_with_jar(Default::default());
    let response = app
        .login_from(&client, &user.username, user.auth_key, ip)
        .await;
    let body: LoginResponse = json(response).await;
    body.new_network
}

#[tokio::test]
async fn a_login_from_a_new_network_leaves_a_notice_until_dismissed() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    assert!(
        !login(&app, &alice, HOME_IP).await,
        "the network alice registered from"
    );
    assert!(!login(&app, &alice, "127.0.0.99").await, "the same /24");
    assert!(
        login(&app, &alice, "198.51.100.7").await,
        "a second network"
    );
    assert!(!login(&app, &alice, "198.51.100.8").await, "now known");
    assert!(
        login(&app, &alice, "2001:db8:1:2::1").await,
        "an IPv6 network"
    );
    assert!(
        !login(&app, &alice, "2001:db8:1:ffff::2").await,
        "the same /48"
    );

    let account: AccountResponse = json(app.account(&alice.client).await).await;
    let notices: Vec<&str> = account
        .new_network_notices
        .iter()
        .map(|notice| notice.ip.as_str())
        .collect();
    assert_eq!(notices, ["2001:db8:1:2::1", "198.51.100.7"], "newest first");
    assert_eq!(account.login_history.len(), 6);
    assert!(account.login_history[1].new_network);
    assert_eq!(account.login_history[1].user_agent, "test-browser/1.0");

    let response = app.dismiss_notices(&alice.client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert!(account.new_network_notices.is_empty());
    assert_eq!(account.login_history.len(), 6, "the history stays");
    assert!(login(&app, &alice, "203.0.113.1").await);
    let account: AccountResponse = json(app.account(&alice.client).await).await;
    assert_eq!(account.new_network_notices.len(), 1);
}
