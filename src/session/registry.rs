//! The session registry: id → handle, creation with limits, idle expiry, catalog-change fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use rand::RngCore;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::actor::SessionArgs;
use super::msg::SessionMsg;
use super::principals::{PrincipalEntry, PrincipalSessions};
use super::supervisor::{SessionSupervisor, SupervisorMsg};
use super::table::SessionTable;
use super::{ClientInfo, Scope, SessionHandle, Shared};
use crate::policy::Principal;

/// How long starting one session may take before creation gives up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the gateway is at its session limit ({0}); try again later")]
    Full(usize),
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("could not start the session: {0}")]
    Spawn(String),
}

/// Every live session.
#[derive(Debug)]
pub struct SessionRegistry {
    shared: Arc<Shared>,
    table: Arc<SessionTable>,
    /// The linked parent of every session.
    supervisor: ActorRef<SupervisorMsg>,
    /// The gateway-held sessions of stateless clients, by principal and scope.
    stateless: PrincipalSessions,
    closing: std::sync::atomic::AtomicBool,
    /// Cancelled by `close_all`: long-lived streams outside sessions end with it.
    closed: CancellationToken,
}

/// 128 bits from the OS-seeded CSPRNG, hex-encoded: unguessable and safe in a header.
fn new_session_id() -> Arc<str> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes).into()
}

impl SessionRegistry {
    /// Starts the session supervisor; sessions are created through the registry.
    pub async fn start(shared: Arc<Shared>) -> anyhow::Result<Arc<Self>> {
        let table = Arc::new(SessionTable::default());
        let (supervisor, _) = Actor::spawn(None, SessionSupervisor, table.clone()).await?;
        Ok(Arc::new(Self {
            shared,
            table,
            supervisor,
            stateless: PrincipalSessions::default(),
            closing: false.into(),
            closed: CancellationToken::new(),
        }))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Cancelled when the gateway ends every session (shutdown).
    pub fn closing(&self) -> CancellationToken {
        self.closed.clone()
    }

    pub fn len(&self) -> usize {
        self.table.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.sessions.is_empty()
    }

    /// Starts a session actor for a client that just initialized.
    pub async fn create(
        self: &Arc<Self>,
        scope: Scope,
        client: ClientInfo,
        principal: Arc<Principal>,
    ) -> Result<SessionHandle, CreateError> {
        self.spawn_session(scope, client, principal, false).await
    }

    /// The gateway-held session of a stateless client's principal for `scope`, started on first
    /// use (and again after it expired). One principal's backend sessions are never another's.
    pub async fn stateless_session(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
        scope: Scope,
    ) -> Result<Arc<PrincipalEntry>, CreateError> {
        let live = |e: &Arc<PrincipalEntry>| self.table.sessions.contains_key(&e.session.id);
        if let Some(e) = self.stateless.get(principal, scope).filter(live) {
            e.session.touch(self.shared.now_ms());
            return Ok(e);
        }
        let _one_at_a_time = self.stateless.creating.lock().await;
        if let Some(e) = self.stateless.get(principal, scope).filter(live) {
            return Ok(e);
        }
        let client = super::principals::stateless_client();
        let handle = self
            .spawn_session(scope, client, principal.clone(), true)
            .await?;
        info!(session = %handle.id, principal = %super::principals::principal_key(principal), "Stateless session started");
        Ok(self.stateless.insert(principal, scope, handle))
    }

    async fn spawn_session(
        self: &Arc<Self>,
        scope: Scope,
        client: ClientInfo,
        principal: Arc<Principal>,
        stateless: bool,
    ) -> Result<SessionHandle, CreateError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(CreateError::ShuttingDown);
        }
        let max = self.shared.limits.max_sessions;
        if !self.table.admit(max) {
            return Err(CreateError::Full(max));
        }
        let id = new_session_id();
        let protocol_version = client.protocol_version;
        let args = SessionArgs {
            id: id.clone(),
            scope,
            client,
            shared: self.shared.clone(),
            principal: principal.clone(),
        };
        let started = self
            .supervisor
            .call(
                |reply| SupervisorMsg::Start(Box::new(args), reply),
                Some(START_TIMEOUT),
            )
            .await;
        let failed = match started {
            Ok(CallResult::Success(Ok(actor))) => Ok(actor),
            Ok(CallResult::Success(Err(e))) => Err(e),
            Ok(CallResult::Timeout) => Err("timed out".into()),
            Ok(CallResult::SenderError) => Err("the session supervisor is gone".into()),
            Err(e) => Err(e.to_string()),
        };
        let actor = match failed {
            Ok(actor) => actor,
            Err(why) => {
                self.table.unadmit();
                return Err(CreateError::Spawn(why));
            }
        };
        let limit = self.shared.limits.max_in_flight;
        let handle = SessionHandle {
            id: id.clone(),
            scope,
            protocol_version,
            principal,
            stateless,
            actor,
            in_flight: Arc::new(Semaphore::new(limit)),
            in_flight_limit: limit,
            next_stream: Arc::new(AtomicU64::new(1)),
            last_activity: Arc::new(AtomicU64::new(self.shared.now_ms())),
            created_ms: self.shared.now_ms(),
        };
        self.table.sessions.insert(id, handle.clone());
        debug!(session = %handle.id, "Session created");
        Ok(handle)
    }

    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.table.sessions.get(id).map(|h| h.clone())
    }

    /// Every live session (the admin listing), gateway-held ones included.
    pub fn sessions(&self) -> Vec<SessionHandle> {
        self.table
            .sessions
            .iter()
            .map(|h| h.value().clone())
            .collect()
    }

    /// Requests in flight across all sessions (for graceful shutdown).
    pub fn in_flight(&self) -> usize {
        self.table
            .sessions
            .iter()
            .map(|s| s.value().in_flight())
            .sum()
    }

    /// Ends a session (DELETE, expiry, shutdown): its backend sessions are closed.
    pub fn remove(&self, id: &str, reason: &str) -> Option<SessionHandle> {
        let h = self.table.remove(id)?;
        h.stop(reason);
        Some(h)
    }

    /// Expires idle sessions until `shutdown`.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        let ttl = self.shared.limits.idle_ttl;
        let period = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => { me.expire_idle(); }
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Ends every session idle for longer than the TTL; returns how many. A session with a
    /// request in flight is not idle.
    pub fn expire_idle(&self) -> usize {
        self.expire_idle_as_of(self.shared.now_ms())
    }

    /// Expiry as seen at `now` (milliseconds on the gateway's clock, see `Shared::now_ms`).
    pub fn expire_idle_as_of(&self, now: u64) -> usize {
        let ttl = u64::try_from(self.shared.limits.idle_ttl.as_millis()).unwrap_or(u64::MAX);
        let idle: Vec<Arc<str>> = self
            .table
            .sessions
            .iter()
            .filter(|e| {
                let s = e.value();
                if s.in_flight() > 0 {
                    // Waiting on a call is activity: the idle clock restarts from this sweep.
                    s.touch(now);
                    return false;
                }
                now.saturating_sub(s.last_activity()) > ttl
            })
            .map(|e| e.key().clone())
            .collect();
        for id in &idle {
            info!(session = %id, "Session expired after idle TTL");
            self.remove(id, "idle TTL expired");
        }
        idle.len()
    }

    /// Forwards catalog changes to every session (they tell their clients `list_changed`).
    pub fn spawn_catalog_fanout(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        let mut rx = self.shared.catalog.subscribe();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    c = rx.recv() => c,
                    _ = shutdown.cancelled() => return,
                };
                let (backend, changed) = match change {
                    Ok(c) => c,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        (usize::MAX, crate::catalog::Changed::ALL)
                    }
                    Err(_) => return,
                };
                for s in me.table.sessions.iter() {
                    let _ = s
                        .value()
                        .actor
                        .cast(SessionMsg::CatalogChanged { backend, changed });
                }
            }
        });
    }

    /// Stops accepting sessions and ends every one, waiting up to `deadline` for their
    /// backend sessions to close.
    pub async fn close_all(&self, deadline: Duration) {
        self.closing.store(true, Ordering::Release);
        self.closed.cancel();
        let handles = self.table.drain();
        let waits = handles.into_iter().map(|h| {
            let cell = h.actor.get_cell();
            async move {
                let _ = cell
                    .stop_and_wait(Some("gateway shutting down".into()), Some(deadline))
                    .await;
            }
        });
        futures::future::join_all(waits).await;
        self.supervisor.stop(Some("gateway shutting down".into()));
    }
}
