//! Per-request context handed to fixtures: progress, logging, change notifications and
//! server→client requests (sampling, elicitation, roots) awaiting the client's response.
//!
//! Capability and identity questions go through this type (not the session directly) so a
//! later stateless revision can answer them from the request's own `_meta` instead.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::hub::{Change, Hub};
use super::session::{Session, log_level_index};
use super::{Frame, FrameTx};
use crate::jsonrpc::{RpcError, encode_notification, encode_request};

/// How long a server→client request waits for the client's answer.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The W3C trace-context headers of the HTTP request that carried a message (each `None` when
/// absent), for fixtures that report what context reached them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TraceHeaders {
    pub(crate) traceparent: Option<String>,
    pub(crate) tracestate: Option<String>,
    pub(crate) baggage: Option<String>,
}

/// Context of one client request being served.
pub(crate) struct RequestCtx {
    session: Arc<Session>,
    hub: Hub,
    out: FrameTx,
    meta: Option<Value>,
    /// `None` when the request did not arrive over HTTP (stdio).
    http_trace: Option<TraceHeaders>,
}

/// Removes a pending server→client request if the waiting task is dropped (e.g. cancelled).
struct PendingGuard<'a> {
    session: &'a Session,
    id: Value,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.session.forget_outgoing(&self.id);
    }
}

impl RequestCtx {
    pub(crate) fn new(
        session: Arc<Session>,
        hub: Hub,
        out: FrameTx,
        meta: Option<Value>,
        http_trace: Option<TraceHeaders>,
    ) -> Self {
        Self {
            session,
            hub,
            out,
            meta,
            http_trace,
        }
    }

    /// The `Mcp-Session-Id` this request arrived on, if any.
    pub(crate) fn session_id(&self) -> Option<&str> {
        self.session.id()
    }

    /// A field of the request's `params._meta`.
    pub(crate) fn meta(&self, key: &str) -> Option<&Value> {
        self.meta.as_ref().and_then(|m| m.get(key))
    }

    /// The trace-context headers of the HTTP request this arrived on (`None` over stdio).
    pub(crate) fn http_trace(&self) -> Option<&TraceHeaders> {
        self.http_trace.as_ref()
    }

    /// Whether the client declared capability `name` (`sampling`, `elicitation`, `roots`).
    pub(crate) fn client_supports(&self, name: &str) -> bool {
        self.session.client_supports(name)
    }

    fn send(&self, frame: Frame) {
        // The receiver is gone only when the transport went away; nothing to do then.
        let _ = self.out.send(frame);
    }

    /// Sends `notifications/progress` if the request carried a progress token.
    pub(crate) fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = self.meta("progressToken") else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.send(Frame::Message(encode_notification(
            "notifications/progress",
            &params,
        )));
    }

    /// Sends `notifications/message` if `level` passes the session's `logging/setLevel`.
    pub(crate) fn log(&self, level: &str, logger: Option<&str>, data: Value) {
        let Some(index) = log_level_index(level) else {
            return;
        };
        if !self.session.log_enabled(index) {
            return;
        }
        let mut params = json!({ "level": level, "data": data });
        if let Some(logger) = logger {
            params["logger"] = json!(logger);
        }
        self.send(Frame::Message(encode_notification(
            "notifications/message",
            &params,
        )));
    }

    /// Announces a change: on this request's stream (if the caller wants it) and to every
    /// other session's unsolicited stream.
    pub(crate) fn changed(&self, change: Change) {
        if change.wanted_by(&self.session) {
            self.send(Frame::Message(change.notification()));
        }
        self.hub.publish(self.session.key(), change);
    }

    /// Closes the response stream now (HTTP SSE polling); later messages wait for resumption.
    pub(crate) fn close_stream(&self) {
        self.send(Frame::CloseStream);
    }

    /// Sends a server→client request and waits for the client's response.
    pub(crate) async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (id, rx) = self.session.register_outgoing();
        let _guard = PendingGuard {
            session: &self.session,
            id: id.clone(),
        };
        self.send(Frame::Message(encode_request(&id, method, &params)));
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RpcError::internal(format!("{method}: session ended"))),
            Err(_) => Err(RpcError::internal(format!(
                "{method}: client did not answer in time"
            ))),
        }
    }
}
