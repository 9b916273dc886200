//! Self-test of the tests' OTLP receiver (`tests/common/otlp.rs`): the real `opentelemetry-otlp`
//! exporter sends spans and metrics over OTLP/gRPC and OTLP/HTTP, and every field the gateway's
//! telemetry tests rely on comes back out of the flattened views. Also checks gzip bodies and the
//! outage modes (reject, stall, stop).

#[path = "common/otlp.rs"]
mod otlp;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, Value};
use opentelemetry_otlp::{
    MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use otlp::{AttrValue, OtlpReceiver, PointValue, Protocol, Signal, SpanStatus};
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);
const LINKED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const LINKED_SPAN: &str = "b7ad6b7169203331";

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("otlp-selftest")
        .with_attribute(KeyValue::new("service.instance.id", "test-1"))
        .build()
}

fn span_exporter(rx: &OtlpReceiver) -> SpanExporter {
    match rx.protocol() {
        Protocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("x-api-key", "sekret".parse().expect("metadata value"));
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(rx.endpoint())
                .with_metadata(metadata)
                .build()
        }
        // Given programmatically, the HTTP endpoint is the full signal URL.
        Protocol::Http => SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", rx.endpoint()))
            .with_headers(HashMap::from([("x-api-key".into(), "sekret".into())]))
            .build(),
    }
    .expect("span exporter")
}

fn metric_exporter(rx: &OtlpReceiver) -> MetricExporter {
    match rx.protocol() {
        Protocol::Grpc => MetricExporter::builder()
            .with_tonic()
            .with_endpoint(rx.endpoint())
            .build(),
        Protocol::Http => MetricExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/metrics", rx.endpoint()))
            .build(),
    }
    .expect("metric exporter")
}

/// The SDK's flush blocks on the export, which runs on the tokio runtime: flush off a worker.
async fn flush(f: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(f).await.expect("flush");
}

/// A SERVER span with a CLIENT child, the child carrying attributes of every type, a link and an
/// error status, exported for real; checks what the receiver made of them.
async fn spans_round_trip(protocol: Protocol) {
    let rx = OtlpReceiver::start(protocol).await;
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_span_processor(BatchSpanProcessor::builder(span_exporter(&rx), Tokio).build())
        .build();
    let tracer = provider.tracer("selftest");

    let server = tracer
        .span_builder("tools/call lab__echo")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("mcp.method.name", "tools/call")])
        .start(&tracer);
    let cx = Context::current_with_span(server);
    let linked = SpanContext::new(
        TraceId::from_hex(LINKED_TRACE).expect("trace id"),
        SpanId::from_hex(LINKED_SPAN).expect("span id"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut client = tracer
        .span_builder("tools/call echo")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("gen_ai.tool.name", "echo"),
            KeyValue::new("server.port", 8080_i64),
            KeyValue::new("switchboard.redacted", true),
            KeyValue::new("switchboard.ratio", 0.5),
            KeyValue::new(
                "switchboard.roles",
                Value::Array(Array::String(vec!["admin".into(), "dev".into()])),
            ),
        ])
        .with_links(vec![Link::with_context(linked)])
        .start_with_context(&tracer, &cx);
    client.set_status(Status::error("Tool failed"));
    client.end();
    cx.span().end();
    let p = provider.clone();
    flush(move || p.force_flush().expect("force_flush")).await;

    let spans = rx.wait_for_spans(|s| s.len() >= 2, WAIT).await;
    let server = spans
        .iter()
        .find(|s| s.name == "tools/call lab__echo")
        .expect("server span");
    let client = rx.wait_for_span("tools/call echo", WAIT).await;

    assert_eq!(server.kind, otlp::SpanKind::Server);
    assert_eq!(server.kind.to_string(), "SERVER");
    assert!(server.is_root(), "{server:?}");
    assert_eq!(server.attr_str("mcp.method.name"), Some("tools/call"));
    assert_eq!(server.trace_id.len(), 32, "hex trace id");
    assert_eq!(server.span_id.len(), 16, "hex span id");
    assert_eq!(server.status, SpanStatus::Unset);
    assert_eq!(server.resource_str("service.name"), Some("otlp-selftest"));
    assert_eq!(server.resource_str("service.instance.id"), Some("test-1"));
    assert_eq!(server.scope, "selftest");

    assert_eq!(client.kind, otlp::SpanKind::Client);
    assert!(client.is_child_of(server), "{client:?} / {server:?}");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.attr_str("gen_ai.tool.name"), Some("echo"));
    assert_eq!(client.attr_i64("server.port"), Some(8080));
    assert_eq!(
        client.attr("switchboard.redacted"),
        Some(&AttrValue::Bool(true))
    );
    assert_eq!(
        client.attr("switchboard.ratio"),
        Some(&AttrValue::Double(0.5))
    );
    let roles = client.attr("switchboard.roles").expect("roles");
    assert_eq!(roles.to_string(), "admin,dev");
    assert_eq!(client.status, SpanStatus::Error);
    assert_eq!(client.status_message, "Tool failed");
    assert_eq!(client.links.len(), 1);
    assert_eq!(client.links[0].trace_id, LINKED_TRACE);
    assert_eq!(client.links[0].span_id, LINKED_SPAN);
    assert!(client.end_unix_nano >= client.start_unix_nano);

    let exports = rx.exports();
    assert!(exports.iter().all(|e| e.protocol == protocol));
    assert!(exports.iter().all(|e| e.signal == Signal::Traces));
    assert_eq!(
        exports[0].headers.get("x-api-key").map(|v| v.as_bytes()),
        Some(&b"sekret"[..]),
        "the exporter's headers/metadata arrive"
    );
    flush(move || provider.shutdown().expect("shutdown")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_round_trip_over_grpc() {
    spans_round_trip(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_round_trip_over_http() {
    spans_round_trip(Protocol::Http).await;
}

/// A duration histogram and a counter, exported for real, arrive with their data point
/// attributes.
async fn metrics_round_trip(protocol: Protocol) {
    let rx = OtlpReceiver::start(protocol).await;
    let reader = PeriodicReader::builder(metric_exporter(&rx), Tokio)
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(reader)
        .build();
    let meter = provider.meter("selftest");
    let duration = meter
        .f64_histogram("mcp.server.operation.duration")
        .with_unit("s")
        .build();
    duration.record(
        0.02,
        &[
            KeyValue::new("mcp.method.name", "tools/call"),
            KeyValue::new("gen_ai.tool.name", "lab__echo"),
        ],
    );
    let calls = meter.u64_counter("switchboard.calls").build();
    calls.add(2, &[KeyValue::new("switchboard.decision", "allow")]);
    let p = provider.clone();
    flush(move || p.force_flush().expect("force_flush")).await;

    let m = rx
        .wait_for_metric(
            "mcp.server.operation.duration",
            &[("mcp.method.name", "tools/call")],
            WAIT,
        )
        .await;
    assert_eq!(m.kind, otlp::MetricKind::Histogram);
    assert_eq!(m.unit, "s");
    assert_eq!(
        m.resource
            .get("service.name")
            .map(ToString::to_string)
            .as_deref(),
        Some("otlp-selftest")
    );
    let point = m
        .point_with(&[("gen_ai.tool.name", "lab__echo")])
        .expect("point");
    let PointValue::Histogram { count, sum, .. } = &point.value else {
        panic!("not a histogram point: {point:?}");
    };
    assert_eq!(*count, 1);
    assert_eq!(*sum, Some(0.02));

    let c = rx
        .wait_for_metric(
            "switchboard.calls",
            &[("switchboard.decision", "allow")],
            WAIT,
        )
        .await;
    assert_eq!(c.kind, otlp::MetricKind::Sum { monotonic: true });
    assert_eq!(c.points[0].value, PointValue::Int(2));
    assert!(
        rx.exports()
            .iter()
            .all(|e| e.protocol == protocol && e.signal == Signal::Metrics)
    );
    flush(move || provider.shutdown().expect("shutdown")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_round_trip_over_grpc() {
    metrics_round_trip(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_round_trip_over_http() {
    metrics_round_trip(Protocol::Http).await;
}

/// One span, as a protobuf `ExportTraceServiceRequest`, gzipped.
fn gzipped_request(name: &str) -> Vec<u8> {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&req.encode_to_vec()).expect("gzip");
    gz.finish().expect("gzip")
}

async fn post_traces(rx: &OtlpReceiver, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{}/v1/traces", rx.endpoint()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .timeout(Duration::from_millis(500))
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn http_accepts_gzip_and_plays_outages() {
    let mut rx = OtlpReceiver::start(Protocol::Http).await;
    let ok = post_traces(&rx, gzipped_request("gzipped"))
        .await
        .expect("post");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-type"],
        "application/x-protobuf",
        "answers with an ExportTraceServiceResponse"
    );
    let span = rx.wait_for_span("gzipped", WAIT).await;
    assert_eq!(span.trace_id, "01".repeat(16));
    assert_eq!(span.kind.to_string(), "UNSPECIFIED");

    rx.reject(true);
    let refused = post_traces(&rx, gzipped_request("refused"))
        .await
        .expect("post");
    assert_eq!(refused.status(), 503);
    rx.reject(false);
    assert_eq!(rx.spans().len(), 1, "a rejected export records nothing");

    rx.stop();
    let down = post_traces(&rx, gzipped_request("down")).await;
    assert!(down.is_err(), "stopped receiver still answered: {down:?}");

    let stalled = OtlpReceiver::start_stalled(Protocol::Http).await;
    let hung = post_traces(&stalled, gzipped_request("hung")).await;
    assert!(
        hung.as_ref().is_err_and(reqwest::Error::is_timeout),
        "stalled receiver answered: {hung:?}"
    );
}
