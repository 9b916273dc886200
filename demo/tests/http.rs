//! The fixtures over real Streamable HTTP: spawn the binary with `--http 127.0.0.1:0`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn handshake_sessions_and_status_codes() {
    let server = HttpServer::spawn("notes", &[]).await;
    let mut c = HttpClient::new(&server.url);
    let init = c.initialize(json!({})).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");

    let ping = request(1, "ping", json!({}));
    let Reply::Json(pong) = c.post(&ping).await else {
        panic!("ping should answer JSON")
    };
    assert_eq!(pong, json!({ "jsonrpc": "2.0", "id": 1, "result": {} }));

    let no_session = HttpClient::new(&server.url);
    assert_eq!(no_session.post_raw(&ping).await.status(), 400);
    let mut unknown = HttpClient::new(&server.url);
    unknown.session = Some("nope".into());
    assert_eq!(unknown.post_raw(&ping).await.status(), 404);

    let sid = c.session.clone().unwrap();
    let post = |accept: &str, version: &str| {
        c.http
            .post(&c.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-protocol-version", version)
            .header("mcp-session-id", &sid)
            .body(ping.to_string())
    };
    let both = "application/json, text/event-stream";
    assert_eq!(
        within("POST", post(both, "2025-06-18").send())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        within("POST", post(both, "1999-01-01").send())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        within("POST", post("application/json", "2025-11-25").send())
            .await
            .unwrap()
            .status(),
        406
    );
    let evil = post(both, "2025-11-25").header("origin", "http://evil.example.com");
    assert_eq!(within("POST", evil.send()).await.unwrap().status(), 403);
    let rebound = post(both, "2025-11-25").header("host", "evil.example.com");
    assert_eq!(within("POST", rebound.send()).await.unwrap().status(), 403);
    let garbage = c.post_builder(&ping).body("{nope");
    let resp = within("POST", garbage.send()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32700);

    // One standalone GET stream per session.
    let _get = c.open_get().await;
    let second = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap());
    assert_eq!(within("GET", second.send()).await.unwrap().status(), 409);

    let del = c
        .http
        .delete(&c.url)
        .header("mcp-session-id", c.session.clone().unwrap());
    assert_eq!(within("DELETE", del.send()).await.unwrap().status(), 200);
    assert_eq!(c.post_raw(&ping).await.status(), 404);
}

#[tokio::test]
async fn lab_pagination_and_fast_json_echo() {
    let server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({})).await;
    let mut names = Vec::new();
    let mut params = json!({});
    for id in 1..10 {
        let (resp, _) = c.rpc(&request(id, "tools/list", params.clone())).await;
        names.extend(
            resp["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone()),
        );
        match resp["result"].get("nextCursor") {
            Some(cursor) => params = json!({ "cursor": cursor }),
            None => break,
        }
    }
    assert_eq!(names.len(), 13);
    let reply = c.post(&call(20, "echo", json!({ "text": "ping" }))).await;
    assert!(!reply.is_sse(), "echo must answer with plain JSON");
    assert_eq!(first_text(&reply.response(20).await.0["result"]), "ping");
}

#[tokio::test]
async fn progress_streams_over_sse() {
    let server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({})).await;
    let mut msg = call(1, "progress", json!({ "steps": 4 }));
    msg["params"]["_meta"] = json!({ "progressToken": "p" });
    let reply = c.post(&msg).await;
    assert!(reply.is_sse());
    let (resp, before) = within("progress", reply.response(1)).await;
    assert_eq!(first_text(&resp["result"]), "done 4 steps");
    let steps: Vec<f64> = before
        .iter()
        .map(|m| m["params"]["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(steps, vec![1.0, 2.0, 3.0, 4.0]);
}

#[tokio::test]
async fn elicitation_round_trip_over_sse() {
    let server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({ "elicitation": {} })).await;
    let Reply::Sse(mut stream) = c
        .post(&call(1, "ask_elicitation", json!({ "message": "colour?" })))
        .await
    else {
        panic!("expected SSE")
    };
    let req = stream.next().await.unwrap();
    assert_eq!(req["method"], "elicitation/create");
    assert_eq!(req["params"]["message"], "colour?");
    c.post_accepted(&json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "action": "accept", "content": { "answer": "blue" } } }))
        .await;
    let resp = stream.next().await.unwrap();
    assert_eq!(resp["id"], 1);
    let text: Value = serde_json::from_str(first_text(&resp["result"])).unwrap();
    assert_eq!(text["content"]["answer"], "blue");
    assert_eq!(
        stream.next().await,
        None,
        "stream closes after the response"
    );
}

#[tokio::test]
async fn cancellation_over_http() {
    let server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({})).await;
    let mut msg = call(1, "sleep", json!({ "ms": 600_000 }));
    msg["params"]["_meta"] = json!({ "progressToken": "s" });
    let Reply::Sse(mut stream) = c.post(&msg).await else {
        panic!("expected SSE")
    };
    // The first progress notification proves the sleep is running; then cancel it.
    assert_eq!(
        stream.next().await.unwrap()["method"],
        "notifications/progress"
    );
    c.post_accepted(&notification(
        "notifications/cancelled",
        json!({ "requestId": 1 }),
    ))
    .await;
    assert_eq!(
        stream.next().await,
        None,
        "a cancelled request sends no response"
    );
    let (resp, _) = c.rpc(&call(2, "sleep", json!({ "ms": 1 }))).await;
    assert_eq!(first_text(&resp["result"]), "slept");
}

#[tokio::test]
async fn list_changed_reaches_other_sessions_on_their_get_stream() {
    let server = HttpServer::spawn("notes", &[]).await;
    let watcher = server.client(json!({})).await;
    let mut events = watcher.open_get().await;
    let writer = server.client(json!({})).await;
    let (resp, before) = writer
        .rpc(&call(1, "add_note", json!({ "title": "t", "body": "b" })))
        .await;
    assert!(resp["result"]["structuredContent"]["id"].is_u64());
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/resources/list_changed")
    );
    let note = events.next().await.unwrap();
    assert_eq!(note["method"], "notifications/resources/list_changed");
}

#[tokio::test]
async fn subscribed_resource_updates_arrive_on_get_stream() {
    let server = HttpServer::spawn("tickets", &[]).await;
    let actor = server.client(json!({})).await;
    let (resp, _) = actor
        .rpc(&call(
            1,
            "create_ticket",
            json!({ "title": "disk full", "priority": "low" }),
        ))
        .await;
    let uri = format!("ticket://{}", resp["result"]["structuredContent"]["id"]);

    let watcher = server.client(json!({})).await;
    watcher
        .rpc(&request(1, "resources/subscribe", json!({ "uri": uri })))
        .await;
    let mut events = watcher.open_get().await;

    // No elicitation capability: the ticket closes without asking.
    let (resp, _) = actor
        .rpc(&call(2, "close_ticket", json!({ "id": 1 })))
        .await;
    assert_eq!(resp["result"]["structuredContent"]["closed"], true);
    let note = events.next().await.unwrap();
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], uri);
}

#[tokio::test]
async fn whoami_reports_session_tag_and_traceparent() {
    let server = HttpServer::spawn("lab", &[("SB_LAB_TAG", "blue")]).await;
    let c = server.client(json!({})).await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut msg = call(1, "whoami", json!({}));
    msg["params"]["_meta"] = json!({ "traceparent": tp });
    let (resp, _) = c.rpc(&msg).await;
    let who: Value = serde_json::from_str(first_text(&resp["result"])).unwrap();
    assert_eq!(who["sessionId"], json!(c.session));
    assert_eq!(who["tag"], "blue");
    assert_eq!(who["traceparent"], tp);
}

#[tokio::test]
async fn trace_reports_meta_and_http_headers_apart() {
    let server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({})).await;
    let meta_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let header_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut msg = call(1, "trace", json!({}));
    msg["params"]["_meta"] = json!({ "traceparent": meta_tp, "baggage": "user=alice" });
    let post = c
        .post_builder(&msg)
        .header("traceparent", header_tp)
        .header("tracestate", "sb=1");
    let body = within("POST", post.send()).await.unwrap().bytes().await;
    let resp: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    let seen: Value = serde_json::from_str(first_text(&resp["result"])).unwrap();
    assert_eq!(
        seen,
        json!({
            "meta": { "traceparent": meta_tp, "tracestate": null, "baggage": "user=alice" },
            "http": { "traceparent": header_tp, "tracestate": "sb=1", "baggage": null },
        })
    );
}

#[tokio::test]
async fn closed_stream_resumes_with_last_event_id() {
    let server = HttpServer::spawn("conformance", &[]).await;
    let c = server.client(json!({})).await;
    let Reply::Sse(mut stream) = c.post(&call(1, "test_reconnection", json!({}))).await else {
        panic!("expected SSE")
    };
    assert_eq!(
        stream.next().await,
        None,
        "server closes the stream before the result"
    );
    let last = stream.last_event_id.clone().expect("priming event id");
    let get = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("last-event-id", last);
    let mut resumed = SseStream::new(within("GET", get.send()).await.unwrap());
    let resp = resumed.next().await.unwrap();
    assert_eq!(resp["id"], 1);
    assert_eq!(
        first_text(&resp["result"]),
        "Reconnection test completed successfully"
    );
}

#[tokio::test]
async fn exit_tool_kills_the_http_server() {
    let mut server = HttpServer::spawn("lab", &[]).await;
    let c = server.client(json!({})).await;
    let result = within(
        "POST",
        c.post_builder(&call(1, "exit", json!({ "code": 7 })))
            .send(),
    )
    .await;
    assert!(result.is_err(), "the connection dies with the process");
    let status = within("process exit", server.child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(7));
}

#[tokio::test]
async fn older_revisions_are_served() {
    let server = HttpServer::spawn("lab", &[]).await;
    for version in ["2025-06-18", "2025-03-26"] {
        let c = HttpClient::new(&server.url);
        let mut params = init_params(json!({}));
        params["protocolVersion"] = json!(version);
        let resp = c.post_raw(&request(0, "initialize", params)).await;
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(body["result"]["protocolVersion"], version);

        let mut msg = call(1, "progress", json!({ "steps": 1 }));
        msg["params"]["_meta"] = json!({ "progressToken": 1 });
        let req = c
            .http
            .post(&c.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", version)
            .body(msg.to_string());
        let resp = within("POST", req.send()).await.unwrap();
        let raw = String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap();
        assert!(
            !raw.contains("retry:"),
            "no SEP-1699 priming event before 2025-11-25: {raw}"
        );
        assert!(
            raw.contains("notifications/progress") && raw.contains("done 1 steps"),
            "{raw}"
        );
    }
}
