//! Account security in real browsers: TOTP enrolment from the shown secret, logging in with a
//! code and with a recovery code, the sessions list and revoking another browser, a password
//! change after which old messages stay readable, and the page running under its strict
//! Content-Security-Policy and Subresource Integrity with no console errors.

use std::time::Duration;

use e2e::{Browser, Driver, E2eResult, TestServer};

const PASSWORD: &str = "first-password-2931";
const NEW_PASSWORD: &str = "second-password-8830";
const NOTE: &str = "old secret note 5d1e";

/// Logs in with the password, then answers the second step with `second_factor`.
async fn login_with_code(browser: &Browser, password: &str, second_factor: &str) -> E2eResult<()> {
    browser.fill("username-input", "alice").await?;
    browser.fill("password-input", password).await?;
    browser.click("login-button").await?;
    browser.fill("totp-login-input", second_factor).await?;
    browser.click("totp-login-button").await?;
    browser.element("logout-button").await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_sessions_password_change_and_page_security() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let first = driver.browser("alice-laptop").await?;

    first.register(&server.base_url, "alice", PASSWORD).await?;
    first.fill("room-name-input", "Diary").await?;
    first.click("create-room-button").await?;
    first.fill("message-input", NOTE).await?;
    first.click("send-button").await?;
    first.wait_for_text("message", NOTE).await?;

    // The page runs under the CSP and SRI: an injected inline script is blocked, every
    // script and stylesheet the build links carries an integrity hash, and the console is clean.
    let injected = first
        .run_script(
            "const s = document.createElement('script'); s.textContent = 'window.__injected = 1'; \
             document.body.appendChild(s); return window.__injected === undefined;",
        )
        .await?;
    assert_eq!(
        injected,
        serde_json::json!(true),
        "an inline script ran despite the CSP"
    );
    let integrity = first
        .run_script(
            "return [...document.querySelectorAll('link[href]:not([href^=\"data:\"]), script[src]')] \
             .every(e => (e.getAttribute('integrity') || '').startsWith('sha384-'));",
        )
        .await?;
    assert_eq!(
        integrity,
        serde_json::json!(true),
        "a resource lacks Subresource Integrity"
    );
    let response = reqwest::get(format!("{}/", server.base_url))
        .await
        .map_err(|error| error.to_string())?;
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for directive in ["'wasm-unsafe-eval'", "frame-ancestors 'none'", "'sha256-"] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive}");
    }
    assert!(
        !csp.contains("'unsafe-inline'"),
        "CSP allows inline scripts: {csp}"
    );
    let errors: Vec<String> = first
        .console_errors()
        .await?
        .into_iter()
        // The one refused injection above is expected; anything else is a failure.
        .filter(|message| {
            !message.contains("Content Security Policy") || !message.contains("inline script")
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Enrol TOTP with the secret shown next to the QR code.
    first.click("security-button").await?;
    first.click("totp-setup-button").await?;
    let qr = first
        .element("totp-qr")
        .await?
        .attr("src")
        .await
        .map_err(|error| error.to_string())?;
    assert!(qr
        .unwrap_or_default()
        .starts_with("data:image/svg+xml;base64,"));
    let secret = first
        .element("totp-secret")
        .await?
        .text()
        .await
        .map_err(|error| error.to_string())?;
    // For the README: set CHAT_E2E_SECURITY_SCREENSHOT to a path to save the enrolment screen.
    if let Some(path) = std::env::var_os("CHAT_E2E_SECURITY_SCREENSHOT") {
        first.screenshot(std::path::Path::new(&path)).await?;
    }
    first
        .fill("totp-code-input", &e2e::totp_code(&secret, 0)?)
        .await?;
    first.fill("totp-enable-password-input", PASSWORD).await?;
    first.click("totp-enable-button").await?;
    first
        .wait_for_text("recovery-codes", "recovery codes")
        .await?;
    let recovery = first.texts("recovery-code").await?;
    assert_eq!(recovery.len(), 10, "{recovery:?}");
    first.click("recovery-codes-done").await?;
    first.wait_for_text("totp-status", "On.").await?;

    // Log out and in with a code (of the next step: the current one was just used).
    first.click("logout-button").await?;
    login_with_code(&first, PASSWORD, &e2e::totp_code(&secret, 1)?).await?;
    // A wrong code is refused; a recovery code works once.
    first.click("logout-button").await?;
    first.fill("username-input", "alice").await?;
    first.fill("password-input", PASSWORD).await?;
    first.click("login-button").await?;
    first.fill("totp-login-input", "000000").await?;
    first.click("totp-login-button").await?;
    first.element("auth-error").await?;
    first.fill("totp-login-input", &recovery[0]).await?;
    first.click("totp-login-button").await?;
    first.element("logout-button").await?;

    // A second browser of alice's; the first lists both sessions and revokes the second,
    // whose page signs out at once.
    let second = driver.browser("alice-phone").await?;
    second.open(&server.base_url).await?;
    login_with_code(&second, PASSWORD, &recovery[1]).await?;
    first.click("security-button").await?;
    let started = std::time::Instant::now();
    while first.texts("session-item").await?.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sessions list never showed two sessions"
        );
        first.click("security-button").await?;
        first.click("security-button").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(first.texts("session-item").await?.len(), 2);
    first
        .click_in(
            "[data-testid=\"session-item\"][data-current=\"false\"]",
            "revoke-session-button",
        )
        .await?;
    second.wait_for_text("auth-notice", "signed out").await?;
    second.element("username-input").await?;

    // Change the password (with a recovery code as second factor); the same keys remain, so
    // the old message is readable after logging in with the new password.
    first.fill("current-password-input", PASSWORD).await?;
    first.fill("new-password-input", NEW_PASSWORD).await?;
    first.fill("password-code-input", &recovery[2]).await?;
    first.click("change-password-button").await?;
    first
        .wait_for_text("security-status", "Password changed")
        .await?;
    first.click("logout-button").await?;
    login_with_code(&first, NEW_PASSWORD, &recovery[3]).await?;
    first.click_text("room-item", "Diary").await?;
    first.wait_for_text("message", NOTE).await?;
    assert!(first.texts("message-warning").await?.is_empty());

    // The old password no longer works.
    first.click("logout-button").await?;
    first.fill("username-input", "alice").await?;
    first.fill("password-input", PASSWORD).await?;
    first.click("login-button").await?;
    first.element("auth-error").await?;

    first.close().await?;
    second.close().await?;
    Ok(())
}
