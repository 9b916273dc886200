//! The gateway's OpenTelemetry output as a collector receives it over real OTLP (gRPC and
//! HTTP/protobuf): SERVER/CLIENT spans with the MCP conventions' names, kinds, links and
//! attributes, trace context carried to a backend that reports it, metrics pushed over OTLP, and
//! a collector outage that costs spans (counted) but no call and no audit record.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/otlp.rs"]
mod otlp;

use std::time::Duration;

use gateway::*;
use otlp::{OtlpReceiver, Protocol, SpanKind, SpanStatus, SpanView};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
/// The client's own trace: a tool call carries it in `params._meta`.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// The HTTP request's context (a different trace): becomes a link of the SERVER span.
const HEADER_TP: &str = "00-11111111111111111111111111111111-2222222222222222-01";

fn telemetry(r: &OtlpReceiver, extra: &str) -> String {
    format!(
        "telemetry:\n  service_name: sb-test\n  otlp: {{endpoint: '{}', protocol: {}}}\n  traces: {{interval: 100ms{extra}}}\n  metrics: {{otlp: true, otlp_interval: 200ms}}\n",
        r.endpoint(),
        r.protocol().as_str()
    )
}

fn by_name_kind(spans: &[SpanView], name: &str, kind: SpanKind) -> Option<SpanView> {
    spans
        .iter()
        .find(|s| s.name == name && s.kind == kind)
        .cloned()
}

async fn server_and_client(r: &OtlpReceiver, name: &str) -> (SpanView, SpanView) {
    let spans = r
        .wait_for_spans(
            |s| {
                by_name_kind(s, name, SpanKind::Server).is_some()
                    && s.iter().any(|c| c.kind == SpanKind::Client)
            },
            WAIT,
        )
        .await;
    let server = by_name_kind(&spans, name, SpanKind::Server).unwrap();
    let client = spans
        .iter()
        .find(|c| c.kind == SpanKind::Client && c.is_child_of(&server))
        .cloned()
        .unwrap_or_else(|| panic!("no CLIENT child of {name}: {spans:#?}"));
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_is_a_server_span_with_a_client_child_and_the_backend_continues_the_trace() {
    let r = OtlpReceiver::start(Protocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let lab = HttpFixture::start("lab").await;
    let extra = format!(
        "{}audit: {{path: '{}', durability: fsync}}\n",
        telemetry(&r, ""),
        log.display()
    );
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], &extra).await;
    let c = RawClient::connect(&gw.url).await;
    let session = c.session.clone().unwrap();

    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trace", "arguments": {},
        "_meta": {"traceparent": format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
                  "tracestate": "rojo=1", "baggage": "team=sre"}}});
    let reply = c
        .send(
            c.request(reqwest::Method::POST)
                .header("traceparent", HEADER_TP)
                .body(body.to_string()),
        )
        .await
        .json();
    let seen: Value = serde_json::from_str(&result_text(&reply)).unwrap();

    let (server, client) = server_and_client(&r, "tools/call trace").await;
    // The SERVER span continues the client's trace from _meta and links the HTTP context.
    assert_eq!(server.trace_id, CLIENT_TRACE);
    assert_eq!(server.parent_span_id, CLIENT_SPAN);
    assert_eq!(server.links.len(), 1, "{server:#?}");
    assert_eq!(server.links[0].trace_id, "11111111111111111111111111111111");
    let gw_port = url::Url::parse(&gw.url).unwrap().port().unwrap();
    for (k, v) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", "trace"),
        ("mcp.session.id", session.as_str()),
        ("mcp.protocol.version", "2025-11-25"),
        ("jsonrpc.request.id", "7"),
        ("network.transport", "tcp"),
        ("network.protocol.name", "http"),
        ("client.address", "127.0.0.1"),
        ("server.address", "127.0.0.1"),
        ("switchboard.backend", "lab"),
        ("switchboard.tool.original_name", "trace"),
        ("switchboard.decision", "allow"),
    ] {
        assert_eq!(server.attr_str(k), Some(v), "SERVER {k}: {server:#?}");
    }
    assert_eq!(server.attr_i64("server.port"), Some(i64::from(gw_port)));
    assert!(server.attr("error.type").is_none());
    // Client and backend speak the same revision: not a bridged call.
    assert_eq!(server.attr("switchboard.protocol.backend"), None);
    assert_eq!(server.resource_str("service.name"), Some("sb-test"));

    // The CLIENT span is the backend hop: a child in the same trace, naming the backend's address.
    assert_eq!(client.name, "tools/call trace");
    assert_eq!(client.trace_id, CLIENT_TRACE);
    assert_eq!(client.attr_str("switchboard.backend"), Some("lab"));
    assert_eq!(client.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(client.attr_i64("server.port"), Some(i64::from(lab.port())));
    assert_eq!(client.attr_str("network.transport"), Some("tcp"));
    assert!(client.start_unix_nano >= server.start_unix_nano);
    assert!(client.end_unix_nano <= server.end_unix_nano);

    // The backend received the CLIENT span's context, in _meta and as HTTP headers.
    let carried = format!("00-{CLIENT_TRACE}-{}-01", client.span_id);
    assert_eq!(seen["meta"]["traceparent"], json!(carried), "{seen}");
    assert_eq!(seen["http"]["traceparent"], json!(carried), "{seen}");
    assert_eq!(seen["meta"]["tracestate"], json!("rojo=1"));
    assert_eq!(seen["meta"]["baggage"], json!("team=sre"));

    // The audit record points at the span and names the client address.
    let line = std::fs::read_to_string(&log).unwrap();
    let rec: Value = line
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["target"] == "trace")
        .unwrap();
    assert_eq!(rec["trace_id"], json!(CLIENT_TRACE));
    assert_eq!(rec["span_id"], json!(server.span_id));
    assert_eq!(rec["client_addr"], json!("127.0.0.1"));

    // Metrics travel over the same OTLP connection.
    let m = r
        .wait_for_metric(
            "mcp.server.operation.duration",
            &[
                ("mcp.method.name", "tools/call"),
                ("switchboard.backend", "lab"),
            ],
            WAIT,
        )
        .await;
    assert_eq!(m.unit, "s");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_denials_and_local_answers_have_their_own_spans_over_otlp_http() {
    let r = OtlpReceiver::start(Protocol::Http).await;
    // Arguments and results are recorded for lab's echo only (opt-in).
    let extra = format!(
        "{}  payloads: [{{backend: lab, tools: [echo]}}]\n",
        telemetry(&r, "")
    );
    let gw = TestGateway::start(
        &[fixture_stdio("lab", "lab"), fixture_stdio("notes", "notes")],
        &extra,
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    c.call(1, "tools/list", json!({})).await;
    let tool_error = c.tool(2, "echo", json!({})).await;
    assert_eq!(tool_error["result"]["isError"], json!(true));
    let unknown = c.tool(3, "no_such_tool", json!({})).await;
    assert_eq!(unknown["error"]["code"], json!(-32602));
    c.tool(4, "list_notes", json!({})).await;
    c.tool(5, "echo", json!({"text": "opted-in"})).await;

    let spans = r
        .wait_for_spans(
            |s| {
                [
                    "tools/list",
                    "tools/call echo",
                    "tools/call no_such_tool",
                    "tools/call list_notes",
                ]
                .iter()
                .all(|n| by_name_kind(s, n, SpanKind::Server).is_some())
                    && s.iter()
                        .any(|s| s.attr_str("jsonrpc.request.id") == Some("5"))
            },
            WAIT,
        )
        .await;
    let recorded = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.attr_str("jsonrpc.request.id") == Some("5"))
        .unwrap();
    let attr = |k| recorded.attr_str(k).unwrap_or_default();
    assert!(
        attr("gen_ai.tool.call.arguments").contains("opted-in"),
        "{recorded:#?}"
    );
    assert!(
        attr("gen_ai.tool.call.result").contains("opted-in"),
        "{recorded:#?}"
    );
    // Answered from the catalog: a root SERVER span with no backend hop.
    let list = by_name_kind(&spans, "tools/list", SpanKind::Server).unwrap();
    assert!(list.is_root());
    assert!(!spans.iter().any(|s| s.is_child_of(&list)));

    // isError: true is error.type tool_error, status ERROR, on both hops.
    let echo = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.attr_str("jsonrpc.request.id") == Some("2"))
        .unwrap();
    assert_eq!(echo.attr_str("error.type"), Some("tool_error"));
    assert_eq!(echo.status, SpanStatus::Error);
    let hop = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client && s.is_child_of(echo))
        .unwrap();
    assert_eq!(hop.attr_str("error.type"), Some("tool_error"));
    assert_eq!(hop.attr_str("network.transport"), Some("pipe"));
    assert_eq!(hop.attr("server.address"), None);

    // An unknown tool never reaches a backend: the JSON-RPC code and message, no CLIENT span.
    let unknown = by_name_kind(&spans, "tools/call no_such_tool", SpanKind::Server).unwrap();
    assert_eq!(unknown.attr_str("error.type"), Some("-32602"));
    assert_eq!(unknown.attr_str("rpc.response.status_code"), Some("-32602"));
    assert_eq!(unknown.status, SpanStatus::Error);
    assert!(
        unknown.status_message.contains("Unknown tool"),
        "{unknown:#?}"
    );
    assert!(!spans.iter().any(|s| s.is_child_of(&unknown)));
    assert_eq!(unknown.attr("switchboard.backend"), None);

    // Without trace context from the client, the call starts its own trace.
    let notes = by_name_kind(&spans, "tools/call list_notes", SpanKind::Server).unwrap();
    assert!(notes.is_root());
    assert_eq!(
        notes.attr("gen_ai.tool.call.arguments"),
        None,
        "not opted in"
    );
    assert_eq!(notes.attr("gen_ai.tool.call.result"), None);
    assert_eq!(notes.attr_str("switchboard.backend"), Some("notes"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collector_costs_counted_spans_but_no_call_and_no_audit_record() {
    let r = OtlpReceiver::start_stalled(Protocol::Http).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let extra = format!(
        "{}audit: {{path: '{}', durability: fsync}}\n",
        telemetry(&r, ", queue: 4, batch: 2"),
        log.display()
    );
    let gw = TestGateway::start(&[fixture_stdio("lab", "lab")], &extra).await;
    let c = RawClient::connect(&gw.url).await;
    for i in 0..30 {
        let reply = c
            .tool(10 + i, "echo", json!({"text": format!("m{i}")}))
            .await;
        assert_eq!(text(&reply), format!("m{i}"));
    }
    let metrics = reqwest::get(gw.url.replace("/mcp", "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchboard_telemetry_dropped_total{switchboard_signal=\"spans\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no span drop counter in:\n{metrics}"));
    assert!(
        dropped > 0.0,
        "spans beyond the queue must be counted as dropped"
    );
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"method\":\"tools/call\""))
        .count();
    assert_eq!(calls, 30, "every call is in the audit log");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_backend_connects_and_drains_spans_on_sigterm() {
    let r = OtlpReceiver::start(Protocol::Grpc).await;
    // An export interval that never elapses during the test: only shutdown's flush exports.
    let yaml = format!(
        "listeners: [{{name: t, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\ntelemetry:\n  service_name: sb-test\n  otlp: {{endpoint: '{}', protocol: grpc}}\n  traces: {{interval: 1h}}\nbackends:\n{}",
        r.endpoint(),
        fixture_stdio("lab", "lab")
    );
    let (mut gw, _dir) = GatewayProcess::start(&yaml).await;
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(text(&c.tool(1, "echo", json!({"text": "hi"})).await), "hi");
    assert!(r.spans().is_empty(), "nothing exported before shutdown");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = gw.child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    // SIGTERM flushed the queue: the call's SERVER span, and the session's backend connect
    // (through the `tracing` bridge) as a CLIENT span of its own.
    let spans = r.spans();
    assert!(
        by_name_kind(&spans, "tools/call echo", SpanKind::Server).is_some(),
        "{spans:#?}"
    );
    let connect = by_name_kind(&spans, "backend.connect", SpanKind::Client)
        .unwrap_or_else(|| panic!("no backend.connect span: {spans:#?}"));
    assert_eq!(connect.attr_str("switchboard.backend"), Some("lab"));
    assert_eq!(connect.resource_str("service.name"), Some("sb-test"));
}

/// A 2026-07-28 request: the `_meta` envelope plus the mirrored headers.
async fn modern(c: &RawClient, id: i64, method: &str, mut params: Value) -> Reply {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-2026", "version": "1"},
    });
    let mut b = c
        .bare_post()
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(n) = params.get("name").and_then(Value::as_str) {
        b = b.header("mcp-name", n.to_string());
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    c.send(b.body(body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_clients_and_notifications_get_server_spans_too() {
    let r = OtlpReceiver::start(Protocol::Grpc).await;
    let gw = TestGateway::start(&[fixture_stdio("lab", "lab")], &telemetry(&r, "")).await;
    // 2026-07-28: answered by the listener (discover) and routed through a gateway-held session.
    let stateless = RawClient::new(&gw.url);
    assert_eq!(
        modern(&stateless, 1, "server/discover", json!({}))
            .await
            .status,
        200
    );
    let echoed = modern(
        &stateless,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(echoed.status, 200);
    // A 2025 client's notification.
    let c = RawClient::connect(&gw.url).await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"});
    assert_eq!(c.post(note).await.status, 202);

    let spans = r
        .wait_for_spans(
            |s| {
                [
                    "server/discover",
                    "tools/call echo",
                    "notifications/roots/list_changed",
                ]
                .iter()
                .all(|n| by_name_kind(s, n, SpanKind::Server).is_some())
            },
            WAIT,
        )
        .await;
    let discover = by_name_kind(&spans, "server/discover", SpanKind::Server).unwrap();
    assert_eq!(
        discover.attr_str("mcp.protocol.version"),
        Some("2026-07-28")
    );
    let call = by_name_kind(&spans, "tools/call echo", SpanKind::Server).unwrap();
    assert_eq!(call.attr_str("mcp.protocol.version"), Some("2026-07-28"));
    // No session exists for a stateless client: the gateway's internal one is not shown.
    assert_eq!(call.attr("mcp.session.id"), None);
    // A bridged call: the 2026 client reached a 2025 backend.
    assert_eq!(
        call.attr_str("switchboard.protocol.backend"),
        Some("2025-11-25")
    );
    assert!(
        spans
            .iter()
            .any(|s| s.kind == SpanKind::Client && s.is_child_of(&call))
    );
    let n = by_name_kind(&spans, "notifications/roots/list_changed", SpanKind::Server).unwrap();
    assert_eq!(n.attr_str("mcp.session.id"), c.session.as_deref());
    assert_eq!(n.attr("jsonrpc.request.id"), None);
    gw.stop().await;
}
