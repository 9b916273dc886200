//! The WebSocket transport (`/ws`, subprotocol `mcp`): one connection is one developer session
//! with the semantics of a 2025 session; each text frame carries one JSON-RPC message.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message as Frame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{ListenerState, handshake};
use crate::protocol::jsonrpc::{codes, error_without_id};
use crate::protocol::{ErrorObject, Message, RequestId, Response as RpcResponse, methods};
use crate::session::{Outbound, Scope, SessionError, SessionHandle};
use crate::telemetry::{Denial, Origin};

/// How often the gateway pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Frames queued for one client before the connection is considered stuck and closed.
const OUT_CAPACITY: usize = 512;

pub(super) async fn upgrade(
    State(st): State<Arc<ListenerState>>,
    Extension(origin): Extension<Origin>,
    // The connection is one session: its principal is the upgrade request's.
    Extension(principal): Extension<Arc<crate::policy::Principal>>,
    ws: WebSocketUpgrade,
) -> Response {
    let limit = st.cfg.max_body_bytes;
    ws.protocols(["mcp"])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(st, socket, origin, principal))
}

/// The upgrade request's origin, stamped with this message's arrival.
fn arrived(template: &Origin) -> Origin {
    Origin {
        received: tokio::time::Instant::now(),
        wall: std::time::SystemTime::now(),
        ..template.clone()
    }
}

fn error_frame(id: Option<RequestId>, code: i64, message: impl Into<String>) -> Bytes {
    let err = ErrorObject::new(code, message);
    match id {
        Some(id) => RpcResponse::error(id, err).into_message().to_bytes(),
        None => error_without_id(&err),
    }
}

/// Copies one session stream's messages to the socket's writer; ends when the stream does.
fn forward(
    mut rx: mpsc::Receiver<Outbound>,
    out: mpsc::Sender<Bytes>,
    on_end: Option<CancellationToken>,
) {
    tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            if out.send(o.json).await.is_err() {
                break;
            }
        }
        if let Some(t) = on_end {
            t.cancel();
        }
    });
}

async fn serve(
    st: Arc<ListenerState>,
    socket: WebSocket,
    origin: Origin,
    principal: Arc<crate::policy::Principal>,
) {
    let (mut sink, mut frames) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Bytes>(OUT_CAPACITY);
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                next = out_rx.recv() => match next {
                    Some(json) => {
                        let Ok(text) = Utf8Bytes::try_from(json) else { continue };
                        if sink.send(Frame::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    if sink.send(Frame::Ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Frame::Close(None)).await;
    });
    let session_over = CancellationToken::new();
    let mut session: Option<SessionHandle> = None;
    // A connection lives no longer than the credential it was opened with: the client reconnects
    // with a fresh token (the session's state is the client's to rebuild, as after any drop).
    let expiry = principal.expires_at.map(|t| {
        let left = t
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    loop {
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = session_over.cancelled() => break,
            () = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                info!(principal = principal.key(), "Closing a WebSocket connection: its credential expired");
                let _ = out
                    .send(error_frame(
                        None,
                        codes::UNAUTHENTICATED,
                        "the access token of this connection expired; reconnect with a fresh one",
                    ))
                    .await;
                break;
            }
        };
        let bytes = match frame {
            Some(Ok(Frame::Text(t))) => Bytes::from(t),
            Some(Ok(Frame::Binary(b))) => b,
            Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let msg = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                st.shared.telemetry.metrics.denied(Denial::Malformed);
                let _ = out.send(error_frame(None, e.code(), e.to_string())).await;
                continue;
            }
        };
        if let Some(s) = &session {
            s.touch(st.shared.now_ms());
        }
        match (msg, &session) {
            (Message::Request(req), None) if req.method == methods::INITIALIZE => {
                let scope = Scope::Merged(st.cfg.naming);
                match handshake::initialize(&st, scope, req, arrived(&origin), principal.clone())
                    .await
                {
                    Ok((handle, body)) => {
                        let _ = out.send(body).await;
                        match handle.open_stream(None).await {
                            Ok((_, _, rx)) => forward(rx, out.clone(), Some(session_over.clone())),
                            Err(_) => break,
                        }
                        info!(session = %handle.id, "WebSocket session initialized");
                        session = Some(handle);
                    }
                    Err(refused) => {
                        let _ = out.send(refused.body).await;
                    }
                }
            }
            (Message::Request(req), None) => {
                let _ = out
                    .send(error_frame(
                        Some(req.id),
                        codes::INVALID_REQUEST,
                        "initialize first",
                    ))
                    .await;
            }
            (Message::Request(req), Some(s)) if req.method == methods::INITIALIZE => {
                let msg = "this connection's session is already initialized";
                let _ = out
                    .send(error_frame(Some(req.id), codes::INVALID_REQUEST, msg))
                    .await;
            }
            (Message::Request(req), Some(s)) => {
                let id = req.id.clone();
                match s.request(req, arrived(&origin)) {
                    Ok((_, rx)) => forward(rx, out.clone(), None),
                    Err(SessionError::Busy(n)) => {
                        st.shared.telemetry.metrics.denied(Denial::InFlightLimit);
                        let m = format!("too many requests in flight on this session (limit {n})");
                        let _ = out
                            .send(error_frame(Some(id), codes::LIMIT_EXCEEDED, m))
                            .await;
                    }
                    Err(_) => break,
                }
            }
            (other, Some(s)) => {
                if s.deliver_from(other, arrived(&origin)).is_err() {
                    break;
                }
            }
            (_, None) => {}
        }
    }
    if let Some(s) = session {
        debug!(session = %s.id, "WebSocket closed; ending its session");
        st.registry.remove(&s.id, "WebSocket closed");
    }
    drop(out);
    let _ = writer.await;
}
