//! The command line: `serve` (default), `check-config`, `apikey new`, `pin`, `audit verify|tail`, and the hidden `demo-backend`.

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
    /// Service-account API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Pin the backends' tool, prompt and resource-template definitions: discover them, show
    /// what differs from the manifest (new, changed with a diff, gone, scanner findings), and
    /// write the manifest after approval.
    Pin {
        #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
        /// Only this backend (repeat for several); all when absent.
        #[arg(long = "backend")]
        backends: Vec<String>,
        /// Write without asking.
        #[arg(long)]
        yes: bool,
        /// The manifest file (default: the config's `integrity.manifest`, else
        /// `<config>.pins.yaml` beside it).
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
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
pub enum ApikeyCommand {
    /// Make a new API key: prints the key once (hand it to the service account) and the line for
    /// the listener's `auth.api_keys` (only the key's hash is ever configured).
    New {
        /// The service account's name (its principal is `apikey:<name>`).
        #[arg(long)]
        name: String,
        /// A role the key grants (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// How long the key is valid (e.g. `90d`, `12h`); without it the key never expires.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
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
