//! Assembles a running gateway from a `Config`: catalog and discovery, session registry, listeners;
//! and takes it down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::catalog::{Catalog, spawn_discovery};
use crate::config::Config;
use crate::integrity::Checker;
use crate::listener::{self, ListenerState};
use crate::policy::{Pipeline, Stage, reload};
use crate::session::{AuditSink, SessionRegistry, Shared};
use crate::telemetry::Telemetry;
use crate::telemetry::audit::{AuditDurability, AuditLog};
use crate::upstream::UpstreamPool;

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    registry: Arc<SessionRegistry>,
    addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    servers: JoinSet<()>,
    grace: Duration,
    admin: Arc<crate::admin::AdminState>,
    admin_addr: Option<SocketAddr>,
}

impl Gateway {
    /// Binds every listener (port 0 picks a free port) and starts discovery in the background.
    pub async fn start(config: Config) -> anyhow::Result<Gateway> {
        let telemetry =
            Telemetry::start(&config.telemetry, &config.backends).context("starting telemetry")?;
        Self::start_with(config, Arc::new(telemetry)).await
    }

    /// Like `start`, with a telemetry pipeline built by the caller (the binary builds it first, so
    /// its log subscriber can export the gateway's own `tracing` spans).
    pub async fn start_with(config: Config, telemetry: Arc<Telemetry>) -> anyhow::Result<Gateway> {
        Self::assemble(config, telemetry, Vec::new()).await
    }

    /// Like `start`, with policy stages of the embedder's own after the configured ones (a
    /// control that is not in `policy/registry.rs`, or a test's).
    pub async fn start_with_stages(
        config: Config,
        stages: Vec<Arc<dyn Stage>>,
    ) -> anyhow::Result<Gateway> {
        let telemetry =
            Telemetry::start(&config.telemetry, &config.backends).context("starting telemetry")?;
        Self::assemble(config, Arc::new(telemetry), stages).await
    }

    async fn assemble(
        config: Config,
        telemetry: Arc<Telemetry>,
        extra: Vec<Arc<dyn Stage>>,
    ) -> anyhow::Result<Gateway> {
        let pool =
            UpstreamPool::new(&config.backends).context("building the upstream connection pool")?;
        let (checker, integrity_events) =
            Checker::new(&config.integrity, &config.integrity.scan, &config.backends)
                .map_err(|e| anyhow::anyhow!("integrity: {e}"))?;
        let checker = Arc::new(checker);
        let catalog = Catalog::with_integrity(config.backends.clone(), Some(checker.clone()));
        let audit = match &config.audit {
            Some(cfg) => {
                let (handle, writer) = AuditLog::start(cfg.clone())
                    .await
                    .with_context(|| format!("opening the audit log {}", cfg.path.display()))?;
                tokio::spawn(async move {
                    match writer.await {
                        Ok(Ok(stats)) => info!(records = stats.records_written, "Audit log closed"),
                        Ok(Err(error)) => error!(%error, "The audit log writer stopped"),
                        Err(error) => error!(%error, "The audit log writer panicked"),
                    }
                });
                let durable = cfg.durability == AuditDurability::Fsync;
                telemetry.attach_audit(handle.clone());
                Some(AuditSink { handle, durable })
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            catalog: catalog.clone(),
            pool: pool.clone(),
            policy: Pipeline::from_config(&config.policy, extra)?,
            limits: config.sessions.clone(),
            epoch: tokio::time::Instant::now(),
            audit,
            telemetry: telemetry.clone(),
        });
        telemetry.attach_catalog(catalog.clone());
        crate::integrity::report::spawn(
            integrity_events,
            telemetry.metrics.clone(),
            shared.audit.as_ref().map(|a| a.handle.clone()),
        );
        let shutdown = CancellationToken::new();
        let registry = SessionRegistry::start(shared.clone())
            .await
            .context("starting the session supervisor")?;
        registry.spawn_sweeper(shutdown.clone());
        registry.spawn_catalog_fanout(shutdown.clone());
        spawn_discovery(catalog, pool, shutdown.clone());
        if shared.policy.reloadable() {
            let (p, m) = (shared.policy.clone(), telemetry.metrics.clone());
            reload::spawn_watch(p, m, reload::POLL_INTERVAL, shutdown.clone());
        }

        let mut servers = JoinSet::new();
        let mut addrs = Vec::new();
        let mut states = Vec::new();
        for lc in &config.listeners {
            let tcp = tokio::net::TcpListener::bind(lc.bind)
                .await
                .with_context(|| format!("binding listener {:?} to {}", lc.name, lc.bind))?;
            let addr = tcp.local_addr()?;
            let mut lc = lc.clone();
            if let crate::config::AuthConfig::OAuth(o) = &mut lc.auth
                && o.resource == format!("http://{}/mcp", lc.bind)
            {
                // The default resource names the address actually bound (port 0 picks one).
                o.resource = format!("http://{addr}/mcp");
            }
            let state = ListenerState::new(lc.clone(), shared.clone(), registry.clone());
            match state.auth.load().oauth() {
                None => {
                    warn!(listener = %lc.name, %addr, "Authentication is off on this listener (auth: mode none): every caller is anonymous")
                }
                Some(_) => {
                    // The issuers' keys, fetched now rather than by the first caller.
                    let st = state.clone();
                    tokio::spawn(async move { st.auth.load_full().prefetch().await });
                }
            }
            let _ = state.local.set(crate::telemetry::call::Local::of(addr));
            state.bound.store(true, Ordering::Release);
            states.push(state.clone());
            let app = listener::router(state).into_make_service_with_connect_info::<SocketAddr>();
            let stop = shutdown.clone();
            servers.spawn(async move {
                let serve = axum::serve(tcp, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(error) = serve.await {
                    warn!(%error, "Listener stopped with an error");
                }
            });
            info!(listener = %lc.name, %addr, "Listening");
            addrs.push(addr);
        }
        let grace = config.shutdown_grace;
        let admin_bind = config.admin.as_ref().map(|a| a.bind);
        let admin = crate::admin::AdminState::new(config, shared.clone(), registry.clone(), states);
        let admin_addr = match admin_bind {
            Some(bind) => {
                let (addr, task) =
                    crate::admin::serve(admin.clone(), bind, shutdown.clone()).await?;
                servers.spawn(async move {
                    let _ = task.await;
                });
                Some(addr)
            }
            None => None,
        };
        Ok(Gateway {
            shared,
            registry,
            addrs,
            shutdown,
            servers,
            grace,
            admin,
            admin_addr,
        })
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `http://ADDR/mcp` of the first listener.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addrs[0])
    }

    /// The admin listener's address, when `admin:` is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Reloads credentials and policies from the config file (SIGHUP, `POST /admin/reload`).
    pub async fn reload(&self) -> crate::admin::reload::Report {
        self.admin.reload().await
    }

    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.registry
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Waits until every backend has had its first discovery attempt.
    pub async fn ready(&self) {
        let mut w = self.shared.catalog.ready_watch();
        let _ = w.wait_for(|r| *r).await;
    }

    /// Graceful stop: refuse new connections, let in-flight calls finish (up to the grace period),
    /// end every session (closing backend sessions and stdio children), then return.
    pub async fn shutdown(mut self) {
        info!(grace = ?self.grace, "Shutting down");
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.grace;
        while self.registry.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(1));
        self.registry.close_all(left).await;
        if let Some(a) = &self.shared.audit
            && let Err(error) = a.handle.flush().await
        {
            warn!(%error, "Could not flush the audit log");
        }
        self.shared.telemetry.shutdown().await;
        let drain = async { while self.servers.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), drain)
            .await
            .is_err()
        {
            warn!("Some connections did not close in time; dropping them");
            self.servers.abort_all();
        }
        info!("Stopped");
    }
}
