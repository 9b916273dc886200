//! The gateway's load bounds as a client meets them: the per-session in-flight limit (429 and
//! -32003, other sessions unaffected), the session cap (503), and isolation of a session's
//! in-flight call from another session's bad input.

#[path = "common/gateway.rs"]
mod gateway;

use gateway::*;
use serde_json::json;

#[tokio::test]
async fn a_session_at_its_in_flight_limit_gets_429_while_another_session_is_served() {
    let gw = TestGateway::start(
        &[fixture_stdio("lab", "lab")],
        "sessions: {max_in_flight: 1}",
    )
    .await;
    let busy = RawClient::connect(&gw.url).await;
    let other = RawClient::connect(&gw.url).await;
    assert_eq!(text(&busy.tool(1, "echo", json!({"text": "a"})).await), "a");
    assert_eq!(
        text(&other.tool(1, "echo", json!({"text": "b"})).await),
        "b"
    );

    let slow = busy.start_sleep(2, "sleep", 3000).await;
    let r = busy
        .post(json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let err = r.json();
    assert_eq!(err["error"]["code"], -32003, "{err}");
    assert_eq!(
        err["id"], 3,
        "the refusal answers the refused request: {err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit 1")),
        "{err}"
    );

    // The limit is per session: the other one is served while `busy` still waits.
    assert_eq!(
        text(&other.tool(2, "echo", json!({"text": "served"})).await),
        "served"
    );
    assert_eq!(other.call(3, "ping", json!({})).await["result"], json!({}));
    assert!(!slow.is_finished(), "the slow call was still in flight");

    let done = slow.await.expect("call task");
    assert_eq!(text(&done), "slept", "{done}");
    // The slot is free again once the call is answered.
    assert_eq!(
        text(&busy.tool(4, "echo", json!({"text": "again"})).await),
        "again"
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_session_after_the_cap_gets_503_until_one_ends() {
    let gw = TestGateway::start(
        &[fixture_stdio("notes", "notes")],
        "sessions: {max_sessions: 2}",
    )
    .await;
    let a = RawClient::connect(&gw.url).await;
    let b = RawClient::connect(&gw.url).await;

    let third = RawClient::new(&gw.url);
    let r = third
        .post(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"third","version":"1"}}}))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], -32003, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("session limit (2)"))
    );
    assert!(
        r.headers.get("mcp-session-id").is_none(),
        "no session is handed out"
    );

    // The two admitted sessions are unaffected.
    assert_eq!(a.call(1, "ping", json!({})).await["result"], json!({}));
    assert_eq!(b.call(1, "ping", json!({})).await["result"], json!({}));

    // Ending one frees a place.
    assert_eq!(a.send(a.request(reqwest::Method::DELETE)).await.status, 200);
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(c.call(1, "ping", json!({})).await["result"], json!({}));
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_on_one_session_never_disturbs_another_sessions_in_flight_call() {
    let gw = TestGateway::start(&[fixture_stdio("lab", "lab")], "").await;
    let victim = RawClient::connect(&gw.url).await;
    let noisy = RawClient::connect(&gw.url).await;
    assert_eq!(
        text(&victim.tool(1, "echo", json!({"text": "v"})).await),
        "v"
    );

    let slow = victim.start_sleep(2, "sleep", 2000).await;

    let r = noisy.post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"#).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_i64()),
        (400, Some(-32700))
    );
    let r = noisy
        .post_raw(r#"[{"jsonrpc":"2.0","id":2,"method":"ping"}]"#)
        .await;
    assert_eq!(r.json()["error"]["code"], -32600, "{}", r.body);
    let r = noisy.post_raw("\u{0}\u{1}garbage\u{ff}").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = noisy
        .send(
            noisy
                .bare_post()
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 415);
    // Over the 4 MiB default body limit: refused from Content-Length, before reading.
    assert_eq!(noisy.post_oversized(3).await, 413);
    let r = noisy.tool(4, "sleep", json!({"ms": "not a number"})).await;
    assert!(
        r.get("error").is_some() || r["result"]["isError"] == true,
        "{r}"
    );

    assert!(
        !slow.is_finished(),
        "the victim's call was in flight throughout"
    );
    let done = slow.await.expect("call task");
    assert_eq!(text(&done), "slept", "{done}");
    assert_eq!(
        text(&victim.tool(3, "echo", json!({"text": "fine"})).await),
        "fine"
    );
    assert_eq!(
        text(&noisy.tool(5, "echo", json!({"text": "recovered"})).await),
        "recovered"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_initializes_never_admit_more_sessions_than_the_cap() {
    let gw = TestGateway::start(
        &[fixture_stdio("notes", "notes")],
        "sessions: {max_sessions: 2}",
    )
    .await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"rush","version":"1"}}});
    // A burst of clients, each on its own connection, all at once.
    let attempts = (0..16).map(|_| {
        let client = RawClient::new(&gw.url);
        let init = init.clone();
        tokio::spawn(async move { client.post(init).await.status })
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(admitted, 2, "statuses: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 503),
        "{statuses:?}"
    );
    assert_eq!(gw.gateway().registry().len(), 2);
    gw.stop().await;
}
