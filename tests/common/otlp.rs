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
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tonic::codec::CompressionEncoding;

#[path = "otlp/views.rs"]
mod views;

#[allow(unused_imports)] // each test uses only some of them
pub(crate) use views::{
    AttrValue, Attrs, LinkView, MetricKind, MetricView, PointValue, PointView, SpanKind,
    SpanStatus, SpanView,
};
use views::{flatten_metrics, flatten_spans};

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
