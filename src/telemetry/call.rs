//! One client message as telemetry sees it: started when it arrives, finished once with its
//! outcome, writing the SERVER span, the CLIENT span of its backend hop, the metric points and the
//! audit record together, from the same facts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use opentelemetry::trace::TraceState;
use opentelemetry::{KeyValue, Value};
use serde_json::Map;
use tokio::time::Instant;

use super::Telemetry;
use super::audit::{AuditRecord, CallFacts, Outcome};
use super::context::{Carried, Remote, traceparent};
use super::export::Encoded;
use super::export::otlp::{Head, Kind, LinkTo, SpanWriter, write_span};
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

    fn record_metrics(
        &self,
        tel: &Telemetry,
        method: &'static str,
        backend: Option<&Arc<str>>,
        error_type: Option<&str>,
        backend_version: Option<&'static str>,
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
            if let Some(v) = backend_version {
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

    fn common_attrs(&self, w: &mut SpanWriter<'_>, name: Option<&str>, error_type: Option<&str>) {
        // Unknown methods keep their text here (the span name says `_OTHER`).
        w.str("mcp.method.name", &self.method);
        if self.method == methods::TOOLS_CALL {
            w.str("gen_ai.operation.name", "execute_tool");
        }
        if let Some(n) = name {
            let key = if self.method == methods::TOOLS_CALL {
                "gen_ai.tool.name"
            } else {
                "gen_ai.prompt.name"
            };
            w.str(key, n);
        }
        if let Some(e) = error_type {
            w.str("error.type", e);
            if e != "tool_error" {
                w.str("rpc.response.status_code", e);
            }
        }
    }

    fn server_span(
        &self,
        buf: &mut Vec<u8>,
        t: &Trace,
        backend: Option<&str>,
        request_id: Option<&RequestId>,
        e: &Ending<'_>,
        state: &str,
    ) {
        let (f, error_type) = (e.finish, e.error_type);
        let head = Head {
            trace_id: t.trace_id,
            span_id: t.span_id,
            parent: t.parent.as_ref().map(|p| (p.span_id, true)),
            trace_state: state,
            sampled: true,
            kind: Kind::Server,
            start: self.origin.wall,
            end: e.end,
        };
        write_span(buf, &head, |w| {
            name(w, &self.method, self.target.as_deref());
            self.common_attrs(w, self.target.as_deref(), error_type);
            if let Some(s) = &self.session_id {
                w.str("mcp.session.id", s);
            }
            w.str("mcp.protocol.version", self.protocol_version);
            match request_id {
                Some(RequestId::Num(n)) => w.display("jsonrpc.request.id", n),
                Some(RequestId::Str(s)) => w.str("jsonrpc.request.id", s),
                None => {}
            }
            if let Some(u) = &self.uri {
                w.str("mcp.resource.uri", u);
            }
            w.str("network.transport", "tcp");
            w.str("network.protocol.name", self.origin.protocol.as_str());
            if let Some(l) = &self.origin.local {
                w.str("server.address", &l.ip);
                w.int("server.port", i64::from(l.port));
            }
            if let Some(p) = self.origin.peer {
                w.display("client.address", p.ip());
                w.int("client.port", i64::from(p.port()));
            }
            decision_attrs(&self.decision, backend, w);
            // A bridged call: the backend speaks another revision than the client.
            if let Some(v) = e.backend_version
                && v != self.protocol_version
            {
                w.str("switchboard.protocol.backend", v);
            }
            if let Some(p) = &self.payload {
                w.str("gen_ai.tool.call.arguments", p);
            }
            if let Some(r) = f.result.filter(|_| self.payload.is_some()) {
                w.str("gen_ai.tool.call.result", r);
            }
            if let Some(l) = &t.link {
                let state = trace_state(Some(l));
                w.link(&LinkTo {
                    trace_id: l.trace_id,
                    span_id: l.span_id,
                    trace_state: state.as_deref().unwrap_or_default(),
                    sampled: l.sampled,
                });
            }
            status(w, error_type, f.message);
        });
    }

    fn client_span(
        &self,
        buf: &mut Vec<u8>,
        tel: &Telemetry,
        t: &Trace,
        h: &Hop,
        e: &Ending<'_>,
        state: &str,
    ) {
        let (f, error_type) = (e.finish, e.error_type);
        let facts = &tel.backends[h.backend];
        let named = matches!(
            self.method.as_str(),
            methods::TOOLS_CALL | methods::PROMPTS_GET
        );
        let head = Head {
            trace_id: t.trace_id,
            span_id: h.span_id,
            parent: Some((t.span_id, false)),
            trace_state: state,
            sampled: true,
            kind: Kind::Client,
            start: h.wall,
            end: e.end,
        };
        write_span(buf, &head, |w| {
            name(w, &self.method, named.then_some(h.original.as_str()));
            self.common_attrs(w, named.then_some(h.original.as_str()), error_type);
            w.display("jsonrpc.request.id", h.upstream_id);
            if self.uri.is_some() {
                w.str("mcp.resource.uri", &h.original);
            }
            if let Some(v) = e.backend_version {
                w.str("mcp.protocol.version", v);
            }
            w.str("network.transport", facts.transport);
            if let Some(p) = facts.protocol {
                w.str("network.protocol.name", p);
            }
            if let Some((host, port)) = &facts.server {
                w.str("server.address", host);
                w.int("server.port", i64::from(*port));
            }
            w.str("switchboard.backend", &facts.name);
            status(w, error_type, f.message);
        });
    }
}

fn decision_attrs(d: &DecisionRecord, backend: Option<&str>, w: &mut SpanWriter<'_>) {
    if let Some(b) = backend {
        w.str("switchboard.backend", b);
    }
    if let Some(o) = &d.original_name {
        w.str("switchboard.tool.original_name", o);
    }
    if let Some(x) = d.decision {
        w.str("switchboard.decision", x);
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
            w.str(k, v);
        }
    }
    if let Some(p) = &d.principal {
        w.str("switchboard.principal", p);
    }
    if !d.roles.is_empty() {
        w.strs("switchboard.roles", d.roles.iter().map(|r| &**r));
    }
    if d.redactions > 0 {
        w.int("switchboard.redactions", i64::from(d.redactions));
    }
}

/// The W3C `tracestate` a span carries: the parent's, when it parses (as the SDK's `TraceState`
/// would have it); `None` without one (no allocation on the common path).
fn trace_state(parent: Option<&Remote>) -> Option<String> {
    let s = parent?.tracestate.as_deref()?;
    s.parse::<TraceState>()
        .ok()
        .map(|s| s.header())
        .filter(|h| !h.is_empty())
}

fn status(w: &mut SpanWriter<'_>, error_type: Option<&str>, message: Option<&str>) {
    if let Some(e) = error_type {
        w.error(message.unwrap_or(e));
    }
}

/// The span name: `{method} {target}`, or just `{method}` (see [`span_name`]).
fn name(w: &mut SpanWriter<'_>, method: &str, target: Option<&str>) {
    let m = bounded_method(method);
    match target {
        Some(t) => w.name2(m, t),
        None => w.name(m),
    }
}

/// `{method} {target}`, or just `{method}` (bounded: unknown methods are `_OTHER`).
#[cfg(test)]
fn span_name(method: &str, target: Option<&str>) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
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

    /// Keeps the export requests it is sent.
    #[derive(Clone, Default)]
    struct Memory(Arc<std::sync::Mutex<Vec<bytes::Bytes>>>);

    impl crate::telemetry::export::SpanSink for Memory {
        async fn export(
            &self,
            request: bytes::Bytes,
        ) -> Result<(), crate::telemetry::export::ExportError> {
            self.0.lock().unwrap().push(request);
            Ok(())
        }
    }

    /// A call with hostile client values, a `_meta` parent and an HTTP context (the link), a
    /// decision record and a backend error, as a collector decodes its two spans.
    #[tokio::test]
    async fn a_finished_call_is_two_spans_a_collector_can_read() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
        use prost::Message as _;

        let cfg = crate::config::Config::from_yaml(
            "backends:\n  - {name: lab, transport: streamable-http, url: 'http://10.0.0.9:8081/mcp'}\n",
        )
        .unwrap();
        let sink = Memory::default();
        let tel = Telemetry::with_span_sink(&cfg.telemetry, &cfg.backends, sink.clone()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01"
                .parse()
                .unwrap(),
        );
        let origin = Origin::new(
            NetProtocol::Http,
            Some("[::1]:40000".parse().unwrap()),
            Some(Local::of("127.0.0.1:8080".parse().unwrap())),
            Some(&headers),
        );
        let tool = format!("ev\u{0}il \u{1b}[31m✓{}", "x".repeat(300));
        let params = serde_json::json!({
            "name": tool,
            "_meta": {
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "tracestate": "vendor=abc",
            },
        });
        let id = RequestId::Str(Arc::from("id\u{0}\"'".repeat(100)));
        let mut call = CallEvent::start(
            &tel,
            origin,
            methods::TOOLS_CALL,
            Some(id.clone()),
            params.as_object(),
            Some(Arc::from("sess-1")),
            "2025-11-25",
        );
        call.decision.backend = Some("lab".into());
        call.decision.decision = Some("allow");
        call.decision.principal = Some(Arc::from("alice"));
        call.decision.roles = vec![Arc::from("dev"), Arc::from("ops")];
        call.decision.redactions = 2;
        call.begin_hop(&tel, 0, "echo", 7, None);
        let err = crate::protocol::ErrorObject {
            code: -32602,
            message: "bad ✓".into(),
            data: None,
        };
        assert!(call.finish(&tel, Finish::error(&err), false).is_none());
        tel.flush().await;

        let sent = sink.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let req = ExportTraceServiceRequest::decode(sent[0].clone()).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        let (client, server) = (&spans[0], &spans[1]);
        let attr = |s: &opentelemetry_proto::tonic::trace::v1::Span, k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        let text = |v: &str| Some(V::StringValue(v.into()));

        assert_eq!(server.name, format!("tools/call {tool}"));
        assert_eq!(server.kind, 2);
        assert_eq!(
            hex::encode(&server.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hex::encode(&server.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(server.trace_state, "vendor=abc");
        assert_eq!(server.flags, 0x301);
        assert_eq!(server.links.len(), 1);
        assert_eq!(hex::encode(&server.links[0].span_id), "2222222222222222");
        assert_eq!(attr(server, "gen_ai.tool.name"), text(&tool));
        assert_eq!(attr(server, "jsonrpc.request.id"), text(&id.to_string()));
        assert_eq!(attr(server, "client.address"), text("::1"));
        assert_eq!(attr(server, "client.port"), Some(V::IntValue(40000)));
        assert_eq!(attr(server, "server.address"), text("127.0.0.1"));
        assert_eq!(attr(server, "mcp.session.id"), text("sess-1"));
        assert_eq!(attr(server, "switchboard.backend"), text("lab"));
        assert_eq!(attr(server, "switchboard.principal"), text("alice"));
        assert_eq!(attr(server, "switchboard.redactions"), Some(V::IntValue(2)));
        match attr(server, "switchboard.roles") {
            Some(V::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
            other => panic!("roles: {other:?}"),
        }
        assert_eq!(attr(server, "error.type"), text("-32602"));
        assert_eq!(attr(server, "rpc.response.status_code"), text("-32602"));
        let status = server.status.clone().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "bad ✓"));

        assert_eq!(client.name, "tools/call echo");
        assert_eq!(client.kind, 3);
        assert_eq!(client.parent_span_id, server.span_id);
        assert_eq!(client.flags, 0x101);
        assert_eq!(attr(client, "jsonrpc.request.id"), text("7"));
        assert_eq!(attr(client, "server.address"), text("10.0.0.9"));
        assert_eq!(attr(client, "server.port"), Some(V::IntValue(8081)));
        assert_eq!(attr(client, "gen_ai.tool.name"), text("echo"));
        tel.shutdown().await;
    }
}
