//! `${file:PATH}` substitution and the backend `auth:` section.

use super::*;
use crate::config::raw::RawConfig;

fn load(yaml: &str, env: Env) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        serde_norway::from_str(yaml).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    validate(raw, &env)
}

fn problems(yaml: &str, env: Env) -> Vec<FieldError> {
    match load(yaml, env) {
        Err(ConfigError::Invalid(v)) => v,
        other => panic!("expected field errors, got {other:?}"),
    }
}

fn http_with_header(value: &str) -> String {
    format!(
        "backends:\n  - name: gh\n    transport: streamable-http\n    url: http://127.0.0.1:9/mcp\n    headers: {{X-Api-Key: '{value}'}}\n"
    )
}

fn header(c: &Config) -> &str {
    let TransportConfig::StreamableHttp { headers, .. } = &c.backends[0].transport else {
        panic!("not http")
    };
    headers["X-Api-Key"].expose()
}

#[test]
fn file_substitution_reads_the_file_without_its_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "s3cr3t-from-file\r\n").unwrap();
    let abs = dir.path().join("key");
    let c = load(
        &http_with_header(&format!("k-${{file:{}}}", abs.display())),
        Env::fixed(&[]),
    )
    .unwrap();
    assert_eq!(header(&c), "k-s3cr3t-from-file");
    assert!(!format!("{c:?}").contains("s3cr3t"), "Debug hides it");
    // Relative to the config file's directory when one is given.
    let c = load(
        &http_with_header("${file:key}"),
        Env::fixed(&[]).files_relative_to(dir.path()),
    )
    .unwrap();
    assert_eq!(header(&c), "s3cr3t-from-file");
}

#[test]
fn a_substituted_value_is_not_expanded_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "${env:HOME}\n").unwrap();
    let c = load(
        &http_with_header("${file:key}"),
        Env::fixed(&[("HOME", "/root")]).files_relative_to(dir.path()),
    )
    .unwrap();
    assert_eq!(header(&c), "${env:HOME}");
}

#[test]
fn an_unreadable_file_is_an_error_naming_the_field_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), "s3cr3t".repeat(20_000)).unwrap();
    std::fs::write(dir.path().join("binary"), [0xff, 0xfe, b's']).unwrap();
    for (path, why) in [
        ("missing", "not found"),
        ("big", "larger than"),
        ("binary", "not UTF-8"),
        (".", "not a regular file"),
    ] {
        let errs = problems(
            &http_with_header(&format!("${{file:{path}}}")),
            Env::fixed(&[]).files_relative_to(dir.path()),
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "backends.gh.headers.X-Api-Key");
        assert!(errs[0].problem.contains(why), "{errs:?}");
        assert!(!errs[0].problem.contains("s3cr3t"), "{errs:?}");
    }
    let errs = problems(&http_with_header("${file:}"), Env::fixed(&[]));
    assert!(errs[0].problem.contains("needs a path"), "{errs:?}");
}

const CLIENT_CREDENTIALS: &str = "backends:
  - name: github
    transport: streamable-http
    url: http://127.0.0.1:9/mcp
    headers: {X-Tenant: acme}
    auth:
      client_credentials:
        token_url: http://127.0.0.1:10/token
        client_id: switchboard
        client_secret: ${env:GITHUB_CLIENT_SECRET}
        scopes: [repo, 'read:org']
        audience: https://github-mcp.example
";

#[test]
fn client_credentials_parse_with_defaults_and_a_hidden_secret() {
    let c = load(
        CLIENT_CREDENTIALS,
        Env::fixed(&[("GITHUB_CLIENT_SECRET", "cc-s3cr3t")]),
    )
    .unwrap();
    let Some(BackendAuth::ClientCredentials(cc)) = &c.backends[0].auth else {
        panic!("no client credentials")
    };
    assert_eq!(cc.token_url, "http://127.0.0.1:10/token");
    assert_eq!(cc.client_id, "switchboard");
    assert_eq!(cc.client_secret.expose(), "cc-s3cr3t");
    assert_eq!(cc.scopes, ["repo", "read:org"]);
    assert_eq!(cc.audience.as_deref(), Some("https://github-mcp.example"));
    assert_eq!(cc.resource, None);
    assert_eq!(cc.auth_method, ClientAuthMethod::Basic);
    assert!(!format!("{c:?}").contains("cc-s3cr3t"), "Debug hides it");
    let post = CLIENT_CREDENTIALS.replace(
        "        audience:",
        "        auth_method: client_secret_post\n        resource: https://r.example/mcp\n        audience:",
    );
    let c = load(&post, Env::fixed(&[("GITHUB_CLIENT_SECRET", "x")])).unwrap();
    let Some(BackendAuth::ClientCredentials(cc)) = &c.backends[0].auth else {
        panic!()
    };
    assert_eq!(cc.auth_method, ClientAuthMethod::Post);
    assert_eq!(cc.resource.as_deref(), Some("https://r.example/mcp"));
}

#[test]
fn client_credentials_errors_name_their_field() {
    let fields = |yaml: &str| -> Vec<String> {
        let mut f: Vec<String> = problems(yaml, Env::fixed(&[]))
            .into_iter()
            .map(|e| e.field)
            .collect();
        f.sort();
        f
    };
    let at = "backends.github.auth.client_credentials";
    assert_eq!(
        fields(CLIENT_CREDENTIALS),
        [format!("{at}.client_secret")],
        "an unset variable"
    );
    let broken = CLIENT_CREDENTIALS
        .replace("http://127.0.0.1:10/token", "ftp://x")
        .replace("client_id: switchboard", "client_id: ''")
        .replace("'read:org'", "'read org'")
        .replace(
            "        audience:",
            "        auth_method: private_key_jwt\n        audience:",
        );
    assert_eq!(
        fields(&broken),
        [
            format!("{at}.auth_method"),
            format!("{at}.client_id"),
            format!("{at}.client_secret"),
        ],
        "missing fields stop the section early"
    );
    let broken = CLIENT_CREDENTIALS
        .replace("${env:GITHUB_CLIENT_SECRET}", "literal")
        .replace("http://127.0.0.1:10/token", "ftp://x")
        .replace("'read:org'", "'read org'");
    assert_eq!(
        fields(&broken),
        [format!("{at}.scopes[1]"), format!("{at}.token_url")]
    );
    let with_header = CLIENT_CREDENTIALS
        .replace("${env:GITHUB_CLIENT_SECRET}", "literal")
        .replace("X-Tenant: acme", "authorization: Bearer static");
    assert_eq!(fields(&with_header), ["backends.github.auth"]);
    let empty =
        "backends: [{name: a, transport: streamable-http, url: 'http://127.0.0.1:9/', auth: {}}]\n";
    assert_eq!(fields(empty), ["backends.a.auth"]);
    let stdio = "backends: [{name: a, transport: stdio, command: x, auth: {client_credentials: {token_url: 'http://x', client_id: a, client_secret: b}}}]\n";
    assert_eq!(fields(stdio), ["backends.a.auth"]);
    let unknown = "backends: [{name: a, transport: streamable-http, url: 'http://x/', auth: {token_exchange: {}}}]\n";
    assert!(
        load(unknown, Env::fixed(&[]))
            .unwrap_err()
            .to_string()
            .contains("token_exchange")
    );
}
