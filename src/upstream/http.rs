//! Streamable HTTP client transport to one backend: one POST per message, JSON or SSE answers,
//! the GET stream. This module is the connection's face (`HttpUpstream`, `DirectSender`); the
//! modules below it import only each other, downwards: `client` ← `wire` ← `shared` ←
//! `stream` ← `post` ← `modern`.

mod client;
mod modern;
mod post;
mod shared;
mod stream;
mod wire;

pub use client::{Client, Connector};
pub(crate) use client::{build_client, describe, header_map};
pub use shared::Envelope;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::credentials::Credentials;
use super::{EventSink, UpstreamError, UpstreamEvent};
use crate::config::{BackendConfig, TransportConfig};
use crate::protocol::{Message, methods};
use client::parse_url;
use shared::{SessionHeaders, SessionState, Shared};
use wire::{PROTOCOL_VERSION, SESSION_ID, is_method};

/// A Streamable HTTP connection: the backend session id and protocol version, plus background
/// tasks (in-flight POSTs, the GET stream) that end when this value is dropped or closed.
pub struct HttpUpstream {
    shared: Arc<Shared>,
    /// Never written: dropping it wakes every task's `stop.changed()`, ending them.
    _stop: watch::Sender<()>,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("backend", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// Prepares the connection; nothing is sent until the owner's first message.
    pub fn new(
        cfg: &BackendConfig,
        client: Client,
        credentials: Credentials,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Self, UpstreamError> {
        let TransportConfig::StreamableHttp { url, headers } = &cfg.transport else {
            return Err(UpstreamError::Connect(format!(
                "backend {} is not a streamable-http backend",
                cfg.name
            )));
        };
        let mut headers = header_map(headers)?;
        let uri = parse_url(url, &mut headers)?;
        let (stop_tx, stop) = watch::channel(());
        let shared = Shared {
            name: cfg.name.as_str().into(),
            uri,
            client,
            headers,
            credentials,
            timeouts: cfg.timeouts,
            events,
            direct: std::sync::OnceLock::new(),
            state: Mutex::new(SessionState::default()),
            stop,
            inputs: Mutex::default(),
            next_input: std::sync::atomic::AtomicU64::new(1),
            calls: Mutex::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
            _stop: stop_tx,
        })
    }

    /// Starts the POST of `msg` in the background and returns at once, except for
    /// `notifications/initialized`: that returns once the backend accepted it and answered the
    /// GET stream opened after it (bounded by the connect timeout), so nothing the owner sends
    /// next overtakes the end of the handshake.
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        if self.shared.events.is_closed() {
            return Err(UpstreamError::Closed("event receiver is gone".into()));
        }
        let session = {
            let mut st = self.shared.state();
            if let Some(env) = st.modern.clone() {
                drop(st);
                self.shared.send_modern(msg, env);
                return Ok(());
            }
            if is_method(&msg, "initialize") {
                // A new handshake starts a new session: forget the old one and its GET stream.
                *st = SessionState::default();
            }
            SessionHeaders {
                session_id: st.session_id.clone(),
                protocol_version: st.protocol_version.clone(),
            }
        };
        // `notifications/initialized` ends the handshake: the owner's next messages must not
        // overtake it, and the GET stream must be open before them (see `post`).
        let (ready, opened) = if is_method(&msg, methods::INITIALIZED) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let shared = Arc::clone(&self.shared);
        // Detached on purpose: the task ends on its own or when `_stop` is dropped.
        drop(
            self.shared
                .spawn(async move { shared.post(msg, session, ready).await }),
        );
        if let Some(opened) = opened {
            // Bounded: a backend that never answers only delays the handshake. Whatever the
            // outcome (202 and the GET stream's answer, an error, the bound), go on.
            let bound = self.shared.timeouts.connect;
            if tokio::time::timeout(bound, opened).await.is_err() {
                debug!(backend = %self.shared.name, ?bound, "No answer to notifications/initialized or the GET stream in time; going on");
            }
            self.shared.state().open = true;
        }
        Ok(())
    }

    /// Lets POSTs' JSON answers go straight to `sink`; returns a sender for the owner's parent.
    pub fn attach_direct(&self, sink: Arc<dyn EventSink>) -> DirectSender {
        let _ = self.shared.direct.set(sink);
        DirectSender(Arc::clone(&self.shared))
    }

    /// Speaks 2026-07-28 (stateless, `envelope` on every request) from now on, or, with
    /// `None`, the sessionful revisions again.
    pub fn set_modern(&self, envelope: Option<Envelope>) {
        let mut st = self.shared.state();
        *st = SessionState::default();
        st.modern = envelope.map(Arc::new);
    }

    /// Ends the backend session with DELETE (405 means the server does not allow it), then
    /// stops every background task.
    pub async fn close(self) {
        let (session_id, protocol_version) = {
            let mut st = self.shared.state();
            st.get_stream = None;
            (st.session_id.take(), st.protocol_version.take())
        };
        let Some(session_id) = session_id else { return };
        let mut headers = self.shared.headers.clone();
        headers.insert(SESSION_ID, session_id);
        if let Some(v) = protocol_version {
            headers.insert(PROTOCOL_VERSION, v);
        }
        let req = self
            .shared
            .send(self.shared.request(Method::DELETE, headers, Bytes::new()));
        let backend = &self.shared.name;
        match tokio::time::timeout(self.shared.timeouts.connect, req).await {
            Ok(Ok(r))
                if r.status().is_success() || r.status() == StatusCode::METHOD_NOT_ALLOWED =>
            {
                debug!(backend = %backend, status = r.status().as_u16(), "Backend session ended");
            }
            Ok(Ok(r)) => {
                debug!(backend = %backend, status = r.status().as_u16(), "Backend refused DELETE of its session");
            }
            Ok(Err(error)) => {
                debug!(backend = %backend, %error, "DELETE of backend session failed")
            }
            Err(_) => debug!(backend = %backend, "DELETE of backend session timed out"),
        }
    }
}

/// Sends on an HTTP connection without going through its owner (the BackendSession): a POST is
/// spawned from the caller's task. It takes only what can go out at once.
#[derive(Clone)]
pub struct DirectSender(Arc<Shared>);

impl std::fmt::Debug for DirectSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DirectSender").field(&self.0.name).finish()
    }
}

impl DirectSender {
    /// Starts the POST of `msg`, or gives `msg` back when the connection cannot send it now —
    /// closed, or its session not open (re-initializing, expired): the owner takes it then.
    #[allow(clippy::result_large_err)] // the message itself is given back, not an error
    pub fn try_send(&self, msg: Message) -> Result<(), Message> {
        let shared = &self.0;
        if shared.events.is_closed() || shared.stop.has_changed().is_err() {
            return Err(msg);
        }
        let session = {
            let st = shared.state();
            if let Some(env) = st.modern.clone() {
                drop(st);
                shared.send_modern(msg, env);
                return Ok(());
            }
            if !st.open || is_method(&msg, "initialize") || is_method(&msg, methods::INITIALIZED) {
                return Err(msg);
            }
            SessionHeaders {
                session_id: st.session_id.clone(),
                protocol_version: st.protocol_version.clone(),
            }
        };
        let task = Arc::clone(shared);
        drop(shared.spawn(async move { task.post(msg, session, None).await }));
        Ok(())
    }
}
