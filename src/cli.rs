//! The command line: `serve` (default), `check-config`, and the hidden `demo-backend`.

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
    /// Serve one of the built-in demo/fixture MCP servers (used by the embedded default config).
    #[command(hide = true)]
    DemoBackend {
        fixture: String,
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
}
