//! The fixture backends (notes, tickets, conformance, lab, github, postgres, slack) behind one
//! small trait.

pub(crate) mod conformance;
pub(crate) mod github;
pub(crate) mod lab;
pub(crate) mod notes;
pub(crate) mod postgres;
pub(crate) mod slack;
pub(crate) mod tickets;

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::Fixture;
use crate::core::RequestCtx;
use crate::jsonrpc::{RpcError, code};

/// Why a tool call did not produce a normal result.
#[derive(Debug)]
pub(crate) enum ToolError {
    /// No such tool (JSON-RPC error -32602).
    Unknown,
    /// The tool ran and failed (result with `isError: true`).
    Failed(String),
    /// A protocol-level error.
    Rpc(RpcError),
}

impl From<RpcError> for ToolError {
    fn from(e: RpcError) -> Self {
        ToolError::Rpc(e)
    }
}

pub(crate) type ToolResult = Result<Value, ToolError>;

/// What a fixture implements; the core handles everything else (handshake, paging, logging).
pub(crate) trait Backend: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Value;
    fn instructions(&self) -> Option<&'static str> {
        None
    }
    fn tools(&self) -> Arc<Vec<Value>>;
    /// `tools/list` page size.
    fn page_size(&self) -> usize {
        usize::MAX
    }
    fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
        ctx: &RequestCtx,
    ) -> impl Future<Output = ToolResult> + Send;
    fn resources(&self) -> Vec<Value> {
        Vec::new()
    }
    fn resource_templates(&self) -> Vec<Value> {
        Vec::new()
    }
    fn read_resource(&self, uri: &str) -> Result<Value, RpcError> {
        Err(resource_not_found(uri))
    }
    fn prompts(&self) -> Vec<Value> {
        Vec::new()
    }
    fn get_prompt(&self, name: &str, _args: &Map<String, Value>) -> Result<Value, RpcError> {
        Err(RpcError::invalid_params(format!("Unknown prompt: {name}")))
    }
    fn complete(&self, _params: &Value) -> Value {
        json!({ "completion": { "values": [], "hasMore": false } })
    }
}

/// Static dispatch over the fixtures.
pub(crate) enum AnyBackend {
    Notes(notes::Notes),
    Tickets(tickets::Tickets),
    Conformance(conformance::Conformance),
    Lab(lab::Lab),
    Github(github::Github),
    Postgres(postgres::Postgres),
    Slack(slack::Slack),
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Notes($b) => $e,
            AnyBackend::Tickets($b) => $e,
            AnyBackend::Conformance($b) => $e,
            AnyBackend::Lab($b) => $e,
            AnyBackend::Github($b) => $e,
            AnyBackend::Postgres($b) => $e,
            AnyBackend::Slack($b) => $e,
        }
    };
}

impl AnyBackend {
    pub(crate) fn new(fixture: Fixture) -> Self {
        match fixture {
            Fixture::Notes => Self::Notes(notes::Notes::new()),
            Fixture::Tickets => Self::Tickets(tickets::Tickets::new()),
            Fixture::Conformance => Self::Conformance(conformance::Conformance),
            Fixture::Lab => Self::Lab(lab::Lab::new()),
            Fixture::Github => Self::Github(github::Github::new()),
            Fixture::Postgres => Self::Postgres(postgres::Postgres::new()),
            Fixture::Slack => Self::Slack(slack::Slack::new()),
        }
    }
}

impl Backend for AnyBackend {
    fn name(&self) -> &'static str {
        delegate!(self, b => b.name())
    }
    fn capabilities(&self) -> Value {
        delegate!(self, b => b.capabilities())
    }
    fn instructions(&self) -> Option<&'static str> {
        delegate!(self, b => b.instructions())
    }
    fn tools(&self) -> Arc<Vec<Value>> {
        delegate!(self, b => b.tools())
    }
    fn page_size(&self) -> usize {
        delegate!(self, b => b.page_size())
    }
    async fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
        ctx: &RequestCtx,
    ) -> ToolResult {
        delegate!(self, b => b.call_tool(name, args, ctx).await)
    }
    fn resources(&self) -> Vec<Value> {
        delegate!(self, b => b.resources())
    }
    fn resource_templates(&self) -> Vec<Value> {
        delegate!(self, b => b.resource_templates())
    }
    fn read_resource(&self, uri: &str) -> Result<Value, RpcError> {
        delegate!(self, b => b.read_resource(uri))
    }
    fn prompts(&self) -> Vec<Value> {
        delegate!(self, b => b.prompts())
    }
    fn get_prompt(&self, name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
        delegate!(self, b => b.get_prompt(name, args))
    }
    fn complete(&self, params: &Value) -> Value {
        delegate!(self, b => b.complete(params))
    }
}

/// A tool definition.
pub(crate) fn tool(name: &str, description: &str, input_schema: Value) -> Value {
    json!({ "name": name, "description": description, "inputSchema": input_schema })
}

/// `tool` marked read-only (`annotations.readOnlyHint: true`): it changes nothing, so a
/// gateway may grant it to read-only roles.
pub(crate) fn read_only(mut tool: Value) -> Value {
    tool["annotations"] = json!({ "readOnlyHint": true });
    tool
}

/// An object schema with the given properties, all required.
pub(crate) fn schema(props: &[(&str, &str, &str)]) -> Value {
    let mut properties = Map::new();
    for (name, ty, description) in props {
        properties.insert(
            (*name).to_owned(),
            json!({ "type": ty, "description": description }),
        );
    }
    let required: Vec<&str> = props.iter().map(|p| p.0).collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

/// A tool result with one text item.
pub(crate) fn text(s: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": s.into() }] })
}

/// A tool result with JSON as text plus the same value as `structuredContent`.
pub(crate) fn json_result(v: Value) -> Value {
    json!({ "content": [{ "type": "text", "text": v.to_string() }], "structuredContent": v })
}

/// A tool execution error result (`isError: true`).
pub(crate) fn tool_error(msg: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": msg }], "isError": true })
}

pub(crate) fn resource_not_found(uri: &str) -> RpcError {
    let mut e = RpcError::new(
        code::RESOURCE_NOT_FOUND,
        format!("Resource not found: {uri}"),
    );
    e.data = Some(json!({ "uri": uri }));
    e
}

/// A required string argument.
pub(crate) fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, ToolError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::Failed(format!("Missing string argument: {name}")))
}

/// A required non-negative integer argument (accepts integral floats and numeric strings).
pub(crate) fn u64_arg(args: &Map<String, Value>, name: &str) -> Result<u64, ToolError> {
    let v = args.get(name);
    v.and_then(Value::as_u64)
        .or_else(|| {
            v.and_then(Value::as_f64)
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
        .or_else(|| v.and_then(Value::as_str).and_then(|s| s.parse().ok()))
        .ok_or_else(|| ToolError::Failed(format!("Missing non-negative integer argument: {name}")))
}

/// A text prompt message.
pub(crate) fn user_text(s: impl Into<String>) -> Value {
    json!({ "role": "user", "content": { "type": "text", "text": s.into() } })
}
