//! 2026-07-28 (stateless) clients against the gateway: the official Python SDK in its 2026 mode,
//! and raw HTTP for the validation ladder (-32602 / -32020 / -32022), MRTR and 2025 coexistence.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use serde_json::{Value, json};

const V: &str = "2026-07-28";

async fn fleet() -> (TestGateway, HttpFixture) {
    let lab = HttpFixture::start("lab").await;
    let gw = TestGateway::start(
        &[
            fixture_stdio("notes", "notes"),
            fixture_stdio("tickets", "tickets"),
            http_backend("lab", &lab.url),
        ],
        "",
    )
    .await;
    (gw, lab)
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-2026", "version": "1"},
    })
}

/// A stateless POST; `headers` are (name, value) pairs set on top of Accept/Content-Type.
async fn post(c: &RawClient, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut b = c
        .bare_post()
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    c.send(b).await
}

/// A well-formed 2026 request: `_meta` envelope plus the mirrored headers.
async fn modern(c: &RawClient, id: i64, method: &str, mut params: Value) -> Reply {
    params["_meta"] = meta();
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut h = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    if let Some(n) = &name {
        h.push(("mcp-name", n));
    }
    post(
        c,
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        &h,
    )
    .await
}

#[tokio::test]
async fn python_sdk_in_2026_mode_lists_calls_two_backends_and_answers_elicitation() {
    let (gw, _lab) = fleet().await;
    let url = gw.url.clone();

    let list = peers::py_client(&url, &["--era", "2026", "list"]).await;
    assert_eq!(list["protocolVersion"], V, "{list}");
    let tools = strings(&list["tools"]);
    for t in ["add_note", "create_ticket", "echo", "ask_elicitation"] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }

    // `auto` probes server/discover and stays modern.
    let auto = peers::py_client(&url, &["--era", "auto", "list"]).await;
    assert_eq!(auto["protocolVersion"], V, "{auto}");
    assert_eq!(auto["serverInfo"]["name"], "switchboard", "{auto}");
    assert!(
        strings(&auto["tools"]).contains(&"echo".to_string()),
        "{auto}"
    );

    let echo = peers::py_client(
        &url,
        &["--era", "2026", "call", "echo", r#"{"text":"hi 2026"}"#],
    )
    .await;
    assert_eq!(result_text(&echo), "hi 2026", "{echo}");
    let note = peers::py_client(
        &url,
        &[
            "--era",
            "2026",
            "call",
            "add_note",
            r#"{"title":"stateless","body":"from a 2026 client"}"#,
        ],
    )
    .await;
    assert!(result_text(&note).contains("stateless"), "{note}");

    // A 2025 backend elicits during a 2026 call: MRTR round trip through the SDK's callback.
    let ask = peers::py_client(
        &url,
        &[
            "--era",
            "2026",
            "--elicit",
            r#"{"answer":"forty-two"}"#,
            "call",
            "ask_elicitation",
            r#"{"message":"what is the answer?"}"#,
        ],
    )
    .await;
    assert!(result_text(&ask).contains("forty-two"), "{ask}");
    let asked = &ask["serverRequests"][0];
    assert_eq!(asked["method"], "elicitation/create", "{ask}");
    assert_eq!(asked["params"]["message"], "what is the answer?");

    // And a sampling request the same way.
    let s = peers::py_client(
        &url,
        &[
            "--era",
            "2026",
            "call",
            "ask_sampling",
            r#"{"prompt":"2+2?"}"#,
        ],
    )
    .await;
    assert!(result_text(&s).contains("sampled: 2+2?"), "{s}");
    gw.stop().await;
}

#[tokio::test]
async fn python_sdk_in_2026_mode_hears_list_changes_on_subscriptions_listen() {
    let (gw, _lab) = fleet().await;
    let w = peers::py_client(
        &gw.url,
        &[
            "--era",
            "2026",
            "watch-list-changed",
            "add_tool",
            r#"{"name":"fresh_2026"}"#,
        ],
    )
    .await;
    assert_eq!(w["listChanged"], true, "{w}");
    assert!(
        strings(&w["tools"]).contains(&"fresh_2026".to_string()),
        "{w}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn listen_acknowledges_the_honoured_filter_first() {
    let (gw, _lab) = fleet().await;
    let c = RawClient::new(&gw.url);
    let mut params =
        json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["x://y"]}});
    params["_meta"] = meta();
    let mut resp = c
        .bare_post()
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "subscriptions/listen")
        .body(json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": params}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    while parse_sse(&buf).is_empty() {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
            .await
            .expect("acknowledgement within 10 s")
            .unwrap()
            .expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let (_, ack) = parse_sse(&buf).remove(0);
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    drop(resp);
    gw.stop().await;
}

#[tokio::test]
async fn discover_and_lists_carry_the_2026_result_envelope() {
    let (gw, _lab) = fleet().await;
    let c = RawClient::new(&gw.url);

    let d = modern(&c, 1, "server/discover", json!({})).await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert!(d.headers.get("mcp-session-id").is_none());
    let r = &d.json()["result"];
    assert_eq!(r["resultType"], "complete");
    let versions = strings(&r["supportedVersions"]);
    for v in [V, "2025-11-25", "2025-06-18", "2025-03-26"] {
        assert!(versions.contains(&v.to_string()), "{v} not in {versions:?}");
    }
    assert!(r["capabilities"]["tools"].is_object(), "{r}");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "switchboard"
    );
    assert!(r["ttlMs"].is_u64() && r["cacheScope"] == "private", "{r}");

    let l = modern(&c, 2, "tools/list", json!({})).await;
    assert_eq!(l.status, 200, "{}", l.body);
    let r = &l.json()["result"];
    assert_eq!(r["resultType"], "complete");
    assert!(r["ttlMs"].is_u64(), "{r}");
    assert_eq!(r["cacheScope"], "private");
    assert!(r["tools"].as_array().unwrap().len() > 5);

    // The per-backend endpoint serves its own view statelessly too.
    let v = RawClient::new(&format!("{}/servers/lab/mcp", gw.base));
    let call = modern(
        &v,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "virtual"}}),
    )
    .await;
    let m = call.final_message();
    assert_eq!(result_text(&m), "virtual", "{m}");
    assert_eq!(m["result"]["resultType"], "complete");
    gw.stop().await;
}

#[tokio::test]
async fn the_validation_ladder_answers_with_the_documented_errors() {
    let (gw, _lab) = fleet().await;
    let c = RawClient::new(&gw.url);
    let call_body = |name: &str, m: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": {"text": "x"}, "_meta": m}})
    };
    let err = |r: &Reply| r.json()["error"].clone();

    // Headers that disagree with the body, or are missing: refused before anything is routed.
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let mismatches: [(&str, &str, Headers); 3] = [
        (
            "Mcp-Name names another tool",
            "add_note",
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
        ),
        (
            "Mcp-Method disagrees",
            "echo",
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
        ),
        (
            "required headers missing",
            "echo",
            &[("mcp-protocol-version", V)],
        ),
    ];
    for (case, tool, headers) in mismatches {
        let r = post(&c, call_body(tool, meta()), headers).await;
        assert_eq!(
            (r.status, err(&r)["code"].clone()),
            (400, json!(-32020)),
            "{case}: {}",
            r.body
        );
    }
    // Base64-sentinel Mcp-Name is decoded before comparing ("echo").
    let r = post(
        &c,
        call_body("echo", meta()),
        &[
            ("mcp-protocol-version", V),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ],
    )
    .await;
    assert_eq!(result_text(&r.final_message()), "x", "{}", r.body);

    // Unsupported version: -32022 listing what is served.
    let mut old = meta();
    old["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let r = post(
        &c,
        call_body("echo", old),
        &[
            ("mcp-protocol-version", "1900-01-01"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let e = err(&r);
    assert_eq!(e["code"], -32022);
    assert_eq!(e["data"]["requested"], "1900-01-01");
    assert!(
        strings(&e["data"]["supported"]).contains(&V.to_string()),
        "{e}"
    );

    // No client-capabilities block: -32602, 400.
    let mut bare = meta();
    bare.as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let r = post(
        &c,
        call_body("echo", bare),
        &[
            ("mcp-protocol-version", V),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, err(&r)["code"].clone()),
        (400, json!(-32602)),
        "{}",
        r.body
    );
    assert!(
        err(&r)["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );

    // 2026 has no GET stream and no session to DELETE.
    for m in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = c
            .send(
                c.http
                    .request(m.clone(), &c.url)
                    .header("accept", "text/event-stream")
                    .header("mcp-protocol-version", V),
            )
            .await;
        assert_eq!(r.status, 405, "{m}: {}", r.body);
        assert_eq!(r.headers["allow"], "POST");
    }

    // A method 2026 does not have: 404 + -32601.
    let r = modern(&c, 8, "ping", json!({})).await;
    assert_eq!(
        (r.status, err(&r)["code"].clone()),
        (404, json!(-32601)),
        "{}",
        r.body
    );
    // Without the 2026 envelope and without a session it is still the 2025 rule.
    let r = post(
        &c,
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Mcp-Session-Id"), "{}", r.body);
    gw.stop().await;
}

#[tokio::test]
async fn mrtr_retry_is_routed_to_the_pending_backend_request_once() {
    let (gw, _lab) = fleet().await;
    let c = RawClient::new(&gw.url);
    let args = json!({"name": "ask_elicitation", "arguments": {"message": "color?"}});

    let first = modern(&c, 1, "tools/call", args.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let r = first.final_message()["result"].clone();
    assert_eq!(r["resultType"], "input_required", "{r}");
    let (key, ask) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["message"], "color?");
    let state = r["requestState"].as_str().unwrap().to_string();
    assert!(
        state.len() >= 32,
        "requestState must be unguessable: {state}"
    );

    // A state the gateway never issued is refused (not a hang).
    let mut forged = args.clone();
    forged["requestState"] = json!("00".repeat(16));
    forged["inputResponses"] = json!({ &key: {"action": "accept", "content": {"answer": "x"}} });
    let r = modern(&c, 2, "tools/call", forged).await;
    let e = r.final_message()["error"].clone();
    assert_eq!(e["code"], -32602, "{}", r.body);

    // The real retry (new id) completes the original backend call.
    let mut retry = args.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ &key: {"action": "accept", "content": {"answer": "teal"}} });
    let r = modern(&c, 3, "tools/call", retry.clone()).await;
    let m = r.final_message();
    assert_eq!(m["id"], 3, "{m}");
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    assert!(result_text(&m).contains("teal"), "{m}");

    // requestState is single use.
    let r = modern(&c, 4, "tools/call", retry).await;
    assert_eq!(r.final_message()["error"]["code"], -32602, "{}", r.body);

    // A client that did not declare elicitation is not asked: the backend gets an error.
    let mut params = args.clone();
    params["_meta"] = meta();
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
    let r = post(
        &c,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}),
        &[
            ("mcp-protocol-version", V),
            ("mcp-method", "tools/call"),
            ("mcp-name", "ask_elicitation"),
        ],
    )
    .await;
    let m = r.final_message();
    assert_ne!(m["result"]["resultType"], "input_required", "{m}");
    gw.stop().await;
}

#[tokio::test]
async fn sessionful_clients_are_unaffected_next_to_stateless_ones() {
    let (gw, _lab) = fleet().await;
    let old = RawClient::connect(&gw.url).await;
    let c = RawClient::new(&gw.url);
    let l = modern(&c, 1, "tools/list", json!({})).await;
    assert_eq!(l.status, 200);

    let list = old.call(2, "tools/list", json!({})).await;
    assert!(list["result"].get("resultType").is_none(), "{list}");
    assert!(list["result"].get("ttlMs").is_none(), "{list}");
    assert_eq!(
        text(&old.tool(3, "echo", json!({"text": "2025"})).await),
        "2025"
    );
    // A 2025 client using the era's own `initialize` still negotiates a 2025 revision.
    let init = RawClient::new(&gw.url)
        .post(
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": V, "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"}}}),
        )
        .await;
    assert_eq!(init.json()["result"]["protocolVersion"], "2025-11-25");
    // The Python SDK in legacy mode, as before.
    let legacy = peers::py_client(&gw.url, &["call", "echo", r#"{"text":"legacy"}"#]).await;
    assert_eq!(result_text(&legacy), "legacy", "{legacy}");
    gw.stop().await;
}

#[tokio::test]
async fn principals_get_their_own_sessions_and_cannot_redeem_each_others_request_state() {
    use std::sync::Arc;
    use switchboard::config::NamingPolicy;
    use switchboard::policy::Principal;
    use switchboard::protocol::RequestId;
    use switchboard::session::{PARK_TTL, Parked, Scope};

    let (gw, _lab) = fleet().await;
    let reg = gw.gateway().registry().clone();
    let who = |s: &str| {
        Arc::new(Principal {
            subject: Some(s.into()),
            ..Default::default()
        })
    };
    let (alice, bob) = (who("alice"), who("bob"));
    let scope = Scope::Merged(NamingPolicy::OnCollision);
    let a = reg.stateless_session(&alice, scope).await.unwrap();
    let again = reg.stateless_session(&alice, scope).await.unwrap();
    let b = reg.stateless_session(&bob, scope).await.unwrap();
    assert_eq!(a.session.id, again.session.id, "one session per principal");
    assert_ne!(
        a.session.id, b.session.id,
        "principals never share backend sessions"
    );

    // A gateway-held session is not reachable as a 2025 Mcp-Session-Id.
    let mut sneaky = RawClient::new(&gw.url);
    sneaky.session = Some(a.session.id.to_string());
    let r = sneaky
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let parked = Parked {
        rx,
        internal_id: RequestId::Str("stateless-test".into()),
        method: "tools/call".into(),
        target: Some("echo".into()),
        waiting: vec![],
        input_requests: Default::default(),
        expires: tokio::time::Instant::now() + PARK_TTL,
    };
    let state = a.park(parked).unwrap();
    assert!(
        b.unpark(&state, "tools/call", Some("echo")).is_err(),
        "bob redeemed alice's state"
    );
    assert!(a.unpark(&state, "tools/call", Some("echo")).is_ok());
    gw.stop().await;
}
