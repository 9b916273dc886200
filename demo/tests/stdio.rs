//! The fixtures over real stdio: spawn the binary, speak newline-delimited JSON-RPC.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn handshake_and_exit_on_stdin_close() {
    let mut s = StdioServer::spawn("notes");
    let init = s.initialize(json!({})).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "switchboard-demo-notes"
    );
    assert!(
        init["result"]["capabilities"]["resources"]["subscribe"]
            .as_bool()
            .unwrap()
    );

    s.send(&request(1, "ping", json!({}))).await;
    assert_eq!(s.until_response(1).await.0["result"], json!({}));

    s.close_stdin();
    let status = within("process exit", s.child.wait()).await.unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn older_protocol_versions_are_echoed_and_unknown_ones_negotiated() {
    let mut s = StdioServer::spawn("lab");
    let mut params = init_params(json!({}));
    params["protocolVersion"] = json!("2025-03-26");
    s.send(&request(1, "initialize", params.clone())).await;
    assert_eq!(
        s.until_response(1).await.0["result"]["protocolVersion"],
        "2025-03-26"
    );
    params["protocolVersion"] = json!("1999-01-01");
    s.send(&request(2, "initialize", params)).await;
    assert_eq!(
        s.until_response(2).await.0["result"]["protocolVersion"],
        "2025-11-25"
    );
}

#[tokio::test]
async fn lab_tools_list_is_paginated() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    for id in 1..10 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        s.send(&request(id, "tools/list", params)).await;
        let result = s.until_response(id).await.0["result"].clone();
        let tools = result["tools"].as_array().unwrap();
        assert!(tools.len() <= 5);
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    for expected in [
        "echo",
        "sleep",
        "exit",
        "progress",
        "ask_sampling",
        "ask_elicitation",
        "ask_roots",
        "log",
        "add_tool",
        "whoami",
        "big",
        "stats",
        "trace",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    s.send(&request(99, "tools/list", json!({ "cursor": "bogus" })))
        .await;
    assert_eq!(s.until_response(99).await.0["error"]["code"], -32602);
}

#[tokio::test]
async fn echo_big_and_errors() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&call(1, "echo", json!({ "text": "hello" }))).await;
    assert_eq!(first_text(&s.until_response(1).await.0["result"]), "hello");
    s.send(&call(2, "big", json!({ "bytes": 100_000 }))).await;
    assert_eq!(
        first_text(&s.until_response(2).await.0["result"]).len(),
        100_000
    );
    s.send(&call(3, "echo", json!({}))).await;
    assert_eq!(s.until_response(3).await.0["result"]["isError"], true);
    s.send(&call(4, "no_such_tool", json!({}))).await;
    assert_eq!(s.until_response(4).await.0["error"]["code"], -32602);
    s.send(&request(5, "prompts/list", json!({}))).await;
    assert_eq!(s.until_response(5).await.0["error"]["code"], -32601);
}

#[tokio::test]
async fn trace_reports_meta_and_no_http_over_stdio() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut msg = call(1, "trace", json!({}));
    msg["params"]["_meta"] = json!({ "traceparent": tp, "tracestate": "sb=1" });
    s.send(&msg).await;
    let seen: Value =
        serde_json::from_str(first_text(&s.until_response(1).await.0["result"])).unwrap();
    assert_eq!(
        seen,
        json!({
            "meta": { "traceparent": tp, "tracestate": "sb=1", "baggage": null },
            "http": null,
        })
    );
}

#[tokio::test]
async fn progress_notifications_precede_the_result() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    let mut msg = call(1, "progress", json!({ "steps": 3 }));
    msg["params"]["_meta"] = json!({ "progressToken": "tok-1" });
    s.send(&msg).await;
    let (resp, before) = s.until_response(1).await;
    assert_eq!(first_text(&resp["result"]), "done 3 steps");
    let progress: Vec<f64> = before
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .inspect(|m| assert_eq!(m["params"]["progressToken"], "tok-1"))
        .map(|m| m["params"]["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(progress, vec![1.0, 2.0, 3.0]);

    // Without a token: no progress notifications at all.
    s.send(&call(2, "progress", json!({ "steps": 2 }))).await;
    let (_, before) = s.until_response(2).await;
    assert!(before.is_empty(), "{before:?}");
}

#[tokio::test]
async fn sampling_elicitation_and_roots_round_trip() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({ "sampling": {}, "elicitation": {}, "roots": {} }))
        .await;

    s.send(&call(1, "ask_sampling", json!({ "prompt": "2+2?" })))
        .await;
    let req = s.recv().await.unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    assert_eq!(req["params"]["messages"][0]["content"]["text"], "2+2?");
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "four" }, "model": "m", "stopReason": "endTurn" } }))
        .await;
    assert_eq!(first_text(&s.until_response(1).await.0["result"]), "four");

    s.send(&call(2, "ask_elicitation", json!({ "message": "name?" })))
        .await;
    let req = s.recv().await.unwrap();
    assert_eq!(req["method"], "elicitation/create");
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "accept", "content": { "answer": "Ada" } } }))
        .await;
    let text: Value =
        serde_json::from_str(first_text(&s.until_response(2).await.0["result"])).unwrap();
    assert_eq!(
        text,
        json!({ "action": "accept", "content": { "answer": "Ada" } })
    );

    s.send(&call(3, "ask_roots", json!({}))).await;
    let req = s.recv().await.unwrap();
    assert_eq!(req["method"], "roots/list");
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "roots": [{ "uri": "file:///tmp" }] } })).await;
    let text: Value =
        serde_json::from_str(first_text(&s.until_response(3).await.0["result"])).unwrap();
    assert_eq!(text["roots"][0]["uri"], "file:///tmp");

    // A client error answer becomes a JSON-RPC error of the tool call.
    s.send(&call(4, "ask_sampling", json!({ "prompt": "x" })))
        .await;
    let req = s.recv().await.unwrap();
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "error": { "code": -1, "message": "user rejected" } })).await;
    assert_eq!(
        s.until_response(4).await.0["error"]["message"],
        "user rejected"
    );
}

#[tokio::test]
async fn server_requests_need_the_client_capability() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&call(1, "ask_roots", json!({}))).await;
    let (resp, before) = s.until_response(1).await;
    assert!(before.is_empty());
    assert_eq!(resp["result"]["isError"], true);
}

#[tokio::test]
async fn cancellation_stops_the_request() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&call(1, "sleep", json!({ "ms": 600_000 }))).await;
    s.send(&notification(
        "notifications/cancelled",
        json!({ "requestId": 1, "reason": "test" }),
    ))
    .await;
    // Messages are handled in order, so once the ping is answered the cancel has taken effect;
    // a cancelled request never answers.
    s.send(&request(2, "ping", json!({}))).await;
    let (_, before) = s.until_response(2).await;
    assert!(before.is_empty(), "{before:?}");
    s.send(&call(3, "sleep", json!({ "ms": 1 }))).await;
    let (resp, before) = s.until_response(3).await;
    assert_eq!(first_text(&resp["result"]), "slept");
    assert!(before.iter().all(|m| m["id"] != json!(1)), "{before:?}");
}

#[tokio::test]
async fn add_tool_announces_list_changed() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&call(1, "add_tool", json!({ "name": "fresh" })))
        .await;
    let (_, before) = s.until_response(1).await;
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/tools/list_changed"),
        "{before:?}"
    );
    s.send(&request(2, "tools/list", json!({ "cursor": "10" })))
        .await;
    let (resp, _) = s.until_response(2).await;
    assert!(
        resp["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "fresh")
    );
    s.send(&call(3, "fresh", json!({}))).await;
    assert_eq!(
        first_text(&s.until_response(3).await.0["result"]),
        "called fresh"
    );
}

#[tokio::test]
async fn log_honours_set_level() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&request(
        1,
        "logging/setLevel",
        json!({ "level": "warning" }),
    ))
    .await;
    s.until_response(1).await;
    s.send(&call(
        2,
        "log",
        json!({ "level": "info", "message": "quiet" }),
    ))
    .await;
    assert!(s.until_response(2).await.1.is_empty());
    s.send(&call(
        3,
        "log",
        json!({ "level": "error", "message": "loud" }),
    ))
    .await;
    let (_, before) = s.until_response(3).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["method"], "notifications/message");
    assert_eq!(before[0]["params"]["level"], "error");
    assert_eq!(before[0]["params"]["data"], "loud");
}

#[tokio::test]
async fn exit_tool_kills_the_process_mid_call() {
    let mut s = StdioServer::spawn("lab");
    s.initialize(json!({})).await;
    s.send(&call(1, "exit", json!({ "code": 3 }))).await;
    assert_eq!(s.recv().await, None, "no response expected");
    let status = within("process exit", s.child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(3));
}

#[tokio::test]
async fn notes_crud_resources_and_prompt() {
    let mut s = StdioServer::spawn("notes");
    s.initialize(json!({})).await;
    s.send(&call(
        1,
        "add_note",
        json!({ "title": "Groceries", "body": "milk, eggs" }),
    ))
    .await;
    let (resp, before) = s.until_response(1).await;
    let id = resp["result"]["structuredContent"]["id"].as_u64().unwrap();
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/resources/list_changed")
    );

    s.send(&call(2, "search", json!({ "query": "EGGS" }))).await;
    let (resp, _) = s.until_response(2).await;
    assert_eq!(resp["result"]["structuredContent"]["notes"][0]["id"], id);

    s.send(&request(
        3,
        "resources/read",
        json!({ "uri": format!("note://{id}") }),
    ))
    .await;
    let (resp, _) = s.until_response(3).await;
    assert!(
        resp["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("milk")
    );

    s.send(&request(
        4,
        "resources/subscribe",
        json!({ "uri": format!("note://{id}") }),
    ))
    .await;
    s.until_response(4).await;
    s.send(&call(5, "delete_note", json!({ "id": id }))).await;
    let (_, before) = s.until_response(5).await;
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/resources/updated"
                && m["params"]["uri"] == format!("note://{id}")),
        "{before:?}"
    );

    s.send(&request(
        6,
        "resources/read",
        json!({ "uri": format!("note://{id}") }),
    ))
    .await;
    assert_eq!(s.until_response(6).await.0["error"]["code"], -32002);

    s.send(&request(
        7,
        "prompts/get",
        json!({ "name": "summarize_notes" }),
    ))
    .await;
    let (resp, _) = s.until_response(7).await;
    assert!(
        resp["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Welcome")
    );
}

#[tokio::test]
async fn tickets_close_asks_for_confirmation_and_triage_reports_progress() {
    let mut s = StdioServer::spawn("tickets");
    s.initialize(json!({ "elicitation": {} })).await;
    s.send(&call(
        1,
        "create_ticket",
        json!({ "title": "Login broken", "priority": "high" }),
    ))
    .await;
    let id = s.until_response(1).await.0["result"]["structuredContent"]["id"]
        .as_u64()
        .unwrap();

    let mut triage = call(2, "triage", json!({ "id": id }));
    triage["params"]["_meta"] = json!({ "progressToken": 7 });
    s.send(&triage).await;
    let (resp, before) = s.until_response(2).await;
    assert_eq!(resp["result"]["structuredContent"]["owner"], "on-call");
    assert!(before.len() >= 2 && before.iter().all(|m| m["params"]["progressToken"] == 7));

    s.send(&call(3, "close_ticket", json!({ "id": id }))).await;
    let req = s.recv().await.unwrap();
    assert_eq!(req["method"], "elicitation/create");
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "decline" } }))
        .await;
    assert_eq!(
        s.until_response(3).await.0["result"]["structuredContent"]["closed"],
        false
    );

    s.send(&call(4, "close_ticket", json!({ "id": id }))).await;
    let req = s.recv().await.unwrap();
    s.send(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "accept", "content": { "confirm": true } } }))
        .await;
    assert_eq!(
        s.until_response(4).await.0["result"]["structuredContent"]["closed"],
        true
    );

    s.send(&request(5, "prompts/list", json!({}))).await;
    let (resp, _) = s.until_response(5).await;
    let names: Vec<&str> = resp["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search", "draft_ticket"]);
}
