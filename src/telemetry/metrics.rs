//! The gateway's instruments: the MCP conventions' duration histograms and the gateway's own
//! counters and gauges (names and labels in docs/telemetry.md). Label sets stay bounded.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};

/// The MCP conventions' buckets for operation and session durations (seconds).
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Buckets for the audit log's fsync latency (seconds).
const FSYNC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Why the gateway refused something (the `switchboard_reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Origin,
    Host,
    OversizedBody,
    Malformed,
    UnknownSession,
    ProtocolVersion,
    HeaderMismatch,
    SessionLimit,
    InFlightLimit,
    UnknownTarget,
    Policy,
    BackendUnavailable,
    BackendTimeout,
    /// No, a malformed, or an invalid credential (401/400).
    Unauthenticated,
    /// A valid token without a required scope (403).
    InsufficientScope,
    /// A session presented by a principal other than its creator (404, as if unknown).
    ForeignSession,
}

impl Denial {
    pub fn as_str(self) -> &'static str {
        match self {
            Denial::Origin => "origin",
            Denial::Host => "host",
            Denial::OversizedBody => "oversized_body",
            Denial::Malformed => "malformed",
            Denial::UnknownSession => "unknown_session",
            Denial::ProtocolVersion => "protocol_version",
            Denial::HeaderMismatch => "header_mismatch",
            Denial::SessionLimit => "session_limit",
            Denial::InFlightLimit => "in_flight_limit",
            Denial::UnknownTarget => "unknown_target",
            Denial::Policy => "policy",
            Denial::BackendUnavailable => "backend_unavailable",
            Denial::BackendTimeout => "backend_timeout",
            Denial::Unauthenticated => "unauthenticated",
            Denial::InsufficientScope => "insufficient_scope",
            Denial::ForeignSession => "foreign_session",
        }
    }
}

/// Every instrument, created once per gateway.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(super) server_op: Histogram<f64>,
    pub(super) client_op: Histogram<f64>,
    server_session: Histogram<f64>,
    client_session: Histogram<f64>,
    pub(super) calls: Counter<u64>,
    denials: Counter<u64>,
    sessions: UpDownCounter<i64>,
    backend_sessions: UpDownCounter<i64>,
    restarts: Counter<u64>,
    fsync: Histogram<f64>,
    policy_reloads: Counter<u64>,
    integrity_events: Counter<u64>,
    /// Label call metrics with tool names.
    pub(super) tool_labels: bool,
}

impl Metrics {
    pub fn new(meter: &Meter, tool_labels: bool) -> Self {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        Metrics {
            server_op: seconds(
                "mcp.server.operation.duration",
                "MCP request or notification duration as observed by the gateway (client hop)",
            ),
            client_op: seconds(
                "mcp.client.operation.duration",
                "MCP request duration of the gateway's call to a backend (backend hop)",
            ),
            server_session: seconds(
                "mcp.server.session.duration",
                "Duration of client sessions held by the gateway",
            ),
            client_session: seconds(
                "mcp.client.session.duration",
                "Duration of the gateway's sessions with backends",
            ),
            calls: meter
                .u64_counter("switchboard.calls")
                .with_unit("{call}")
                .with_description("Calls routed or refused, by backend, tool, decision and outcome")
                .build(),
            denials: meter
                .u64_counter("switchboard.denials")
                .with_unit("{denial}")
                .with_description("Requests the gateway refused, by reason")
                .build(),
            sessions: meter
                .i64_up_down_counter("switchboard.sessions.active")
                .with_unit("{session}")
                .with_description("Client sessions open on the gateway")
                .build(),
            backend_sessions: meter
                .i64_up_down_counter("switchboard.backend_sessions.active")
                .with_unit("{session}")
                .with_description("Backend sessions open on behalf of client sessions")
                .build(),
            restarts: meter
                .u64_counter("switchboard.backend.restarts")
                .with_unit("{restart}")
                .with_description("Backend sessions restarted after a failure")
                .build(),
            fsync: meter
                .f64_histogram("switchboard.audit.fsync.duration")
                .with_unit("s")
                .with_description("Latency of the audit log's fsync calls")
                .with_boundaries(FSYNC_BUCKETS.to_vec())
                .build(),
            policy_reloads: meter
                .u64_counter("switchboard.policy.reloads")
                .with_unit("{reload}")
                .with_description(
                    "Policy reloads by stage and outcome (loaded, unchanged, rejected)",
                )
                .build(),
            integrity_events: meter
                .u64_counter("switchboard.integrity.events")
                .with_unit("{event}")
                .with_description(
                    "Definitions quarantined, released, warned about, approved or kept blocked, \
                     by backend and reason",
                )
                .build(),
            tool_labels,
        }
    }

    pub fn denied(&self, why: Denial) {
        self.denials
            .add(1, &[KeyValue::new("switchboard.reason", why.as_str())]);
    }

    pub fn session_opened(&self, protocol_version: &'static str) {
        self.sessions.add(
            1,
            &[KeyValue::new("mcp.protocol.version", protocol_version)],
        );
    }

    /// A session ended after `lived`; `protocol` is `http` or `websocket`.
    pub fn session_closed(
        &self,
        protocol_version: &'static str,
        protocol: &'static str,
        lived: Duration,
    ) {
        self.sessions.add(
            -1,
            &[KeyValue::new("mcp.protocol.version", protocol_version)],
        );
        self.server_session.record(
            lived.as_secs_f64(),
            &[
                KeyValue::new("mcp.protocol.version", protocol_version),
                KeyValue::new("network.protocol.name", protocol),
            ],
        );
    }

    pub fn backend_session_opened(&self, backend: &Arc<str>) {
        self.backend_sessions
            .add(1, &[KeyValue::new("switchboard.backend", backend.clone())]);
    }

    pub fn backend_session_closed(
        &self,
        backend: &Arc<str>,
        transport: &'static str,
        lived: Duration,
    ) {
        self.backend_sessions
            .add(-1, &[KeyValue::new("switchboard.backend", backend.clone())]);
        self.client_session.record(
            lived.as_secs_f64(),
            &[
                KeyValue::new("switchboard.backend", backend.clone()),
                KeyValue::new("network.transport", transport),
            ],
        );
    }

    pub fn backend_restarted(&self, backend: &Arc<str>) {
        self.restarts
            .add(1, &[KeyValue::new("switchboard.backend", backend.clone())]);
    }

    /// A policy stage's sources were reloaded: `outcome` is `loaded`, `unchanged` or `rejected`.
    pub fn policy_reloaded(&self, stage: &'static str, outcome: &'static str) {
        self.policy_reloads.add(
            1,
            &[
                KeyValue::new("switchboard.policy.stage", stage),
                KeyValue::new("switchboard.policy.outcome", outcome),
            ],
        );
    }

    /// A definition's standing changed (`event`: quarantined, released, warned, approved,
    /// blocked; `reason`: changed, unpinned, poisoned, …).
    pub fn integrity_event(&self, event: &'static str, backend: &str, reason: &str) {
        self.integrity_events.add(
            1,
            &[
                KeyValue::new("switchboard.integrity.event", event),
                KeyValue::new("switchboard.backend", backend.to_string()),
                KeyValue::new("switchboard.integrity.reason", reason.to_string()),
            ],
        );
    }

    /// One fsync of the audit log took `took` (records written are observed from the writer).
    pub fn audit_synced(&self, took: Duration) {
        self.fsync.record(took.as_secs_f64(), &[]);
    }
}
