//! One client message as telemetry sees it: started when it arrives, finished once with its
//! outcome, writing the SERVER span, the CLIENT span of its backend hop, the metric points and the
//! audit record together, from the same facts.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Map;
use tokio::time::Instant;

use super::Telemetry;
use super::audit::{AuditRecord, CallFacts, Outcome};
use super::context::{Carried, Remote, traceparent};
use super::export::Encoded;
use crate::policy::DecisionRecord;
use crate::protocol::{RequestId, methods};

mod labels;
mod metrics;
mod origin;
mod spans;

pub use labels::bounded_method;
pub use origin::{Local, NetProtocol, Origin};

use labels::error_type;
use spans::trace_state;

/// The trace a call belongs to, decided when it arrives.
#[derive(Clone, Debug)]
struct Trace {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
    parent: Option<Remote>,
    /// The HTTP request's context, when `_meta` gave the parent (the conventions' link).
    link: Option<Remote>,
}

/// The backend hop of a routed call.
#[derive(Debug)]
struct Hop {
    started: Instant,
    wall: SystemTime,
    backend: usize,
    original: String,
    upstream_id: i64,
    span_id: [u8; 8],
}

/// What the client asked for, as telemetry labels it.
#[derive(Debug)]
pub struct CallEvent {
    origin: Origin,
    method: String,
    /// Tool or prompt name as sent (span name target, `gen_ai.*.name`, metric label).
    target: Option<Arc<str>>,
    /// Resource URI as sent.
    uri: Option<String>,
    request_id: Option<RequestId>,
    session_id: Option<Arc<str>>,
    protocol_version: &'static str,
    /// What the guards decided; telemetry, metrics and the audit record read it.
    pub decision: DecisionRecord,
    trace: Option<Trace>,
    hop: Option<Hop>,
    payload: Option<Box<str>>,
}

/// Room for a call's two encoded spans without growing (a `tools/call` with its decision
/// record is about 900 bytes).
const SPANS_BYTES: usize = 1024;

/// How a call ended, as both of its spans record it.
struct Ending<'a> {
    finish: &'a Finish<'a>,
    error_type: Option<&'a str>,
    end: SystemTime,
    /// The version the gateway speaks with the hop's backend (looked up once per call).
    backend_version: Option<&'static str>,
}

/// The outcome of one call, as the client saw it.
#[derive(Debug)]
pub struct Finish<'a> {
    pub outcome: Outcome,
    /// The JSON-RPC error message, for the span status.
    pub message: Option<&'a str>,
    /// The raw result, when results of this tool are recorded (`telemetry.payloads`).
    pub result: Option<&'a str>,
}

impl Finish<'static> {
    pub fn ok() -> Self {
        Finish {
            outcome: Outcome::Ok,
            message: None,
            result: None,
        }
    }
}

impl<'a> Finish<'a> {
    /// Ended with this JSON-RPC error (its code is `error.type`, its message the span status).
    pub fn error(e: &'a crate::protocol::ErrorObject) -> Self {
        Finish {
            outcome: Outcome::Error(e.code),
            message: Some(&e.message),
            result: None,
        }
    }
}

impl CallEvent {
    /// The session this message created (`initialize`).
    pub fn set_session(&mut self, id: Arc<str>) {
        self.session_id = Some(id);
    }

    /// Starts the telemetry of a client request or notification.
    pub fn start(
        tel: &Telemetry,
        origin: Origin,
        method: &str,
        id: Option<RequestId>,
        params: Option<&Map<String, serde_json::Value>>,
        session_id: Option<Arc<str>>,
        protocol_version: &'static str,
    ) -> CallEvent {
        let param = |k: &str| {
            params
                .and_then(|p| p.get(k))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let (target, uri) = match method {
            methods::TOOLS_CALL | methods::PROMPTS_GET => (param("name").map(Arc::from), None),
            methods::RESOURCES_READ
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE
            | methods::RESOURCES_UPDATED => (None, param("uri")),
            _ => (None, None),
        };
        let trace = tel.spans.as_ref().map(|s| {
            let meta = Remote::from_meta(params);
            let (parent, link) = match meta {
                Some(m) => {
                    let link = origin.parent.clone().filter(|h| h.trace_id != m.trace_id);
                    (Some(m), link)
                }
                None => (origin.parent.clone(), None),
            };
            let trace_id = parent
                .as_ref()
                .map_or_else(rand::random::<[u8; 16]>, |p| p.trace_id);
            let sampled = parent
                .as_ref()
                .map_or_else(|| s.sample(trace_id), |p| p.sampled);
            Trace {
                trace_id,
                span_id: rand::random(),
                sampled,
                parent,
                link,
            }
        });
        CallEvent {
            origin,
            method: method.to_string(),
            target,
            uri,
            request_id: id,
            session_id,
            protocol_version,
            decision: DecisionRecord::default(),
            trace,
            hop: None,
            payload: None,
        }
    }

    /// The message is forwarded to `backend` as request `upstream_id`; returns the `traceparent`
    /// the backend should continue (the CLIENT span's), or the client's own when the gateway does
    /// not trace.
    pub fn begin_hop(
        &mut self,
        tel: &Telemetry,
        backend: usize,
        original: &str,
        upstream_id: i64,
        arguments: Option<&serde_json::Value>,
    ) -> Option<Carried> {
        let span_id: [u8; 8] = rand::random();
        if self.method == methods::TOOLS_CALL && tel.records_payload(backend, original) {
            self.payload = arguments.map(|a| a.to_string().into_boxed_str());
        }
        self.hop = Some(Hop {
            started: Instant::now(),
            wall: SystemTime::now(),
            backend,
            original: original.to_string(),
            upstream_id,
            span_id,
        });
        match &self.trace {
            Some(t) => Some(Carried {
                traceparent: traceparent(t.trace_id, span_id, t.sampled),
                tracestate: t.parent.as_ref().and_then(|p| p.tracestate.clone()),
                baggage: t.parent.as_ref().and_then(|p| p.baggage.clone()),
            }),
            // Not tracing: the backend continues the client's HTTP-level trace, if any.
            None => self.origin.parent.as_ref().map(|p| Carried {
                traceparent: traceparent(p.trace_id, p.span_id, p.sampled),
                tracestate: p.tracestate.clone(),
                baggage: p.baggage.clone(),
            }),
        }
    }

    /// The trace and SERVER span ids, when this call is traced.
    pub fn trace_ids(&self) -> Option<([u8; 16], [u8; 8])> {
        self.trace
            .as_ref()
            .filter(|t| t.sampled)
            .map(|t| (t.trace_id, t.span_id))
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// Ends the call: metric points and spans now; the audit record is returned for the caller
    /// to write (it knows the durability it must wait for).
    pub fn finish(mut self, tel: &Telemetry, f: Finish<'_>, audit: bool) -> Option<AuditRecord> {
        let duration = self.origin.received.elapsed();
        let error_type = error_type(f.outcome);
        let method = bounded_method(&self.method);
        let backend = self
            .hop
            .as_ref()
            .and_then(|h| tel.backends.get(h.backend))
            .map(|b| b.name.clone())
            .or_else(|| self.decision.backend.as_deref().map(Arc::from));
        let backend_version = self
            .hop
            .as_ref()
            .and_then(|h| tel.backend_version(h.backend));
        self.record_metrics(
            tel,
            method,
            backend.as_ref(),
            error_type.as_deref(),
            backend_version,
            duration,
        );
        if let Some(t) = self.trace.as_ref().filter(|t| t.sampled)
            && let Some(spans) = &tel.spans
        {
            let ending = Ending {
                finish: &f,
                error_type: error_type.as_deref(),
                end: SystemTime::now(),
                backend_version,
            };
            let state = trace_state(t.parent.as_ref());
            let state = state.as_deref().unwrap_or_default();
            // Both spans of the call in one buffer, one queue slot per call.
            let payloads = self.payload.as_ref().map_or(0, |p| p.len())
                + f.result
                    .filter(|_| self.payload.is_some())
                    .map_or(0, str::len);
            let mut buf = Vec::with_capacity(SPANS_BYTES + payloads);
            let mut n = 1;
            if let Some(h) = &self.hop {
                self.client_span(&mut buf, tel, t, h, &ending, state);
                n = 2;
            }
            let id = self.request_id.take();
            self.server_span(&mut buf, t, backend.as_deref(), id.as_ref(), &ending, state);
            spans.queue.push(Encoded::new(buf, n));
        }
        audit.then(|| {
            let facts = CallFacts {
                session_id: self.session_id.as_deref(),
                client_addr: self.origin.peer.map(|p| p.ip()),
                protocol_version: Some(self.protocol_version),
                method: &self.method,
                target: self.target.as_deref().or(self.uri.as_deref()),
                outcome: f.outcome,
                duration,
                trace: self.trace_ids(),
            };
            AuditRecord::call(&self.decision, &facts)
        })
    }
}

#[cfg(test)]
mod tests;
