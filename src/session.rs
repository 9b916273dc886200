//! Developer sessions: one `SessionActor` per session, supervising one `BackendSession` child per
//! backend it uses; the registry that maps session ids to them.

mod actor;
mod audit;
mod backend;
mod call;
mod inbound;
mod local;
mod msg;
mod pending;
mod principals;
mod registry;
pub mod streams;
mod supervisor;
mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ractor::ActorRef;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use actor::SessionActor;
pub use audit::AuditSink;
pub use msg::SessionMsg;
pub use principals::{PARK_TTL, Parked, PrincipalEntry, UnparkError};
pub use registry::{CreateError, SessionRegistry};
pub use streams::Outbound;

use crate::catalog::{Catalog, View};
use crate::config::{NamingPolicy, SessionConfig};
use crate::policy::{Pipeline, Principal};
use crate::protocol::ProtocolVersion;
use crate::upstream::UpstreamPool;

/// What every session shares: the catalog, the connection pool, the policy pipeline, limits.
#[derive(Debug)]
pub struct Shared {
    pub catalog: Arc<Catalog>,
    pub pool: UpstreamPool,
    pub policy: Pipeline,
    pub limits: SessionConfig,
    /// Monotonic clock origin for activity stamps.
    pub epoch: tokio::time::Instant,
    /// The audit log, when configured.
    pub audit: Option<AuditSink>,
    /// Spans, metrics and their export.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn backend_names(&self) -> Vec<&str> {
        self.catalog
            .backends()
            .iter()
            .map(|b| b.name.as_str())
            .collect()
    }
}

/// Which backends a session sees, and how their names are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// All backends, merged under a naming policy (`/mcp`).
    Merged(NamingPolicy),
    /// One backend, un-prefixed (`/servers/{backend}/mcp`).
    Backend(usize),
}

impl Scope {
    pub fn view(self, catalog: &Catalog) -> Arc<View> {
        let views = catalog.views();
        match self {
            Scope::Merged(p) => views.merged(p).clone(),
            Scope::Backend(i) => views.per_backend.get(i).cloned().unwrap_or_default(),
        }
    }
}

/// Answers a request the gateway serves from the catalog (ping, the list methods) — the same
/// code for sessionful and stateless clients. Returns the raw `result` JSON.
pub fn answer_locally(
    shared: &Shared,
    view: &View,
    principal: &Principal,
    req: &crate::protocol::Request,
) -> Result<bytes::Bytes, crate::protocol::ErrorObject> {
    local::answer(shared, view, principal, req, None)
}

/// The developer's client as it introduced itself in `initialize`.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub name: String,
    pub version: String,
    pub capabilities: Map<String, Value>,
    pub protocol_version: ProtocolVersion,
    /// What the client connected over (`network.protocol.name`).
    pub transport: crate::telemetry::NetProtocol,
}

/// What the HTTP layer holds for a live session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub id: Arc<str>,
    pub scope: Scope,
    pub protocol_version: ProtocolVersion,
    pub principal: Arc<Principal>,
    /// Held by the gateway for stateless (2026-07-28) clients of one principal; never reachable
    /// through an `Mcp-Session-Id`.
    pub stateless: bool,
    actor: ActorRef<SessionMsg>,
    in_flight: Arc<Semaphore>,
    in_flight_limit: usize,
    next_stream: Arc<AtomicU64>,
    last_activity: Arc<AtomicU64>,
    /// When the session was created (ms since the gateway's epoch).
    pub created_ms: u64,
}

/// Why a message could not be handed to the session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session is closed")]
    Closed,
    #[error("too many requests in flight on this session (limit {0})")]
    Busy(usize),
    #[error("{0}")]
    Resume(#[from] streams::ResumeError),
}

impl SessionHandle {
    /// Marks the session active now (resets its idle timer).
    pub fn touch(&self, now_ms: u64) {
        self.last_activity.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_activity(&self) -> u64 {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// Requests of this session still waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight_limit
            .saturating_sub(self.in_flight.available_permits())
    }

    /// Hands a client request to the session; its answer (and anything sent before it) arrives on
    /// the returned receiver. `stream` is the id used for SSE event ids.
    pub fn request(
        &self,
        req: crate::protocol::Request,
        origin: crate::telemetry::Origin,
    ) -> Result<(u64, mpsc::Receiver<Outbound>), SessionError> {
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| SessionError::Busy(self.in_flight_limit))?;
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(streams::STREAM_CHANNEL_CAPACITY);
        self.actor
            .cast(SessionMsg::Request {
                req,
                stream,
                tx,
                permit,
                origin: Box::new(origin),
            })
            .map_err(|_| SessionError::Closed)?;
        Ok((stream, rx))
    }

    /// Hands a client notification or response to the session.
    pub fn deliver(&self, msg: crate::protocol::Message) -> Result<(), SessionError> {
        self.actor
            .cast(SessionMsg::Client(msg, None))
            .map_err(|_| SessionError::Closed)
    }

    /// Hands a message the client sent to the session; a notification gets its SERVER span.
    pub fn deliver_from(
        &self,
        msg: crate::protocol::Message,
        origin: crate::telemetry::Origin,
    ) -> Result<(), SessionError> {
        self.actor
            .cast(SessionMsg::Client(msg, Some(Box::new(origin))))
            .map_err(|_| SessionError::Closed)
    }

    /// Opens (or resumes, with `Last-Event-ID`) a server→client event stream.
    pub async fn open_stream(
        &self,
        last_event_id: Option<String>,
    ) -> Result<(u64, u64, mpsc::Receiver<Outbound>), SessionError> {
        let (tx, rx) = mpsc::channel(streams::STREAM_CHANNEL_CAPACITY);
        let (reply, answer) = oneshot::channel();
        self.actor
            .cast(SessionMsg::OpenStream {
                last_event_id,
                tx,
                reply,
            })
            .map_err(|_| SessionError::Closed)?;
        let (stream, position) = tokio::time::timeout(std::time::Duration::from_secs(5), answer)
            .await
            .map_err(|_| SessionError::Closed)?
            .map_err(|_| SessionError::Closed)??;
        Ok((stream, position, rx))
    }

    /// The session actor's cell: its supervision tree (backend children) for tests and operators.
    pub fn actor_cell(&self) -> ractor::ActorCell {
        self.actor.get_cell()
    }

    pub(crate) fn stop(&self, reason: &str) {
        self.actor.stop(Some(reason.to_string()));
    }
}
