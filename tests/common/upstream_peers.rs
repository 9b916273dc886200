//! Real MCP peers and client-side helpers for the upstream transport tests: node processes, backend configs, the MCP handshake, waiting on events.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::{BackendConfig, Secret, Timeouts, TransportConfig};
use switchboard::protocol::{Message, RequestId};
use switchboard::upstream::{Upstream, UpstreamEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Node 20 from the distribution; server-everything runs on it.
pub(crate) const NODE: &str = "/usr/bin/node";
/// Failure bound for any single expected event.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=switchboard=debug`).
pub(crate) fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub(crate) fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub(crate) fn everything() -> String {
    tests_dir()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Secret::new(*v)))
        .collect()
}

fn backend(name: &str, transport: TransportConfig) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        transport,
        timeouts: Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        },
        auth: None,
        pinning: None,
    }
}

pub(crate) fn stdio_backend(command: &str, args: &[&str], env: &[(&str, &str)]) -> BackendConfig {
    backend(
        "stdio-peer",
        TransportConfig::Stdio {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: secrets(env),
            cwd: None,
        },
    )
}

pub(crate) fn everything_stdio_backend(env: &[(&str, &str)]) -> BackendConfig {
    stdio_backend(NODE, &[&everything(), "stdio"], env)
}

pub(crate) fn http_backend(url: &str, headers: &[(&str, &str)]) -> BackendConfig {
    backend(
        "http-peer",
        TransportConfig::StreamableHttp {
            url: url.into(),
            headers: secrets(headers),
        },
    )
}

pub(crate) fn ws_backend(url: &str, headers: &[(&str, &str)]) -> BackendConfig {
    backend(
        "ws-peer",
        TransportConfig::WebSocket {
            url: url.into(),
            headers: secrets(headers),
        },
    )
}

/// A node HTTP peer on 127.0.0.1 (forced by `tests/peers/loopback.cjs`); killed on drop.
pub(crate) struct HttpPeer {
    _child: Child,
    pub(crate) port: u16,
}

impl HttpPeer {
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The strict front's live backend sessions (`GET /test/sessions`).
    pub(crate) async fn live_sessions(&self) -> u64 {
        let body = reqwest::get(format!("{}/test/sessions", self.base()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["count"].as_u64().unwrap()
    }
}

/// Starts `node --require loopback.cjs <args>` with `PORT` and waits for its "listening" line.
pub(crate) async fn start_http_peer(args: &[&str], env: &[(&str, &str)]) -> HttpPeer {
    let port = free_port();
    let mut child = Command::new(NODE)
        .arg("--require")
        .arg(tests_dir().join("peers/loopback.cjs"))
        .args(args)
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .current_dir(tests_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node peer");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on port") {
                return;
            }
        }
        panic!("node peer exited before listening");
    })
    .await
    .expect("node peer did not start listening");
    // Keep draining stderr so the peer never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    HttpPeer {
        _child: child,
        port,
    }
}

/// The real `server-everything streamableHttp`.
pub(crate) async fn everything_http() -> HttpPeer {
    start_http_peer(&[&everything(), "streamableHttp"], &[]).await
}

/// server-everything behind the spec-strict front (`tests/peers/upstream_strict_http.mjs`).
pub(crate) async fn strict_http(json_responses: bool) -> HttpPeer {
    let script = tests_dir().join("peers/upstream_strict_http.mjs");
    let json = if json_responses { "1" } else { "0" };
    start_http_peer(&[&script.display().to_string()], &[("JSON_RESPONSE", json)]).await
}

pub(crate) fn request(id: i64, method: &str, params: Value) -> Message {
    let v = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    Message::parse(v.to_string().as_bytes()).unwrap()
}

pub(crate) fn notification(method: &str) -> Message {
    let v = json!({"jsonrpc": "2.0", "method": method});
    Message::parse(v.to_string().as_bytes()).unwrap()
}

pub(crate) fn response(id: RequestId, result: Value) -> Message {
    let v = json!({"jsonrpc": "2.0", "id": id, "result": result});
    Message::parse(v.to_string().as_bytes()).unwrap()
}

/// Waits (bounded by `WAIT`) for the first event `pick` accepts, skipping others. An
/// unexpected `Closed`, `SendFailed` or `SessionExpired` fails the test at once.
pub(crate) async fn wait_for<T>(
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    what: &str,
    mut pick: impl FnMut(&UpstreamEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("event channel closed");
            if let Some(t) = pick(&ev) {
                return t;
            }
            if !matches!(ev, UpstreamEvent::Message { .. }) {
                panic!("unexpected event while waiting for {what}: {ev:?}");
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for the response to request `id`: its result (an error response fails the test)
/// and the `related` id it arrived with.
pub(crate) async fn result_of(
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    id: i64,
) -> (Value, Option<RequestId>) {
    wait_for(rx, &format!("response {id}"), |ev| match ev {
        UpstreamEvent::Message {
            msg: Message::Response(r),
            related,
        } if r.id == RequestId::Num(id) => {
            let raw = r.outcome.as_ref().expect("error response");
            Some((serde_json::from_str(raw.get()).unwrap(), related.clone()))
        }
        _ => None,
    })
    .await
}

/// The owner's side of the MCP handshake: `initialize` (id 1 unless given) then
/// `notifications/initialized`. Returns the initialize result.
pub(crate) async fn handshake(
    up: &Upstream,
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    id: i64,
    capabilities: Value,
) -> Value {
    let params = json!({
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": {"name": "switchboard-upstream-tests", "version": "0"},
    });
    up.send(request(id, "initialize", params)).await.unwrap();
    let (result, _) = result_of(rx, id).await;
    up.send(notification("notifications/initialized"))
        .await
        .unwrap();
    result
}

/// Calls the `echo` tool; returns its text and the `related` id of the response.
pub(crate) async fn echo(
    up: &Upstream,
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    id: i64,
    text: &str,
) -> (String, Option<RequestId>) {
    up.send(request(id, "tools/call", echo_params(text)))
        .await
        .unwrap();
    let (result, related) = result_of(rx, id).await;
    (tool_text(&result), related)
}

pub(crate) fn echo_params(text: &str) -> Value {
    json!({"name": "echo", "arguments": {"message": text}})
}

pub(crate) fn tool_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .expect("text content")
        .to_string()
}

/// Names of the tools in a `tools/list` answer.
pub(crate) async fn tool_names(
    up: &Upstream,
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    id: i64,
) -> (Vec<String>, Option<RequestId>) {
    up.send(request(id, "tools/list", json!({}))).await.unwrap();
    let (result, related) = result_of(rx, id).await;
    let names = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    (names, related)
}

/// Processes of process group `pgid` that are still alive (zombies excluded), from /proc.
pub(crate) fn live_group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            out.push(pid);
        }
    }
    out
}
