//! End-to-end check of the load loop against an in-process MCP server on 127.0.0.1:0
//! (JSON or SSE answers, one tool that fails): counts and phases, never timings.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;

async fn answer(
    request: Request<hyper::body::Incoming>,
    sse: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = request.headers().get("mcp-session-id").cloned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(id) = message.get("id").cloned() else {
        return Ok(Response::builder()
            .status(202)
            .body(Full::default())
            .unwrap());
    };
    let result = match message["method"].as_str() {
        Some("initialize") => {
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "t", "version": "0"}})
        }
        Some("tools/call") if session.as_ref().is_none_or(|s| s != "s-1") => {
            return Ok(Response::builder()
                .status(404)
                .body(Full::default())
                .unwrap());
        }
        Some("tools/call") if message["params"]["name"] == "echo" => {
            json!({"content": [{"type": "text", "text": "hi"}]})
        }
        _ => json!({"content": [], "isError": true}),
    };
    let text = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    let (content_type, body) = if sse {
        (
            "text/event-stream",
            format!("id: 1\ndata:\n\nevent: message\ndata: {text}\n\n"),
        )
    } else {
        ("application/json", text)
    };
    Ok(Response::builder()
        .header("content-type", content_type)
        .header("mcp-session-id", "s-1")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

async fn server(sse: bool) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(move |r| answer(r, sse));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Target::parse(&format!("http://{addr}/mcp")).unwrap()
}

fn spec(target: Target, tool: &str, clients: u64, stop: Stop) -> Arc<LoadSpec> {
    Arc::new(LoadSpec {
        target,
        clients,
        stop,
        warmup_per_client: 3,
        tool: tool.into(),
        call: CallTemplate::new(tool, r#"{"text":"hi"}"#).unwrap(),
        timeout: Duration::from_secs(10),
    })
}

#[tokio::test]
async fn requests_are_split_over_clients_and_phases_reported() {
    for sse in [false, true] {
        let target = server(sse).await;
        let mut phases = Vec::new();
        let summary = run(spec(target, "echo", 3, Stop::Requests(100)), |p| {
            phases.push(p)
        })
        .await
        .unwrap();
        assert_eq!(phases, [Phase::Start, Phase::End]);
        assert_eq!(
            (summary.requests, summary.ok, summary.errors.total()),
            (100, 100, 0),
            "sse={sse}"
        );
        assert_eq!(summary.latency_us.samples, 100);
        assert_eq!(summary.reconnects, 0);
        assert!(!summary.truncated);
    }
}

#[tokio::test]
async fn tool_errors_are_counted_and_duration_mode_stops() {
    let target = server(false).await;
    let summary = run(
        spec(
            target,
            "fails",
            2,
            Stop::Duration(Duration::from_millis(300)),
        ),
        |_| {},
    )
    .await
    .unwrap();
    assert!(summary.requests > 0);
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.errors.tool, summary.requests);
    assert!(summary.first_error.unwrap().contains("isError"));
}

#[tokio::test]
async fn a_refused_connection_fails_the_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = Target::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
    let error = run(spec(target, "echo", 2, Stop::Requests(10)), |_| {})
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("could not start"),
        "{error:#}"
    );
}
