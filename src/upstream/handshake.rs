//! The MCP `initialize` handshake and simple request/response calls over any upstream transport.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::{Upstream, UpstreamError, UpstreamEvent};
use crate::protocol::{Message, ProtocolVersion, Request, RequestId, methods};

/// What a backend said about itself in its `initialize` result.
#[derive(Clone, Debug, Default)]
pub struct BackendInfo {
    pub protocol_version: String,
    pub capabilities: Map<String, Value>,
    pub server_info: Value,
    pub instructions: Option<String>,
    /// The backend answered `server/discover`: it is spoken to as a 2026-07-28 stateless
    /// server (no session; the envelope on every request).
    pub stateless: bool,
}

impl BackendInfo {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }
}

/// Who the gateway says it is to a backend, and what it may ask of the developer's client.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    pub name: String,
    pub version: String,
    pub capabilities: Map<String, Value>,
}

impl ClientIdentity {
    /// The gateway's own identity for discovery connections: no client capabilities.
    /// The gateway's identity for discovery connections. It declares every client capability a
    /// developer's client may have, because some backends (e.g. server-everything) list tools
    /// only to clients that can sample or elicit; a session whose client lacks the capability
    /// gets a clear error if such a tool asks for it.
    pub fn gateway() -> Self {
        let caps = json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}});
        Self {
            name: "switchboard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: caps.as_object().cloned().unwrap_or_default(),
        }
    }
}

/// Why a call over an upstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("backend answered with error {}: {}", .0.code, .0.message)]
    Rpc(crate::protocol::ErrorObject),
}

/// Sends a request and waits for its response; other messages are pushed to `backlog`.
pub async fn call(
    up: &Upstream,
    events: &mut mpsc::Receiver<UpstreamEvent>,
    backlog: &mut Vec<Message>,
    req: Request,
    timeout: Duration,
) -> Result<Box<serde_json::value::RawValue>, CallError> {
    let id = req.id.clone();
    up.send(req.into_message()).await?;
    let wait = async {
        loop {
            match events.recv().await {
                Some(UpstreamEvent::Message {
                    msg: Message::Response(r),
                    ..
                }) if r.id == id => {
                    return r.outcome.map_err(CallError::Rpc);
                }
                Some(UpstreamEvent::Message { msg, .. }) => backlog.push(msg),
                Some(UpstreamEvent::SendFailed { msg, error }) => {
                    if matches!(&msg, Message::Request(r) if r.id == id) {
                        return Err(error.into());
                    }
                }
                Some(UpstreamEvent::SessionExpired { .. }) => {
                    return Err(UpstreamError::Closed(
                        "backend session expired during the call".into(),
                    )
                    .into());
                }
                Some(UpstreamEvent::Closed { error }) => return Err(error.into()),
                None => return Err(UpstreamError::Closed("event channel closed".into()).into()),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| CallError::Upstream(UpstreamError::Timeout(timeout)))?
}

/// Opens the protocol with a backend: a Streamable HTTP backend is first probed with
/// `server/discover` (2026-07-28); one that answers is remembered as stateless on this
/// connection. Anything else (and every other transport) gets the `initialize` handshake.
/// Request id `0` is reserved for the probe and the handshake. `known_sessionful`: the
/// backend's discovery connection (which always probes) found it a 2025 server, so a backend
/// session skips the probe's extra round trip.
pub async fn open(
    up: &Upstream,
    events: &mut mpsc::Receiver<UpstreamEvent>,
    backlog: &mut Vec<Message>,
    client: &ClientIdentity,
    timeout: Duration,
    known_sessionful: bool,
) -> Result<BackendInfo, CallError> {
    if let Upstream::Http(http) = up
        && !known_sessionful
    {
        http.set_modern(Some(super::http::Envelope {
            capabilities: client.capabilities.clone(),
            client_info: json!({"name": client.name, "version": client.version}),
        }));
        match discover(up, events, backlog, timeout).await {
            Ok(info) => return Ok(info),
            Err(CallError::Upstream(
                e @ (UpstreamError::Connect(_) | UpstreamError::Credentials(_)),
            )) => return Err(e.into()),
            Err(e) => {
                tracing::debug!(error = %e, "server/discover refused; falling back to initialize");
                http.set_modern(None);
            }
        }
    }
    initialize(up, events, backlog, client, timeout).await
}

/// `server/discover`: the 2026-07-28 probe (the transport adds the envelope and headers).
async fn discover(
    up: &Upstream,
    events: &mut mpsc::Receiver<UpstreamEvent>,
    backlog: &mut Vec<Message>,
    timeout: Duration,
) -> Result<BackendInfo, CallError> {
    let req = Request::new(RequestId::Num(0), "server/discover", None);
    let raw = call(up, events, backlog, req, timeout).await?;
    let v: Value = serde_json::from_str(raw.get())
        .map_err(|e| UpstreamError::Protocol(format!("server/discover result: {e}")))?;
    let supported = v
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|vs| {
            vs.iter()
                .any(|s| s.as_str() == Some(ProtocolVersion::V2026_07_28.as_str()))
        });
    if !supported {
        return Err(UpstreamError::Protocol(
            "server/discover does not list 2026-07-28 among supportedVersions".into(),
        )
        .into());
    }
    Ok(BackendInfo {
        protocol_version: ProtocolVersion::V2026_07_28.as_str().into(),
        capabilities: v
            .get("capabilities")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        // The transport lifts the `_meta` serverInfo stamp into this field.
        server_info: v
            .get("serverInfo")
            .cloned()
            .unwrap_or_else(|| json!({"name": "unknown", "version": "0"})),
        instructions: v
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string),
        stateless: true,
    })
}

/// Runs `initialize` + `notifications/initialized`. Request id `0` is reserved for it.
pub async fn initialize(
    up: &Upstream,
    events: &mut mpsc::Receiver<UpstreamEvent>,
    backlog: &mut Vec<Message>,
    client: &ClientIdentity,
    timeout: Duration,
) -> Result<BackendInfo, CallError> {
    let params = json!({
        "protocolVersion": ProtocolVersion::LATEST_SESSIONFUL.as_str(),
        "capabilities": client.capabilities,
        "clientInfo": {"name": client.name, "version": client.version},
    });
    let Value::Object(params) = params else {
        unreachable!("json! object")
    };
    let req = Request::new(RequestId::Num(0), methods::INITIALIZE, Some(params));
    let raw = call(up, events, backlog, req, timeout).await?;
    let v: Value = serde_json::from_str(raw.get())
        .map_err(|e| UpstreamError::Protocol(format!("initialize result: {e}")))?;
    let info = BackendInfo {
        protocol_version: v
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        capabilities: v
            .get("capabilities")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        server_info: v.get("serverInfo").cloned().unwrap_or(Value::Null),
        instructions: v
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string),
        stateless: false,
    };
    if ProtocolVersion::parse(&info.protocol_version).is_none() {
        return Err(UpstreamError::Protocol(format!(
            "backend negotiated unsupported protocol version {:?}",
            info.protocol_version
        ))
        .into());
    }
    let note = crate::protocol::Notification::new(methods::INITIALIZED, None);
    up.send(note.into_message()).await?;
    Ok(info)
}
