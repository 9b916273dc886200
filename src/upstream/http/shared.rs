//! The state one HTTP connection's tasks share: the backend session (id, version, whether it is
//! open, the GET stream), where events go, and the request-building helpers every exchange uses.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, warn};

use super::client::{Client, describe, timed_out};
use super::wire::{PROTOCOL_VERSION, SESSION_ID};
use crate::config::Timeouts;
use crate::protocol::{Message, RequestId};
use crate::upstream::credentials::Credentials;
use crate::upstream::{AbortOnDrop, EventSink, UpstreamError, UpstreamEvent};

pub(super) struct Shared {
    pub(super) name: Arc<str>,
    /// The backend's URL, parsed once: no user info (moved to `headers`), no fragment.
    pub(super) uri: Uri,
    pub(super) client: Client,
    /// Configured headers (values marked sensitive), plus `User-Agent` and the URL's user info
    /// as Basic credentials unless configured otherwise.
    pub(super) headers: HeaderMap,
    /// The gateway's own credential for this backend (an OAuth token), set on every request by
    /// `send`. Requests are built here from configuration alone: nothing of the client's HTTP
    /// request (its `Authorization` above all) is ever copied onto them.
    pub(super) credentials: Credentials,
    pub(super) timeouts: Timeouts,
    pub(super) events: mpsc::Sender<UpstreamEvent>,
    /// Set after the handshake: where a POST's JSON answer goes without the event channel.
    pub(super) direct: std::sync::OnceLock<Arc<dyn EventSink>>,
    pub(super) state: Mutex<SessionState>,
    pub(super) stop: watch::Receiver<()>,
    /// Stateless backends: the client's answers awaited by MRTR rounds, by the id the gateway
    /// gave the server→client request it made of an input request.
    pub(super) inputs: Mutex<
        std::collections::HashMap<
            RequestId,
            tokio::sync::oneshot::Sender<crate::protocol::Response>,
        >,
    >,
    pub(super) next_input: std::sync::atomic::AtomicU64,
    /// Stateless backends: the calls in flight, by request id; dropping one's sender ends the
    /// call's task, which closes its POST stream (2026 cancellation).
    pub(super) calls: Mutex<std::collections::HashMap<RequestId, tokio::sync::oneshot::Sender<()>>>,
}

#[derive(Default)]
pub(super) struct SessionState {
    pub(super) session_id: Option<HeaderValue>,
    pub(super) protocol_version: Option<HeaderValue>,
    /// The session's standalone GET stream, once opened.
    pub(super) get_stream: Option<AbortOnDrop>,
    /// Set while the backend is spoken to as a 2026-07-28 stateless server.
    pub(super) modern: Option<Arc<Envelope>>,
    /// The handshake of this session is complete (`initialized` accepted): a `DirectSender`
    /// may send. False from `initialize` (a new or re-initialized session) and after expiry.
    pub(super) open: bool,
}

/// Headers of the session a message is sent in, snapshotted at `send` time.
#[derive(Clone, Default)]
pub(super) struct SessionHeaders {
    pub(super) session_id: Option<HeaderValue>,
    pub(super) protocol_version: Option<HeaderValue>,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns a task that ends when the connection is dropped.
    pub(super) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.stop.clone();
        // Boxed: a POST's future (hyper's included) is large, and tokio copies a task's
        // future several times while spawning and once more when it completes.
        let fut = Box::pin(fut);
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = stop.changed() => {}
                    () = fut => {}
                }
            }
            .in_current_span(),
        )
    }

    /// Hands an event to the owner; false once the owner is gone.
    pub(super) async fn emit(&self, ev: UpstreamEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Hands an answer over directly when a sink is attached (no channel, no pump wake-up).
    pub(super) async fn deliver(&self, ev: UpstreamEvent) -> bool {
        match self.direct.get() {
            Some(sink) => sink.deliver(ev),
            None => self.emit(ev).await,
        }
    }

    /// Base headers of every request: the configured ones plus the session's. Sized up front
    /// for what we and hyper (host, content-length) add, so the map is allocated once instead
    /// of growing on the hot path.
    pub(super) fn request_headers(
        &self,
        session: &SessionHeaders,
        accept: HeaderValue,
    ) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(self.headers.len() + 8);
        for (name, value) in &self.headers {
            h.append(name.clone(), value.clone());
        }
        h.insert(ACCEPT, accept);
        if let Some(s) = &session.session_id {
            h.insert(SESSION_ID, s.clone());
        }
        if let Some(v) = &session.protocol_version {
            h.insert(PROTOCOL_VERSION, v.clone());
        }
        h
    }

    /// A request to the backend's URL, built in place (no builder, no URL parsing).
    pub(super) fn request(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = headers;
        req
    }

    /// Sends one request with the gateway's credential for the backend (fetched or refreshed
    /// first when it has one). The only way requests leave for the backend. A 401 answer drops
    /// the cached token, so the next request fetches a fresh one.
    pub(super) async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let token = self.credentials.authorization().await?;
        if let Some(token) = &token {
            req.headers_mut().insert(AUTHORIZATION, token.clone());
        }
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| self.request_error(e))?;
        if resp.status() == StatusCode::UNAUTHORIZED
            && let Some(token) = &token
        {
            self.credentials.rejected(token);
        }
        Ok(resp)
    }

    pub(super) async fn send_failed(&self, msg: Message, error: UpstreamError) {
        if matches!(msg, Message::Request(_)) {
            self.emit(UpstreamEvent::SendFailed { msg, error }).await;
        } else {
            warn!(backend = %self.name, %error, method = msg.method().unwrap_or("response"), "Could not deliver a message to the backend");
        }
    }

    /// Maps a client error; hyper's errors never carry the URL (which may hold a token) or
    /// headers.
    pub(super) fn request_error(&self, e: hyper_util::client::legacy::Error) -> UpstreamError {
        if timed_out(&e) {
            UpstreamError::Timeout(self.timeouts.connect)
        } else if e.is_connect() {
            UpstreamError::Connect(describe(&e))
        } else {
            UpstreamError::Io(describe(&e))
        }
    }
}

/// What the gateway declares, per request, to a stateless backend.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub capabilities: Map<String, Value>,
    pub client_info: Value,
}
