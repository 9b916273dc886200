//! Test-side WebSocket MCP server: a tokio-tungstenite listener on 127.0.0.1:0 piping frames to a real server-everything stdio process.
#![allow(dead_code)]

use std::process::Stdio;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue};

use super::upstream_peers::{NODE, everything};

/// How a bridged session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client sent a close frame.
    ClientCloseFrame,
    /// The socket broke or ended without a close frame.
    SocketDropped,
    /// server-everything exited.
    BackendExited,
    /// The test asked the bridge to hang up.
    HungUp,
}

/// One-connection bridge; the node process and the task end on drop.
pub(crate) struct WsBridge {
    pub(crate) url: String,
    /// Headers of the client's upgrade request.
    pub(crate) upgrade_headers: oneshot::Receiver<HeaderMap>,
    pub(crate) ended: oneshot::Receiver<Ended>,
    hang_up: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl WsBridge {
    /// Closes the socket from the server side (close frame).
    pub(crate) fn hang_up(&mut self) {
        if let Some(tx) = self.hang_up.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for WsBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn offers_mcp(req: &Request) -> bool {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "mcp"))
}

pub(crate) async fn start_ws_bridge() -> WsBridge {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/mcp", listener.local_addr().unwrap());
    let (headers_tx, upgrade_headers) = oneshot::channel();
    let (ended_tx, ended) = oneshot::channel();
    let (hang_up, mut hang_up_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // The error type is tungstenite's (an HTTP response), not ours to shrink.
        #[allow(clippy::result_large_err)]
        let callback = move |req: &Request, mut resp: Response| {
            if offers_mcp(req) {
                resp.headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
            }
            let _ = headers_tx.send(req.headers().clone());
            Ok(resp)
        };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        let mut child = Command::new(NODE)
            .arg(everything())
            .arg("stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut sink, mut stream) = ws.split();
        let how = loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Frame::Text(t))) => {
                        stdin.write_all(t.as_bytes()).await.unwrap();
                        stdin.write_all(b"\n").await.unwrap();
                    }
                    Some(Ok(Frame::Close(_))) => {
                        let _ = sink.close().await; // flushes tungstenite's close reply
                        break Ended::ClientCloseFrame;
                    }
                    Some(Ok(_)) => {}
                    _ => break Ended::SocketDropped,
                },
                line = lines.next_line() => match line {
                    Ok(Some(l)) => {
                        if sink.send(Frame::text(l)).await.is_err() {
                            break Ended::SocketDropped;
                        }
                    }
                    _ => break Ended::BackendExited,
                },
                _ = &mut hang_up_rx => {
                    let _ = sink.send(Frame::Close(None)).await;
                    break Ended::HungUp;
                }
            }
        };
        let _ = ended_tx.send(how);
        let _ = child.kill().await;
    });
    WsBridge {
        url,
        upgrade_headers,
        ended,
        hang_up: Some(hang_up),
        task,
    }
}
