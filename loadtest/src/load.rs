//! The load: N concurrent MCP clients, each initializing its own session on its own
//! connection, warming up, waiting at a common start line, then doing sequential
//! `tools/call` until its share of requests is done or the deadline passes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{MAX_RUN, RunArgs};
use crate::mcp::{CallTemplate, Outcome, Session};
use crate::summary::{self, ErrorCounts, Latency, Summary};
use crate::transport::{Conn, Target};

/// A client gives up after this many transport failures in a row.
const MAX_CONSECUTIVE_TRANSPORT_ERRORS: u32 = 100;
/// Latency histograms are shared by clients in this many shards (a histogram is ~180 KiB,
/// too much to give each of thousands of clients its own; an uncontended lock is ~20 ns).
const MAX_SHARDS: u64 = 16;
/// Time allowed for all clients to initialize and warm up.
const SETUP_LIMIT: Duration = Duration::from_secs(120);

/// When the measured phase ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    /// Total requests over all clients (still capped at 120 s).
    Requests(u64),
    /// Wall-clock length (at most 120 s).
    Duration(Duration),
}

/// Boundaries of the measured phase, for probes such as CPU-time sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Start,
    End,
}

/// What to run.
pub(crate) struct LoadSpec {
    pub(crate) target: Target,
    pub(crate) clients: u64,
    pub(crate) stop: Stop,
    pub(crate) warmup_per_client: u64,
    pub(crate) tool: String,
    pub(crate) call: CallTemplate,
    pub(crate) timeout: Duration,
}

/// One client's measurements.
struct ClientReport {
    ok: u64,
    errors: ErrorCounts,
    connects: u64,
    truncated: bool,
    finished: Instant,
    first_error: Option<String>,
}

/// `switchboard-loadtest run`.
pub(crate) async fn run_cli(args: RunArgs) -> anyhow::Result<()> {
    let stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Requests(n),
        (None, Some(d)) if d > MAX_RUN => bail!("--duration is capped at {MAX_RUN:?}"),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => bail!("give --requests or --duration"),
    };
    let spec = LoadSpec {
        target: Target::parse(&args.url)?,
        clients: args.clients,
        stop,
        warmup_per_client: args.warmup,
        call: CallTemplate::new(&args.tool, &args.args)?,
        tool: args.tool,
        timeout: args.timeout,
    };
    let summary = run(Arc::new(spec), |_| {}).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// Runs the load; `on_phase` is called right before the start signal and right after the
/// last client finished.
pub(crate) async fn run(
    spec: Arc<LoadSpec>,
    mut on_phase: impl FnMut(Phase),
) -> anyhow::Result<Summary> {
    let clients = spec.clients;
    let (ready_tx, mut ready_rx) =
        mpsc::channel(usize::try_from(clients).unwrap_or(usize::MAX).max(1));
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let shards: Arc<[Mutex<Histogram<u64>>]> = (0..clients.min(MAX_SHARDS))
        .map(|_| summary::new_histogram().map(Mutex::new))
        .collect::<anyhow::Result<_>>()?;
    let mut tasks = JoinSet::new();
    for index in 0..clients {
        let quota = match spec.stop {
            Stop::Requests(total) => total / clients + u64::from(index < total % clients),
            Stop::Duration(_) => u64::MAX,
        };
        let shard = Shard {
            all: shards.clone(),
            index: usize::try_from(index % MAX_SHARDS).unwrap_or(0),
        };
        tasks.spawn(client(
            spec.clone(),
            quota,
            shard,
            ready_tx.clone(),
            go_rx.clone(),
        ));
    }
    drop(ready_tx);

    let setup_deadline = Instant::now() + SETUP_LIMIT;
    for _ in 0..clients {
        match tokio::time::timeout_at(setup_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(why))) => {
                tasks.abort_all();
                bail!(
                    "a client could not start against {}: {why}",
                    spec.target.url
                );
            }
            Ok(None) => bail!("clients ended before the start"),
            Err(_) => {
                tasks.abort_all();
                bail!("clients not ready within {SETUP_LIMIT:?}");
            }
        }
    }

    on_phase(Phase::Start);
    let start = Instant::now();
    go_tx.send_replace(Some(start));

    let join_deadline = start + MAX_RUN + spec.timeout + Duration::from_secs(5);
    let mut reports = Vec::new();
    for _ in 0..clients {
        match tokio::time::timeout_at(join_deadline, tasks.join_next()).await {
            Ok(Some(report)) => reports.push(report.context("client task failed")??),
            Ok(None) => break,
            Err(_) => bail!("clients did not finish by the deadline"), // dropping `tasks` aborts them
        }
    }
    on_phase(Phase::End);
    summarize(&spec, start, reports, &shards)
}

/// The histogram shard a client records into.
struct Shard {
    all: Arc<[Mutex<Histogram<u64>>]>,
    index: usize,
}

impl Shard {
    fn record(&self, micros: u64) {
        if let Some(shard) = self.all.get(self.index) {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(micros.max(1));
        }
    }
}

fn summarize(
    spec: &LoadSpec,
    start: Instant,
    reports: Vec<ClientReport>,
    shards: &[Mutex<Histogram<u64>>],
) -> anyhow::Result<Summary> {
    let mut histogram = summary::new_histogram()?;
    for shard in shards {
        let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        histogram.add(&*shard).context("merging histograms")?;
    }
    let mut errors = ErrorCounts::default();
    let (mut ok, mut connects, mut truncated, mut end) = (0, 0, false, start);
    let mut first_error = None;
    for report in reports {
        errors.add(&report.errors);
        ok += report.ok;
        connects += report.connects;
        truncated |= report.truncated;
        end = end.max(report.finished);
        first_error = first_error.or(report.first_error);
    }
    let wall_seconds = (end - start).as_secs_f64();
    let requests = ok + errors.total();
    Ok(Summary {
        url: spec.target.url.clone(),
        tool: spec.tool.clone(),
        clients: spec.clients,
        warmup_per_client: spec.warmup_per_client,
        requests,
        ok,
        errors,
        wall_seconds,
        throughput_rps: summary::throughput(requests, wall_seconds),
        latency_us: Latency::from_histogram(&histogram),
        reconnects: connects.saturating_sub(spec.clients),
        truncated,
        first_error,
        histogram,
    })
}

async fn client(
    spec: Arc<LoadSpec>,
    quota: u64,
    shard: Shard,
    ready: mpsc::Sender<Result<(), String>>,
    mut go: watch::Receiver<Option<Instant>>,
) -> anyhow::Result<ClientReport> {
    let mut session = match Session::open(Conn::new(spec.target.clone()), spec.timeout, true).await
    {
        Ok(session) => session,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}"))).await;
            bail!("initialize failed: {e:#}");
        }
    };
    for _ in 0..spec.warmup_per_client {
        session.call(&spec.call).await;
    }
    let _ = ready.send(Ok(())).await;
    let start = match go.wait_for(Option::is_some).await {
        Ok(start) => start.unwrap_or_else(Instant::now),
        Err(_) => bail!("start signal dropped"),
    };
    let deadline = match spec.stop {
        Stop::Requests(_) => start + MAX_RUN,
        Stop::Duration(d) => start + d.min(MAX_RUN),
    };

    let mut report = ClientReport {
        ok: 0,
        errors: ErrorCounts::default(),
        connects: 0,
        truncated: false,
        finished: start,
        first_error: None,
    };
    let (mut done, mut transport_streak) = (0u64, 0u32);
    while done < quota && Instant::now() < deadline {
        let (outcome, latency, why) = session.call(&spec.call).await;
        done += 1;
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            shard.record(micros);
        }
        if outcome == Outcome::Ok {
            report.ok += 1;
            transport_streak = 0;
            continue;
        }
        report.errors.count(outcome);
        if report.first_error.is_none() {
            report.first_error = why;
        }
        transport_streak = if outcome == Outcome::Transport {
            transport_streak + 1
        } else {
            0
        };
        if transport_streak >= MAX_CONSECUTIVE_TRANSPORT_ERRORS {
            break;
        }
    }
    report.finished = Instant::now();
    report.truncated = matches!(spec.stop, Stop::Requests(_)) && done < quota;
    report.connects = session.conn.connects;
    session.close().await;
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
