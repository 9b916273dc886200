//! The writer task and its handle: a bounded queue in, group commits and acknowledgements out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::sink::Sink;
use super::{AuditConfig, AuditDurability, AuditError, AuditRecord};

/// Most messages taken from the queue for one batch.
const MAX_BATCH: usize = 1024;
/// In `interval` mode, how long the writer lets records gather before one write: a quarter of
/// the interval, at most this (one hand-off to a blocking thread per batch, not per record).
const MAX_LINGER: Duration = Duration::from_millis(10);

/// Starts audit writers.
#[derive(Debug)]
pub struct AuditLog;

/// Tuning beyond the YAML section.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Written into every record; a random 16-hex-digit id when `None`.
    pub instance_id: Option<Arc<str>>,
    /// Records that may wait in the queue before [`AuditHandle::record`] starts dropping.
    pub channel_capacity: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            instance_id: None,
            channel_capacity: 4096,
        }
    }
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub records_written: u64,
    pub batches: u64,
    /// Records [`AuditHandle::record`] dropped because the queue was full or the writer had stopped.
    pub dropped: u64,
    pub fsyncs: u64,
    pub last_fsync: Duration,
    pub write_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    records_written: AtomicU64,
    batches: AtomicU64,
    dropped: AtomicU64,
    fsyncs: AtomicU64,
    last_fsync_ns: AtomicU64,
    write_errors: AtomicU64,
    /// Told the duration of every fsync (the `switchboard.audit.fsync.duration` histogram).
    on_fsync: HookSlot,
}

/// Called with the duration of each fsync.
pub type FsyncHook = Box<dyn Fn(Duration) + Send + Sync>;

#[derive(Default)]
struct HookSlot(std::sync::OnceLock<FsyncHook>);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

impl Counters {
    fn snapshot(&self) -> AuditStats {
        AuditStats {
            records_written: self.records_written.load(Relaxed),
            batches: self.batches.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            last_fsync: Duration::from_nanos(self.last_fsync_ns.load(Relaxed)),
            write_errors: self.write_errors.load(Relaxed),
        }
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is a record; boxing it would add an allocation per call on the request path"
)]
enum Msg {
    Record(
        AuditRecord,
        Option<oneshot::Sender<Result<u64, AuditError>>>,
    ),
    Flush(oneshot::Sender<Result<(), AuditError>>),
}

/// Someone waiting for the next fsync.
enum Ack {
    Record(oneshot::Sender<Result<u64, AuditError>>, u64),
    Flush(oneshot::Sender<Result<(), AuditError>>),
}

impl Ack {
    fn resolve(self, result: Result<(), &AuditError>) {
        match self {
            Ack::Record(tx, seq) => {
                let _ = tx.send(result.map(|()| seq).map_err(Clone::clone));
            }
            Ack::Flush(tx) => {
                let _ = tx.send(result.map_err(Clone::clone));
            }
        }
    }
}

/// Where callers hand records to the writer. Cheap to clone; the writer stops (after a final
/// fsync) once every handle is dropped.
#[derive(Clone, Debug)]
pub struct AuditHandle {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Record(..) => "Record",
            Msg::Flush(_) => "Flush",
        })
    }
}

impl AuditHandle {
    /// Queues a record without waiting. Returns `false` (and counts a drop) when the queue is full
    /// or the writer has stopped.
    pub fn record(&self, rec: AuditRecord) -> bool {
        match self.tx.try_send(Msg::Record(rec, None)) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Queues a record, waiting for room (back-pressure instead of a drop), and resolves with its
    /// `seq` once it is on disk (after the fsync that covers it: per batch in `Fsync` mode, at the
    /// next interval in `Interval` mode).
    pub async fn record_durable(&self, rec: AuditRecord) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Record(rec, Some(tx)))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Resolves once every record queued before this call is on disk.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(tx))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Relaxed)
    }

    /// Reports every fsync's duration to `hook` (set once; later calls are ignored).
    pub fn on_fsync(&self, hook: FsyncHook) {
        let _ = self.counters.on_fsync.0.set(hook);
    }

    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }
}

impl AuditLog {
    /// Opens (or resumes) the log and spawns its writer with default options.
    pub async fn start(
        config: AuditConfig,
    ) -> Result<(AuditHandle, JoinHandle<Result<AuditStats, AuditError>>), AuditError> {
        Self::start_with(config, AuditOptions::default()).await
    }

    /// Opens (or resumes) the log and spawns its writer. The task ends with the final counters
    /// once every handle is dropped, or with the error that stopped it (a failed fsync, or a failed
    /// write it could not roll back).
    pub async fn start_with(
        config: AuditConfig,
        options: AuditOptions,
    ) -> Result<(AuditHandle, JoinHandle<Result<AuditStats, AuditError>>), AuditError> {
        let instance = options
            .instance_id
            .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()).into());
        let path = config.path.clone();
        let max = config.max_file_bytes;
        let (sink, marker) = tokio::task::spawn_blocking(move || -> Result<_, AuditError> {
            let (mut sink, marker) = Sink::open(&path, max, instance)?;
            if let Some(mut m) = marker {
                sink.append(std::slice::from_mut(&mut m))?;
                sink.sync()?;
                return Ok((sink, Some(m.seq)));
            }
            Ok((sink, None))
        })
        .await
        .map_err(|_| AuditError::Closed)??;
        let counters = Arc::new(Counters::default());
        if marker.is_some() {
            counters.records_written.fetch_add(1, Relaxed);
        }
        let (tx, rx) = mpsc::channel(options.channel_capacity.max(1));
        let writer = Writer {
            sink: Some(sink),
            rx,
            durability: config.durability,
            counters: counters.clone(),
            unsynced: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
        };
        let task = tokio::spawn(writer.run());
        Ok((AuditHandle { tx, counters }, task))
    }
}

struct Writer {
    /// `None` only while a blocking call has it.
    sink: Option<Sink>,
    rx: mpsc::Receiver<Msg>,
    durability: AuditDurability,
    counters: Arc<Counters>,
    /// Acknowledgements waiting for the next fsync.
    unsynced: Vec<Ack>,
    /// Written since the last fsync.
    dirty: bool,
    last_sync: Instant,
}

impl Writer {
    async fn run(mut self) -> Result<AuditStats, AuditError> {
        let mut msgs = Vec::with_capacity(MAX_BATCH);
        let result = loop {
            let deadline = match self.durability {
                AuditDurability::Interval(d) if self.dirty => Some(self.last_sync + d),
                _ => None,
            };
            let step = tokio::select! {
                biased;
                n = self.rx.recv_many(&mut msgs, MAX_BATCH) => {
                    if n == 0 {
                        break self.sync().await;
                    }
                    self.linger(&mut msgs).await;
                    self.batch(&mut msgs).await
                }
                () = sleep_until(deadline), if deadline.is_some() => self.sync().await,
            };
            if let Err(e) = step {
                break Err(e);
            }
        };
        match result {
            Ok(()) => Ok(self.counters.snapshot()),
            Err(e) => {
                tracing::error!(error = %e, "audit writer stopped");
                self.rx.close();
                for ack in self.unsynced.drain(..) {
                    ack.resolve(Err(&e));
                }
                Err(e)
            }
        }
    }

    /// In `interval` mode, with nobody waiting on this batch: let more records arrive (without
    /// waking this task for each) before writing them together.
    async fn linger(&mut self, msgs: &mut Vec<Msg>) {
        let AuditDurability::Interval(d) = self.durability else {
            return;
        };
        let waited_on = |m: &Msg| matches!(m, Msg::Flush(_) | Msg::Record(_, Some(_)));
        if msgs.len() >= MAX_BATCH || msgs.iter().any(waited_on) {
            return;
        }
        tokio::time::sleep((d / 4).min(MAX_LINGER)).await;
        while msgs.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
    }

    /// Writes one batch; syncs when the durability mode (or a flush) asks for it.
    async fn batch(&mut self, msgs: &mut Vec<Msg>) -> Result<(), AuditError> {
        let mut recs = Vec::with_capacity(msgs.len());
        let mut waiters = Vec::new();
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Record(r, ack) => {
                    if let Some(tx) = ack {
                        waiters.push((recs.len() as u64, tx));
                    }
                    recs.push(r);
                }
                Msg::Flush(tx) => flushes.push(tx),
            }
        }
        let sync_now = !flushes.is_empty()
            || match self.durability {
                AuditDurability::Fsync => true,
                AuditDurability::Interval(d) => self.last_sync.elapsed() >= d,
            };
        let mut sink = self.sink.take().ok_or(AuditError::Closed)?;
        let first_seq = sink.next_seq();
        let (sink, appended, synced) = tokio::task::spawn_blocking(move || {
            let appended = sink.append(&mut recs);
            let synced = (sync_now && !sink.poisoned()).then(|| sink.sync());
            (sink, appended, synced)
        })
        .await
        .map_err(|_| AuditError::Closed)?;
        let written = sink.next_seq() - first_seq;
        let poisoned = sink.poisoned();
        self.sink = Some(sink);
        self.counters.batches.fetch_add(1, Relaxed);
        self.counters.records_written.fetch_add(written, Relaxed);
        self.dirty |= written > 0;
        for (i, tx) in waiters {
            if i < written {
                self.unsynced.push(Ack::Record(tx, first_seq + i));
            } else if let Err(e) = &appended {
                let _ = tx.send(Err(e.clone()));
            }
        }
        self.unsynced.extend(flushes.into_iter().map(Ack::Flush));
        if let Err(e) = &appended {
            self.counters.write_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, unwritten_from_seq = first_seq + written, "audit write failed; the rest of the batch was not written");
            if poisoned {
                return Err(e.clone());
            }
        }
        match synced {
            Some(r) => self.synced(r),
            None => Ok(()),
        }
    }

    async fn sync(&mut self) -> Result<(), AuditError> {
        if !self.dirty && self.unsynced.is_empty() {
            return Ok(());
        }
        let mut sink = self.sink.take().ok_or(AuditError::Closed)?;
        let (sink, r) = tokio::task::spawn_blocking(move || {
            let r = sink.sync();
            (sink, r)
        })
        .await
        .map_err(|_| AuditError::Closed)?;
        self.sink = Some(sink);
        self.synced(r)
    }

    /// After an fsync: acknowledge everyone waiting, or fail them and stop (after a failed fsync
    /// the page cache cannot be trusted to still hold the data).
    fn synced(&mut self, r: Result<Duration, AuditError>) -> Result<(), AuditError> {
        let took = r?;
        self.counters.fsyncs.fetch_add(1, Relaxed);
        if let Some(hook) = self.counters.on_fsync.0.get() {
            hook(took);
        }
        self.counters
            .last_fsync_ns
            .store(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.dirty = false;
        self.last_sync = Instant::now();
        for ack in self.unsynced.drain(..) {
            ack.resolve(Ok(()));
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
