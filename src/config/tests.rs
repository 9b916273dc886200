use super::validate::{Env, validate};
use super::*;

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let raw = serde_norway::from_str(yaml).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    validate(raw, &Env::fixed(env))
}

fn problems(yaml: &str) -> Vec<FieldError> {
    match load(yaml, &[]) {
        Err(ConfigError::Invalid(v)) => v,
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn embedded_default_is_valid_and_uses_self_over_stdio() {
    let c = load(DEFAULT_YAML, &[]).unwrap();
    assert_eq!(c.listeners[0].bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.backends.len(), 2);
    let TransportConfig::Stdio { command, args, .. } = &c.backends[0].transport else {
        panic!()
    };
    assert_eq!(command.to_str(), Some("/bin/switchboard"));
    assert_eq!(args, &["demo-backend", "notes"]);
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    let e = load("backends: []\nlisteners: [{bnd: 1}]\n", &[]).unwrap_err();
    assert!(e.to_string().contains("bnd"), "{e}");
}

#[test]
fn errors_name_the_field_and_the_problem() {
    let errs = problems(
        "listeners: [{bind: nope, naming: sideways}]\nbackends:\n  - {name: 'a__b', transport: stdio, command: x}\n  - {name: web, transport: streamable-http, url: 'ftp://x'}\n  - {name: ws, transport: carrier-pigeon}\n",
    );
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"listeners[0].bind"), "{errs:?}");
    assert!(fields.contains(&"backends[0].name"), "{errs:?}");
    assert!(fields.contains(&"backends.web.url"), "{errs:?}");
    assert!(fields.contains(&"backends.ws.transport"), "{errs:?}");
}

#[test]
fn env_substitution_fills_secrets_and_reports_missing_vars_without_values() {
    let yaml = "backends:\n  - name: gh\n    transport: streamable-http\n    url: http://127.0.0.1:9/mcp\n    headers: {Authorization: 'Bearer ${env:GH_TOKEN}'}\n";
    let c = load(yaml, &[("GH_TOKEN", "s3cr3t")]).unwrap();
    let TransportConfig::StreamableHttp { headers, .. } = &c.backends[0].transport else {
        panic!()
    };
    assert_eq!(headers["Authorization"].expose(), "Bearer s3cr3t");
    assert!(
        !format!("{c:?}").contains("s3cr3t"),
        "Debug must not print secrets"
    );
    let e = load(yaml, &[]).unwrap_err().to_string();
    assert!(
        e.contains("GH_TOKEN is not set") && e.contains("backends.gh.headers.Authorization"),
        "{e}"
    );
}

#[test]
fn duplicate_backends_and_missing_backends_are_errors() {
    let errs = problems(
        "backends:\n  - {name: a, transport: stdio, command: x}\n  - {name: a, transport: stdio, command: y}\n",
    );
    assert!(
        errs.iter().any(|e| e.problem.contains("duplicate")),
        "{errs:?}"
    );
    let errs = problems("sessions: {idle_ttl: 5m}\n");
    assert_eq!(errs[0].field, "backends");
}

#[test]
fn durations_and_limits_parse() {
    let c = load("sessions: {idle_ttl: 90s, max_in_flight: 3}\nbackends: [{name: a, transport: websocket, url: 'ws://127.0.0.1:1/', timeouts: {request: 2s}}]\n", &[]).unwrap();
    assert_eq!(c.sessions.idle_ttl, Duration::from_secs(90));
    assert_eq!(c.sessions.max_in_flight, 3);
    assert_eq!(c.backends[0].timeouts.request, Duration::from_secs(2));
    assert_eq!(c.backends[0].transport.kind(), "websocket");
}

const ONE_BACKEND: &str = "backends: [{name: a, transport: stdio, command: x}]\n";

#[test]
fn audit_is_off_by_default_and_parses_with_defaults() {
    let c = load(ONE_BACKEND, &[]).unwrap();
    assert_eq!(c.audit, None);
    let c = load(
        &format!("{ONE_BACKEND}audit: {{path: /tmp/a.jsonl}}\n"),
        &[],
    )
    .unwrap();
    let a = c.audit.unwrap();
    assert_eq!(a.path, PathBuf::from("/tmp/a.jsonl"));
    assert_eq!(
        a.durability,
        AuditDurability::Interval(Duration::from_millis(50))
    );
    assert_eq!(a.max_file_bytes, 100 * 1024 * 1024);
    let c = load(
        &format!(
            "{ONE_BACKEND}audit: {{path: a.jsonl, durability: fsync, max_file_bytes: 65536}}\n"
        ),
        &[],
    )
    .unwrap();
    let a = c.audit.unwrap();
    assert_eq!(a.durability, AuditDurability::Fsync);
    assert_eq!(a.max_file_bytes, 65536);
    let c = load(
        &format!("{ONE_BACKEND}audit: {{path: a.jsonl, interval: 200ms}}\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        c.audit.unwrap().durability,
        AuditDurability::Interval(Duration::from_millis(200))
    );
}

#[test]
fn audit_errors_name_the_field() {
    let e = load(
        &format!("{ONE_BACKEND}audit: {{path: a, fsync: true}}\n"),
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("fsync"), "{e}");
    let fields = |yaml: &str| -> Vec<String> {
        problems(&format!("{ONE_BACKEND}{yaml}"))
            .into_iter()
            .map(|e| e.field)
            .collect()
    };
    assert_eq!(fields("audit: {durability: fsync}\n"), ["audit.path"]);
    assert_eq!(
        fields("audit: {path: a, durability: sometimes}\n"),
        ["audit.durability"]
    );
    assert_eq!(
        fields("audit: {path: a, durability: fsync, interval: 5ms}\n"),
        ["audit.interval"]
    );
    assert_eq!(
        fields("audit: {path: a, interval: 0s}\n"),
        ["audit.interval"]
    );
    assert_eq!(
        fields("audit: {path: a, max_file_bytes: 10}\n"),
        ["audit.max_file_bytes"]
    );
}
