//! The request path of one session: local answers, then for routed calls resolve (catalog) →
//! request stages (policy pipeline) → forward to the backend child; the answer comes back through
//! the response stages, and every ending writes the call's record (span, metrics, audit) before
//! the client sees it.

use bytes::Bytes;
use ractor::ActorRef;
use serde_json::{Map, Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, error, info, warn};

use super::actor::SessionState;
use super::audit::outcome_of_result;
use super::local;
use super::msg::{BackendMsg, Paused, Routed, SessionMsg};
use super::pending::InFlight;
use crate::policy::{
    Action, CallRequest, CallResponse, Deny, Kind, Outcome, ResultBody, edited_bytes,
};
use crate::protocol::jsonrpc::{codes, encode_result};
use crate::protocol::methods::{self, Route as MethodRoute};
use crate::protocol::{ErrorObject, Notification, Request, RequestId, Response};
use crate::telemetry::{CallEvent, Denial, Finish, Origin, context};

impl SessionState {
    pub(super) async fn on_client_request(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        req: Request,
        stream: u64,
        permit: OwnedSemaphorePermit,
        origin: Origin,
    ) {
        let tel = self.shared.telemetry.clone();
        let session_id = (!self.stateless()).then(|| self.id.clone());
        let call = CallEvent::start(
            &tel,
            origin,
            &req.method,
            Some(req.id.clone()),
            req.params.as_ref(),
            session_id,
            self.client.protocol_version.as_str(),
        );
        match methods::route(&req.method) {
            MethodRoute::Local | MethodRoute::Unknown => {
                let view = self.scope.view(&self.shared.catalog);
                match local::answer(
                    &self.shared,
                    &view,
                    &self.principal,
                    &req,
                    Some(&self.slots),
                ) {
                    Ok(result) => {
                        call.finish(&tel, Finish::ok(), false);
                        drop(permit);
                        self.streams.finish(stream, encode_result(&req.id, &result));
                    }
                    Err(e) => self.refuse(call, stream, req.id, &e, None, Some(permit)),
                }
            }
            MethodRoute::FanOut => {
                call.finish(&tel, Finish::ok(), false);
                // logging/setLevel: remembered for children started later, sent to the open ones.
                self.log_level = req.params.as_ref().and_then(|p| p.get("level")).cloned();
                for child in self.children.iter().flatten() {
                    let _ = child.cast(BackendMsg::Internal {
                        method: req.method.clone(),
                        params: req.params.clone(),
                    });
                }
                drop(permit);
                self.streams.finish(stream, encode_result(&req.id, b"{}"));
            }
            MethodRoute::Owner => {
                let view = self.scope.view(&self.shared.catalog);
                match view.route(&req, || self.shared.backend_names()) {
                    Ok(route) => {
                        let routed = Routed {
                            req,
                            stream,
                            permit,
                            call,
                            route,
                        };
                        self.decide(myself, routed, 0).await
                    }
                    Err(e) => {
                        tel.metrics.denied(Denial::UnknownTarget);
                        self.refuse(call, stream, req.id, &e, None, Some(permit));
                    }
                }
            }
        }
    }

    /// Runs the request stages from `from` on; forwards, refuses, or parks the call while a stage
    /// waits on I/O (the only case with a task hop).
    async fn decide(&mut self, myself: &ActorRef<SessionMsg>, mut r: Routed, from: usize) {
        let outcome = {
            let backend = self
                .shared
                .catalog
                .backends()
                .get(r.route.backend)
                .map_or("?", |b| b.name.as_str());
            let mut action =
                Action::new(&r.req.method, backend, &r.route.original).with_facts(r.route.facts());
            if r.req.method == methods::COMPLETION_COMPLETE {
                // Asked as the prompt or resource its `ref` names (the route's `original`).
                let ref_type = r.req.params.as_ref().and_then(|p| p.get("ref"));
                let ref_type = ref_type.and_then(|t| t.get("type")).and_then(Value::as_str);
                action = action.with_kind(Kind::of_ref(ref_type));
            }
            let arguments = r.req.params.as_mut().and_then(|p| p.get_mut("arguments"));
            let mut c = CallRequest {
                principal: &self.principal,
                session_id: &self.id,
                action,
                arguments,
                policy_revision: None,
            };
            let pipeline = &self.shared.policy;
            if from == 0 {
                pipeline.request(&mut c, &mut self.slots, &mut r.call.decision)
            } else {
                pipeline.resume(&mut c, &mut self.slots, &mut r.call.decision, from)
            }
        };
        match outcome {
            Outcome::Allow => self.forward(myself, r).await,
            Outcome::Deny(d) => self.deny(r, &d),
            Outcome::Wait { stage, pending } => {
                let me = myself.clone();
                let paused = Paused { routed: r, stage };
                tokio::spawn(async move {
                    let decided = pending.await;
                    // A session that ended meanwhile drops the call with its stream.
                    let _ = me.cast(SessionMsg::Resume(Box::new(paused), decided));
                });
            }
        }
    }

    /// A waiting stage decided: refuse, or go on with the next stage.
    pub(super) async fn resume(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        p: Paused,
        decided: Result<(), Deny>,
    ) {
        let Paused { mut routed, stage } = p;
        match decided {
            Ok(()) => self.decide(myself, routed, stage + 1).await,
            Err(mut d) => {
                self.shared
                    .policy
                    .deny(stage, &mut d, &mut routed.call.decision);
                self.deny(routed, &d);
            }
        }
    }

    fn deny(&mut self, r: Routed, d: &Deny) {
        self.shared.telemetry.metrics.denied(Denial::Policy);
        let e = d.to_error();
        self.refuse(
            r.call,
            r.stream,
            r.req.id,
            &e,
            d.http_status,
            Some(r.permit),
        );
    }

    /// Sends an allowed call to its backend child.
    async fn forward(&mut self, myself: &ActorRef<SessionMsg>, r: Routed) {
        let Routed {
            mut req,
            stream,
            permit,
            mut call,
            mut route,
        } = r;
        let tel = self.shared.telemetry.clone();
        self.reap_if_dead(myself, route.backend).await;
        let timeout = self.shared.catalog.backends()[route.backend]
            .timeouts
            .request;
        let entry = InFlight {
            client_id: req.id.clone(),
            stream,
            backend: route.backend,
            method: req.method.clone(),
            progress_token: req.progress_token().cloned(),
            deadline: tokio::time::Instant::now() + timeout,
            permit: Some(permit),
            call: None,
        };
        let upstream_id = match self.pending.insert(entry) {
            Ok(id) => id,
            Err(mut refused) => {
                let e = ErrorObject::new(
                    codes::INVALID_REQUEST,
                    format!("request id {} is already in flight on this session", req.id),
                );
                let permit = refused.permit.take();
                return self.refuse(call, stream, req.id, &e, None, permit);
            }
        };
        let arguments = req.params.as_ref().and_then(|p| p.get("arguments"));
        let carried = call.begin_hop(&tel, route.backend, &route.original, upstream_id, arguments);
        if let Some(e) = self.pending.get_mut(upstream_id) {
            e.call = Some(Box::new(call));
        }
        if let Some(p) = req.params.as_mut() {
            route.apply(p);
            if let Some(c) = carried {
                context::inject_meta(p, c);
            }
        }
        if req.progress_token().is_some() {
            req.meta_mut()
                .insert("progressToken".into(), Value::from(upstream_id));
        }
        req.id = RequestId::Num(upstream_id);
        let mut msg = req.into_message();
        // The common case over HTTP: the POST starts from here, no hop through the child.
        if let Some(d) = &self.direct[route.backend] {
            match d.try_send(msg) {
                Ok(()) => return self.arm_sweep(myself),
                Err(m) => msg = m,
            }
        }
        match self.child(myself, route.backend).await {
            Some(c) if c.cast(BackendMsg::Send(msg)).is_ok() => {}
            _ => {
                let e = ErrorObject::new(
                    codes::BACKEND_UNAVAILABLE,
                    format!(
                        "backend '{}' is unavailable",
                        self.backend_name(route.backend)
                    ),
                );
                self.fail_one(upstream_id, e);
            }
        }
        self.arm_sweep(myself);
    }

    /// The backend answered a forwarded request: response stages, then the client.
    pub(super) fn on_response(&mut self, backend: usize, r: Response) {
        let RequestId::Num(n) = r.id else { return };
        if self.pending.get(n).is_none_or(|e| e.backend != backend) {
            return;
        }
        let Some(mut e) = self.pending.take(n) else {
            return;
        };
        match r.outcome {
            Ok(raw) => {
                let mut edited = None;
                if self.shared.policy.sees_responses() {
                    match self.respond_stages(backend, &mut e, &raw) {
                        Ok(bytes) => edited = bytes,
                        Err(d) => {
                            self.shared.telemetry.metrics.denied(Denial::Policy);
                            let err = d.to_error();
                            let bytes = Response::error(e.client_id.clone(), err.clone())
                                .into_message()
                                .to_bytes();
                            return self.complete(e, bytes, Finish::error(&err));
                        }
                    }
                }
                let result = edited.as_deref().unwrap_or(raw.get().as_bytes());
                let text = std::str::from_utf8(result).unwrap_or_default();
                let finish = Finish {
                    outcome: outcome_of_result(&e.method, text),
                    message: None,
                    result: Some(text),
                };
                let bytes = encode_result(&e.client_id, result);
                self.complete(e, bytes, finish);
            }
            Err(err) => {
                let bytes = Response::error(e.client_id.clone(), err.clone())
                    .into_message()
                    .to_bytes();
                self.complete(e, bytes, Finish::error(&err));
            }
        }
    }

    /// Runs the response stages over a result; `Ok(Some)`: the rewritten result.
    fn respond_stages(
        &mut self,
        backend: usize,
        e: &mut InFlight,
        raw: &serde_json::value::RawValue,
    ) -> Result<Option<Vec<u8>>, Deny> {
        let shared = self.shared.clone();
        let name = shared
            .catalog
            .backends()
            .get(backend)
            .map_or("?", |b| b.name.as_str());
        let mut scratch = crate::policy::DecisionRecord::default();
        let (original, record) = match e.call.as_deref_mut() {
            Some(c) => (
                c.decision.original_name.clone().unwrap_or_default(),
                &mut c.decision,
            ),
            None => (String::new(), &mut scratch),
        };
        let call = CallResponse {
            principal: &self.principal,
            session_id: &self.id,
            action: Action::new(&e.method, name, &original),
        };
        let mut body = ResultBody::new(raw);
        shared
            .policy
            .response(&call, &mut body, &mut self.slots, record)?;
        Ok(edited_bytes(body))
    }

    pub(super) fn fail_one(&mut self, upstream_id: i64, err: ErrorObject) {
        if let Some(e) = self.pending.take(upstream_id) {
            if err.code == codes::BACKEND_UNAVAILABLE {
                self.shared
                    .telemetry
                    .metrics
                    .denied(Denial::BackendUnavailable);
            }
            let bytes = Response::error(e.client_id.clone(), err.clone())
                .into_message()
                .to_bytes();
            self.complete(e, bytes, Finish::error(&err));
        }
    }

    /// Ends a forwarded request.
    pub(super) fn complete(&mut self, mut e: InFlight, bytes: Bytes, finish: Finish<'_>) {
        let permit = e.permit.take();
        match e.call.take() {
            Some(call) => self.release(*call, e.stream, bytes, finish, None, permit),
            None => {
                drop(permit);
                self.streams.finish(e.stream, bytes)
            }
        }
    }

    /// Ends a call refused before any backend saw it (unknown target, policy, duplicate id).
    pub(super) fn refuse(
        &mut self,
        call: CallEvent,
        stream: u64,
        id: RequestId,
        e: &ErrorObject,
        status: Option<u16>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let bytes = Response::error(id, e.clone()).into_message().to_bytes();
        self.release(call, stream, bytes, Finish::error(e), status, permit);
    }

    /// Writes a call's record (metrics, spans, audit) and releases its answer: at once, or in
    /// `fsync` mode only once the audit record is durable — refusals included. The call's
    /// in-flight slot is given back just before the answer, so a client that sends its next
    /// request the moment it reads this answer finds the slot free.
    fn release(
        &mut self,
        call: CallEvent,
        stream: u64,
        bytes: Bytes,
        finish: Finish<'_>,
        status: Option<u16>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let audit = call.finish(&self.shared.telemetry, finish, self.shared.audit.is_some());
        if let (Some(record), Some(sink)) = (audit, &self.shared.audit) {
            match (&self.myself, sink.durable) {
                (Some(me), true) => {
                    let (handle, me) = (sink.handle.clone(), me.clone());
                    tokio::spawn(async move {
                        if let Err(error) = handle.record_durable(record).await {
                            error!(%error, "Audit record not written; answering anyway");
                        }
                        drop(permit);
                        let _ = me.cast(SessionMsg::Finish {
                            stream,
                            bytes,
                            status,
                        });
                    });
                    return;
                }
                _ => {
                    if !sink.handle.record(record) {
                        self.shared.telemetry.audit_dropped();
                        warn!(session = %self.id, "Audit queue full; record dropped");
                    }
                }
            }
        }
        drop(permit);
        self.streams.finish_with(stream, bytes, status);
    }

    pub(super) fn expire_deadlines(&mut self) {
        for (upstream_id, e) in self.pending.drain_expired(tokio::time::Instant::now()) {
            let name = self.backend_name(e.backend).to_string();
            let timeout = self.shared.catalog.backends()[e.backend].timeouts.request;
            info!(session = %self.id, backend = %name, method = %e.method, "Backend request timed out");
            let err = ErrorObject::new(
                codes::BACKEND_TIMEOUT,
                format!(
                    "backend '{name}' did not answer {} within {timeout:?}",
                    e.method
                ),
            )
            .with_data(json!({"backend": name, "retryable": true}));
            let bytes = Response::error(e.client_id.clone(), err.clone())
                .into_message()
                .to_bytes();
            let backend = e.backend;
            self.shared.telemetry.metrics.denied(Denial::BackendTimeout);
            self.complete(e, bytes, Finish::error(&err));
            self.send_cancel(
                backend,
                RequestId::Num(upstream_id),
                "timed out at the gateway",
            );
        }
    }

    pub(super) fn send_cancel(&self, backend: usize, id: RequestId, reason: &str) {
        if let Some(c) = &self.children[backend] {
            let mut p = Map::new();
            p.insert(
                "requestId".into(),
                serde_json::to_value(&id).unwrap_or(Value::Null),
            );
            p.insert("reason".into(), Value::String(reason.into()));
            let _ = c.cast(BackendMsg::Send(
                Notification::new(crate::protocol::methods::CANCELLED, Some(p)).into_message(),
            ));
        }
    }

    /// The client cancelled one of its requests: forget it and tell the backend.
    pub(super) fn on_client_cancel(&mut self, n: &Notification) {
        let Some(id) = n
            .param("requestId")
            .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok())
        else {
            return;
        };
        let Some(upstream_id) = self.pending.by_client(&id) else {
            return;
        };
        if let Some(e) = self.pending.take(upstream_id) {
            debug!(session = %self.id, request = %id, "Client cancelled a request");
            self.streams.abandon(e.stream);
            let reason = n
                .param("reason")
                .and_then(Value::as_str)
                .unwrap_or("cancelled by the client");
            self.send_cancel(e.backend, RequestId::Num(upstream_id), reason);
        }
    }
}
