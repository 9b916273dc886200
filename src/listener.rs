//! Downstream listeners: the Streamable HTTP endpoint (`/mcp`, `/servers/{backend}/mcp`), health
//! probes, and the checks every request passes before it reaches a session.

mod authn;
mod handshake;
pub mod origin;
mod reply;
mod sse_body;
mod stateless;
mod streamable_http;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::sync::Semaphore;

pub use origin::HostPolicy;

use crate::config::ListenerConfig;
use crate::session::{SessionRegistry, Shared};
use crate::telemetry::{Denial, NetProtocol, Origin};

/// What every handler of one listener shares.
#[derive(Debug)]
pub struct ListenerState {
    pub cfg: ListenerConfig,
    pub shared: Arc<Shared>,
    pub registry: Arc<SessionRegistry>,
    pub hosts: HostPolicy,
    /// Set once the listener is bound (for `/readyz`).
    pub bound: AtomicBool,
    /// The bound address (`server.address`/`server.port` of spans).
    pub local: std::sync::OnceLock<crate::telemetry::call::Local>,
    /// Who may call (the listener's `auth:`); swapped whole by a reload.
    pub auth: arc_swap::ArcSwap<crate::identity::Authenticator>,
    requests: Arc<Semaphore>,
}

impl ListenerState {
    pub fn new(
        cfg: ListenerConfig,
        shared: Arc<Shared>,
        registry: Arc<SessionRegistry>,
    ) -> Arc<Self> {
        let hosts = HostPolicy::new(&cfg);
        let requests = Arc::new(Semaphore::new(cfg.max_concurrent_requests));
        let auth = crate::identity::Authenticator::new(&cfg.auth, &shared.backend_names());
        Arc::new(ListenerState {
            auth: arc_swap::ArcSwap::from_pointee(auth),
            cfg,
            shared,
            registry,
            hosts,
            bound: AtomicBool::new(false),
            local: std::sync::OnceLock::new(),
            requests,
        })
    }
}

/// The listener's routes.
pub fn router(state: Arc<ListenerState>) -> Router {
    let mcp = axum::routing::post(streamable_http::post)
        .get(streamable_http::get)
        .delete(streamable_http::delete);
    let virt = axum::routing::post(streamable_http::post_virtual)
        .get(streamable_http::get_virtual)
        .delete(streamable_http::delete_virtual);
    let guarded = Router::new()
        .route("/mcp", mcp)
        .route("/servers/{backend}/mcp", virt)
        .route("/ws", get(websocket::upgrade))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/.well-known/oauth-protected-resource",
            get(authn::metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(authn::metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/servers/{backend}/mcp",
            get(authn::metadata_virtual),
        )
        .merge(guarded)
        .fallback(|| async {
            reply::plain(StatusCode::NOT_FOUND, "not found: the MCP endpoint is /mcp")
        })
        .with_state(state)
}

/// Host/Origin validation and the concurrent-request bound, before any handler runs.
async fn guard(State(st): State<Arc<ListenerState>>, mut req: Request, next: Next) -> Response {
    if let Err(why) = st.hosts.check(req.headers()) {
        tracing::info!(reason = %why, "Rejected request: Host/Origin not allowed");
        st.shared.telemetry.metrics.denied(match why {
            origin::Rejected::Origin(_) => Denial::Origin,
            origin::Rejected::Host(_) | origin::Rejected::NoHost => Denial::Host,
        });
        return reply::plain(StatusCode::FORBIDDEN, &format!("forbidden: {why}"));
    }
    // Where and when the request arrived, with its trace context: every handler's messages start here.
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let protocol = if req.uri().path() == "/ws" {
        NetProtocol::WebSocket
    } else {
        NetProtocol::Http
    };
    let origin = Origin::new(protocol, peer, st.local.get().cloned(), Some(req.headers()));
    req.extensions_mut().insert(origin);
    let Ok(permit) = st.requests.clone().try_acquire_owned() else {
        return reply::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is at its concurrent request limit; retry shortly",
        );
    };
    // Every MCP entry point authenticates here: the handlers read the principal from the request.
    let principal = match authn::authenticate(&st, req.headers(), req.uri().path()).await {
        Ok(p) => p,
        Err(refusal) => return refusal,
    };
    req.extensions_mut().insert(principal);
    let resp = next.run(req).await;
    // The body owns the permit, so an open SSE stream counts until it ends.
    resp.map(|body| {
        axum::body::Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
            let _held = &permit;
            frame
        }))
    })
}

/// `GET /metrics`: the Prometheus scrape endpoint (404 when `telemetry.metrics.prometheus` is off,
/// and on a listener with `auth: oauth`: there the admin listener serves it).
async fn metrics(State(st): State<Arc<ListenerState>>, headers: http::HeaderMap) -> Response {
    if st.auth.load().oauth().is_some() {
        // Metrics name every backend and tool: a listener that authenticates its callers does not
        // hand them to anyone; the admin listener serves them to its credentials.
        return reply::plain(
            StatusCode::NOT_FOUND,
            "this listener authenticates its callers: /metrics is served on the admin listener",
        );
    }
    scrape(&st.shared, &headers)
}

/// The scrape answer (Prometheus text or OpenMetrics, by `Accept`) for this listener and the
/// admin listener; 404 when `telemetry.metrics.prometheus` is off.
pub(crate) fn scrape(shared: &Shared, headers: &http::HeaderMap) -> Response {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    match shared.telemetry.scrape(accept) {
        Some((content_type, body)) => {
            ([(http::header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => reply::plain(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}

async fn readyz(State(st): State<Arc<ListenerState>>) -> Response {
    let bound = st.bound.load(std::sync::atomic::Ordering::Acquire);
    if bound && st.shared.catalog.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
