//! The 2026-07-28 (stateless) side of an HTTP backend: every request carries the `_meta`
//! envelope and the mirrored headers, there is no session, results are normalised to the 2025
//! shape the session layer speaks, and MRTR `input_required` rounds are bridged into ordinary
//! server→client requests (answered through `send` like any 2025 backend request).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Response as HttpResponse, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::client::describe;
use super::shared::{Envelope, SessionHeaders, Shared};
use super::wire::{JSON, MAX_MESSAGE_BYTES, POST_ACCEPT, is_media, next_chunk, read_body};
use crate::protocol::era2026::{
    self, HEADER_METHOD, HEADER_NAME, HEADER_PROTOCOL_VERSION, INPUT_RESPONSES,
    META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION, REQUEST_STATE,
};
use crate::protocol::jsonrpc::codes;
use crate::protocol::{
    ErrorObject, Message, ProtocolVersion, Request, RequestId, Response, methods, sse,
};
use crate::upstream::{UpstreamError, UpstreamEvent};

mod legacy;

use legacy::{Answer, legacy_error, read_result};

/// Most MRTR rounds one call may take before the gateway gives up.
const MAX_ROUNDS: usize = 16;
/// How long the gateway waits for the client to answer one round's input requests.
const INPUT_WAIT: Duration = Duration::from_secs(300);

impl Shared {
    /// Sends one message to a stateless backend. Requests run in the background (with their
    /// MRTR rounds); responses answer a pending input request; notifications have no 2026
    /// meaning toward the backend (cancellation is closing the stream) and are dropped.
    pub(super) fn send_modern(self: &Arc<Self>, msg: Message, env: Arc<Envelope>) {
        match msg {
            Message::Request(req) => {
                let shared = Arc::clone(self);
                let (cancel, cancelled) = oneshot::channel::<()>();
                let id = req.id.clone();
                self.calls().insert(id.clone(), cancel);
                drop(self.spawn(async move {
                    tokio::select! {
                        _ = cancelled => {
                            debug!(backend = %shared.name, request = %id, "Call cancelled; its stream is closed");
                        }
                        () = Arc::clone(&shared).call_modern(req, env) => {
                            shared.calls().remove(&id);
                        }
                    }
                }));
            }
            Message::Response(r) => {
                let waiter = self.inputs().remove(&r.id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(r);
                    }
                    None => {
                        debug!(backend = %self.name, id = %r.id, "Answer to an unknown input request dropped")
                    }
                }
            }
            Message::Notification(n) if n.method == methods::CANCELLED => {
                let id = n
                    .param("requestId")
                    .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
                if let Some(id) = id {
                    // Dropping the sender ends the call's task and with it the POST stream.
                    drop(self.calls().remove(&id));
                }
            }
            Message::Notification(n) => {
                debug!(backend = %self.name, method = %n.method, "Notification not forwarded to a stateless backend");
            }
        }
    }

    fn calls(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<RequestId, oneshot::Sender<()>>> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn inputs(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<RequestId, oneshot::Sender<Response>>>
    {
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One logical call: POST, and while the backend answers `input_required`, ask the
    /// developer's client (server→client requests tagged with the call's id) and retry.
    async fn call_modern(self: Arc<Self>, mut req: Request, env: Arc<Envelope>) {
        let id = req.id.clone();
        add_envelope(&mut req, &env);
        for round in 0..MAX_ROUNDS {
            let mut attempt = req.clone();
            if round > 0 {
                // A retry is a new JSON-RPC request (MRTR); its answer is re-tagged below.
                attempt.id = RequestId::Str(format!("{id}.r{round}").into());
            }
            let answer = match self.post_modern(&attempt, &id).await {
                Ok(Some(a)) => a,
                Ok(None) => {
                    return self
                        .fail(
                            req,
                            UpstreamError::Closed(
                                "response stream ended before the response".into(),
                            ),
                        )
                        .await;
                }
                Err(e) => return self.fail(req, e).await,
            };
            let raw = match answer.outcome {
                Err(e) => {
                    return self
                        .answer(Response::error(id, legacy_error(&req.method, e)))
                        .await;
                }
                Ok(raw) => raw,
            };
            let result = match read_result(&req.method, raw.get()) {
                Answer::Complete(legacy) => return self.answer(Response::ok_raw(id, legacy)).await,
                Answer::Opaque => {
                    // Not an object: hand it on untouched.
                    let _ = self
                        .emit(UpstreamEvent::Message {
                            msg: Response::ok_raw(id.clone(), raw).into_message(),
                            related: Some(id),
                        })
                        .await;
                    return;
                }
                Answer::InputRequired(m) => m,
            };
            match self.ask_client(&id, &result).await {
                Ok(responses) => {
                    let p = req.params.get_or_insert_with(Map::new);
                    p.insert(INPUT_RESPONSES.into(), Value::Object(responses));
                    match result.get(REQUEST_STATE) {
                        Some(s) => p.insert(REQUEST_STATE.into(), s.clone()),
                        None => p.remove(REQUEST_STATE),
                    };
                }
                Err(e) => return self.answer(Response::error(id, e)).await,
            }
        }
        let e = ErrorObject::new(
            codes::INTERNAL_ERROR,
            format!("the backend asked for input more than {MAX_ROUNDS} times"),
        );
        self.answer(Response::error(id, e)).await;
    }

    async fn answer(&self, r: Response) {
        let related = Some(r.id.clone());
        let _ = self
            .emit(UpstreamEvent::Message {
                msg: r.into_message(),
                related,
            })
            .await;
    }

    async fn fail(&self, req: Request, error: UpstreamError) {
        let _ = self
            .emit(UpstreamEvent::SendFailed {
                msg: req.into_message(),
                error,
            })
            .await;
    }

    /// Turns one `input_required` round into server→client requests and waits for every answer.
    async fn ask_client(
        &self,
        call: &RequestId,
        result: &Map<String, Value>,
    ) -> Result<Map<String, Value>, ErrorObject> {
        let mut waiting = Vec::new();
        if let Some(Value::Object(reqs)) = result.get("inputRequests") {
            for (key, r) in reqs {
                let Some(method) = r.get("method").and_then(Value::as_str) else {
                    continue;
                };
                let params = r.get("params").and_then(Value::as_object).cloned();
                let n = self.next_input.fetch_add(1, Ordering::Relaxed);
                let rid = RequestId::Str(format!("mrtr-{n}").into());
                let (tx, rx) = oneshot::channel();
                self.inputs().insert(rid.clone(), tx);
                let ask = Request::new(rid.clone(), method, params);
                if !self
                    .emit(UpstreamEvent::Message {
                        msg: ask.into_message(),
                        related: Some(call.clone()),
                    })
                    .await
                {
                    return Err(ErrorObject::new(codes::INTERNAL_ERROR, "session gone"));
                }
                waiting.push((key.clone(), rid, rx));
            }
        }
        let mut out = Map::new();
        for (key, rid, rx) in waiting {
            let answer = tokio::time::timeout(INPUT_WAIT, rx).await;
            self.inputs().remove(&rid);
            match answer {
                Ok(Ok(Response {
                    outcome: Ok(raw), ..
                })) => {
                    let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                    out.insert(key, v);
                }
                Ok(Ok(Response {
                    outcome: Err(e), ..
                })) => return Err(e),
                _ => {
                    return Err(ErrorObject::new(
                        codes::INTERNAL_ERROR,
                        "the client did not answer the backend's input request",
                    ));
                }
            }
        }
        Ok(out)
    }

    /// POSTs one modern request; notifications on its SSE stream are emitted tagged `related`,
    /// the response is returned. 4xx bodies carrying a JSON-RPC error are answers too.
    async fn post_modern(
        &self,
        req: &Request,
        related: &RequestId,
    ) -> Result<Option<Response>, UpstreamError> {
        let mut headers = self.request_headers(&SessionHeaders::default(), POST_ACCEPT);
        headers.insert(CONTENT_TYPE, JSON);
        super::post::trace_headers(req, &mut headers);
        headers.insert(
            HeaderName::from_static(HEADER_PROTOCOL_VERSION),
            HeaderValue::from_static(ProtocolVersion::V2026_07_28.as_str()),
        );
        if let Ok(v) = HeaderValue::from_str(&req.method) {
            headers.insert(HeaderName::from_static(HEADER_METHOD), v);
        }
        if let Some(key) = era2026::name_param(&req.method)
            && let Some(name) = req.param_str(key)
            && let Ok(v) = HeaderValue::from_str(&header_value(name))
        {
            headers.insert(HeaderName::from_static(HEADER_NAME), v);
        }
        let http = self.request(
            Method::POST,
            headers,
            Message::Request(req.clone()).to_bytes(),
        );
        let resp = self.send(http).await?;
        let status = resp.status();
        if is_media(&resp, "text/event-stream") && status.is_success() {
            return self.read_modern_stream(resp, &req.id, related).await;
        }
        let json = is_media(&resp, "application/json");
        if !json || !(status.is_success() || status.is_client_error()) {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let body = read_body(resp).await?;
        match Message::parse(&body) {
            Ok(Message::Response(r)) => Ok(Some(r)),
            _ if status == StatusCode::OK => Err(UpstreamError::Protocol(
                "a stateless backend answered with something other than a response".into(),
            )),
            _ => Err(UpstreamError::Status(status.as_u16())),
        }
    }

    async fn read_modern_stream(
        &self,
        resp: HttpResponse<Incoming>,
        id: &RequestId,
        related: &RequestId,
    ) -> Result<Option<Response>, UpstreamError> {
        let mut decoder = sse::Decoder::new();
        let mut pending = 0usize;
        let mut body = resp.into_body();
        while let Some(chunk) = next_chunk(&mut body).await {
            let chunk = chunk.map_err(|e| UpstreamError::Io(describe(&e)))?;
            pending += chunk.len();
            let events = decoder.feed(&chunk);
            if !events.is_empty() {
                pending = 0;
            }
            if pending > MAX_MESSAGE_BYTES {
                return Err(UpstreamError::Protocol("SSE event exceeds 16 MiB".into()));
            }
            for ev in events {
                if ev.data.trim().is_empty() || ev.event.as_deref().is_some_and(|e| e != "message")
                {
                    continue;
                }
                match Message::parse(ev.data.as_bytes()) {
                    Ok(Message::Response(r)) if &r.id == id => return Ok(Some(r)),
                    Ok(Message::Notification(n)) => {
                        let ev = UpstreamEvent::Message {
                            msg: n.into_message(),
                            related: Some(related.clone()),
                        };
                        if !self.emit(ev).await {
                            return Ok(None);
                        }
                    }
                    Ok(other) => {
                        warn!(backend = %self.name, method = other.method().unwrap_or("response"), "Stateless backend sent an unexpected message on a request stream; dropped");
                    }
                    Err(error) => {
                        warn!(backend = %self.name, %error, "Skipping an unparseable SSE event from the backend");
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Adds the per-request protocol fields (kept: whatever else the caller's `_meta` holds).
fn add_envelope(req: &mut Request, env: &Envelope) {
    let meta = req.meta_mut();
    meta.insert(
        META_PROTOCOL_VERSION.into(),
        Value::String(ProtocolVersion::V2026_07_28.as_str().into()),
    );
    meta.insert(
        META_CLIENT_CAPABILITIES.into(),
        Value::Object(env.capabilities.clone()),
    );
    meta.insert(META_CLIENT_INFO.into(), env.client_info.clone());
}

/// A header value, or its `=?base64?…?=` form when it is not plain visible ASCII.
fn header_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !v.starts_with("=?");
    if plain {
        v.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_header_values_are_base64() {
        assert_eq!(header_value("echo"), "echo");
        assert_eq!(header_value("é"), "=?base64?w6k=?=");
    }
}
