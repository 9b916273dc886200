//! Server-Sent Events framing (pure functions) and the streaming response built from it.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Client reconnection delay announced in priming events.
pub(crate) const RETRY_MS: u64 = 500;

/// One `message` event carrying `data` (a JSON-RPC message), with an optional event id.
pub(crate) fn event(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 48);
    if let Some(id) = id {
        b.put_slice(b"id: ");
        b.put_slice(id.as_bytes());
        b.put_u8(b'\n');
    }
    b.put_slice(b"event: message\n");
    for line in data.split(|c| *c == b'\n') {
        b.put_slice(b"data: ");
        b.put_slice(line);
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

/// The priming event (SEP-1699): an id to resume from, the retry delay, and empty data.
pub(crate) fn priming(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {RETRY_MS}\ndata: \n\n"))
}

/// A comment line (keep-alive).
pub(crate) fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// A `text/event-stream` response: `head` (if any), then every event sent on `rx`.
pub(crate) fn response(head: Option<Bytes>, rx: mpsc::UnboundedReceiver<Bytes>) -> Response {
    let stream = futures::stream::iter(head)
        .chain(UnboundedReceiverStream::new(rx))
        .map(Ok::<Bytes, Infallible>);
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_events() {
        assert_eq!(
            &event(Some("3-1"), b"{}")[..],
            b"id: 3-1\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            &event(None, b"a\nb")[..],
            b"event: message\ndata: a\ndata: b\n\n"
        );
        assert_eq!(&priming("1-0")[..], b"id: 1-0\nretry: 500\ndata: \n\n");
        assert_eq!(&comment("k")[..], b": k\n\n");
    }
}
