//! One exchange with the backend: POST a message and turn the answer (JSON, or an SSE stream
//! resumed with `Last-Event-ID`) into events; learn the session from `initialize`; open the
//! session's GET stream after `initialized`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use tracing::{debug, warn};

use super::shared::{SessionHeaders, SessionState, Shared};
use super::stream::{self, Cursor};
use super::wire::{
    JSON, LAST_EVENT_ID, POST_ACCEPT, SESSION_ID, SSE_ACCEPT, is_media, is_method, read_body,
    request_id,
};
use crate::protocol::{Message, methods};
use crate::upstream::{AbortOnDrop, UpstreamError, UpstreamEvent};

/// The W3C trace headers of a forwarded request, copied from its `params._meta` (where the session
/// wrote the context the backend continues).
pub(super) fn trace_headers(r: &crate::protocol::Request, headers: &mut HeaderMap) {
    for (name, value) in crate::telemetry::context::headers_from_meta(r.params.as_ref()) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

/// How many times a POST's SSE stream that ended early is resumed with `Last-Event-ID`.
const MAX_RESUMES: u32 = 5;

impl Shared {
    /// POSTs one message and turns the answer into events.
    ///
    /// For `notifications/initialized`, `ready` is signalled (or dropped, on any failure) once
    /// the backend accepted it and answered the GET stream that follows it. Backends may send
    /// requests and notifications that belong to no client request only on that stream (the
    /// TypeScript SDK drops them while it is not open: `server.createMessage` without a
    /// related request, `tools/list_changed` after tools registered on `initialized`), so
    /// the owner's first request must not reach the backend before it is open.
    pub(super) async fn post(
        self: Arc<Self>,
        msg: Message,
        session: SessionHeaders,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut headers = self.request_headers(&session, POST_ACCEPT);
        headers.insert(CONTENT_TYPE, JSON);
        if let Message::Request(r) = &msg {
            trace_headers(r, &mut headers);
        }
        let req = self.request(Method::POST, headers, msg.to_bytes());
        let resp = match self.send(req).await {
            Ok(r) => r,
            Err(error) => return self.send_failed(msg, error).await,
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && session.session_id.is_some() {
            self.expire(session.session_id.as_ref());
            self.emit(UpstreamEvent::SessionExpired { unsent: msg })
                .await;
            return;
        }
        if !status.is_success() {
            return self
                .send_failed(msg, UpstreamError::Status(status.as_u16()))
                .await;
        }
        if is_method(&msg, "initialize") {
            self.learn_session_id(&resp);
        }
        let initialized = is_method(&msg, methods::INITIALIZED);
        if is_media(&resp, "text/event-stream") {
            self.read_post_stream(resp, msg, session).await;
        } else if is_media(&resp, "application/json") {
            self.read_json(resp, msg).await;
        } // else 202 Accepted or an empty 200: nothing to deliver.
        if initialized {
            self.open_get_stream(ready);
        }
    }

    /// Reads a JSON body: the one answer to the POSTed message.
    pub(super) async fn read_json(&self, resp: Response<Incoming>, msg: Message) {
        let body = match read_body(resp).await {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => return,
            Ok(b) => b,
            Err(e) => return self.send_failed(msg, e).await,
        };
        let related = request_id(&msg);
        match Message::parse(&body) {
            Ok(answer) => {
                self.observe(&msg, &answer);
                self.deliver(UpstreamEvent::Message {
                    msg: answer,
                    related,
                })
                .await;
            }
            Err(e) => {
                warn!(backend = %self.name, error = %e, "Backend sent an unparseable JSON body");
                self.send_failed(msg, UpstreamError::Protocol(e.to_string()))
                    .await;
            }
        }
    }

    /// Streams a POST's SSE answer, resuming with GET + `Last-Event-ID` if it ends before the
    /// response to the request arrived.
    pub(super) async fn read_post_stream(
        &self,
        resp: Response<Incoming>,
        msg: Message,
        session: SessionHeaders,
    ) {
        let related = request_id(&msg);
        let mut cursor = Cursor::default();
        let mut outcome = self
            .consume(resp, Some(&msg), related.as_ref(), &mut cursor)
            .await;
        let mut resumes = 0;
        loop {
            let answered = match outcome {
                Ok(answered) => answered,
                Err(e) => {
                    debug!(backend = %self.name, error = %e, "Response stream broke");
                    false
                }
            };
            if answered || related.is_none() || self.events.is_closed() {
                return;
            }
            let Some(last) = cursor.last_event_id.clone() else {
                return self
                    .send_failed(
                        msg,
                        UpstreamError::Closed("response stream ended before the response".into()),
                    )
                    .await;
            };
            if resumes == MAX_RESUMES {
                return self
                    .send_failed(
                        msg,
                        UpstreamError::Closed("response stream could not be resumed".into()),
                    )
                    .await;
            }
            resumes += 1;
            debug!(backend = %self.name, resumes, "Response stream ended early; resuming with Last-Event-ID");
            tokio::time::sleep(stream::backoff(cursor.retry, resumes - 1)).await;
            outcome = match self.resume(&session, &last).await {
                Ok(resp) => {
                    self.consume(resp, Some(&msg), related.as_ref(), &mut cursor)
                        .await
                }
                Err(e) if resume_is_hopeless(&e) => return self.send_failed(msg, e).await,
                Err(e) => Err(e),
            };
        }
    }

    /// GET with `Last-Event-ID`: the spec's way to pick up a broken stream.
    pub(super) async fn resume(
        &self,
        session: &SessionHeaders,
        last: &str,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut headers = self.request_headers(session, SSE_ACCEPT);
        let last = HeaderValue::from_str(last).map_err(|_| {
            UpstreamError::Protocol("SSE event id is not a valid header value".into())
        })?;
        headers.insert(LAST_EVENT_ID, last);
        let resp = self
            .send(self.request(Method::GET, headers, Bytes::new()))
            .await?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        Ok(resp)
    }

    /// Notes what the owner's traffic reveals: the protocol version in the `initialize` result.
    pub(super) fn observe(&self, sent: &Message, answer: &Message) {
        let (Message::Request(req), Message::Response(resp)) = (sent, answer) else {
            return;
        };
        if req.method != "initialize" || req.id != resp.id {
            return;
        }
        let Ok(result) = &resp.outcome else { return };
        #[derive(Deserialize)]
        struct InitializeResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: Option<String>,
        }
        let version = serde_json::from_str::<InitializeResult>(result.get())
            .ok()
            .and_then(|r| r.protocol_version)
            .and_then(|v| HeaderValue::from_str(&v).ok());
        if let Some(v) = version {
            self.state().protocol_version = Some(v);
        }
    }

    /// Takes `Mcp-Session-Id` from the answer to `initialize`.
    pub(super) fn learn_session_id(&self, resp: &Response<Incoming>) {
        let id = resp.headers().get(SESSION_ID).filter(|v| {
            // The spec allows visible ASCII only.
            v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b))
        });
        if let Some(id) = id {
            let mut id = id.clone();
            id.set_sensitive(true);
            self.state().session_id = Some(id);
        }
    }

    /// The backend forgot the session: clear it (unless a newer one replaced it already).
    pub(super) fn expire(&self, sent: Option<&HeaderValue>) {
        let mut st = self.state();
        if st.session_id.as_ref() == sent {
            *st = SessionState::default();
        }
        debug!(backend = %self.name, "Backend session expired");
    }

    /// Opens the session's standalone GET stream (once per session); `ready` is signalled
    /// when the backend answered the first GET (dropped if there is none to open).
    pub(super) fn open_get_stream(
        self: &Arc<Self>,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut st = self.state();
        if st.get_stream.is_some() {
            return;
        }
        let Some(session_id) = st.session_id.clone() else {
            return;
        };
        let session = SessionHeaders {
            session_id: Some(session_id),
            protocol_version: st.protocol_version.clone(),
        };
        let shared = Arc::clone(self);
        st.get_stream =
            Some(AbortOnDrop(self.spawn(async move {
                shared.get_stream(session, ready).await
            })));
    }
}

/// Whether a failed resume says retrying cannot help: nobody accepts connections (the backend
/// is down), or the backend refused the stream for good (e.g. 404: it forgot the session).
/// Timeouts, I/O errors, 5xx, 408, 409 and 429 may pass, so they are retried with backoff.
fn resume_is_hopeless(e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Connect(_) => true,
        UpstreamError::Status(s) => (400..500).contains(s) && ![408, 409, 429].contains(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{UpstreamError, resume_is_hopeless};

    #[test]
    fn a_resume_is_hopeless_only_when_retrying_cannot_help() {
        assert!(resume_is_hopeless(&UpstreamError::Connect(
            "refused".into()
        )));
        assert!(resume_is_hopeless(&UpstreamError::Status(404)));
        assert!(resume_is_hopeless(&UpstreamError::Status(405)));
        for transient in [408, 409, 429, 500, 502, 503] {
            assert!(!resume_is_hopeless(&UpstreamError::Status(transient)));
        }
        assert!(!resume_is_hopeless(&UpstreamError::Timeout(
            std::time::Duration::from_secs(1)
        )));
        assert!(!resume_is_hopeless(&UpstreamError::Io("reset".into())));
    }
}
