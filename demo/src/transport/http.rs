//! Streamable HTTP transport (MCP 2025-11-25, also 2025-06-18 and 2025-03-26) at `/mcp`:
//! sessions by `Mcp-Session-Id`, JSON or SSE responses, a GET stream for unsolicited
//! notifications, resumable POST streams, DELETE to end a session.

mod guard;
mod sse;
mod streams;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::core::hub::HubReceiver;
use crate::core::{Frame, Server, Session, TraceHeaders, lock};
use crate::jsonrpc::{Incoming, RpcError, decode, encode_response};
use streams::StreamTable;

const SESSION_HEADER: &str = "mcp-session-id";
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Sessions idle this long (no request, no open GET stream, nothing in flight) are dropped.
const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// One HTTP session: the core session plus its streams.
struct HttpSession {
    core: Arc<Session>,
    streams: Arc<Mutex<StreamTable>>,
    standalone_open: AtomicBool,
    /// Last request time, as milliseconds since [`HttpState::epoch`].
    last_seen_ms: AtomicU64,
    ended: watch::Sender<bool>,
}

impl HttpSession {
    /// SEP-1699 priming events are sent to clients that negotiated 2025-11-25 or later.
    fn priming(&self) -> bool {
        self.core.protocol_version().as_str() >= "2025-11-25"
    }
}

struct HttpState {
    server: Arc<Server>,
    sessions: Mutex<HashMap<String, Arc<HttpSession>>>,
    epoch: Instant,
}

impl HttpState {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Creates and registers a new session with a random id.
    fn create_session(&self) -> Arc<HttpSession> {
        let sid = format!("{:032x}", rand::random::<u128>());
        let (ended, _) = watch::channel(false);
        let session = Arc::new(HttpSession {
            core: Arc::new(Session::new(Some(sid.clone()))),
            streams: Arc::new(Mutex::new(StreamTable::default())),
            standalone_open: AtomicBool::new(false),
            last_seen_ms: AtomicU64::new(self.now_ms()),
            ended,
        });
        lock(&self.sessions).insert(sid, Arc::clone(&session));
        session
    }

    /// Ends one session: forget it, cancel its work, close its streams.
    fn end(&self, session: &HttpSession) {
        if let Some(id) = session.core.id() {
            lock(&self.sessions).remove(id);
        }
        session.core.cancel_all();
        streams::close_all(&session.streams);
        let _ = session.ended.send(true);
    }

    /// Drops sessions that have been idle for [`SESSION_IDLE`].
    fn sweep(&self, now: u64) {
        let idle_ms = u64::try_from(SESSION_IDLE.as_millis()).unwrap_or(u64::MAX);
        let stale: Vec<Arc<HttpSession>> = lock(&self.sessions)
            .values()
            .filter(|s| {
                now.saturating_sub(s.last_seen_ms.load(Ordering::Relaxed)) > idle_ms
                    && !s.standalone_open.load(Ordering::Acquire)
                    && !s.core.busy()
            })
            .cloned()
            .collect();
        for s in stale {
            self.end(&s);
        }
    }
}

/// Serves Streamable HTTP at `/mcp` on `listener` until the listener fails.
pub(crate) async fn serve(server: Arc<Server>, listener: TcpListener) -> anyhow::Result<()> {
    let state = Arc::new(HttpState {
        server,
        sessions: Mutex::new(HashMap::new()),
        epoch: Instant::now(),
    });
    let sweeper = {
        let state = Arc::downgrade(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SESSION_IDLE / 10);
            loop {
                tick.tick().await;
                match state.upgrade() {
                    Some(state) => state.sweep(state.now_ms()),
                    None => break,
                }
            }
        })
    };
    let app = Router::new()
        .route("/mcp", post(on_post).get(on_get).delete(on_delete))
        .with_state(state);
    let served = axum::serve(listener, app).await;
    sweeper.abort();
    served?;
    Ok(())
}

/// A refused HTTP request: status, JSON-RPC error code and message.
struct Rejection(StatusCode, i64, &'static str);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    let body =
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_body(body: Bytes) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// Common checks; returns the session named by `Mcp-Session-Id` (400 if absent, 404 if unknown).
fn session_for(st: &HttpState, headers: &HeaderMap) -> Result<Arc<HttpSession>, Rejection> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(Rejection(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: missing Mcp-Session-Id",
        ));
    };
    let found = lock(&st.sessions).get(id).cloned();
    let session = found.ok_or(Rejection(
        StatusCode::NOT_FOUND,
        -32001,
        "Session not found",
    ))?;
    if !guard::version_ok(headers) {
        let msg = "Bad Request: unsupported MCP-Protocol-Version";
        return Err(Rejection(StatusCode::BAD_REQUEST, -32000, msg));
    }
    session.last_seen_ms.store(st.now_ms(), Ordering::Relaxed);
    Ok(session)
}

fn forbidden_host(headers: &HeaderMap) -> Option<Response> {
    (!guard::host_and_origin_ok(headers)).then(|| {
        error(
            StatusCode::FORBIDDEN,
            -32000,
            "Forbidden: Host/Origin not allowed",
        )
    })
}

async fn on_post(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = forbidden_host(&headers) {
        return r;
    }
    if !guard::accepts(&headers, &["application/json", "text/event-stream"]) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: Accept must list application/json and text/event-stream",
        );
    }
    if !guard::is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            -32000,
            "Content-Type must be application/json",
        );
    }
    let msg = match decode(&body) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                json_body(encode_response(&Value::Null, &Err(e))),
            )
                .into_response();
        }
    };
    if let Incoming::Request { id, method, params } = &msg
        && method == "initialize"
    {
        return initialize(&st, &headers, id, params);
    }
    let session = match session_for(&st, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match msg {
        Incoming::Notification { method, params } => {
            st.server
                .handle_notification(&session.core, &method, &params);
            StatusCode::ACCEPTED.into_response()
        }
        Incoming::Response { id, result } => {
            session.core.resolve(&id, result);
            StatusCode::ACCEPTED.into_response()
        }
        Incoming::Request { id, method, params } => {
            request(&st, &session, id, method, params, trace_headers(&headers)).await
        }
    }
}

fn initialize(st: &HttpState, headers: &HeaderMap, id: &Value, params: &Value) -> Response {
    if headers.contains_key(SESSION_HEADER) {
        let err = RpcError::new(-32600, "Invalid Request: session already initialized");
        return (
            StatusCode::BAD_REQUEST,
            json_body(encode_response(id, &Err(err))),
        )
            .into_response();
    }
    let session = st.create_session();
    let result = st.server.initialize(&session.core, params);
    let sid = session.core.id().unwrap_or_default().to_owned();
    let mut resp = json_body(encode_response(id, &Ok(result)));
    if let Ok(v) = sid.parse() {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

async fn request(
    st: &HttpState,
    session: &HttpSession,
    id: Value,
    method: String,
    params: Value,
    trace: TraceHeaders,
) -> Response {
    let (tx, mut rx) = mpsc::unbounded_channel();
    st.server.spawn_request(
        Arc::clone(&session.core),
        id,
        method,
        params,
        tx,
        Some(trace),
    );
    match rx.recv().await {
        Some(Frame::Final(body)) => json_body(body),
        Some(first) => streams::open(&session.streams, session.priming(), first, rx),
        // Cancelled before producing anything: an empty stream, no response (per spec).
        None => sse::response(None, mpsc::unbounded_channel().1),
    }
}

/// The W3C trace-context headers of a POST, handed to the request's context.
fn trace_headers(headers: &HeaderMap) -> TraceHeaders {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    TraceHeaders {
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
        baggage: get("baggage"),
    }
}

async fn on_get(State(st): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(r) = forbidden_host(&headers) {
        return r;
    }
    if !guard::accepts(&headers, &["text/event-stream"]) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: Accept must list text/event-stream",
        );
    }
    let session = match session_for(&st, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok())
        && let Some(resp) = streams::resume(&session.streams, last)
    {
        return resp;
    }
    if session.standalone_open.swap(true, Ordering::AcqRel) {
        return error(
            StatusCode::CONFLICT,
            -32000,
            "Conflict: a GET stream is already open for this session",
        );
    }
    let (tx, rx) = mpsc::unbounded_channel();
    // Subscribe before answering so no change published after this response is missed.
    let hub = st.server.hub().subscribe();
    tokio::spawn(standalone(hub, session, tx));
    sse::response(None, rx)
}

/// Feeds a session's standalone GET stream: hub notifications and keep-alives.
async fn standalone(
    mut hub: HubReceiver,
    session: Arc<HttpSession>,
    tx: mpsc::UnboundedSender<Bytes>,
) {
    let mut ended = session.ended.subscribe();
    let mut tick = tokio::time::interval(KEEP_ALIVE);
    tick.tick().await;
    loop {
        tokio::select! {
            () = tx.closed() => break,
            _ = ended.changed() => break,
            note = hub.next_for(&session.core) => match note {
                Some(note) if tx.send(sse::event(None, &note)).is_ok() => {}
                _ => break,
            },
            _ = tick.tick() => if tx.send(sse::comment("keep-alive")).is_err() { break },
        }
    }
    session.standalone_open.store(false, Ordering::Release);
}

async fn on_delete(State(st): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(r) = forbidden_host(&headers) {
        return r;
    }
    let session = match session_for(&st, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    st.end(&session);
    StatusCode::OK.into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Fixture;

    #[tokio::test]
    async fn sweep_drops_only_idle_sessions() {
        let st = HttpState {
            server: Server::new(Fixture::Lab),
            sessions: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        };
        let idle = st.create_session();
        let streaming = st.create_session();
        streaming.standalone_open.store(true, Ordering::Release);
        let ended = idle.ended.subscribe();
        let later = u64::try_from(SESSION_IDLE.as_millis()).unwrap() + 1_000;

        st.sweep(st.now_ms());
        assert_eq!(lock(&st.sessions).len(), 2, "nothing is idle yet");
        st.sweep(later);
        let left: Vec<String> = lock(&st.sessions).keys().cloned().collect();
        assert_eq!(left, vec![streaming.core.id().unwrap().to_owned()]);
        assert!(
            ended.has_changed().unwrap(),
            "the swept session's streams were told to end"
        );
    }
}
