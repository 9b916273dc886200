//! The `initialize` handshake shared by the HTTP and WebSocket transports: negotiate the
//! revision, create the session, and build the merged `initialize` result.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::ListenerState;
use crate::policy::Principal;
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, ProtocolVersion, Request, RequestId};
use crate::session::{ClientInfo, CreateError, Scope, SessionHandle};
use crate::telemetry::audit::Outcome;
use crate::telemetry::{CallEvent, Denial, Finish, NetProtocol, Origin};

/// An `initialize` the gateway refused: the HTTP status and the JSON-RPC error body.
pub(super) struct Refused {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
    code: i64,
}

fn refuse(status: StatusCode, id: RequestId, code: i64, message: String) -> Refused {
    let body = crate::protocol::Response::error(id, ErrorObject::new(code, message))
        .into_message()
        .to_bytes();
    Refused { status, body, code }
}

/// Answers `initialize` by creating a session; its SERVER span and metrics are written here.
pub(super) async fn initialize(
    st: &ListenerState,
    scope: Scope,
    req: Request,
    origin: Origin,
    principal: Arc<Principal>,
) -> Result<(SessionHandle, Bytes), Refused> {
    let tel = &st.shared.telemetry;
    let version = req
        .params
        .as_ref()
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str)
        .map_or(ProtocolVersion::V2025_11_25, ProtocolVersion::negotiate);
    let transport = origin.protocol;
    let mut call = CallEvent::start(
        tel,
        origin,
        &req.method,
        Some(req.id.clone()),
        req.params.as_ref(),
        None,
        version.as_str(),
    );
    let answer = create(st, scope, req, transport, principal).await;
    match &answer {
        Ok((h, _)) => {
            call.set_session(h.id.clone());
            call.finish(tel, Finish::ok(), false);
        }
        Err(r) => {
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                tel.metrics.denied(Denial::SessionLimit);
            }
            let outcome = Outcome::Error(r.code);
            call.finish(
                tel,
                Finish {
                    outcome,
                    message: None,
                    result: None,
                },
                false,
            );
        }
    }
    answer
}

async fn create(
    st: &ListenerState,
    scope: Scope,
    req: Request,
    transport: NetProtocol,
    principal: Arc<Principal>,
) -> Result<(SessionHandle, Bytes), Refused> {
    let params = req.params.clone().unwrap_or_default();
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Err(refuse(
            StatusCode::OK,
            req.id,
            codes::INVALID_PARAMS,
            "params.protocolVersion is required".into(),
        ));
    };
    let version = ProtocolVersion::negotiate(requested);
    let info = params.get("clientInfo");
    let field = |k: &str| {
        info.and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .chars()
            .take(200)
            .collect::<String>()
    };
    let client = ClientInfo {
        name: field("name"),
        version: field("version"),
        capabilities: params
            .get("capabilities")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        protocol_version: version,
        transport,
    };
    let handle = match st.registry.create(scope, client, principal).await {
        Ok(h) => h,
        Err(e @ (CreateError::Full(_) | CreateError::ShuttingDown)) => {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                req.id,
                codes::LIMIT_EXCEEDED,
                e.to_string(),
            ));
        }
        Err(e) => {
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                req.id,
                codes::INTERNAL_ERROR,
                e.to_string(),
            ));
        }
    };
    let view = scope.view(&st.shared.catalog);
    let mut result = Map::new();
    result.insert("protocolVersion".into(), json!(version.as_str()));
    result.insert(
        "capabilities".into(),
        Value::Object(view.capabilities.clone()),
    );
    result.insert("serverInfo".into(), server_info(st, scope));
    if let Some(i) = &view.instructions {
        result.insert("instructions".into(), json!(i));
    }
    tracing::info!(session = %handle.id, client = %handle_client(&params), version = %version, "Session initialized");
    let body = crate::protocol::Response::ok(req.id, &result)
        .into_message()
        .to_bytes();
    Ok((handle, body))
}

/// The gateway's `Implementation` for a scope: `switchboard` or `switchboard/<backend>`.
pub(super) fn server_info(st: &ListenerState, scope: Scope) -> Value {
    let name = match scope {
        Scope::Merged(_) => "switchboard".to_string(),
        Scope::Backend(i) => st
            .shared
            .catalog
            .backends()
            .get(i)
            .map(|b| format!("switchboard/{}", b.name))
            .unwrap_or_else(|| "switchboard".into()),
    };
    json!({"name": name, "title": "Switchboard MCP gateway", "version": env!("CARGO_PKG_VERSION")})
}

fn handle_client(params: &Map<String, Value>) -> String {
    params
        .get("clientInfo")
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .take(60)
        .collect()
}
