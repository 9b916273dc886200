//! `switchboard-loadtest`: a load generator for MCP servers over Streamable HTTP and a
//! reproducible benchmark of what the Switchboard gateway adds to a `tools/call`.
//!
//! Map of the modules, along the path of one measured call:
//! - [`cli`]: flags of `run` and `bench`.
//! - [`load`]: N concurrent clients, warm-up, the measured phase, per-client histograms.
//! - [`mcp`]: one MCP session: initialize, tools/call, close; classifying each answer.
//! - [`transport`]: one keep-alive HTTP/1.1 connection (bare hyper) with the MCP headers.
//! - [`sse`]: pure extraction of `data:` payloads from a `text/event-stream` body.
//! - [`summary`]: histogram + counters → percentiles, throughput, printable summary.
//! - [`procfs`]: pure parsers for `/proc/PID/stat`, `/proc/PID/status`, machine facts.
//! - [`bench`]: starts the backend fixture and the gateway, runs direct vs via-gateway,
//!   measures CPU per call and memory per idle session, writes a markdown report.

mod bench;
mod cli;
mod load;
mod mcp;
mod procfs;
mod sse;
mod summary;
mod transport;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .context("building the tokio runtime")?;
    runtime.block_on(async move {
        tokio::select! {
            result = dispatch(cli.command) => result,
            signal = interrupted() => signal,
        }
    })
    // Dropping the dispatch future on a signal drops every child handle (kill_on_drop).
}

async fn dispatch(command: cli::Command) -> anyhow::Result<()> {
    match command {
        cli::Command::Run(args) => load::run_cli(args).await,
        cli::Command::Bench(args) => bench::run_cli(args).await,
    }
}

/// Resolves with an error on Ctrl-C or SIGTERM.
async fn interrupted() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    anyhow::bail!("interrupted by a signal; children are being killed")
}
