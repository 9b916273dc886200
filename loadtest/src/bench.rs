//! `switchboard-loadtest bench`: backend fixture alone vs behind the gateway, at each
//! client count, plus gateway CPU per call and memory per idle session; a markdown report.

mod memory;
mod otlp_sink;
mod procs;
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{BenchArgs, TelemetryArg};
use crate::load::{self, LoadSpec, Phase, Stop};
use crate::mcp::CallTemplate;
use crate::procfs::{self, CpuTicks, Machine};
use crate::transport::Target;
use otlp_sink::OtlpSink;
use procs::Child;
use report::{CpuUse, Pair, Report, Run, TelemetryFacts};

/// The fixture's tool, called directly.
const TOOL: &str = "echo";
const ARGS: &str = r#"{"text":"hi"}"#;
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run_cli(args: BenchArgs) -> anyhow::Result<()> {
    let workdir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    eprintln!("bench: logs and config in {}", workdir.display());

    let (backend, backend_target) = procs::start_backend(&args.backend_bin, &workdir).await?;
    eprintln!(
        "bench: backend fixture pid {} at {}",
        backend.pid, backend_target.url
    );
    let outcome = with_backend(&args, &workdir, &backend, &backend_target).await;
    backend.stop().await;
    let report = outcome?;

    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(out) = &args.out {
        std::fs::write(out, &markdown).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: wrote {}", out.display());
    }
    if let Some(out) = &args.json_out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(())
}

/// One gateway under test: its process, endpoint, and the label of its runs.
struct Gateway {
    label: &'static str,
    child: Child,
    target: Target,
}

async fn with_backend(
    args: &BenchArgs,
    workdir: &std::path::Path,
    backend: &Child,
    backend_target: &Target,
) -> anyhow::Result<Report> {
    let sink = match args.telemetry {
        TelemetryArg::On | TelemetryArg::Both => Some(OtlpSink::start().await?),
        TelemetryArg::Default | TelemetryArg::Off => None,
    };
    let on = |sink: &OtlpSink| procs::Telemetry::On {
        otlp: sink.endpoint.clone(),
        audit: (!args.without_audit).then(|| workdir.join("audit").join("audit.jsonl")),
        sample_ratio: args.sample_ratio,
    };
    let variants = match (args.telemetry, &sink) {
        (TelemetryArg::Default, _) => vec![("gateway", procs::Telemetry::Default)],
        (TelemetryArg::Off, _) => vec![(report::OFF, procs::Telemetry::Off)],
        (TelemetryArg::On, Some(sink)) => vec![(report::ON, on(sink))],
        (TelemetryArg::Both, Some(sink)) => {
            vec![(report::OFF, procs::Telemetry::Off), (report::ON, on(sink))]
        }
        (TelemetryArg::On | TelemetryArg::Both, None) => unreachable!("the sink was started"),
    };
    let mut gateways = Vec::new();
    for (i, (label, telemetry)) in variants.iter().enumerate() {
        let started = procs::start_gateway(
            &args.gateway_bin,
            workdir,
            &format!("gateway-{i}"),
            backend_target,
            telemetry,
        )
        .await;
        let (child, target) = match started {
            Ok(g) => g,
            Err(e) => {
                stop_all(gateways).await;
                return Err(e);
            }
        };
        eprintln!("bench: {label} pid {} ready at {}", child.pid, target.url);
        gateways.push(Gateway {
            label,
            child,
            target,
        });
    }
    let result = measure(args, backend, &gateways, backend_target).await;
    let result = match result {
        Ok(mut report) => {
            if let Some(sink) = &sink {
                report.telemetry = Some(telemetry_facts(sink, workdir, &gateways).await);
            }
            Ok(report)
        }
        Err(e) => {
            let tails: Vec<String> = gateways.iter().map(|g| g.child.log_tail()).collect();
            Err(e.context(tails.join("\n")))
        }
    };
    stop_all(gateways).await;
    result
}

async fn stop_all(gateways: Vec<Gateway>) {
    for g in gateways {
        g.child.stop().await;
    }
}

/// Proof that the "on" gateway exported: what the sink got, the audit lines written, and the
/// gateway's own drop counter.
async fn telemetry_facts(
    sink: &OtlpSink,
    workdir: &std::path::Path,
    gateways: &[Gateway],
) -> TelemetryFacts {
    let audit_records = std::fs::read_dir(workdir.join("audit"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .sum()
        })
        .unwrap_or(0);
    let mut dropped = None;
    if let Some(g) = gateways.iter().find(|g| g.label == report::ON) {
        let mut conn = crate::transport::Conn::new(g.target.with_path("/metrics"));
        if let Ok(reply) = conn
            .send(
                hyper::Method::GET,
                bytes::Bytes::new(),
                crate::transport::Headers::Plain,
                TIMEOUT,
            )
            .await
        {
            dropped = Some(
                String::from_utf8_lossy(&reply.body)
                    .lines()
                    .filter(|l| l.starts_with("switchboard_telemetry_dropped_total"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
    }
    TelemetryFacts {
        sink: sink.stats(),
        audit_records,
        dropped,
    }
}

async fn measure(
    args: &BenchArgs,
    backend: &Child,
    gateways: &[Gateway],
    backend_target: &Target,
) -> anyhow::Result<Report> {
    let first = gateways.first().context("no gateway")?;
    let idle = memory::measure(&first.target, first.child.pid, args.idle_sessions).await?;
    eprintln!(
        "bench: {} idle sessions on the {}: RSS {} → {} KiB",
        idle.sessions, first.label, idle.rss_before_kib, idle.rss_after_kib
    );
    let pids = |gateway: &Gateway| Pids {
        gateway: gateway.child.pid,
        backend: backend.pid,
        loadgen: std::process::id(),
    };
    let machine = Machine::read();
    let rounds = args.rounds.clamp(1, args.calls);
    let load_before = procfs::load_average();
    let mut pairs = Vec::new();
    for &clients in &args.clients {
        let mut direct = Vec::new();
        let mut via: Vec<Vec<Run>> = gateways.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let calls = args.calls / rounds + u64::from(round < args.calls % rounds);
            // `direct` measures no gateway: the first one's pid only fills the column.
            direct
                .push(one_run("direct", backend_target, TOOL, clients, calls, pids(first)).await?);
            let tool = &args.gateway_tool;
            for (g, runs) in gateways.iter().zip(&mut via) {
                runs.push(one_run(g.label, &g.target, tool, clients, calls, pids(g)).await?);
            }
        }
        let direct = Run::merge(&direct)?;
        for runs in via {
            let via = Run::merge(&runs)?;
            pairs.push(Pair::new(clients, direct.clone(), via, machine.clock_ticks));
        }
    }
    Ok(Report {
        machine,
        date: utc_now(),
        command: std::env::args()
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" "),
        label: args.label.clone(),
        calls: args.calls,
        rounds,
        load_average: [load_before, procfs::load_average()],
        pairs,
        idle,
        telemetry: None,
    })
}

#[derive(Clone, Copy)]
struct Pids {
    gateway: u32,
    backend: u32,
    loadgen: u32,
}

impl Pids {
    fn sample(&self) -> [CpuTicks; 3] {
        [self.gateway, self.backend, self.loadgen]
            .map(|pid| procfs::cpu_ticks(pid).unwrap_or_default())
    }
}

async fn one_run(
    label: &'static str,
    target: &Target,
    tool: &str,
    clients: u64,
    calls: u64,
    pids: Pids,
) -> anyhow::Result<Run> {
    let spec = LoadSpec {
        target: target.clone(),
        clients,
        stop: Stop::Requests(calls),
        warmup_per_client: (calls / 10 / clients).clamp(20, 2000),
        tool: tool.to_owned(),
        call: CallTemplate::new(tool, ARGS)?,
        timeout: TIMEOUT,
    };
    let (mut start, mut end) = ([CpuTicks::default(); 3], [CpuTicks::default(); 3]);
    let summary = load::run(Arc::new(spec), |phase| match phase {
        Phase::Start => start = pids.sample(),
        Phase::End => end = pids.sample(),
    })
    .await
    .with_context(|| format!("{label} run at {clients} clients"))?;
    eprintln!("bench: {label}, {clients} clients:\n{summary}");
    let cpu_ticks = CpuUse {
        gateway: end[0].since(&start[0]),
        backend: end[1].since(&start[1]),
        loadgen: end[2].since(&start[2]),
    };
    Ok(Run {
        label,
        summary,
        cpu_ticks,
    })
}

/// `a` as a POSIX shell word (single-quoted unless it is plainly safe).
fn shell_quote(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// `date -u`, or seconds since the epoch if `date` cannot be run.
fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{secs} s since the epoch")
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_quoted_for_the_shell() {
        assert_eq!(shell_quote("--calls"), "--calls");
        assert_eq!(
            shell_quote("target/release/switchboard"),
            "target/release/switchboard"
        );
        assert_eq!(shell_quote("commit abc, release"), "'commit abc, release'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
