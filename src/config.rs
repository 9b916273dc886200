//! Configuration: the YAML file parsed into raw serde structs, then validated into a typed `Config`.

mod auth;
mod integrity;
mod raw;
mod telemetry;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use auth::{
    ApiKeyConfig, AuthConfig, ClaimsConfig, IssuerConfig, KeySource, OAuthConfig, api_key_hash,
};
pub use integrity::{FindingAction, FindingActions, IntegrityConfig, PinMode};
pub use validate::{ConfigError, FieldError};

/// Validated gateway configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub backends: Vec<BackendConfig>,
    pub sessions: SessionConfig,
    pub shutdown_grace: Duration,
    pub log: LogConfig,
    /// The tamper-evident audit log; `None` (the default) when the `audit:` section is absent.
    pub audit: Option<AuditConfig>,
    /// Spans, metrics and their export (`telemetry:`); metrics on `/metrics` by default.
    pub telemetry: TelemetryConfig,
    /// The policy pipeline's stages in order (`policy:`); empty: everything listed is allowed.
    pub policy: Vec<crate::policy::StageConfig>,
    /// The admin listener (`admin:`); `None`: no admin endpoints.
    pub admin: Option<AdminConfig>,
    /// Pinning and the poisoning scan (`integrity:`).
    pub integrity: IntegrityConfig,
    /// The file this config was read from (what `POST /admin/reload` reads again).
    pub source: Option<PathBuf>,
}

/// The admin listener: reload, sessions, effective permissions. Its callers need `role`.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Loopback by default.
    pub bind: SocketAddr,
    pub auth: AuthConfig,
    /// The role a caller needs (ignored with `auth: {mode: none}`, loopback only).
    pub role: String,
}

/// What the gateway emits about itself (`telemetry:` in the YAML; see docs/telemetry.md).
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// Resource `service.name`.
    pub service_name: String,
    /// Resource `service.instance.id`; generated when absent.
    pub instance_id: Option<String>,
    /// Where traces and metrics are pushed; `None`: no OTLP export.
    pub otlp: Option<OtlpConfig>,
    pub traces: TraceConfig,
    pub metrics: MetricsConfig,
    /// Backends/tools whose arguments and results are recorded on spans (opt-in).
    pub payloads: Vec<PayloadRule>,
}

/// An OTLP collector endpoint.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// gRPC: `http://host:4317`; HTTP: the base URL (`/v1/traces`, `/v1/metrics` are appended).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub headers: BTreeMap<String, Secret>,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// Span export.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Spans are built and exported (needs an OTLP endpoint).
    pub enabled: bool,
    /// Share of root traces sampled; a client's sampled/unsampled flag always wins.
    pub sample_ratio: f64,
    /// Spans waiting for export; beyond it new spans are dropped (and counted).
    pub queue: usize,
    pub batch: usize,
    pub interval: Duration,
}

/// Metric export.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` on every listener.
    pub prometheus: bool,
    /// Push metrics over OTLP too. Each reader aggregates every measurement again, so by default
    /// metrics go one way: `/metrics`, or OTLP when the scrape endpoint is off.
    pub otlp: bool,
    pub otlp_interval: Duration,
    /// Label call metrics with tool names (bounded by the catalog).
    pub tool_labels: bool,
}

/// Record arguments/results of these tools (all of the backend's when `tools` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadRule {
    pub backend: String,
    pub tools: Option<Vec<String>>,
}

/// How merged names are formed when several backends sit behind one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamingPolicy {
    /// Always `<backend>__<name>`.
    Prefix,
    /// Bare names; `<backend>__<name>` only where two backends collide.
    OnCollision,
}

/// One downstream listener.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub naming: NamingPolicy,
    /// Allowed `Origin` values (exact, e.g. `http://localhost:6274`); requests with no Origin pass.
    pub allowed_origins: Vec<String>,
    /// Allowed `Host` header values (host or host:port).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    /// Expose `/servers/{backend}/mcp` virtual servers.
    pub virtual_servers: bool,
    /// Upper bound on HTTP requests being served at once (open SSE streams count); over it: 503.
    pub max_concurrent_requests: usize,
    /// Who may call (`auth:`): bearer tokens and API keys, or nobody checked (loopback only).
    pub auth: AuthConfig,
}

/// Per-session limits and timers.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub idle_ttl: Duration,
    pub max_in_flight: usize,
    pub max_sessions: usize,
    pub replay_buffer: usize,
    /// How long a server→client SSE stream stays open between keep-alive comments.
    pub keep_alive: Duration,
}

/// How log lines are written.
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

/// Where and how durably the audit log is written (`audit:` in the YAML).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// The active file (e.g. `/var/log/switchboard/audit.jsonl`); rotated files get `.1`, `.2`, … beside it.
    pub path: PathBuf,
    pub durability: AuditDurability,
    /// The active file is rotated before a write would take it past this size.
    pub max_file_bytes: u64,
}

/// When the audit writer calls `fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditDurability {
    /// Before acknowledging every batch: nothing acknowledged is ever lost.
    Fsync,
    /// At most once per interval: a crash loses at most this much of the log.
    Interval(Duration),
}

/// One backend MCP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub name: String,
    pub transport: TransportConfig,
    pub timeouts: Timeouts,
    /// The gateway's own credential for this backend beyond static `headers:` (HTTP and
    /// WebSocket only); `None`: static headers (if any) are the whole credential.
    pub auth: Option<BackendAuth>,
    /// How its definitions are held to the pinned manifest; `None`: `enforce` when the manifest
    /// has entries for it, else `tofu`.
    pub pinning: Option<PinMode>,
}

/// How the gateway obtains the credential it sends to a backend (`auth:` of a backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendAuth {
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4): a bearer token fetched from the
    /// token endpoint, cached until shortly before it expires.
    ClientCredentials(ClientCredentialsConfig),
}

/// `auth: client_credentials:` of a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentialsConfig {
    /// The token endpoint (http or https).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sent as the space-separated `scope` parameter when not empty.
    pub scopes: Vec<String>,
    /// Sent as the `audience` parameter (Auth0, Okta, Keycloak and others).
    pub audience: Option<String>,
    /// Sent as the RFC 8707 `resource` parameter.
    pub resource: Option<String>,
    pub auth_method: ClientAuthMethod,
}

/// How the gateway authenticates itself to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`, the default).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// Per-backend deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting, spawning and the initialize handshake.
    pub connect: Duration,
    /// One request, from send to final response.
    pub request: Duration,
}

/// How to reach a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportConfig {
    StreamableHttp {
        url: String,
        headers: BTreeMap<String, Secret>,
    },
    Stdio {
        command: PathBuf,
        args: Vec<String>,
        env: BTreeMap<String, Secret>,
        cwd: Option<PathBuf>,
    },
    WebSocket {
        url: String,
        headers: BTreeMap<String, Secret>,
    },
}

impl TransportConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::StreamableHttp { .. } => "streamable-http",
            TransportConfig::Stdio { .. } => "stdio",
            TransportConfig::WebSocket { .. } => "websocket",
        }
    }
}

/// A value that may hold a credential: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The plain value, for the one place that sends it to the backend.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Config {
    /// Parses and validates YAML text. `origin` names the source in errors.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig =
            serde_norway::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        validate::validate(raw, &validate::Env::process())
    }

    /// Reads and validates a config file; a relative `${file:PATH}` is read beside it.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io(format!("{}: {e}", path.display())))?;
        let raw: raw::RawConfig =
            serde_norway::from_str(&text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let dir = path.parent().unwrap_or_else(|| std::path::Path::new(""));
        let mut c = validate::validate(raw, &validate::Env::process().files_relative_to(dir))?;
        c.integrity.resolve(path);
        c.source = Some(path.to_path_buf());
        Ok(c)
    }

    pub fn backend(&self, name: &str) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// The embedded default: the demo backends (spawned from this executable over stdio) on 127.0.0.1:8080.
pub fn embedded_default() -> Result<Config, ConfigError> {
    Config::from_yaml(DEFAULT_YAML)
}

/// The embedded default configuration text (also shipped as `switchboard.yaml`).
pub const DEFAULT_YAML: &str = include_str!("../switchboard.yaml");

#[cfg(test)]
mod tests;
