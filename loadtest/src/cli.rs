//! Command-line interface: the `run` and `bench` subcommands and their flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Hard cap on any measured phase, whatever the flags say.
pub(crate) const MAX_RUN: Duration = Duration::from_secs(120);

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-loadtest",
    version,
    about = "Load generator for MCP Streamable HTTP servers and a gateway-overhead benchmark"
)]
pub(crate) struct Cli {
    /// Tokio worker threads of the generator (1 = current-thread runtime, the cheapest).
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) threads: usize,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Drive N concurrent MCP clients doing sequential tools/call against one URL.
    Run(RunArgs),
    /// Start backend fixture + gateway, compare direct vs via gateway, write a report.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Streamable HTTP endpoint, loopback only, e.g. http://127.0.0.1:8080/mcp
    #[arg(long)]
    pub(crate) url: String,
    /// Concurrent clients; each has its own MCP session and keep-alive connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) clients: u64,
    /// Total measured tools/call requests, split evenly over the clients.
    #[arg(long, required_unless_present = "duration", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: Option<u64>,
    /// Measured phase length, e.g. 10s, 1500ms, 2m (at most 120s).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Tool to call.
    #[arg(long, default_value = "echo")]
    pub(crate) tool: String,
    /// Tool arguments as a JSON object.
    #[arg(long, default_value = r#"{"text":"hi"}"#)]
    pub(crate) args: String,
    /// Unrecorded tools/call requests per client before the measured phase.
    #[arg(long, default_value_t = 0)]
    pub(crate) warmup: u64,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Print a machine-readable JSON summary instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The gateway executable (`switchboard`), started as `serve --config FILE`.
    #[arg(long)]
    pub(crate) gateway_bin: PathBuf,
    /// The fixture executable (`switchboard-demo`), started as `lab --http 127.0.0.1:0`.
    #[arg(long)]
    pub(crate) backend_bin: PathBuf,
    /// Measured tools/call per run (each of: direct and gateway, at each client count).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) calls: u64,
    /// Tool name as the gateway lists it (differs from `echo` under `naming: prefix`).
    #[arg(long, default_value = "echo")]
    pub(crate) gateway_tool: String,
    /// Interleaved rounds (direct, gateway, direct, …) the calls are split into, so that
    /// passing load on the machine hits both paths alike.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub(crate) rounds: u64,
    /// Client counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub(crate) clients: Vec<u64>,
    /// Idle sessions opened to measure gateway memory per session.
    #[arg(long, default_value_t = 1000)]
    pub(crate) idle_sessions: u64,
    /// Write the markdown report here (it is always printed too).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Also write the raw summaries as JSON here.
    #[arg(long)]
    pub(crate) json_out: Option<PathBuf>,
    /// Free text naming the build under test (e.g. a commit), printed in the report.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// The gateway's telemetry: `default` (no `telemetry:` section: /metrics on, no export, no
    /// audit), `off` (no-op instruments), `on` (/metrics, spans and metrics over OTLP/HTTP to a
    /// sink in this process, audit log with interval durability), or `both` (an off and an on
    /// gateway, measured in the same interleaved rounds).
    #[arg(long, value_enum, default_value_t = TelemetryArg::Default)]
    pub(crate) telemetry: TelemetryArg,
    /// With `--telemetry on|both`: no audit log on the "on" gateway (spans and metrics only).
    #[arg(long)]
    pub(crate) without_audit: bool,
    /// With `--telemetry on|both`: the "on" gateway's `telemetry.traces.sample_ratio` (0–1).
    #[arg(long)]
    pub(crate) sample_ratio: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TelemetryArg {
    Default,
    Off,
    On,
    Both,
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 10s or 500ms, got {text:?}"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
