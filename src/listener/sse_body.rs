//! Turning a session's outbound channel into an SSE response body: priming event, `retry:`,
//! numbered events, keep-alive comments.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{HeaderValue, StatusCode, header};
use tokio::sync::mpsc;

use crate::protocol::sse;
use crate::session::Outbound;

/// How long clients wait before reconnecting a dropped stream (the SSE `retry:` field).
pub(super) const RETRY_MS: u64 = 1000;

/// The priming event: an id (so the client can resume from here) and empty data.
fn priming(id: &str) -> Bytes {
    let mut out = bytes::BytesMut::new();
    sse::encode(
        &sse::Event {
            id: Some(id.to_string()),
            event: None,
            data: String::new(),
            retry_ms: Some(RETRY_MS),
        },
        &mut out,
    );
    out.freeze()
}

fn event(o: &Outbound) -> Bytes {
    sse::encode_message(o.event_id.as_deref(), &o.json)
}

/// An SSE response: priming event, then `first` (if any), then the channel until it ends.
/// With `keep_alive`, a comment is sent whenever the stream was quiet that long.
pub(super) fn response(
    priming_id: &str,
    first: Option<Outbound>,
    rx: mpsc::Receiver<Outbound>,
    keep_alive: Option<Duration>,
) -> Response {
    let head = stream::iter(std::iter::once(priming(priming_id)).chain(first.as_ref().map(event)));
    let tail = stream::unfold((rx, keep_alive, false), |(mut rx, ka, done)| async move {
        if done {
            return None;
        }
        let next = match ka {
            Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                Ok(x) => x,
                Err(_) => return Some((sse::comment("keep-alive"), (rx, ka, false))),
            },
            None => rx.recv().await,
        };
        let o = next?;
        let last = o.last;
        Some((event(&o), (rx, ka, last)))
    });
    let already_done = first.as_ref().is_some_and(|o| o.last);
    let body = if already_done {
        head.boxed()
    } else {
        head.chain(tail).boxed()
    };
    stream_response(body)
}

/// A `200 text/event-stream` response around already-framed SSE bytes, with the headers that
/// keep proxies from caching or buffering it.
pub(super) fn stream_response(
    body: impl futures::Stream<Item = Bytes> + Send + 'static,
) -> Response {
    let mut r = Response::new(Body::from_stream(body.map(Ok::<_, Infallible>)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
