//! stdio transport: newline-delimited JSON-RPC on stdin/stdout; returns when stdin closes.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::core::{Frame, Server, Session};
use crate::jsonrpc::{Incoming, decode, encode_response};

/// Serves one session over the process's stdin/stdout.
pub(crate) async fn serve(server: Arc<Server>) -> anyhow::Result<()> {
    serve_io(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one session over any reader/writer pair (stdin/stdout in production).
pub(crate) async fn serve_io<R, W>(server: Arc<Server>, input: R, output: W) -> anyhow::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let session = Arc::new(Session::new(None));
    let (tx, rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(write_frames(rx, output));

    let hub_task = {
        let mut hub = server.hub().subscribe();
        let session = Arc::clone(&session);
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(note) = hub.next_for(&session).await {
                if tx.send(Frame::Message(note)).is_err() {
                    break;
                }
            }
        })
    };

    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        match decode(line.as_bytes()) {
            Ok(Incoming::Request { id, method, params }) => {
                server.spawn_request(Arc::clone(&session), id, method, params, tx.clone(), None);
            }
            Ok(Incoming::Notification { method, params }) => {
                server.handle_notification(&session, &method, &params);
            }
            Ok(Incoming::Response { id, result }) => {
                if !session.resolve(&id, result) {
                    tracing::debug!(%id, "response to unknown server request");
                }
            }
            Err(e) => {
                let _ = tx.send(Frame::Final(encode_response(
                    &serde_json::Value::Null,
                    &Err(e),
                )));
            }
        }
    }
    tracing::debug!("stdin closed; stopping");
    session.cancel_all();
    hub_task.abort();
    drop(tx);
    // Let already-queued output drain, but never hang on a request that is still running.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), writer).await;
    Ok(())
}

async fn write_frames<W>(mut rx: mpsc::UnboundedReceiver<Frame>, mut out: W)
where
    W: tokio::io::AsyncWrite + Unpin,
{
    while let Some(frame) = rx.recv().await {
        let body = match frame {
            Frame::Message(b) | Frame::Final(b) => b,
            Frame::CloseStream => continue,
        };
        let ok = out.write_all(&body).await.is_ok() && out.write_all(b"\n").await.is_ok();
        if !ok {
            break;
        }
        if rx.is_empty() && out.flush().await.is_err() {
            break;
        }
    }
}
