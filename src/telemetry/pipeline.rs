//! Builds the gateway's OpenTelemetry pipeline from `telemetry:`: the resource, the span queue and
//! its OTLP sink (gRPC or HTTP/protobuf, spans encoded by the gateway itself), the SDK's meter
//! provider with its Prometheus registry and OTLP reader; and takes it down (flushing) at shutdown.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::warn;

use super::export::otlp::Framing;
use super::export::sink::OtlpSink;
use super::export::{QueueProcessor, QueueWorker, SpanQueue, SpanSink};
use super::metrics::Metrics;
use crate::catalog::Catalog;
use crate::config::{
    BackendConfig, OtlpConfig, OtlpProtocol, PayloadRule, TelemetryConfig, TransportConfig,
};
use crate::protocol::ProtocolVersion;

/// How long shutdown waits for queued spans to be exported.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// Span export: the queue, and which root traces are sampled.
#[derive(Debug)]
pub(crate) struct Spans {
    pub(crate) queue: SpanQueue,
    ratio: f64,
}

impl Spans {
    /// The `TraceIdRatioBased` rule: the trace id's low 8 bytes against the ratio.
    pub(crate) fn sample(&self, trace_id: [u8; 16]) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        let x = u64::from_be_bytes(low) >> 1;
        (x as f64) < self.ratio * (1u64 << 63) as f64
    }
}

/// What spans say about a backend, worked out once.
#[derive(Debug)]
pub(crate) struct BackendFacts {
    pub(crate) name: Arc<str>,
    /// `pipe` (stdio) or `tcp`.
    pub(crate) transport: &'static str,
    pub(crate) protocol: Option<&'static str>,
    pub(crate) server: Option<(Arc<str>, u16)>,
}

impl BackendFacts {
    fn of(b: &BackendConfig) -> BackendFacts {
        let url_facts = |url: &str, protocol| {
            let server = url::Url::parse(url)
                .ok()
                .and_then(|u| Some((Arc::from(u.host_str()?), u.port_or_known_default()?)));
            ("tcp", Some(protocol), server)
        };
        let (transport, protocol, server) = match &b.transport {
            TransportConfig::Stdio { .. } => ("pipe", None, None),
            TransportConfig::StreamableHttp { url, .. } => url_facts(url, "http"),
            TransportConfig::WebSocket { url, .. } => url_facts(url, "websocket"),
        };
        BackendFacts {
            name: Arc::from(b.name.as_str()),
            transport,
            protocol,
            server,
        }
    }
}

/// The gateway's telemetry: instruments, span export, the scrape registry.
pub struct Telemetry {
    pub metrics: Metrics,
    pub(crate) spans: Option<Spans>,
    pub(crate) backends: Vec<BackendFacts>,
    payloads: Vec<PayloadRule>,
    catalog: OnceLock<Arc<Catalog>>,
    meter: opentelemetry::metrics::Meter,
    meter_provider: Option<SdkMeterProvider>,
    tracer_provider: Option<SdkTracerProvider>,
    prometheus: Option<prometheus::Registry>,
    worker: Mutex<Option<QueueWorker>>,
    /// Audit records dropped because the writer's queue was full.
    pub(crate) audit_dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("spans", &self.spans.is_some())
            .field("prometheus", &self.prometheus.is_some())
            .finish_non_exhaustive()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("switchboard")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

impl Telemetry {
    /// No export and no-op instruments (benches, and a `telemetry off` baseline).
    pub fn disabled(backends: &[BackendConfig]) -> Telemetry {
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry::metrics::noop::NoopMeterProvider::new(),
            "switchboard",
        );
        Telemetry {
            metrics: Metrics::new(&meter, false),
            spans: None,
            backends: backends.iter().map(BackendFacts::of).collect(),
            payloads: Vec::new(),
            catalog: OnceLock::new(),
            meter,
            meter_provider: None,
            tracer_provider: None,
            prometheus: None,
            worker: Mutex::new(None),
            audit_dropped: Default::default(),
        }
    }

    /// Builds the pipeline (inside the runtime: the exporters spawn onto it).
    pub fn start(cfg: &TelemetryConfig, backends: &[BackendConfig]) -> anyhow::Result<Telemetry> {
        Telemetry::build(cfg, backends, |t, resource| {
            if let (true, Some(o)) = (cfg.traces.enabled, &cfg.otlp) {
                t.export_spans(OtlpSink::new(o)?, cfg, resource);
            }
            Ok(())
        })
    }

    /// [`Telemetry::start`], with encoded span batches going to `sink` whatever `cfg.otlp` says
    /// (benches: the span path without a collector). Inside the runtime.
    #[doc(hidden)]
    pub fn with_span_sink<S: SpanSink>(
        cfg: &TelemetryConfig,
        backends: &[BackendConfig],
        sink: S,
    ) -> anyhow::Result<Telemetry> {
        Telemetry::build(cfg, backends, |t, resource| {
            t.export_spans(sink, cfg, resource);
            Ok(())
        })
    }

    /// The metrics side from `cfg`; `spans` sets up span export (or not).
    fn build(
        cfg: &TelemetryConfig,
        backends: &[BackendConfig],
        spans: impl FnOnce(&mut Telemetry, Resource) -> anyhow::Result<()>,
    ) -> anyhow::Result<Telemetry> {
        let resource = resource(cfg);
        let mut t = Telemetry::disabled(backends);
        t.payloads = cfg.payloads.clone();
        let mut mp = SdkMeterProvider::builder().with_resource(resource.clone());
        let mut metered = false;
        if cfg.metrics.prometheus {
            let registry = prometheus::Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .scope_info_enabled(false)
                .build()
                .context("building the Prometheus exporter")?;
            mp = mp.with_reader(exporter);
            t.prometheus = Some(registry);
            metered = true;
        }
        if let (true, Some(o)) = (cfg.metrics.otlp, &cfg.otlp) {
            let exporter = metric_exporter(o)?;
            // On the runtime: the exporters' clients (tonic, hyper) need its reactor.
            mp = mp.with_reader(
                PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
                    .with_interval(cfg.metrics.otlp_interval)
                    .build(),
            );
            metered = true;
        }
        if metered {
            let provider = mp.build();
            t.meter = provider.meter_with_scope(scope());
            t.metrics = Metrics::new(&t.meter, cfg.metrics.tool_labels);
            t.meter_provider = Some(provider);
        }
        spans(&mut t, resource)?;
        t.observe_drops();
        Ok(t)
    }

    fn export_spans<S: SpanSink>(&mut self, sink: S, cfg: &TelemetryConfig, resource: Resource) {
        let (queue, worker) = SpanQueue::start(
            sink,
            Framing::new(&resource, &scope()),
            cfg.traces.queue,
            cfg.traces.batch,
            cfg.traces.interval,
        );
        self.tracer_provider = Some(
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_span_processor(QueueProcessor(queue.clone()))
                .build(),
        );
        self.spans = Some(Spans {
            queue,
            ratio: cfg.traces.sample_ratio,
        });
        *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(worker);
    }

    /// The tracer for the `tracing` bridge, when spans are exported.
    pub fn tracer(&self) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        use opentelemetry::trace::TracerProvider as _;
        self.tracer_provider
            .as_ref()
            .map(|p| p.tracer_with_scope(scope()))
    }

    /// Lets gauges read backend state and bridged versions from the catalog.
    pub fn attach_catalog(&self, catalog: Arc<Catalog>) {
        if self.catalog.set(catalog.clone()).is_err() {
            return;
        }
        let names: Vec<Arc<str>> = self.backends.iter().map(|b| b.name.clone()).collect();
        let _up = self
            .meter
            .u64_observable_gauge("switchboard.backend.up")
            .with_description("1 while the gateway's discovery connection to the backend is up")
            .with_callback(move |o| {
                for (i, n) in names.iter().enumerate() {
                    o.observe(
                        u64::from(catalog.is_up(i)),
                        &[KeyValue::new("switchboard.backend", n.clone())],
                    );
                }
            })
            .build();
    }

    /// Lets the audit counters be read as metrics.
    pub fn attach_audit(&self, audit: crate::telemetry::audit::AuditHandle) {
        let metrics = self.metrics.clone();
        audit.on_fsync(Box::new(move |d| metrics.audit_synced(d)));
        let _records = self
            .meter
            .u64_observable_counter("switchboard.audit.records")
            .with_unit("{record}")
            .with_description("Audit records written")
            .with_callback(move |o| o.observe(audit.stats().records_written, &[]))
            .build();
    }

    fn observe_drops(&self) {
        let spans = self.spans.as_ref().map(|s| s.queue.clone());
        let audit = self.audit_dropped.clone();
        let _dropped = self
            .meter
            .u64_observable_counter("switchboard.telemetry.dropped")
            .with_description("Spans and audit records dropped because a queue was full")
            .with_callback(move |o| {
                o.observe(
                    spans.as_ref().map_or(0, SpanQueue::dropped),
                    &[KeyValue::new("switchboard.signal", "spans")],
                );
                o.observe(
                    audit.load(std::sync::atomic::Ordering::Relaxed),
                    &[KeyValue::new("switchboard.signal", "audit")],
                );
            })
            .build();
    }

    /// The version the gateway speaks with a backend (from its discovery handshake).
    pub(crate) fn backend_version(&self, backend: usize) -> Option<&'static str> {
        let snap = self.catalog.get()?.snapshot(backend)?;
        ProtocolVersion::parse(&snap.info.protocol_version).map(ProtocolVersion::as_str)
    }

    /// Whether arguments/results of this tool are recorded on spans (`telemetry.payloads`).
    pub(crate) fn records_payload(&self, backend: usize, tool: &str) -> bool {
        let Some(b) = self.backends.get(backend) else {
            return false;
        };
        self.payloads.iter().any(|r| {
            *r.backend == *b.name
                && r.tools
                    .as_ref()
                    .is_none_or(|ts| ts.iter().any(|t| t == tool))
        })
    }

    /// `/metrics`: OpenMetrics when the scraper asks for it, else Prometheus text 0.0.4.
    pub fn scrape(&self, accept: Option<&str>) -> Option<(&'static str, String)> {
        let registry = self.prometheus.as_ref()?;
        let families = registry.gather();
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Some((
                super::openmetrics::CONTENT_TYPE,
                super::openmetrics::encode(&families),
            ))
        } else {
            let mut out = String::new();
            if let Err(error) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
                warn!(%error, "Could not encode metrics");
            }
            Some(("text/plain; version=0.0.4; charset=utf-8", out))
        }
    }

    /// Counts an audit record dropped because the writer's queue was full.
    pub fn audit_dropped(&self) {
        self.audit_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Spans dropped because the export queue was full.
    pub fn spans_dropped(&self) -> u64 {
        self.spans.as_ref().map_or(0, |s| s.queue.dropped())
    }

    /// Exports what is queued (spans now; metrics with a final push).
    pub async fn flush(&self) {
        if let Some(s) = &self.spans {
            s.queue.flush().await;
        }
    }

    /// Flushes and stops the exporters, within a couple of seconds even when the collector is
    /// down (what is still queued then is lost, and was already in the audit log).
    pub async fn shutdown(&self) {
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, self.flush()).await;
        if let Some(p) = &self.meter_provider {
            // The final push blocks its thread for up to the OTLP timeout: wait for it briefly.
            let p = p.clone();
            let push = tokio::task::spawn_blocking(move || p.shutdown());
            let _ = tokio::time::timeout(SHUTDOWN_FLUSH, push).await;
        }
        if let Some(p) = &self.tracer_provider {
            let _ = p.shutdown();
        }
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = worker {
            w.finish(Duration::from_millis(100)).await;
        }
    }
}

fn resource(cfg: &TelemetryConfig) -> Resource {
    let instance = cfg.instance_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    });
    Resource::builder_empty()
        .with_service_name(cfg.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance),
        ])
        .build()
}

fn signal_url(o: &OtlpConfig, path: &str) -> String {
    format!("{}{path}", o.endpoint)
}

fn metric_exporter(o: &OtlpConfig) -> anyhow::Result<opentelemetry_otlp::MetricExporter> {
    let b = opentelemetry_otlp::MetricExporter::builder();
    let e = match o.protocol {
        OtlpProtocol::Grpc => grpc(b.with_tonic(), o)?.build(),
        OtlpProtocol::HttpProtobuf => http(b.with_http(), o, "/v1/metrics")?.build(),
    };
    e.context("building the OTLP metric exporter")
}

/// The gRPC side of either exporter: endpoint as given, timeout, headers as metadata.
fn grpc<B: WithExportConfig + WithTonicConfig>(b: B, o: &OtlpConfig) -> anyhow::Result<B> {
    Ok(b.with_endpoint(o.endpoint.clone())
        .with_timeout(o.timeout)
        .with_metadata(metadata(o)?))
}

/// The HTTP/protobuf side: the signal's path appended, our hyper-rustls client.
fn http<B: WithExportConfig + WithHttpConfig>(
    b: B,
    o: &OtlpConfig,
    path: &str,
) -> anyhow::Result<B> {
    Ok(b.with_endpoint(signal_url(o, path))
        .with_timeout(o.timeout)
        .with_headers(headers(o))
        .with_http_client(HyperClient::new(o.timeout)?))
}

fn headers(o: &OtlpConfig) -> std::collections::HashMap<String, String> {
    o.headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect()
}

fn metadata(
    o: &OtlpConfig,
) -> anyhow::Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap> {
    Ok(
        opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(
            super::export::sink::headers(o)?,
        ),
    )
}

/// OTLP/HTTP over the gateway's own hyper + rustls client (no second HTTP stack).
#[derive(Debug, Clone)]
struct HyperClient(crate::upstream::http::Client, Duration);

impl HyperClient {
    fn new(timeout: Duration) -> anyhow::Result<HyperClient> {
        let t = crate::config::Timeouts {
            connect: timeout,
            request: timeout,
        };
        let c = crate::upstream::http::build_client(&t)
            .map_err(|e| anyhow::anyhow!("building the OTLP HTTP client: {e}"))?;
        Ok(HyperClient(c, timeout))
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HyperClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let req = http::Request::from_parts(parts, Full::new(body));
        let resp = tokio::time::timeout(self.1, self.0.request(req)).await??;
        let (parts, body) = resp.into_parts();
        let bytes = tokio::time::timeout(self.1, body.collect())
            .await??
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes))
    }
}
