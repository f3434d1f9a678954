//! Helpers for browser end-to-end tests: start the real server on a free port with a fresh
//! SQLite database, start chromedriver, open independent headless Chromium sessions, and
//! drive pages by their `data-testid` attributes.
//!
//! The tests need the built web client: `cargo xtask test` builds it and passes its
//! directory in `CHAT_E2E_STATIC_DIR`; `CHROMEDRIVER` and `CHROME` name the binaries.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// How long a step may wait for the page before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A test failure with its context, so a failing step says what it waited for.
pub type E2eResult<T> = Result<T, String>;

/// The chat server running in this process on a free port.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `http://localhost:PORT`: the same server under a name, for passkeys (browsers refuse
    /// them on an IP address). Cookies of one do not reach the other: a browser keeps to one.
    pub localhost_url: String,
    /// Holds the database; deleted on drop.
    pub data_dir: tempfile::TempDir,
    /// The second-factor service, for a server started with
    /// [`TestServer::start_with_mfa_service`].
    mfa: Option<MfaService>,
}

/// `mfa-service`'s code running in this process over mutual TLS, for a [`TestServer`].
struct MfaService {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Builds and starts the server with a fresh SQLite database under a temporary directory
    /// and the web client from `CHAT_E2E_STATIC_DIR`.
    ///
    /// # Errors
    /// When the web client is not built or the server does not start.
    pub async fn start() -> E2eResult<Self> {
        Self::start_with(Vec::new(), None).await
    }

    /// Like [`TestServer::start`], with the second factors in a second-factor service of
    /// their own (its code, in this process, on another free port) that the server reaches
    /// over mutual TLS with development certificates.
    ///
    /// # Errors
    /// As [`TestServer::start`], or when the service does not start.
    pub async fn start_with_mfa_service() -> E2eResult<Self> {
        let folder = tempfile::tempdir().map_err(|error| error.to_string())?;
        let certificates = dev_certificates::generate(folder.path(), "e2e test CA")
            .map_err(|error| error.to_string())?;
        let config = mfa::ServiceConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            database_url: format!("sqlite://{}", folder.path().join("mfa.db").display()),
            key: None,
            key_file: Some(folder.path().join("mfa.key")),
            tls_cert: certificates.service_cert.clone(),
            tls_key: certificates.service_key.clone(),
            client_ca: certificates.ca_cert.clone(),
            webauthn_rp_id: "localhost".to_owned(),
            webauthn_origin: mfa::factors::RelyingParty::localhost().origin,
        };
        let service = mfa::config::Service::build(config)
            .await
            .map_err(|error| format!("the second-factor service did not start: {error}"))?;
        let url = format!("https://127.0.0.1:{}/", service.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service.run_until(async move {
            let _ = stopped.await;
            // The folder of its database lives as long as the service.
            drop(folder);
        }));
        let flags = vec![
            "--mfa-url".to_owned(),
            url,
            "--mfa-ca".to_owned(),
            certificates.ca_cert.display().to_string(),
            "--mfa-client-cert".to_owned(),
            certificates.client_cert.display().to_string(),
            "--mfa-client-key".to_owned(),
            certificates.client_key.display().to_string(),
        ];
        let service = MfaService {
            stop: Some(stop),
            task: Some(task),
        };
        Self::start_with(flags, Some(service)).await
    }

    /// Stops the second-factor service of a server started with
    /// [`TestServer::start_with_mfa_service`], and waits until it no longer listens.
    ///
    /// # Errors
    /// When the server has no such service.
    pub async fn stop_mfa_service(&mut self) -> E2eResult<()> {
        let service = self
            .mfa
            .as_mut()
            .ok_or("this server has no second-factor service")?;
        if let Some(stop) = service.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = service.task.take() {
            let _ = task.await;
        }
        Ok(())
    }

    async fn start_with(extra_flags: Vec<String>, mfa: Option<MfaService>) -> E2eResult<Self> {
        let static_dir = std::env::var_os("CHAT_E2E_STATIC_DIR")
            .map(PathBuf::from)
            .ok_or("CHAT_E2E_STATIC_DIR is not set: run these tests with `cargo xtask test`, which builds the web client first")?;
        if !static_dir.join("index.html").is_file() {
            return Err(format!(
                "{} has no index.html: build the web client with `trunk build --release`",
                static_dir.display()
            ));
        }
        let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let database_url = format!("sqlite://{}", data_dir.path().join("chat.db").display());
        let config = server::Config::try_parse_from(
            [
                "server",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                &database_url,
                "--static-dir",
                &static_dir.to_string_lossy(),
                // The tests register every account from 127.0.0.1.
                "--register-attempts",
                "1000",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain(extra_flags),
        )
        .map_err(|error| error.to_string())?;
        let application = server::Application::build(config)
            .await
            .map_err(|error| format!("server did not start: {error}"))?;
        let base_url = format!("http://127.0.0.1:{}", application.port());
        let localhost_url = format!("http://localhost:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Ok(Self {
            base_url,
            localhost_url,
            data_dir,
            mfa,
        })
    }

    /// Flips one byte of the ciphertext of the oldest stored message, as a malicious server
    /// or a database edit would, and returns that message's id.
    ///
    /// # Errors
    /// When the database cannot be opened or holds no message.
    pub async fn tamper_with_oldest_message(&self) -> E2eResult<i64> {
        let pool = self.pool().await?;
        let (id, mut ciphertext): (i64, Vec<u8>) =
            sqlx::query_as("SELECT id, ciphertext FROM messages ORDER BY id LIMIT 1")
                .fetch_one(&pool)
                .await
                .map_err(|error| format!("no message to tamper with: {error}"))?;
        let middle = ciphertext.len() / 2;
        ciphertext[middle] ^= 0x01;
        sqlx::query("UPDATE messages SET ciphertext = ? WHERE id = ?")
            .bind(&ciphertext)
            .bind(id)
            .execute(&pool)
            .await
            .map_err(|error| format!("cannot update the message: {error}"))?;
        pool.close().await;
        Ok(id)
    }

    /// A connection pool to the server's database, for tests that play a malicious server.
    async fn pool(&self) -> E2eResult<sqlx::SqlitePool> {
        let url = format!(
            "sqlite://{}",
            self.data_dir.path().join("chat.db").display()
        );
        sqlx::SqlitePool::connect(&url)
            .await
            .map_err(|error| format!("cannot open the database: {error}"))
    }

    /// Deletes every key envelope addressed to `recipient`, as if nobody had sealed one yet.
    ///
    /// # Errors
    /// When the database cannot be changed.
    pub async fn delete_envelopes_to(&self, recipient: &str) -> E2eResult<u64> {
        let pool = self.pool().await?;
        let deleted = sqlx::query("DELETE FROM key_envelopes WHERE recipient = ?")
            .bind(recipient)
            .execute(&pool)
            .await
            .map_err(|error| format!("cannot delete envelopes: {error}"))?
            .rows_affected();
        pool.close().await;
        Ok(deleted)
    }

    /// Who distributed the key envelopes addressed to `recipient`, one entry per envelope.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn envelope_distributors(&self, recipient: &str) -> E2eResult<Vec<String>> {
        let pool = self.pool().await?;
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT distributor FROM key_envelopes WHERE recipient = ? ORDER BY id")
                .bind(recipient)
                .fetch_all(&pool)
                .await
                .map_err(|error| format!("cannot read envelopes: {error}"))?;
        pool.close().await;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// The version of `username`'s stored client state (0 when none is stored).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn client_state_version(&self, username: &str) -> E2eResult<i64> {
        let pool = self.pool().await?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM client_states WHERE username = ?")
                .bind(username)
                .fetch_optional(&pool)
                .await
                .map_err(|error| format!("cannot read the client state: {error}"))?;
        pool.close().await;
        Ok(version.unwrap_or(0))
    }

    /// Waits until `username`'s client has saved its state at least at `at_least` and then
    /// saved nothing more for a second, and returns that version.
    ///
    /// # Errors
    /// When that does not happen within 20 seconds.
    pub async fn settled_client_state(&self, username: &str, at_least: i64) -> E2eResult<i64> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = -1;
        while Instant::now() < deadline {
            let version = self.client_state_version(username).await?;
            if version >= at_least && version == last {
                return Ok(version);
            }
            last = version;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(format!(
            "the client state of {username} did not settle at version {at_least} or above (last {last})"
        ))
    }

    /// Deletes `username`'s stored client state, as a server wiping it would.
    ///
    /// # Errors
    /// When the database cannot be changed.
    pub async fn wipe_client_state(&self, username: &str) -> E2eResult<u64> {
        let pool = self.pool().await?;
        let deleted = sqlx::query("DELETE FROM client_states WHERE username = ?")
            .bind(username)
            .execute(&pool)
            .await
            .map_err(|error| format!("cannot delete the client state: {error}"))?
            .rows_affected();
        pool.close().await;
        Ok(deleted)
    }

    /// Deletes the stored message at `position` (0 = the oldest), as a server withholding it
    /// would; returns its id.
    ///
    /// # Errors
    /// When the database cannot be changed or holds no such message.
    pub async fn withhold_message(&self, position: i64) -> E2eResult<i64> {
        let pool = self.pool().await?;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET ?")
            .bind(position)
            .fetch_one(&pool)
            .await
            .map_err(|error| format!("no message at position {position}: {error}"))?;
        sqlx::query("DELETE FROM messages WHERE id = ?")
            .bind(id)
            .execute(&pool)
            .await
            .map_err(|error| format!("cannot delete the message: {error}"))?;
        pool.close().await;
        Ok(id)
    }

    /// Deletes the newest entry of the log of the room with the longest log, as a server
    /// rolling that log back would; returns its position.
    ///
    /// # Errors
    /// When the database cannot be changed or holds no log.
    pub async fn roll_back_newest_log_entry(&self) -> E2eResult<i64> {
        let pool = self.pool().await?;
        let (room_id, seq): (Vec<u8>, i64) =
            sqlx::query_as("SELECT room_id, seq FROM room_log ORDER BY seq DESC LIMIT 1")
                .fetch_one(&pool)
                .await
                .map_err(|error| format!("no log to roll back: {error}"))?;
        sqlx::query("DELETE FROM room_log WHERE room_id = ? AND seq = ?")
            .bind(&room_id)
            .bind(seq)
            .execute(&pool)
            .await
            .map_err(|error| format!("cannot delete the log entry: {error}"))?;
        pool.close().await;
        Ok(seq)
    }

    /// Every byte of the database files: the main file, the WAL and the shared memory file.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for name in ["chat.db", "chat.db-wal", "chat.db-shm"] {
            if let Ok(content) = std::fs::read(self.data_dir.path().join(name)) {
                bytes.extend(content);
            }
        }
        bytes
    }
}

fn free_port() -> E2eResult<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|error| error.to_string())?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| error.to_string())
}

/// A chromedriver process, killed on drop.
pub struct Driver {
    process: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Driver {
    /// The profile folder of browser `name`, which its processes' command lines name.
    pub fn profile(&self, name: &str) -> String {
        self.profiles
            .path()
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// Starts chromedriver (`CHROMEDRIVER`, else `chromedriver` on `PATH`) on a free port.
    ///
    /// # Errors
    /// When it cannot be started or does not listen within 20 s.
    pub fn start() -> E2eResult<Self> {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port()?;
        let profiles = tempfile::tempdir().map_err(|error| error.to_string())?;
        // Chromium leaves scratch folders in TMPDIR when its session ends uncleanly; under the
        // profiles folder they go when the driver does.
        let process = Command::new(&binary)
            .arg(format!("--port={port}"))
            .env("TMPDIR", profiles.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start {binary}: {error} (install chromium-driver)"))?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            profiles,
        })
    }

    /// Opens an independent headless Chromium session with its own empty profile.
    ///
    /// # Errors
    /// When chromedriver refuses the session.
    pub async fn browser(&self, name: &str) -> E2eResult<Browser> {
        let profile = self.profiles.path().join(name);
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        });
        if let Ok(binary) = std::env::var("CHROME") {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .map_err(|error| format!("chromedriver refused a session: {error}"))?;
        Ok(Browser {
            name: name.to_owned(),
            client,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A `POST` of a JSON body to a path below `/session/{id}/`: chromedriver's commands that
/// fantoccini has no method for.
#[derive(Debug)]
struct SessionCommand {
    /// The path below the session, e.g. `se/log`.
    path: &'static str,
    /// The JSON body.
    body: serde_json::Value,
}

impl SessionCommand {
    /// A DevTools protocol command through chromedriver's `goog/cdp/execute`.
    fn devtools(command: &str, params: serde_json::Value) -> Self {
        Self {
            path: "goog/cdp/execute",
            body: json!({ "cmd": command, "params": params }),
        }
    }

    /// The browser console log (`se/log`, chromedriver's own).
    fn browser_log() -> Self {
        Self {
            path: "se/log",
            body: json!({ "type": "browser" }),
        }
    }

    /// A virtual authenticator (W3C Web Authentication, section 11.3): a CTAP2 platform
    /// authenticator with resident keys and user verification, which verifies and consents
    /// on its own.
    fn add_virtual_authenticator() -> Self {
        Self {
            path: "webauthn/authenticator",
            body: json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "isUserConsenting": true,
            }),
        }
    }

    /// WebDriver "Set Permission" (W3C Permissions, section "Automation"): the page's
    /// `name` permission (e.g. `notifications`) becomes `state` (`granted`, `denied`,
    /// `prompt`).
    fn set_permission(name: &str, state: &str) -> Self {
        Self {
            path: "permissions",
            body: json!({"descriptor": {"name": name}, "state": state}),
        }
    }

    /// `Browser.setDownloadBehavior` through chromedriver's DevTools endpoint: downloads go
    /// into `folder`.
    fn allow_downloads(folder: String) -> Self {
        Self::devtools(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": folder}),
        )
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// `[data-testid="ID"]`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// One browser session, driven by `data-testid`.
pub struct Browser {
    /// Who this browser is, for error messages.
    pub name: String,
    /// The WebDriver client.
    pub client: Client,
}

impl Browser {
    fn context(&self, what: &str) -> String {
        format!("{}: {what}", self.name)
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) -> E2eResult<()> {
        self.client
            .goto(url)
            .await
            .map_err(|error| self.context(&format!("cannot open {url}: {error}")))
    }

    /// Waits for the element with `data-testid` `id` and returns it.
    pub async fn element(&self, id: &str) -> E2eResult<Element> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(&testid(id)))
            .await
            .map_err(|error| self.context(&format!("no element {id}: {error}")))
    }

    /// Clears the input `id` and types `text` into it. An input the page re-rendered on the
    /// way (a stale element reference) is found again and filled from the start.
    pub async fn fill(&self, id: &str, text: &str) -> E2eResult<()> {
        self.on_element(id, "fill", "was never filled", |input| async move {
            input.clear().await?;
            input.send_keys(text).await.map(|()| true)
        })
        .await
    }

    /// Clicks the element `id` once it is enabled. An element the page re-rendered between
    /// finding and clicking it (a stale element reference) is found again.
    pub async fn click(&self, id: &str) -> E2eResult<()> {
        self.on_element(id, "click", "stayed disabled", |element| async move {
            if !element.is_enabled().await.unwrap_or(false) {
                return Ok(false);
            }
            element.click().await.map(|()| true)
        })
        .await
    }

    /// Finds the element `id` and runs `act` on it until `act` answers `Ok(true)`, for at most
    /// [`STEP_TIMEOUT`], every 100 ms: `Ok(false)` (not ready) and a stale element reference
    /// (the page re-rendered it) find it again. Fails saying `cannot {doing} {id}` for any
    /// other error, or `{id} {not_ready}` when the time is up.
    async fn on_element<Act, Done>(
        &self,
        id: &str,
        doing: &str,
        not_ready: &str,
        act: Act,
    ) -> E2eResult<()>
    where
        Act: Fn(Element) -> Done,
        Done: std::future::Future<Output = Result<bool, fantoccini::error::CmdError>>,
    {
        let started = Instant::now();
        loop {
            match act(self.element(id).await?).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error)
                    if error.is_stale_element_reference() && started.elapsed() <= STEP_TIMEOUT => {}
                Err(error) => {
                    return Err(self.context(&format!("cannot {doing} {id}: {error}")));
                }
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(self.context(&format!("{id} {not_ready}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The texts of every element `id` now on the page.
    pub async fn texts(&self, id: &str) -> E2eResult<Vec<String>> {
        let elements = self
            .client
            .find_all(Locator::Css(&testid(id)))
            .await
            .map_err(|error| self.context(&format!("cannot look for {id}: {error}")))?;
        let mut texts = Vec::with_capacity(elements.len());
        for element in elements {
            texts.push(element.text().await.unwrap_or_default());
        }
        Ok(texts)
    }

    /// Waits until some element `id` has a text containing `needle`.
    pub async fn wait_for_text(&self, id: &str, needle: &str) -> E2eResult<()> {
        self.wait_for_text_within(id, needle, STEP_TIMEOUT).await
    }

    /// Like [`Browser::wait_for_text`], waiting at most `timeout`.
    pub async fn wait_for_text_within(
        &self,
        id: &str,
        needle: &str,
        timeout: Duration,
    ) -> E2eResult<()> {
        let started = Instant::now();
        loop {
            if self
                .texts(id)
                .await?
                .iter()
                .any(|text| text.contains(needle))
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(self.context(&format!(
                    "no {id} containing {needle:?} after {} s; page shows {:?}",
                    timeout.as_secs(),
                    self.texts(id).await.unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element `id` whose text contains `needle`.
    pub async fn click_text(&self, id: &str, needle: &str) -> E2eResult<()> {
        self.wait_for_text(id, needle).await?;
        let elements = self
            .client
            .find_all(Locator::Css(&testid(id)))
            .await
            .map_err(|error| self.context(&error.to_string()))?;
        for element in elements {
            if element.text().await.unwrap_or_default().contains(needle) {
                return element
                    .click()
                    .await
                    .map_err(|error| self.context(&error.to_string()));
            }
        }
        Err(self.context(&format!("{id} with {needle:?} vanished")))
    }

    /// Registers `username` from the log-in screen and waits for the chat screen.
    pub async fn register(&self, base_url: &str, username: &str, password: &str) -> E2eResult<()> {
        self.open(base_url).await?;
        self.fill("username-input", username).await?;
        self.fill("password-input", password).await?;
        self.click("register-button").await?;
        self.element("logout-button").await.map(|_| ())
    }

    /// Writes `text` in the open room, sends it and waits until it shows.
    pub async fn send_message(&self, text: &str) -> E2eResult<()> {
        self.fill("message-input", text).await?;
        self.click("send-button").await?;
        self.wait_for_text("message", text).await
    }

    /// Creates a room named `name` and waits until it is open.
    pub async fn create_room(&self, name: &str) -> E2eResult<()> {
        self.fill("room-name-input", name).await?;
        self.click("create-room-button").await?;
        self.wait_for_text("room-title", name).await
    }

    /// Adds `username` to the open room (an admin's browser) and waits until listed.
    pub async fn add_member(&self, username: &str) -> E2eResult<()> {
        self.fill("member-username-input", username).await?;
        self.click("add-member-button").await?;
        self.wait_for_text("member-list", username).await
    }

    /// Opens the room named `name` from the room list and waits until it shows.
    pub async fn open_room(&self, name: &str) -> E2eResult<()> {
        self.click_text("room-item", name).await?;
        self.wait_for_text("room-title", name).await
    }

    /// Logs in from the log-in screen and waits for the chat screen; returns the wall time.
    pub async fn login(&self, username: &str, password: &str) -> E2eResult<Duration> {
        self.fill("username-input", username).await?;
        self.fill("password-input", password).await?;
        let started = Instant::now();
        self.click("login-button").await?;
        self.element("logout-button").await?;
        Ok(started.elapsed())
    }

    /// Unlocks a returning tab (valid session, keys locked) with the password alone.
    pub async fn unlock(&self, password: &str) -> E2eResult<()> {
        self.fill("unlock-password-input", password).await?;
        self.click("unlock-button").await?;
        self.element("logout-button").await.map(|_| ())
    }

    /// The key derivation time the page reports, in milliseconds.
    pub async fn kdf_millis(&self) -> E2eResult<f64> {
        let started = Instant::now();
        loop {
            let text = self
                .element("kdf-time")
                .await?
                .text()
                .await
                .unwrap_or_default();
            let number = text
                .split_whitespace()
                .find_map(|word| word.parse::<f64>().ok());
            if let Some(millis) = number {
                return Ok(millis);
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(self.context(&format!("kdf-time shows no number: {text:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `id` inside the first message (`data-testid="message"`) whose text
    /// contains `needle`: a message's Reply, React, Edit or Delete button.
    pub async fn click_in_message(&self, needle: &str, id: &str) -> E2eResult<()> {
        self.wait_for_text("message", needle).await?;
        let messages = self
            .client
            .find_all(Locator::Css(&testid("message")))
            .await
            .map_err(|error| self.context(&error.to_string()))?;
        for message in messages {
            if !message.text().await.unwrap_or_default().contains(needle) {
                continue;
            }
            let button = message
                .find(Locator::Css(&testid(id)))
                .await
                .map_err(|error| self.context(&format!("no {id} in {needle:?}: {error}")))?;
            return button
                .click()
                .await
                .map_err(|error| self.context(&format!("cannot click {id}: {error}")));
        }
        Err(self.context(&format!("message {needle:?} vanished")))
    }

    /// Clicks the element `id` inside the element matched by the CSS selector `scope`.
    pub async fn click_in(&self, scope: &str, id: &str) -> E2eResult<()> {
        let selector = format!("{scope} {}", testid(id));
        let element = self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(&selector))
            .await
            .map_err(|error| self.context(&format!("no {selector}: {error}")))?;
        element
            .click()
            .await
            .map_err(|error| self.context(&format!("cannot click {selector}: {error}")))
    }

    /// The current value of the input `id`.
    pub async fn value(&self, id: &str) -> E2eResult<String> {
        let started = Instant::now();
        loop {
            let value = self
                .element(id)
                .await?
                .prop("value")
                .await
                .map_err(|error| self.context(&error.to_string()))?
                .unwrap_or_default();
            if !value.is_empty() {
                return Ok(value);
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(self.context(&format!("{id} stayed empty")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Chooses the option with `value` in the select `id`.
    pub async fn select(&self, id: &str, value: &str) -> E2eResult<()> {
        self.element(id)
            .await?
            .select_by_value(value)
            .await
            .map_err(|error| self.context(&format!("cannot select {value} in {id}: {error}")))
    }

    /// The HTTP status the page's own `fetch` of `path` gets (with the page's session cookie).
    pub async fn fetch_status(&self, path: &str) -> E2eResult<u64> {
        let script = "const done = arguments[arguments.length - 1]; \
                      fetch(arguments[0]).then(r => done(r.status), e => done(0));";
        let status = self
            .client
            .execute_async(script, vec![json!(path)])
            .await
            .map_err(|error| self.context(&format!("fetch {path} failed: {error}")))?;
        status
            .as_u64()
            .ok_or_else(|| self.context(&format!("fetch {path} gave {status}")))
    }

    /// Waits until no element `id` has a text containing `needle` for `settle`, proving a
    /// negative as well as a browser test can.
    pub async fn assert_never_text(
        &self,
        id: &str,
        needle: &str,
        settle: Duration,
    ) -> E2eResult<()> {
        let started = Instant::now();
        while started.elapsed() < settle {
            if self
                .texts(id)
                .await?
                .iter()
                .any(|text| text.contains(needle))
            {
                return Err(self.context(&format!("{id} unexpectedly shows {needle:?}")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The browser console messages at level SEVERE (errors) since the last call.
    pub async fn console_errors(&self) -> E2eResult<Vec<String>> {
        let log = self
            .client
            .issue_cmd(SessionCommand::browser_log())
            .await
            .map_err(|error| self.context(&format!("cannot read the console log: {error}")))?;
        Ok(log
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["level"] == "SEVERE")
                    .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs `script` in the page and returns its value.
    pub async fn run_script(&self, script: &str) -> E2eResult<serde_json::Value> {
        self.client
            .execute(script, Vec::new())
            .await
            .map_err(|error| self.context(&format!("script failed: {error}")))
    }

    /// Runs axe-core's rules (WCAG 2.x A and AA, and best practices: labels, contrast of
    /// 4.5:1, landmarks, ARIA use…) on the page as it is now and returns each violation as
    /// `rule (impact): help; first nodes`. axe-core's `axe.min.js` is found at
    /// `CHAT_E2E_AXE_SCRIPT` (`cargo xtask test` installs it from npm) or in
    /// `target/tools/axe-core`.
    pub async fn axe_violations(&self) -> E2eResult<Vec<String>> {
        let path = std::env::var_os("CHAT_E2E_AXE_SCRIPT")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/tools/axe-core/node_modules/axe-core/axe.min.js")
            });
        let source = std::fs::read_to_string(&path).map_err(|error| {
            format!(
                "axe-core is needed at {} (cargo xtask test installs it): {error}",
                path.display()
            )
        })?;
        let loaded = self
            .run_script("return typeof window.axe === 'object';")
            .await?;
        if loaded.as_bool() != Some(true) {
            self.run_script(&format!("{source}\nreturn null;")).await?;
        }
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] })
                    .then(result => done(result.violations.map(v =>
                        `${v.id} (${v.impact}): ${v.help}; ` +
                        v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "))))
                    .catch(error => done([`axe failed: ${error}`]));"#,
                Vec::new(),
            )
            .await
            .map_err(|error| self.context(&format!("axe did not run: {error}")))?;
        serde_json::from_value(found).map_err(|error| self.context(&error.to_string()))
    }

    /// Runs `script` every 100 ms until `accept` takes what it returns (which is returned), at
    /// most [`STEP_TIMEOUT`]; the error names `what` was awaited and what the page last gave.
    pub async fn wait_for_script(
        &self,
        script: &str,
        what: &str,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> E2eResult<serde_json::Value> {
        let started = Instant::now();
        loop {
            let value = self.run_script(script).await?;
            if accept(&value) {
                return Ok(value);
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(self.context(&format!("never {what}; the page gave {value}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` as an asynchronous script: it ends by calling its last argument
    /// (`arguments[arguments.length - 1]`) with the result.
    pub async fn run_async_script(&self, script: &str) -> E2eResult<serde_json::Value> {
        self.client
            .execute_async(script, Vec::new())
            .await
            .map_err(|error| self.context(&format!("script failed: {error}")))
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> E2eResult<()> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|error| self.context(&format!("cannot take a screenshot: {error}")))?;
        std::fs::write(path, png)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    }

    /// Reloads the page; the tab's keys are gone and the log-in screen shows.
    pub async fn reload(&self) -> E2eResult<()> {
        self.client
            .refresh()
            .await
            .map_err(|error| self.context(&format!("cannot reload: {error}")))
    }

    /// Hands the file at `path` to the attach input, as choosing it in the file picker does.
    pub async fn attach_file(&self, path: &std::path::Path) -> E2eResult<()> {
        let input = self.element("attach-input").await?;
        input
            .send_keys(&path.to_string_lossy())
            .await
            .map_err(|error| self.context(&format!("cannot attach {}: {error}", path.display())))
    }

    /// Waits until no element `id` is on the page.
    pub async fn wait_until_none(&self, id: &str) -> E2eResult<()> {
        let started = Instant::now();
        loop {
            let shown = self.texts(id).await?;
            if shown.is_empty() {
                return Ok(());
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(self.context(&format!("{id} still shows {shown:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Gives this browser a virtual passkey authenticator (see
    /// [`SessionCommand::add_virtual_authenticator`]),
    /// which answers `navigator.credentials.create()` and `.get()` without a person; returns
    /// its id. The page must be on `http://localhost` or `https://`.
    pub async fn add_virtual_authenticator(&self) -> E2eResult<String> {
        let id = self
            .client
            .issue_cmd(SessionCommand::add_virtual_authenticator())
            .await
            .map_err(|error| self.context(&format!("no virtual authenticator: {error}")))?;
        Ok(id.as_str().unwrap_or_default().to_owned())
    }

    /// Resizes the browser window (in headless Chromium, the viewport) to `width` x `height`
    /// CSS pixels, e.g. 390 x 844 for a phone.
    pub async fn resize(&self, width: u32, height: u32) -> E2eResult<()> {
        self.client
            .set_window_size(width, height)
            .await
            .map_err(|error| self.context(&format!("cannot resize: {error}")))
    }

    /// Whether the element `id` is on screen: present, with a size, not hidden by CSS.
    pub async fn shown(&self, id: &str) -> E2eResult<bool> {
        let script = format!(
            r#"return [...document.querySelectorAll('[data-testid="{id}"]')].some(e => {{
                const box = e.getBoundingClientRect();
                return box.width > 0 && box.height > 0 && getComputedStyle(e).visibility !== "hidden";
            }});"#
        );
        Ok(self.run_script(&script).await?.as_bool().unwrap_or(false))
    }

    /// How many CSS pixels the page is wider than the window (0 when nothing scrolls
    /// sideways).
    pub async fn horizontal_overflow(&self) -> E2eResult<i64> {
        let overflow = self
            .run_script(
                "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)                  - window.innerWidth;",
            )
            .await?;
        Ok(overflow.as_i64().unwrap_or(i64::MAX))
    }

    /// Sets the page's permission `name` to `state` (`granted`, `denied` or `prompt`), as a
    /// user answering the browser's prompt would.
    pub async fn set_permission(&self, name: &str, state: &str) -> E2eResult<()> {
        self.client
            .issue_cmd(SessionCommand::set_permission(name, state))
            .await
            .map(|_| ())
            .map_err(|error| self.context(&format!("cannot set permission {name}: {error}")))
    }

    /// Records every notification the page shows from now on into `window.__notifications`
    /// (`{title, body}`): the page's `Notification` is replaced by a subclass that notes each
    /// one and then shows it as the browser would. Read them with [`Browser::notifications`].
    pub async fn record_notifications(&self) -> E2eResult<()> {
        self.run_script(
            r#"window.__notifications = [];
            const Shown = window.Notification;
            window.Notification = class extends Shown {
                constructor(title, options) {
                    super(title, options);
                    window.__notifications.push({title, body: options ? options.body : ""});
                }
            };
            return null;"#,
        )
        .await
        .map(|_| ())
    }

    /// The notifications recorded since [`Browser::record_notifications`], as `(title, body)`.
    pub async fn notifications(&self) -> E2eResult<Vec<(String, String)>> {
        let shown = self
            .run_script("return (window.__notifications || []).map(n => [n.title, n.body]);")
            .await?;
        serde_json::from_value(shown).map_err(|error| self.context(&error.to_string()))
    }

    /// Lets this browser save downloads into `folder` (headless Chromium refuses them
    /// otherwise), through the DevTools protocol command `Browser.setDownloadBehavior`.
    pub async fn allow_downloads(&self, folder: &std::path::Path) -> E2eResult<()> {
        self.client
            .issue_cmd(SessionCommand::allow_downloads(
                folder.to_string_lossy().into_owned(),
            ))
            .await
            .map(|_| ())
            .map_err(|error| self.context(&format!("cannot allow downloads: {error}")))
    }

    /// Makes this browser fail every request whose URL matches one of `patterns` (`*` is a
    /// wildcard), as if the network were down for them; an empty list lifts the block.
    /// DevTools protocol `Network.enable` and `Network.setBlockedURLs`.
    pub async fn block_urls(&self, patterns: &[&str]) -> E2eResult<()> {
        for command in [
            SessionCommand::devtools("Network.enable", json!({})),
            SessionCommand::devtools("Network.setBlockedURLs", json!({ "urls": patterns })),
        ] {
            self.client
                .issue_cmd(command)
                .await
                .map_err(|error| self.context(&format!("cannot block {patterns:?}: {error}")))?;
        }
        Ok(())
    }

    /// Waits until the file `name` has been saved whole into `folder` (see
    /// [`Browser::allow_downloads`]) and returns its bytes.
    pub async fn downloaded(&self, folder: &std::path::Path, name: &str) -> E2eResult<Vec<u8>> {
        self.downloaded_within(folder, name, STEP_TIMEOUT).await
    }

    /// Like [`Browser::downloaded`], waiting at most `timeout`.
    pub async fn downloaded_within(
        &self,
        folder: &std::path::Path,
        name: &str,
        timeout: Duration,
    ) -> E2eResult<Vec<u8>> {
        let started = Instant::now();
        loop {
            let partial = std::fs::read_dir(folder)
                .map_err(|error| error.to_string())?
                .flatten()
                .any(|entry| {
                    entry
                        .path()
                        .extension()
                        .is_some_and(|ext| ext == "crdownload")
                });
            let path = folder.join(name);
            if path.is_file() && !partial {
                return std::fs::read(&path).map_err(|error| error.to_string());
            }
            if started.elapsed() > timeout {
                return Err(self.context(&format!(
                    "{name} was not saved; warnings: {:?}",
                    self.texts("attachment-warning").await.unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends the WebDriver session.
    pub async fn close(self) -> E2eResult<()> {
        self.client.close().await.map_err(|error| error.to_string())
    }
}

/// The TOTP code of the base32 `secret` for `offset_steps` 30-second steps from now (RFC 6238:
/// HMAC-SHA1, 6 digits), as an authenticator app shows it.
///
/// # Errors
/// A secret that is not base32.
pub fn totp_code(secret: &str, offset_steps: i64) -> E2eResult<String> {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|error| format!("bad secret: {error:?}"))?;
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .map_err(|error| format!("bad totp: {error}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|error| error.to_string())?
        .as_secs() as i64;
    Ok(totp.generate((now + offset_steps * 30).max(0) as u64))
}

/// Whether `haystack` contains `needle` anywhere, byte for byte.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A member whose client is the command-line client's core (`cli`), registered on `server`
/// and logged in: quicker than a browser at writing many messages, and able to sign what an
/// honest client refuses to send. Keep the returned folder (its client state) alive as long as
/// the session.
pub async fn cli_member(
    server: &TestServer,
    username: &str,
    password: &str,
) -> E2eResult<(cli::Connection, cli::Session, tempfile::TempDir)> {
    let connection =
        cli::Connection::new(&server.base_url, None).map_err(|error| error.to_string())?;
    cli::register(&connection, username, password)
        .await
        .map_err(|error| format!("{username} does not register: {error}"))?;
    let state = tempfile::tempdir().map_err(|error| error.to_string())?;
    let session = cli::Session::login(&connection, username, password, None, state.path())
        .await
        .map_err(|error| format!("{username} does not log in: {error}"))?;
    Ok((connection, session, state))
}
