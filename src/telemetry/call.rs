//! One client message as telemetry sees it: started when it arrives, finished once with its
//! outcome, writing the SERVER span, the CLIENT span of its backend hop, the metric points and the
//! audit record together, from the same facts.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::Map;
use tokio::time::Instant;

use super::Telemetry;
use super::audit::{AuditRecord, CallFacts, Outcome};
use super::context::{Carried, Remote, traceparent};
use crate::policy::DecisionRecord;
use crate::protocol::{RequestId, methods};

/// The network protocol a client message came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetProtocol {
    Http,
    WebSocket,
}

impl NetProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            NetProtocol::Http => "http",
            NetProtocol::WebSocket => "websocket",
        }
    }
}

/// A listener's own address, as spans name it (`server.address`/`server.port`), made once.
#[derive(Clone, Debug)]
pub struct Local {
    pub ip: Arc<str>,
    pub port: u16,
}

impl Local {
    pub fn of(addr: SocketAddr) -> Local {
        Local {
            ip: Arc::from(addr.ip().to_string()),
            port: addr.port(),
        }
    }
}

/// Where and when a client message arrived, and the trace context of its HTTP request.
#[derive(Clone, Debug)]
pub struct Origin {
    pub received: Instant,
    pub wall: SystemTime,
    pub peer: Option<SocketAddr>,
    pub local: Option<Local>,
    pub protocol: NetProtocol,
    /// `traceparent` & co. of the HTTP request (the WebSocket upgrade's, for `/ws`).
    pub parent: Option<Remote>,
}

impl Origin {
    pub fn new(
        protocol: NetProtocol,
        peer: Option<SocketAddr>,
        local: Option<Local>,
        headers: Option<&HeaderMap>,
    ) -> Origin {
        Origin {
            received: Instant::now(),
            wall: SystemTime::now(),
            peer,
            local,
            protocol,
            parent: headers.and_then(Remote::from_headers),
        }
    }

    /// A message the gateway made itself (tests, benches).
    pub fn internal() -> Origin {
        Origin::new(NetProtocol::Http, None, None, None)
    }
}

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

/// How a call ended, as both of its spans record it.
struct Ending<'a> {
    finish: &'a Finish<'a>,
    error_type: Option<&'a str>,
    end: SystemTime,
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
        self.record_metrics(
            tel,
            method,
            backend.as_ref(),
            error_type.as_deref(),
            duration,
        );
        if let Some(t) = self.trace.as_ref().filter(|t| t.sampled)
            && let Some(spans) = &tel.spans
        {
            let ending = Ending {
                finish: &f,
                error_type: error_type.as_deref(),
                end: SystemTime::now(),
            };
            if let Some(h) = &self.hop {
                spans.queue.push(self.client_span(tel, t, h, &ending));
            }
            let id = self.request_id.take();
            spans
                .queue
                .push(self.server_span(tel, t, backend, id, &ending));
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

    fn record_metrics(
        &self,
        tel: &Telemetry,
        method: &'static str,
        backend: Option<&Arc<str>>,
        error_type: Option<&str>,
        duration: std::time::Duration,
    ) {
        let m = &tel.metrics;
        // Names are labelled only once the catalog resolved them (bounded by the catalog).
        let resolved = self.decision.backend.is_some() && m.tool_labels;
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new("mcp.method.name", method));
        attrs.push(KeyValue::new("mcp.protocol.version", self.protocol_version));
        attrs.push(KeyValue::new("network.transport", "tcp"));
        if let (true, Some(t)) = (resolved, &self.target) {
            let key = if self.method == methods::TOOLS_CALL {
                "gen_ai.tool.name"
            } else {
                "gen_ai.prompt.name"
            };
            attrs.push(KeyValue::new(key, t.clone()));
        }
        if let Some(b) = backend {
            attrs.push(KeyValue::new("switchboard.backend", b.clone()));
        }
        if let Some(e) = error_type {
            attrs.push(KeyValue::new("error.type", e.to_string()));
        }
        m.server_op.record(duration.as_secs_f64(), &attrs);
        if let (Some(h), Some(b)) = (&self.hop, backend) {
            let facts = &tel.backends[h.backend];
            let mut a = vec![
                KeyValue::new("mcp.method.name", method),
                KeyValue::new("network.transport", facts.transport),
                KeyValue::new("switchboard.backend", b.clone()),
            ];
            if m.tool_labels && self.method == methods::TOOLS_CALL {
                a.push(KeyValue::new("gen_ai.tool.name", h.original.clone()));
            }
            if let Some(v) = tel.backend_version(h.backend) {
                a.push(KeyValue::new("mcp.protocol.version", v));
            }
            if let Some(e) = error_type {
                a.push(KeyValue::new("error.type", e.to_string()));
            }
            m.client_op.record(h.started.elapsed().as_secs_f64(), &a);
        }
        if self.decision.decision.is_some() || self.hop.is_some() || self.decision.backend.is_some()
        {
            let mut a = vec![
                KeyValue::new("mcp.method.name", method),
                KeyValue::new(
                    "switchboard.backend",
                    backend.map_or(Value::from(""), |b| Value::from(b.clone())),
                ),
                // Refused before a guard decided (an unknown target): deny.
                KeyValue::new(
                    "switchboard.decision",
                    self.decision.decision.unwrap_or("deny"),
                ),
                KeyValue::new(
                    "switchboard.outcome",
                    match error_type {
                        None => "ok",
                        Some("tool_error") => "tool_error",
                        Some(_) => "error",
                    },
                ),
            ];
            if let (true, Some(t)) = (resolved && self.method == methods::TOOLS_CALL, &self.target)
            {
                a.push(KeyValue::new("gen_ai.tool.name", t.clone()));
            }
            m.calls.add(1, &a);
        }
    }

    fn common_attrs(&self, a: &mut Vec<KeyValue>, name: Option<&str>, error_type: Option<&str>) {
        a.push(KeyValue::new("mcp.method.name", method_value(&self.method)));
        if self.method == methods::TOOLS_CALL {
            a.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }
        if let Some(n) = name {
            let key = if self.method == methods::TOOLS_CALL {
                "gen_ai.tool.name"
            } else {
                "gen_ai.prompt.name"
            };
            a.push(KeyValue::new(key, n.to_string()));
        }
        if let Some(e) = error_type {
            a.push(KeyValue::new("error.type", e.to_string()));
            if e != "tool_error" {
                a.push(KeyValue::new("rpc.response.status_code", e.to_string()));
            }
        }
    }

    fn server_span(
        &self,
        tel: &Telemetry,
        t: &Trace,
        backend: Option<Arc<str>>,
        request_id: Option<RequestId>,
        e: &Ending<'_>,
    ) -> SpanData {
        let (f, error_type, end) = (e.finish, e.error_type, e.end);
        let mut a = Vec::with_capacity(24);
        self.common_attrs(&mut a, self.target.as_deref(), error_type);
        if let Some(s) = &self.session_id {
            a.push(KeyValue::new("mcp.session.id", s.clone()));
        }
        a.push(KeyValue::new("mcp.protocol.version", self.protocol_version));
        if let Some(id) = request_id {
            a.push(KeyValue::new("jsonrpc.request.id", id.to_string()));
        }
        if let Some(u) = &self.uri {
            a.push(KeyValue::new("mcp.resource.uri", u.clone()));
        }
        a.push(KeyValue::new("network.transport", "tcp"));
        a.push(KeyValue::new(
            "network.protocol.name",
            self.origin.protocol.as_str(),
        ));
        if let Some(l) = &self.origin.local {
            a.push(KeyValue::new("server.address", l.ip.clone()));
            a.push(KeyValue::new("server.port", i64::from(l.port)));
        }
        if let Some(p) = self.origin.peer {
            a.push(KeyValue::new("client.address", p.ip().to_string()));
            a.push(KeyValue::new("client.port", i64::from(p.port())));
        }
        decision_attrs(&self.decision, backend, &mut a);
        // A bridged call: the backend speaks another revision than the client.
        if let Some(h) = &self.hop
            && let Some(v) = tel.backend_version(h.backend)
            && v != self.protocol_version
        {
            a.push(KeyValue::new("switchboard.protocol.backend", v));
        }
        if let Some(p) = &self.payload {
            a.push(KeyValue::new("gen_ai.tool.call.arguments", p.to_string()));
        }
        if let Some(r) = f.result.filter(|_| self.payload.is_some()) {
            a.push(KeyValue::new("gen_ai.tool.call.result", r.to_string()));
        }
        let links = t
            .link
            .iter()
            .map(|l| Link::with_context(l.span_context()))
            .collect();
        let parent = t.parent.as_ref();
        SpanData {
            span_context: context(t.trace_id, t.span_id, parent),
            parent_span_id: parent.map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.span_id)),
            parent_span_is_remote: parent.is_some(),
            span_kind: SpanKind::Server,
            name: span_name(&self.method, self.target.as_deref()),
            start_time: self.origin.wall,
            end_time: end,
            attributes: a,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: span_links(links),
            status: status(error_type, f.message),
            instrumentation_scope: tel.scope.clone(),
        }
    }

    fn client_span(&self, tel: &Telemetry, t: &Trace, h: &Hop, e: &Ending<'_>) -> SpanData {
        let (f, error_type, end) = (e.finish, e.error_type, e.end);
        let facts = &tel.backends[h.backend];
        let mut a = Vec::with_capacity(16);
        let named = matches!(
            self.method.as_str(),
            methods::TOOLS_CALL | methods::PROMPTS_GET
        );
        self.common_attrs(&mut a, named.then_some(h.original.as_str()), error_type);
        a.push(KeyValue::new(
            "jsonrpc.request.id",
            h.upstream_id.to_string(),
        ));
        if self.uri.is_some() {
            a.push(KeyValue::new("mcp.resource.uri", h.original.clone()));
        }
        if let Some(v) = tel.backend_version(h.backend) {
            a.push(KeyValue::new("mcp.protocol.version", v));
        }
        a.push(KeyValue::new("network.transport", facts.transport));
        if let Some(p) = facts.protocol {
            a.push(KeyValue::new("network.protocol.name", p));
        }
        if let Some((host, port)) = &facts.server {
            a.push(KeyValue::new("server.address", host.clone()));
            a.push(KeyValue::new("server.port", i64::from(*port)));
        }
        a.push(KeyValue::new("switchboard.backend", facts.name.clone()));
        SpanData {
            span_context: context(t.trace_id, h.span_id, t.parent.as_ref()),
            parent_span_id: SpanId::from_bytes(t.span_id),
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: span_name(&self.method, named.then_some(h.original.as_str())),
            start_time: h.wall,
            end_time: end,
            attributes: a,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: status(error_type, f.message),
            instrumentation_scope: tel.scope.clone(),
        }
    }
}

fn span_links(links: Vec<Link>) -> opentelemetry_sdk::trace::SpanLinks {
    let mut l = opentelemetry_sdk::trace::SpanLinks::default();
    l.links = links;
    l
}

fn decision_attrs(d: &DecisionRecord, backend: Option<Arc<str>>, a: &mut Vec<KeyValue>) {
    if let Some(b) = backend {
        a.push(KeyValue::new("switchboard.backend", b));
    }
    if let Some(o) = &d.original_name {
        a.push(KeyValue::new("switchboard.tool.original_name", o.clone()));
    }
    if let Some(x) = d.decision {
        a.push(KeyValue::new("switchboard.decision", x));
    }
    let strings = [
        ("switchboard.deny.rule", &d.deny_rule),
        ("switchboard.deny.reason", &d.deny_reason),
        ("switchboard.policy.revision", &d.policy_revision),
        ("switchboard.tool.hash", &d.tool_hash),
        ("switchboard.rate_limit", &d.rate_limit),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            a.push(KeyValue::new(k, v.clone()));
        }
    }
    if let Some(p) = &d.principal {
        a.push(KeyValue::new("switchboard.principal", p.clone()));
    }
    if !d.roles.is_empty() {
        let roles: Vec<opentelemetry::StringValue> =
            d.roles.iter().map(|r| r.clone().into()).collect();
        a.push(KeyValue::new(
            "switchboard.roles",
            Value::Array(opentelemetry::Array::String(roles)),
        ));
    }
    if d.redactions > 0 {
        a.push(KeyValue::new(
            "switchboard.redactions",
            i64::from(d.redactions),
        ));
    }
}

fn context(trace_id: [u8; 16], span_id: [u8; 8], parent: Option<&Remote>) -> SpanContext {
    let state = parent
        .and_then(|p| p.tracestate.as_deref())
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        state,
    )
}

fn status(error_type: Option<&str>, message: Option<&str>) -> Status {
    match error_type {
        None => Status::Unset,
        Some(e) => Status::error(message.unwrap_or(e).to_string()),
    }
}

/// `{method} {target}`, or just `{method}` (bounded: unknown methods are `_OTHER`).
fn span_name(method: &str, target: Option<&str>) -> Cow<'static, str> {
    let m = bounded_method(method);
    match target {
        Some(t) => Cow::Owned(format!("{m} {t}")),
        None => Cow::Borrowed(m),
    }
}

/// `error.type`: the JSON-RPC code, or `tool_error`.
fn error_type(o: Outcome) -> Option<String> {
    (o != Outcome::Ok).then(|| String::from(o))
}

/// The method as an attribute value: static for MCP's own methods (no allocation per call).
fn method_value(m: &str) -> Value {
    match bounded_method(m) {
        "_OTHER" => Value::from(m.to_string()),
        known => Value::from(known),
    }
}

/// The method as a label: one of MCP's, or `_OTHER` (clients can send anything).
pub fn bounded_method(m: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        methods::INITIALIZE,
        methods::INITIALIZED,
        methods::PING,
        methods::TOOLS_LIST,
        methods::TOOLS_CALL,
        methods::PROMPTS_LIST,
        methods::PROMPTS_GET,
        methods::RESOURCES_LIST,
        methods::RESOURCES_TEMPLATES_LIST,
        methods::RESOURCES_READ,
        methods::RESOURCES_SUBSCRIBE,
        methods::RESOURCES_UNSUBSCRIBE,
        methods::COMPLETION_COMPLETE,
        methods::LOGGING_SET_LEVEL,
        methods::CANCELLED,
        methods::PROGRESS,
        methods::ROOTS_LIST_CHANGED,
        methods::SERVER_DISCOVER,
        "subscriptions/listen",
    ];
    KNOWN.iter().copied().find(|k| *k == m).unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_error_types_follow_the_conventions() {
        assert_eq!(span_name("tools/call", Some("echo")), "tools/call echo");
        assert_eq!(span_name("tools/list", None), "tools/list");
        assert_eq!(span_name("x/evil-unbounded-123", None), "_OTHER");
        assert_eq!(
            error_type(Outcome::ToolError).as_deref(),
            Some("tool_error")
        );
        assert_eq!(
            error_type(Outcome::Error(-32602)).as_deref(),
            Some("-32602")
        );
        assert_eq!(error_type(Outcome::Ok), None);
    }
}
