//! The credential vault: backend credentials are the gateway's own. A real HTTP MCP backend
//! (TypeScript SDK, `tests/peers/header_recorder.mjs`) records every request's headers; a small
//! real OAuth token endpoint (axum, below) issues client-credentials tokens and records what it
//! was sent. Proven here: the client's `Authorization` never reaches a backend; a
//! client-credentials token is fetched once, shared, injected on every upstream request (POST,
//! GET stream, DELETE, the WebSocket handshake), refreshed after a 401 and retried after a failed
//! fetch with a clear error; and no backend credential (static header, stdio env, client secret,
//! access token) appears in any output of the gateway while the backends do receive them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/otlp.rs"]
mod otlp;
#[path = "common/upstream_peers.rs"]
mod upstream_peers;
#[path = "common/upstream_ws_bridge.rs"]
mod upstream_ws_bridge;

#[path = "vault/token_endpoint.rs"]
mod token_endpoint;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway::{EVENT_WAIT, RawClient, TestGateway, fixture_stdio, pids_with_env, switchboard_bin};
use serde_json::{Value, json};
use switchboard::config::{BackendAuth, ClientAuthMethod, ClientCredentialsConfig, Secret};
use switchboard::upstream::{EVENT_CHANNEL_CAPACITY, Upstream, UpstreamPool};
use token_endpoint::{Mode, TokenEndpoint};
use upstream_peers::{HttpPeer, start_http_peer, tests_dir};

/// A header-recording backend and the file it records to.
struct Recorder {
    peer: HttpPeer,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Recorder {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("headers.jsonl");
        std::fs::write(&file, "").unwrap();
        let script = tests_dir().join("peers/header_recorder.mjs");
        let peer = start_http_peer(
            &[&script.display().to_string()],
            &[("HEADERS_FILE", file.to_str().unwrap())],
        )
        .await;
        Recorder {
            peer,
            file,
            _dir: dir,
        }
    }

    /// Every request the backend received so far: (method, headers).
    fn requests(&self) -> Vec<(String, serde_json::Map<String, Value>)> {
        std::fs::read_to_string(&self.file)
            .unwrap()
            .lines()
            // Only whole lines: the backend may be writing the last one.
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                (
                    v["method"].as_str().unwrap().to_string(),
                    v["headers"].as_object().unwrap().clone(),
                )
            })
            .collect()
    }

    /// The `Authorization` values the backend saw, one per request (`None`: absent).
    fn authorizations(&self) -> Vec<Option<String>> {
        self.requests()
            .iter()
            .map(|(_, h)| {
                h.get("authorization")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    /// Makes the backend answer 401 to requests carrying `authorization`.
    async fn reject(&self, authorization: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/test/reject", self.peer.base()))
            .header("content-type", "text/plain")
            .body(authorization.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

/// YAML of a streamable-http backend with extra (indented) lines.
fn http_backend(name: &str, url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    transport: streamable-http\n    url: '{url}'\n{extra}")
}

fn client_credentials(token_url: &str, secret: &str, extra: &str) -> String {
    format!(
        "    auth:\n      client_credentials:\n        token_url: '{token_url}'\n        client_id: switchboard\n        client_secret: '{secret}'\n        scopes: [repo, 'read:org']\n        audience: https://github-mcp.example\n{extra}"
    )
}

fn tool_text(resp: &Value) -> String {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {resp}"))
        .to_string()
}

/// Ends the client's session with DELETE (the gateway then DELETEs its backend sessions).
async fn end_session(c: &RawClient) {
    let r = c.send(c.request(reqwest::Method::DELETE)).await;
    assert!(r.status == 200 || r.status == 204, "DELETE: {}", r.status);
}

#[tokio::test]
async fn the_clients_authorization_never_reaches_a_backend() {
    let canary = format!("client-secret-canary-{:016x}", rand::random::<u64>());
    let plain = Recorder::start().await;
    let idp = TokenEndpoint::start(Mode::Issue).await;
    let oauth = Recorder::start().await;
    let gw = TestGateway::start(
        &[
            http_backend(
                "plain",
                &plain.peer.url(),
                "    headers: {X-Api-Key: gateway-static-key}\n",
            ),
            http_backend(
                "oauth",
                &oauth.peer.url(),
                &client_credentials(&idp.url(), "cc-secret", ""),
            ),
        ],
        "naming: prefix",
    )
    .await;
    // `auth: {mode: none}` (TestGateway's listener): the header is sent and ignored.
    let c = RawClient::connect_with_token(&gw.gateway().url(), &canary).await;
    for (i, tool) in ["plain__echo", "oauth__echo"].into_iter().enumerate() {
        let r = c.tool(10 + i as i64, tool, json!({"message": "hi"})).await;
        assert_eq!(tool_text(&r), "Echo: hi");
    }
    let r = c.tool(20, "oauth__fail", json!({})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let get = c.open_get_stream().await;
    drop(get);
    end_session(&c).await;
    gw.stop().await;

    for (name, rec) in [("plain", &plain), ("oauth", &oauth)] {
        // The backend writes its log line after answering: the session's DELETE is on the wire
        // once the gateway has stopped, its line lands a moment later (only the OS can tell).
        let deleted = gateway::eventually(Duration::from_secs(10), || {
            rec.requests().iter().any(|(m, _)| m == "DELETE")
        })
        .await;
        assert!(
            deleted,
            "{name}: the backend never logged the session's DELETE"
        );
        let requests = rec.requests();
        let methods: Vec<&str> = requests.iter().map(|(m, _)| m.as_str()).collect();
        for m in ["POST", "GET", "DELETE"] {
            assert!(methods.contains(&m), "{name}: no {m} in {methods:?}");
        }
        for (method, headers) in &requests {
            let all = serde_json::to_string(headers).unwrap();
            assert!(
                !all.contains("client-secret-canary"),
                "{name}: the client's token reached the backend on {method}: {all}"
            );
        }
    }
    assert!(
        plain.authorizations().iter().all(Option::is_none),
        "no credential of the gateway's: no Authorization at all"
    );
    assert!(
        plain
            .requests()
            .iter()
            .all(|(_, h)| h["x-api-key"] == "gateway-static-key")
    );
    let issued = idp.issued_tokens();
    assert_eq!(issued.len(), 1, "one token for discovery and the session");
    let expected = format!("Bearer {}", issued[0]);
    assert!(
        oauth
            .authorizations()
            .iter()
            .all(|a| a.as_deref() == Some(expected.as_str())),
        "every request carries the gateway's token: {:?}",
        oauth.authorizations()
    );
}

#[tokio::test]
async fn a_client_credentials_token_is_fetched_once_and_shared() {
    let idp = TokenEndpoint::start(Mode::Issue).await;
    let rec = Recorder::start().await;
    let gw = TestGateway::start(
        &[http_backend(
            "github",
            &rec.peer.url(),
            &client_credentials(&idp.url(), "s3cr3t:with/odd chars", ""),
        )],
        "",
    )
    .await;
    // Several sessions calling at once: one token serves discovery and all of them.
    let mut calls = Vec::new();
    for i in 0..6 {
        let url = gw.gateway().url();
        calls.push(tokio::spawn(async move {
            let c = RawClient::connect(&url).await;
            let r = c.tool(1, "echo", json!({"message": format!("m{i}")})).await;
            assert_eq!(tool_text(&r), format!("Echo: m{i}"));
        }));
    }
    for c in calls {
        c.await.unwrap();
    }
    gw.stop().await;

    let requests = idp.requests();
    assert_eq!(requests.len(), 1, "single flight and cache: {requests:?}");
    let t = &requests[0];
    assert_eq!(t.content_type(), "application/x-www-form-urlencoded");
    assert_eq!(
        t.basic_credentials(),
        Some(("switchboard".into(), "s3cr3t:with/odd chars".into())),
        "client_secret_basic by default, id and secret form-encoded"
    );
    assert_eq!(t.form("grant_type"), Some("client_credentials"));
    assert_eq!(t.form("scope"), Some("repo read:org"));
    assert_eq!(t.form("audience"), Some("https://github-mcp.example"));
    assert_eq!(
        t.form("client_secret"),
        None,
        "the secret is not in the body"
    );
    let expected = format!("Bearer {}", idp.issued_tokens()[0]);
    let auths = rec.authorizations();
    assert!(auths.len() > 6, "{auths:?}");
    assert!(
        auths
            .iter()
            .all(|a| a.as_deref() == Some(expected.as_str())),
        "{auths:?}"
    );
}

#[tokio::test]
async fn client_secret_post_sends_the_client_in_the_form() {
    let idp = TokenEndpoint::start(Mode::Issue).await;
    let rec = Recorder::start().await;
    let gw = TestGateway::start(
        &[http_backend(
            "github",
            &rec.peer.url(),
            &client_credentials(
                &idp.url(),
                "post-secret",
                "        auth_method: client_secret_post\n        resource: https://github-mcp.example/mcp\n",
            ),
        )],
        "",
    )
    .await;
    let c = RawClient::connect(&gw.gateway().url()).await;
    assert_eq!(
        tool_text(&c.tool(1, "echo", json!({"message": "x"})).await),
        "Echo: x"
    );
    gw.stop().await;
    let t = &idp.requests()[0];
    assert_eq!(t.basic_credentials(), None);
    assert_eq!(t.header("authorization"), None);
    assert_eq!(t.form("client_id"), Some("switchboard"));
    assert_eq!(t.form("client_secret"), Some("post-secret"));
    assert_eq!(t.form("resource"), Some("https://github-mcp.example/mcp"));
}

#[tokio::test]
async fn a_refused_token_is_refetched_and_a_failed_fetch_is_a_clear_retryable_error() {
    let idp = TokenEndpoint::start(Mode::Issue).await;
    let rec = Recorder::start().await;
    let gw = TestGateway::start(
        &[http_backend(
            "github",
            &rec.peer.url(),
            &client_credentials(&idp.url(), "the-client-secret", ""),
        )],
        "",
    )
    .await;
    let c = RawClient::connect(&gw.gateway().url()).await;
    assert_eq!(
        tool_text(&c.tool(1, "echo", json!({"message": "a"})).await),
        "Echo: a"
    );
    let first = format!("Bearer {}", idp.issued_tokens()[0]);

    // The backend revokes the token: that call fails, and the gateway forgets the token.
    rec.reject(&first).await;
    let r = c.tool(2, "echo", json!({"message": "b"})).await;
    assert_eq!(r["error"]["data"]["backend"], "github", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("401"),
        "{r}"
    );

    // The IdP refuses the next fetch: a JSON-RPC error that names the backend, not the secret.
    idp.set_mode(Mode::Refuse);
    let r = c.tool(3, "echo", json!({"message": "c"})).await;
    let message = r["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        message.contains("backend 'github'")
            && message.contains("cannot obtain the gateway's credentials")
            && message.contains("invalid_client"),
        "{message}"
    );
    assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
    let body = r.to_string();
    assert!(
        !body.contains("the-client-secret") && !body.contains("tok-"),
        "the error leaks nothing (the IdP echoed the secret in its description): {body}"
    );

    // The IdP is back: the next call fetches again and succeeds.
    idp.set_mode(Mode::Issue);
    assert_eq!(
        tool_text(&c.tool(4, "echo", json!({"message": "d"})).await),
        "Echo: d"
    );
    let issued = idp.issued_tokens();
    assert_eq!(issued.len(), 2, "{issued:?}");
    let second = format!("Bearer {}", issued[1]);
    assert_eq!(
        rec.authorizations().last().unwrap().as_deref(),
        Some(second.as_str())
    );
    gw.stop().await;
}

/// The claims of a JWT (not verified: the test only reads who issued it for what).
fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn with_a_real_idp_the_backend_gets_the_gateways_token_never_the_developers() {
    const RESOURCE: &str = "http://switchboard.test/mcp";
    let idp = idp::Idp::start().await;
    let rec = Recorder::start().await;
    let yaml = format!(
        "listeners:\n  - name: t\n    bind: '127.0.0.1:0'\n    auth:\n      mode: oauth\n      resource: {RESOURCE}\n      required_scopes: [mcp]\n      issuers:\n        - issuer: '{}'\n          jwks_url: '{}'\nbackends:\n{}",
        idp.issuer,
        idp.jwks_uri,
        http_backend(
            "github",
            &rec.peer.url(),
            &client_credentials(&idp.token_endpoint, "idp-client-secret", ""),
        ),
    );
    let gw = TestGateway::start_yaml(&yaml).await;
    // The developer's own valid token for the gateway.
    let developer = idp
        .token(
            idp::TokenRequest::subject("alice")
                .aud(RESOURCE)
                .scope("mcp"),
        )
        .await;
    let c = RawClient::connect_with_token(&gw.url, &developer).await;
    assert_eq!(
        tool_text(&c.tool(1, "echo", json!({"message": "hi"})).await),
        "Echo: hi"
    );
    end_session(&c).await;
    gw.stop().await;

    let auths = rec.authorizations();
    assert!(!auths.is_empty());
    let first = auths[0].clone().expect("the gateway's credential");
    for (method, headers) in rec.requests() {
        let all = serde_json::to_string(&headers).unwrap();
        assert!(
            !all.contains(&developer),
            "the developer's token reached the backend on {method}"
        );
        assert_eq!(
            headers["authorization"],
            first.as_str(),
            "{method}: one cached token"
        );
    }
    let token = first.strip_prefix("Bearer ").expect("a bearer token");
    let claims = jwt_claims(token);
    assert_eq!(claims["iss"], idp.issuer.as_str(), "{claims}");
    assert_eq!(claims["scope"], "repo read:org", "{claims}");
    assert_ne!(claims["sub"], "alice", "{claims}");
}

#[tokio::test]
async fn the_websocket_handshake_carries_the_gateways_token() {
    let idp = TokenEndpoint::start(Mode::Issue).await;
    let mut bridge = upstream_ws_bridge::start_ws_bridge().await;
    let mut cfg = upstream_peers::ws_backend(&bridge.url, &[("X-Tenant", "acme")]);
    cfg.auth = Some(BackendAuth::ClientCredentials(ClientCredentialsConfig {
        token_url: idp.url(),
        client_id: "switchboard".into(),
        client_secret: Secret::new("ws-secret"),
        scopes: vec![],
        audience: None,
        resource: None,
        auth_method: ClientAuthMethod::Basic,
    }));
    let pool = UpstreamPool::new(std::slice::from_ref(&cfg)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let up = Upstream::connect(&cfg, &pool, tx).await.unwrap();
    let headers = (&mut bridge.upgrade_headers).await.unwrap();
    assert_eq!(
        headers["authorization"].to_str().unwrap(),
        format!("Bearer {}", idp.issued_tokens()[0])
    );
    assert_eq!(headers["x-tenant"], "acme");
    upstream_peers::handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(
        upstream_peers::echo(&up, &mut rx, 2, "ws").await.0,
        "Echo: ws"
    );
    up.close().await;
}

#[tokio::test]
async fn a_token_endpoint_that_is_down_fails_the_connect_with_a_credentials_error() {
    let mut cfg = upstream_peers::http_backend("http://127.0.0.1:9/mcp", &[]);
    let idp = TokenEndpoint::start(Mode::Down).await;
    cfg.auth = Some(BackendAuth::ClientCredentials(ClientCredentialsConfig {
        token_url: idp.url(),
        client_id: "switchboard".into(),
        client_secret: Secret::new("down-secret"),
        scopes: vec![],
        audience: None,
        resource: None,
        auth_method: ClientAuthMethod::Basic,
    }));
    let pool = UpstreamPool::new(std::slice::from_ref(&cfg)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let up = Upstream::connect(&cfg, &pool, tx).await.unwrap();
    up.send(upstream_peers::request(1, "ping", json!({})))
        .await
        .unwrap();
    let failed = tokio::time::timeout(EVENT_WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let text = format!("{failed:?}");
    assert!(
        text.contains("Credentials") && text.contains("HTTP 503"),
        "{text}"
    );
    assert!(!text.contains("down-secret"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The canary: every output of a gateway run grepped for every backend credential.

/// Everything a process wrote on stdout and stderr, collected until it exits.
struct Captured {
    out: std::sync::Arc<std::sync::Mutex<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Captured {
    fn of(
        child: &mut tokio::process::Child,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::AsyncBufReadExt;
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for reader in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let (out, tx) = (out.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(reader).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    out.lock().unwrap().push_str(&l);
                    out.lock().unwrap().push('\n');
                    let _ = tx.send(l);
                }
            }));
        }
        (Captured { out, tasks }, lines)
    }

    async fn finish(self) -> String {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.out.lock().unwrap().clone()
    }
}

/// `switchboard check-config <file>` with `env`: its whole output.
async fn check_config(file: &Path, env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(switchboard_bin())
        .arg("check-config")
        .arg(file)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn no_backend_credential_appears_in_any_output() {
    let tag = format!("{:016x}", rand::random::<u64>());
    let static_header = format!("canary-static-{tag}");
    let stdio_env = format!("canary-env-{tag}");
    let client_secret = format!("canary-secret-{tag}");
    let failing_secret = format!("canary-failing-secret-{tag}");
    let access_token_prefix = format!("canary-token-{tag}-");
    let down_header = format!("canary-down-{tag}");
    let canaries = [
        &static_header,
        &stdio_env,
        &client_secret,
        &failing_secret,
        &access_token_prefix,
        &down_header,
    ];

    let idp = TokenEndpoint::start_with_prefix(Mode::Issue, &access_token_prefix).await;
    let failing_idp = TokenEndpoint::start(Mode::Refuse).await;
    let static_rec = Recorder::start().await;
    let oauth_rec = Recorder::start().await;
    let receiver = otlp::OtlpReceiver::start(otlp::Protocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("client_secret"),
        format!("{client_secret}\n"),
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let closed_port = upstream_peers::free_port();
    let backends = [
        http_backend(
            "statichdr",
            &static_rec.peer.url(),
            "    headers: {X-Api-Key: '${env:SB_TEST_STATIC}'}\n",
        ),
        http_backend(
            "oauth",
            &oauth_rec.peer.url(),
            // Relative to the config file.
            &client_credentials(&idp.url(), "${file:client_secret}", ""),
        ),
        http_backend(
            "badidp",
            &static_rec.peer.url(),
            &client_credentials(&failing_idp.url(), &failing_secret, ""),
        ),
        http_backend(
            "down",
            &format!("http://127.0.0.1:{closed_port}/mcp"),
            &format!(
                "    headers: {{Authorization: 'Bearer {down_header}'}}\n    timeouts: {{connect: 2s}}\n"
            ),
        ),
        format!(
            "{}    env: {{LAB_TOKEN: '${{env:SB_TEST_ENV}}'}}\n",
            fixture_stdio("lab", "lab")
        ),
    ];
    let yaml = format!(
        "listeners: [{{name: t, bind: '127.0.0.1:0', naming: prefix, auth: {{mode: none}}}}]\n\
         audit: {{path: '{}', durability: fsync}}\n\
         telemetry:\n  otlp: {{endpoint: '{}', protocol: grpc}}\n  traces: {{interval: 100ms}}\n  payloads: [{{backend: statichdr}}, {{backend: oauth}}, {{backend: lab}}]\n\
         backends:\n{}",
        audit.display(),
        receiver.endpoint(),
        backends.concat()
    );
    let config = dir.path().join("switchboard.yaml");
    std::fs::write(&config, &yaml).unwrap();

    let env = [
        ("SB_TEST_STATIC", static_header.as_str()),
        ("SB_TEST_ENV", stdio_env.as_str()),
    ];
    let mut child = tokio::process::Command::new(switchboard_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (captured, mut lines) = Captured::of(&mut child);
    let url = tokio::time::timeout(EVENT_WAIT, async {
        while let Some(l) = lines.recv().await {
            if let Some(u) = l.strip_prefix("listening on ") {
                return u.trim().to_string();
            }
        }
        panic!("the gateway exited before listening");
    })
    .await
    .expect("listening in time");
    // Ready once every backend was tried (the failing ones included).
    let base = url.trim_end_matches("/mcp").to_string();
    let mut ready = false;
    for _ in 0..400 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "gateway ready");

    // Real traffic: calls that work, a tool error, failing backends, lists, metrics.
    let mut seen = String::new();
    let c = RawClient::connect_with_token(&url, "client-token").await;
    let list = c.call(1, "tools/list", json!({})).await;
    seen.push_str(&list.to_string());
    for (id, tool, args) in [
        (2, "statichdr__echo", json!({"message": "hello"})),
        (3, "oauth__echo", json!({"message": "hello"})),
        (4, "oauth__fail", json!({})),
        (5, "lab__echo", json!({"text": "hello"})),
        (6, "down__echo", json!({"message": "x"})),
        (7, "badidp__echo", json!({"message": "x"})),
    ] {
        let r = c
            .post(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}}))
            .await;
        seen.push_str(&format!("{:?}\n{}\n", r.headers, r.body));
    }
    assert!(seen.contains("Echo: hello"), "{seen}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_server_operation_duration"),
        "{metrics}"
    );
    // The backends received their credentials: the test cannot pass vacuously.
    assert!(
        static_rec.requests().iter().any(
            |(_, h)| h.get("x-api-key").and_then(Value::as_str) == Some(static_header.as_str())
        ),
        "the static header reached its backend"
    );
    assert!(
        oauth_rec.authorizations().iter().any(|a| a
            .as_deref()
            .is_some_and(|a| a.starts_with(&format!("Bearer {access_token_prefix}")))),
        "the access token reached its backend"
    );
    assert_eq!(
        idp.requests()[0].basic_credentials().map(|(_, s)| s),
        Some(client_secret.clone()),
        "the client secret (from the file, newline trimmed) reached the token endpoint"
    );
    assert!(
        failing_idp.requests().iter().any(|r| r
            .basic_credentials()
            .is_some_and(|(_, s)| s == failing_secret)),
        "the failing IdP was asked"
    );
    assert!(
        !pids_with_env(&format!("LAB_TOKEN={stdio_env}")).is_empty(),
        "the stdio backend runs with its env credential"
    );
    end_session(&c).await;

    let check = check_config(&config, &env).await;
    assert!(check.contains(": OK"), "{check}");
    // A broken config: its errors name fields, never values.
    std::fs::write(
        dir.path().join("broken.yaml"),
        yaml.replace(
            "transport: streamable-http\n    url: 'http://127.0.0.1",
            "transport: streamable-http\n    url: 'ftp://127.0.0.1",
        )
        .replace("${file:client_secret}", "${file:missing}"),
    )
    .unwrap();
    let broken = check_config(&dir.path().join("broken.yaml"), &env).await;
    assert!(
        broken.contains("backends.oauth.auth.client_credentials.client_secret"),
        "{broken}"
    );

    // Stop the gateway (spans flushed, audit closed) and collect its whole output.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(EVENT_WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let logs = captured.finish().await;
    assert!(logs.contains("DEBUG"), "debug logs captured");
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(audit_text.contains("oauth"), "audit records written");
    let spans = receiver
        .wait_for_spans(
            |s| s.iter().any(|s| s.name.contains("tools/call")),
            EVENT_WAIT,
        )
        .await;
    let telemetry = format!("{spans:?}\n{:?}", receiver.metrics());

    for (what, text) in [
        ("gateway stdout/stderr", &logs),
        ("client responses", &seen),
        ("/metrics", &metrics),
        ("audit log", &audit_text),
        ("OTLP spans and metrics", &telemetry),
        ("check-config", &check),
        ("check-config errors", &broken),
    ] {
        for canary in canaries {
            assert!(
                !text.contains(canary.as_str()),
                "{what} leaks {canary}:\n{}",
                text.lines()
                    .filter(|l| l.contains(canary.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
