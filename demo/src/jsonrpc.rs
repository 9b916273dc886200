//! JSON-RPC 2.0 message model: classify incoming messages, encode outgoing ones (no I/O).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

/// JSON-RPC error codes used by the demo servers.
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
    /// MCP: resource not found.
    pub(crate) const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RpcError {
    /// Error code.
    pub(crate) code: i64,
    /// Human readable message.
    pub(crate) message: String,
    /// Optional extra data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub(crate) fn method_not_found(method: &str) -> Self {
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }
    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }
    fn from_value(v: Value) -> Self {
        let code = v
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(code::INTERNAL_ERROR);
        let message = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Self {
            code,
            message,
            data: v.get("data").cloned(),
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JSON-RPC error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// One decoded incoming JSON-RPC message.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    Response {
        id: Value,
        result: Result<Value, RpcError>,
    },
}

/// Decodes one JSON-RPC message from bytes. Batches are rejected (not allowed since 2025-06-18).
pub(crate) fn decode(bytes: &[u8]) -> Result<Incoming, RpcError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| RpcError::new(code::PARSE_ERROR, format!("Parse error: {e}")))?;
    classify(value)
}

/// Classifies a parsed JSON value as request, notification or response.
pub(crate) fn classify(value: Value) -> Result<Incoming, RpcError> {
    let Value::Object(mut map) = value else {
        return Err(RpcError::new(
            code::INVALID_REQUEST,
            "Invalid request: expected a JSON object",
        ));
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::new(
            code::INVALID_REQUEST,
            "Invalid request: jsonrpc must be \"2.0\"",
        ));
    }
    let id = map.remove("id");
    match (map.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) if valid_id(&id) => Ok(Incoming::Request {
            id,
            method,
            params: take_params(&mut map),
        }),
        (Some(Value::String(method)), None) => Ok(Incoming::Notification {
            method,
            params: take_params(&mut map),
        }),
        (None, Some(id)) => {
            let result = match (map.remove("result"), map.remove("error")) {
                (Some(r), None) => Ok(r),
                (None, Some(e)) => Err(RpcError::from_value(e)),
                _ => return Err(RpcError::new(code::INVALID_REQUEST, "Invalid response")),
            };
            Ok(Incoming::Response { id, result })
        }
        _ => Err(RpcError::new(code::INVALID_REQUEST, "Invalid request")),
    }
}

fn valid_id(id: &Value) -> bool {
    matches!(id, Value::String(_) | Value::Number(_))
}

fn take_params(map: &mut Map<String, Value>) -> Value {
    map.remove("params")
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// A stable string key for a request id (`1` and `"1"` stay distinct).
pub(crate) fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => format!("s:{s}"),
        other => format!("n:{other}"),
    }
}

#[derive(Serialize)]
struct ResultOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a Value,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: &'a RpcError,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    method: &'a str,
    params: &'a Value,
}

fn to_bytes<T: Serialize>(v: &T) -> Bytes {
    // Serializing these plain structs of `Value`s cannot fail (no non-string map keys).
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Encodes a response (`result` or `error`).
pub(crate) fn encode_response(id: &Value, result: &Result<Value, RpcError>) -> Bytes {
    match result {
        Ok(result) => to_bytes(&ResultOut {
            jsonrpc: "2.0",
            id,
            result,
        }),
        Err(error) => to_bytes(&ErrorOut {
            jsonrpc: "2.0",
            id,
            error,
        }),
    }
}

/// Encodes a notification.
pub(crate) fn encode_notification(method: &str, params: &Value) -> Bytes {
    to_bytes(&MessageOut {
        jsonrpc: "2.0",
        id: None,
        method,
        params,
    })
}

/// Encodes a request.
pub(crate) fn encode_request(id: &Value, method: &str, params: &Value) -> Bytes {
    to_bytes(&MessageOut {
        jsonrpc: "2.0",
        id: Some(id),
        method,
        params,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_all_kinds() {
        let r = decode(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        assert_eq!(
            r,
            Ok(Incoming::Request {
                id: json!(1),
                method: "ping".into(),
                params: json!({})
            })
        );
        let n = decode(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(n, Ok(Incoming::Notification { .. })));
        let ok = decode(br#"{"jsonrpc":"2.0","id":"a","result":{"x":1}}"#);
        assert_eq!(
            ok,
            Ok(Incoming::Response {
                id: json!("a"),
                result: Ok(json!({"x":1}))
            })
        );
        let err = decode(br#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}"#);
        assert!(matches!(
            err,
            Ok(Incoming::Response {
                result: Err(RpcError { code: -1, .. }),
                ..
            })
        ));
    }

    #[test]
    fn rejects_garbage_and_batches() {
        assert_eq!(decode(b"{").map_err(|e| e.code), Err(code::PARSE_ERROR));
        assert_eq!(
            decode(b"[]").map_err(|e| e.code),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(
            decode(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).map_err(|e| e.code),
            Err(code::INVALID_REQUEST)
        );
    }

    #[test]
    fn encodes_round_trip() {
        let b = encode_response(&json!(7), &Ok(json!({})));
        assert_eq!(&b[..], br#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        let b = encode_notification("notifications/progress", &json!({"progress":1}));
        assert_eq!(
            &b[..],
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#
        );
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
    }
}
