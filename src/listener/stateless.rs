//! The stateless (2026-07-28) side of `/mcp` and `/servers/{backend}/mcp`: a POST without
//! `Mcp-Session-Id` that speaks the modern revision is validated (`_meta`, mirrored headers,
//! version), answered from the catalog (`server/discover`, lists) or routed through the
//! principal's gateway-held session; backend questions become MRTR `input_required` results.

#![allow(clippy::result_large_err)] // handlers return ready-made HTTP responses as errors

mod listen;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::reply::{self, SESSION_HEADER};
use super::{ListenerState, handshake};
use crate::policy::Principal;
use crate::protocol::era2026::{self, Cache, Envelope, Headers};
use crate::protocol::jsonrpc::{codes, encode_result};
use crate::protocol::{ErrorObject, Message, ProtocolVersion, Request, RequestId, methods, sse};
use crate::session::{
    self, Outbound, PARK_TTL, Parked, PrincipalEntry, Scope, SessionError, UnparkError,
};

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

/// Serves one stateless message.
pub(super) async fn handle(
    st: &ListenerState,
    scope: Scope,
    h: &HeaderMap,
    msg: Message,
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
        Message::Request(req) => request(st, scope, h, req).await,
    }
}

/// A JSON-RPC error with the HTTP status the 2026 revision gives its code.
fn error(id: RequestId, e: ErrorObject) -> Response {
    let status = StatusCode::from_u16(era2026::http_status(e.code)).unwrap_or(StatusCode::OK);
    reply::json(
        status,
        crate::protocol::Response::error(id, e)
            .into_message()
            .to_bytes(),
    )
}

/// The 2026 revision has no `-32002`: a missing resource is `-32602` (basic/index.mdx).
fn modern_error(mut e: ErrorObject) -> ErrorObject {
    if e.code == codes::RESOURCE_NOT_FOUND {
        e.code = codes::INVALID_PARAMS;
    }
    e
}

async fn request(st: &ListenerState, scope: Scope, h: &HeaderMap, req: Request) -> Response {
    let headers = Headers {
        protocol_version: header_str(h, era2026::HEADER_PROTOCOL_VERSION),
        method: header_str(h, era2026::HEADER_METHOD),
        name: header_str(h, era2026::HEADER_NAME),
    };
    let env = match era2026::classify(&req, &headers) {
        Ok(e) => e,
        Err(r) => return error(req.id, r.error),
    };
    let info = handshake::server_info(st, scope);
    // No authentication yet: every stateless caller is the anonymous principal. The identity
    // issue puts the authenticated principal here; everything below is keyed by it.
    let principal = Arc::new(Principal::default());
    match req.method.as_str() {
        methods::SERVER_DISCOVER => discover(st, scope, req.id, &info),
        era2026::SUBSCRIPTIONS_LISTEN => listen::listen(st, scope, req.id, req.params.as_ref()),
        methods::TOOLS_LIST
        | methods::PROMPTS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST => {
            let view = scope.view(&st.shared.catalog);
            let result =
                session::answer_locally(&st.shared, &view, &principal, "", &req).and_then(|raw| {
                    era2026::complete(&String::from_utf8_lossy(&raw), &info, Some(LIST_CACHE))
                });
            match result {
                Ok(b) => reply::json(StatusCode::OK, encode_result(&req.id, &b)),
                Err(e) => error(req.id, e),
            }
        }
        methods::TOOLS_CALL
        | methods::PROMPTS_GET
        | methods::RESOURCES_READ
        | methods::COMPLETION_COMPLETE => call(st, scope, env, principal, req, info).await,
        other => error(
            req.id,
            ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )
            .with_data(json!({"method": other})),
        ),
    }
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

/// A routed call in progress: the session stream its answer arrives on, and what to say when
/// the backend asks the client something.
struct Call {
    entry: Arc<PrincipalEntry>,
    rx: Option<mpsc::Receiver<Outbound>>,
    internal_id: RequestId,
    client_id: RequestId,
    env: Envelope,
    method: String,
    target: Option<String>,
    info: Value,
    /// Answered or parked: nothing to cancel when dropped.
    settled: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        // Closing the response stream is cancellation (transports/streamable-http.mdx).
        if !self.settled {
            self.entry
                .cancel(&self.internal_id, "the client closed the request's stream");
        }
    }
}

/// What a call has to say next: a notification for an SSE stream, or its final message.
enum Step {
    Interim(Bytes),
    Final(Bytes, StatusCode),
}

impl Call {
    fn final_error(&mut self, e: ErrorObject) -> Step {
        self.settled = true;
        let status = StatusCode::from_u16(era2026::http_status(e.code)).unwrap_or(StatusCode::OK);
        let b = crate::protocol::Response::error(self.client_id.clone(), e)
            .into_message()
            .to_bytes();
        Step::Final(b, status)
    }

    async fn next(&mut self) -> Step {
        loop {
            let Some(rx) = self.rx.as_mut() else {
                return self.final_error(ErrorObject::new(codes::INTERNAL_ERROR, "call settled"));
            };
            let Some(o) = rx.recv().await else {
                return self.final_error(ErrorObject::new(
                    codes::REQUEST_CANCELLED,
                    "the gateway session ended before the backend answered",
                ));
            };
            match Message::parse(&o.json) {
                Ok(Message::Response(r)) => {
                    return match r.outcome {
                        Ok(raw) => match era2026::complete(raw.get(), &self.info, None) {
                            Ok(b) => {
                                self.settled = true;
                                Step::Final(encode_result(&self.client_id, &b), StatusCode::OK)
                            }
                            Err(e) => self.final_error(e),
                        },
                        Err(e) => self.final_error(modern_error(e)),
                    };
                }
                Ok(Message::Notification(n))
                    if n.method == methods::PROGRESS || n.method == methods::MESSAGE =>
                {
                    return Step::Interim(o.json);
                }
                Ok(Message::Request(r)) => {
                    if let Some(step) = self.ask(r) {
                        return step;
                    }
                }
                // Cancellations of server→client requests and the like mean nothing here.
                _ => {}
            }
        }
    }

    /// A backend asked the client something: an `input_required` result (the call is parked),
    /// or — when this request did not declare the capability — an error to the backend.
    fn ask(&mut self, r: Request) -> Option<Step> {
        let RequestId::Num(g) = r.id else {
            return None;
        };
        let cap = match r.method.as_str() {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => "",
        };
        // Only tools/call, prompts/get and resources/read may answer input_required (mrtr.mdx).
        let mrtr = self.method != methods::COMPLETION_COMPLETE;
        if cap.is_empty() || !mrtr || !self.env.declares(cap) {
            let e = if cap.is_empty() || !mrtr {
                ErrorObject::new(
                    codes::METHOD_NOT_FOUND,
                    format!(
                        "{} cannot be relayed to a 2026-07-28 client during {}",
                        r.method, self.method
                    ),
                )
            } else {
                ErrorObject::new(
                    codes::METHOD_NOT_FOUND,
                    format!("the client did not declare the {cap} capability"),
                )
            };
            let _ = self
                .entry
                .session
                .deliver(crate::protocol::Response::error(RequestId::Num(g), e).into_message());
            return None;
        }
        let key = format!("r{g}");
        let mut ask = Map::new();
        ask.insert("method".into(), Value::String(r.method));
        if let Some(p) = r.params {
            ask.insert("params".into(), Value::Object(p));
        }
        let mut input_requests = Map::new();
        input_requests.insert(key.clone(), Value::Object(ask));
        Some(self.park(vec![(key, g)], input_requests))
    }

    fn park(&mut self, waiting: Vec<(String, i64)>, input_requests: Map<String, Value>) -> Step {
        let Some(rx) = self.rx.take() else {
            return self.final_error(ErrorObject::new(codes::INTERNAL_ERROR, "call settled"));
        };
        let parked = Parked {
            rx,
            internal_id: self.internal_id.clone(),
            method: self.method.clone(),
            target: self.target.clone(),
            waiting,
            input_requests: input_requests.clone(),
            expires: Instant::now() + PARK_TTL,
        };
        self.settled = true;
        match self.entry.park(parked) {
            Ok(state) => {
                let b = era2026::input_required(&input_requests, &state, &self.info);
                Step::Final(encode_result(&self.client_id, &b), StatusCode::OK)
            }
            Err(e) => self.final_error(e),
        }
    }
}

async fn call(
    st: &ListenerState,
    scope: Scope,
    env: Envelope,
    principal: Arc<Principal>,
    mut req: Request,
    info: Value,
) -> Response {
    let entry = match st.registry.stateless_session(&principal, scope).await {
        Ok(e) => e,
        Err(e) => {
            let mut r = error(
                req.id,
                ErrorObject::new(codes::LIMIT_EXCEEDED, e.to_string()),
            );
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
    };
    let target = era2026::name_param(&req.method)
        .and_then(|k| req.param_str(k))
        .map(str::to_string);
    let params = req.params.as_ref();
    let state = params
        .and_then(|p| p.get(era2026::REQUEST_STATE))
        .and_then(Value::as_str)
        .map(str::to_string);
    let responses = params
        .and_then(|p| p.get(era2026::INPUT_RESPONSES))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut call = Call {
        entry: entry.clone(),
        rx: None,
        internal_id: entry.next_request_id(),
        client_id: req.id.clone(),
        env,
        method: req.method.clone(),
        target,
        info,
        settled: true,
    };
    match state {
        Some(state) => {
            let parked = match entry.unpark(&state, &call.method, call.target.as_deref()) {
                Ok(p) => p,
                Err(e @ (UnparkError::Unknown | UnparkError::OtherRequest(_))) => {
                    return error(
                        req.id,
                        ErrorObject::new(codes::INVALID_PARAMS, e.to_string()),
                    );
                }
            };
            if let Some(step) = resume(&mut call, parked, &responses) {
                return respond_final(step);
            }
        }
        None => {
            if !responses.is_empty() {
                return error(
                    req.id,
                    ErrorObject::new(
                        codes::INVALID_PARAMS,
                        "inputResponses without the requestState they answer",
                    ),
                );
            }
            era2026::strip_for_backend(&mut req);
            req.id = call.internal_id.clone();
            match entry.session.request(req) {
                Ok((_, rx)) => {
                    call.rx = Some(rx);
                    call.settled = false;
                }
                Err(SessionError::Busy(n)) => {
                    let e = ErrorObject::new(
                        codes::LIMIT_EXCEEDED,
                        format!("too many requests in flight for this principal (limit {n})"),
                    );
                    let mut r = error(call.client_id.clone(), e);
                    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    return r;
                }
                Err(e) => {
                    let e = ErrorObject::new(codes::BACKEND_UNAVAILABLE, e.to_string());
                    return error(call.client_id.clone(), e);
                }
            }
        }
    }
    respond(call).await
}

/// Hands the client's answers to the backend requests they belong to. Answers still missing →
/// the call is parked again and asked again (mrtr.mdx "Error Handling").
fn resume(call: &mut Call, parked: Parked, responses: &Map<String, Value>) -> Option<Step> {
    call.internal_id = parked.internal_id;
    call.rx = Some(parked.rx);
    call.settled = false;
    let mut missing = Vec::new();
    for (key, g) in parked.waiting {
        match responses
            .get(&key)
            .and_then(|v| serde_json::value::to_raw_value(v).ok())
        {
            Some(raw) => {
                let answer = crate::protocol::Response::ok_raw(RequestId::Num(g), raw);
                let _ = call.entry.session.deliver(answer.into_message());
            }
            None => missing.push((key, g)),
        }
    }
    if missing.is_empty() {
        return None;
    }
    let asked: Map<String, Value> = parked
        .input_requests
        .into_iter()
        .filter(|(k, _)| missing.iter().any(|(m, _)| m == k))
        .collect();
    Some(call.park(missing, asked))
}

fn respond_final(step: Step) -> Response {
    match step {
        Step::Final(b, status) => reply::json(status, b),
        Step::Interim(b) => reply::json(StatusCode::OK, b),
    }
}

/// Plain JSON when the final answer comes first; otherwise an SSE stream of the call's
/// notifications ending with its final answer (no event ids: 2026 streams do not resume).
async fn respond(mut call: Call) -> Response {
    let first = match call.next().await {
        Step::Final(b, status) => return reply::json(status, b),
        Step::Interim(b) => b,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(b) = next.take() {
            if tx.send(b).await.is_err() {
                return; // the client went away: dropping `call` cancels it
            }
            let step = tokio::select! {
                s = call.next() => s,
                _ = tx.closed() => return,
            };
            match step {
                Step::Interim(b) => next = Some(b),
                Step::Final(b, _) => {
                    let _ = tx.send(b).await;
                }
            }
        }
    });
    sse_response(rx, None)
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
    let mut r = Response::new(Body::from_stream(body.map(Ok::<_, Infallible>)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
