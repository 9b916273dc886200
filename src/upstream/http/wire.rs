//! What a POST or GET exchange with a backend looks like on the wire: header names and values,
//! media types, bounded body reading, and the id of a message.

use bytes::{Bytes, BytesMut};
use http::Response;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use super::client::describe;
use crate::protocol::{Message, RequestId};
use crate::upstream::UpstreamError;

/// `Mcp-Session-Id`: the backend's session, learned from the `initialize` POST.
pub(super) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`: the negotiated revision, sent on every request after `initialize`.
pub(super) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Last-Event-ID`: where a resumed SSE stream picks up.
pub(super) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
pub(super) const POST_ACCEPT: HeaderValue =
    HeaderValue::from_static("application/json, text/event-stream");
pub(super) const SSE_ACCEPT: HeaderValue = HeaderValue::from_static("text/event-stream");
pub(super) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Largest JSON body or single SSE event accepted from a backend.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Whether a response's media type (without parameters, any case) is `media`.
pub(super) fn is_media(resp: &Response<Incoming>, media: &str) -> bool {
    let Some(v) = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(media)
}

/// Reads a whole body, refusing more than `MAX_MESSAGE_BYTES`.
pub(super) async fn read_body(resp: Response<Incoming>) -> Result<Bytes, UpstreamError> {
    let too_big = || UpstreamError::Protocol("response body exceeds 16 MiB".into());
    let mut body = resp.into_body();
    if body
        .size_hint()
        .exact()
        .is_some_and(|n| n > MAX_MESSAGE_BYTES as u64)
    {
        return Err(too_big());
    }
    let Some(first) = next_chunk(&mut body).await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(|e| UpstreamError::Io(describe(&e)))?;
    if first.len() > MAX_MESSAGE_BYTES {
        return Err(too_big());
    }
    let Some(second) = next_chunk(&mut body).await else {
        // The usual case, a body in one chunk: hand it on without copying.
        return Ok(first);
    };
    let mut whole = BytesMut::from(&first[..]);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(|e| UpstreamError::Io(describe(&e)))?;
        if whole.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(too_big());
        }
        whole.extend_from_slice(&chunk);
        next = next_chunk(&mut body).await;
    }
    Ok(whole.freeze())
}

/// The next data chunk of a body (trailers skipped); None at its end.
pub(super) async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

pub(super) fn is_method(msg: &Message, method: &str) -> bool {
    msg.method() == Some(method)
}

pub(super) fn request_id(msg: &Message) -> Option<RequestId> {
    match msg {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}
