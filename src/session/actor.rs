//! The SessionActor: one developer session. It owns the session's id maps, client streams and
//! stage slots, supervises one BackendSession child per backend it uses (restarting failed ones
//! with backoff), and dispatches its messages to the request path (`call.rs`) and the backend →
//! client path (`inbound.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent};
use serde_json::{Map, Value, json};
use tracing::{debug, warn};

use super::backend::{BackendArgs, BackendSession};
use super::msg::{BackendMsg, SessionMsg};
use super::pending::Pending;
use super::streams::Streams;
use super::{ClientInfo, Scope, SessionError, Shared};
use crate::policy::{Principal, SessionSlots};
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, Notification, RequestId, Response, methods};
use crate::telemetry::{CallEvent, Denial, Finish};
use crate::upstream::UpstreamError;
use crate::upstream::http::DirectSender;

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
    /// Who this session belongs to, fixed by the listener's authentication step.
    pub principal: Arc<Principal>,
}

pub struct SessionState {
    pub(super) id: Arc<str>,
    pub(super) scope: Scope,
    pub(super) client: ClientInfo,
    pub(super) shared: Arc<Shared>,
    pub(super) principal: Arc<Principal>,
    /// Each policy stage's state for this session.
    pub(super) slots: SessionSlots,
    pub(super) children: Vec<Option<ActorRef<BackendMsg>>>,
    /// Per backend, once its child is ready over HTTP: sends without a hop through the child.
    pub(super) direct: Vec<Option<DirectSender>>,
    child_ids: HashMap<ActorId, usize>,
    failures: Vec<u32>,
    pub(super) pending: Pending,
    pub(super) streams: Streams,
    pub(super) log_level: Option<Value>,
    sweep_armed: bool,
    /// This actor, for answers released later (after their audit record is durable).
    pub(super) myself: Option<ActorRef<SessionMsg>>,
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
            slots: a.shared.policy.new_session(),
            id: a.id,
            scope: a.scope,
            client: a.client,
            shared: a.shared,
            principal: a.principal,
            children: vec![None; n],
            direct: vec![None; n],
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
                // Boxed, like every deep path below: an actor's task holds its handler's future
                // inline, so its largest await state is paid by every idle session.
                Box::pin(st.on_client_request(&myself, req, stream, permit, *origin)).await;
            }
            SessionMsg::Resume(paused, decided) => {
                Box::pin(st.resume(&myself, *paused, decided)).await
            }
            SessionMsg::Client(msg, origin) => {
                if let (crate::protocol::Message::Notification(n), Some(origin)) = (&msg, origin) {
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
                    st.fail_one(n, st.backend_error(backend, &error));
                }
            }
            SessionMsg::BackendReady { backend, direct } => {
                if let Some(f) = st.failures.get_mut(backend) {
                    *f = 0;
                }
                if let Some(d) = st.direct.get_mut(backend) {
                    *d = direct;
                }
            }
            SessionMsg::CatalogChanged { backend, changed } => {
                st.on_catalog_changed(backend, changed)
            }
            SessionMsg::Finish {
                stream,
                bytes,
                status,
            } => st.streams.finish_with(stream, bytes, status),
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
        Box::pin(st.on_child_gone(&myself, backend, &reason)).await;
        Ok(())
    }
}

/// A `notifications/cancelled` for `id`.
pub(super) fn cancelled(id: RequestId, reason: &str) -> bytes::Bytes {
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

impl SessionState {
    pub(super) fn backend_name(&self, i: usize) -> &str {
        self.shared
            .catalog
            .backends()
            .get(i)
            .map(|b| b.name.as_str())
            .unwrap_or("?")
    }

    /// Held for stateless (2026-07-28) clients: its id is never shown to them.
    pub(super) fn stateless(&self) -> bool {
        self.client.protocol_version == crate::protocol::ProtocolVersion::V2026_07_28
    }

    pub(super) fn backend_error(&self, backend: usize, e: &UpstreamError) -> ErrorObject {
        let name = self.backend_name(backend);
        ErrorObject::new(
            codes::BACKEND_UNAVAILABLE,
            format!("backend '{name}' is unavailable: {e}"),
        )
        .with_data(json!({"backend": name, "retryable": e.retryable()}))
    }

    /// A child ended: fail what it had in flight, cancel what it asked the client, restart it.
    async fn on_child_gone(&mut self, myself: &ActorRef<SessionMsg>, backend: usize, reason: &str) {
        self.children[backend] = None;
        self.direct[backend] = None;
        self.failures[backend] += 1;
        let name = self.backend_name(backend).to_string();
        warn!(session = %self.id, backend = %name, %reason, "Backend session failed");
        let err = ErrorObject::new(
            codes::BACKEND_UNAVAILABLE,
            format!("backend '{name}' failed: {reason}"),
        )
        .with_data(json!({"backend": name, "retryable": true}));
        let tel = self.shared.telemetry.clone();
        tel.metrics.backend_restarted(&tel.backends[backend].name);
        for e in self.pending.drain_backend(backend) {
            let bytes = Response::error(e.client_id.clone(), err.clone())
                .into_message()
                .to_bytes();
            tel.metrics.denied(Denial::BackendUnavailable);
            self.complete(e, bytes, Finish::error(&err));
        }
        let orphaned: Vec<i64> = self
            .pending
            .server_requests
            .iter()
            .filter(|(_, r)| r.backend == backend)
            .map(|(k, _)| *k)
            .collect();
        for g in orphaned {
            if let Some(r) = self.pending.server_requests.remove(&g) {
                let note = cancelled(RequestId::Num(g), "the backend that asked restarted");
                self.streams.interim(r.stream, note);
            }
        }
        if self.failures[backend] <= MAX_EAGER_RESTARTS {
            let attempt = self.failures[backend];
            self.spawn_child(myself, backend, attempt).await;
        }
    }

    /// A child found dead before its supervision event arrived (a request came in between) is
    /// handled as that event, at once: its calls fail, it is replaced, and the event is ignored.
    pub(super) async fn reap_if_dead(&mut self, myself: &ActorRef<SessionMsg>, backend: usize) {
        let Some(c) = &self.children[backend] else {
            return;
        };
        if !matches!(c.get_status(), ActorStatus::Stopping | ActorStatus::Stopped) {
            return;
        }
        if self.child_ids.remove(&c.get_id()).is_some() {
            self.on_child_gone(myself, backend, "stopped").await;
        }
    }

    /// The child for a backend, spawning it on first use (or after eager restarts gave up).
    /// A request is waiting, so it connects at once: backoff paces only the supervisor's own
    /// restarts, and a failure still counts towards their cap.
    pub(super) async fn child(
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
        // Boxed: this rare future is large, and inline it would size every session's actor task.
        match Box::pin(Actor::spawn_linked(
            None,
            BackendSession,
            args,
            myself.get_cell(),
        ))
        .await
        {
            Ok((child, _)) => {
                self.child_ids.insert(child.get_id(), backend);
                self.children[backend] = Some(child);
            }
            Err(e) => {
                warn!(session = %self.id, backend = %self.backend_name(backend), error = %e, "Could not start backend session")
            }
        }
    }

    pub(super) fn arm_sweep(&mut self, myself: &ActorRef<SessionMsg>) {
        if !self.sweep_armed && !self.pending.is_empty() {
            self.sweep_armed = true;
            myself.send_after(SWEEP_PERIOD, || SessionMsg::Sweep);
        }
    }
}
