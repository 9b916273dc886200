//! The span queue: a bounded buffer between the request path and the OTLP exporter. Pushing never
//! waits; when the buffer is full (collector down or slow) the span is dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

/// How long one export may take before the batch is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The producer side, cloned into every place that ends spans.
#[derive(Clone, Debug)]
pub struct SpanQueue {
    tx: mpsc::Sender<SpanData>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    dropped: Arc<AtomicU64>,
    exported: Arc<AtomicU64>,
}

/// The queue's consumer, running until every producer is gone.
pub struct QueueWorker(JoinHandle<()>);

impl SpanQueue {
    /// Starts the export task. `capacity` spans may wait; `batch` go out per export, at least
    /// every `interval`.
    pub fn start<E>(
        exporter: E,
        capacity: usize,
        batch: usize,
        interval: Duration,
    ) -> (Self, QueueWorker)
    where
        E: SpanExporter + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (flush, flush_rx) = mpsc::unbounded_channel();
        let q = SpanQueue {
            tx,
            flush,
            dropped: Arc::new(AtomicU64::new(0)),
            exported: Arc::new(AtomicU64::new(0)),
        };
        let worker = tokio::spawn(run(
            exporter,
            rx,
            flush_rx,
            batch.max(1),
            interval,
            q.exported.clone(),
        ));
        (q, QueueWorker(worker))
    }

    /// Queues a finished span; never blocks. Returns false (and counts it) when the queue is full.
    pub fn push(&self, span: SpanData) -> bool {
        match self.tx.try_send(span) {
            Ok(()) => true,
            Err(_) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!(
                        "Span export queue full: dropping spans (counted in switchboard.telemetry.dropped)"
                    );
                }
                false
            }
        }
    }

    /// Spans dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans the exporter accepted so far.
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

async fn run<E: SpanExporter>(
    exporter: E,
    mut rx: mpsc::Receiver<SpanData>,
    mut flush: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    batch: usize,
    interval: Duration,
    exported: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(batch);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            Some(ack) = flush.recv() => {
                while let Ok(s) = rx.try_recv() {
                    buf.push(s);
                    if buf.len() >= batch {
                        export(&exporter, &mut buf, &exported).await;
                    }
                }
                export(&exporter, &mut buf, &exported).await;
                let _ = ack.send(());
            }
            span = rx.recv() => match span {
                Some(s) => {
                    buf.push(s);
                    if buf.len() >= batch {
                        export(&exporter, &mut buf, &exported).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => export(&exporter, &mut buf, &exported).await,
        }
    }
    export(&exporter, &mut buf, &exported).await;
    let _ = exporter.shutdown();
}

async fn export<E: SpanExporter>(exporter: &E, buf: &mut Vec<SpanData>, exported: &AtomicU64) {
    if buf.is_empty() {
        return;
    }
    let n = buf.len() as u64;
    let batch = std::mem::take(buf);
    match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
        Ok(Ok(())) => {
            exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(Err(error)) => warn!(%error, spans = n, "Span export failed"),
        Err(_) => warn!(spans = n, "Span export timed out"),
    }
}

/// The same queue as a span processor, for spans made through the `tracing` bridge.
#[derive(Debug)]
pub struct QueueProcessor(pub SpanQueue);

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(span);
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
    use opentelemetry_sdk::trace::InMemorySpanExporterBuilder;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let exporter = InMemorySpanExporterBuilder::new().build();
            let (q, worker) = SpanQueue::start(exporter.clone(), 4, 2, Duration::from_secs(60));
            // The worker has not run yet (current-thread runtime): only 4 fit.
            let accepted = (0..10).filter(|_| q.push(span())).count();
            assert_eq!(accepted, 4);
            assert_eq!(q.dropped(), 6);
            q.flush().await;
            assert_eq!(exporter.get_finished_spans().unwrap().len(), 4);
            assert_eq!(q.exported(), 4);
            drop(q);
            worker.finish(Duration::from_secs(1)).await;
        });
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
