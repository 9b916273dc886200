//! A routed stateless call: forwarded through the principal's gateway-held session, answered as
//! JSON or as an SSE stream of its notifications; a backend's question parks the call and becomes
//! an MRTR `input_required` result, and the client's retry resumes it.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{error, modern_error, sse_response};
use crate::listener::{ListenerState, reply};
use crate::policy::Principal;
use crate::protocol::era2026::{self, Envelope, Peeked};
use crate::protocol::jsonrpc::{codes, encode_result};
use crate::protocol::{ErrorObject, Message, Request, RequestId, methods};
use crate::session::{
    Outbound, PARK_TTL, Parked, PrincipalEntry, Scope, SessionError, UnparkError,
};
use crate::telemetry::Origin;

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
            // Only the envelope is read: the result stays raw text and is spliced, and a
            // notification is passed on as it came. A server→client request is parsed in full:
            // its params become the client's `inputRequests`.
            match era2026::peek(&o.json) {
                Peeked::Result(raw) => {
                    return match era2026::encode_complete(
                        &self.client_id,
                        raw.get(),
                        &self.info,
                        None,
                    ) {
                        Ok(b) => {
                            self.settled = true;
                            Step::Final(b, StatusCode::OK)
                        }
                        Err(e) => self.final_error(e),
                    };
                }
                Peeked::Error(e) => {
                    let mut step = self.final_error(modern_error(e));
                    // A policy stage's own HTTP status (e.g. 429) wins over the code's mapping.
                    if let (Step::Final(_, status), Some(asked)) = (&mut step, o.status)
                        && let Ok(asked) = StatusCode::from_u16(asked)
                    {
                        *status = asked;
                    }
                    return step;
                }
                Peeked::Notification(m) if m == methods::PROGRESS || m == methods::MESSAGE => {
                    return Step::Interim(o.json);
                }
                Peeked::Request => {
                    if let Ok(Message::Request(r)) = Message::parse(&o.json)
                        && let Some(step) = self.ask(r)
                    {
                        return step;
                    }
                }
                // Cancellations of server→client requests and the like mean nothing here.
                Peeked::Notification(_) | Peeked::Other => {}
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

pub(super) async fn call(
    st: &ListenerState,
    scope: Scope,
    env: Envelope,
    principal: Arc<Principal>,
    mut req: Request,
    info: Value,
    origin: Origin,
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
            match entry.session.request(req, origin) {
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
