//! The stateless (2026-07-28) side of `/mcp` and `/servers/{backend}/mcp`: a POST without
//! `Mcp-Session-Id` that speaks the modern revision is validated (`_meta`, mirrored headers,
//! version), answered from the catalog (`server/discover`, lists) or routed through the
//! principal's gateway-held session; backend questions become MRTR `input_required` results.

#![allow(clippy::result_large_err)] // handlers return ready-made HTTP responses as errors

mod call;
mod listen;

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use futures::stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::reply::{self, SESSION_HEADER};
use super::{ListenerState, handshake};
use crate::policy::Principal;
use crate::protocol::era2026::{self, Cache, Headers};
use crate::protocol::jsonrpc::{codes, encode_result};
use crate::protocol::{ErrorObject, Message, ProtocolVersion, Request, RequestId, methods, sse};
use crate::session::{self, Scope};
use crate::telemetry::{CallEvent, Denial, Finish, Origin};

/// Lists are filtered by the caller's permissions (private) and change when a backend's do; with
/// no `subscriptions/listen` yet, clients should not hold them long.
const LIST_CACHE: Cache = Cache {
    ttl_ms: 10_000,
    public: false,
};
const DISCOVER_CACHE: Cache = Cache {
    ttl_ms: 60_000,
    public: false,
};

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// True when a POST is a stateless 2026 message (no session header; modern `_meta` or version).
pub(super) fn applies(h: &HeaderMap, msg: &Message) -> bool {
    if h.contains_key(SESSION_HEADER) || msg.method() == Some(methods::INITIALIZE) {
        return false;
    }
    let meta = match msg {
        Message::Request(r) => r.meta(),
        Message::Notification(n) => n.param("_meta").and_then(Value::as_object),
        Message::Response(_) => None,
    };
    era2026::is_modern(meta, header_str(h, era2026::HEADER_PROTOCOL_VERSION))
}

/// GET or DELETE from a 2026 client (no session, modern `MCP-Protocol-Version`): the revision has
/// neither, so 405 with `Allow: POST` (transports/streamable-http.mdx).
pub(super) fn refuse_non_post(h: &HeaderMap) -> Option<Response> {
    if h.contains_key(SESSION_HEADER)
        || !era2026::is_modern(None, header_str(h, era2026::HEADER_PROTOCOL_VERSION))
    {
        return None;
    }
    let mut r = reply::plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "2026-07-28 has no GET stream or session to DELETE: POST requests (subscriptions/listen for notifications)",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    Some(r)
}

/// Serves one stateless message.
pub(super) async fn handle(
    st: &ListenerState,
    scope: Scope,
    who: &Arc<Principal>,
    h: &HeaderMap,
    msg: Message,
    origin: Origin,
) -> Response {
    match msg {
        Message::Notification(_) => reply::accepted(),
        Message::Response(r) => error(
            r.id,
            ErrorObject::new(
                codes::INVALID_REQUEST,
                "2026-07-28 clients do not send responses: answer inputRequests by retrying the \
                 request with inputResponses",
            ),
        ),
        Message::Request(req) => request(st, scope, who, h, req, origin).await,
    }
}

/// A JSON-RPC error with the HTTP status the 2026 revision gives its code.
pub(super) fn error(id: RequestId, e: ErrorObject) -> Response {
    let status = StatusCode::from_u16(era2026::http_status(e.code)).unwrap_or(StatusCode::OK);
    reply::json(
        status,
        crate::protocol::Response::error(id, e)
            .into_message()
            .to_bytes(),
    )
}

/// A backend's (2025) error as a 2026 client may see it: no `-32002` (a missing resource is
/// `-32602`), and no code from the spec-reserved `-32020..=-32099` that 2026 does not define
/// (e.g. 2025's `-32042`): those become `-32603` keeping the original in `data` (basic/index.mdx).
fn modern_error(mut e: ErrorObject) -> ErrorObject {
    let defined = [
        codes::HEADER_MISMATCH,
        codes::MISSING_CLIENT_CAPABILITY,
        codes::UNSUPPORTED_PROTOCOL_VERSION,
    ];
    if e.code == codes::RESOURCE_NOT_FOUND {
        e.code = codes::INVALID_PARAMS;
    } else if (-32099..=-32020).contains(&e.code) && !defined.contains(&e.code) {
        let data = json!({"backendCode": e.code, "backendData": e.data.take()});
        e.code = codes::INTERNAL_ERROR;
        e.data = Some(data);
    }
    e
}

async fn request(
    st: &ListenerState,
    scope: Scope,
    who: &Arc<Principal>,
    h: &HeaderMap,
    req: Request,
    origin: Origin,
) -> Response {
    let headers = Headers {
        protocol_version: header_str(h, era2026::HEADER_PROTOCOL_VERSION),
        method: header_str(h, era2026::HEADER_METHOD),
        name: header_str(h, era2026::HEADER_NAME),
    };
    let denied = |why| st.shared.telemetry.metrics.denied(why);
    // The SERVER span of a message answered here (routed calls get theirs in the session).
    let span = |req: &Request, result: Result<(), &ErrorObject>| {
        let tel = &st.shared.telemetry;
        let call = CallEvent::start(
            tel,
            origin.clone(),
            &req.method,
            Some(req.id.clone()),
            req.params.as_ref(),
            None,
            ProtocolVersion::V2026_07_28.as_str(),
        );
        let finish = result.map_or_else(Finish::error, |()| Finish::ok());
        call.finish(tel, finish, false);
    };
    let env = match era2026::classify(&req, &headers) {
        Ok(e) => e,
        Err(r) => {
            denied(match r.error.code {
                codes::HEADER_MISMATCH => Denial::HeaderMismatch,
                codes::UNSUPPORTED_PROTOCOL_VERSION => Denial::ProtocolVersion,
                _ => Denial::Malformed,
            });
            span(&req, Err(&r.error));
            return error(req.id, r.error);
        }
    };
    if let Err(r) = check_param_headers(st, scope, h, &req) {
        denied(Denial::HeaderMismatch);
        span(&req, Err(&r.error));
        return error(req.id, r.error);
    }
    let info = handshake::server_info(st, scope);
    // Everything below — lists, the gateway-held session, parked MRTR calls — is keyed by it.
    let principal = who.clone();
    match req.method.as_str() {
        methods::SERVER_DISCOVER => {
            span(&req, Ok(()));
            discover(st, scope, req.id, &info)
        }
        era2026::SUBSCRIPTIONS_LISTEN => {
            span(&req, Ok(()));
            listen::listen(st, scope, req.id, req.params.as_ref())
        }
        methods::TOOLS_LIST
        | methods::PROMPTS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST => {
            let view = scope.view(&st.shared.catalog);
            let result =
                session::answer_locally(&st.shared, &view, &principal, &req).and_then(|raw| {
                    let raw = String::from_utf8_lossy(&raw);
                    era2026::encode_complete(&req.id, &raw, &info, Some(LIST_CACHE))
                });
            span(&req, result.as_ref().map(|_| ()));
            match result {
                Ok(b) => reply::json(StatusCode::OK, b),
                Err(e) => error(req.id, e),
            }
        }
        methods::TOOLS_CALL
        | methods::PROMPTS_GET
        | methods::RESOURCES_READ
        | methods::COMPLETION_COMPLETE => {
            call::call(st, scope, env, principal, req, info, origin.clone()).await
        }
        other => {
            let e = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )
            .with_data(json!({"method": other}));
            span(&req, Err(&e));
            error(req.id, e)
        }
    }
}

/// `Mcp-Param-*` headers of a `tools/call` against the tool's `x-mcp-header` annotations (only
/// tools whose definition mentions `x-mcp-header` are parsed).
fn check_param_headers(
    st: &ListenerState,
    scope: Scope,
    h: &HeaderMap,
    req: &Request,
) -> Result<(), era2026::Rejection> {
    if req.method != methods::TOOLS_CALL {
        return Ok(());
    }
    let view = scope.view(&st.shared.catalog);
    let Some(tool) = req.param_str("name").and_then(|n| view.tool(n)) else {
        return Ok(());
    };
    if !tool.json.get().contains("x-mcp-header") {
        return Ok(());
    }
    let def: Value = serde_json::from_str(tool.json.get()).unwrap_or(Value::Null);
    let args = req
        .params
        .as_ref()
        .and_then(|p| p.get("arguments"))
        .and_then(Value::as_object);
    era2026::check_param_headers(&def["inputSchema"], args, |name| header_str(h, name))
}

fn discover(st: &ListenerState, scope: Scope, id: RequestId, info: &Value) -> Response {
    let view = scope.view(&st.shared.catalog);
    let mut supported: Vec<&str> = era2026::SUPPORTED.iter().map(|v| v.as_str()).collect();
    supported.extend(
        ProtocolVersion::ALL
            .iter()
            .rev()
            .filter(|v| !era2026::SUPPORTED.contains(v))
            .map(|v| v.as_str()),
    );
    let mut result = Map::new();
    result.insert("supportedVersions".into(), json!(supported));
    let mut capabilities = view.capabilities.clone();
    // Resource updates need `resources/subscribe`, which 2026-07-28 replaced by
    // `subscriptions/listen` resource filters — not offered yet.
    if let Some(Value::Object(r)) = capabilities.get_mut("resources") {
        r.remove("subscribe");
    }
    result.insert("capabilities".into(), Value::Object(capabilities));
    if let Some(i) = &view.instructions {
        result.insert("instructions".into(), json!(i));
    }
    let raw = Value::Object(result).to_string();
    match era2026::complete(&raw, info, Some(DISCOVER_CACHE)) {
        Ok(b) => reply::json(StatusCode::OK, encode_result(&id, &b)),
        Err(e) => error(id, e),
    }
}

/// An SSE body of JSON-RPC messages (no ids: 2026 streams do not resume); with `keep_alive`, a
/// comment whenever the stream was quiet that long.
fn sse_response(rx: mpsc::Receiver<Bytes>, keep_alive: Option<Duration>) -> Response {
    let body = stream::unfold(rx, move |mut rx| async move {
        let next = match keep_alive {
            Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                Ok(x) => x,
                Err(_) => return Some((sse::comment("keep-alive"), rx)),
            },
            None => rx.recv().await,
        };
        Some((sse::encode_message(None, &next?), rx))
    });
    super::sse_body::stream_response(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_are_mapped_to_codes_2026_allows() {
        let m = modern_error(ErrorObject::new(codes::RESOURCE_NOT_FOUND, "gone"));
        assert_eq!(m.code, codes::INVALID_PARAMS);
        let m = modern_error(ErrorObject::new(-32042, "url elicitation"));
        assert_eq!(m.code, codes::INTERNAL_ERROR);
        assert_eq!(m.data.unwrap()["backendCode"], -32042);
        let m = modern_error(ErrorObject::new(codes::INVALID_PARAMS, "bad"));
        assert_eq!(m.code, codes::INVALID_PARAMS);
    }
}
