//! The benchmark's arithmetic (added latency, throughput ratio, CPU per call) and its
//! markdown report. Pure: takes summaries and counters, returns numbers and text.

use std::fmt::Write as _;

use serde::Serialize;

use super::memory::IdleSessions;
use super::otlp_sink::SinkStats;
use crate::procfs::Machine;
use crate::summary::Summary;

/// The targets of the core issue (DESIGN.md "Performance budget"): at most 100 µs added p50
/// (at 1 client) and at most 40 µs of gateway CPU per call (at 64 clients).
const BUDGET_ADDED_P50_US: i64 = 100;
const BUDGET_CPU_US_PER_CALL: f64 = 40.0;
const BUDGET_BYTES_PER_SESSION: f64 = 1024.0 * 1024.0;

/// CPU ticks each process spent during one measured phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct CpuUse {
    pub(crate) gateway: u64,
    pub(crate) backend: u64,
    pub(crate) loadgen: u64,
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) label: &'static str,
    pub(crate) summary: Summary,
    pub(crate) cpu_ticks: CpuUse,
}

impl Run {
    /// Rounds of one path as one run: summaries merged, CPU ticks summed.
    pub(crate) fn merge(runs: &[Run]) -> anyhow::Result<Run> {
        let summaries: Vec<Summary> = runs.iter().map(|r| r.summary.clone()).collect();
        let (Some(first), Some(summary)) = (runs.first(), Summary::merge(&summaries)?) else {
            anyhow::bail!("no runs to merge");
        };
        let mut cpu_ticks = CpuUse::default();
        for run in runs {
            cpu_ticks.gateway += run.cpu_ticks.gateway;
            cpu_ticks.backend += run.cpu_ticks.backend;
            cpu_ticks.loadgen += run.cpu_ticks.loadgen;
        }
        Ok(Run {
            label: first.label,
            summary,
            cpu_ticks,
        })
    }
}

/// Direct and via-gateway runs at one client count, and what the gateway adds.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Pair {
    pub(crate) clients: u64,
    pub(crate) direct: Run,
    pub(crate) gateway: Run,
    pub(crate) derived: Derived,
}

/// The comparison of one pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Derived {
    pub(crate) added_p50_us: i64,
    pub(crate) added_p99_us: i64,
    pub(crate) throughput_ratio: f64,
    /// CPU per call of each process during the gateway runs.
    pub(crate) gateway_cpu_us_per_call: f64,
    pub(crate) backend_cpu_us_per_call: f64,
    pub(crate) generator_cpu_us_per_call: f64,
}

impl Pair {
    pub(crate) fn new(clients: u64, direct: Run, gateway: Run, ticks_per_second: u64) -> Self {
        let (d, g) = (&direct.summary, &gateway.summary);
        let per_call = |ticks| cpu_us_per_call(ticks, ticks_per_second, g.requests);
        let derived = Derived {
            added_p50_us: added(g.latency_us.p50, d.latency_us.p50),
            added_p99_us: added(g.latency_us.p99, d.latency_us.p99),
            throughput_ratio: ratio(g.throughput_rps, d.throughput_rps),
            gateway_cpu_us_per_call: per_call(gateway.cpu_ticks.gateway),
            backend_cpu_us_per_call: per_call(gateway.cpu_ticks.backend),
            generator_cpu_us_per_call: per_call(gateway.cpu_ticks.loadgen),
        };
        Self {
            clients,
            direct,
            gateway,
            derived,
        }
    }
}

/// Run labels of `--telemetry both`.
pub(crate) const OFF: &str = "gateway (telemetry off)";
pub(crate) const ON: &str = "gateway (telemetry on)";

impl Pair {
    /// The client count, and which gateway when it is not the only kind.
    fn name(&self) -> String {
        match self.gateway.label {
            "gateway" => self.clients.to_string(),
            label => format!(
                "{} ({})",
                self.clients,
                label.trim_start_matches("gateway (").trim_end_matches(')')
            ),
        }
    }
}

/// Everything in the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) date: String,
    pub(crate) command: String,
    pub(crate) label: Option<String>,
    pub(crate) calls: u64,
    pub(crate) rounds: u64,
    /// `/proc/loadavg` before and after the latency runs.
    pub(crate) load_average: [String; 2],
    pub(crate) pairs: Vec<Pair>,
    pub(crate) idle: IdleSessions,
    /// What the telemetry-on gateway exported (`--telemetry on|both`).
    pub(crate) telemetry: Option<TelemetryFacts>,
}

/// Evidence that the telemetry-on gateway did export: counted after the runs.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TelemetryFacts {
    pub(crate) sink: SinkStats,
    /// Lines in the audit log files.
    pub(crate) audit_records: u64,
    /// The `switchboard_telemetry_dropped_total` lines of its `/metrics`.
    pub(crate) dropped: Option<String>,
}

/// CPU microseconds per call from a tick count.
pub(crate) fn cpu_us_per_call(ticks: u64, ticks_per_second: u64, calls: u64) -> f64 {
    if calls == 0 || ticks_per_second == 0 {
        return 0.0;
    }
    ticks as f64 * 1e6 / ticks_per_second as f64 / calls as f64
}

/// `gateway - direct`, in µs (negative when noise wins).
pub(crate) fn added(gateway: u64, direct: u64) -> i64 {
    i64::try_from(gateway).unwrap_or(i64::MAX) - i64::try_from(direct).unwrap_or(i64::MAX)
}

/// `gateway / direct` throughput.
pub(crate) fn ratio(gateway: f64, direct: f64) -> f64 {
    if direct > 0.0 { gateway / direct } else { 0.0 }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "within budget" } else { "OVER budget" }
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_latency(&mut s);
        self.write_added(&mut s);
        self.write_telemetry(&mut s);
        self.write_memory(&mut s);
        self.write_budget(&mut s);
        self.write_notes(&mut s);
        s
    }

    fn write_header(&self, s: &mut String) {
        let m = &self.machine;
        let _ = writeln!(s, "# Switchboard gateway overhead\n");
        let _ = writeln!(s, "- date: {}", self.date);
        if let Some(label) = &self.label {
            let _ = writeln!(s, "- build: {label}");
        }
        let _ = writeln!(
            s,
            "- machine: {} CPUs (`nproc`), {}, Linux {}",
            m.cpus, m.cpu_model, m.kernel
        );
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(
            s,
            "- workload: MCP 2025-11-25 over Streamable HTTP, one keep-alive HTTP/1.1 connection and session per client, \
             sequential `tools/call echo {{\"text\":\"hi\"}}`, {} measured calls per path and client count, in {} interleaved \
             rounds (direct, gateway, direct, …), each round a fresh set of sessions with its own warm-up; generator, gateway \
             and backend share the machine's CPUs.",
            self.calls, self.rounds
        );
        let _ = writeln!(
            s,
            "- load average (1, 5, 15 min) before / after the runs: {} / {} (other work on the machine skews the numbers)\n",
            self.load_average[0], self.load_average[1]
        );
    }

    fn write_latency(&self, s: &mut String) {
        let _ = writeln!(s, "## Latency and throughput\n");
        let _ = writeln!(
            s,
            "| clients | path | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | req/s | errors |"
        );
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut last_clients = None;
        for pair in &self.pairs {
            // Several gateways at one client count share their direct run: print it once.
            let first = last_clients != Some(pair.clients);
            last_clients = Some(pair.clients);
            let runs = if first {
                vec![&pair.direct, &pair.gateway]
            } else {
                vec![&pair.gateway]
            };
            for run in runs {
                let (l, sum) = (&run.summary.latency_us, &run.summary);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                    pair.clients,
                    run.label,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    sum.throughput_rps,
                    sum.errors.total()
                );
            }
        }
    }

    fn write_added(&self, s: &mut String) {
        let _ = writeln!(s, "\n## What the gateway adds\n");
        let _ = writeln!(
            s,
            "| clients | added p50 µs | added p99 µs | throughput gateway/direct | gateway CPU µs/call | backend CPU µs/call | generator CPU µs/call |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        for pair in &self.pairs {
            let d = &pair.derived;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |",
                pair.name(),
                d.added_p50_us,
                d.added_p99_us,
                d.throughput_ratio,
                d.gateway_cpu_us_per_call,
                d.backend_cpu_us_per_call,
                d.generator_cpu_us_per_call,
            );
        }
    }

    /// Telemetry on against off, at each client count where both ran.
    fn write_telemetry(&self, s: &mut String) {
        let both: Vec<(&Pair, &Pair)> = self
            .pairs
            .iter()
            .filter(|p| p.gateway.label == OFF)
            .filter_map(|off| {
                let on = self
                    .pairs
                    .iter()
                    .find(|p| p.clients == off.clients && p.gateway.label == ON)?;
                Some((off, on))
            })
            .collect();
        if !both.is_empty() {
            let _ = writeln!(s, "\n## Telemetry cost (on vs off)\n");
            let _ = writeln!(
                s,
                "| clients | req/s off | req/s on | throughput on/off | gateway CPU µs/call off | on | CPU on/off | p50 µs off | on | p99 µs off | on |"
            );
            let _ = writeln!(
                s,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for (off, on) in both {
                let (a, b) = (&off.gateway.summary, &on.gateway.summary);
                let (ca, cb) = (
                    off.derived.gateway_cpu_us_per_call,
                    on.derived.gateway_cpu_us_per_call,
                );
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {:.0} | {:.3} | {ca:.1} | {cb:.1} | {:.3} | {} | {} | {} | {} |",
                    off.clients,
                    a.throughput_rps,
                    b.throughput_rps,
                    ratio(b.throughput_rps, a.throughput_rps),
                    ratio(cb, ca),
                    a.latency_us.p50,
                    b.latency_us.p50,
                    a.latency_us.p99,
                    b.latency_us.p99,
                );
            }
        }
        if let Some(t) = &self.telemetry {
            let k = &t.sink;
            let _ = writeln!(
                s,
                "\nTelemetry on: the OTLP sink received {} trace exports ({} KiB) and {} metric exports ({} KiB); \
                 {} audit records written; dropped: {}.",
                k.trace_posts,
                k.trace_bytes / 1024,
                k.metric_posts,
                k.metric_bytes / 1024,
                t.audit_records,
                t.dropped
                    .as_deref()
                    .unwrap_or("unknown (no /metrics answer)"),
            );
        }
    }

    fn write_memory(&self, s: &mut String) {
        let idle = &self.idle;
        let _ = writeln!(s, "\n## Memory per idle session\n");
        let _ = writeln!(
            s,
            "Gateway RSS {} KiB → {} KiB after opening {} sessions (`initialize` only, no GET stream): \
             **{:.1} KiB per session**.\n",
            idle.rss_before_kib,
            idle.rss_after_kib,
            idle.sessions,
            idle.bytes_per_session() / 1024.0
        );
    }

    fn write_budget(&self, s: &mut String) {
        let _ = writeln!(s, "## Against the budget (DESIGN.md)\n");
        for pair in &self.pairs {
            let (add, cpu) = (
                pair.derived.added_p50_us,
                pair.derived.gateway_cpu_us_per_call,
            );
            let _ = writeln!(
                s,
                "- {} client(s): added p50 {add} µs ({}: < {BUDGET_ADDED_P50_US} µs); \
                 gateway CPU {cpu:.1} µs/call ({}: < {BUDGET_CPU_US_PER_CALL} µs)",
                pair.name(),
                verdict(add < BUDGET_ADDED_P50_US),
                verdict(cpu < BUDGET_CPU_US_PER_CALL),
            );
        }
        let per_session = self.idle.bytes_per_session();
        let _ = writeln!(
            s,
            "- idle session: {:.1} KiB ({}: < 1 MiB)",
            per_session / 1024.0,
            verdict(per_session < BUDGET_BYTES_PER_SESSION)
        );
    }

    fn write_notes(&self, s: &mut String) {
        let tps = self.machine.clock_ticks;
        let _ = writeln!(
            s,
            "\nNotes: latency is send → whole response body received, per call, HdrHistogram (µs, 3 digits). \
             CPU is utime+stime from /proc/PID/stat over the measured phases only, {tps} ticks/s, so ±{:.2} µs/call \
             of resolution. At many clients the CPUs are saturated and the three processes compete for them: the \
             throughput ratio then reflects CPU cost more than latency. The generator column is the load generator's \
             own CPU, mostly the kernel's loopback TCP work, which the gateway pays twice (client side and backend side).",
            cpu_us_per_call(self.rounds, tps, self.calls)
        );
        let errors: u64 = self
            .pairs
            .iter()
            .map(|p| p.direct.summary.errors.total() + p.gateway.summary.errors.total())
            .sum();
        if errors > 0 {
            let _ = writeln!(
                s,
                "\n**{errors} calls failed; see the errors column and the JSON summaries.**"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn derived_numbers() {
        assert_eq!(cpu_us_per_call(200, 100, 20_000), 100.0);
        assert_eq!(cpu_us_per_call(1, 100, 20_000), 0.5);
        assert_eq!(cpu_us_per_call(5, 100, 0), 0.0);
        assert_eq!(added(130, 80), 50);
        assert_eq!(added(70, 80), -10);
        assert_eq!(ratio(5_000.0, 10_000.0), 0.5);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    fn run(label: &'static str, latencies: &[u64], wall: f64, gateway_ticks: u64) -> Run {
        let summary = Summary::fake(latencies, wall, crate::summary::ErrorCounts::default());
        let cpu_ticks = CpuUse {
            gateway: gateway_ticks,
            backend: 10,
            loadgen: 5,
        };
        Run {
            label,
            summary,
            cpu_ticks,
        }
    }

    #[test]
    fn pair_derivation_and_report_text() {
        let direct = run("direct", &[50; 100], 0.01, 0);
        let gateway = Run::merge(&[
            run("gateway", &[90; 50], 0.01, 2),
            run("gateway", &[90; 50], 0.01, 2),
        ])
        .unwrap();
        let pair = Pair::new(1, direct, gateway, 100);
        assert_eq!(pair.derived.added_p50_us, 40);
        assert_eq!(pair.derived.throughput_ratio, 0.5);
        assert_eq!(pair.derived.gateway_cpu_us_per_call, 400.0);
        assert_eq!(pair.derived.backend_cpu_us_per_call, 2000.0); // 10 + 10 ticks
        let report = Report {
            machine: Machine {
                cpus: 2,
                cpu_model: "Test CPU".into(),
                kernel: "6.1".into(),
                clock_ticks: 100,
            },
            date: "2026-01-01T00:00:00Z".into(),
            command: "bench".into(),
            label: None,
            calls: 100,
            rounds: 2,
            load_average: ["0.1 0.2 0.3".into(), "0.4 0.5 0.6".into()],
            pairs: vec![pair],
            idle: IdleSessions {
                sessions: 1000,
                rss_before_kib: 10_000,
                rss_after_kib: 13_000,
            },
            telemetry: None,
        };
        let md = report.markdown();
        assert!(md.contains("2 CPUs (`nproc`), Test CPU, Linux 6.1"), "{md}");
        assert!(
            md.contains("| 1 | direct | 50 | 50 | 50 | 50 | 50 | 10000 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 | 40 | 40 | 0.50 | 400.0 | 2000.0 | 1000.0 |"),
            "{md}"
        );
        assert!(md.contains("**3.0 KiB per session**"), "{md}");
        assert!(md.contains("added p50 40 µs (within budget"), "{md}");
        assert!(
            md.contains("gateway CPU 400.0 µs/call (OVER budget"),
            "{md}"
        );
        assert!(!md.contains("calls failed"), "{md}");
    }
}
