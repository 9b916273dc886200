//! Authentication at every entry point, with service-account API keys: the 401/400 challenges and
//! the protected resource metadata a client discovers, sessions bound to their creator, expired
//! and revoked keys, and the 2026 stateless path (including another principal's requestState).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use gateway::{HttpFixture, RawClient, Reply, TestGateway, fixture_stdio, http_backend};
use serde_json::{Value, json};
use switchboard::config::api_key_hash;

const ALICE: &str = "sbk_alice-key-for-tests-0000000000000000000";
const BOB: &str = "sbk_bob-key-for-tests-00000000000000000000000";
const EXPIRED: &str = "sbk_expired-key-for-tests-000000000000000000";

async fn gateway_with_keys(extra_backends: &[String]) -> TestGateway {
    let yaml = format!(
        "listeners:\n  - name: t\n    bind: '127.0.0.1:0'\n    auth:\n      mode: oauth\n      required_scopes: [mcp]\n      api_keys:\n        - {{name: alice, hash: '{}', roles: [dev]}}\n        - {{name: bob, hash: '{}', roles: [dev]}}\n        - {{name: old, hash: '{}', expires: '2020-01-01T00:00:00Z'}}\nbackends:\n{}{}",
        api_key_hash(ALICE),
        api_key_hash(BOB),
        api_key_hash(EXPIRED),
        fixture_stdio("notes", "notes"),
        extra_backends.concat(),
    );
    TestGateway::start_yaml(&yaml).await
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"auth-test","version":"1"}}})
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

fn www_authenticate(r: &Reply) -> String {
    r.headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {} {}", r.status, r.body))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn no_credential_gets_a_challenge_naming_the_metadata_the_client_discovers() {
    let gw = gateway_with_keys(&[]).await;
    let anon = RawClient::new(&gw.url);
    let r = anon.post(initialize()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let challenge = www_authenticate(&r);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", gw.base);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp\""),
    );
    assert_eq!(r.json()["error"]["code"], -32007, "{}", r.body);

    // The metadata the challenge points at (and its root form) names the resource and scopes.
    for url in [
        metadata_url.clone(),
        format!("{}/.well-known/oauth-protected-resource", gw.base),
    ] {
        let m = get_json(&url).await;
        assert_eq!(m["resource"], gw.url, "{m}");
        assert_eq!(m["scopes_supported"], json!(["mcp"]), "{m}");
        assert_eq!(m["bearer_methods_supported"], json!(["header"]), "{m}");
    }
    // A virtual server is its own resource, with its own metadata; an unknown one has none.
    let v = get_json(&format!(
        "{}/.well-known/oauth-protected-resource/servers/notes/mcp",
        gw.base
    ))
    .await;
    assert_eq!(v["resource"], format!("{}/servers/notes/mcp", gw.base));
    let r = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/servers/nope/mcp",
        gw.base
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = RawClient::new(&format!("{}/servers/notes/mcp", gw.base))
        .post(initialize())
        .await;
    assert_eq!(r.status, 401);
    assert!(
        www_authenticate(&r).contains("/.well-known/oauth-protected-resource/servers/notes/mcp"),
        "{r:?}"
    );

    // Health probes need no credential and say nothing about it.
    let h = reqwest::get(format!("{}/healthz", gw.base)).await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.text().await.unwrap(), "ok\n");
    gw.stop().await;
}

#[tokio::test]
async fn malformed_revoked_and_expired_credentials_are_refused_with_their_reason() {
    let gw = gateway_with_keys(&[]).await;
    let send = |auth: &'static str| {
        let url = gw.url.clone();
        async move {
            let c = RawClient::new(&url);
            c.send(
                c.request(reqwest::Method::POST)
                    .header("authorization", auth)
                    .body(initialize().to_string()),
            )
            .await
        }
    };
    // A header that is not one bearer credential: 400 invalid_request.
    for bad in ["Bearer", "Bearer two tokens", "Bearer sbk_x!y"] {
        let r = send(bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert!(www_authenticate(&r).contains("error=\"invalid_request\""));
    }
    // Another scheme is no bearer credential: a plain 401 challenge.
    let r = send("Basic YWxpY2U6cGFzcw==").await;
    assert_eq!(r.status, 401);
    assert!(!www_authenticate(&r).contains("error="), "{r:?}");
    // Revoked (not configured) and expired keys: 401 invalid_token, saying which.
    let r = send("Bearer sbk_not-a-key-anyone-was-given-0000000000").await;
    assert_eq!(r.status, 401);
    assert!(www_authenticate(&r).contains("error=\"invalid_token\""));
    assert!(r.body.contains("unknown or revoked API key"), "{}", r.body);
    let r = RawClient::with_token(&gw.url, EXPIRED)
        .post(initialize())
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("has expired"), "{}", r.body);
    // Metrics name every backend and tool: an authenticating listener does not serve them.
    let r = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("admin listener"));
    gw.stop().await;
}

#[tokio::test]
async fn a_session_answers_only_the_principal_that_created_it() {
    let gw = gateway_with_keys(&[]).await;
    let alice = RawClient::connect_with_token(&gw.url, ALICE).await;
    let listed = alice.call(1, "tools/list", json!({})).await;
    assert!(listed["result"]["tools"].as_array().unwrap().len() > 1);

    // Bob presents Alice's session id: 404 on POST, GET and DELETE, exactly as if unknown.
    let mut bob = RawClient::with_token(&gw.url, BOB);
    bob.session = alice.session.clone();
    let r = bob
        .post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let unknown = {
        let mut c = RawClient::with_token(&gw.url, BOB);
        c.session = Some("0123456789abcdef0123456789abcdef".into());
        c.post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
            .await
    };
    assert_eq!(
        r.body, unknown.body,
        "a foreign session looks like an unknown one"
    );
    let get = bob
        .request(reqwest::Method::GET)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let del = bob.send(bob.request(reqwest::Method::DELETE)).await;
    assert_eq!(del.status, 404);
    // Without any credential, the session id gets a 401, not the session.
    let mut anon = RawClient::new(&gw.url);
    anon.session = alice.session.clone();
    let r = anon
        .post(json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}))
        .await;
    assert_eq!(r.status, 401);

    // Alice's session is untouched by all of it.
    let again = alice.call(4, "tools/list", json!({})).await;
    assert_eq!(again["result"], listed["result"]);
    gw.stop().await;
}

#[tokio::test]
async fn the_websocket_upgrade_authenticates() {
    let gw = gateway_with_keys(&[]).await;
    let ws_url = format!("{}/ws", gw.base.replace("http://", "ws://"));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mcp".parse().unwrap());
    match tokio_tungstenite::connect_async(req.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 401);
            assert!(r.headers().contains_key("www-authenticate"));
        }
        other => panic!("expected a 401 refusal, got {:?}", other.map(|_| ())),
    }
    req.headers_mut()
        .insert("authorization", format!("Bearer {ALICE}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    use futures::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        initialize().to_string(),
    ))
    .await
    .unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    let v: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(v["result"]["serverInfo"]["name"], "switchboard", "{v}");
    gw.stop().await;
}

const V2026: &str = "2026-07-28";

/// A well-formed stateless (2026-07-28) request presenting `token`.
async fn modern(token: Option<&str>, url: &str, id: i64, method: &str, mut params: Value) -> Reply {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "auth-2026", "version": "1"},
    });
    let c = match token {
        Some(t) => RawClient::with_token(url, t),
        None => RawClient::new(url),
    };
    let mut b = c
        .bare_post()
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method)
        .body(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string());
    if let Some(n) = params.get("name").and_then(Value::as_str) {
        b = b.header("mcp-name", n);
    }
    c.send(b).await
}

#[tokio::test]
async fn each_stateless_request_authenticates_and_request_state_is_its_principals_own() {
    let lab = HttpFixture::start("lab").await;
    let gw = gateway_with_keys(&[http_backend("lab", &lab.url)]).await;
    let r = modern(None, &gw.url, 1, "tools/list", json!({})).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = modern(Some(ALICE), &gw.url, 1, "tools/list", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.final_message()["result"]["tools"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );

    // Alice's call waits for her answer; Bob replaying her requestState gets nothing of it.
    let args = json!({"name": "ask_elicitation", "arguments": {"message": "color?"}});
    let first = modern(Some(ALICE), &gw.url, 2, "tools/call", args.clone()).await;
    let result = first.final_message()["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{}", first.body);
    let key = result["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let mut retry = args.clone();
    retry["requestState"] = result["requestState"].clone();
    retry["inputResponses"] = json!({ &key: {"action": "accept", "content": {"answer": "teal"}} });
    let stolen = modern(Some(BOB), &gw.url, 3, "tools/call", retry.clone()).await;
    assert_eq!(
        stolen.final_message()["error"]["code"],
        -32602,
        "{}",
        stolen.body
    );
    // Alice's own retry still completes: Bob's attempt consumed nothing.
    let done = modern(Some(ALICE), &gw.url, 4, "tools/call", retry).await;
    let m = done.final_message();
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    assert!(m.to_string().contains("teal"), "{m}");
    gw.stop().await;
}
