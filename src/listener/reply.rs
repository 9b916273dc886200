//! Building HTTP responses: JSON-RPC bodies, errors with the right status, plain-text refusals.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::protocol::jsonrpc::error_without_id;
use crate::protocol::{ErrorObject, RequestId, Response as RpcResponse};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";

/// A JSON body.
pub(super) fn json(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON-RPC error; `id` is null when the request's id is unknown.
pub(super) fn rpc_error(
    status: StatusCode,
    id: Option<RequestId>,
    code: i64,
    message: impl Into<String>,
) -> Response {
    let err = ErrorObject::new(code, message);
    let body = match id {
        Some(id) => RpcResponse::error(id, err).into_message().to_bytes(),
        None => error_without_id(&err),
    };
    json(status, body)
}

/// A plain-text refusal (for requests that are not JSON-RPC at all).
pub(super) fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{text}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 202 Accepted with no body (notifications and responses).
pub(super) fn accepted() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

pub(super) fn with_session(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}
