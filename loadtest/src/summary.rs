//! Turns the merged latency histogram and counters of a run into a summary: percentiles,
//! throughput, error breakdown; printable as text or serialized as JSON.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::mcp::Outcome;

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, 3 significant digits.
pub(crate) fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// Failed calls by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorCounts {
    /// HTTP status other than 200.
    pub(crate) http_status: u64,
    /// JSON-RPC `error` response.
    pub(crate) jsonrpc: u64,
    /// `result.isError == true`.
    pub(crate) tool: u64,
    /// Connection failure, timeout, or a body without our response.
    pub(crate) transport: u64,
}

impl ErrorCounts {
    pub(crate) fn total(&self) -> u64 {
        self.http_status + self.jsonrpc + self.tool + self.transport
    }

    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {}
            Outcome::HttpStatus => self.http_status += 1,
            Outcome::JsonRpcError => self.jsonrpc += 1,
            Outcome::ToolError => self.tool += 1,
            Outcome::Transport => self.transport += 1,
        }
    }

    pub(crate) fn add(&mut self, other: &ErrorCounts) {
        self.http_status += other.http_status;
        self.jsonrpc += other.jsonrpc;
        self.tool += other.tool;
        self.transport += other.transport;
    }
}

/// Latency percentiles in microseconds (of calls that got a complete HTTP response).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: u64,
    pub(crate) min: u64,
    pub(crate) mean: f64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            samples: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) url: String,
    pub(crate) tool: String,
    pub(crate) clients: u64,
    pub(crate) warmup_per_client: u64,
    /// Measured calls that completed (ok + errors).
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    pub(crate) errors: ErrorCounts,
    pub(crate) wall_seconds: f64,
    pub(crate) throughput_rps: f64,
    pub(crate) latency_us: Latency,
    /// TCP connections opened beyond the first one per client.
    pub(crate) reconnects: u64,
    /// True if `--requests` were not all done: the 120 s cap, or a client gave up after
    /// 100 transport errors in a row.
    pub(crate) truncated: bool,
    pub(crate) first_error: Option<String>,
    /// The merged latency histogram, kept so runs can be merged.
    #[serde(skip)]
    pub(crate) histogram: Histogram<u64>,
}

impl Summary {
    /// Several runs of the same path as one: counts, wall time and histograms add up;
    /// throughput is total requests over total measured wall time. `None` if `parts` is empty.
    pub(crate) fn merge(parts: &[Summary]) -> anyhow::Result<Option<Summary>> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(None);
        };
        let mut merged = first.clone();
        for part in rest {
            merged.histogram.add(&part.histogram)?;
            merged.requests += part.requests;
            merged.ok += part.ok;
            merged.errors.add(&part.errors);
            merged.wall_seconds += part.wall_seconds;
            merged.reconnects += part.reconnects;
            merged.truncated |= part.truncated;
            merged.first_error = merged.first_error.or_else(|| part.first_error.clone());
        }
        merged.throughput_rps = throughput(merged.requests, merged.wall_seconds);
        merged.latency_us = Latency::from_histogram(&merged.histogram);
        Ok(Some(merged))
    }

    /// A summary of made-up latencies, for tests.
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) fn fake(latencies: &[u64], wall_seconds: f64, errors: ErrorCounts) -> Summary {
        let mut histogram = new_histogram().unwrap();
        for &v in latencies {
            histogram.record(v).unwrap();
        }
        let requests = latencies.len() as u64;
        Self {
            url: "http://127.0.0.1:1/mcp".into(),
            tool: "echo".into(),
            clients: 1,
            warmup_per_client: 0,
            requests,
            ok: requests - errors.total(),
            errors,
            wall_seconds,
            throughput_rps: throughput(requests, wall_seconds),
            latency_us: Latency::from_histogram(&histogram),
            reconnects: 0,
            truncated: false,
            first_error: None,
            histogram,
        }
    }
}

/// Requests per second; 0 for an empty or instantaneous run.
pub(crate) fn throughput(requests: u64, wall_seconds: f64) -> f64 {
    if wall_seconds > 0.0 {
        requests as f64 / wall_seconds
    } else {
        0.0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errors;
        let l = &self.latency_us;
        writeln!(
            f,
            "target      {}  tool={}  clients={}  warmup={}/client",
            self.url, self.tool, self.clients, self.warmup_per_client
        )?;
        writeln!(
            f,
            "requests    {} (ok {}, errors {}: http {}, jsonrpc {}, tool {}, transport {}){}",
            self.requests,
            self.ok,
            e.total(),
            e.http_status,
            e.jsonrpc,
            e.tool,
            e.transport,
            if self.truncated {
                "  [stopped by the 120 s cap]"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "throughput  {:.0} req/s over {:.3} s  (reconnects {})",
            self.throughput_rps, self.wall_seconds, self.reconnects
        )?;
        write!(
            f,
            "latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, mean {:.1})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.min, l.mean
        )?;
        if let Some(error) = &self.first_error {
            write!(f, "\nfirst error {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram().unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.samples, 1000);
        assert_eq!(
            (l.min, l.p50, l.p90, l.p99, l.p999, l.max),
            (1, 500, 900, 990, 999, 1000)
        );
        assert!((l.mean - 500.5).abs() < 0.5);
    }

    #[test]
    fn empty_histogram_gives_zeros_and_large_values_keep_three_digits() {
        let h = new_histogram().unwrap();
        assert_eq!(Latency::from_histogram(&h), Latency::default());
        let mut h = new_histogram().unwrap();
        h.record(123_456).unwrap();
        let l = Latency::from_histogram(&h);
        assert!(l.p50.abs_diff(123_456) <= 123, "{}", l.p50);
    }

    #[test]
    fn merged_runs_add_counts_and_histograms() {
        let a = Summary::fake(&[10, 20, 30, 40], 1.0, ErrorCounts::default());
        let mut b = Summary::fake(
            &[100, 200, 300, 400],
            3.0,
            ErrorCounts {
                tool: 1,
                ..Default::default()
            },
        );
        b.first_error = Some("boom".into());
        let m = Summary::merge(&[a, b]).unwrap().unwrap();
        assert_eq!((m.requests, m.ok, m.errors.total()), (8, 7, 1));
        assert_eq!(m.wall_seconds, 4.0);
        assert_eq!(m.throughput_rps, 2.0);
        assert_eq!(
            (m.latency_us.min, m.latency_us.p50, m.latency_us.max),
            (10, 40, 400)
        );
        assert_eq!(m.first_error.as_deref(), Some("boom"));
        assert!(Summary::merge(&[]).unwrap().is_none());
    }

    #[test]
    fn throughput_and_error_counts() {
        assert_eq!(throughput(20_000, 2.0), 10_000.0);
        assert_eq!(throughput(5, 0.0), 0.0);
        let mut e = ErrorCounts::default();
        for o in [
            Outcome::Ok,
            Outcome::HttpStatus,
            Outcome::ToolError,
            Outcome::ToolError,
            Outcome::Transport,
        ] {
            e.count(o);
        }
        let mut sum = ErrorCounts {
            jsonrpc: 1,
            ..Default::default()
        };
        sum.add(&e);
        assert_eq!(
            sum,
            ErrorCounts {
                http_status: 1,
                jsonrpc: 1,
                tool: 2,
                transport: 1
            }
        );
        assert_eq!(sum.total(), 5);
    }
}
