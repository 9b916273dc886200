//! The admin listener (`admin:`, loopback by default): reload the config's credentials and the
//! policies, list and end sessions, explain a principal's effective permissions, review
//! quarantined definitions. Every
//! endpoint but the health probes needs the admin role.

mod integrity;
pub mod reload;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::Exposed;
use crate::config::NamingPolicy;
use crate::identity::{AuthError, Authenticator};
use crate::listener::ListenerState;
use crate::policy::{Action, Principal, Via};
use crate::protocol::methods;
use crate::session::{Scope, SessionRegistry, Shared};

/// What the admin handlers share.
#[derive(Debug)]
pub struct AdminState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) registry: Arc<SessionRegistry>,
    /// The MCP listeners (their credentials are swapped by a reload).
    pub(crate) listeners: Vec<Arc<ListenerState>>,
    pub(crate) auth: Authenticator,
    pub(crate) role: String,
    pub(crate) source: Option<std::path::PathBuf>,
    /// The config the gateway started with (a reload names what differs and needs a restart).
    pub(crate) running: crate::config::Config,
}

impl AdminState {
    /// `cfg`: the admin listener's, when one is configured (without, only `reload` is used: SIGHUP).
    pub fn new(
        running: crate::config::Config,
        shared: Arc<Shared>,
        registry: Arc<SessionRegistry>,
        listeners: Vec<Arc<ListenerState>>,
    ) -> Arc<Self> {
        let (auth, role) = match &running.admin {
            Some(cfg) => (Authenticator::new(&cfg.auth, &[]), cfg.role.clone()),
            None => (Authenticator::None, "admin".to_string()),
        };
        Arc::new(AdminState {
            auth,
            role,
            shared,
            registry,
            listeners,
            source: running.source.clone(),
            running,
        })
    }

    /// Reloads credentials and policies (the admin endpoint and SIGHUP).
    pub async fn reload(&self) -> reload::Report {
        reload::run(
            &self.listeners,
            &self.shared,
            self.source.as_deref(),
            &self.running,
        )
        .await
    }
}

/// The admin routes.
pub fn router(st: Arc<AdminState>) -> Router {
    let guarded = Router::new()
        .route("/admin/sessions", get(sessions))
        .route("/admin/sessions/{id}", delete(end_session))
        .route("/admin/reload", post(reload_now))
        .route("/admin/permissions", get(permissions))
        .route("/admin/quarantine", get(integrity::list))
        .route("/admin/quarantine/approve", post(integrity::approve))
        .route("/admin/quarantine/block", post(integrity::block))
        .layer(middleware::from_fn_with_state(st.clone(), admin_only));
    let scrape = Router::new()
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(st.clone(), authenticated));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .merge(scrape)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(st)
}

async fn readyz(State(st): State<Arc<AdminState>>) -> Response {
    if st.shared.catalog.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// The caller's principal, or the refusal.
async fn principal(st: &AdminState, headers: &http::HeaderMap) -> Result<Arc<Principal>, Response> {
    st.auth.authenticate(headers).await.map_err(|e| match e {
        AuthError::Malformed(_) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
        _ => refuse(StatusCode::UNAUTHORIZED, e.to_string()),
    })
}

/// Any credential the admin listener accepts (a Prometheus scraper's API key, say).
async fn authenticated(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    match principal(&st, req.headers()).await {
        Ok(_) => next.run(req).await,
        Err(refusal) => refusal,
    }
}

/// `GET /metrics` (Prometheus text or OpenMetrics, as on an open listener).
async fn metrics(State(st): State<Arc<AdminState>>, headers: http::HeaderMap) -> Response {
    crate::listener::scrape(&st.shared, &headers)
}

/// A valid credential with the admin role (anyone, on a loopback `mode: none` admin listener).
async fn admin_only(State(st): State<Arc<AdminState>>, mut req: Request, next: Next) -> Response {
    let p = match principal(&st, req.headers()).await {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    if p.via != Via::Anonymous && !p.has_role(&st.role) {
        tracing::warn!(
            principal = p.key(),
            "Refused an admin request: no admin role"
        );
        return refuse(
            StatusCode::FORBIDDEN,
            format!("the admin endpoints need role {:?}", st.role),
        );
    }
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// `GET /admin/sessions`: every live session — who, how old, which backends.
async fn sessions(State(st): State<Arc<AdminState>>) -> Response {
    let now = st.shared.now_ms();
    let names = st.shared.backend_names();
    let list: Vec<Value> = st
        .registry
        .sessions()
        .iter()
        .map(|s| {
            let backends: Vec<&str> = match s.scope {
                Scope::Merged(_) => names.clone(),
                Scope::Backend(i) => names.get(i).copied().into_iter().collect(),
            };
            json!({
                "id": &*s.id,
                "principal": s.principal.key(),
                "via": s.principal.via.as_str(),
                "roles": s.principal.roles.iter().map(|r| &**r).collect::<Vec<_>>(),
                "protocolVersion": s.protocol_version.as_str(),
                "stateless": s.stateless,
                "ageSeconds": now.saturating_sub(s.created_ms) / 1000,
                "idleSeconds": now.saturating_sub(s.last_activity()) / 1000,
                "inFlight": s.in_flight(),
                "backends": backends,
            })
        })
        .collect();
    axum::Json(json!({"sessions": list})).into_response()
}

/// `DELETE /admin/sessions/{id}`: ends a session and its backend sessions.
async fn end_session(State(st): State<Arc<AdminState>>, Path(id): Path<String>) -> Response {
    match st.registry.remove(&id, "ended by an administrator") {
        Some(s) => {
            tracing::info!(session = %s.id, principal = s.principal.key(), "Session ended by an administrator");
            axum::Json(json!({"ended": &*s.id, "principal": s.principal.key()})).into_response()
        }
        None => refuse(StatusCode::NOT_FOUND, "no such session"),
    }
}

/// `POST /admin/reload`: 200 with what was applied, or 422 with why nothing was.
async fn reload_now(State(st): State<Arc<AdminState>>) -> Response {
    let report = st.reload().await;
    let status = if report.ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(report.to_json())).into_response()
}

#[derive(Debug, Deserialize)]
struct Who {
    subject: String,
    /// Comma-separated roles.
    #[serde(default)]
    roles: String,
}

/// `GET /admin/permissions?subject=bob&roles=dev,ops`: every tool, prompt and resource of the
/// catalog, whether that principal may see and call it, and if not, which rule says no.
async fn permissions(State(st): State<Arc<AdminState>>, Query(who): Query<Who>) -> Response {
    let mut roles: Vec<Arc<str>> = who
        .roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(Arc::from)
        .collect();
    roles.sort();
    roles.dedup();
    let principal = Principal {
        subject: Some(who.subject.as_str().into()),
        roles,
        via: Via::Token,
        ..Principal::default()
    };
    let view = Scope::Merged(NamingPolicy::Prefix).view(&st.shared.catalog);
    let names = st.shared.backend_names();
    let explain = |list: &str, items: &[Exposed]| -> Vec<Value> {
        items
            .iter()
            .map(|e| {
                let backend = names.get(e.backend).copied().unwrap_or_default();
                let action = Action::new(list, backend, &e.original).with_facts(&e.facts);
                match st.shared.policy.explain(&principal, &action) {
                    Ok(()) => json!({"name": e.name, "allowed": true}),
                    Err((stage, d)) => json!({
                        "name": e.name,
                        "allowed": false,
                        "rule": format!("{stage}:{}", d.rule),
                        "reason": d.message,
                    }),
                }
            })
            .collect()
    };
    axum::Json(json!({
        "principal": principal.key(),
        "roles": principal.roles.iter().map(|r| &**r).collect::<Vec<_>>(),
        "tools": explain(methods::TOOLS_LIST, &view.tools),
        "prompts": explain(methods::PROMPTS_LIST, &view.prompts),
        "resources": explain(methods::RESOURCES_LIST, &view.resources),
    }))
    .into_response()
}

/// Binds the admin listener; serves until `stop`.
pub async fn serve(
    st: Arc<AdminState>,
    bind: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    let tcp = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the admin listener to {bind}"))?;
    let addr = tcp.local_addr()?;
    if st.auth.oauth().is_some() {
        let st = st.clone();
        tokio::spawn(async move { st.auth.prefetch().await });
    }
    let app = router(st);
    let task = tokio::spawn(async move {
        let serve = axum::serve(tcp, app).with_graceful_shutdown(async move {
            stop.cancelled().await;
        });
        if let Err(error) = serve.await {
            tracing::warn!(%error, "The admin listener stopped with an error");
        }
    });
    tracing::info!(%addr, "Admin listener up");
    Ok((addr, task))
}
