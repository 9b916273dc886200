//! `switchboard-demo <fixture> [--http ADDR]`: runs one demo MCP server over stdio or HTTP.

use std::io::Write;

use anyhow::{Context, bail};
use switchboard_demo::{Fixture, serve_http, serve_stdio};

const USAGE: &str =
    "usage: switchboard-demo <notes|tickets|conformance|lab|github|postgres|slack> [--http ADDR]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let mut args = std::env::args().skip(1);
    let fixture: Fixture = args.next().context(USAGE)?.parse()?;
    let mut http: Option<String> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--http" => http = Some(args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned())),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    match http {
        None => serve_stdio(fixture).await,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            let mut out = std::io::stdout();
            writeln!(out, "listening on http://{local}/mcp")?;
            out.flush()?;
            serve_http(fixture, listener).await
        }
    }
}
