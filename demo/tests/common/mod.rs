//! Shared helpers for the integration tests: spawn the real `switchboard-demo` binary and talk
//! to it as an MCP client over stdio or Streamable HTTP. Every wait is bounded by [`TIMEOUT`].
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Upper bound for any single wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard-demo");

/// Awaits `f` or panics with `what` after [`TIMEOUT`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub fn init_params(capabilities: Value) -> Value {
    json!({
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": { "name": "demo-tests", "version": "0.0.0" },
    })
}

pub fn request(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

pub fn call(id: i64, tool: &str, args: Value) -> Value {
    request(id, "tools/call", json!({ "name": tool, "arguments": args }))
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// Text of the first content item of a tool result.
pub fn first_text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"))
}

// ---------------------------------------------------------------- stdio

/// A fixture server spawned with piped stdio.
pub struct StdioServer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl StdioServer {
    pub fn spawn(fixture: &str) -> Self {
        let mut child = Command::new(BIN)
            .arg(fixture)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
        }
    }

    pub async fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Next message from the server (`None` at EOF).
    pub async fn recv(&mut self) -> Option<Value> {
        let line = within("a stdout line", self.lines.next_line())
            .await
            .unwrap()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}")))
    }

    /// Reads messages until the response to `id`; returns it and everything seen before it.
    pub async fn until_response(&mut self, id: i64) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let msg = self.recv().await.expect("server closed stdout");
            if msg.get("method").is_none() && msg["id"] == json!(id) {
                return (msg, before);
            }
            before.push(msg);
        }
    }

    pub async fn initialize(&mut self, capabilities: Value) -> Value {
        self.send(&request(0, "initialize", init_params(capabilities)))
            .await;
        let (resp, _) = self.until_response(0).await;
        self.send(&notification("notifications/initialized", json!({})))
            .await;
        resp
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }
}

// ---------------------------------------------------------------- HTTP

/// A fixture server spawned with `--http 127.0.0.1:0`.
pub struct HttpServer {
    pub child: Child,
    pub url: String,
}

impl HttpServer {
    pub async fn spawn(fixture: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args([fixture, "--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = within("the listening line", lines.next_line())
            .await
            .unwrap()
            .unwrap();
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_owned();
        Self { child, url }
    }

    pub async fn client(&self, capabilities: Value) -> HttpClient {
        let mut c = HttpClient::new(&self.url);
        c.initialize(capabilities).await;
        c
    }
}

/// A minimal Streamable HTTP MCP client.
pub struct HttpClient {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
}

/// A POST answer: a JSON body or an SSE stream.
pub enum Reply {
    Json(Value),
    Sse(SseStream),
}

impl Reply {
    /// The JSON-RPC response to `id`, collecting messages that came before it.
    pub async fn response(self, id: i64) -> (Value, Vec<Value>) {
        match self {
            Reply::Json(v) => (v, Vec::new()),
            Reply::Sse(mut s) => {
                let mut before = Vec::new();
                loop {
                    let msg = s
                        .next()
                        .await
                        .expect("SSE stream ended before the response");
                    if msg.get("method").is_none() && msg["id"] == json!(id) {
                        return (msg, before);
                    }
                    before.push(msg);
                }
            }
        }
    }

    pub fn is_sse(&self) -> bool {
        matches!(self, Reply::Sse(_))
    }
}

impl HttpClient {
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            session: None,
        }
    }

    pub fn post_builder(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(s) = &self.session {
            b = b.header("mcp-session-id", s);
        }
        b
    }

    pub async fn post_raw(&self, body: &Value) -> reqwest::Response {
        within("POST", self.post_builder(body).send())
            .await
            .unwrap()
    }

    pub async fn post(&self, body: &Value) -> Reply {
        let resp = self.post_raw(body).await;
        assert_eq!(resp.status(), 200, "POST {body}");
        into_reply(resp).await
    }

    /// Sends a request and returns its response plus anything streamed before it.
    pub async fn rpc(&self, body: &Value) -> (Value, Vec<Value>) {
        let id = body["id"].as_i64().unwrap();
        within("a response", self.post(body).await.response(id)).await
    }

    /// Posts a notification or response; the server must answer 202.
    pub async fn post_accepted(&self, body: &Value) {
        let resp = self.post_raw(body).await;
        assert_eq!(resp.status(), 202, "POST {body}");
    }

    pub async fn initialize(&mut self, capabilities: Value) -> Value {
        let resp = self
            .post_raw(&request(0, "initialize", init_params(capabilities)))
            .await;
        assert_eq!(resp.status(), 200);
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .expect("no Mcp-Session-Id")
            .to_str()
            .unwrap()
            .to_owned();
        self.session = Some(sid);
        let Reply::Json(v) = into_reply(resp).await else {
            panic!("initialize answered with SSE")
        };
        self.post_accepted(&notification("notifications/initialized", json!({})))
            .await;
        v
    }

    /// Opens the standalone GET stream.
    pub async fn open_get(&self) -> SseStream {
        let mut b = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream");
        if let Some(s) = &self.session {
            b = b.header("mcp-session-id", s);
        }
        let resp = within("GET", b.send()).await.unwrap();
        assert_eq!(resp.status(), 200);
        SseStream::new(resp)
    }
}

async fn into_reply(resp: reqwest::Response) -> Reply {
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if ct.starts_with("text/event-stream") {
        Reply::Sse(SseStream::new(resp))
    } else {
        let body = within("a JSON body", resp.bytes()).await.unwrap();
        Reply::Json(serde_json::from_slice(&body).unwrap())
    }
}

/// Parses `data:` payloads of an SSE response into JSON messages (skipping empty events).
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    pub last_event_id: Option<String>,
}

impl SseStream {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            last_event_id: None,
        }
    }

    /// Next JSON message, or `None` when the stream ends. Bounded by [`TIMEOUT`].
    pub async fn next(&mut self) -> Option<Value> {
        within("an SSE event", self.next_unbounded()).await
    }

    async fn next_unbounded(&mut self) -> Option<Value> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(raw).unwrap();
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        self.last_event_id = Some(id.to_owned());
                    } else if let Some(d) = line
                        .strip_prefix("data: ")
                        .or_else(|| line.strip_prefix("data:"))
                    {
                        data.push_str(d);
                    }
                }
                if !data.trim().is_empty() {
                    return Some(serde_json::from_str(&data).unwrap());
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }
}
