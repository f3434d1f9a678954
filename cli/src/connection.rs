//! The I/O half of the driver: JSON over HTTP with the session cookie, one call per endpoint
//! definition of [`common::api::endpoints`], and the WebSocket of server events. Nothing here looks inside what it carries.

use std::path::Path;
use std::sync::Arc;

use common::api::endpoints::{BodyKind, Connect, Endpoint, Method, NoParams, QueryParams};
use common::api::{ErrorBody, ErrorCode, ServerEvent};
use futures_util::StreamExt;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, Url};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

use crate::CliError;

/// One server, with this process's cookie jar.
pub struct Connection {
    http: Client,
    jar: Arc<Jar>,
    base: Url,
    /// For HTTPS: the TLS settings of the WebSocket, trusting only the authority given.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connection {
    /// A connection to `base` (`http://host:port` or `https://…`). For HTTPS, `ca_cert` is
    /// the PEM certificate of the authority that signed the server's certificate: both the
    /// HTTP requests and the WebSocket trust that authority and no other.
    ///
    /// # Errors
    /// [`CliError::Usage`] for a bad URL or certificate file.
    pub fn new(base: &str, ca_cert: Option<&Path>) -> Result<Self, CliError> {
        let base =
            Url::parse(base).map_err(|error| CliError::Usage(format!("server URL: {error}")))?;
        let jar = Arc::new(Jar::default());
        let mut builder = Client::builder().cookie_provider(jar.clone());
        let mut tls = None;
        if let Some(path) = ca_cert {
            let bad = |error: &dyn std::fmt::Display| {
                CliError::Usage(format!("{}: {error}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|error| bad(&error))?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| bad(&error))?;
            builder = builder.add_root_certificate(certificate);
            tls = Some(Arc::new(websocket_tls(&pem).map_err(|error| bad(&error))?));
        }
        let http = builder
            .build()
            .map_err(|error| CliError::Usage(format!("HTTP client: {error}")))?;
        Ok(Self {
            http,
            jar,
            base,
            tls,
        })
    }

    /// The server's origin as a folder name (`http_127.0.0.1_8080`): where what this client
    /// keeps of its accounts on that server lives.
    pub fn origin_label(&self) -> String {
        self.base
            .origin()
            .ascii_serialization()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .replace("___", "_")
    }

    /// The session cookie the server set, as `name=value`, to keep for the next run.
    pub fn session_cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find(|cookie| cookie.starts_with("chat_session="))
            .map(str::to_owned)
    }

    /// Sends `cookie` (`name=value`, from [`Connection::session_cookie`]) from now on.
    pub fn restore_session(&self, cookie: &str) {
        self.jar
            .add_cookie_str(&format!("{cookie}; Path=/"), &self.base);
    }

    fn url(&self, path: &str) -> Result<Url, CliError> {
        self.base
            .join(path)
            .map_err(|error| CliError::Usage(format!("{path}: {error}")))
    }

    /// Calls endpoint `E` with its path parameters and request body, decoding its answer
    /// (`()` for an endpoint answering without a body).
    ///
    /// # Errors
    /// [`CliError::Server`] for an error status, [`CliError::Network`] otherwise.
    pub async fn call<E: Endpoint>(
        &self,
        params: &E::Params,
        body: &E::Request,
    ) -> Result<E::Response, CliError> {
        self.call_with_query::<E>(params, &E::Query::default(), body)
            .await
    }

    /// [`Connection::call`] with a query.
    ///
    /// # Errors
    /// As [`Connection::call`].
    pub async fn call_with_query<E: Endpoint>(
        &self,
        params: &E::Params,
        query: &E::Query,
        body: &E::Request,
    ) -> Result<E::Response, CliError> {
        let url = self.url(&format!("{}{}", E::path(params), query.to_query()))?;
        let method = match E::INFO.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self.http.request(method, url);
        if E::INFO.request_body == BodyKind::Json {
            request = request.json(body);
        }
        let response = check(request.send().await?).await?;
        if E::INFO.response_body == BodyKind::Json {
            response
                .json()
                .await
                .map_err(|error| CliError::Network(format!("unexpected answer: {error}")))
        } else {
            // `()`, the type of every answer without a JSON body that this client calls.
            serde_json::from_value(serde_json::Value::Null)
                .map_err(|error| CliError::Network(format!("unexpected answer: {error}")))
        }
    }

    /// Opens the event WebSocket with the session cookie and this server's origin.
    ///
    /// # Errors
    /// [`CliError::Usage`] for an HTTPS server without `--ca-cert`, [`CliError::Network`]
    /// when the handshake fails (a certificate the authority did not sign among them).
    pub async fn events(&self) -> Result<Events, CliError> {
        let connector = match (self.base.scheme(), &self.tls) {
            ("https", Some(tls)) => Connector::Rustls(tls.clone()),
            ("https", None) => {
                return Err(CliError::Usage(
                    "an HTTPS server needs --ca-cert naming the authority of its certificate"
                        .into(),
                ))
            }
            _ => Connector::Plain,
        };
        let mut ws_url = self.url(&Connect::path(&NoParams))?;
        let scheme = if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        ws_url
            .set_scheme(scheme)
            .map_err(|()| CliError::Usage("server URL cannot carry a WebSocket".into()))?;
        let mut request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|error| CliError::Network(error.to_string()))?;
        if let Some(cookie) = self.jar.cookies(&self.base) {
            let cookie = HeaderValue::from_bytes(cookie.as_bytes())
                .map_err(|error| CliError::Network(error.to_string()))?;
            request.headers_mut().insert("cookie", cookie);
        }
        let origin = self.base.origin().ascii_serialization();
        let origin =
            HeaderValue::from_str(&origin).map_err(|error| CliError::Network(error.to_string()))?;
        request.headers_mut().insert("origin", origin);
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .map_err(|error| CliError::Network(format!("WebSocket: {error}")))?;
        Ok(Events { socket })
    }
}

/// The WebSocket's TLS settings: rustls with the ring provider, the safe default protocol
/// versions, and the certificates of `pem` as the only roots.
fn websocket_tls(pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        roots
            .add(certificate.map_err(|error| error.to_string())?)
            .map_err(|error| error.to_string())?;
    }
    if roots.is_empty() {
        return Err("no certificate in the file".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The server's event stream.
pub struct Events {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Events {
    /// The next event, skipping pings; `None` when the server closed the socket.
    ///
    /// # Errors
    /// [`CliError::Network`] for a broken socket or a frame that is no event.
    pub async fn next(&mut self) -> Result<Option<ServerEvent>, CliError> {
        while let Some(frame) = self.socket.next().await {
            match frame.map_err(|error| CliError::Network(error.to_string()))? {
                // An event this client does not know (a newer server) is passed over.
                Message::Text(text) => match serde_json::from_str(&text) {
                    Ok(event) => return Ok(Some(event)),
                    Err(error) => eprintln!("chat-cli: skipped an event it cannot read: {error}"),
                },
                Message::Close(_) => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, CliError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let (code, message) = match response.json::<ErrorBody>().await {
        Ok(body) => (body.code, body.error),
        Err(_) => (
            ErrorCode::Unknown,
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    Err(CliError::Server {
        status: status.as_u16(),
        code,
        message,
    })
}
