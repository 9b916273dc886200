//! What the encoder writes, read back with the generated `opentelemetry-proto` types, and held
//! equal to what the SDK's stock conversion makes of the same span.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{KeyValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message as _;

use super::*;

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 1, 2, 3, 4, 5, 6, 7, 8,
];
const SPAN: [u8; 8] = [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
const PARENT: [u8; 8] = [9, 9, 9, 9, 9, 9, 9, 9];

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + ms)
}

fn head(kind: Kind, parent: Option<([u8; 8], bool)>, state: &str) -> Head<'_> {
    Head {
        trace_id: TRACE,
        span_id: SPAN,
        parent,
        trace_state: state,
        sampled: true,
        kind,
        start: at(0),
        end: at(3),
    }
}

/// The spans of a buffer of `write_span` output (it is a `ScopeSpans` body without a scope).
fn decode(buf: &[u8]) -> Vec<Span> {
    ScopeSpans::decode(buf).expect("decodes").spans
}

fn string(v: &AnyValue) -> &str {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn attr<'s>(s: &'s Span, key: &str) -> &'s AnyValue {
    s.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .unwrap_or_else(|| panic!("no {key}"))
}

/// The SDK's span with the same content, converted the stock way.
fn stock(data: SpanData) -> Span {
    Span::from(data)
}

fn sdk_span(kind: SpanKind, parent: Option<([u8; 8], bool)>, state: &str) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(TRACE),
            SpanId::from_bytes(SPAN),
            TraceFlags::SAMPLED,
            false,
            if state.is_empty() {
                TraceState::default()
            } else {
                state.parse::<TraceState>().unwrap()
            },
        ),
        parent_span_id: parent.map_or(SpanId::INVALID, |(p, _)| SpanId::from_bytes(p)),
        parent_span_is_remote: parent.is_some_and(|(_, r)| r),
        span_kind: kind,
        name: "tools/call echo".into(),
        start_time: at(0),
        end_time: at(3),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: Default::default(),
    }
}

#[test]
fn a_server_span_reads_back_as_the_stock_conversion_writes_it() {
    let mut buf = Vec::new();
    let link = LinkTo {
        trace_id: [0x11; 16],
        span_id: [0x22; 8],
        trace_state: "k=v",
        sampled: true,
    };
    write_span(
        &mut buf,
        &head(Kind::Server, Some((PARENT, true)), "vendor=abc,other=1"),
        |w| {
            w.name2("tools/call", "echo");
            w.str("mcp.method.name", "tools/call");
            w.display("jsonrpc.request.id", 42);
            w.int("client.port", 51234);
            w.int("neg", -7);
            w.display(
                "client.address",
                "::ffff:127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            );
            w.strs("switchboard.roles", ["dev", "", "ops"]);
            w.link(&link);
            w.error("Tool not found");
        },
    );
    let ours = decode(&buf);
    assert_eq!(ours.len(), 1);

    let mut data = sdk_span(SpanKind::Server, Some((PARENT, true)), "vendor=abc,other=1");
    data.attributes = vec![
        KeyValue::new("mcp.method.name", "tools/call"),
        KeyValue::new("jsonrpc.request.id", "42"),
        KeyValue::new("client.port", 51234_i64),
        KeyValue::new("neg", -7_i64),
        KeyValue::new("client.address", "::ffff:127.0.0.1"),
        KeyValue::new(
            "switchboard.roles",
            Value::Array(opentelemetry::Array::String(vec![
                "dev".into(),
                "".into(),
                "ops".into(),
            ])),
        ),
    ];
    data.links.links = vec![Link::with_context(SpanContext::new(
        TraceId::from_bytes([0x11; 16]),
        SpanId::from_bytes([0x22; 8]),
        TraceFlags::SAMPLED,
        true,
        "k=v".parse().unwrap(),
    ))];
    data.status = Status::error("Tool not found");
    assert_eq!(ours[0], stock(data));
}

#[test]
fn a_client_span_without_state_or_status_reads_back_as_the_stock_conversion() {
    let mut buf = Vec::new();
    write_span(
        &mut buf,
        &head(Kind::Client, Some((PARENT, false)), ""),
        |w| {
            w.name2("tools/call", "echo");
            w.str("network.transport", "pipe");
        },
    );
    let mut data = sdk_span(SpanKind::Client, Some((PARENT, false)), "");
    data.attributes = vec![KeyValue::new("network.transport", "pipe")];
    let ours = decode(&buf);
    // The stock conversion always writes a (default, UNSET) status; an absent one reads the same.
    let mut expected = stock(data);
    if expected.status == Some(Default::default()) {
        expected.status = None;
    }
    assert_eq!(ours, vec![expected]);
}

#[test]
fn hostile_and_long_values_survive_byte_for_byte() {
    // Lengths across the varint boundaries of every nesting level (1, 2 and 3 bytes of length),
    // bytes that look like protobuf, NULs, non-ASCII, an empty value.
    let long = "x".repeat(200_000);
    let values: Vec<String> = vec![
        String::new(),
        "\u{0}\u{1}\u{7f}".into(),
        "\u{a}\u{12}\u{2}\u{8}\u{1}".into(),
        "日本語 ✓ \"quoted\" \\ </script>".into(),
        "a".repeat(115),
        "a".repeat(127),
        "a".repeat(128),
        "a".repeat(16_383),
        "a".repeat(16_384),
        long.clone(),
    ];
    let mut buf = Vec::new();
    write_span(&mut buf, &head(Kind::Server, None, ""), |w| {
        w.name2("tools/call", &long);
        for (i, v) in values.iter().enumerate() {
            w.str(
                ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"][i],
                v,
            );
        }
        w.strs("arr", values.iter().map(String::as_str));
        w.int("min", i64::MIN);
        w.int("max", i64::MAX);
        w.error(&long);
    });
    // A second, short span after it (the shrinking path of the length guess).
    write_span(
        &mut buf,
        &head(Kind::Client, Some((PARENT, false)), ""),
        |w| w.name("ping"),
    );
    let spans = decode(&buf);
    assert_eq!(spans.len(), 2);
    let s = &spans[0];
    assert_eq!(s.name, format!("tools/call {long}"));
    for (i, v) in values.iter().enumerate() {
        assert_eq!(string(attr(s, &format!("k{i}"))), v, "k{i}");
    }
    match &attr(s, "arr").value {
        Some(any_value::Value::ArrayValue(a)) => {
            let got: Vec<&str> = a.values.iter().map(string).collect();
            assert_eq!(got, values.iter().map(String::as_str).collect::<Vec<_>>());
        }
        other => panic!("not an array: {other:?}"),
    }
    assert_eq!(
        attr(s, "min").value,
        Some(any_value::Value::IntValue(i64::MIN))
    );
    assert_eq!(
        attr(s, "max").value,
        Some(any_value::Value::IntValue(i64::MAX))
    );
    assert_eq!(s.status.as_ref().unwrap().message, long);
    assert_eq!(spans[1].name, "ping");
    assert_eq!(spans[1].parent_span_id, PARENT);
    assert_eq!(spans[1].trace_id, TRACE);
}

#[test]
fn a_long_value_is_formatted_even_past_the_stack_buffer() {
    struct Long;
    impl std::fmt::Display for Long {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&"y".repeat(100))
        }
    }
    let mut buf = Vec::new();
    write_span(&mut buf, &head(Kind::Server, None, ""), |w| {
        w.display("long", Long)
    });
    assert_eq!(string(attr(&decode(&buf)[0], "long")), "y".repeat(100));
}

#[test]
fn a_batch_is_one_request_with_the_resource_and_scope_once() {
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("sb")
        .with_attributes([KeyValue::new("service.instance.id", "h-1-abc")])
        .build();
    let scope = opentelemetry::InstrumentationScope::builder("switchboard")
        .with_version("0.1.0")
        .build();
    let framing = Framing::new(&resource, &scope);
    let mut spans = Vec::new();
    for i in 0..300 {
        write_span(&mut spans, &head(Kind::Server, None, ""), |w| {
            w.display("i", i)
        });
    }
    // And one from the `tracing` bridge.
    write_sdk_span(&mut spans, sdk_span(SpanKind::Client, None, ""));
    let mut out = Vec::new();
    framing.request(&spans, &mut out);
    let req = ExportTraceServiceRequest::decode(&out[..]).unwrap();
    assert_eq!(req.resource_spans.len(), 1);
    let rs = &req.resource_spans[0];
    let r = rs.resource.as_ref().unwrap();
    let names: Vec<&str> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert!(names.contains(&"service.name"), "{names:?}");
    assert!(names.contains(&"service.instance.id"), "{names:?}");
    assert_eq!(rs.scope_spans.len(), 1);
    let ss = &rs.scope_spans[0];
    let sc = ss.scope.as_ref().unwrap();
    assert_eq!(
        (sc.name.as_str(), sc.version.as_str()),
        ("switchboard", "0.1.0")
    );
    assert_eq!(ss.spans.len(), 301);
    assert_eq!(string(attr(&ss.spans[299], "i")), "299");
    assert_eq!(ss.spans[300].kind, 3);
    assert_eq!(ss.spans[300].name, "tools/call echo");
    // Reused: the second request replaces the first.
    framing.request(&[], &mut out);
    let empty = ExportTraceServiceRequest::decode(&out[..]).unwrap();
    assert!(empty.resource_spans[0].scope_spans[0].spans.is_empty());
}
