//! Thin entry point: parse the CLI, load config, start logging and the gateway, wait for a signal.

use std::process::ExitCode;

use clap::Parser;
use switchboard::cli::{ApikeyCommand, Cli, Command};
use switchboard::config::{Config, embedded_default};
use switchboard::gateway::Gateway;
use switchboard::telemetry;

/// glibc malloc took ~11 % of the gateway's CPU under load, partly waiting on its arena locks
/// across worker threads (perf, `loadtest/RESULTS.md`); mimalloc's per-thread heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command.unwrap_or(Command::Serve {
            config: None,
            bind: None,
        }) {
            Command::Serve { config, bind } => serve(config, bind).await,
            Command::CheckConfig { file } => check_config(&file),
            Command::Apikey {
                command:
                    ApikeyCommand::New {
                        name,
                        roles,
                        expires,
                    },
            } => apikey_new(&name, &roles, expires),
            Command::Pin {
                config,
                backends,
                yes,
                manifest,
            } => {
                let args = switchboard::integrity::pin::PinArgs {
                    config,
                    backends,
                    yes,
                    manifest,
                };
                switchboard::integrity::pin::run(args, &mut std::io::stdout()).await
            }
            Command::Audit { command } => switchboard::telemetry::audit::cmd::run(command).await,
            Command::DemoBackend { fixture, http } => demo_backend(&fixture, http).await,
        }
    });
    // A blocked exporter thread (collector down) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    path: Option<std::path::PathBuf>,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = match &path {
        Some(p) => Config::load(p)?,
        None => embedded_default()?,
    };
    if let (Some(b), Some(l)) = (bind, config.listeners.first_mut()) {
        if matches!(l.auth, switchboard::config::AuthConfig::None) && !b.ip().is_loopback() {
            anyhow::bail!(
                "--bind {b}: listener {:?} has no authentication (auth: mode none), which is allowed only on a loopback address; configure auth: mode oauth in a config file",
                l.name
            );
        }
        l.bind = b;
    }
    let tel = std::sync::Arc::new(telemetry::Telemetry::start(
        &config.telemetry,
        &config.backends,
    )?);
    telemetry::init_logging(&config.log, tel.tracer());
    let gateway = Gateway::start_with(config, tel).await?;
    for addr in gateway.local_addrs() {
        // One machine-readable line on stdout (tests and scripts wait for it); logs go to stderr.
        println!("listening on http://{addr}/mcp");
    }
    if path.is_none() {
        eprintln!(
            "Switchboard is running the embedded demo (backends: notes, tickets).\n  Connect an MCP client to {}\n  e.g. npx @modelcontextprotocol/inspector --cli {} --transport http --method tools/list",
            gateway.url(),
            gateway.url()
        );
    }
    if let Some(addr) = gateway.admin_addr() {
        println!("admin on http://{addr}/admin");
    }
    wait_for_signal(&gateway).await;
    gateway.shutdown().await;
    Ok(())
}

/// Until SIGTERM or SIGINT; each SIGHUP reloads credentials and policies.
async fn wait_for_signal(gateway: &Gateway) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        // Without signal handlers, run until killed.
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                let report = gateway.reload().await;
                if !report.ok() {
                    eprintln!("switchboard: reload on SIGHUP: {}", report.to_json());
                }
            }
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let c = Config::load(file)?;
    println!("{}: OK", file.display());
    for l in &c.listeners {
        println!(
            "  listener {} on {} (naming: {:?})",
            l.name, l.bind, l.naming
        );
        match &l.auth {
            switchboard::config::AuthConfig::None => {
                println!("    auth: none (anonymous callers; loopback only)")
            }
            switchboard::config::AuthConfig::OAuth(o) => {
                let issuers: Vec<&str> = o.issuers.iter().map(|i| i.issuer.as_str()).collect();
                println!(
                    "    auth: oauth for resource {} (issuers: [{}]; API keys: {}; required scopes: [{}])",
                    o.resource,
                    issuers.join(", "),
                    o.api_keys.len(),
                    o.required_scopes.join(" ")
                );
            }
        }
    }
    for b in &c.backends {
        println!("  backend {} via {}", b.name, b.transport.kind());
    }
    if let Some(a) = &c.audit {
        println!(
            "  audit log {} ({:?}, rotate at {} bytes)",
            a.path.display(),
            a.durability,
            a.max_file_bytes
        );
    }
    Ok(())
}

/// `switchboard apikey new`: the key on stdout's first line, its config entry after it.
fn apikey_new(
    name: &str,
    roles: &[String],
    expires: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '"') {
        anyhow::bail!("--name must be non-empty, without spaces or quotes");
    }
    let (key, hash) = switchboard::identity::apikey::generate();
    println!("{key}");
    eprintln!(
        "# The key above is shown once: give it to the service account. Add this to the listener's auth.api_keys:"
    );
    let roles: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
    let mut line = format!(
        "- {{ name: {name:?}, hash: \"{hash}\", roles: [{}]",
        roles.join(", ")
    );
    if let Some(d) = expires {
        let at = std::time::SystemTime::now() + d;
        line.push_str(&format!(
            ", expires: \"{}\"",
            humantime::format_rfc3339_seconds(at)
        ));
    }
    line.push_str(" }");
    println!("{line}");
    Ok(())
}

async fn demo_backend(fixture: &str, http: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let fixture: switchboard_demo::Fixture = fixture.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    match http {
        None => switchboard_demo::serve_stdio(fixture).await,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("listening on http://{}/mcp", listener.local_addr()?);
            switchboard_demo::serve_http(fixture, listener).await
        }
    }
}
