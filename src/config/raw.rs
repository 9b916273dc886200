//! Raw serde structs mirroring `switchboard.yaml`; unknown fields are rejected.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) listeners: Vec<RawListener>,
    #[serde(default)]
    pub(super) backends: Vec<RawBackend>,
    #[serde(default)]
    pub(super) sessions: RawSessions,
    #[serde(default, with = "humantime_serde")]
    pub(super) shutdown_grace: Option<Duration>,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) audit: Option<RawAudit>,
    #[serde(default)]
    pub(super) telemetry: RawTelemetry,
    pub(super) admin: Option<RawAdmin>,
    /// The policy pipeline's stages, in the order they run.
    #[serde(default)]
    pub(super) policy: Vec<crate::policy::StageConfig>,
    #[serde(default)]
    pub(super) integrity: super::integrity::RawIntegrity,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    pub(super) service_name: Option<String>,
    pub(super) instance_id: Option<String>,
    pub(super) otlp: Option<RawOtlp>,
    #[serde(default)]
    pub(super) traces: RawTraces,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default)]
    pub(super) payloads: Vec<RawPayloadRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOtlp {
    pub(super) endpoint: Option<String>,
    pub(super) protocol: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraces {
    pub(super) enabled: Option<bool>,
    pub(super) sample_ratio: Option<f64>,
    pub(super) queue: Option<u64>,
    pub(super) batch: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub(super) interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) prometheus: Option<bool>,
    pub(super) otlp: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub(super) otlp_interval: Option<Duration>,
    pub(super) tool_labels: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayloadRule {
    pub(super) backend: Option<String>,
    pub(super) tools: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) path: Option<String>,
    pub(super) durability: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) interval: Option<Duration>,
    pub(super) max_file_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub(super) name: Option<String>,
    pub(super) bind: Option<String>,
    pub(super) naming: Option<String>,
    #[serde(default)]
    pub(super) allowed_origins: Vec<String>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) virtual_servers: Option<bool>,
    pub(super) max_concurrent_requests: Option<u64>,
    pub(super) auth: Option<super::auth::RawAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) bind: Option<String>,
    pub(super) auth: Option<super::auth::RawAuth>,
    pub(super) role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSessions {
    #[serde(default, with = "humantime_serde")]
    pub(super) idle_ttl: Option<Duration>,
    pub(super) max_in_flight: Option<u64>,
    pub(super) max_sessions: Option<u64>,
    pub(super) replay_buffer: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub(super) keep_alive: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    pub(super) name: Option<String>,
    pub(super) transport: Option<String>,
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) args: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) cwd: Option<String>,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    pub(super) auth: Option<RawBackendAuth>,
    pub(super) pinning: Option<super::integrity::PinMode>,
}

/// `auth:` of a backend: exactly one way to obtain the gateway's credential.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackendAuth {
    pub(super) client_credentials: Option<RawClientCredentials>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientCredentials {
    pub(super) token_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    pub(super) audience: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) auth_method: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    #[serde(default, with = "humantime_serde")]
    pub(super) connect: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) request: Option<Duration>,
}
