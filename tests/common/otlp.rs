//! OTLP receiver for tests: an in-process collector on 127.0.0.1:0 speaking OTLP/gRPC
//! (`TraceService/Export`, `MetricsService/Export`, gzip accepted) or OTLP/HTTP protobuf
//! (`POST /v1/traces`, `POST /v1/metrics`, gzip accepted), flattening what arrives into
//! [`SpanView`]s and [`MetricView`]s that tests wait on without polling.
//!
//! It can also play a collector outage: [`OtlpReceiver::start_stalled`] accepts connections and
//! never answers, [`OtlpReceiver::reject`] answers every export with UNAVAILABLE / 503, and
//! [`OtlpReceiver::stop`] closes the port and every open connection.
//!
//! Include with `#[path = "common/otlp.rs"] mod otlp;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tonic::codec::CompressionEncoding;

/// Which OTLP transport the receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// OTLP/gRPC (h2c), the exporter's `grpc` protocol.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, the exporter's `http/protobuf` protocol.
    Http,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` and the gateway's config use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http/protobuf",
        }
    }
}

/// Which signal an export carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

/// An attribute value, flattened from OTLP's `AnyValue`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    Array(Vec<AttrValue>),
    /// Bytes, key-value lists and dictionary references, in their debug form.
    Other(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) | AttrValue::Other(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Array(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// Attributes by key (the last value wins should a key repeat).
pub(crate) type Attrs = BTreeMap<String, AttrValue>;

/// A span's kind, as OTLP names it without the `SPAN_KIND_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        })
    }
}

/// A span's status code (the message is [`SpanView::status_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanStatus {
    Unset,
    Ok,
    Error,
}

/// A link to another span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkView {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) attributes: Attrs,
}

/// One received span, flattened with its resource and scope. Ids are lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanView {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_span_id: String,
    pub(crate) trace_state: String,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) attributes: Attrs,
    pub(crate) status: SpanStatus,
    pub(crate) status_message: String,
    pub(crate) links: Vec<LinkView>,
    /// Event names, in order.
    pub(crate) events: Vec<String>,
    pub(crate) start_unix_nano: u64,
    pub(crate) end_unix_nano: u64,
    pub(crate) resource: Attrs,
    /// The instrumentation scope's name.
    pub(crate) scope: String,
}

impl SpanView {
    pub(crate) fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// A string attribute (`None` when absent or not a string).
    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        as_str(self.attributes.get(key))
    }

    /// An integer attribute (`None` when absent or not an integer).
    pub(crate) fn attr_i64(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key) {
            Some(AttrValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A string resource attribute, e.g. `service.name`.
    pub(crate) fn resource_str(&self, key: &str) -> Option<&str> {
        as_str(self.resource.get(key))
    }

    pub(crate) fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }

    /// Whether `other` is this span's parent (same trace, parent id matches).
    pub(crate) fn is_child_of(&self, other: &SpanView) -> bool {
        self.trace_id == other.trace_id && self.parent_span_id == other.span_id
    }
}

/// A data point's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PointValue {
    Int(i64),
    Double(f64),
    Histogram {
        count: u64,
        sum: Option<f64>,
        bounds: Vec<f64>,
        bucket_counts: Vec<u64>,
    },
    /// Exponential histograms and summaries: only their count.
    Count(u64),
}

/// One data point with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointView {
    pub(crate) attributes: Attrs,
    pub(crate) value: PointValue,
}

impl PointView {
    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        as_str(self.attributes.get(key))
    }
}

/// The kind of a metric's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Gauge,
    Sum { monotonic: bool },
    Histogram,
    ExponentialHistogram,
    Summary,
    Empty,
}

/// One received metric (one per export: cumulative metrics arrive again at every push).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricView {
    pub(crate) name: String,
    pub(crate) unit: String,
    pub(crate) kind: MetricKind,
    pub(crate) points: Vec<PointView>,
    pub(crate) resource: Attrs,
    pub(crate) scope: String,
}

impl MetricView {
    /// The first data point whose string attributes include every `(key, value)` pair.
    pub(crate) fn point_with(&self, attrs: &[(&str, &str)]) -> Option<&PointView> {
        self.points
            .iter()
            .find(|p| attrs.iter().all(|(k, v)| p.attr_str(k) == Some(*v)))
    }
}

/// One export request as it arrived: which signal, over which protocol, with which headers
/// (HTTP headers, or the gRPC metadata).
#[derive(Debug, Clone)]
pub(crate) struct ExportRecord {
    pub(crate) signal: Signal,
    pub(crate) protocol: Protocol,
    pub(crate) headers: HeaderMap,
}

/// Everything received so far, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Received {
    pub(crate) spans: Vec<SpanView>,
    pub(crate) metrics: Vec<MetricView>,
    pub(crate) exports: Vec<ExportRecord>,
}

/// What the export handlers share.
struct Sink {
    received: watch::Sender<Received>,
    rejecting: AtomicBool,
}

/// A running test collector; stops (closing its port and connections) when dropped.
pub(crate) struct OtlpReceiver {
    protocol: Protocol,
    addr: SocketAddr,
    sink: Arc<Sink>,
    server: Option<AbortHandle>,
}

impl OtlpReceiver {
    /// A receiver on 127.0.0.1:0 that answers every export.
    pub(crate) async fn start(protocol: Protocol) -> Self {
        Self::start_on(protocol, "127.0.0.1:0").await
    }

    /// A receiver on `addr` (e.g. the port of a stopped receiver, to bring a collector back).
    pub(crate) async fn start_on(protocol: Protocol, addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind OTLP receiver");
        let sink = Sink::new();
        let app = match protocol {
            Protocol::Grpc => grpc_routes(&sink),
            Protocol::Http => http_routes(&sink),
        };
        let addr = listener.local_addr().expect("receiver address");
        let server = tokio::spawn(serve(listener, app)).abort_handle();
        Self {
            protocol,
            addr,
            sink,
            server: Some(server),
        }
    }

    /// A receiver that accepts TCP connections and never reads or answers (a hung collector).
    pub(crate) async fn start_stalled(protocol: Protocol) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind OTLP receiver");
        let addr = listener.local_addr().expect("receiver address");
        let server = tokio::spawn(stall(listener)).abort_handle();
        Self {
            protocol,
            addr,
            sink: Sink::new(),
            server: Some(server),
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure an exporter with, e.g. `http://127.0.0.1:4317` (for OTLP/HTTP
    /// the exporter appends `/v1/traces` and `/v1/metrics`).
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every export from now on with UNAVAILABLE (gRPC) / 503 (HTTP), recording nothing;
    /// `false` accepts again.
    pub(crate) fn reject(&self, on: bool) {
        self.sink.rejecting.store(on, Ordering::SeqCst);
    }

    /// Closes the port and every open connection (a collector that went away).
    pub(crate) fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// All spans received so far.
    pub(crate) fn spans(&self) -> Vec<SpanView> {
        self.sink.received.borrow().spans.clone()
    }

    /// All metrics received so far (a metric appears once per export that carried it).
    pub(crate) fn metrics(&self) -> Vec<MetricView> {
        self.sink.received.borrow().metrics.clone()
    }

    /// Every export request received so far.
    pub(crate) fn exports(&self) -> Vec<ExportRecord> {
        self.sink.received.borrow().exports.clone()
    }

    /// Waits until `pred` holds for the spans received so far and returns them; panics with
    /// what did arrive after `timeout`. Wakes on every arrival, no polling.
    pub(crate) async fn wait_for_spans(
        &self,
        pred: impl FnMut(&[SpanView]) -> bool,
        timeout: Duration,
    ) -> Vec<SpanView> {
        let mut pred = pred;
        self.wait_for(|r| pred(&r.spans), timeout, "spans")
            .await
            .spans
            .clone()
    }

    /// Waits for a span named `name` and returns it.
    pub(crate) async fn wait_for_span(&self, name: &str, timeout: Duration) -> SpanView {
        let spans = self
            .wait_for_spans(|s| s.iter().any(|s| s.name == name), timeout)
            .await;
        spans
            .into_iter()
            .find(|s| s.name == name)
            .expect("span just seen")
    }

    /// Waits until `pred` holds for the metrics received so far and returns them.
    pub(crate) async fn wait_for_metrics(
        &self,
        pred: impl FnMut(&[MetricView]) -> bool,
        timeout: Duration,
    ) -> Vec<MetricView> {
        let mut pred = pred;
        self.wait_for(|r| pred(&r.metrics), timeout, "metrics")
            .await
            .metrics
            .clone()
    }

    /// Waits for a metric named `name` with a data point carrying every `(key, value)` string
    /// attribute, and returns the latest such metric.
    pub(crate) async fn wait_for_metric(
        &self,
        name: &str,
        attrs: &[(&str, &str)],
        timeout: Duration,
    ) -> MetricView {
        let matches = |m: &MetricView| m.name == name && m.point_with(attrs).is_some();
        let metrics = self
            .wait_for_metrics(|ms| ms.iter().any(matches), timeout)
            .await;
        metrics
            .into_iter()
            .rev()
            .find(matches)
            .expect("metric just seen")
    }

    async fn wait_for(
        &self,
        mut pred: impl FnMut(&Received) -> bool,
        timeout: Duration,
        what: &str,
    ) -> watch::Ref<'_, Received> {
        let mut rx = self.sink.received.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|r| pred(r))).await {
            Ok(Ok(_)) => self.sink.received.borrow(),
            Ok(Err(_)) => unreachable!("the receiver owns the sender"),
            Err(_) => {
                let r = self.sink.received.borrow();
                let got: Vec<&str> = match what {
                    "spans" => r.spans.iter().map(|s| s.name.as_str()).collect(),
                    _ => r.metrics.iter().map(|m| m.name.as_str()).collect(),
                };
                panic!(
                    "OTLP {what} not as expected within {timeout:?}; {} exports, received: {got:?}",
                    r.exports.len()
                )
            }
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Sink {
    fn new() -> Arc<Self> {
        Arc::new(Sink {
            received: watch::Sender::new(Received::default()),
            rejecting: AtomicBool::new(false),
        })
    }

    fn rejecting(&self) -> bool {
        self.rejecting.load(Ordering::SeqCst)
    }

    fn traces(&self, protocol: Protocol, headers: HeaderMap, req: ExportTraceServiceRequest) {
        let spans = flatten_spans(req);
        self.received.send_modify(|r| {
            r.exports.push(ExportRecord {
                signal: Signal::Traces,
                protocol,
                headers,
            });
            r.spans.extend(spans);
        });
    }

    fn metrics(&self, protocol: Protocol, headers: HeaderMap, req: ExportMetricsServiceRequest) {
        let metrics = flatten_metrics(req);
        self.received.send_modify(|r| {
            r.exports.push(ExportRecord {
                signal: Signal::Metrics,
                protocol,
                headers,
            });
            r.metrics.extend(metrics);
        });
    }
}

/// The gRPC side: the generated tonic services.
struct GrpcSink(Arc<Sink>);

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.0.rejecting() {
            return Err(tonic::Status::unavailable("test receiver rejecting"));
        }
        let (meta, _, req) = request.into_parts();
        self.0.traces(Protocol::Grpc, meta.into_headers(), req);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if self.0.rejecting() {
            return Err(tonic::Status::unavailable("test receiver rejecting"));
        }
        let (meta, _, req) = request.into_parts();
        self.0.metrics(Protocol::Grpc, meta.into_headers(), req);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn grpc_routes(sink: &Arc<Sink>) -> Router {
    let traces = TraceServiceServer::new(GrpcSink(Arc::clone(sink)))
        .accept_compressed(CompressionEncoding::Gzip);
    let metrics = MetricsServiceServer::new(GrpcSink(Arc::clone(sink)))
        .accept_compressed(CompressionEncoding::Gzip);
    Router::new()
        .route_service(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            traces,
        )
        .route_service(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            metrics,
        )
}

/// The OTLP/HTTP side: protobuf bodies on `/v1/traces` and `/v1/metrics`.
fn http_routes(sink: &Arc<Sink>) -> Router {
    Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/metrics", post(http_metrics))
        .with_state(Arc::clone(sink))
}

async fn http_traces(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    match http_decode::<ExportTraceServiceRequest>(&sink, &headers, &body) {
        Ok(req) => {
            sink.traces(Protocol::Http, headers, req);
            protobuf(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn http_metrics(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    match http_decode::<ExportMetricsServiceRequest>(&sink, &headers, &body) {
        Ok(req) => {
            sink.metrics(Protocol::Http, headers, req);
            protobuf(ExportMetricsServiceResponse::default().encode_to_vec())
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Checks the content type, inflates gzip and decodes; a refusal is the HTTP answer.
fn http_decode<M: Message + Default>(
    sink: &Sink,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<M, (StatusCode, String)> {
    if sink.rejecting() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "test receiver rejecting".into(),
        ));
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header(header::CONTENT_TYPE) != Some("application/x-protobuf") {
        let msg = "only application/x-protobuf".into();
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, msg));
    }
    let bad = |e: &dyn std::error::Error| (StatusCode::BAD_REQUEST, e.to_string());
    let mut inflated = Vec::new();
    let body = match header(header::CONTENT_ENCODING) {
        None | Some("identity") => body,
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut inflated)
                .map_err(|e| bad(&e))?;
            &inflated
        }
        Some(other) => {
            let msg = format!("unsupported Content-Encoding {other}");
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, msg));
        }
    };
    M::decode(body).map_err(|e| bad(&e))
}

fn protobuf(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
}

/// Serves HTTP/1.1 and h2c (gRPC) connections until aborted; the abort drops the listener and
/// every open connection with it.
async fn serve(listener: TcpListener, app: Router) {
    let service = TowerToHyperService::new(app);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = service.clone();
                conns.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Accepts and holds connections without reading them until aborted.
async fn stall(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        held.push(stream);
    }
}

fn flatten_spans(req: ExportTraceServiceRequest) -> Vec<SpanView> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = attrs(rs.resource.map(|r| r.attributes).unwrap_or_default());
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(SpanView {
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent_span_id: hex::encode(&s.parent_span_id),
                    trace_state: s.trace_state,
                    name: s.name,
                    kind: span_kind(s.kind),
                    attributes: attrs(s.attributes),
                    status: match status.code {
                        1 => SpanStatus::Ok,
                        2 => SpanStatus::Error,
                        _ => SpanStatus::Unset,
                    },
                    status_message: status.message,
                    links: s.links.into_iter().map(link).collect(),
                    events: s.events.into_iter().map(|e| e.name).collect(),
                    start_unix_nano: s.start_time_unix_nano,
                    end_unix_nano: s.end_time_unix_nano,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn span_kind(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => SpanKind::Internal,
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn link(l: span::Link) -> LinkView {
    LinkView {
        trace_id: hex::encode(&l.trace_id),
        span_id: hex::encode(&l.span_id),
        attributes: attrs(l.attributes),
    }
}

fn flatten_metrics(req: ExportMetricsServiceRequest) -> Vec<MetricView> {
    let mut out = Vec::new();
    for rm in req.resource_metrics {
        let resource = attrs(rm.resource.map(|r| r.attributes).unwrap_or_default());
        for sm in rm.scope_metrics {
            let scope = sm.scope.map(|s| s.name).unwrap_or_default();
            for m in sm.metrics {
                let (kind, points) = metric_points(m.data);
                out.push(MetricView {
                    name: m.name,
                    unit: m.unit,
                    kind,
                    points,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn metric_points(data: Option<metric::Data>) -> (MetricKind, Vec<PointView>) {
    let number = |p: opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| PointView {
        attributes: attrs(p.attributes),
        value: match p.value {
            Some(number_data_point::Value::AsInt(i)) => PointValue::Int(i),
            Some(number_data_point::Value::AsDouble(d)) => PointValue::Double(d),
            None => PointValue::Count(0),
        },
    };
    match data {
        Some(metric::Data::Gauge(g)) => (
            MetricKind::Gauge,
            g.data_points.into_iter().map(number).collect(),
        ),
        Some(metric::Data::Sum(s)) => (
            MetricKind::Sum {
                monotonic: s.is_monotonic,
            },
            s.data_points.into_iter().map(number).collect(),
        ),
        Some(metric::Data::Histogram(h)) => (
            MetricKind::Histogram,
            h.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Histogram {
                        count: p.count,
                        sum: p.sum,
                        bounds: p.explicit_bounds,
                        bucket_counts: p.bucket_counts,
                    },
                })
                .collect(),
        ),
        Some(metric::Data::ExponentialHistogram(h)) => (
            MetricKind::ExponentialHistogram,
            h.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Count(p.count),
                })
                .collect(),
        ),
        Some(metric::Data::Summary(s)) => (
            MetricKind::Summary,
            s.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Count(p.count),
                })
                .collect(),
        ),
        None => (MetricKind::Empty, Vec::new()),
    }
}

fn attrs(kvs: Vec<KeyValue>) -> Attrs {
    kvs.into_iter()
        .map(|kv| {
            (
                kv.key,
                kv.value.map_or(AttrValue::Other(String::new()), value),
            )
        })
        .collect()
}

fn value(v: AnyValue) -> AttrValue {
    match v.value {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::ArrayValue(a)) => {
            AttrValue::Array(a.values.into_iter().map(value).collect())
        }
        other => AttrValue::Other(format!("{other:?}")),
    }
}

fn as_str(v: Option<&AttrValue>) -> Option<&str> {
    match v {
        Some(AttrValue::Str(s)) => Some(s),
        _ => None,
    }
}
