//! The command line: `serve` (default), `check-config`, `audit verify|tail`, and the hidden `demo-backend`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Enterprise MCP gateway: one endpoint for many approved MCP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default). Without --config, runs the embedded demo configuration.
    Serve {
        #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
        /// Override the first listener's bind address (e.g. 127.0.0.1:0).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration file and print what it defines.
    CheckConfig { file: PathBuf },
    /// Check or follow an audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Serve one of the built-in demo/fixture MCP servers (used by the embedded default config).
    #[command(hide = true)]
    DemoBackend {
        fixture: String,
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of audit log files (rotated files are put in order: .1, .2, …, then the active file).
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print an audit log's records; with --follow, keep printing as they are appended (across rotations).
    Tail {
        #[arg(long, short)]
        follow: bool,
        file: PathBuf,
    },
    /// Append COUNT records in fsync mode, printing each seq once it is on disk (crash tests).
    #[command(hide = true)]
    SelftestWriter {
        file: PathBuf,
        count: u64,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[arg(long, default_value_t = 100 * 1024 * 1024)]
        max_file_bytes: u64,
    },
}
