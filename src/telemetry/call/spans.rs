//! A finished call's spans, encoded for OTLP: the SERVER span of the client hop and the CLIENT
//! span of its backend hop, with the attributes both share.

use opentelemetry::trace::TraceState;

use super::labels::{bounded_method, decision_attrs};
use super::{CallEvent, Ending, Hop, Trace};
use crate::protocol::{RequestId, methods};
use crate::telemetry::Telemetry;
use crate::telemetry::context::Remote;
use crate::telemetry::export::otlp::{Head, Kind, LinkTo, SpanWriter, write_span};

impl CallEvent {
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

    pub(super) fn server_span(
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

    pub(super) fn client_span(
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

/// The W3C `tracestate` a span carries: the parent's, when it parses (as the SDK's `TraceState`
/// would have it); `None` without one (no allocation on the common path).
pub(super) fn trace_state(parent: Option<&Remote>) -> Option<String> {
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
