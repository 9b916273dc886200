//! The processes under test: the backend fixture and the gateway. Starting them (with a
//! generated gateway config), waiting until they are ready (polling with a deadline), and
//! killing them. Every child is spawned with `kill_on_drop`, so an error or a signal that
//! drops the handle still kills it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::Instant;

use crate::transport::{Conn, Headers, Target};

const START_LIMIT: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Lines of backend stdout read while looking for the `listening on` line.
const MAX_BANNER_LINES: usize = 1000;

/// A running child process whose output goes to a log file.
pub(crate) struct Child {
    pub(crate) name: &'static str,
    pub(crate) pid: u32,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    fn spawn(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        piped_stdout: bool,
    ) -> anyhow::Result<Self> {
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let stdout = if piped_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the {name} exited at once"))?;
        Ok(Self {
            name,
            pid,
            child,
            log,
        })
    }

    /// Error if the process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("the {} exited ({status}); {}", self.name, self.log_tail()),
        }
    }

    /// The end of its log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(1500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("log {}:\n{tail}", self.log.display())
    }

    /// SIGKILL and reap (bounded wait).
    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Starts `BIN lab --http 127.0.0.1:0` and reads its `listening on http://…/mcp` line.
pub(crate) async fn start_backend(bin: &Path, workdir: &Path) -> anyhow::Result<(Child, Target)> {
    let mut command = Command::new(bin);
    command.args(["lab", "--http", "127.0.0.1:0"]);
    let mut child = Child::spawn(
        "backend fixture",
        command,
        workdir.join("backend.log"),
        true,
    )?;
    let stdout = child
        .child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("backend stdout not piped"))?;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + START_LIMIT;
    let mut url = None;
    for _ in 0..MAX_BANNER_LINES {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(found) = parse_listening(&line) {
                    url = Some(found.to_owned());
                    break;
                }
            }
            Ok(Ok(None)) => bail!(
                "backend closed stdout before `listening on`; {}",
                child.log_tail()
            ),
            Ok(Err(e)) => return Err(e).context("reading backend stdout"),
            Err(_) => bail!("backend printed no `listening on` line within {START_LIMIT:?}"),
        }
    }
    let url = url.ok_or_else(|| anyhow!("no `listening on` line in the backend's first lines"))?;
    // Keep draining stdout so the backend never blocks on a full pipe; ends at EOF.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let target = Target::parse(&url).context("backend URL")?;
    Ok((child, target))
}

/// The URL in a `listening on http://IP:PORT/mcp` line.
pub(crate) fn parse_listening(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("listening on ")?;
    let url = rest.split_whitespace().next()?;
    url.starts_with("http://").then_some(url)
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read, release).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// What the gateway emits about itself.
#[derive(Clone, Debug)]
pub(crate) enum Telemetry {
    /// No `telemetry:` section (the gateway's defaults: /metrics on, no export).
    Default,
    /// No-op instruments, no export, no audit log.
    Off,
    /// /metrics, spans and metrics over OTLP/HTTP to `otlp`, and the audit log at `audit`.
    On {
        otlp: String,
        audit: Option<PathBuf>,
        /// `telemetry.traces.sample_ratio` (the gateway's default, 1, when `None`).
        sample_ratio: Option<f64>,
    },
}

impl Telemetry {
    fn yaml(&self) -> String {
        match self {
            Telemetry::Default => String::new(),
            Telemetry::Off => "telemetry: {metrics: {prometheus: false}}\n".into(),
            Telemetry::On {
                otlp,
                audit,
                sample_ratio,
            } => {
                let mut y = format!(
                    "telemetry:\n  \
                       otlp: {{endpoint: \"{otlp}\", protocol: http/protobuf}}\n  \
                       metrics: {{prometheus: true}}\n"
                );
                if let Some(r) = sample_ratio {
                    y.push_str(&format!("  traces: {{sample_ratio: {r}}}\n"));
                }
                if let Some(a) = audit {
                    y.push_str(&format!(
                        "audit: {{path: \"{}\", durability: interval}}\n",
                        a.display()
                    ));
                }
                y
            }
        }
    }
}

/// The gateway config: one listener, one streamable-http backend named `lab`, the policy
/// pipeline's two stages (an access list and a call budget, neither refusing the bench's calls:
/// their cost is part of every figure), and the telemetry asked for.
pub(crate) fn gateway_yaml(port: u16, backend_url: &str, telemetry: &Telemetry) -> String {
    format!(
        "# generated by switchboard-loadtest bench\n\
         listeners: [{{name: bench, bind: \"127.0.0.1:{port}\", auth: {{mode: none}}}}]\n\
         sessions: {{max_in_flight: 256, max_sessions: 20000}}\n\
         log: {{level: warn}}\n\
         backends:\n  \
           - {{name: lab, transport: streamable-http, url: \"{backend_url}\"}}\n\
         policy:\n  \
           - {{stage: access-list, rules: [{{effect: deny, backend: lab, tool: 'delete_*'}}]}}\n  \
           - {{stage: call-budget, max_calls: 1000000000}}\n{}",
        telemetry.yaml()
    )
}

/// Starts `BIN serve --config FILE` and waits for `GET /readyz` → 200.
/// `name` tells the config and log files of several gateways apart. `OTEL_*` variables are not
/// passed on: the config alone decides where telemetry goes.
pub(crate) async fn start_gateway(
    bin: &Path,
    workdir: &Path,
    name: &str,
    backend: &Target,
    telemetry: &Telemetry,
) -> anyhow::Result<(Child, Target)> {
    let port = free_port()?;
    let config = workdir.join(format!("{name}.yaml"));
    std::fs::write(&config, gateway_yaml(port, &backend.url, telemetry))
        .with_context(|| format!("writing {}", config.display()))?;
    let mut command = Command::new(bin);
    command.arg("serve").arg("--config").arg(&config);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    let mut child = Child::spawn(
        "gateway",
        command,
        workdir.join(format!("{name}.log")),
        false,
    )?;
    let target = Target::parse(&format!("http://127.0.0.1:{port}/mcp"))?;
    wait_ready(&mut child, &target.with_path("/readyz")).await?;
    Ok((child, target))
}

async fn wait_ready(child: &mut Child, readyz: &Target) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    let mut conn = Conn::new(readyz.clone());
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        child.check_alive()?;
        match conn
            .send(
                Method::GET,
                Bytes::new(),
                Headers::Plain,
                Duration::from_secs(1),
            )
            .await
        {
            Ok(reply) if reply.status == StatusCode::OK => return Ok(()),
            Ok(reply) => last = format!("HTTP {}", reply.status),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    bail!(
        "{} not ready within {START_LIMIT:?} ({last}); {}",
        readyz.url,
        child.log_tail()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(
            parse_listening("listening on http://127.0.0.1:4321/mcp"),
            Some("http://127.0.0.1:4321/mcp")
        );
        assert_eq!(
            parse_listening("lab: listening on http://127.0.0.1:1/mcp (echo)"),
            Some("http://127.0.0.1:1/mcp")
        );
        assert_eq!(parse_listening("listening on stdio"), None);
        assert_eq!(parse_listening("ready"), None);
    }

    #[test]
    fn gateway_config_has_the_expected_shape() {
        let yaml = gateway_yaml(8123, "http://127.0.0.1:9000/mcp", &Telemetry::Default);
        assert!(
            yaml.contains(
                r#"listeners: [{name: bench, bind: "127.0.0.1:8123", auth: {mode: none}}]"#
            )
        );
        assert!(yaml.contains("sessions: {max_in_flight: 256, max_sessions: 20000}"));
        assert!(yaml.contains("log: {level: warn}"));
        assert!(yaml.contains(
            "backends:\n  - {name: lab, transport: streamable-http, url: \"http://127.0.0.1:9000/mcp\"}\n"
        ));
        assert!(yaml.contains("stage: access-list") && yaml.contains("stage: call-budget"));
    }

    #[test]
    fn gateway_config_with_telemetry_off_and_on() {
        let off = gateway_yaml(1, "http://127.0.0.1:2/mcp", &Telemetry::Off);
        assert!(
            off.ends_with("telemetry: {metrics: {prometheus: false}}\n"),
            "{off}"
        );
        let on = Telemetry::On {
            otlp: "http://127.0.0.1:4318".into(),
            audit: Some(PathBuf::from("/tmp/x/audit.jsonl")),
            sample_ratio: None,
        };
        let on = gateway_yaml(1, "http://127.0.0.1:2/mcp", &on);
        assert!(
            on.contains(
                "telemetry:\n  otlp: {endpoint: \"http://127.0.0.1:4318\", protocol: http/protobuf}\n  metrics: {prometheus: true}\n"
            ),
            "{on}"
        );
        assert!(
            on.ends_with("audit: {path: \"/tmp/x/audit.jsonl\", durability: interval}\n"),
            "{on}"
        );
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
