//! Gateway test harness: start Switchboard in-process on port 0 in front of real backends, and a
//! raw Streamable HTTP client for protocol-level assertions.
//!
//! Include with `#[path = "common/gateway.rs"] mod gateway;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::gateway::Gateway;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The gateway binary (it also serves the demo/fixture backends via `demo-backend`).
pub(crate) fn switchboard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

/// YAML for a stdio backend running one of our fixtures.
pub(crate) fn fixture_stdio(name: &str, fixture: &str) -> String {
    format!(
        "  - name: {name}\n    transport: stdio\n    command: '{}'\n    args: [demo-backend, {fixture}]\n",
        switchboard_bin().display()
    )
}

/// YAML for a Streamable HTTP backend.
pub(crate) fn http_backend(name: &str, url: &str) -> String {
    format!("  - name: {name}\n    transport: streamable-http\n    url: '{url}'\n")
}

/// A fixture served over Streamable HTTP by a child process on 127.0.0.1 (killed on drop).
pub(crate) struct HttpFixture {
    pub(crate) url: String,
    pub(crate) child: Child,
}

impl HttpFixture {
    pub(crate) async fn start(fixture: &str) -> Self {
        Self::start_on(fixture, "127.0.0.1:0").await
    }

    pub(crate) async fn start_on(fixture: &str, addr: &str) -> Self {
        let mut child = Command::new(switchboard_bin())
            .args(["demo-backend", fixture, "--http", addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn fixture");
        let out = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(out).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("fixture did not start within 20s")
            .expect("read fixture stdout")
            .expect("fixture exited before listening");
        let url = line
            .strip_prefix("listening on ")
            .expect("listening line")
            .trim()
            .to_string();
        HttpFixture { url, child }
    }

    pub(crate) fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches("/mcp").parse().ok())
            .expect("port")
    }

    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A gateway running in this process.
pub(crate) struct TestGateway {
    pub(crate) gw: Option<Gateway>,
    pub(crate) url: String,
    pub(crate) base: String,
}

impl TestGateway {
    /// Starts a gateway on 127.0.0.1:0 with the given `backends:` YAML entries and extra top-level YAML.
    pub(crate) async fn start(backends: &[String], extra: &str) -> Self {
        let yaml = format!(
            "listeners: [{{name: test, bind: '127.0.0.1:0', auth: {{mode: none}}{listener}}}]\n{extra}\nbackends:\n{}",
            backends.concat(),
            listener = if extra.contains("naming: prefix") {
                ", naming: prefix"
            } else {
                ""
            },
            extra = extra.replace("naming: prefix", ""),
        );
        Self::start_yaml(&yaml).await
    }

    /// Starts a gateway from a whole config (its first listener should bind 127.0.0.1:0).
    pub(crate) async fn start_yaml(yaml: &str) -> Self {
        let cfg =
            Config::from_yaml(yaml).unwrap_or_else(|e| panic!("test config invalid: {e}\n{yaml}"));
        let gw = Gateway::start(cfg).await.expect("gateway starts");
        tokio::time::timeout(Duration::from_secs(30), gw.ready())
            .await
            .expect("catalog ready within 30s");
        let base = format!("http://{}", gw.local_addrs()[0]);
        TestGateway {
            url: gw.url(),
            base,
            gw: Some(gw),
        }
    }

    pub(crate) fn gateway(&self) -> &Gateway {
        self.gw.as_ref().expect("running")
    }

    pub(crate) async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

/// One HTTP exchange.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// SSE events as (id, data JSON or Null for empty data).
    /// The last JSON-RPC message: the whole body, or an SSE stream's last event.
    pub(crate) fn final_message(&self) -> Value {
        if self.content_type().starts_with("text/event-stream") {
            self.events().last().expect("an event").1.clone()
        } else {
            self.json()
        }
    }

    pub(crate) fn events(&self) -> Vec<(Option<String>, Value)> {
        parse_sse(&self.body)
    }
}

pub(crate) fn parse_sse(body: &str) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut id = None;
        let mut data = String::new();
        let mut any = false;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
                any = true;
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
                any = true;
            }
        }
        if any {
            out.push((id, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    out
}

/// A hand-driven MCP client speaking raw Streamable HTTP.
#[derive(Clone)]
pub(crate) struct RawClient {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) session: Option<String>,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub(crate) token: Option<String>,
}

impl RawClient {
    pub(crate) fn new(url: &str) -> Self {
        RawClient {
            http: reqwest::Client::new(),
            url: url.to_string(),
            session: None,
            token: None,
        }
    }

    /// A client that presents `token` (an access token or an API key).
    pub(crate) fn with_token(url: &str, token: &str) -> Self {
        RawClient {
            token: Some(token.to_string()),
            ..Self::new(url)
        }
    }

    /// `initialize` + `notifications/initialized`; declares sampling, elicitation and roots.
    pub(crate) async fn connect(url: &str) -> Self {
        Self::new(url).initialized().await
    }

    /// `connect` presenting `token`.
    pub(crate) async fn connect_with_token(url: &str, token: &str) -> Self {
        Self::with_token(url, token).initialized().await
    }

    async fn initialized(self) -> Self {
        let mut c = self;
        let r = c
            .post(
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-11-25",
                "capabilities":{"sampling":{},"elicitation":{},"roots":{}},
                "clientInfo":{"name":"raw-test","version":"1"}}}),
            )
            .await;
        assert_eq!(r.status, 200, "initialize failed: {}", r.body);
        c.session = Some(
            r.headers["mcp-session-id"]
                .to_str()
                .expect("ascii")
                .to_string(),
        );
        let r = c
            .post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        assert_eq!(r.status, 202);
        c
    }

    pub(crate) fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .request(method, &self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(30));
        if let Some(s) = &self.session {
            b = b
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        if let Some(t) = &self.token {
            b = b.bearer_auth(t);
        }
        b
    }

    /// A POST with only the session header: the test sets every other header itself.
    pub(crate) fn bare_post(&self) -> reqwest::RequestBuilder {
        let mut b = self.http.post(&self.url).timeout(Duration::from_secs(30));
        if let Some(t) = &self.token {
            b = b.bearer_auth(t);
        }
        match &self.session {
            Some(s) => b.header("mcp-session-id", s),
            None => b,
        }
    }

    pub(crate) async fn send(&self, b: reqwest::RequestBuilder) -> Reply {
        let r = b.send().await.expect("HTTP exchange");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn post(&self, msg: Value) -> Reply {
        self.send(self.request(reqwest::Method::POST).body(msg.to_string()))
            .await
    }

    pub(crate) async fn post_raw(&self, body: &str) -> Reply {
        self.send(self.request(reqwest::Method::POST).body(body.to_string()))
            .await
    }

    /// A request expected to end in one JSON-RPC response (JSON or the last SSE event).
    pub(crate) async fn call(&self, id: i64, method: &str, params: Value) -> Value {
        let r = self
            .post(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        assert_eq!(r.status, 200, "{method} failed: {}", r.body);
        if r.content_type().starts_with("text/event-stream") {
            r.events()
                .into_iter()
                .map(|(_, v)| v)
                .rfind(|v| v.get("id") == Some(&json!(id)))
                .expect("response event")
        } else {
            r.json()
        }
    }

    /// Opens the GET (server→client) stream and reads its priming event.
    pub(crate) async fn open_get_stream(&self) -> reqwest::Response {
        let mut listening = self
            .request(reqwest::Method::GET)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("GET stream");
        assert_eq!(listening.status(), 200);
        tokio::time::timeout(EVENT_WAIT, listening.chunk())
            .await
            .expect("priming event")
            .expect("GET stream readable");
        listening
    }

    /// Announces a 5 MiB tools/call (over the 4 MiB default limit) and sends only its start: the
    /// gateway must answer 413 from Content-Length alone, without reading the body. Raw TCP, so
    /// the answer is read whatever the gateway does with the rest of the upload.
    pub(crate) async fn post_oversized(&self, id: i64) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = url::Url::parse(&self.url).expect("gateway url");
        let authority = format!(
            "{}:{}",
            url.host_str().expect("host"),
            url.port_or_known_default().expect("port")
        );
        let mut tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect to the gateway");
        let mut head = format!(
            "POST {} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\ncontent-length: {}\r\n",
            url.path(),
            5 * 1024 * 1024
        );
        if let Some(s) = &self.session {
            head.push_str(&format!(
                "mcp-session-id: {s}\r\nmcp-protocol-version: 2025-11-25\r\n"
            ));
        }
        head.push_str("\r\n");
        head.push_str(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"xxxx"#
        ));
        tcp.write_all(head.as_bytes()).await.expect("send the head");
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
            .await
            .expect("an answer before the upload ends")
            .expect("read the answer");
        let status_line = String::from_utf8_lossy(&buf[..n]);
        status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {status_line:?}"))
    }

    pub(crate) async fn tool(&self, id: i64, name: &str, args: Value) -> Value {
        self.call(id, "tools/call", json!({"name": name, "arguments": args}))
            .await
    }
}

/// The text of a CallToolResult's first content block.
pub(crate) fn text(resp: &Value) -> String {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {resp}"))
        .to_string()
}

/// Upper bound for any one awaited condition in lifecycle tests (a failure bound, not a pace).
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(20);

impl RawClient {
    /// Starts a lab `sleep` call (with a progress token) and returns once the backend has begun
    /// sleeping — its first progress notification arrived. The handle yields the final response.
    /// `tool` is the name the gateway lists for lab's `sleep`.
    pub(crate) async fn start_sleep(
        &self,
        id: i64,
        tool: &str,
        ms: u64,
    ) -> tokio::task::JoinHandle<Value> {
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
            "name": tool, "arguments": {"ms": ms}, "_meta": {"progressToken": format!("sleep-{id}")}}});
        let req = self.request(reqwest::Method::POST).body(body.to_string());
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut resp = req.send().await.expect("slow call sent");
            let is_sse = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                // Answered at once (an error): there is no progress to wait for.
                drop(started_tx);
                let body = resp.text().await.expect("body");
                return serde_json::from_str(&body).unwrap_or(Value::String(body));
            }
            let mut started_tx = Some(started_tx);
            let mut buf = String::new();
            while let Some(chunk) = resp.chunk().await.expect("SSE stream") {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                if started_tx.is_some()
                    && parse_sse(&buf)
                        .iter()
                        .any(|(_, v)| v["method"] == "notifications/progress")
                    && let Some(tx) = started_tx.take()
                {
                    let _ = tx.send(());
                }
            }
            parse_sse(&buf)
                .into_iter()
                .map(|(_, v)| v)
                .rfind(|v| v.get("id") == Some(&json!(id)))
                .unwrap_or_else(|| panic!("no response event in {buf}"))
        });
        // An early error answer drops the sender; the handle then yields that error.
        let _ = tokio::time::timeout(EVENT_WAIT, started).await;
        task
    }
}

/// Polls `cond` until it holds or `within` passes; returns whether it held. For conditions only
/// the OS can tell (process exit), where there is no event to await.
pub(crate) async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(pid, state, ppid)` of every process in /proc.
fn proc_table() -> Vec<(i32, char, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
        let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        Some((pid, state, ppid))
    })
    .collect()
}

/// Every live (non-zombie) descendant of `root`: children, grandchildren, …
pub(crate) fn descendants(root: i32) -> Vec<i32> {
    let table = proc_table();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, state, ppid) in &table {
            if ppid == parent && state != 'Z' && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Whether `pid` has exited (gone from /proc, or a zombie waiting to be reaped).
pub(crate) fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_none_or(|s| s == "Z" || s == "X"),
    }
}

/// Live processes whose environment holds `entry` (`KEY=VALUE`): tells this test's backend
/// processes apart from those of tests running beside it in the same process.
pub(crate) fn pids_with_env(entry: &str) -> std::collections::BTreeSet<i32> {
    proc_table()
        .into_iter()
        .filter(|&(_, state, _)| state != 'Z')
        .filter(|&(pid, _, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == entry.as_bytes()))
        })
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Every text block of a CallToolResult, joined by newlines.
pub(crate) fn result_text(resp: &Value) -> String {
    let content = resp["result"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no result content: {resp}"));
    content
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The strings of a JSON array.
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The real `switchboard` binary running as a child process (killed on drop): its URL from the
/// `listening on` line, its stderr lines, ready (`/readyz` 200) before `start` returns.
pub(crate) struct GatewayProcess {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: i32,
    pub(crate) url: String,
    pub(crate) logs: mpsc::UnboundedReceiver<String>,
}

impl GatewayProcess {
    /// `switchboard serve --config <yaml written to a temp dir>`.
    pub(crate) async fn start(yaml: &str) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.yaml");
        std::fs::write(&path, yaml).expect("write config");
        let gw = Self::start_args(&["serve".as_ref(), "--config".as_ref(), path.as_os_str()]).await;
        (gw, dir)
    }

    /// `switchboard <args>`.
    pub(crate) async fn start_args(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(switchboard_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the gateway");
        let pid = i32::try_from(child.id().expect("pid")).expect("pid fits");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(EVENT_WAIT, stdout.next_line())
            .await
            .expect("gateway listening within the bound")
            .expect("read stdout")
            .expect("gateway exited before listening");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .trim()
            .to_string();
        let (tx, logs) = mpsc::unbounded_channel();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        tokio::spawn(async move {
            // Keep draining even if nobody listens, so the gateway never blocks on a full pipe.
            while let Ok(Some(l)) = stderr.next_line().await {
                let _ = tx.send(l);
            }
        });
        let base = url.trim_end_matches("/mcp").to_string();
        let deadline = std::time::Instant::now() + EVENT_WAIT;
        loop {
            let ready = reqwest::get(format!("{base}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gateway not ready in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        GatewayProcess {
            child,
            pid,
            url,
            logs,
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub(crate) async fn wait_log(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.logs.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("gateway stderr ended before {needle:?}");
        };
        tokio::time::timeout(EVENT_WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} log line in time"))
    }
}
