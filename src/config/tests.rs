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

const ONE_BACKEND: &str = "backends: [{name: a, transport: stdio, command: x}]\n";

fn auth_problems(listener: &str) -> Vec<String> {
    problems(&format!("listeners: [{listener}]\n{ONE_BACKEND}"))
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_listener_says_how_it_authenticates_and_is_open_only_on_loopback() {
    let p = auth_problems("{bind: '127.0.0.1:1'}");
    assert!(p[0].starts_with("listeners[0].auth: is required"), "{p:?}");
    let p = auth_problems("{bind: '0.0.0.0:1', auth: {mode: none}}");
    assert!(
        p[0].contains("listeners[0].auth.mode: `none` is allowed only on a loopback bind"),
        "{p:?}"
    );
    let p = auth_problems("{bind: '127.0.0.1:1', auth: {mode: oauth}}");
    assert!(
        p[0].contains("needs at least one entry in `issuers` or `api_keys`"),
        "{p:?}"
    );
    let p = auth_problems(
        "{bind: '0.0.0.0:1', auth: {mode: oauth, issuers: [{issuer: 'https://idp', jwks_url: 'https://idp/jwks', hs256_secret: x, algorithms: [none]}], api_keys: [{name: k, hash: 'md5:1'}]}}",
    );
    assert!(
        p.iter()
            .any(|e| e.contains("issuers[0]: set exactly one of")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|e| e.contains("api_keys[0].hash: expected sha256:")),
        "{p:?}"
    );
    let p = auth_problems(
        "{bind: '0.0.0.0:1', auth: {mode: oauth, issuers: [{issuer: 'https://idp', jwks_url: 'https://idp/jwks', algorithms: [HS256]}]}}",
    );
    assert!(
        p[0].contains("issuers[0].algorithms[0]: expected one of RS256"),
        "{p:?}"
    );
    // A dev secret must be long, and it never appears in the error.
    let p = auth_problems(
        "{bind: '0.0.0.0:1', auth: {mode: oauth, issuers: [{issuer: 'https://idp', hs256_secret: shortsecretvalue}]}}",
    );
    assert!(
        p[0].contains("hs256_secret: must be at least 32 bytes"),
        "{p:?}"
    );
    assert!(!p.iter().any(|e| e.contains("shortsecretvalue")), "{p:?}");
}

#[test]
fn an_oauth_listener_defaults_its_resource_audience_and_claims() {
    let c = load(
        &format!(
            "listeners: [{{bind: '0.0.0.0:8443', auth: {{mode: oauth, required_scopes: [mcp], issuers: [{{issuer: 'https://idp.example', discovery: true}}], api_keys: [{{name: ci, hash: 'sha256:{}', roles: [reader], expires: '2027-06-01T00:00:00Z'}}]}}}}]\n{ONE_BACKEND}",
            "ab".repeat(32)
        ),
        &[],
    )
    .unwrap();
    let AuthConfig::OAuth(o) = &c.listeners[0].auth else {
        panic!("expected oauth")
    };
    assert_eq!(o.resource, "http://0.0.0.0:8443/mcp");
    assert_eq!(o.authorization_servers, ["https://idp.example"]);
    assert_eq!(o.scopes_supported, ["mcp"]);
    assert_eq!(o.claims.subject, "sub");
    assert_eq!(o.issuers[0].algorithms, ["RS256", "ES256", "EdDSA"]);
    assert!(matches!(o.issuers[0].keys, KeySource::Discovery));
    assert_eq!(o.api_keys[0].roles, ["reader"]);
    assert!(o.api_keys[0].expires.is_some());
}
