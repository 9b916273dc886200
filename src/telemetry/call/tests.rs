use http::HeaderMap;

use super::labels::{error_type, span_name};
use super::*;

#[test]
fn names_and_error_types_follow_the_conventions() {
    assert_eq!(span_name("tools/call", Some("echo")), "tools/call echo");
    assert_eq!(span_name("tools/list", None), "tools/list");
    assert_eq!(span_name("x/evil-unbounded-123", None), "_OTHER");
    assert_eq!(
        error_type(Outcome::ToolError).as_deref(),
        Some("tool_error")
    );
    assert_eq!(
        error_type(Outcome::Error(-32602)).as_deref(),
        Some("-32602")
    );
    assert_eq!(error_type(Outcome::Ok), None);
}

/// Keeps the export requests it is sent.
#[derive(Clone, Default)]
struct Memory(Arc<std::sync::Mutex<Vec<bytes::Bytes>>>);

impl crate::telemetry::export::SpanSink for Memory {
    async fn export(
        &self,
        request: bytes::Bytes,
    ) -> Result<(), crate::telemetry::export::ExportError> {
        self.0.lock().unwrap().push(request);
        Ok(())
    }
}

/// A call with hostile client values, a `_meta` parent and an HTTP context (the link), a
/// decision record and a backend error, as a collector decodes its two spans.
#[tokio::test]
async fn a_finished_call_is_two_spans_a_collector_can_read() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    use prost::Message as _;

    let cfg = crate::config::Config::from_yaml(
        "backends:\n  - {name: lab, transport: streamable-http, url: 'http://10.0.0.9:8081/mcp'}\n",
    )
    .unwrap();
    let sink = Memory::default();
    let tel = Telemetry::with_span_sink(&cfg.telemetry, &cfg.backends, sink.clone()).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-11111111111111111111111111111111-2222222222222222-01"
            .parse()
            .unwrap(),
    );
    let origin = Origin::new(
        NetProtocol::Http,
        Some("[::1]:40000".parse().unwrap()),
        Some(Local::of("127.0.0.1:8080".parse().unwrap())),
        Some(&headers),
    );
    let tool = format!("ev\u{0}il \u{1b}[31m✓{}", "x".repeat(300));
    let params = serde_json::json!({
        "name": tool,
        "_meta": {
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "vendor=abc",
        },
    });
    let id = RequestId::Str(Arc::from("id\u{0}\"'".repeat(100)));
    let mut call = CallEvent::start(
        &tel,
        origin,
        methods::TOOLS_CALL,
        Some(id.clone()),
        params.as_object(),
        Some(Arc::from("sess-1")),
        "2025-11-25",
    );
    call.decision.backend = Some("lab".into());
    call.decision.decision = Some("allow");
    call.decision.principal = Some(Arc::from("alice"));
    call.decision.roles = vec![Arc::from("dev"), Arc::from("ops")];
    call.decision.redactions = 2;
    call.begin_hop(&tel, 0, "echo", 7, None);
    let err = crate::protocol::ErrorObject {
        code: -32602,
        message: "bad ✓".into(),
        data: None,
    };
    assert!(call.finish(&tel, Finish::error(&err), false).is_none());
    tel.flush().await;

    let sent = sink.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let req = ExportTraceServiceRequest::decode(sent[0].clone()).unwrap();
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 2);
    let (client, server) = (&spans[0], &spans[1]);
    let attr = |s: &opentelemetry_proto::tonic::trace::v1::Span, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    let text = |v: &str| Some(V::StringValue(v.into()));

    assert_eq!(server.name, format!("tools/call {tool}"));
    assert_eq!(server.kind, 2);
    assert_eq!(
        hex::encode(&server.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(hex::encode(&server.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(server.trace_state, "vendor=abc");
    assert_eq!(server.flags, 0x301);
    assert_eq!(server.links.len(), 1);
    assert_eq!(hex::encode(&server.links[0].span_id), "2222222222222222");
    assert_eq!(attr(server, "gen_ai.tool.name"), text(&tool));
    assert_eq!(attr(server, "jsonrpc.request.id"), text(&id.to_string()));
    assert_eq!(attr(server, "client.address"), text("::1"));
    assert_eq!(attr(server, "client.port"), Some(V::IntValue(40000)));
    assert_eq!(attr(server, "server.address"), text("127.0.0.1"));
    assert_eq!(attr(server, "mcp.session.id"), text("sess-1"));
    assert_eq!(attr(server, "switchboard.backend"), text("lab"));
    assert_eq!(attr(server, "switchboard.principal"), text("alice"));
    assert_eq!(attr(server, "switchboard.redactions"), Some(V::IntValue(2)));
    match attr(server, "switchboard.roles") {
        Some(V::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
        other => panic!("roles: {other:?}"),
    }
    assert_eq!(attr(server, "error.type"), text("-32602"));
    assert_eq!(attr(server, "rpc.response.status_code"), text("-32602"));
    let status = server.status.clone().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "bad ✓"));

    assert_eq!(client.name, "tools/call echo");
    assert_eq!(client.kind, 3);
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.flags, 0x101);
    assert_eq!(attr(client, "jsonrpc.request.id"), text("7"));
    assert_eq!(attr(client, "server.address"), text("10.0.0.9"));
    assert_eq!(attr(client, "server.port"), Some(V::IntValue(8081)));
    assert_eq!(attr(client, "gen_ai.tool.name"), text("echo"));
    tel.shutdown().await;
}
