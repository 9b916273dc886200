//! JSON-RPC 2.0 envelopes: one parse per message, raw results kept as bytes for forwarding.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// JSON-RPC error codes the gateway produces.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Implementation-defined: the backend that owns the target failed or is unreachable.
    pub const BACKEND_UNAVAILABLE: i64 = -32001;
    /// MCP: resource not found (2025 revisions).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// Implementation-defined: a limit (in-flight, size) was exceeded.
    pub const LIMIT_EXCEEDED: i64 = -32003;
    /// Implementation-defined: the request was cancelled or the session ended.
    pub const REQUEST_CANCELLED: i64 = -32004;
    /// Implementation-defined: the backend did not answer in time.
    pub const BACKEND_TIMEOUT: i64 = -32005;
    /// Implementation-defined: the policy chain denied the call.
    pub const FORBIDDEN: i64 = -32006;
    /// Implementation-defined: no valid credential (the HTTP answer is 401/400/403/503).
    pub const UNAUTHENTICATED: i64 = -32007;
    /// MCP 2026-07-28: the mirrored HTTP headers disagree with the body (or are missing).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// MCP 2026-07-28: the request needs a client capability it did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// MCP 2026-07-28: the requested protocol version is not served.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A JSON-RPC request id: a number or a string (null ids are rejected as invalid).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestId {
    Num(i64),
    Str(Arc<str>),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Num(n) => s.serialize_i64(*n),
            RequestId::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(RequestId::Num)
                .ok_or_else(|| de::Error::custom("request id must be an integer or a string")),
            Value::String(s) => Ok(RequestId::Str(s.into())),
            _ => Err(de::Error::custom(
                "request id must be an integer or a string",
            )),
        }
    }
}

impl RequestId {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Number(n) => n.as_i64().map(RequestId::Num),
            Value::String(s) => Some(RequestId::Str(s.into())),
            _ => None,
        }
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A request: has an id and a method.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Map<String, Value>>,
}

/// A notification: a method and no id.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Map<String, Value>>,
}

/// A response: an id and either a raw result (kept as bytes) or an error.
#[derive(Clone, Debug)]
pub struct Response {
    pub id: RequestId,
    pub outcome: Result<Box<RawValue>, ErrorObject>,
}

impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && match (&self.outcome, &other.outcome) {
                (Ok(a), Ok(b)) => a.get() == b.get(),
                (Err(a), Err(b)) => a == b,
                _ => false,
            }
    }
}

/// Any JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// Why bytes are not a JSON-RPC message; maps to -32700 or -32600.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("parse error: {0}")]
    Json(String),
    #[error("invalid request: JSON-RPC batches are not supported; send one message per request")]
    Batch,
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => codes::PARSE_ERROR,
            _ => codes::INVALID_REQUEST,
        }
    }

    pub fn to_error_object(&self) -> ErrorObject {
        ErrorObject::new(self.code(), self.to_string())
    }
}

#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Box<RawValue>>,
    error: Option<Value>,
}

/// Distinguishes `"id": null` (Some(Null)) from a missing id (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Message {
    /// Parses one JSON-RPC message. Batches and non-objects are rejected.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            None => return Err(ParseError::Json("empty body".into())),
            Some(b'[') => {
                // Make sure it is at least valid JSON before calling it a batch.
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                    .map_err(|e| ParseError::Json(e.to_string()))?;
                return Err(ParseError::Batch);
            }
            Some(b'{') => {}
            Some(_) => {
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                    .map_err(|e| ParseError::Json(e.to_string()))?;
                return Err(ParseError::Invalid(
                    "a JSON-RPC message must be a JSON object",
                ));
            }
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                ParseError::Invalid("malformed JSON-RPC envelope (wrong member types)")
            } else {
                ParseError::Json(e.to_string())
            }
        })?;
        Self::from_envelope(env)
    }

    fn from_envelope(env: Envelope) -> Result<Message, ParseError> {
        match env.jsonrpc.as_deref().map(RawValue::get) {
            Some("\"2.0\"") => {}
            _ => return Err(ParseError::Invalid("\"jsonrpc\" must be \"2.0\"")),
        }
        let params = match env.params {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(ParseError::Invalid("\"params\" must be an object")),
        };
        let id = match env.id {
            None => None,
            Some(v) => Some(
                RequestId::from_value(v)
                    .ok_or(ParseError::Invalid("\"id\" must be an integer or a string"))?,
            ),
        };
        match (env.method, id) {
            (Some(method), Some(id)) => {
                if env.result.is_some() || env.error.is_some() {
                    return Err(ParseError::Invalid(
                        "a request cannot carry result or error",
                    ));
                }
                Ok(Message::Request(Request { id, method, params }))
            }
            (Some(method), None) => Ok(Message::Notification(Notification { method, params })),
            (None, Some(id)) => {
                let outcome = match (env.result, env.error) {
                    (Some(r), None) => Ok(r),
                    (None, Some(e)) => Err(serde_json::from_value::<ErrorObject>(e)
                        .map_err(|_| ParseError::Invalid("malformed error object"))?),
                    _ => {
                        return Err(ParseError::Invalid(
                            "a response must carry exactly one of result or error",
                        ));
                    }
                };
                Ok(Message::Response(Response { id, outcome }))
            }
            (None, None) => Err(ParseError::Invalid("missing \"method\"")),
        }
    }

    /// Serializes to compact JSON bytes.
    pub fn to_bytes(&self) -> Bytes {
        // Serializing our own types into a Vec cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("jsonrpc", "2.0")?;
        match self {
            Message::Request(r) => {
                m.serialize_entry("id", &r.id)?;
                m.serialize_entry("method", &r.method)?;
                if let Some(p) = &r.params {
                    m.serialize_entry("params", p)?;
                }
            }
            Message::Notification(n) => {
                m.serialize_entry("method", &n.method)?;
                if let Some(p) = &n.params {
                    m.serialize_entry("params", p)?;
                }
            }
            Message::Response(r) => {
                m.serialize_entry("id", &r.id)?;
                match &r.outcome {
                    Ok(raw) => m.serialize_entry("result", raw)?,
                    Err(e) => m.serialize_entry("error", e)?,
                }
            }
        }
        m.end()
    }
}

impl Request {
    pub fn new(
        id: RequestId,
        method: impl Into<String>,
        params: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            id,
            method: method.into(),
            params,
        }
    }

    /// `params._meta`, if present.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.params.as_ref()?.get("_meta")?.as_object()
    }

    /// A string member of params (e.g. `name` of tools/call).
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params.as_ref()?.get(key)?.as_str()
    }

    /// `params._meta.progressToken`, if present.
    pub fn progress_token(&self) -> Option<&Value> {
        self.meta()?.get("progressToken")
    }

    /// Mutable access to `params._meta`, creating it if needed.
    pub fn meta_mut(&mut self) -> &mut Map<String, Value> {
        let params = self.params.get_or_insert_with(Map::new);
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        match meta {
            Value::Object(m) => m,
            _ => unreachable!("_meta was just made an object"),
        }
    }

    pub fn into_message(self) -> Message {
        Message::Request(self)
    }
}

impl Notification {
    pub fn new(method: impl Into<String>, params: Option<Map<String, Value>>) -> Self {
        Self {
            method: method.into(),
            params,
        }
    }

    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.as_ref()?.get(key)
    }

    pub fn into_message(self) -> Message {
        Message::Notification(self)
    }
}

impl Response {
    /// A successful response carrying a serializable result.
    pub fn ok<T: Serialize>(id: RequestId, result: &T) -> Self {
        let raw =
            serde_json::value::to_raw_value(result).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Self {
            id,
            outcome: Ok(raw),
        }
    }

    pub fn ok_raw(id: RequestId, result: Box<RawValue>) -> Self {
        Self {
            id,
            outcome: Ok(result),
        }
    }

    pub fn error(id: RequestId, error: ErrorObject) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }

    pub fn into_message(self) -> Message {
        Message::Response(self)
    }
}

/// Serializes a success response around an already-serialized result, without re-parsing it.
pub fn encode_result(id: &RequestId, result: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(result.len() + 48);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    // Serializing an integer or a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    Bytes::from(out)
}

/// Serializes an error response for a message whose id could not be read (`"id": null`).
pub fn error_without_id(error: &ErrorObject) -> Bytes {
    let v = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": error});
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests;
