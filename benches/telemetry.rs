//! The telemetry of one `tools/call` on the request path: `CallEvent::start` + `begin_hop` +
//! `finish`, as the session actor does it (issue #4), with
//! - `disabled`: `Telemetry::disabled` (no-op instruments, no spans);
//! - `metrics`: the meter provider with the Prometheus registry (no OTLP);
//! - `metrics_spans`: + SERVER and CLIENT spans encoded as OTLP protobuf and pushed to the span
//!   queue, whose worker frames them into export requests for a sink that drops them (no
//!   collector: the gateway-side cost only);
//! - `metrics_spans_audit`: + the audit record built and queued to a real `AuditLog` writer in a
//!   temp dir (interval durability).
//!
//! The time is the request path's only: the span queue's and the audit writer's tasks run on
//! another runtime thread. `cargo bench --bench telemetry` (about half a minute).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use switchboard::config::{AuditConfig, AuditDurability, Config};
use switchboard::telemetry::audit::{AuditHandle, AuditLog};
use switchboard::telemetry::export::{ExportError, SpanSink};
use switchboard::telemetry::{CallEvent, Finish, NetProtocol, Origin, Telemetry};

/// Takes export requests and forgets them.
#[derive(Debug)]
struct NullSink;

impl SpanSink for NullSink {
    async fn export(&self, request: Bytes) -> Result<(), ExportError> {
        drop(black_box(request));
        Ok(())
    }
}

const YAML: &str = "backends:\n  - {name: lab, transport: streamable-http, url: 'http://127.0.0.1:9/mcp'}\n\
                    telemetry: {metrics: {prometheus: true}}\n";

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// The params of a `tools/call` as the gateway receives it.
fn params() -> Map<String, Value> {
    match json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": "t-1"}}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// One call's telemetry, the way `session/actor.rs` drives it.
fn one_call(tel: &Telemetry, params: &Map<String, Value>, audit: Option<&AuditHandle>) {
    let peer: SocketAddr = "127.0.0.1:51234".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let origin = Origin::new(
        NetProtocol::Http,
        Some(peer),
        Some(switchboard::telemetry::call::Local::of(local)),
        None,
    );
    let mut call = CallEvent::start(
        tel,
        origin,
        "tools/call",
        Some(switchboard::protocol::RequestId::Num(42)),
        Some(params),
        Some("3f2a9c0e5b7d4e1f".into()),
        "2025-11-25",
    );
    call.decision.backend = Some("lab".to_string());
    call.decision.original_name = Some("echo".to_string());
    call.decision.decision.get_or_insert("allow");
    let traceparent = call.begin_hop(tel, 0, "echo", 7, params.get("arguments"));
    black_box(traceparent);
    let record = call.finish(tel, Finish::ok(), audit.is_some());
    if let (Some(r), Some(a)) = (record, audit) {
        black_box(a.record(r));
    }
}

/// Removes the rotated audit files (`audit.jsonl.N`): the writer never touches them again.
fn prune_rotated(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("audit.jsonl.") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn telemetry(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg = Config::from_yaml(YAML).unwrap();
    assert!(cfg.telemetry.otlp.is_none(), "unset OTEL_EXPORTER_OTLP_*");
    let params = params();
    let dir = tempfile::tempdir().unwrap();
    let (disabled, metrics, spans, audit) = rt.block_on(async {
        let audit = AuditLog::start(AuditConfig {
            path: dir.path().join("audit.jsonl"),
            durability: AuditDurability::Interval(Duration::from_millis(50)),
            max_file_bytes: 16 << 20,
        })
        .await
        .unwrap();
        (
            Telemetry::disabled(&cfg.backends),
            Telemetry::start(&cfg.telemetry, &cfg.backends).unwrap(),
            Telemetry::with_span_sink(&cfg.telemetry, &cfg.backends, NullSink).unwrap(),
            audit,
        )
    });
    let (handle, writer) = audit;
    let mut g = c.benchmark_group("telemetry_per_call");
    g.bench_function("disabled", |b| {
        b.iter(|| one_call(&disabled, &params, None))
    });
    g.bench_function("metrics", |b| b.iter(|| one_call(&metrics, &params, None)));
    // Timed in batches with the queue drained in between, so that no span is dropped (a
    // dropped span costs less than a queued one).
    g.bench_function("metrics_spans", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for chunk in chunks(iters) {
                let t = Instant::now();
                for _ in 0..chunk {
                    one_call(&spans, &params, None);
                }
                total += t.elapsed();
                rt.block_on(spans.flush());
            }
            total
        })
    });
    g.bench_function("metrics_spans_audit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for chunk in chunks(iters) {
                let t = Instant::now();
                for _ in 0..chunk {
                    one_call(&spans, &params, Some(&handle));
                }
                total += t.elapsed();
                rt.block_on(async {
                    spans.flush().await;
                    handle.flush().await.unwrap();
                });
                prune_rotated(dir.path());
            }
            total
        })
    });
    g.finish();
    let dropped = (spans.spans_dropped(), handle.dropped());
    drop(handle);
    let stats = rt.block_on(writer).unwrap().unwrap();
    eprintln!(
        "telemetry bench: spans dropped {}, audit records dropped {}, audit records written {}",
        dropped.0, dropped.1, stats.records_written
    );
    assert_eq!(
        dropped,
        (0, 0),
        "queues overflowed: the numbers are too low"
    );
    rt.block_on(async {
        spans.shutdown().await;
        metrics.shutdown().await;
    });
}

/// Iterations in batches that fit the span queue (2 spans per call, 4096 slots) and the audit
/// queue (4096 records).
fn chunks(iters: u64) -> impl Iterator<Item = u64> {
    const CHUNK: u64 = 1024;
    (0..iters.div_ceil(CHUNK)).map(move |i| CHUNK.min(iters - i * CHUNK))
}

criterion_group! {
    name = benches;
    config = config();
    targets = telemetry
}
criterion_main!(benches);
