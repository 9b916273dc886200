//! The SessionActor: routes one developer session's messages to backend children, rewrites ids
//! both ways, and fans backend messages back onto the right client stream.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::audit::outcome_of_result;
use super::backend::{BackendArgs, BackendMsg, BackendSession};
use super::pending::{InFlight, Pending, ServerRequest};
use super::registry::SessionRegistry;
use super::streams::{GET_STREAM, Outbound, Streams};
use super::{ClientInfo, Scope, SessionError, Shared, local};
use crate::catalog::{Changed, View};
use crate::policy::{Action, CallContext, DecisionRecord, Principal, Verdict};
use crate::protocol::jsonrpc::{codes, encode_result};
use crate::protocol::methods::{self, Route};
use crate::protocol::{ErrorObject, Message, Notification, Request, RequestId, Response};
use crate::telemetry::{CallEvent, Denial, Finish, Origin, context};
use crate::upstream::UpstreamError;

/// How often in-flight deadlines are checked while requests are pending.
const SWEEP_PERIOD: Duration = Duration::from_millis(250);
/// Consecutive failures after which a backend child is no longer restarted eagerly.
const MAX_EAGER_RESTARTS: u32 = 5;

/// The actor; its fixed dependencies travel in `SessionArgs`.
pub struct SessionActor;

pub struct SessionArgs {
    pub id: Arc<str>,
    pub scope: Scope,
    pub client: ClientInfo,
    pub shared: Arc<Shared>,
    pub registry: Weak<SessionRegistry>,
}

/// Everything a session actor is told.
pub enum SessionMsg {
    /// A client request; its answer goes to `tx`.
    Request {
        req: Request,
        stream: u64,
        tx: mpsc::Sender<Outbound>,
        permit: OwnedSemaphorePermit,
        origin: Box<Origin>,
    },
    /// A client notification, or a client response to a server→client request; with the origin
    /// when the client itself sent it (not a bridge inside the gateway).
    Client(Message, Option<Box<Origin>>),
    /// A GET stream was opened (or resumed with `Last-Event-ID`); replies with the priming event id.
    OpenStream {
        last_event_id: Option<String>,
        tx: mpsc::Sender<Outbound>,
        reply: oneshot::Sender<Result<(u64, u64), SessionError>>,
    },
    /// Something a backend child's connection delivered.
    Upstream {
        backend: usize,
        msg: Message,
        related: Option<RequestId>,
    },
    /// Sending a message to a backend failed.
    SendFailed {
        backend: usize,
        /// The id of the failed message, when it was a request.
        id: Option<RequestId>,
        error: UpstreamError,
    },
    /// A backend child finished its handshake.
    BackendReady { backend: usize },
    /// The shared catalog changed (`backend == usize::MAX`: unknown, assume all).
    CatalogChanged { backend: usize, changed: Changed },
    /// Check in-flight deadlines.
    Sweep,
    /// Release a request's answer whose audit record is now durable.
    Finish { stream: u64, bytes: Bytes },
}

pub struct SessionState {
    id: Arc<str>,
    scope: Scope,
    client: ClientInfo,
    shared: Arc<Shared>,
    registry: Weak<SessionRegistry>,
    principal: Principal,
    children: Vec<Option<ActorRef<BackendMsg>>>,
    child_ids: HashMap<ActorId, usize>,
    failures: Vec<u32>,
    pending: Pending,
    streams: Streams,
    log_level: Option<Value>,
    sweep_armed: bool,
    /// This actor, for answers released later (after their audit record is durable).
    myself: Option<ActorRef<SessionMsg>>,
    started: tokio::time::Instant,
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        a: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let n = a.shared.catalog.backends().len();
        a.shared
            .telemetry
            .metrics
            .session_opened(a.client.protocol_version.as_str());
        Ok(SessionState {
            streams: Streams::new(a.shared.limits.replay_buffer),
            id: a.id,
            scope: a.scope,
            client: a.client,
            shared: a.shared,
            registry: a.registry,
            principal: Principal::default(),
            children: vec![None; n],
            child_ids: HashMap::new(),
            failures: vec![0; n],
            pending: Pending::default(),
            log_level: None,
            sweep_armed: false,
            myself: Some(myself),
            started: tokio::time::Instant::now(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SessionMsg>,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        st.child_ids.clear();
        // Answers can no longer be released later: record and answer now.
        st.myself = None;
        let ids: Vec<i64> = st.pending.in_flight.keys().copied().collect();
        for id in ids {
            let err = ErrorObject::new(
                codes::REQUEST_CANCELLED,
                "the session ended before the backend answered",
            );
            st.fail_one(id, err);
        }
        st.streams.close_all();
        myself
            .stop_children_and_wait(Some("session ended".into()), Some(Duration::from_secs(5)))
            .await;
        if let Some(reg) = st.registry.upgrade() {
            reg.forget(&st.id);
        }
        st.shared.telemetry.metrics.session_closed(
            st.client.protocol_version.as_str(),
            st.client.transport.as_str(),
            st.started.elapsed(),
        );
        debug!(session = %st.id, "Session stopped");
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Request {
                req,
                stream,
                tx,
                permit,
                origin,
            } => {
                st.streams.open(stream, tx);
                st.on_client_request(&myself, req, stream, permit, *origin)
                    .await;
            }
            SessionMsg::Client(msg, origin) => {
                if let (Message::Notification(n), Some(origin)) = (&msg, origin) {
                    let tel = &st.shared.telemetry;
                    let session = (!st.stateless()).then(|| st.id.clone());
                    let version = st.client.protocol_version.as_str();
                    CallEvent::start(
                        tel,
                        *origin,
                        &n.method,
                        None,
                        n.params.as_ref(),
                        session,
                        version,
                    )
                    .finish(tel, Finish::ok(), false);
                }
                st.on_client_message(msg)
            }
            SessionMsg::OpenStream {
                last_event_id,
                tx,
                reply,
            } => {
                let r = st
                    .streams
                    .attach(last_event_id.as_deref(), tx)
                    .map_err(SessionError::from);
                let r = r.map(|stream| (stream, st.streams.get_stream_position()));
                let _ = reply.send(r);
            }
            SessionMsg::Upstream {
                backend,
                msg,
                related,
            } => st.on_upstream(backend, msg, related),
            SessionMsg::SendFailed { backend, id, error } => {
                if let Some(RequestId::Num(n)) = id {
                    st.fail_one(n, backend_error(&st.shared, backend, &error));
                }
            }
            SessionMsg::BackendReady { backend } => {
                if let Some(f) = st.failures.get_mut(backend) {
                    *f = 0;
                }
            }
            SessionMsg::CatalogChanged { backend, changed } => {
                st.on_catalog_changed(backend, changed)
            }
            SessionMsg::Finish { stream, bytes } => st.streams.finish(stream, bytes),
            SessionMsg::Sweep => {
                st.sweep_armed = false;
                st.expire_deadlines();
                st.arm_sweep(&myself);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SessionMsg>,
        evt: SupervisionEvent,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(backend) = st.child_ids.remove(&cell.get_id()) else {
            return Ok(());
        };
        st.children[backend] = None;
        st.failures[backend] += 1;
        let name = st.backend_name(backend).to_string();
        warn!(session = %st.id, backend = %name, %reason, "Backend session failed");
        let err = ErrorObject::new(
            codes::BACKEND_UNAVAILABLE,
            format!("backend '{name}' failed: {reason}"),
        )
        .with_data(json!({"backend": name, "retryable": true}));
        st.shared
            .telemetry
            .metrics
            .backend_restarted(&st.shared.telemetry.backends[backend].name);
        for e in st.pending.drain_backend(backend) {
            let bytes = Response::error(e.client_id.clone(), err.clone())
                .into_message()
                .to_bytes();
            st.shared
                .telemetry
                .metrics
                .denied(Denial::BackendUnavailable);
            st.complete(e, bytes, Finish::error(&err));
        }
        let orphaned: Vec<i64> = st
            .pending
            .server_requests
            .iter()
            .filter(|(_, r)| r.backend == backend)
            .map(|(k, _)| *k)
            .collect();
        for g in orphaned {
            if let Some(r) = st.pending.server_requests.remove(&g) {
                let note = cancelled(RequestId::Num(g), "the backend that asked restarted");
                st.streams.interim(r.stream, note);
            }
        }
        if st.failures[backend] <= MAX_EAGER_RESTARTS {
            let attempt = st.failures[backend];
            st.spawn_child(&myself, backend, attempt).await;
        }
        Ok(())
    }
}

fn cancelled(id: RequestId, reason: &str) -> Bytes {
    let mut p = Map::new();
    p.insert(
        "requestId".into(),
        serde_json::to_value(&id).unwrap_or(Value::Null),
    );
    p.insert("reason".into(), Value::String(reason.into()));
    Notification::new(methods::CANCELLED, Some(p))
        .into_message()
        .to_bytes()
}

fn backend_error(shared: &Shared, backend: usize, e: &UpstreamError) -> ErrorObject {
    let name = shared
        .catalog
        .backends()
        .get(backend)
        .map(|b| b.name.as_str())
        .unwrap_or("?");
    ErrorObject::new(
        codes::BACKEND_UNAVAILABLE,
        format!("backend '{name}' is unavailable: {e}"),
    )
    .with_data(json!({"backend": name, "retryable": e.retryable()}))
}

/// Where a routed request goes and how its params are rewritten for the backend.
struct Target {
    backend: usize,
    /// The params key (`a.b`: nested) where the backend's own name or URI goes before forwarding.
    rewrite: &'static str,
    /// The backend's own name or URI.
    original: String,
}

impl SessionState {
    fn backend_name(&self, i: usize) -> &str {
        self.shared
            .catalog
            .backends()
            .get(i)
            .map(|b| b.name.as_str())
            .unwrap_or("?")
    }

    async fn on_client_request(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        mut req: Request,
        stream: u64,
        permit: OwnedSemaphorePermit,
        origin: Origin,
    ) {
        let tel = self.shared.telemetry.clone();
        let session_id = (!self.stateless()).then(|| self.id.clone());
        let mut call = CallEvent::start(
            &tel,
            origin,
            &req.method,
            Some(req.id.clone()),
            req.params.as_ref(),
            session_id,
            self.client.protocol_version.as_str(),
        );
        match methods::route(&req.method) {
            Route::Local | Route::Unknown => {
                let view = self.scope.view(&self.shared.catalog);
                let bytes =
                    match local::answer(&self.shared, &view, &self.principal, &self.id, &req) {
                        Ok(result) => {
                            call.finish(&tel, Finish::ok(), false);
                            encode_result(&req.id, &result)
                        }
                        Err(e) => {
                            call.finish(&tel, Finish::error(&e), false);
                            Response::error(req.id, e).into_message().to_bytes()
                        }
                    };
                self.streams.finish(stream, bytes);
            }
            Route::FanOut => {
                call.finish(&tel, Finish::ok(), false);
                // logging/setLevel: remembered for children started later, sent to the open ones.
                self.log_level = req.params.as_ref().and_then(|p| p.get("level")).cloned();
                for child in self.children.iter().flatten() {
                    let _ = child.cast(BackendMsg::Internal {
                        method: req.method.clone(),
                        params: req.params.clone(),
                    });
                }
                self.streams.finish(stream, encode_result(&req.id, b"{}"));
            }
            Route::Owner => {
                let view = self.scope.view(&self.shared.catalog);
                let target = match self.resolve(&view, &req) {
                    Ok(t) => t,
                    Err(e) => {
                        tel.metrics.denied(Denial::UnknownTarget);
                        self.refuse(call, &e);
                        return self
                            .streams
                            .finish(stream, Response::error(req.id, e).into_message().to_bytes());
                    }
                };
                if let Err(e) = self.authorize(&req, &target, &mut call.decision) {
                    tel.metrics.denied(Denial::Policy);
                    self.refuse(call, &e);
                    return self
                        .streams
                        .finish(stream, Response::error(req.id, e).into_message().to_bytes());
                }
                call.decision.backend = Some(self.backend_name(target.backend).to_string());
                call.decision.original_name = Some(target.original.clone());
                call.decision.decision.get_or_insert("allow");
                let timeout = self.shared.catalog.backends()[target.backend]
                    .timeouts
                    .request;
                let entry = InFlight {
                    client_id: req.id.clone(),
                    stream,
                    backend: target.backend,
                    method: req.method.clone(),
                    progress_token: req.progress_token().cloned(),
                    deadline: tokio::time::Instant::now() + timeout,
                    _permit: Some(permit),
                    call: None,
                };
                let upstream_id = match self.pending.insert(entry) {
                    Ok(id) => id,
                    Err(_) => {
                        let e = ErrorObject::new(
                            codes::INVALID_REQUEST,
                            format!("request id {} is already in flight on this session", req.id),
                        );
                        self.refuse(call, &e);
                        return self
                            .streams
                            .finish(stream, Response::error(req.id, e).into_message().to_bytes());
                    }
                };
                let arguments = req.params.as_ref().and_then(|p| p.get("arguments"));
                let carried = call.begin_hop(
                    &tel,
                    target.backend,
                    &target.original,
                    upstream_id,
                    arguments,
                );
                if let Some(e) = self.pending.get_mut(upstream_id) {
                    e.call = Some(Box::new(call));
                }
                if let Some(p) = req.params.as_mut() {
                    set_path(p, target.rewrite, target.original);
                    if let Some(c) = carried {
                        context::inject_meta(p, c);
                    }
                }
                if req.progress_token().is_some() {
                    req.meta_mut()
                        .insert("progressToken".into(), Value::from(upstream_id));
                }
                req.id = RequestId::Num(upstream_id);
                let child = self.child(myself, target.backend).await;
                match child {
                    Some(c) if c.cast(BackendMsg::Send(req.into_message())).is_ok() => {}
                    _ => {
                        let e = ErrorObject::new(
                            codes::BACKEND_UNAVAILABLE,
                            format!(
                                "backend '{}' is unavailable",
                                self.backend_name(target.backend)
                            ),
                        );
                        self.fail_one(upstream_id, e);
                    }
                }
                self.arm_sweep(myself);
            }
        }
    }

    fn resolve(&self, view: &View, req: &Request) -> Result<Target, ErrorObject> {
        let invalid = |m: String| ErrorObject::new(codes::INVALID_PARAMS, m);
        match req.method.as_str() {
            methods::TOOLS_CALL | methods::PROMPTS_GET => {
                let is_tool = req.method == methods::TOOLS_CALL;
                let kind = if is_tool { "tool" } else { "prompt" };
                let name = req
                    .param_str("name")
                    .ok_or_else(|| invalid(format!("params.name (the {kind} name) is required")))?;
                let e = if is_tool {
                    view.tool(name)
                } else {
                    view.prompt(name)
                };
                let e = e.ok_or_else(|| {
                    invalid(format!("Unknown {kind}: {name}")).with_data(json!({kind: name}))
                })?;
                Ok(Target {
                    backend: e.backend,
                    rewrite: "name",
                    original: e.original.clone(),
                })
            }
            methods::RESOURCES_READ
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE => {
                let uri = req
                    .param_str("uri")
                    .ok_or_else(|| invalid("params.uri is required".into()))?;
                let r = view
                    .route_resource(uri, &self.shared.backend_names())
                    .ok_or_else(|| {
                        ErrorObject::new(
                            codes::RESOURCE_NOT_FOUND,
                            format!("Resource not found: {uri}"),
                        )
                        .with_data(json!({"uri": uri}))
                    })?;
                Ok(Target {
                    backend: r.backend,
                    rewrite: "uri",
                    original: r.uri,
                })
            }
            methods::COMPLETION_COMPLETE => {
                let r = req
                    .params
                    .as_ref()
                    .and_then(|p| p.get("ref"))
                    .ok_or_else(|| invalid("params.ref is required".into()))?;
                match r.get("type").and_then(Value::as_str) {
                    Some("ref/prompt") => {
                        let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                        let e = view
                            .prompt(name)
                            .ok_or_else(|| invalid(format!("Unknown prompt: {name}")))?;
                        Ok(Target {
                            backend: e.backend,
                            rewrite: "ref.name",
                            original: e.original.clone(),
                        })
                    }
                    Some("ref/resource") => {
                        let uri = r.get("uri").and_then(Value::as_str).unwrap_or_default();
                        if let Some(t) = view.template(uri) {
                            return Ok(Target {
                                backend: t.backend,
                                rewrite: "ref.uri",
                                original: t.original.clone(),
                            });
                        }
                        let route = view
                            .route_resource(uri, &self.shared.backend_names())
                            .ok_or_else(|| invalid(format!("Unknown resource: {uri}")))?;
                        Ok(Target {
                            backend: route.backend,
                            rewrite: "ref.uri",
                            original: route.uri,
                        })
                    }
                    _ => Err(invalid(
                        "params.ref.type must be ref/prompt or ref/resource".into(),
                    )),
                }
            }
            other => Err(ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )),
        }
    }

    /// Ends the telemetry of a call refused before it reached a backend (unknown target, policy
    /// denial): metrics, span and audit record.
    fn refuse(&self, call: CallEvent, e: &ErrorObject) {
        let audit = call.finish(
            &self.shared.telemetry,
            Finish::error(e),
            self.shared.audit.is_some(),
        );
        if let (Some(record), Some(sink)) = (audit, &self.shared.audit)
            && !sink.handle.record(record)
        {
            self.shared.telemetry.audit_dropped();
            warn!(session = %self.id, "Audit queue full; record dropped");
        }
    }

    /// Held for stateless (2026-07-28) clients: its id is never shown to them.
    fn stateless(&self) -> bool {
        self.client.protocol_version == crate::protocol::ProtocolVersion::V2026_07_28
    }

    fn authorize(
        &self,
        req: &Request,
        t: &Target,
        record: &mut DecisionRecord,
    ) -> Result<(), ErrorObject> {
        if self.shared.policy.is_empty() {
            return Ok(());
        }
        let backend = self.backend_name(t.backend);
        let action = match req.method.as_str() {
            methods::TOOLS_CALL => Action::CallTool {
                backend,
                tool: &t.original,
            },
            methods::PROMPTS_GET => Action::GetPrompt {
                backend,
                prompt: &t.original,
            },
            methods::RESOURCES_READ => Action::ReadResource {
                backend,
                uri: &t.original,
            },
            m => Action::Other { backend, method: m },
        };
        let arguments = req.params.as_ref().and_then(|p| p.get("arguments"));
        let ctx = CallContext {
            principal: &self.principal,
            session_id: &self.id,
            action,
            arguments,
        };
        match self.shared.policy.authorize(&ctx, record) {
            Verdict::Allow => Ok(()),
            Verdict::Deny { rule, reason } => Err(ErrorObject::new(
                codes::FORBIDDEN,
                format!("Denied by policy: {reason}"),
            )
            .with_data(json!({"rule": rule}))),
        }
    }

    /// The child for a backend, spawning it on first use (or after eager restarts gave up).
    /// A request is waiting, so it connects at once: backoff paces only the supervisor's own
    /// restarts, and a failure still counts towards their cap.
    async fn child(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        backend: usize,
    ) -> Option<ActorRef<BackendMsg>> {
        if self.children[backend].is_none() {
            self.spawn_child(myself, backend, 0).await;
        }
        self.children[backend].clone()
    }

    /// Starts a backend child; `attempt` (consecutive failures) sets its backoff before connecting.
    async fn spawn_child(&mut self, myself: &ActorRef<SessionMsg>, backend: usize, attempt: u32) {
        let args = BackendArgs {
            shared: self.shared.clone(),
            backend,
            session: myself.clone(),
            session_id: self.id.clone(),
            client: self.client.clone(),
            attempt,
            log_level: self.log_level.clone(),
        };
        match Actor::spawn_linked(None, BackendSession, args, myself.get_cell()).await {
            Ok((child, _)) => {
                self.child_ids.insert(child.get_id(), backend);
                self.children[backend] = Some(child);
            }
            Err(e) => {
                warn!(session = %self.id, backend = %self.backend_name(backend), error = %e, "Could not start backend session")
            }
        }
    }

    fn fail_one(&mut self, upstream_id: i64, err: ErrorObject) {
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

    /// Ends a forwarded request: writes its audit record (when the log is on) and releases the
    /// answer — at once, or in `fsync` mode only after the record is durable.
    fn complete(&mut self, mut e: InFlight, bytes: Bytes, finish: Finish<'_>) {
        let audit = e.call.take().and_then(|call| {
            call.finish(&self.shared.telemetry, finish, self.shared.audit.is_some())
        });
        if let (Some(record), Some(sink)) = (audit, &self.shared.audit) {
            match (&self.myself, sink.durable) {
                (Some(me), true) => {
                    let (handle, me, stream) = (sink.handle.clone(), me.clone(), e.stream);
                    tokio::spawn(async move {
                        if let Err(error) = handle.record_durable(record).await {
                            error!(%error, "Audit record not written; answering anyway");
                        }
                        let _ = me.cast(SessionMsg::Finish { stream, bytes });
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
        self.streams.finish(e.stream, bytes);
    }

    fn arm_sweep(&mut self, myself: &ActorRef<SessionMsg>) {
        if !self.sweep_armed && !self.pending.is_empty() {
            self.sweep_armed = true;
            myself.send_after(SWEEP_PERIOD, || SessionMsg::Sweep);
        }
    }

    fn expire_deadlines(&mut self) {
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

    fn send_cancel(&self, backend: usize, id: RequestId, reason: &str) {
        if let Some(c) = &self.children[backend] {
            let mut p = Map::new();
            p.insert(
                "requestId".into(),
                serde_json::to_value(&id).unwrap_or(Value::Null),
            );
            p.insert("reason".into(), Value::String(reason.into()));
            let _ = c.cast(BackendMsg::Send(
                Notification::new(methods::CANCELLED, Some(p)).into_message(),
            ));
        }
    }

    fn on_client_message(&mut self, msg: Message) {
        match msg {
            Message::Notification(n) if n.method == methods::CANCELLED => {
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
            Message::Notification(n) if n.method == methods::ROOTS_LIST_CHANGED => {
                for c in self.children.iter().flatten() {
                    let _ = c.cast(BackendMsg::Send(n.clone().into_message()));
                }
            }
            Message::Notification(_) => {}
            Message::Response(mut r) => {
                let RequestId::Num(g) = r.id else { return };
                let Some(sr) = self.pending.server_requests.remove(&g) else {
                    debug!(session = %self.id, id = g, "Response to an unknown server request ignored");
                    return;
                };
                r.id = sr.original_id;
                if let Some(c) = &self.children[sr.backend] {
                    let _ = c.cast(BackendMsg::Send(r.into_message()));
                }
            }
            Message::Request(_) => {}
        }
    }

    /// The client stream a backend message belongs on.
    fn stream_for(&self, backend: usize, related: Option<&RequestId>) -> u64 {
        if let Some(RequestId::Num(n)) = related
            && let Some(e) = self.pending.get(*n)
        {
            return e.stream;
        }
        self.pending
            .sole_for_backend(backend)
            .map(|e| e.stream)
            .unwrap_or(GET_STREAM)
    }

    fn on_upstream(&mut self, backend: usize, msg: Message, related: Option<RequestId>) {
        match msg {
            Message::Response(r) => {
                let RequestId::Num(n) = r.id else { return };
                let Some(e) = self.pending.take(n) else {
                    return;
                };
                if e.backend != backend {
                    return;
                }
                match r.outcome {
                    Ok(raw) => {
                        let finish = Finish {
                            outcome: outcome_of_result(&e.method, &raw),
                            message: None,
                            result: Some(raw.get()),
                        };
                        let bytes = encode_result(&e.client_id, raw.get().as_bytes());
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
            Message::Request(mut r) => self.on_server_request(backend, &mut r, related),
            Message::Notification(n) => self.on_backend_notification(backend, n, related),
        }
    }

    fn on_server_request(&mut self, backend: usize, r: &mut Request, related: Option<RequestId>) {
        let needs = match r.method.as_str() {
            methods::PING => {
                if let Some(c) = &self.children[backend] {
                    let _ = c.cast(BackendMsg::Send(
                        Response::ok(r.id.clone(), &json!({})).into_message(),
                    ));
                }
                return;
            }
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(cap) = needs
            && !self.client.capabilities.contains_key(cap)
        {
            let e = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("the client did not declare the {cap} capability"),
            );
            if let Some(c) = &self.children[backend] {
                let _ = c.cast(BackendMsg::Send(
                    Response::error(r.id.clone(), e).into_message(),
                ));
            }
            return;
        }
        let stream = self.stream_for(backend, related.as_ref());
        if stream == GET_STREAM
            && self.client.protocol_version.era() == crate::protocol::Era::Stateless
        {
            // Stateless clients are only reachable inside a request (MRTR): nobody would answer.
            let e = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "{} outside a client request cannot reach a 2026-07-28 client",
                    r.method
                ),
            );
            if let Some(c) = &self.children[backend] {
                let _ = c.cast(BackendMsg::Send(
                    Response::error(r.id.clone(), e).into_message(),
                ));
            }
            return;
        }
        let g = self.pending.add_server_request(ServerRequest {
            backend,
            original_id: r.id.clone(),
            stream,
        });
        r.id = RequestId::Num(g);
        let bytes = Message::Request(r.clone()).to_bytes();
        self.streams.interim(stream, bytes);
    }

    fn on_backend_notification(
        &mut self,
        backend: usize,
        mut n: Notification,
        related: Option<RequestId>,
    ) {
        match n.method.as_str() {
            methods::PROGRESS => {
                let Some(RequestId::Num(up)) = n
                    .param("progressToken")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                else {
                    return;
                };
                let Some(e) = self.pending.get(up) else {
                    return;
                };
                let (stream, token) = (e.stream, e.progress_token.clone());
                if let (Some(p), Some(token)) = (n.params.as_mut(), token) {
                    p.insert("progressToken".into(), token);
                    self.streams.interim(stream, n.into_message().to_bytes());
                }
            }
            methods::CANCELLED => {
                let Some(id) = n
                    .param("requestId")
                    .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok())
                else {
                    return;
                };
                if let Some(g) = self.pending.find_server_request(backend, &id)
                    && let Some(sr) = self.pending.server_requests.remove(&g)
                    && let Some(p) = n.params.as_mut()
                {
                    p.insert("requestId".into(), Value::from(g));
                    self.streams.interim(sr.stream, n.into_message().to_bytes());
                }
            }
            methods::TOOLS_LIST_CHANGED
            | methods::PROMPTS_LIST_CHANGED
            | methods::RESOURCES_LIST_CHANGED => {
                // Lists are shared: the catalog re-discovers and every session hears about it.
                self.shared.catalog.request_refresh(backend);
            }
            methods::RESOURCES_UPDATED => {
                if let Some(uri) = n.param("uri").and_then(Value::as_str).map(str::to_string) {
                    let view = self.scope.view(&self.shared.catalog);
                    if let Some(e) = view
                        .resources
                        .iter()
                        .find(|e| e.backend == backend && e.original == uri)
                        && let Some(p) = n.params.as_mut()
                    {
                        p.insert("uri".into(), Value::String(e.name.clone()));
                    }
                }
                self.streams
                    .interim(GET_STREAM, n.into_message().to_bytes());
            }
            _ => {
                let stream = self.stream_for(backend, related.as_ref());
                self.streams.interim(stream, n.into_message().to_bytes());
            }
        }
    }

    fn on_catalog_changed(&mut self, backend: usize, changed: Changed) {
        let in_scope = match self.scope {
            Scope::Merged(_) => true,
            Scope::Backend(b) => backend == usize::MAX || b == backend,
        };
        if !in_scope {
            return;
        }
        for (flag, method) in [
            (changed.tools, methods::TOOLS_LIST_CHANGED),
            (changed.prompts, methods::PROMPTS_LIST_CHANGED),
            (changed.resources, methods::RESOURCES_LIST_CHANGED),
        ] {
            if flag {
                self.streams.interim(
                    GET_STREAM,
                    Notification::new(method, None).into_message().to_bytes(),
                );
            }
        }
    }
}

/// Sets `params[key]` where key may be `a.b` (one level of nesting).
fn set_path(params: &mut Map<String, Value>, key: &str, value: String) {
    match key.split_once('.') {
        None => {
            params.insert(key.into(), Value::String(value));
        }
        Some((outer, inner)) => {
            if let Some(Value::Object(o)) = params.get_mut(outer) {
                o.insert(inner.into(), Value::String(value));
            }
        }
    }
}
