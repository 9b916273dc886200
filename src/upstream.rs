//! Backend transports behind one enum: the session never knows whether a backend is HTTP, stdio or WebSocket.
//!
//! A connection is write-side only: `send` hands a message to the backend, and everything the
//! backend says (responses, notifications, server→client requests) arrives as `UpstreamEvent`s on
//! the channel given to `connect`. The owner (a `BackendSession` actor) does the MCP handshake.

pub mod credentials;
pub mod handshake;
pub mod http;
pub mod stdio;
pub mod websocket;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::{BackendConfig, TransportConfig};
use crate::protocol::{Message, RequestId};
use credentials::Credentials;

/// Capacity of the per-connection event channel; a backend that floods it is back-pressured.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Something the backend said, or the connection's end.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A message from the backend. `related` is the id of the gateway→backend request on
    /// whose response stream it arrived (HTTP SSE responses), when the transport knows it.
    Message {
        msg: Message,
        related: Option<RequestId>,
    },
    /// The backend's HTTP session expired (404 on a request carrying `Mcp-Session-Id`).
    /// `unsent` is the message that was rejected; the owner re-initializes and resends it.
    SessionExpired { unsent: Message },
    /// Sending one message failed without killing the connection (e.g. an HTTP POST error).
    /// For a request, the owner fails that request with `error`.
    SendFailed { msg: Message, error: UpstreamError },
    /// The connection is gone (process exited, socket closed). No more events follow.
    Closed { error: UpstreamError },
}

/// Where a transport may hand an event at once, from the task that received it, instead of
/// through the event channel: one task wake-up fewer per answer. Transports use it only for
/// events that need no ordering with others (a POST's single JSON answer).
pub trait EventSink: Send + Sync {
    /// Takes the event now; false once its owner is gone.
    fn deliver(&self, ev: UpstreamEvent) -> bool;
}

/// Why talking to a backend failed. Messages never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("backend sent an invalid message: {0}")]
    Protocol(String),
    #[error("transport closed: {0}")]
    Closed(String),
    #[error("I/O error: {0}")]
    Io(String),
    /// The gateway could not obtain its own credential for the backend (e.g. the token
    /// endpoint refused or is down). Never carries a secret.
    #[error("cannot obtain the gateway's credentials: {0}")]
    Credentials(String),
}

impl UpstreamError {
    /// Whether trying again (after reconnecting) may succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, UpstreamError::Protocol(_))
    }
}

/// Shared per-backend resources that outlive one connection: the pooled HTTP clients and the
/// gateway's credentials (one token cache per backend, shared by every session).
#[derive(Clone, Debug)]
pub struct UpstreamPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    /// One keep-alive client per Streamable HTTP backend, keyed by backend name, so each
    /// backend's connect timeout applies and its connections are shared by every session.
    http: HashMap<String, http::Client>,
    /// The dynamic credential of each backend that has `auth:`, keyed by backend name.
    credentials: HashMap<String, Credentials>,
}

impl UpstreamPool {
    /// One pool per gateway, built from the configured backends.
    pub fn new(backends: &[BackendConfig]) -> Result<Self, UpstreamError> {
        let mut http = HashMap::new();
        let mut credentials = HashMap::new();
        for b in backends {
            if let TransportConfig::StreamableHttp { .. } = b.transport {
                http.insert(b.name.clone(), http::build_client(&b.timeouts)?);
            }
            if b.auth.is_some() {
                // The token requests share the backend's pool (another host, its own connections).
                let client = match http.get(&b.name) {
                    Some(c) => c.clone(),
                    None => http::build_client(&b.timeouts)?,
                };
                credentials.insert(b.name.clone(), Credentials::for_backend(b, client)?);
            }
        }
        Ok(Self {
            inner: Arc::new(PoolInner { http, credentials }),
        })
    }

    /// The credential of `cfg`'s backend, shared by its connections; one built on the spot
    /// (with its own token cache) if the pool was built without this backend.
    pub fn credentials(&self, cfg: &BackendConfig) -> Result<Credentials, UpstreamError> {
        if let Some(c) = self.inner.credentials.get(&cfg.name) {
            return Ok(c.clone());
        }
        if cfg.auth.is_none() {
            return Ok(Credentials::none());
        }
        tracing::warn!(backend = %cfg.name, "Backend missing from the upstream pool; its token is not shared");
        Credentials::for_backend(cfg, http::build_client(&cfg.timeouts)?)
    }

    /// The pooled client of the HTTP backend `backend`, if the pool was built with it.
    pub fn http_client(&self, backend: &str) -> Option<&http::Client> {
        self.inner.http.get(backend)
    }
}

/// Aborts a background task when dropped, so a dropped connection leaves no task behind.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Cuts `s` to at most `max` bytes (on a char boundary) for a log line.
pub(crate) fn truncate_for_log(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An open connection to one backend.
#[derive(Debug)]
pub enum Upstream {
    Http(http::HttpUpstream),
    Stdio(stdio::StdioUpstream),
    WebSocket(websocket::WsUpstream),
}

impl Upstream {
    /// Opens a connection; events flow to `events` until `Closed` is sent.
    pub async fn connect(
        cfg: &BackendConfig,
        pool: &UpstreamPool,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Upstream, UpstreamError> {
        match &cfg.transport {
            TransportConfig::StreamableHttp { .. } => {
                let client = match pool.http_client(&cfg.name) {
                    Some(c) => c.clone(),
                    None => {
                        tracing::warn!(
                            backend = %cfg.name,
                            "Backend missing from the upstream pool; using an unshared HTTP client"
                        );
                        http::build_client(&cfg.timeouts)?
                    }
                };
                let credentials = pool.credentials(cfg)?;
                Ok(Upstream::Http(http::HttpUpstream::new(
                    cfg,
                    client,
                    credentials,
                    events,
                )?))
            }
            TransportConfig::Stdio { .. } => Ok(Upstream::Stdio(
                stdio::StdioUpstream::spawn(cfg, events).await?,
            )),
            TransportConfig::WebSocket { .. } => Ok(Upstream::WebSocket(
                websocket::WsUpstream::connect(cfg, &pool.credentials(cfg)?, events).await?,
            )),
        }
    }

    /// Sends one message. Returns once it is handed to the transport (not when answered);
    /// over HTTP, `notifications/initialized` waits until the backend accepted it and its GET
    /// stream is open (see `HttpUpstream::send`).
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        match self {
            Upstream::Http(u) => u.send(msg).await,
            Upstream::Stdio(u) => u.send(msg).await,
            Upstream::WebSocket(u) => u.send(msg).await,
        }
    }

    /// After the handshake: lets the transport deliver answers straight to `sink`, and gives a
    /// sender that sends without a hop through the connection's owner. HTTP only (a POST is
    /// spawned either way); stdio and WebSocket keep their single writer.
    pub fn attach_direct(&self, sink: Arc<dyn EventSink>) -> Option<http::DirectSender> {
        match self {
            Upstream::Http(u) => Some(u.attach_direct(sink)),
            Upstream::Stdio(_) | Upstream::WebSocket(_) => None,
        }
    }

    /// Ends the backend session (HTTP DELETE, stdio: close stdin then kill, WS: close frame).
    pub async fn close(self) {
        match self {
            Upstream::Http(u) => u.close().await,
            Upstream::Stdio(u) => u.close().await,
            Upstream::WebSocket(u) => u.close().await,
        }
    }

    pub fn transport_name(&self) -> &'static str {
        match self {
            Upstream::Http(_) => "streamable-http",
            Upstream::Stdio(_) => "stdio",
            Upstream::WebSocket(_) => "websocket",
        }
    }
}
