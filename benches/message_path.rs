//! Per-message hot path of the gateway, through the crate's public API only: JSON-RPC parse and
//! serialize, result re-wrapping, SSE framing, catalog lookup and tools/list rendering, and one
//! end-to-end `tools/call` through an in-process gateway in front of the `lab` fixture over HTTP.
//!
//! `cargo bench --bench message_path` (a few minutes). The end-to-end group needs
//! the `switchboard` binary Cargo builds alongside this bench.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use switchboard::catalog::{Snapshot, View};
use switchboard::config::{Config, NamingPolicy};
use switchboard::gateway::Gateway;
use switchboard::protocol::era2026::{self, Peeked};
use switchboard::protocol::jsonrpc::encode_result;
use switchboard::protocol::{Message, RequestId, methods, sse};

/// A tools/call as an MCP client sends it (prefixed name, arguments, a progress token).
const TOOLS_CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"lab__echo","arguments":{"text":"hello from the benchmark","count":3,"flags":["a","b"]},"_meta":{"progressToken":"tok-42"}}}"#;

/// A ~10 KiB tools/call result: several text blocks with escapes, structured content.
fn big_response() -> Vec<u8> {
    let line = "The quick brown fox \\\"jumps\\\" over the lazy dog.\\n";
    let mut content = Vec::new();
    for i in 0..8 {
        let text: String = std::iter::repeat_n(line, 24).collect();
        content.push(format!(r#"{{"type":"text","text":"block {i}: {text}"}}"#));
    }
    let s = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{}],"structuredContent":{{"rows":[1,2,3,4,5],"ok":true}},"isError":false}}}}"#,
        content.join(",")
    );
    assert!(s.len() > 10 * 1024 - 512, "response is {} bytes", s.len());
    s.into_bytes()
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

fn codec(c: &mut Criterion) {
    let big = big_response();
    let mut g = c.benchmark_group("jsonrpc");
    g.throughput(Throughput::Bytes(TOOLS_CALL.len() as u64));
    g.bench_function("parse_tools_call", |b| {
        b.iter(|| Message::parse(black_box(TOOLS_CALL)).unwrap())
    });
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("parse_response_10k", |b| {
        b.iter(|| Message::parse(black_box(&big)).unwrap())
    });
    let req = Message::parse(TOOLS_CALL).unwrap();
    g.throughput(Throughput::Bytes(TOOLS_CALL.len() as u64));
    g.bench_function("to_bytes_tools_call", |b| {
        b.iter(|| black_box(&req).to_bytes())
    });
    let resp = Message::parse(&big).unwrap();
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("to_bytes_response_10k", |b| {
        b.iter(|| black_box(&resp).to_bytes())
    });
    let Message::Response(r) = &resp else {
        unreachable!()
    };
    let raw = r.outcome.as_ref().unwrap().get().as_bytes();
    let id = RequestId::Str("client-req-0042".into());
    g.bench_function("encode_result_10k", |b| {
        b.iter(|| encode_result(black_box(&id), black_box(raw)))
    });
    let json = encode_result(&id, raw);
    g.bench_function("sse_encode_message_10k", |b| {
        b.iter(|| sse::encode_message(Some(black_box("17-3")), black_box(&json)))
    });
    g.finish();
}

/// A progress notification as a backend sends it during a call.
const PROGRESS: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-42","progress":3,"total":10,"message":"step 3 of 10"}}"#;

/// What `listener/stateless/call.rs` does with each message on a 2026 call's stream: the final
/// answer gets `resultType`, the serverInfo stamp and the client's id spliced into its raw text;
/// a notification is told apart by its method and passed on as it is.
fn stateless(c: &mut Criterion) {
    let big = big_response();
    let id = RequestId::Str("client-req-0042".into());
    let info = json!({"name": "switchboard", "version": "0.1.0"});
    let mut g = c.benchmark_group("stateless");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("final_answer_10k", |b| {
        b.iter(|| match era2026::peek(black_box(&big)) {
            Peeked::Result(raw) => {
                era2026::encode_complete(black_box(&id), raw.get(), black_box(&info), None).unwrap()
            }
            other => panic!("{other:?}"),
        })
    });
    g.throughput(Throughput::Bytes(PROGRESS.len() as u64));
    g.bench_function("classify_progress", |b| {
        b.iter(|| {
            matches!(era2026::peek(black_box(PROGRESS)),
                Peeked::Notification(m) if m == methods::PROGRESS)
        })
    });
    g.finish();
}

/// Four backends of 50 tools each, with realistic input schemas.
fn catalog_view() -> (View, Vec<String>) {
    let names = ["lab", "notes", "tickets", "search"];
    let snaps: Vec<Option<Arc<Snapshot>>> = names
        .iter()
        .map(|b| {
            let tools = (0..50)
                .map(|i| {
                    let v = json!({
                        "name": format!("{b}_tool_{i:02}"),
                        "description": format!("Tool {i} of {b}: does something useful with its arguments."),
                        "inputSchema": {"type": "object", "properties": {
                            "query": {"type": "string", "description": "what to look for"},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 100}
                        }, "required": ["query"]},
                    });
                    match v {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    }
                })
                .collect();
            Some(Arc::new(Snapshot {
                tools,
                ..Snapshot::default()
            }))
        })
        .collect();
    let view = View::merged(&names, &snaps, NamingPolicy::Prefix);
    let lookups = names
        .iter()
        .flat_map(|b| {
            (0..50)
                .step_by(7)
                .map(move |i| format!("{b}__{b}_tool_{i:02}"))
        })
        .collect();
    (view, lookups)
}

/// What `tools/list` does with a view: concatenate each tool's pre-serialized JSON (the same
/// loop as the session's local answer, without the policy filter, which is empty by default).
fn render_tools_list(view: &View) -> Bytes {
    let mut out = BytesMut::with_capacity(
        64 + view
            .tools
            .iter()
            .map(|e| e.json.get().len() + 1)
            .sum::<usize>(),
    );
    out.put_slice(b"{\"tools\":[");
    for (i, e) in view.tools.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(e.json.get().as_bytes());
    }
    out.put_slice(b"]}");
    out.freeze()
}

fn catalog(c: &mut Criterion) {
    let (view, lookups) = catalog_view();
    assert_eq!(view.tools.len(), 200);
    let mut g = c.benchmark_group("catalog");
    let mut i = 0;
    g.bench_function("view_tool_lookup_200", |b| {
        b.iter(|| {
            i = (i + 1) % lookups.len();
            view.tool(black_box(&lookups[i])).unwrap().backend
        })
    });
    g.bench_function("tools_list_render_200", |b| {
        b.iter(|| render_tools_list(black_box(&view)))
    });
    let id = RequestId::Num(3);
    g.bench_function("tools_list_render_and_wrap_200", |b| {
        b.iter(|| encode_result(&id, &render_tools_list(black_box(&view))))
    });
    g.bench_function("view_merged_build_200", |b| {
        b.iter_with_large_drop(catalog_view)
    });
    g.finish();
}

/// The `lab` fixture over Streamable HTTP, in a child process killed on drop.
struct Fixture {
    child: Child,
    url: String,
}

impl Fixture {
    fn start() -> Option<Fixture> {
        // Cargo builds the binary (same profile as this bench) before running benches.
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_switchboard"));
        let mut child = Command::new(&bin)
            .args(["demo-backend", "lab", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lab fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read listening line");
        let url = line
            .split_once("listening on ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .expect("listening on … line")
            .to_string();
        Some(Fixture { child, url })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One MCP session on one keep-alive HTTP/1.1 connection.
struct Client {
    send: SendRequest<Full<Bytes>>,
    authority: String,
    path: String,
    session: Option<String>,
}

impl Client {
    async fn connect(url: &str) -> Client {
        let uri: hyper::Uri = url.parse().unwrap();
        let authority = uri.authority().unwrap().to_string();
        let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut c = Client {
            send,
            authority,
            path: uri.path().to_string(),
            session: None,
        };
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}});
        c.post(Bytes::from(init.to_string())).await;
        c.post(Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ))
        .await;
        c
    }

    async fn post(&mut self, body: Bytes) -> Bytes {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        self.send.ready().await.unwrap();
        let resp = self
            .send
            .send_request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_string());
        }
        assert!(resp.status().is_success(), "HTTP {}", resp.status());
        resp.into_body().collect().await.unwrap().to_bytes()
    }
}

fn end_to_end(c: &mut Criterion) {
    let Some(fixture) = Fixture::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let yaml = format!(
        "listeners: [{{name: bench, bind: '127.0.0.1:0', naming: prefix, auth: {{mode: none}}}}]\n\
         sessions: {{max_in_flight: 256}}\n\
         backends:\n  - {{name: lab, transport: streamable-http, url: '{}'}}\n",
        fixture.url
    );
    let gw = rt.block_on(async {
        let gw = Gateway::start(Config::from_yaml(&yaml).unwrap())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), gw.ready())
            .await
            .expect("catalog ready");
        gw
    });
    let direct_call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
    let gw_call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lab__echo","arguments":{"text":"hi"}}}"#;
    let mut g = c.benchmark_group("e2e");
    for (name, url, body) in [
        (
            "tools_call_echo_direct",
            fixture.url.clone(),
            &direct_call[..],
        ),
        ("tools_call_echo_gateway", gw.url(), &gw_call[..]),
    ] {
        let client = rt.block_on(Client::connect(&url));
        let client = Arc::new(tokio::sync::Mutex::new(client));
        let body = Bytes::copy_from_slice(body);
        let first = rt.block_on(async { client.lock().await.post(body.clone()).await });
        assert!(
            first.windows(2).any(|w| w == b"hi") && !first.windows(7).any(|w| w == b"\"error\""),
            "unexpected answer: {}",
            String::from_utf8_lossy(&first)
        );
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let (client, body) = (client.clone(), body.clone());
                async move { client.lock().await.post(body).await }
            })
        });
    }
    g.finish();
    rt.block_on(gw.shutdown());
    drop(fixture);
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec, stateless, catalog, end_to_end
}
criterion_main!(benches);
