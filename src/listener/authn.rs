//! The listener's authentication step: every MCP entry point (POST/GET/DELETE, the WebSocket
//! upgrade, each stateless request) names its principal here or is refused with the RFC 6750
//! challenge; and the protected resource metadata (RFC 9728) that tells clients where to get a
//! token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::{ListenerState, reply};
use crate::identity::{AuthError, Authenticator};
use crate::policy::Principal;
use crate::protocol::jsonrpc::codes;
use crate::telemetry::Denial;

/// The principal of a request with these headers, or the refusal to send.
pub(super) async fn authenticate(
    st: &ListenerState,
    headers: &HeaderMap,
    path: &str,
) -> Result<Arc<Principal>, Response> {
    if matches!(**st.auth.load(), Authenticator::None) {
        // An open listener: no refcount traffic on the authenticator for every request.
        return Ok(Principal::anonymous());
    }
    let auth = st.auth.load_full();
    match auth.authenticate(headers).await {
        Ok(p) => Ok(p),
        Err(e) => {
            st.shared.telemetry.metrics.denied(match e {
                AuthError::InsufficientScope(_) => Denial::InsufficientScope,
                _ => Denial::Unauthenticated,
            });
            tracing::info!(reason = %e, path, "Refused a request: not authenticated");
            Err(challenge(&auth, &e, path))
        }
    }
}

/// The refusal for `e`, with `WWW-Authenticate` pointing at the resource metadata.
fn challenge(auth: &Authenticator, e: &AuthError, path: &str) -> Response {
    let (status, error) = match e {
        AuthError::Missing => (StatusCode::UNAUTHORIZED, None),
        AuthError::Malformed(_) => (StatusCode::BAD_REQUEST, Some("invalid_request")),
        AuthError::Invalid(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        AuthError::InsufficientScope(_) => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        AuthError::KeysUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut r = reply::rpc_error(status, None, codes::UNAUTHENTICATED, e.to_string());
    if let Some(oauth) = auth.oauth() {
        let mut v = format!(
            "Bearer resource_metadata=\"{}\"",
            metadata_url(&oauth.resource, path)
        );
        if !oauth.scopes_supported.is_empty() || !oauth.required_scopes.is_empty() {
            let scopes = if oauth.required_scopes.is_empty() {
                &oauth.scopes_supported
            } else {
                &oauth.required_scopes
            };
            v.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
        }
        if let Some(error) = error {
            // The description is one of our fixed texts: no quotes or backslashes to escape.
            let description = e.to_string().replace(['"', '\\'], "'");
            v.push_str(&format!(
                ", error=\"{error}\", error_description=\"{description}\""
            ));
        }
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if matches!(e, AuthError::KeysUnavailable(_)) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

/// Where the metadata of the resource served at `path` is: the path-inserted form (RFC 9728 §3.1)
/// on the origin of the configured resource URI.
fn metadata_url(resource: &str, path: &str) -> String {
    let origin = url::Url::parse(resource)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let path = if path == "/ws" { "" } else { path };
    format!("{origin}/.well-known/oauth-protected-resource{path}")
}

/// The resource URI of the endpoint at `path` (`/mcp`, `/servers/<backend>/mcp`): the configured
/// resource for `/mcp`, the same origin and base for a virtual server.
pub(super) fn resource_of(resource: &str, path: &str) -> String {
    match resource.strip_suffix("/mcp") {
        Some(base) if path != "/mcp" && path != "/ws" => format!("{base}{path}"),
        _ => resource.to_string(),
    }
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`: the metadata of the `/mcp` resource.
pub(super) async fn metadata(State(st): State<Arc<ListenerState>>) -> Response {
    metadata_for(&st, "/mcp")
}

/// `GET /.well-known/oauth-protected-resource/servers/{backend}/mcp`.
pub(super) async fn metadata_virtual(
    State(st): State<Arc<ListenerState>>,
    Path(backend): Path<String>,
) -> Response {
    if !st.cfg.virtual_servers || st.shared.catalog.backend_index(&backend).is_none() {
        return reply::plain(StatusCode::NOT_FOUND, "no such resource");
    }
    metadata_for(&st, &format!("/servers/{backend}/mcp"))
}

fn metadata_for(st: &ListenerState, path: &str) -> Response {
    let auth = st.auth.load();
    let Some(oauth) = auth.oauth() else {
        return reply::plain(
            StatusCode::NOT_FOUND,
            "this listener does not require authentication",
        );
    };
    let body = json!({
        "resource": resource_of(&oauth.resource, path),
        "authorization_servers": oauth.authorization_servers,
        "scopes_supported": oauth.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP gateway",
    });
    ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(body)).into_response()
}
