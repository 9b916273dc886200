//! The Streamable HTTP transport: the sessionful revisions (2025-03-26 / 2025-06-18 / 2025-11-25:
//! POST messages, GET the server→client stream, DELETE the session) here, and a dispatch of
//! session-less 2026-07-28 POSTs to `stateless`.

#![allow(clippy::result_large_err)] // handlers return ready-made HTTP responses as errors

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};

use super::reply::{self, SESSION_HEADER};
use super::{ListenerState, handshake, sse_body, stateless};
use crate::policy::Principal;
use crate::protocol::jsonrpc::codes;
use crate::protocol::{Message, ProtocolVersion, Request, methods};
use crate::session::streams::event_id;
use crate::session::{Scope, SessionError, SessionHandle};
use crate::telemetry::{Denial, Origin};

const VERSION_HEADER: &str = "mcp-protocol-version";

pub(super) async fn post(
    State(st): State<Arc<ListenerState>>,
    Extension(origin): Extension<Origin>,
    Extension(who): Extension<Arc<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let scope = Scope::Merged(st.cfg.naming);
    handle_post(&st, scope, &who, &headers, body, origin).await
}

pub(super) async fn get(
    State(st): State<Arc<ListenerState>>,
    Extension(who): Extension<Arc<Principal>>,
    headers: HeaderMap,
) -> Response {
    let scope = Scope::Merged(st.cfg.naming);
    handle_get(&st, scope, &who, &headers).await
}

pub(super) async fn delete(
    State(st): State<Arc<ListenerState>>,
    Extension(who): Extension<Arc<Principal>>,
    headers: HeaderMap,
) -> Response {
    let scope = Scope::Merged(st.cfg.naming);
    handle_delete(&st, scope, &who, &headers)
}

pub(super) async fn post_virtual(
    State(st): State<Arc<ListenerState>>,
    Extension(origin): Extension<Origin>,
    Extension(who): Extension<Arc<Principal>>,
    Path(backend): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match virtual_scope(&st, &backend) {
        Ok(scope) => handle_post(&st, scope, &who, &headers, body, origin).await,
        Err(r) => r,
    }
}

pub(super) async fn get_virtual(
    State(st): State<Arc<ListenerState>>,
    Extension(who): Extension<Arc<Principal>>,
    Path(backend): Path<String>,
    headers: HeaderMap,
) -> Response {
    match virtual_scope(&st, &backend) {
        Ok(scope) => handle_get(&st, scope, &who, &headers).await,
        Err(r) => r,
    }
}

pub(super) async fn delete_virtual(
    State(st): State<Arc<ListenerState>>,
    Extension(who): Extension<Arc<Principal>>,
    Path(backend): Path<String>,
    headers: HeaderMap,
) -> Response {
    match virtual_scope(&st, &backend) {
        Ok(scope) => handle_delete(&st, scope, &who, &headers),
        Err(r) => r,
    }
}

fn virtual_scope(st: &ListenerState, backend: &str) -> Result<Scope, Response> {
    if !st.cfg.virtual_servers {
        return Err(reply::plain(
            StatusCode::NOT_FOUND,
            "virtual servers are disabled on this listener",
        ));
    }
    match st.shared.catalog.backend_index(backend) {
        Some(i) => Ok(Scope::Backend(i)),
        None => Err(reply::plain(StatusCode::NOT_FOUND, "no such backend")),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Accept` must list both JSON and SSE for POST (either may come back).
fn accepts(h: &HeaderMap, json: bool, sse: bool) -> bool {
    // Every media range of every Accept header, without joining them into a new string.
    let has = |t: &str| {
        h.get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| {
                let m = p.split(';').next().unwrap_or("").trim();
                m.eq_ignore_ascii_case(t) || m == "*/*"
            })
    };
    (!json || has("application/json")) && (!sse || has("text/event-stream"))
}

/// Looks up the session named by `Mcp-Session-Id`: 400 when missing, 404 when unknown — and 404
/// when another principal created it: a session id is no credential.
fn session(
    st: &ListenerState,
    scope: Scope,
    who: &Principal,
    h: &HeaderMap,
) -> Result<SessionHandle, Response> {
    let Some(id) = header_str(h, SESSION_HEADER) else {
        st.shared.telemetry.metrics.denied(Denial::UnknownSession);
        return Err(reply::rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            codes::INVALID_REQUEST,
            "Mcp-Session-Id header is required (initialize first)",
        ));
    };
    match st.registry.get(id) {
        Some(s) if s.scope == scope && !s.stateless && s.principal.same_as(who) => {
            s.touch(st.shared.now_ms());
            Ok(s)
        }
        found => {
            st.shared.telemetry.metrics.denied(match found {
                Some(s) if !s.principal.same_as(who) => {
                    tracing::warn!(session = %s.id, principal = who.key(), "Refused a session presented by a principal other than its creator");
                    Denial::ForeignSession
                }
                _ => Denial::UnknownSession,
            });
            Err(reply::rpc_error(
                StatusCode::NOT_FOUND,
                None,
                codes::INVALID_REQUEST,
                "session not found or ended; initialize a new session",
            ))
        }
    }
}

/// `MCP-Protocol-Version`, when sent, must be a revision we serve.
fn check_version(h: &HeaderMap) -> Result<(), Response> {
    match header_str(h, VERSION_HEADER) {
        None => Ok(()),
        Some(v) => match ProtocolVersion::parse(v) {
            Some(p) if p.era() == crate::protocol::Era::Sessionful => Ok(()),
            _ => Err(reply::rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                codes::INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {:?}; supported: 2025-03-26, 2025-06-18, 2025-11-25",
                    v.chars().take(40).collect::<String>()
                ),
            )),
        },
    }
}

async fn read_body(
    st: &ListenerState,
    h: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, Response> {
    let limit = st.cfg.max_body_bytes;
    let too_big = || {
        st.shared.telemetry.metrics.denied(Denial::OversizedBody);
        reply::rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            codes::INVALID_REQUEST,
            format!("request body exceeds the {limit}-byte limit"),
        )
    };
    if let Some(len) =
        header_str(h, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_big());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_big())
}

async fn handle_post(
    st: &ListenerState,
    scope: Scope,
    who: &Arc<Principal>,
    h: &HeaderMap,
    body: Body,
    origin: Origin,
) -> Response {
    let ct = header_str(h, header::CONTENT_TYPE.as_str()).unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return reply::rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            codes::INVALID_REQUEST,
            "Content-Type must be application/json",
        );
    }
    if !accepts(h, true, true) {
        return reply::rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            codes::INVALID_REQUEST,
            "Accept must include application/json and text/event-stream",
        );
    }
    let bytes = match read_body(st, h, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let msg = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            st.shared.telemetry.metrics.denied(Denial::Malformed);
            return reply::rpc_error(StatusCode::BAD_REQUEST, None, e.code(), e.to_string());
        }
    };
    if let Message::Request(req) = msg {
        if req.method == methods::INITIALIZE {
            return initialize(st, scope, req, origin, who.clone()).await;
        }
        return post_message(st, scope, who, h, Message::Request(req), origin).await;
    }
    post_message(st, scope, who, h, msg, origin).await
}

async fn post_message(
    st: &ListenerState,
    scope: Scope,
    who: &Arc<Principal>,
    h: &HeaderMap,
    msg: Message,
    origin: Origin,
) -> Response {
    if stateless::applies(h, &msg) {
        return stateless::handle(st, scope, who, h, msg, origin).await;
    }
    if let Err(r) = check_version(h) {
        st.shared.telemetry.metrics.denied(Denial::ProtocolVersion);
        return r;
    }
    let s = match session(st, scope, who, h) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match msg {
        Message::Request(req) => forward_request(st, &s, req, origin).await,
        other => match s.deliver_from(other, origin) {
            Ok(()) => reply::accepted(),
            Err(_) => reply::rpc_error(
                StatusCode::NOT_FOUND,
                None,
                codes::INVALID_REQUEST,
                "session ended",
            ),
        },
    }
}

async fn forward_request(
    st: &ListenerState,
    s: &SessionHandle,
    req: Request,
    origin: Origin,
) -> Response {
    let id = req.id.clone();
    let (stream, mut rx) = match s.request(req, origin) {
        Ok(x) => x,
        Err(SessionError::Busy(n)) => {
            st.shared.telemetry.metrics.denied(Denial::InFlightLimit);
            return reply::rpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                Some(id),
                codes::LIMIT_EXCEEDED,
                format!("too many requests in flight on this session (limit {n})"),
            );
        }
        Err(_) => {
            return reply::rpc_error(
                StatusCode::NOT_FOUND,
                Some(id),
                codes::INVALID_REQUEST,
                "session ended",
            );
        }
    };
    match rx.recv().await {
        Some(o) if o.last && o.event_id.is_none() => {
            let status = o.status.and_then(|s| StatusCode::from_u16(s).ok());
            reply::json(status.unwrap_or(StatusCode::OK), o.json)
        }
        Some(first) => sse_body::response(&event_id(stream, 0), Some(first), rx, None),
        None if st.registry.get(&s.id).is_none() => reply::rpc_error(
            StatusCode::NOT_FOUND,
            Some(id),
            codes::INVALID_REQUEST,
            "session ended",
        ),
        None => reply::rpc_error(
            StatusCode::OK,
            Some(id),
            codes::REQUEST_CANCELLED,
            "request cancelled",
        ),
    }
}

async fn initialize(
    st: &ListenerState,
    scope: Scope,
    req: Request,
    origin: Origin,
    principal: Arc<Principal>,
) -> Response {
    match handshake::initialize(st, scope, req, origin, principal).await {
        Ok((handle, body)) => reply::with_session(reply::json(StatusCode::OK, body), &handle.id),
        Err(refused) => reply::json(refused.status, refused.body),
    }
}

async fn handle_get(st: &ListenerState, scope: Scope, who: &Principal, h: &HeaderMap) -> Response {
    if let Some(r) = stateless::refuse_non_post(h) {
        return r;
    }
    if !accepts(h, false, true) {
        return reply::plain(
            StatusCode::NOT_ACCEPTABLE,
            "GET needs Accept: text/event-stream",
        );
    }
    if let Err(r) = check_version(h) {
        st.shared.telemetry.metrics.denied(Denial::ProtocolVersion);
        return r;
    }
    let s = match session(st, scope, who, h) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let last = header_str(h, "last-event-id").map(str::to_string);
    let resuming = last.clone();
    match s.open_stream(last).await {
        Ok((stream, position, rx)) => {
            let priming = resuming.unwrap_or_else(|| event_id(stream, position));
            sse_body::response(&priming, None, rx, Some(st.shared.limits.keep_alive))
        }
        Err(SessionError::Resume(e)) => {
            reply::plain(StatusCode::BAD_REQUEST, &format!("cannot resume: {e}"))
        }
        Err(_) => reply::rpc_error(
            StatusCode::NOT_FOUND,
            None,
            codes::INVALID_REQUEST,
            "session ended",
        ),
    }
}

fn handle_delete(st: &ListenerState, scope: Scope, who: &Principal, h: &HeaderMap) -> Response {
    if let Some(r) = stateless::refuse_non_post(h) {
        return r;
    }
    let s = match session(st, scope, who, h) {
        Ok(s) => s,
        Err(r) => return r,
    };
    st.registry.remove(&s.id, "client ended the session");
    tracing::info!(session = %s.id, "Session ended by client");
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    r
}
