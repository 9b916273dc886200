//! The gateway's Streamable HTTP endpoint, driven by a raw HTTP client in front of real fixture
//! backends (our notes/tickets over stdio, lab over Streamable HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use gateway::*;
use serde_json::{Value, json};

async fn demo_gateway() -> (TestGateway, HttpFixture) {
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

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list["result"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn merged_listing_routes_each_backend_and_prefixes_only_collisions() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let tools = names(&c.call(1, "tools/list", json!({})).await, "tools", "name");
    for t in [
        "add_note",
        "create_ticket",
        "echo",
        "notes__search",
        "tickets__search",
    ] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }
    assert!(
        !tools.contains(&"search".to_string()),
        "a colliding bare name must not be listed"
    );
    let mut sorted = tools.clone();
    sorted.sort();
    assert_eq!(tools, sorted, "listing order is deterministic");

    // Each call reaches its own backend.
    let note = c
        .tool(
            2,
            "add_note",
            json!({"title": "gateway", "body": "one endpoint"}),
        )
        .await;
    assert!(text(&note).contains("gateway"), "{note}");
    let ticket = c
        .tool(
            3,
            "create_ticket",
            json!({"title": "gateway down", "priority": "high"}),
        )
        .await;
    assert!(text(&ticket).contains("gateway down"), "{ticket}");
    assert_eq!(text(&c.tool(4, "echo", json!({"text": "hi"})).await), "hi");
    // The two `search` tools are different tools.
    let ns = text(
        &c.tool(5, "notes__search", json!({"query": "gateway"}))
            .await,
    );
    let ts = text(
        &c.tool(6, "tickets__search", json!({"query": "gateway"}))
            .await,
    );
    assert!(
        ns.contains("one endpoint") || ns.contains("\"notes\""),
        "notes search: {ns}"
    );
    assert!(ts.contains("gateway down"), "tickets search: {ts}");
    assert_ne!(ns, ts);

    let prompts = names(
        &c.call(7, "prompts/list", json!({})).await,
        "prompts",
        "name",
    );
    assert!(
        prompts.contains(&"summarize_notes".to_string())
            && prompts.contains(&"draft_ticket".to_string()),
        "{prompts:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn prefix_naming_prefixes_everything_and_virtual_servers_show_one_backend_bare() {
    let gw = TestGateway::start(
        &[
            fixture_stdio("notes", "notes"),
            fixture_stdio("tickets", "tickets"),
        ],
        "naming: prefix",
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    let tools = names(&c.call(1, "tools/list", json!({})).await, "tools", "name");
    assert!(
        tools
            .iter()
            .all(|t| t.starts_with("notes__") || t.starts_with("tickets__")),
        "{tools:?}"
    );

    let v = RawClient::connect(&format!("{}/servers/tickets/mcp", gw.base)).await;
    let vt = names(&v.call(1, "tools/list", json!({})).await, "tools", "name");
    assert!(
        vt.contains(&"search".to_string()) && !vt.contains(&"add_note".to_string()),
        "{vt:?}"
    );
    v.tool(
        2,
        "create_ticket",
        json!({"title": "virtual", "priority": "low"}),
    )
    .await;
    assert!(text(&v.tool(3, "search", json!({"query": "virtual"})).await).contains("virtual"));
    // A session belongs to the endpoint that created it.
    let mut cross = c.clone();
    cross.url = v.url.clone();
    assert_eq!(
        cross
            .post(json!({"jsonrpc":"2.0","id":9,"method":"ping"}))
            .await
            .status,
        404
    );
    let unknown = RawClient::new(&format!("{}/servers/nope/mcp", gw.base));
    assert_eq!(
        unknown
            .post(json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .await
            .status,
        404
    );
    gw.stop().await;
}

#[tokio::test]
async fn session_lifecycle_headers_and_delete() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let sid = c.session.clone().unwrap();
    assert_eq!(sid.len(), 32, "128-bit hex session id");
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()));

    let mut none = c.clone();
    none.session = None;
    let r = none
        .post(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .await;
    assert_eq!(r.status, 400, "missing session header");
    assert!(r.body.contains("Mcp-Session-Id"));

    let mut bogus = c.clone();
    bogus.session = Some("0".repeat(32));
    assert_eq!(
        bogus
            .post(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
            .await
            .status,
        404
    );

    let r = none
        .send(
            none.request(reqwest::Method::POST)
                .header("mcp-session-id", &sid)
                .header("mcp-protocol-version", "1999-01-01")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        )
        .await;
    assert_eq!(
        r.status, 400,
        "unsupported MCP-Protocol-Version: {}",
        r.body
    );
    assert!(r.body.contains("1999-01-01"));

    assert_eq!(c.call(2, "ping", json!({})).await["result"], json!({}));
    let r = c.send(c.request(reqwest::Method::DELETE)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        c.post(json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
            .await
            .status,
        404,
        "ended session is gone"
    );
    // A new initialize works.
    let again = RawClient::connect(&gw.url).await;
    assert_ne!(again.session, c.session);
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_session_survives() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;

    let r = c.post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"#).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_i64()),
        (400, Some(-32700))
    );

    let r = c
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
        .await;
    assert_eq!(r.json()["error"]["code"], -32600);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch")
    );

    let r = c.post_raw("\"hello\"").await;
    assert_eq!(r.json()["error"]["code"], -32600);

    let r = c.call(2, "no/such/method", json!({})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");

    let r = c.tool(3, "nope_tool", json!({})).await;
    assert_eq!(r["error"]["code"], -32602);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope_tool")
    );

    assert_eq!(c.post_oversized(4).await, 413);

    let r = c
        .send(
            c.bare_post()
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = c
        .send(
            c.bare_post()
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .body(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#),
        )
        .await;
    assert_eq!(r.status, 406);

    let r = c
        .send(
            c.request(reqwest::Method::POST)
                .header("origin", "http://evil.example.com")
                .body(r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .send(
            c.bare_post()
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("host", "evil.example.com")
                .body(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#),
        )
        .await;
    assert_eq!(r.status, 403);

    // Nothing above harmed the session.
    assert_eq!(
        text(&c.tool(8, "echo", json!({"text": "still here"})).await),
        "still here"
    );
    gw.stop().await;
}

#[tokio::test]
async fn progress_streams_over_sse_with_priming_event_and_the_clients_own_token() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let r = c
        .post(json!({"jsonrpc":"2.0","id":"p1","method":"tools/call","params":{"name":"progress","arguments":{"steps":3},"_meta":{"progressToken":"my-token"}}}))
        .await;
    assert!(
        r.content_type().starts_with("text/event-stream"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.headers
            .get("x-accel-buffering")
            .and_then(|v| v.to_str().ok()),
        Some("no")
    );
    assert!(r.body.contains("retry:"), "retry field: {}", r.body);
    let ev = r.events();
    let (priming_id, priming) = &ev[0];
    assert!(
        priming_id.is_some() && priming.is_null(),
        "priming event first: {ev:?}"
    );
    let progress: Vec<&Value> = ev
        .iter()
        .map(|(_, v)| v)
        .filter(|v| v["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{ev:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "my-token"),
        "token mapped back: {progress:?}"
    );
    let ids: Vec<&String> = ev.iter().filter_map(|(id, _)| id.as_ref()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "event ids are unique");
    let last = &ev.last().unwrap().1;
    assert_eq!(last["id"], "p1", "the final response keeps the client's id");
    assert!(last["result"].is_object());
    gw.stop().await;
}

#[tokio::test]
async fn sampling_request_is_relayed_to_the_client_and_its_answer_back_to_the_backend() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    // Run the call in the background: it blocks until we answer the sampling request.
    let caller = c.clone();
    let call = tokio::spawn(async move {
        let resp = caller
            .request(reqwest::Method::POST)
            .body(json!({"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"ask_sampling","arguments":{"prompt":"2+2?"}}}).to_string())
            .send()
            .await
            .unwrap();
        let mut resp = resp;
        let mut buf = String::new();
        let mut answered = false;
        while let Some(chunk) = resp.chunk().await.unwrap() {
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            if !answered
                && let Some((_, req)) = parse_sse(&buf)
                    .into_iter()
                    .find(|(_, v)| v["method"] == "sampling/createMessage")
            {
                answered = true;
                let prompt = req["params"]["messages"][0]["content"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{"role":"assistant","content":{"type":"text","text":format!("sampled: {prompt}")},"model":"raw-model"}});
                assert_eq!(caller.post(answer).await.status, 202);
            }
        }
        (answered, buf)
    });
    let (answered, body) = tokio::time::timeout(std::time::Duration::from_secs(20), call)
        .await
        .unwrap()
        .unwrap();
    assert!(answered, "no sampling request reached the client: {body}");
    let events = parse_sse(&body);
    let sreq = events
        .iter()
        .find(|(_, v)| v["method"] == "sampling/createMessage")
        .unwrap();
    assert!(sreq.1["id"].is_number(), "gateway-assigned id");
    let last = &events.last().unwrap().1;
    assert_eq!(last["id"], 77);
    assert!(
        text(last).contains("sampled: 2+2?"),
        "backend got the client's answer: {last}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_backend_killed_mid_call_fails_that_call_naming_it_and_the_session_recovers() {
    let gw = TestGateway::start(
        &[fixture_stdio("lab", "lab"), fixture_stdio("notes", "notes")],
        "",
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    // Warm up: the lab child is running.
    assert_eq!(text(&c.tool(1, "echo", json!({"text": "a"})).await), "a");
    // A slow call in flight when the process dies.
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.tool(2, "sleep", json!({"ms": 30000})).await })
    };
    let crash = c.tool(3, "exit", json!({"code": 3})).await;
    assert_eq!(crash["error"]["code"], -32001, "{crash}");
    assert!(
        crash["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'lab'"),
        "names the backend: {crash}"
    );
    let slow = tokio::time::timeout(std::time::Duration::from_secs(10), slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        slow["error"]["code"], -32001,
        "the in-flight call fails too: {slow}"
    );
    // Other backends were never affected, and lab comes back (restarted with backoff).
    assert!(
        text(
            &c.tool(4, "add_note", json!({"title": "t", "body": "b"}))
                .await
        )
        .contains('t')
    );
    let mut ok = None;
    for i in 0..50 {
        let r = c.tool(10 + i, "echo", json!({"text": "back"})).await;
        if r.get("result").is_some() {
            ok = Some(r);
            break;
        }
    }
    assert_eq!(text(&ok.expect("lab restarted within 50 attempts")), "back");
    gw.stop().await;
}

#[tokio::test]
async fn get_stream_delivers_list_changed_and_resumes_with_last_event_id() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let mut get = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let first = String::from_utf8(get.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let priming = parse_sse(&first);
    let priming_id = priming[0].0.clone().expect("priming event has an id");
    drop(get); // disconnect, as a flaky network would

    // A list change while nobody listens.
    c.tool(1, "add_tool", json!({"name": "fresh_tool"})).await;
    // Resume: the missed notification is replayed.
    let mut resumed = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("last-event-id", &priming_id)
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !buf.contains("notifications/tools/list_changed") {
        let chunk = tokio::time::timeout_at(deadline, resumed.chunk())
            .await
            .expect("list_changed within 15s")
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let tools = names(&c.call(2, "tools/list", json!({})).await, "tools", "name");
    assert!(tools.contains(&"fresh_tool".to_string()), "{tools:?}");
    let r = c
        .send(
            c.request(reqwest::Method::GET)
                .header("accept", "text/event-stream")
                .header("last-event-id", "garbage"),
        )
        .await;
    assert_eq!(r.status, 400);
    gw.stop().await;
}

#[tokio::test]
async fn client_cancellation_reaches_the_backend_and_the_session_carries_on() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let stats = |v: &Value| -> u64 {
        serde_json::from_str::<Value>(&text(v)).unwrap()["cancelled"]
            .as_u64()
            .unwrap()
    };
    let before = stats(&c.tool(1, "stats", json!({})).await);
    // With a progress token, lab's sleep announces itself: we cancel only once it really runs.
    let mut resp = c
        .request(reqwest::Method::POST)
        .body(json!({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":60000},"_meta":{"progressToken":1}}}).to_string())
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    while !buf.contains("notifications/progress") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
            .await
            .expect("sleep started")
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let r = c.post(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"user pressed stop"}})).await;
    assert_eq!(r.status, 202);
    // The gateway ends that request's stream without an answer (the spec's rule for cancelled requests).
    let rest = tokio::time::timeout(std::time::Duration::from_secs(10), resp.text())
        .await
        .expect("stream ends")
        .unwrap_or_default();
    assert!(
        !rest.contains("\"id\":\"slow\""),
        "no response after cancellation: {rest}"
    );
    // The backend saw the cancellation (its counter moved), and the session still works.
    let mut seen = before;
    for i in 0..100 {
        seen = stats(&c.tool(10 + i, "stats", json!({})).await);
        if seen > before {
            break;
        }
    }
    assert_eq!(
        seen,
        before + 1,
        "lab aborted exactly the cancelled request"
    );
    gw.stop().await;
}

#[tokio::test]
async fn health_and_readiness_probes_answer_without_leaking_anything() {
    // A backend that never completes its handshake keeps the gateway not-ready...
    let silent = "  - name: silent\n    transport: stdio\n    command: sleep\n    args: ['3600']\n    timeouts: {connect: 60s}\n".to_string();
    let yaml = format!(
        "listeners: [{{name: t, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\nbackends:\n{silent}"
    );
    let gw = switchboard::gateway::Gateway::start(
        switchboard::config::Config::from_yaml(&yaml).unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", gw.local_addrs()[0]);
    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(
        !body.contains("silent") && !body.contains("sleep"),
        "no backend names or commands: {body}"
    );
    gw.shutdown().await;
    // ...and a gateway whose backends answered is ready.
    let (gw, _lab) = demo_gateway().await;
    let ready = http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        http.get(format!("{}/nope", gw.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_call_stalls_neither_other_backends_nor_other_sessions() {
    let (gw, _lab) = demo_gateway().await;
    let c = RawClient::connect(&gw.url).await;
    let other = RawClient::connect(&gw.url).await;
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.tool(1, "sleep", json!({"ms": 3000})).await })
    };
    // While the slow call is in flight: the same session reaches another backend, and another
    // session reaches the same backend.
    let note = c
        .tool(2, "add_note", json!({"title": "quick", "body": "b"}))
        .await;
    assert!(text(&note).contains("quick"));
    assert_eq!(
        text(&other.tool(3, "echo", json!({"text": "fast"})).await),
        "fast"
    );
    assert!(
        !slow.is_finished(),
        "both finished while the slow call was still running"
    );
    assert_eq!(text(&slow.await.unwrap()), "slept");
    gw.stop().await;
}
