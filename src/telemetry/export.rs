//! The span queue: a bounded buffer between the request path and the OTLP export. What is queued
//! is spans already encoded as OTLP protobuf (`export/otlp.rs`); one task frames a batch of them into an
//! `ExportTraceServiceRequest` and hands it to a [`SpanSink`] (gRPC or HTTP/protobuf, `export/sink.rs`).
//! Pushing never waits; when the buffer is full (collector down or slow) the spans are dropped
//! and counted.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use otlp::{Framing, write_sdk_span};

pub(crate) mod otlp;
pub(crate) mod sink;

/// How long one export may take before the batch is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries of a batch the collector could not take for now (then it is dropped), with the
/// OTLP exporter's backoff: 100 ms, doubling; all within [`EXPORT_TIMEOUT`].
const RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why an export failed (never carries the configured headers).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The collector answered with an error; `retry` when it may take the batch later
    /// (gRPC `UNAVAILABLE` & co., HTTP 429/502/503/504).
    #[error("collector answered {message}")]
    Rejected { message: String, retry: bool },
    /// No answer: the connection failed (retried).
    #[error("transport: {0}")]
    Transport(String),
    #[error("timed out")]
    Timeout,
}

impl ExportError {
    fn retryable(&self) -> bool {
        match self {
            ExportError::Rejected { retry, .. } => *retry,
            ExportError::Transport(_) => true,
            ExportError::Timeout => false,
        }
    }
}

/// Where framed `ExportTraceServiceRequest`s go.
pub trait SpanSink: Send + Sync + 'static {
    /// Sends one encoded `ExportTraceServiceRequest`.
    fn export(&self, request: Bytes) -> impl Future<Output = Result<(), ExportError>> + Send;
}

/// Spans encoded as consecutive `ScopeSpans.spans` fields, and how many there are.
#[derive(Debug)]
pub struct Encoded {
    bytes: Vec<u8>,
    spans: usize,
}

impl Encoded {
    pub(crate) fn new(bytes: Vec<u8>, spans: usize) -> Encoded {
        Encoded { bytes, spans }
    }
}

/// The producer side, cloned into every place that ends spans.
#[derive(Clone, Debug)]
pub struct SpanQueue {
    tx: mpsc::Sender<Encoded>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// Spans queued and not yet taken by the worker, against `capacity`.
    pending: Arc<AtomicUsize>,
    capacity: usize,
    dropped: Arc<AtomicU64>,
    exported: Arc<AtomicU64>,
}

/// The queue's consumer, running until every producer is gone.
pub struct QueueWorker(JoinHandle<()>);

impl SpanQueue {
    /// Starts the export task. `capacity` spans may wait; about `batch` go out per export, at
    /// least every `interval`, framed by `framing`.
    pub(crate) fn start<S: SpanSink>(
        sink: S,
        framing: Framing,
        capacity: usize,
        batch: usize,
        interval: Duration,
    ) -> (Self, QueueWorker) {
        let capacity = capacity.max(1);
        // Every item holds at least one span: `capacity` items never fill before the count does.
        let (tx, rx) = mpsc::channel(capacity);
        let (flush, flush_rx) = mpsc::unbounded_channel();
        let q = SpanQueue {
            tx,
            flush,
            pending: Arc::new(AtomicUsize::new(0)),
            capacity,
            dropped: Arc::new(AtomicU64::new(0)),
            exported: Arc::new(AtomicU64::new(0)),
        };
        let worker = Worker {
            sink,
            framing,
            batch: batch.max(1),
            buf: Vec::new(),
            spans: 0,
            pending: q.pending.clone(),
            exported: q.exported.clone(),
        };
        let handle = tokio::spawn(worker.run(rx, flush_rx, interval));
        (q, QueueWorker(handle))
    }

    /// Queues finished spans; never blocks. Returns false (and counts them) when the queue is full.
    pub fn push(&self, e: Encoded) -> bool {
        let n = e.spans;
        if self.pending.fetch_add(n, Ordering::AcqRel) + n > self.capacity {
            self.pending.fetch_sub(n, Ordering::AcqRel);
            self.drop_spans(n);
            return false;
        }
        match self.tx.try_send(e) {
            Ok(()) => true,
            Err(_) => {
                self.pending.fetch_sub(n, Ordering::AcqRel);
                self.drop_spans(n);
                false
            }
        }
    }

    fn drop_spans(&self, n: usize) {
        if self.dropped.fetch_add(n as u64, Ordering::Relaxed) == 0 {
            warn!(
                "Span export queue full: dropping spans (counted in switchboard.telemetry.dropped)"
            );
        }
    }

    /// Spans dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted so far.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Exports everything queued so far (bounded by the export timeout).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.flush.send(ack).is_ok() {
            let _ = tokio::time::timeout(EXPORT_TIMEOUT, done).await;
        }
    }
}

impl QueueWorker {
    /// Waits (bounded) for the last spans to be exported once every producer is dropped.
    pub async fn finish(self, within: Duration) {
        let _ = tokio::time::timeout(within, self.0).await;
    }
}

/// The export task's state: the spans of the batch being gathered.
struct Worker<S> {
    sink: S,
    framing: Framing,
    batch: usize,
    /// Encoded spans of the current batch, back to back.
    buf: Vec<u8>,
    spans: usize,
    pending: Arc<AtomicUsize>,
    exported: Arc<AtomicU64>,
}

impl<S: SpanSink> Worker<S> {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Encoded>,
        mut flush: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
        interval: Duration,
    ) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                Some(ack) = flush.recv() => {
                    while let Ok(e) = rx.try_recv() {
                        self.take(e).await;
                    }
                    self.export().await;
                    let _ = ack.send(());
                }
                e = rx.recv() => match e {
                    Some(e) => self.take(e).await,
                    None => break,
                },
                _ = tick.tick() => self.export().await,
            }
        }
        self.export().await;
    }

    /// Adds queued spans to the batch; exports when it is full.
    async fn take(&mut self, e: Encoded) {
        self.pending.fetch_sub(e.spans, Ordering::AcqRel);
        // Copied into the batch buffer, which keeps its allocation from batch to batch.
        self.buf.extend_from_slice(&e.bytes);
        self.spans += e.spans;
        if self.spans >= self.batch {
            self.export().await;
        }
    }

    async fn export(&mut self) {
        if self.spans == 0 {
            return;
        }
        let n = std::mem::take(&mut self.spans);
        let mut body = Vec::new();
        self.framing.request(&self.buf, &mut body);
        self.buf.clear();
        let body = Bytes::from(body);
        let deadline = tokio::time::Instant::now() + EXPORT_TIMEOUT;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..=RETRIES {
            match tokio::time::timeout_at(deadline, self.sink.export(body.clone())).await {
                Ok(Ok(())) => {
                    self.exported.fetch_add(n as u64, Ordering::Relaxed);
                    return;
                }
                Ok(Err(e))
                    if e.retryable()
                        && attempt < RETRIES
                        && tokio::time::Instant::now() + backoff < deadline =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Ok(Err(error)) => {
                    warn!(%error, spans = n, "Span export failed");
                    return;
                }
                Err(_) => {
                    warn!(spans = n, "Span export timed out");
                    return;
                }
            }
        }
    }
}

/// The same queue as a span processor, for spans made through the `tracing` bridge.
#[derive(Debug)]
pub struct QueueProcessor(pub SpanQueue);

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            let mut buf = Vec::new();
            write_sdk_span(&mut buf, span);
            self.0.push(Encoded::new(buf, 1));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    use std::sync::Mutex;

    /// Keeps what it is sent.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<Bytes>>>);

    impl SpanSink for Memory {
        async fn export(&self, request: Bytes) -> Result<(), ExportError> {
            self.0.lock().unwrap().push(request);
            Ok(())
        }
    }

    fn framing() -> Framing {
        Framing::new(
            &opentelemetry_sdk::Resource::builder_empty()
                .with_service_name("t")
                .build(),
            &opentelemetry::InstrumentationScope::builder("switchboard").build(),
        )
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sink = Memory::default();
            let (q, worker) =
                SpanQueue::start(sink.clone(), framing(), 4, 2, Duration::from_secs(60));
            // The worker has not run yet (current-thread runtime): only 4 spans fit, whether
            // they come one or two per push.
            assert!(q.push(spans(2)));
            let accepted = (0..10).filter(|_| q.push(spans(1))).count();
            assert_eq!(accepted, 2);
            assert!(!q.push(spans(2)));
            assert_eq!(q.dropped(), 10);
            q.flush().await;
            let got: usize = sink
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|b| {
                    let r = ExportTraceServiceRequest::decode(b.clone()).unwrap();
                    assert_eq!(r.resource_spans.len(), 1);
                    r.resource_spans[0].scope_spans[0].spans.len()
                })
                .sum();
            assert_eq!(got, 4);
            assert_eq!(q.exported(), 4);
            // Room again after the export.
            assert!(q.push(spans(2)));
            drop(q);
            worker.finish(Duration::from_secs(1)).await;
            assert_eq!(
                sink.0.lock().unwrap().len(),
                3,
                "2 batches of 2, then the last on close"
            );
        });
    }

    fn spans(n: usize) -> Encoded {
        let mut buf = Vec::new();
        for _ in 0..n {
            write_sdk_span(&mut buf, span());
        }
        Encoded::new(buf, n)
    }

    fn span() -> SpanData {
        SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Server,
            name: "t".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }
}
