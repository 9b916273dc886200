//! The metric points a finished call records: the server and client operation durations and
//! the per-decision call counter.

use std::sync::Arc;

use opentelemetry::{KeyValue, Value};

use super::CallEvent;
use crate::protocol::methods;
use crate::telemetry::Telemetry;

impl CallEvent {
    pub(super) fn record_metrics(
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
}
