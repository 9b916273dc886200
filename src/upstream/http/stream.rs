//! SSE streams from an HTTP backend: turning one into events, and the session's standalone GET stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use tracing::{debug, warn};

use super::client::describe;
use super::shared::{SessionHeaders, Shared};
use super::wire::{LAST_EVENT_ID, MAX_MESSAGE_BYTES, SSE_ACCEPT, is_media, next_chunk};
use crate::protocol::{Message, RequestId, sse};
use crate::upstream::{UpstreamError, UpstreamEvent};

/// Reconnect delay when the server gave no `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Upper bound of the reconnect backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a POST stream may stay open after its response arrived before it is dropped.
const LINGER_AFTER_ANSWER: Duration = Duration::from_millis(500);

/// Where a stream stands: the last event id seen and the server's `retry:` advice.
#[derive(Default, Debug)]
pub(super) struct Cursor {
    pub(super) last_event_id: Option<String>,
    pub(super) retry: Option<Duration>,
}

/// Delay before reconnect number `failures` (0 after a clean end): the server's `retry:` (or
/// 1 s), doubled per consecutive failure, capped at 30 s, with ±20 % jitter.
pub(super) fn backoff(retry: Option<Duration>, failures: u32) -> Duration {
    let base = retry.unwrap_or(DEFAULT_RETRY);
    let delay = base
        .saturating_mul(1 << failures.min(5))
        .min(MAX_BACKOFF.max(base));
    delay.mul_f64(0.8 + 0.4 * rand::random::<f64>())
}

impl Shared {
    /// Reads an SSE body into message events tagged `related`. `sent` is the POSTed message
    /// the stream answers (None for the GET stream). Returns whether its response arrived.
    pub(super) async fn consume(
        &self,
        resp: Response<Incoming>,
        sent: Option<&Message>,
        related: Option<&RequestId>,
        cursor: &mut Cursor,
    ) -> Result<bool, UpstreamError> {
        let mut decoder = sse::Decoder::new();
        let mut pending = 0usize;
        let mut answered = false;
        let mut body = resp.into_body();
        loop {
            let next = if answered {
                // Let the server finish the body so the connection goes back to the pool.
                match tokio::time::timeout(LINGER_AFTER_ANSWER, next_chunk(&mut body)).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            } else {
                next_chunk(&mut body).await
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| UpstreamError::Io(describe(&e)))?;
            pending += chunk.len();
            let events = decoder.feed(&chunk);
            if !events.is_empty() {
                pending = 0;
            }
            if pending > MAX_MESSAGE_BYTES {
                return Err(UpstreamError::Protocol("SSE event exceeds 16 MiB".into()));
            }
            for ev in events {
                if let Some(id) = ev.id {
                    cursor.last_event_id = (!id.is_empty()).then_some(id);
                }
                if let Some(ms) = ev.retry_ms {
                    cursor.retry = Some(Duration::from_millis(ms));
                }
                if ev.data.trim().is_empty() {
                    continue; // priming event: only an id for resumption
                }
                if ev.event.as_deref().is_some_and(|e| e != "message") {
                    debug!(backend = %self.name, event = ?ev.event, "Ignoring a non-message SSE event");
                    continue;
                }
                let msg = match Message::parse(ev.data.as_bytes()) {
                    Ok(m) => m,
                    Err(error) => {
                        warn!(backend = %self.name, %error, "Skipping an unparseable SSE event from the backend");
                        continue;
                    }
                };
                if let Some(sent) = sent {
                    self.observe(sent, &msg);
                    if let (Message::Response(r), Some(id)) = (&msg, related) {
                        answered |= &r.id == id;
                    }
                }
                let ev = UpstreamEvent::Message {
                    msg,
                    related: related.cloned(),
                };
                if !self.emit(ev).await {
                    return Ok(answered);
                }
            }
        }
        Ok(answered)
    }

    /// The session's GET stream: server-initiated messages, reconnected with backoff and
    /// `Last-Event-ID` until the connection is closed. 405 means the server offers none.
    /// `ready` is signalled once the first GET has an answer (whatever it is).
    pub(super) async fn get_stream(
        self: Arc<Self>,
        session: SessionHeaders,
        mut ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut cursor = Cursor::default();
        let mut failures = 0u32;
        loop {
            let mut headers = self.request_headers(&session, SSE_ACCEPT);
            let last = cursor.last_event_id.as_deref();
            if let Some(last) = last.and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(LAST_EVENT_ID, last);
            }
            let sent = self
                .send(self.request(Method::GET, headers, Bytes::new()))
                .await;
            if let Some(ready) = ready.take() {
                // The backend registered the stream before answering: what it sends from now
                // on reaches us.
                let _ = ready.send(());
            }
            match sent {
                Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => {
                    debug!(backend = %self.name, "Backend offers no GET stream");
                    return;
                }
                Ok(resp) if resp.status().is_success() && is_media(&resp, "text/event-stream") => {
                    debug!(backend = %self.name, resumed = last.is_some(), "GET stream open");
                    failures = 0;
                    match self.consume(resp, None, None, &mut cursor).await {
                        Ok(_) => debug!(backend = %self.name, "GET stream ended; reconnecting"),
                        Err(error) => {
                            debug!(backend = %self.name, %error, "GET stream broke; reconnecting");
                        }
                    }
                    if self.events.is_closed() {
                        return;
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    debug!(backend = %self.name, status = status.as_u16(), "GET stream refused");
                    // 409: the server still holds the previous stream of this session.
                    let transient = status.is_server_error()
                        || status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::CONFLICT
                        || status == StatusCode::TOO_MANY_REQUESTS;
                    if !transient {
                        warn!(backend = %self.name, status = status.as_u16(), "Backend refused the GET stream; not retrying");
                        return;
                    }
                    failures += 1;
                    if failures == 1 {
                        warn!(backend = %self.name, status = status.as_u16(), "GET stream failed; retrying with backoff");
                    }
                }
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        warn!(backend = %self.name, %error, "GET stream failed; retrying with backoff");
                    }
                }
            }
            tokio::time::sleep(backoff(cursor.retry, failures)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honors_retry_doubles_and_caps() {
        let d = backoff(Some(Duration::from_millis(100)), 0);
        assert!(d >= Duration::from_millis(80) && d <= Duration::from_millis(120));
        let d = backoff(None, 2);
        assert!(d >= Duration::from_millis(3200) && d <= Duration::from_millis(4800));
        let d = backoff(None, 40);
        assert!(d <= Duration::from_secs(36));
    }
}
