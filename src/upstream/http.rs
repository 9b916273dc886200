//! Streamable HTTP client transport to one backend: one POST per message, JSON or SSE answers, the GET stream.

mod modern;
mod stream;

pub use modern::Envelope;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, warn};
use url::Url;

use super::{AbortOnDrop, EventSink, UpstreamError, UpstreamEvent};
use crate::config::{BackendConfig, Timeouts, TransportConfig};
use crate::protocol::{Message, RequestId, methods};
use stream::Cursor;

/// `Mcp-Session-Id`: the backend's session, learned from the `initialize` POST.
const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`: the negotiated revision, sent on every request after `initialize`.
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Last-Event-ID`: where a resumed SSE stream picks up.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const POST_ACCEPT: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const SSE_ACCEPT: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("switchboard/", env!("CARGO_PKG_VERSION")));

/// Largest JSON body or single SSE event accepted from a backend.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// How many times a POST's SSE stream that ended early is resumed with `Last-Event-ID`.
const MAX_RESUMES: u32 = 5;

/// The keep-alive HTTP client of one backend: hyper's pooled client over plain TCP or rustls
/// (Mozilla roots; HTTP/2 when the server offers it by ALPN). It never follows redirects, so
/// configured credential headers cannot leak to another host.
pub type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// TCP (+ TLS for https) connector whose whole connect, TLS handshake included, is bounded by
/// `timeouts.connect`, as reqwest's was (hyper's own connect timeout covers TCP only).
#[derive(Clone, Debug)]
pub struct Connector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = <HttpsConnector<HttpConnector> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect (TCP and TLS) timed out",
                )
                .into()),
            }
        })
    }
}

/// Builds the keep-alive client of one HTTP backend. No overall request timeout: long tool
/// calls stream, and the owner enforces per-request deadlines.
pub(crate) fn build_client(t: &Timeouts) -> Result<Client, UpstreamError> {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(t.connect));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| UpstreamError::Connect(format!("cannot build the TLS client: {e}")))?
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(tcp);
    let connector = Connector {
        inner: tls,
        timeout: t.connect,
    };
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector),
    )
}

/// The W3C trace headers of a forwarded request, copied from its `params._meta` (where the session
/// wrote the context the backend continues).
pub(super) fn trace_headers(r: &crate::protocol::Request, headers: &mut HeaderMap) {
    for (name, value) in crate::telemetry::context::headers_from_meta(r.params.as_ref()) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

/// A Streamable HTTP connection: the backend session id and protocol version, plus background
/// tasks (in-flight POSTs, the GET stream) that end when this value is dropped or closed.
pub struct HttpUpstream {
    shared: Arc<Shared>,
    /// Never written: dropping it wakes every task's `stop.changed()`, ending them.
    _stop: watch::Sender<()>,
}

struct Shared {
    name: Arc<str>,
    /// The backend's URL, parsed once: no user info (moved to `headers`), no fragment.
    uri: Uri,
    client: Client,
    /// Configured headers (values marked sensitive), plus `User-Agent` and the URL's user info
    /// as Basic credentials unless configured otherwise.
    headers: HeaderMap,
    timeouts: Timeouts,
    events: mpsc::Sender<UpstreamEvent>,
    /// Set after the handshake: where a POST's JSON answer goes without the event channel.
    direct: std::sync::OnceLock<Arc<dyn EventSink>>,
    state: Mutex<SessionState>,
    stop: watch::Receiver<()>,
    /// Stateless backends: the client's answers awaited by MRTR rounds, by the id the gateway
    /// gave the server→client request it made of an input request.
    inputs: Mutex<
        std::collections::HashMap<
            RequestId,
            tokio::sync::oneshot::Sender<crate::protocol::Response>,
        >,
    >,
    next_input: std::sync::atomic::AtomicU64,
    /// Stateless backends: the calls in flight, by request id; dropping one's sender ends the
    /// call's task, which closes its POST stream (2026 cancellation).
    calls: Mutex<std::collections::HashMap<RequestId, tokio::sync::oneshot::Sender<()>>>,
}

#[derive(Default)]
struct SessionState {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    /// The session's standalone GET stream, once opened.
    get_stream: Option<AbortOnDrop>,
    /// Set while the backend is spoken to as a 2026-07-28 stateless server.
    modern: Option<Arc<Envelope>>,
    /// The handshake of this session is complete (`initialized` accepted): a `DirectSender`
    /// may send. False from `initialize` (a new or re-initialized session) and after expiry.
    open: bool,
}

/// Headers of the session a message is sent in, snapshotted at `send` time.
#[derive(Clone, Default)]
struct SessionHeaders {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
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
        let req =
            self.shared
                .client
                .request(self.shared.request(Method::DELETE, headers, Bytes::new()));
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
            Ok(Err(e)) => {
                debug!(backend = %backend, error = %describe(&e), "DELETE of backend session failed")
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

impl Shared {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns a task that ends when the connection is dropped.
    fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<()>
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
    async fn emit(&self, ev: UpstreamEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Hands an answer over directly when a sink is attached (no channel, no pump wake-up).
    async fn deliver(&self, ev: UpstreamEvent) -> bool {
        match self.direct.get() {
            Some(sink) => sink.deliver(ev),
            None => self.emit(ev).await,
        }
    }

    /// Base headers of every request: the configured ones plus the session's. Sized up front
    /// for what we and hyper (host, content-length) add, so the map is allocated once instead
    /// of growing on the hot path.
    fn request_headers(&self, session: &SessionHeaders, accept: HeaderValue) -> HeaderMap {
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
    fn request(&self, method: Method, headers: HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = headers;
        req
    }

    /// POSTs one message and turns the answer into events.
    ///
    /// For `notifications/initialized`, `ready` is signalled (or dropped, on any failure) once
    /// the backend accepted it and answered the GET stream that follows it. Backends may send
    /// requests and notifications that belong to no client request only on that stream (the
    /// TypeScript SDK drops them while it is not open: `server.createMessage` without a
    /// related request, `tools/list_changed` after tools registered on `initialized`), so
    /// the owner's first request must not reach the backend before it is open.
    async fn post(
        self: Arc<Self>,
        msg: Message,
        session: SessionHeaders,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut headers = self.request_headers(&session, POST_ACCEPT);
        headers.insert(CONTENT_TYPE, JSON);
        if let Message::Request(r) = &msg {
            trace_headers(r, &mut headers);
        }
        let req = self.request(Method::POST, headers, msg.to_bytes());
        let sent = self.client.request(req).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let error = self.request_error(e);
                return self.send_failed(msg, error).await;
            }
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && session.session_id.is_some() {
            self.expire(session.session_id.as_ref());
            self.emit(UpstreamEvent::SessionExpired { unsent: msg })
                .await;
            return;
        }
        if !status.is_success() {
            return self
                .send_failed(msg, UpstreamError::Status(status.as_u16()))
                .await;
        }
        if is_method(&msg, "initialize") {
            self.learn_session_id(&resp);
        }
        let initialized = is_method(&msg, methods::INITIALIZED);
        if is_media(&resp, "text/event-stream") {
            self.read_post_stream(resp, msg, session).await;
        } else if is_media(&resp, "application/json") {
            self.read_json(resp, msg).await;
        } // else 202 Accepted or an empty 200: nothing to deliver.
        if initialized {
            self.open_get_stream(ready);
        }
    }

    /// Reads a JSON body: the one answer to the POSTed message.
    async fn read_json(&self, resp: Response<Incoming>, msg: Message) {
        let body = match read_body(resp).await {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => return,
            Ok(b) => b,
            Err(e) => return self.send_failed(msg, e).await,
        };
        let related = request_id(&msg);
        match Message::parse(&body) {
            Ok(answer) => {
                self.observe(&msg, &answer);
                self.deliver(UpstreamEvent::Message {
                    msg: answer,
                    related,
                })
                .await;
            }
            Err(e) => {
                warn!(backend = %self.name, error = %e, "Backend sent an unparseable JSON body");
                self.send_failed(msg, UpstreamError::Protocol(e.to_string()))
                    .await;
            }
        }
    }

    /// Streams a POST's SSE answer, resuming with GET + `Last-Event-ID` if it ends before the
    /// response to the request arrived.
    async fn read_post_stream(
        &self,
        resp: Response<Incoming>,
        msg: Message,
        session: SessionHeaders,
    ) {
        let related = request_id(&msg);
        let mut cursor = Cursor::default();
        let mut outcome = self
            .consume(resp, Some(&msg), related.as_ref(), &mut cursor)
            .await;
        let mut resumes = 0;
        loop {
            let answered = match outcome {
                Ok(answered) => answered,
                Err(e) => {
                    debug!(backend = %self.name, error = %e, "Response stream broke");
                    false
                }
            };
            if answered || related.is_none() || self.events.is_closed() {
                return;
            }
            let Some(last) = cursor.last_event_id.clone() else {
                return self
                    .send_failed(
                        msg,
                        UpstreamError::Closed("response stream ended before the response".into()),
                    )
                    .await;
            };
            if resumes == MAX_RESUMES {
                return self
                    .send_failed(
                        msg,
                        UpstreamError::Closed("response stream could not be resumed".into()),
                    )
                    .await;
            }
            resumes += 1;
            debug!(backend = %self.name, resumes, "Response stream ended early; resuming with Last-Event-ID");
            tokio::time::sleep(stream::backoff(cursor.retry, resumes - 1)).await;
            outcome = match self.resume(&session, &last).await {
                Ok(resp) => {
                    self.consume(resp, Some(&msg), related.as_ref(), &mut cursor)
                        .await
                }
                Err(e) if resume_is_hopeless(&e) => return self.send_failed(msg, e).await,
                Err(e) => Err(e),
            };
        }
    }

    /// GET with `Last-Event-ID`: the spec's way to pick up a broken stream.
    async fn resume(
        &self,
        session: &SessionHeaders,
        last: &str,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut headers = self.request_headers(session, SSE_ACCEPT);
        let last = HeaderValue::from_str(last).map_err(|_| {
            UpstreamError::Protocol("SSE event id is not a valid header value".into())
        })?;
        headers.insert(LAST_EVENT_ID, last);
        let resp = self
            .client
            .request(self.request(Method::GET, headers, Bytes::new()))
            .await
            .map_err(|e| self.request_error(e))?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        Ok(resp)
    }

    /// Notes what the owner's traffic reveals: the protocol version in the `initialize` result.
    fn observe(&self, sent: &Message, answer: &Message) {
        let (Message::Request(req), Message::Response(resp)) = (sent, answer) else {
            return;
        };
        if req.method != "initialize" || req.id != resp.id {
            return;
        }
        let Ok(result) = &resp.outcome else { return };
        #[derive(Deserialize)]
        struct InitializeResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: Option<String>,
        }
        let version = serde_json::from_str::<InitializeResult>(result.get())
            .ok()
            .and_then(|r| r.protocol_version)
            .and_then(|v| HeaderValue::from_str(&v).ok());
        if let Some(v) = version {
            self.state().protocol_version = Some(v);
        }
    }

    /// Takes `Mcp-Session-Id` from the answer to `initialize`.
    fn learn_session_id(&self, resp: &Response<Incoming>) {
        let id = resp.headers().get(SESSION_ID).filter(|v| {
            // The spec allows visible ASCII only.
            v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b))
        });
        if let Some(id) = id {
            let mut id = id.clone();
            id.set_sensitive(true);
            self.state().session_id = Some(id);
        }
    }

    /// The backend forgot the session: clear it (unless a newer one replaced it already).
    fn expire(&self, sent: Option<&HeaderValue>) {
        let mut st = self.state();
        if st.session_id.as_ref() == sent {
            *st = SessionState::default();
        }
        debug!(backend = %self.name, "Backend session expired");
    }

    /// Opens the session's standalone GET stream (once per session); `ready` is signalled
    /// when the backend answered the first GET (dropped if there is none to open).
    fn open_get_stream(self: &Arc<Self>, ready: Option<tokio::sync::oneshot::Sender<()>>) {
        let mut st = self.state();
        if st.get_stream.is_some() {
            return;
        }
        let Some(session_id) = st.session_id.clone() else {
            return;
        };
        let session = SessionHeaders {
            session_id: Some(session_id),
            protocol_version: st.protocol_version.clone(),
        };
        let shared = Arc::clone(self);
        st.get_stream =
            Some(AbortOnDrop(self.spawn(async move {
                shared.get_stream(session, ready).await
            })));
    }

    async fn send_failed(&self, msg: Message, error: UpstreamError) {
        if matches!(msg, Message::Request(_)) {
            self.emit(UpstreamEvent::SendFailed { msg, error }).await;
        } else {
            warn!(backend = %self.name, %error, method = msg.method().unwrap_or("response"), "Could not deliver a message to the backend");
        }
    }

    /// Maps a client error; hyper's errors never carry the URL (which may hold a token) or
    /// headers.
    fn request_error(&self, e: hyper_util::client::legacy::Error) -> UpstreamError {
        if timed_out(&e) {
            UpstreamError::Timeout(self.timeouts.connect)
        } else if e.is_connect() {
            UpstreamError::Connect(describe(&e))
        } else {
            UpstreamError::Io(describe(&e))
        }
    }
}

/// Validated configured headers, their values marked sensitive so `Debug` hides them.
fn header_map(
    headers: &std::collections::BTreeMap<String, crate::config::Secret>,
) -> Result<HeaderMap, UpstreamError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| UpstreamError::Connect(format!("header name `{k}` is invalid")))?;
        let mut value = HeaderValue::from_str(v.expose())
            .map_err(|_| UpstreamError::Connect(format!("value of header `{k}` is invalid")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The backend URL as a request URI: http(s) only, without fragment. User info (which
/// `http::Uri` would put on the wire nowhere) becomes a Basic `Authorization` header unless
/// one is configured, as reqwest did.
fn parse_url(url: &str, headers: &mut HeaderMap) -> Result<Uri, UpstreamError> {
    let mut url = Url::parse(url)
        .map_err(|e| UpstreamError::Connect(format!("backend url is invalid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UpstreamError::Connect(
            "backend url must be http:// or https://".into(),
        ));
    }
    url.set_fragment(None);
    if !url.username().is_empty() || url.password().is_some() {
        let user = percent_decode(url.username());
        let password = url.password().map(percent_decode);
        let mut credentials = format!("{user}:");
        if let Some(p) = password {
            credentials.push_str(&p);
        }
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| UpstreamError::Connect("backend url credentials are invalid".into()))?;
        value.set_sensitive(true);
        if !headers.contains_key(AUTHORIZATION) {
            headers.insert(AUTHORIZATION, value);
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, USER_AGENT_VALUE);
    }
    // Not echoing the parser's error: the URL may hold a token.
    url.as_str()
        .parse::<Uri>()
        .map_err(|_| UpstreamError::Connect("backend url is not a valid request URI".into()))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a client error was the connect timeout (an I/O `TimedOut` among its causes).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its causes. hyper's errors carry neither the request URL nor headers.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether a response's media type (without parameters, any case) is `media`.
fn is_media(resp: &Response<Incoming>, media: &str) -> bool {
    let Some(v) = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(media)
}

/// Reads a whole body, refusing more than `MAX_MESSAGE_BYTES`.
async fn read_body(resp: Response<Incoming>) -> Result<Bytes, UpstreamError> {
    let too_big = || UpstreamError::Protocol("response body exceeds 16 MiB".into());
    let mut body = resp.into_body();
    if body
        .size_hint()
        .exact()
        .is_some_and(|n| n > MAX_MESSAGE_BYTES as u64)
    {
        return Err(too_big());
    }
    let Some(first) = next_chunk(&mut body).await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(|e| UpstreamError::Io(describe(&e)))?;
    if first.len() > MAX_MESSAGE_BYTES {
        return Err(too_big());
    }
    let Some(second) = next_chunk(&mut body).await else {
        // The usual case, a body in one chunk: hand it on without copying.
        return Ok(first);
    };
    let mut whole = BytesMut::from(&first[..]);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(|e| UpstreamError::Io(describe(&e)))?;
        if whole.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(too_big());
        }
        whole.extend_from_slice(&chunk);
        next = next_chunk(&mut body).await;
    }
    Ok(whole.freeze())
}

/// The next data chunk of a body (trailers skipped); None at its end.
async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Whether a failed resume says retrying cannot help: nobody accepts connections (the backend
/// is down), or the backend refused the stream for good (e.g. 404: it forgot the session).
/// Timeouts, I/O errors, 5xx, 408, 409 and 429 may pass, so they are retried with backoff.
fn resume_is_hopeless(e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Connect(_) => true,
        UpstreamError::Status(s) => (400..500).contains(s) && ![408, 409, 429].contains(s),
        _ => false,
    }
}

fn is_method(msg: &Message, method: &str) -> bool {
    msg.method() == Some(method)
}

fn request_id(msg: &Message) -> Option<RequestId> {
    match msg {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{UpstreamError, resume_is_hopeless};

    #[test]
    fn a_resume_is_hopeless_only_when_retrying_cannot_help() {
        assert!(resume_is_hopeless(&UpstreamError::Connect(
            "refused".into()
        )));
        assert!(resume_is_hopeless(&UpstreamError::Status(404)));
        assert!(resume_is_hopeless(&UpstreamError::Status(405)));
        for transient in [408, 409, 429, 500, 502, 503] {
            assert!(!resume_is_hopeless(&UpstreamError::Status(transient)));
        }
        assert!(!resume_is_hopeless(&UpstreamError::Timeout(
            std::time::Duration::from_secs(1)
        )));
        assert!(!resume_is_hopeless(&UpstreamError::Io("reset".into())));
    }
}
