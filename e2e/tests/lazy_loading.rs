//! The lazily loaded parts of the web client in a real browser: the log-in screen comes
//! without them, the Security screen's chunk is fetched only when the screen is opened, and
//! a chunk that cannot be fetched shows a clear message with a retry instead of breaking the
//! page.

use e2e::{Browser, Driver, E2eResult, TestServer};

/// The names of the `.wasm` files this page has fetched so far with a 200 answer (Resource
/// Timing; a blocked fetch may be listed too, with another status).
async fn fetched_wasm(browser: &Browser) -> E2eResult<Vec<String>> {
    let names = browser
        .run_script(
            "return performance.getEntriesByType('resource') \
             .filter(e => e.name.endsWith('.wasm') && e.responseStatus === 200) \
             .map(e => e.name.split('/').pop());",
        )
        .await?;
    serde_json::from_value(names).map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_load_on_first_use_and_a_missing_chunk_can_be_retried() -> E2eResult<()> {
    let server = TestServer::start().await?;
    let driver = Driver::start()?;
    let browser = driver.browser("lazy").await?;

    browser.open(&server.base_url).await?;
    browser.element("register-button").await?;
    let on_login_screen = fetched_wasm(&browser).await?;
    assert!(
        on_login_screen
            .iter()
            .any(|name| name == "web-client_bg.wasm"),
        "the main module was not fetched: {on_login_screen:?}"
    );
    assert!(
        !on_login_screen
            .iter()
            .any(|name| name == "split_security_screen.wasm"),
        "the Security screen's chunk came with the log-in screen: {on_login_screen:?}"
    );

    // The Security screen's chunk cannot be fetched: the screen says so and the rest of the
    // app keeps working.
    browser.block_urls(&["*split_security_screen.wasm"]).await?;
    browser
        .register(&server.base_url, "alice", "lazy-password-4417")
        .await?;
    browser.create_room("Notes").await?;
    browser.click("security-button").await?;
    browser
        .wait_for_text("load-error", "could not be loaded")
        .await?;
    browser.element("load-reload").await?;
    assert!(
        !browser.shown("change-password-button").await?,
        "the Security screen showed without its chunk"
    );
    browser.click("security-button").await?;
    browser.send_message("still working").await?;
    browser.click("security-button").await?;
    browser
        .wait_for_text("load-error", "could not be loaded")
        .await?;

    // Back online, "Try again" brings the screen.
    browser.block_urls(&[]).await?;
    browser.click("load-retry").await?;
    browser.element("change-password-button").await?;
    let after = fetched_wasm(&browser).await?;
    assert!(
        after
            .iter()
            .any(|name| name == "split_security_screen.wasm"),
        "the retry did not fetch the chunk: {after:?}"
    );
    Ok(())
}
