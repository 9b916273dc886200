//! Test-side WebSocket MCP server for any number of connections: each accepted socket gets its own
//! stdio MCP server process (e.g. `switchboard demo-backend notes`), one JSON-RPC message per text
//! frame, subprotocol `mcp`. No WebSocket MCP server ships on npm, so this stands in for one.
//!
//! Include with `#[path = "common/ws_stdio_bridge.rs"] mod ws_stdio_bridge;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A listening bridge; every connection and server process ends when it is dropped.
pub(crate) struct WsStdioBridge {
    pub(crate) url: String,
    /// WebSocket connections accepted so far.
    pub(crate) accepted: Arc<AtomicUsize>,
    /// Connections still open (their server process running).
    pub(crate) open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl WsStdioBridge {
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for WsStdioBridge {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task; their
        // server processes are `kill_on_drop`.
        self.task.abort();
    }
}

/// Listens on 127.0.0.1:0 and serves each connection with a fresh `program args…` process.
pub(crate) async fn start_ws_stdio_bridge(program: PathBuf, args: Vec<String>) -> WsStdioBridge {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind bridge");
    let url = format!("ws://{}/mcp", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (count, live) = (accepted.clone(), open.clone());
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::AcqRel);
            live.fetch_add(1, Ordering::AcqRel);
            let (program, args, live) = (program.clone(), args.clone(), live.clone());
            conns.spawn(async move {
                serve(tcp, program, args).await;
                live.fetch_sub(1, Ordering::AcqRel);
            });
        }
    });
    WsStdioBridge {
        url,
        accepted,
        open,
        task,
    }
}

async fn serve(tcp: TcpStream, program: PathBuf, args: Vec<String>) {
    // The error type is tungstenite's (an HTTP response), not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| {
        let offers_mcp = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim() == "mcp"));
        if offers_mcp {
            resp.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let mut child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the bridged stdio server");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Frame::Text(t))) => {
                    if stdin.write_all(t.as_bytes()).await.is_err()
                        || stdin.write_all(b"\n").await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Frame::Close(_))) => {
                    let _ = sink.close().await;
                    break;
                }
                Some(Ok(_)) => {}
                _ => break,
            },
            line = lines.next_line() => match line {
                Ok(Some(l)) => {
                    if sink.send(Frame::text(l)).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
        }
    }
    let _ = child.kill().await;
}
