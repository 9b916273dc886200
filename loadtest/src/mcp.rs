//! MCP over the transport: `initialize`, `notifications/initialized`, `tools/call` and
//! `DELETE` of a session (protocol 2025-11-25), and the classification of each answer.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::sse;
use crate::transport::{Conn, Headers, PROTOCOL_VERSION};
/// What one tools/call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    HttpStatus,
    JsonRpcError,
    ToolError,
    Transport,
}

/// The parts of a JSON-RPC message the generator looks at; everything else is skipped.
#[derive(Deserialize)]
struct Message {
    id: Option<serde_json::Value>,
    result: Option<ResultProbe>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ResultProbe {
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(rename = "protocolVersion")]
    protocol_version: Option<String>,
}

/// A JSON-RPC response to our request, reduced to what is counted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Response {
    Result {
        is_error: bool,
        protocol_version: Option<String>,
    },
    Error,
}

/// Finds the response with id `id` in a JSON or SSE body.
pub(crate) fn parse_response(
    content_type: Option<&[u8]>,
    body: &[u8],
    id: u64,
) -> anyhow::Result<Response> {
    let content_type = content_type.unwrap_or_default();
    let is = |mime: &[u8]| {
        content_type.len() >= mime.len() && content_type[..mime.len()].eq_ignore_ascii_case(mime)
    };
    if is(b"application/json") {
        let message: Message = serde_json::from_slice(body).context("response is not JSON-RPC")?;
        return as_response(message, id)
            .ok_or_else(|| anyhow!("JSON body is not the response to id {id}"));
    }
    if is(b"text/event-stream") {
        return sse::data_events(body)
            .iter()
            .filter_map(|data| serde_json::from_slice::<Message>(data).ok())
            .find_map(|message| as_response(message, id))
            .ok_or_else(|| anyhow!("no SSE event carries the response to id {id}"));
    }
    bail!(
        "unexpected content type {:?}",
        String::from_utf8_lossy(content_type)
    )
}

fn as_response(message: Message, id: u64) -> Option<Response> {
    if message.id.as_ref().and_then(serde_json::Value::as_u64) != Some(id) {
        return None;
    }
    match (message.result, message.error) {
        (Some(result), None) => Some(Response::Result {
            is_error: result.is_error,
            protocol_version: result.protocol_version,
        }),
        (None, Some(_)) => Some(Response::Error),
        _ => None,
    }
}

/// The body of a `tools/call`, pre-serialized around its id.
pub(crate) struct CallTemplate {
    prefix: Bytes,
}

impl CallTemplate {
    pub(crate) fn new(tool: &str, args_json: &str) -> anyhow::Result<Self> {
        let args: serde_json::Value =
            serde_json::from_str(args_json).context("--args is not valid JSON")?;
        if !args.is_object() {
            bail!("--args must be a JSON object, got {args_json}");
        }
        let params = serde_json::json!({ "name": tool, "arguments": args });
        let prefix = format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":"#);
        Ok(Self {
            prefix: Bytes::from(prefix),
        })
    }

    pub(crate) fn body(&self, id: u64) -> Bytes {
        let mut body = BytesMut::with_capacity(self.prefix.len() + 21);
        body.put_slice(&self.prefix);
        body.put_slice(id.to_string().as_bytes());
        body.put_u8(b'}');
        body.freeze()
    }
}

/// An initialized MCP session.
pub(crate) struct Session {
    pub(crate) conn: Conn,
    id: Option<HeaderValue>,
    next_id: u64,
    timeout: Duration,
}

impl Session {
    /// `initialize` then, if `notify`, `notifications/initialized`.
    pub(crate) async fn open(
        mut conn: Conn,
        timeout: Duration,
        notify: bool,
    ) -> anyhow::Result<Self> {
        let id = initialize(&mut conn, timeout).await?;
        if notify {
            let note =
                Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
            let reply = conn
                .send(Method::POST, note, Headers::Session(id.as_ref()), timeout)
                .await
                .context("notifications/initialized")?;
            if !reply.status.is_success() {
                bail!("notifications/initialized: HTTP {}", reply.status);
            }
        }
        Ok(Self {
            conn,
            id,
            next_id: 1,
            timeout,
        })
    }

    /// One `tools/call`; the latency covers send → whole body received.
    pub(crate) async fn call(
        &mut self,
        template: &CallTemplate,
    ) -> (Outcome, Option<Duration>, Option<String>) {
        let id = self.next_id;
        self.next_id += 1;
        let body = template.body(id);
        let started = Instant::now();
        let reply = self
            .conn
            .send(
                Method::POST,
                body,
                Headers::Session(self.id.as_ref()),
                self.timeout,
            )
            .await;
        let elapsed = started.elapsed();
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => return (Outcome::Transport, None, Some(format!("{e:#}"))),
        };
        if reply.status != StatusCode::OK {
            let why = format!("HTTP {}: {}", reply.status, snippet(&reply.body));
            return (Outcome::HttpStatus, Some(elapsed), Some(why));
        }
        let parsed = parse_response(
            reply.content_type.as_ref().map(HeaderValue::as_bytes),
            &reply.body,
            id,
        );
        let outcome = match parsed {
            Ok(Response::Result {
                is_error: false, ..
            }) => return (Outcome::Ok, Some(elapsed), None),
            Ok(Response::Result { is_error: true, .. }) => Outcome::ToolError,
            Ok(Response::Error) => Outcome::JsonRpcError,
            Err(e) => return (Outcome::Transport, Some(elapsed), Some(format!("{e:#}"))),
        };
        let why = snippet(&reply.body);
        (outcome, Some(elapsed), Some(why))
    }

    /// Ends the session with `DELETE` (best effort: servers may answer 405).
    pub(crate) async fn close(mut self) {
        if let Some(id) = self.id.take() {
            delete_session(&mut self.conn, &id, self.timeout).await;
        }
    }
}

/// Sends `initialize` on `conn`; returns the `Mcp-Session-Id` the server assigned, if any.
pub(crate) async fn initialize(
    conn: &mut Conn,
    timeout: Duration,
) -> anyhow::Result<Option<HeaderValue>> {
    let init = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "switchboard-loadtest", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let reply = conn
        .send(
            Method::POST,
            Bytes::from(init.to_string()),
            Headers::Plain,
            timeout,
        )
        .await
        .context("initialize")?;
    if reply.status != StatusCode::OK {
        bail!(
            "initialize: HTTP {}: {}",
            reply.status,
            snippet(&reply.body)
        );
    }
    match parse_response(
        reply.content_type.as_ref().map(HeaderValue::as_bytes),
        &reply.body,
        0,
    )
    .context("initialize")?
    {
        Response::Result { .. } => Ok(reply.session_id),
        Response::Error => bail!("initialize: JSON-RPC error {}", snippet(&reply.body)),
    }
}

/// `DELETE` of a session; failures are ignored (the session then idles out).
pub(crate) async fn delete_session(conn: &mut Conn, id: &HeaderValue, timeout: Duration) {
    let _ = conn
        .send(
            Method::DELETE,
            Bytes::new(),
            Headers::Session(Some(id)),
            timeout,
        )
        .await;
}

/// The first 300 bytes of a body on one line, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn call_body_is_valid_json_rpc() {
        let template = CallTemplate::new("echo", r#"{"text":"hi \"there\""}"#).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&template.body(42)).unwrap();
        assert_eq!(body["id"], 42);
        assert_eq!(body["method"], "tools/call");
        assert_eq!(body["params"]["name"], "echo");
        assert_eq!(body["params"]["arguments"]["text"], "hi \"there\"");
        assert!(CallTemplate::new("echo", "[1]").is_err());
        assert!(CallTemplate::new("echo", "{").is_err());
    }

    #[test]
    fn responses_classified_from_json_and_sse() {
        let json = Some(&b"application/json; charset=utf-8"[..]);
        let ok = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi"}]}}"#;
        assert_eq!(
            parse_response(json, ok, 3).unwrap(),
            Response::Result {
                is_error: false,
                protocol_version: None
            }
        );
        let tool_err = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}"#;
        assert!(matches!(
            parse_response(json, tool_err, 3).unwrap(),
            Response::Result { is_error: true, .. }
        ));
        let rpc_err = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"no"}}"#;
        assert_eq!(parse_response(json, rpc_err, 3).unwrap(), Response::Error);
        assert!(parse_response(json, ok, 4).is_err());

        let sse = Some(&b"text/event-stream"[..]);
        let body = b"id: 1\ndata:\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n\
                     event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-11-25\"}}\n\n";
        assert_eq!(
            parse_response(sse, body, 0).unwrap(),
            Response::Result {
                is_error: false,
                protocol_version: Some("2025-11-25".into())
            }
        );
        assert!(parse_response(sse, b"data: {}\n\n", 0).is_err());
        assert!(parse_response(Some(b"text/html"), ok, 3).is_err());
        assert!(parse_response(None, ok, 3).is_err());
    }
}
