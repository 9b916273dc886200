//! The WebSocket endpoint `/ws` (subprotocol `mcp`): one connection is one session with 2025
//! semantics, driven by a real WebSocket client (tokio-tungstenite).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gateway::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str) -> Ws {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mcp".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket handshake");
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "mcp");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Frame::text(v.to_string())).await.unwrap();
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame within 15s")
            .expect("open")
            .unwrap();
        if let Frame::Text(t) = f {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Reads frames until the response with `id`, returning everything seen before it too.
async fn until_response(ws: &mut Ws, id: Value) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let v = next_json(ws).await;
        if v.get("id") == Some(&id) && v.get("method").is_none() {
            return (before, v);
        }
        before.push(v);
    }
}

#[tokio::test]
async fn a_websocket_connection_is_a_full_session() {
    let lab = HttpFixture::start("lab").await;
    let gw = TestGateway::start(
        &[
            http_backend("lab", &lab.url),
            fixture_stdio("notes", "notes"),
        ],
        "",
    )
    .await;
    let mut ws = connect(&gw.base).await;

    send(
        &mut ws,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
    )
    .await;
    let early = next_json(&mut ws).await;
    assert_eq!(early["error"]["code"], -32600, "initialize first: {early}");

    send(&mut ws, json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"ws-test","version":"1"}}})).await;
    let init = next_json(&mut ws).await;
    assert_eq!(
        init["result"]["serverInfo"]["name"], "switchboard",
        "{init}"
    );
    assert_eq!(gw.gateway().registry().len(), 1);
    send(
        &mut ws,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    )
    .await;

    ws.send(Frame::text("{not json")).await.unwrap();
    assert_eq!(next_json(&mut ws).await["error"]["code"], -32700);

    send(&mut ws, json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add_note","arguments":{"title":"ws","body":"frames"}}})).await;
    let (_, r) = until_response(&mut ws, json!(3)).await;
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("ws"),
        "{r}"
    );

    // Progress notifications arrive before the response, with the client's token.
    send(&mut ws, json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"progress","arguments":{"steps":2},"_meta":{"progressToken":"t"}}})).await;
    let (before, r) = until_response(&mut ws, json!(4)).await;
    let progress: Vec<&Value> = before
        .iter()
        .filter(|v| v["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 2, "{before:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "t"));
    assert!(r["result"].is_object());

    // A sampling request from the backend comes over the socket; the answer goes back.
    send(&mut ws, json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask_sampling","arguments":{"prompt":"over ws"}}})).await;
    let sreq = loop {
        let v = next_json(&mut ws).await;
        if v["method"] == "sampling/createMessage" {
            break v;
        }
    };
    send(&mut ws, json!({"jsonrpc":"2.0","id":sreq["id"],"result":{"role":"assistant","content":{"type":"text","text":"sampled over ws"},"model":"m"}})).await;
    let (_, r) = until_response(&mut ws, json!(5)).await;
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("sampled over ws"),
        "{r}"
    );

    // Closing the socket ends the session.
    ws.close(None).await.unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if gw.gateway().registry().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the session ended with its connection");
    gw.stop().await;
}

#[tokio::test]
async fn websocket_upgrades_are_refused_for_foreign_origins() {
    let gw = TestGateway::start(&[fixture_stdio("notes", "notes")], "").await;
    let url = format!("{}/ws", gw.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mcp".parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example.com".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    gw.stop().await;
}
