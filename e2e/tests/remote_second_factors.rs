//! Second factors kept by the separate second-factor service, reached by the chat server
//! over mutual TLS: TOTP enrolment and a login with a code through it, a passkey registered
//! from the Security screen and a login with it (Chromium's virtual authenticator, on
//! `http://localhost`), then, with the service stopped, a clear error for the user with a
//! second factor while a user without one logs in as usual.

use e2e::{Browser, Driver, E2eResult, TestServer};

const ALICE_PASSWORD: &str = "alice-passphrase-5150";
const BOB_PASSWORD: &str = "bob-passphrase-7321";

/// Fills the log-in form and submits it.
async fn submit_login(browser: &Browser, username: &str, password: &str) -> E2eResult<()> {
    browser.fill("username-input", username).await?;
    browser.fill("password-input", password).await?;
    browser.click("login-button").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_service_keeps_second_factors_and_fails_closed() -> E2eResult<()> {
    let mut server = TestServer::start_with_mfa_service().await?;
    let driver = Driver::start()?;
    let alice = driver.browser("alice").await?;
    let bob = driver.browser("bob").await?;
    // Passkeys need a name, not an IP address: both browsers use localhost.
    let url = server.localhost_url.clone();
    bob.register(&url, "bob", BOB_PASSWORD).await?;
    bob.click("logout-button").await?;

    // Enrolment goes through the service: the chat database never sees the secret.
    alice.register(&url, "alice", ALICE_PASSWORD).await?;
    alice.click("security-button").await?;
    alice.click("totp-setup-button").await?;
    let secret = alice
        .element("totp-secret")
        .await?
        .text()
        .await
        .map_err(|error| error.to_string())?;
    alice
        .fill("totp-code-input", &e2e::totp_code(&secret, 0)?)
        .await?;
    alice
        .fill("totp-enable-password-input", ALICE_PASSWORD)
        .await?;
    alice.click("totp-enable-button").await?;
    alice
        .wait_for_text("recovery-codes", "recovery codes")
        .await?;
    let recovery = alice.texts("recovery-code").await?;
    alice.click("recovery-codes-done").await?;
    alice.wait_for_text("totp-status", "On.").await?;
    assert!(
        !e2e::contains_bytes(&server.database_bytes(), secret.as_bytes()),
        "the chat database holds the totp secret"
    );
    assert!(
        !server.data_dir.path().join("mfa.db").exists(),
        "no in-process second-factor store beside the chat database"
    );

    // A login with a code, checked by the service.
    alice.click("logout-button").await?;
    submit_login(&alice, "alice", ALICE_PASSWORD).await?;
    alice
        .fill("totp-login-input", &e2e::totp_code(&secret, 1)?)
        .await?;
    alice.click("totp-login-button").await?;
    alice.element("logout-button").await?;

    // A passkey from the Security screen (re-authenticated with the password and, TOTP
    // being on, a recovery code), then a login with it instead of a code.
    alice.add_virtual_authenticator().await?;
    alice.click("security-button").await?;
    alice.fill("passkey-name-input", "laptop").await?;
    alice.fill("passkey-password-input", ALICE_PASSWORD).await?;
    alice.fill("passkey-code-input", &recovery[0]).await?;
    alice.click("passkey-add-button").await?;
    alice.wait_for_text("passkey-item", "laptop").await?;
    alice.wait_for_text("passkey-item", "never used").await?;
    alice.click("logout-button").await?;
    submit_login(&alice, "alice", ALICE_PASSWORD).await?;
    alice.click("passkey-login-button").await?;
    alice.element("logout-button").await?;
    alice.click("security-button").await?;
    alice.wait_for_text("passkey-item", "last used").await?;
    alice.click("logout-button").await?;

    // The service goes away: alice is told why she cannot log in; bob logs in as usual.
    server.stop_mfa_service().await?;
    submit_login(&alice, "alice", ALICE_PASSWORD).await?;
    alice
        .wait_for_text("auth-error", "two-factor authentication is unavailable")
        .await?;
    submit_login(&bob, "bob", BOB_PASSWORD).await?;
    bob.element("logout-button").await?;
    Ok(())
}
