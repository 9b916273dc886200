//! Turns a `RawConfig` into a `Config`: defaults, `${env:VAR}` / `${file:PATH}` expansion, and
//! field-named errors (which name the field, never a substituted value).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawAudit, RawBackend, RawBackendAuth, RawConfig, RawListener};
use super::{
    AuditConfig, AuditDurability, BackendAuth, BackendConfig, ClientAuthMethod,
    ClientCredentialsConfig, Config, ListenerConfig, LogConfig, NamingPolicy, Secret,
    SessionConfig, Timeouts, TransportConfig,
};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config: {0}")]
    Io(String),
    #[error("config is not valid YAML for switchboard: {0}")]
    Syntax(String),
    #[error("config is invalid:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// Where `${env:VAR}`, `${file:PATH}` and `${self}` come from (the process, or a test's map).
pub(crate) struct Env {
    vars: BTreeMap<String, String>,
    self_exe: String,
    /// A relative `${file:PATH}` is read from here (the config file's directory); `None`: from
    /// the working directory.
    files_base: Option<PathBuf>,
}

impl Env {
    /// A variable of the environment (the OpenTelemetry `OTEL_*` ones, say).
    pub(super) fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl Env {
    pub(crate) fn process() -> Self {
        let self_exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "switchboard".into());
        Env {
            vars: std::env::vars().collect(),
            self_exe,
            files_base: None,
        }
    }

    /// Reads relative `${file:PATH}` references from `dir` (the config file's directory).
    pub(crate) fn files_relative_to(mut self, dir: &Path) -> Self {
        self.files_base = Some(dir.to_path_buf());
        self
    }

    #[cfg(test)]
    pub(crate) fn fixed(vars: &[(&str, &str)]) -> Self {
        Env {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            self_exe: "/bin/switchboard".into(),
            files_base: None,
        }
    }
}

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;
const MAX_NAME_LEN: usize = 48;

pub(super) struct Errors(Vec<FieldError>);

impl Errors {
    pub(super) fn push(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }
}

pub(crate) fn validate(raw: RawConfig, env: &Env) -> Result<Config, ConfigError> {
    let mut errs = Errors(Vec::new());
    let mut listeners = Vec::new();
    if raw.listeners.is_empty() {
        listeners.push(default_listener());
    }
    let mut names = HashSet::new();
    for (i, l) in raw.listeners.into_iter().enumerate() {
        if let Some(l) = listener(l, &format!("listeners[{i}]"), env, &mut errs) {
            if !names.insert(l.name.clone()) {
                errs.push(
                    format!("listeners[{i}].name"),
                    format!("duplicate listener name {:?}", l.name),
                );
            }
            listeners.push(l);
        }
    }
    let mut backends = Vec::new();
    let mut names = HashSet::new();
    for (i, b) in raw.backends.into_iter().enumerate() {
        if let Some(b) = backend(b, &format!("backends[{i}]"), env, &mut errs) {
            if !names.insert(b.name.clone()) {
                errs.push(
                    format!("backends[{i}].name"),
                    format!("duplicate backend name {:?}", b.name),
                );
            }
            backends.push(b);
        }
    }
    if backends.is_empty() && errs.0.is_empty() {
        errs.push("backends", "at least one backend is required");
    }
    let s = raw.sessions;
    let sessions = SessionConfig {
        idle_ttl: s.idle_ttl.unwrap_or(Duration::from_secs(30 * 60)),
        max_in_flight: positive(s.max_in_flight, 64, "sessions.max_in_flight", &mut errs),
        max_sessions: positive(s.max_sessions, 10_000, "sessions.max_sessions", &mut errs),
        replay_buffer: positive(s.replay_buffer, 256, "sessions.replay_buffer", &mut errs),
        keep_alive: s.keep_alive.unwrap_or(Duration::from_secs(15)),
    };
    if sessions.idle_ttl.is_zero() {
        errs.push("sessions.idle_ttl", "must be greater than zero");
    }
    if sessions.keep_alive.is_zero() {
        errs.push("sessions.keep_alive", "must be greater than zero");
    }
    let log = LogConfig {
        json: match raw.log.format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                errs.push(
                    "log.format",
                    format!("expected \"text\" or \"json\", got {other:?}"),
                );
                false
            }
        },
        level: raw.log.level.unwrap_or_else(|| "info".into()),
    };
    let audit = raw.audit.and_then(|a| audit(a, &mut errs));
    let admin = raw.admin.map(|a| admin(a, env, &mut errs));
    let telemetry = super::telemetry::validate(raw.telemetry, env, &mut errs);
    let names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
    for (i, stage) in raw.policy.iter().enumerate() {
        for (field, problem) in stage.problems(&names) {
            errs.push(format!("policy[{i}].{field}"), problem);
        }
    }
    if !errs.0.is_empty() {
        return Err(ConfigError::Invalid(errs.0));
    }
    Ok(Config {
        listeners,
        backends,
        sessions,
        shutdown_grace: raw.shutdown_grace.unwrap_or(Duration::from_secs(10)),
        log,
        audit,
        telemetry,
        policy: raw.policy,
        integrity: raw.integrity.validate(),
        admin,
        source: None,
    })
}

const DEFAULT_ADMIN_BIND: &str = "127.0.0.1:9091";

fn admin(a: super::raw::RawAdmin, env: &Env, errs: &mut Errors) -> super::AdminConfig {
    let bind = a.bind.as_deref().unwrap_or(DEFAULT_ADMIN_BIND);
    let bind = bind.parse::<SocketAddr>().unwrap_or_else(|_| {
        errs.push(
            "admin.bind",
            format!("expected ip:port (e.g. 127.0.0.1:9091), got {bind:?}"),
        );
        SocketAddr::from(([127, 0, 0, 1], 9091))
    });
    super::AdminConfig {
        auth: super::auth::validate(a.auth, bind, "admin", env, errs),
        bind,
        role: a.role.unwrap_or_else(|| "admin".into()),
    }
}

const DEFAULT_AUDIT_INTERVAL: Duration = Duration::from_millis(50);
const DEFAULT_AUDIT_MAX_FILE: u64 = 100 * 1024 * 1024;
const MIN_AUDIT_MAX_FILE: u64 = 4096;

fn audit(a: RawAudit, errs: &mut Errors) -> Option<AuditConfig> {
    let path = match a.path {
        Some(p) if !p.trim().is_empty() => PathBuf::from(p),
        _ => {
            errs.push(
                "audit.path",
                "is required when the audit section is present",
            );
            return None;
        }
    };
    let durability = match a.durability.as_deref() {
        None | Some("interval") => {
            let interval = a.interval.unwrap_or(DEFAULT_AUDIT_INTERVAL);
            if interval.is_zero() {
                errs.push("audit.interval", "must be greater than zero");
            }
            AuditDurability::Interval(interval)
        }
        Some("fsync") => {
            if a.interval.is_some() {
                errs.push("audit.interval", "only applies to durability: interval");
            }
            AuditDurability::Fsync
        }
        Some(other) => {
            errs.push(
                "audit.durability",
                format!("expected \"fsync\" or \"interval\", got {other:?}"),
            );
            return None;
        }
    };
    let max_file_bytes = a.max_file_bytes.unwrap_or(DEFAULT_AUDIT_MAX_FILE);
    if max_file_bytes < MIN_AUDIT_MAX_FILE {
        errs.push(
            "audit.max_file_bytes",
            format!("must be at least {MIN_AUDIT_MAX_FILE}"),
        );
    }
    Some(AuditConfig {
        path,
        durability,
        max_file_bytes,
    })
}

fn default_listener() -> ListenerConfig {
    ListenerConfig {
        name: "default".into(),
        bind: DEFAULT_BIND
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
        naming: NamingPolicy::OnCollision,
        allowed_origins: Vec::new(),
        allowed_hosts: Vec::new(),
        max_body_bytes: DEFAULT_MAX_BODY as usize,
        virtual_servers: true,
        max_concurrent_requests: 4096,
        // The implicit listener (no `listeners:` at all) binds loopback only: open, with a warning at start.
        auth: super::AuthConfig::None,
    }
}

fn listener(l: RawListener, at: &str, env: &Env, errs: &mut Errors) -> Option<ListenerConfig> {
    let d = default_listener();
    let name = l.name.unwrap_or_else(|| d.name.clone());
    let bind = match l.bind.as_deref() {
        None => d.bind,
        Some(b) => match b.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                errs.push(
                    format!("{at}.bind"),
                    format!("expected ip:port (e.g. 127.0.0.1:8080), got {b:?}"),
                );
                return None;
            }
        },
    };
    let naming = match l.naming.as_deref() {
        None | Some("on-collision") => NamingPolicy::OnCollision,
        Some("prefix") => NamingPolicy::Prefix,
        Some(other) => {
            errs.push(
                format!("{at}.naming"),
                format!("expected \"prefix\" or \"on-collision\", got {other:?}"),
            );
            return None;
        }
    };
    for (i, o) in l.allowed_origins.iter().enumerate() {
        if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
            errs.push(
                format!("{at}.allowed_origins[{i}]"),
                format!("expected scheme://host[:port] without a trailing slash, got {o:?}"),
            );
        }
    }
    let auth = super::auth::validate(l.auth, bind, at, env, errs);
    let max_body = l.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_body < 1024 {
        errs.push(format!("{at}.max_body_bytes"), "must be at least 1024");
    }
    Some(ListenerConfig {
        name,
        bind,
        naming,
        allowed_origins: l.allowed_origins,
        allowed_hosts: l
            .allowed_hosts
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
        virtual_servers: l.virtual_servers.unwrap_or(true),
        max_concurrent_requests: positive(
            l.max_concurrent_requests,
            d.max_concurrent_requests as u64,
            &format!("{at}.max_concurrent_requests"),
            errs,
        ),
        auth,
    })
}

fn positive(v: Option<u64>, default: u64, field: &str, errs: &mut Errors) -> usize {
    match v {
        None => default as usize,
        Some(0) => {
            errs.push(field, "must be greater than zero");
            default as usize
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// Backend names become tool-name prefixes: `[A-Za-z0-9_-]`, no `__` (the prefix separator).
fn valid_backend_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_NAME_LEN
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !n.contains("__")
        && !n.starts_with('_')
        && !n.ends_with('_')
}

fn backend(b: RawBackend, at: &str, env: &Env, errs: &mut Errors) -> Option<BackendConfig> {
    let Some(name) = b.name else {
        errs.push(format!("{at}.name"), "is required");
        return None;
    };
    if !valid_backend_name(&name) {
        errs.push(
            format!("{at}.name"),
            format!("{name:?} must be 1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 - _, without \"__\" or a leading/trailing \"_\""),
        );
    }
    let at = format!("backends.{name}");
    let timeouts = Timeouts {
        connect: b.timeouts.connect.unwrap_or(Duration::from_secs(10)),
        request: b.timeouts.request.unwrap_or(Duration::from_secs(120)),
    };
    if timeouts.connect.is_zero() || timeouts.request.is_zero() {
        errs.push(
            format!("{at}.timeouts"),
            "timeouts must be greater than zero",
        );
    }
    let expand_map = |m: BTreeMap<String, String>, field: &str, errs: &mut Errors| {
        m.into_iter()
            .map(|(k, v)| {
                let v = expand(&v, env, &format!("{at}.{field}.{k}"), errs);
                (k, Secret::new(v))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let transport = match b.transport.as_deref() {
        Some("streamable-http") | Some("http") | Some("websocket") => {
            let is_ws = b.transport.as_deref() == Some("websocket");
            let Some(url) = b.url else {
                errs.push(format!("{at}.url"), "is required for this transport");
                return None;
            };
            let url = expand(&url, env, &format!("{at}.url"), errs);
            let schemes: &[&str] = if is_ws {
                &["ws://", "wss://"]
            } else {
                &["http://", "https://"]
            };
            if !schemes.iter().any(|s| url.starts_with(s)) {
                errs.push(
                    format!("{at}.url"),
                    format!("must start with {}", schemes.join(" or ")),
                );
            }
            if b.command.is_some() || !b.args.is_empty() || !b.env.is_empty() || b.cwd.is_some() {
                errs.push(
                    at.to_string(),
                    "command/args/env/cwd only apply to the stdio transport",
                );
            }
            for k in b.headers.keys() {
                if http_header_name_invalid(k) {
                    errs.push(
                        format!("{at}.headers.{k}"),
                        "is not a valid HTTP header name",
                    );
                }
            }
            let headers = expand_map(b.headers, "headers", errs);
            if is_ws {
                TransportConfig::WebSocket { url, headers }
            } else {
                TransportConfig::StreamableHttp { url, headers }
            }
        }
        Some("stdio") => {
            let Some(command) = b.command else {
                errs.push(
                    format!("{at}.command"),
                    "is required for the stdio transport",
                );
                return None;
            };
            if b.url.is_some() || !b.headers.is_empty() {
                errs.push(
                    at.to_string(),
                    "url/headers do not apply to the stdio transport",
                );
            }
            let command = expand(&command, env, &format!("{at}.command"), errs);
            let args = b
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| expand(a, env, &format!("{at}.args[{i}]"), errs))
                .collect();
            let env_map = expand_map(b.env, "env", errs);
            TransportConfig::Stdio {
                command: PathBuf::from(command),
                args,
                env: env_map,
                cwd: b.cwd.map(PathBuf::from),
            }
        }
        Some(other) => {
            errs.push(
                format!("{at}.transport"),
                format!("expected \"streamable-http\", \"stdio\" or \"websocket\", got {other:?}"),
            );
            return None;
        }
        None => {
            errs.push(
                format!("{at}.transport"),
                "is required (streamable-http, stdio or websocket)",
            );
            return None;
        }
    };
    let auth = b
        .auth
        .and_then(|a| backend_auth(a, &transport, &at, env, errs));
    Some(BackendConfig {
        name,
        transport,
        timeouts,
        auth,
        pinning: b.pinning,
    })
}

/// `auth:` of a backend. Only HTTP and WebSocket backends take one, and not beside a static
/// `Authorization` header (which one would the backend see?).
fn backend_auth(
    a: RawBackendAuth,
    transport: &TransportConfig,
    at: &str,
    env: &Env,
    errs: &mut Errors,
) -> Option<BackendAuth> {
    let at = format!("{at}.auth");
    let headers = match transport {
        TransportConfig::StreamableHttp { headers, .. }
        | TransportConfig::WebSocket { headers, .. } => headers,
        TransportConfig::Stdio { .. } => {
            errs.push(
                at,
                "only applies to streamable-http and websocket backends (a stdio backend gets its credentials through env)",
            );
            return None;
        }
    };
    if headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        errs.push(
            at.clone(),
            "cannot be combined with a static Authorization header",
        );
    }
    let Some(c) = a.client_credentials else {
        errs.push(at, "needs one of: client_credentials");
        return None;
    };
    let at = format!("{at}.client_credentials");
    let required = |v: Option<String>, field: &str, errs: &mut Errors| match v {
        Some(v) if !v.trim().is_empty() => Some(expand(&v, env, &format!("{at}.{field}"), errs)),
        _ => {
            errs.push(format!("{at}.{field}"), "is required");
            None
        }
    };
    let token_url = required(c.token_url, "token_url", errs);
    let client_id = required(c.client_id, "client_id", errs);
    let client_secret = required(c.client_secret, "client_secret", errs);
    let auth_method = match c.auth_method.as_deref() {
        None | Some("client_secret_basic") => ClientAuthMethod::Basic,
        Some("client_secret_post") => ClientAuthMethod::Post,
        Some(other) => {
            errs.push(
                format!("{at}.auth_method"),
                format!(
                    "expected \"client_secret_basic\" or \"client_secret_post\", got {other:?}"
                ),
            );
            ClientAuthMethod::Basic
        }
    };
    let (token_url, client_id, client_secret) = (token_url?, client_id?, client_secret?);
    if !(token_url.starts_with("http://") || token_url.starts_with("https://")) {
        errs.push(
            format!("{at}.token_url"),
            "must start with http:// or https://",
        );
    }
    for (i, s) in c.scopes.iter().enumerate() {
        // RFC 6749 §3.3: scope tokens are visible ASCII without space, `"` or `\`.
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            errs.push(
                format!("{at}.scopes[{i}]"),
                "must be a non-empty scope token (visible ASCII, no space, quote or backslash)",
            );
        }
    }
    let optional = |v: Option<String>, field: &str, errs: &mut Errors| {
        v.map(|v| expand(&v, env, &format!("{at}.{field}"), errs))
    };
    Some(BackendAuth::ClientCredentials(ClientCredentialsConfig {
        audience: optional(c.audience, "audience", errs),
        resource: optional(c.resource, "resource", errs),
        token_url,
        client_id,
        client_secret: Secret::new(client_secret),
        scopes: c.scopes,
        auth_method,
    }))
}

pub(super) fn http_header_name_invalid(k: &str) -> bool {
    k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Expands `${env:VAR}`, `${file:PATH}` and `${self}`. A missing variable or unreadable file is
/// an error naming the field (and the variable or path), never a value. A substituted value is
/// not expanded again.
pub(super) fn expand(s: &str, env: &Env, field: &str, errs: &mut Errors) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            errs.push(field, "unterminated \"${\"");
            return out;
        };
        let key = &rest[start + 2..start + end];
        if key == "self" {
            out.push_str(&env.self_exe);
        } else if let Some(var) = key.strip_prefix("env:") {
            match env.vars.get(var) {
                Some(v) => out.push_str(v),
                None => errs.push(field, format!("environment variable {var} is not set")),
            }
        } else if let Some(path) = key.strip_prefix("file:") {
            match read_secret_file(env, path) {
                Ok(v) => out.push_str(&v),
                Err(problem) => errs.push(field, problem),
            }
        } else {
            errs.push(
                field,
                format!(
                    "unknown substitution ${{{key}}} (use ${{env:NAME}}, ${{file:PATH}} or ${{self}})"
                ),
            );
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Largest file a `${file:PATH}` reads: a credential, not a document.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The contents of a `${file:PATH}` without its trailing newline(s). The problem, when there is
/// one, names the path and the I/O error kind only: never the contents.
fn read_secret_file(env: &Env, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("${file:} needs a path".into());
    }
    let full = match &env.files_base {
        Some(base) if Path::new(path).is_relative() => base.join(path),
        _ => PathBuf::from(path),
    };
    let cannot = |why: &dyn std::fmt::Display| format!("cannot read file {path}: {why}");
    let meta = std::fs::metadata(&full).map_err(|e| cannot(&e.kind()))?;
    if !meta.is_file() {
        return Err(cannot(&"not a regular file"));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(cannot(&format_args!("larger than {MAX_SECRET_FILE} bytes")));
    }
    let bytes = std::fs::read(&full).map_err(|e| cannot(&e.kind()))?;
    let text = String::from_utf8(bytes).map_err(|_| cannot(&"not UTF-8 text"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests;
