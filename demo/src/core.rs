//! The server core: JSON-RPC dispatch of MCP methods to a fixture backend, one task per request.
//!
//! Transports hand decoded messages to [`Server`]; each request gets a [`RequestCtx`] whose
//! frames (notifications, server→client requests, the final response) flow back through one
//! channel that the transport turns into stdout lines, a JSON body or an SSE stream.
//!
//! Room for the stateless 2026-07-28 revision: `server/discover` would be one more arm of
//! `dispatch`; capability and identity questions already go through [`RequestCtx`], which can
//! answer them from the request's `_meta` instead of the session; and `RequestCtx::request` is
//! the single seam where server→client requests would become `input_required` results.

pub(crate) mod context;
pub(crate) mod hub;
pub(crate) mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::Fixture;
use crate::fixtures::{AnyBackend, Backend, ToolError, tool_error};
use crate::jsonrpc::{RpcError, encode_response};
pub(crate) use context::{RequestCtx, TraceHeaders};
pub(crate) use hub::{Change, Hub};
pub(crate) use session::{SUPPORTED_VERSIONS, Session, log_level_index};

/// One outgoing item for the transport serving a request (or a session's standalone stream).
#[derive(Debug)]
pub(crate) enum Frame {
    /// A notification or server→client request.
    Message(Bytes),
    /// The final response to the request; nothing follows.
    Final(Bytes),
    /// Close the current response stream (the client resumes with `Last-Event-ID`).
    CloseStream,
}

pub(crate) type FrameTx = mpsc::UnboundedSender<Frame>;

/// Locks a mutex, ignoring poisoning (state stays usable after a panicking holder).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fixture plus its change hub: everything a transport needs to serve MCP.
/// Requests this process aborted because the client cancelled them (the lab's `stats` tool
/// reports it, so tests can see that a cancellation reached the backend).
pub(crate) static CANCELLED: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Server {
    backend: AnyBackend,
    capabilities: Value,
    hub: Hub,
}

impl Server {
    pub(crate) fn new(fixture: Fixture) -> Arc<Self> {
        let backend = AnyBackend::new(fixture);
        let capabilities = backend.capabilities();
        Arc::new(Self {
            backend,
            capabilities,
            hub: Hub::new(),
        })
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Handles `initialize`: negotiates the version and records client capabilities.
    pub(crate) fn initialize(&self, session: &Session, params: &Value) -> Value {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = SUPPORTED_VERSIONS
            .iter()
            .find(|v| **v == requested)
            .copied()
            .unwrap_or(SUPPORTED_VERSIONS[0]);
        let caps = params.get("capabilities").cloned().unwrap_or(Value::Null);
        session.set_negotiated(version, caps);
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": self.capabilities,
            "serverInfo": { "name": self.backend.name(), "version": env!("CARGO_PKG_VERSION") },
        });
        if let Some(instructions) = self.backend.instructions() {
            result["instructions"] = json!(instructions);
        }
        result
    }

    /// Runs request `id` on its own task; its frames (ending with [`Frame::Final`]) go to `out`.
    /// The task is registered for cancellation by `notifications/cancelled`. `http_trace`: the
    /// trace-context headers of the HTTP request that carried it (`None` over stdio).
    pub(crate) fn spawn_request(
        self: &Arc<Self>,
        session: Arc<Session>,
        id: Value,
        method: String,
        params: Value,
        out: FrameTx,
        http_trace: Option<TraceHeaders>,
    ) {
        let server = Arc::clone(self);
        let tracked = id.clone();
        let sess = Arc::clone(&session);
        session.track(&tracked, move || {
            tokio::spawn(async move {
                let result = server
                    .dispatch(&sess, &method, params, &out, http_trace)
                    .await;
                sess.untrack(&id);
                let _ = out.send(Frame::Final(encode_response(&id, &result)));
            })
            .abort_handle()
        });
    }

    /// Handles a client notification.
    pub(crate) fn handle_notification(&self, session: &Session, method: &str, params: &Value) {
        if method == "notifications/cancelled"
            && let Some(id) = params.get("requestId")
            && session.cancel(id)
        {
            CANCELLED.fetch_add(1, Ordering::Relaxed);
        }
        // notifications/initialized, roots/list_changed, progress: nothing to do.
    }

    async fn dispatch(
        &self,
        session: &Arc<Session>,
        method: &str,
        mut params: Value,
        out: &FrameTx,
        http_trace: Option<TraceHeaders>,
    ) -> Result<Value, RpcError> {
        let meta = params.as_object_mut().and_then(|p| p.remove("_meta"));
        let b = &self.backend;
        let has = |cap: &str| self.capabilities.get(cap).is_some();
        match method {
            "initialize" => Ok(self.initialize(session, &params)),
            "ping" => Ok(json!({})),
            "logging/setLevel" if has("logging") => {
                let level = str_param(&params, "level")?;
                let index = log_level_index(level)
                    .ok_or_else(|| RpcError::invalid_params(format!("Unknown level: {level}")))?;
                session.set_log_level(index);
                Ok(json!({}))
            }
            "tools/list" if has("tools") => paginate(&b.tools(), &params, b.page_size(), "tools"),
            "tools/call" if has("tools") => {
                let name = str_param(&params, "name")?.to_owned();
                let args = match params.get_mut("arguments").map(Value::take) {
                    Some(Value::Object(m)) => m,
                    None | Some(Value::Null) => Map::new(),
                    Some(_) => return Err(RpcError::invalid_params("arguments must be an object")),
                };
                let ctx = RequestCtx::new(
                    Arc::clone(session),
                    self.hub.clone(),
                    out.clone(),
                    meta,
                    http_trace,
                );
                match b.call_tool(&name, args, &ctx).await {
                    Ok(v) => Ok(v),
                    Err(ToolError::Failed(msg)) => Ok(tool_error(&msg)),
                    Err(ToolError::Unknown) => {
                        Err(RpcError::invalid_params(format!("Unknown tool: {name}")))
                    }
                    Err(ToolError::Rpc(e)) => Err(e),
                }
            }
            "resources/list" if has("resources") => {
                paginate(&b.resources(), &params, usize::MAX, "resources")
            }
            "resources/templates/list" if has("resources") => paginate(
                &b.resource_templates(),
                &params,
                usize::MAX,
                "resourceTemplates",
            ),
            "resources/read" if has("resources") => b.read_resource(str_param(&params, "uri")?),
            "resources/subscribe" | "resources/unsubscribe" if has("resources") => {
                session.subscribe(str_param(&params, "uri")?, method == "resources/subscribe");
                Ok(json!({}))
            }
            "prompts/list" if has("prompts") => {
                paginate(&b.prompts(), &params, usize::MAX, "prompts")
            }
            "prompts/get" if has("prompts") => {
                let name = str_param(&params, "name")?;
                let empty = Map::new();
                let args = params
                    .get("arguments")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                b.get_prompt(name, args)
            }
            "completion/complete" if has("completions") => Ok(b.complete(&params)),
            _ => Err(RpcError::method_not_found(method)),
        }
    }
}

fn str_param<'a>(params: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("Missing string parameter: {name}")))
}

/// One page of `items` under `key`, with `nextCursor` (an opaque offset) when more remain.
fn paginate(items: &[Value], params: &Value, page: usize, key: &str) -> Result<Value, RpcError> {
    let start = match params.get("cursor").and_then(Value::as_str) {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| RpcError::invalid_params("Invalid cursor"))?,
    };
    let end = start.saturating_add(page).min(items.len());
    let mut result = Map::new();
    result.insert(key.to_owned(), Value::Array(items[start..end].to_vec()));
    if end < items.len() {
        result.insert("nextCursor".to_owned(), Value::String(end.to_string()));
    }
    Ok(Value::Object(result))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paginates_with_cursor() {
        let items: Vec<Value> = (0..7).map(|i| json!(i)).collect();
        let p1 = paginate(&items, &json!({}), 5, "tools").unwrap();
        assert_eq!(p1["tools"].as_array().unwrap().len(), 5);
        assert_eq!(p1["nextCursor"], "5");
        let p2 = paginate(&items, &json!({"cursor": "5"}), 5, "tools").unwrap();
        assert_eq!(p2["tools"], json!([5, 6]));
        assert!(p2.get("nextCursor").is_none());
        assert!(paginate(&items, &json!({"cursor": "x"}), 5, "tools").is_err());
    }
}
