//! Process-wide telemetry: structured `tracing` logs (text or JSON) to stderr, OpenTelemetry spans
//! and metrics of every call (`call`), their export (`pipeline`, `export`, `/metrics`), and the
//! hash-chained audit log.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogConfig;

pub mod audit;
pub mod call;
pub mod context;
pub mod export;
pub mod metrics;
pub mod openmetrics;
pub mod pipeline;

pub use call::{CallEvent, Finish, NetProtocol, Origin};
pub use metrics::{Denial, Metrics};
pub use pipeline::Telemetry;

/// Installs the global subscriber. `RUST_LOG` overrides the configured level. With a tracer,
/// the gateway's own `tracing` spans (backend connects, discovery) are exported too, at `info`.
/// Text logs are coloured only when stderr (where they go) is a terminal and `NO_COLOR` is unset:
/// a file, a pipe or journald gets plain text.
pub fn init_logging(cfg: &LogConfig, tracer: Option<opentelemetry_sdk::trace::SdkTracer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    // Only the short connect spans become OpenTelemetry spans (calls have their own, built
    // without `tracing`); log events inside them become span events.
    let otel = tracer.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                !m.is_span() || m.name() == "backend.connect"
            }))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = if cfg.json {
        registry.with(fmt.json().flatten_event(true)).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to
/// anything non-empty (<https://no-color.org>).
fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
