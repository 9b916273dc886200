//! Process-wide telemetry: structured `tracing` logs (text or JSON) to stderr, and the audit log.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

pub mod audit;

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init_logging(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if cfg.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
