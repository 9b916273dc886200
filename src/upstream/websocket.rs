//! WebSocket client transport: one JSON-RPC message per text frame, subprotocol `mcp`, kept alive by pings.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as Frame, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{Instrument, debug, warn};

use super::credentials::Credentials;
use super::{AbortOnDrop, UpstreamError, UpstreamEvent, truncate_for_log};
use crate::config::{BackendConfig, TransportConfig};
use crate::protocol::Message;

/// Largest message or frame accepted from a backend.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Interval between keep-alive pings.
const PING_EVERY: Duration = Duration::from_secs(20);
/// With pings every 20 s a live peer sends something (at least a pong) well within this.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Frames queued for the socket before `send` waits.
const OUT_QUEUE: usize = 64;
/// How long `close()` waits for the peer to answer the close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open WebSocket to a backend; its reader and writer tasks end when this is dropped.
pub struct WsUpstream {
    name: Arc<str>,
    out: mpsc::Sender<Frame>,
    reader: AbortOnDrop,
    writer: AbortOnDrop,
}

impl std::fmt::Debug for WsUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsUpstream")
            .field("backend", &self.name)
            .finish_non_exhaustive()
    }
}

impl WsUpstream {
    /// Connects (bounded by the backend's connect timeout) with the configured headers, the
    /// gateway's credential (never the client's) and subprotocol `mcp`.
    pub async fn connect(
        cfg: &BackendConfig,
        credentials: &Credentials,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Self, UpstreamError> {
        let TransportConfig::WebSocket { url, headers } = &cfg.transport else {
            return Err(UpstreamError::Connect(format!(
                "backend {} is not a websocket backend",
                cfg.name
            )));
        };
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| UpstreamError::Connect(format!("backend url is invalid: {e}")))?;
        // The same validation (and secrets marked sensitive) as the HTTP transport's.
        req.headers_mut().extend(super::http::header_map(headers)?);
        let token = credentials.authorization().await?;
        if let Some(token) = &token {
            req.headers_mut().insert(AUTHORIZATION, token.clone());
        }
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connecting = tokio_tungstenite::connect_async_with_config(req, Some(config), true);
        let (socket, _) = timeout(cfg.timeouts.connect, connecting)
            .await
            .map_err(|_| UpstreamError::Timeout(cfg.timeouts.connect))?
            .map_err(|e| {
                if let (tungstenite::Error::Http(resp), Some(token)) = (&e, &token)
                    && resp.status() == tungstenite::http::StatusCode::UNAUTHORIZED
                {
                    credentials.rejected(token);
                }
                UpstreamError::Connect(format!("WebSocket handshake failed: {e}"))
            })?;
        let name: Arc<str> = cfg.name.as_str().into();
        debug!(backend = %name, "WebSocket connected");
        let (sink, stream) = socket.split();
        let (out, rx) = mpsc::channel(OUT_QUEUE);
        Ok(Self {
            reader: AbortOnDrop(tokio::spawn(
                read_frames(name.clone(), stream, events).in_current_span(),
            )),
            writer: AbortOnDrop(tokio::spawn(
                write_frames(name.clone(), sink, rx).in_current_span(),
            )),
            name,
            out,
        })
    }

    /// Queues one message as a text frame; waits only if the queue is full.
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        let text = Utf8Bytes::try_from(msg.to_bytes())
            .map_err(|_| UpstreamError::Protocol("message is not UTF-8".into()))?;
        self.out
            .send(Frame::Text(text))
            .await
            .map_err(|_| UpstreamError::Closed("WebSocket is closed".into()))
    }

    /// Sends a close frame and waits (bounded) for the peer's answer.
    pub async fn close(mut self) {
        if self.out.send(Frame::Close(None)).await.is_ok() {
            let _ = timeout(CLOSE_GRACE, &mut self.writer.0).await;
            let _ = timeout(CLOSE_GRACE, &mut self.reader.0).await;
        }
    }
}

/// Owns the sink: queued frames plus a ping every 20 s; a close frame ends it.
async fn write_frames(
    name: Arc<str>,
    mut sink: SplitSink<Socket, Frame>,
    mut rx: mpsc::Receiver<Frame>,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let frame = tokio::select! {
            next = rx.recv() => next.unwrap_or(Frame::Close(None)),
            _ = ping.tick() => Frame::Ping(Default::default()),
        };
        let closing = matches!(frame, Frame::Close(_));
        if let Err(error) = sink.send(frame).await {
            debug!(backend = %name, %error, "WebSocket write failed");
            return;
        }
        if closing {
            return;
        }
    }
}

/// Turns text frames into message events until the socket ends, then sends `Closed`.
async fn read_frames(
    name: Arc<str>,
    mut stream: SplitStream<Socket>,
    events: mpsc::Sender<UpstreamEvent>,
) {
    let error = loop {
        let frame = match timeout(IDLE_LIMIT, stream.next()).await {
            Err(_) => break UpstreamError::Timeout(IDLE_LIMIT),
            Ok(None) => break UpstreamError::Closed("WebSocket ended".into()),
            Ok(Some(Err(e))) => break UpstreamError::Io(format!("WebSocket: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Frame::Text(text) => match Message::parse(text.as_bytes()) {
                Ok(msg) => {
                    let ev = UpstreamEvent::Message { msg, related: None };
                    if events.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let frame = truncate_for_log(text.as_str(), 200);
                    warn!(backend = %name, %error, frame, "Skipping a malformed WebSocket frame");
                }
            },
            Frame::Binary(_) => warn!(backend = %name, "Skipping a binary WebSocket frame"),
            Frame::Close(frame) => {
                let why = frame.map(|f| format!(" ({} {})", f.code, f.reason));
                break UpstreamError::Closed(format!(
                    "backend closed the WebSocket{}",
                    why.unwrap_or_default()
                ));
            }
            Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_) => {}
        }
    };
    debug!(backend = %name, %error, "WebSocket closed");
    let _ = events.send(UpstreamEvent::Closed { error }).await;
}
