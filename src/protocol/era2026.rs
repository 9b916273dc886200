//! The 2026-07-28 ("modern", stateless) wire rules: per-request `_meta` envelope, mirrored HTTP
//! headers, the result envelope (`resultType`, `ttlMs`, `cacheScope`) and MRTR shapes. Pure: no I/O.
//! See docs/mcp-2026-07-28.md for the spec passages behind each rule.

use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::jsonrpc::codes;
use super::{Era, ErrorObject, ProtocolVersion, Request};

mod result;

pub use result::{Cache, Peeked, complete, encode_complete, input_required, peek};

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// Every reserved per-request key starts with this prefix.
const META_RESERVED_PREFIX: &str = "io.modelcontextprotocol/";

pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";

pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";

/// MRTR params a retry carries.
pub const INPUT_RESPONSES: &str = "inputResponses";
pub const REQUEST_STATE: &str = "requestState";

/// The revisions served on the stateless path.
pub const SUPPORTED: [ProtocolVersion; 1] = [ProtocolVersion::V2026_07_28];

/// Which body param a method's `Mcp-Name` header mirrors.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The mirrored headers of one POST (already lower-cased names, raw values).
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// What a valid modern request declared about itself.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub version: ProtocolVersion,
    pub capabilities: Map<String, Value>,
}

impl Envelope {
    /// True when the client declared `cap` (e.g. `elicitation`) for this request.
    pub fn declares(&self, cap: &str) -> bool {
        self.capabilities.get(cap).is_some_and(|v| !v.is_null())
    }
}

/// A request refused before dispatch: the JSON-RPC error and the HTTP status it travels with.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub error: ErrorObject,
    pub status: u16,
}

impl Rejection {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Rejection {
            status: http_status(code),
            error: ErrorObject::new(code, message),
        }
    }
}

/// The HTTP status a modern JSON-RPC error travels with (spec: 400 for malformed input and the
/// -3202x errors, 404 for an unknown method); everything else is a 200 with an error body.
pub fn http_status(code: i64) -> u16 {
    match code {
        codes::PARSE_ERROR
        | codes::INVALID_REQUEST
        | codes::INVALID_PARAMS
        | codes::HEADER_MISMATCH
        | codes::MISSING_CLIENT_CAPABILITY
        | codes::UNSUPPORTED_PROTOCOL_VERSION => 400,
        codes::METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

/// True when a session-less message speaks the modern revision: its `_meta` carries a protocol
/// version, or its `MCP-Protocol-Version` header is not a sessionful revision we serve.
pub fn is_modern(meta: Option<&Map<String, Value>>, header_version: Option<&str>) -> bool {
    if meta.is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION)) {
        return true;
    }
    match header_version {
        None => false,
        Some(v) => ProtocolVersion::parse(v).is_none_or(|p| p.era() == Era::Stateless),
    }
}

/// Decodes a header value that may use the `=?base64?…?=` sentinel. `None`: undecodable.
pub fn decode_header_value(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(payload) => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_string()),
    }
}

/// The validation ladder, in the order the official SDK applies it: `_meta` envelope (-32602),
/// mirrored headers (-32020), supported version (-32022).
pub fn classify(req: &Request, h: &Headers<'_>) -> Result<Envelope, Rejection> {
    let meta = req.meta().ok_or_else(|| {
        Rejection::new(
            codes::INVALID_PARAMS,
            format!(
                "params._meta must carry {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"
            ),
        )
    })?;
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::new(
            codes::INVALID_PARAMS,
            format!(
                "params._meta is missing the required key(s): {}",
                missing.join(", ")
            ),
        ));
    }
    let capabilities = match meta.get(META_CLIENT_CAPABILITIES) {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            return Err(Rejection::new(
                codes::INVALID_PARAMS,
                format!("params._meta[{META_CLIENT_CAPABILITIES:?}] must be an object"),
            ));
        }
    };
    let body_version = meta.get(META_PROTOCOL_VERSION);
    check_headers(req, h, body_version)?;
    let Some(requested) = body_version.and_then(Value::as_str) else {
        return Err(Rejection::new(
            codes::INVALID_PARAMS,
            format!("params._meta[{META_PROTOCOL_VERSION:?}] must be a string"),
        ));
    };
    match ProtocolVersion::parse(requested) {
        Some(v) if SUPPORTED.contains(&v) => Ok(Envelope {
            version: v,
            capabilities,
        }),
        _ => Err(unsupported_version(requested)),
    }
}

/// `-32022` listing every revision the gateway serves (stateless and sessionful).
pub fn unsupported_version(requested: &str) -> Rejection {
    let mut supported: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
    supported.extend(
        ProtocolVersion::ALL
            .iter()
            .rev()
            .filter(|v| v.era() == Era::Sessionful)
            .map(|v| v.as_str()),
    );
    let mut r = Rejection::new(
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    );
    r.error = r.error.with_data(json!({
        "supported": supported,
        "requested": requested.chars().take(64).collect::<String>(),
    }));
    r
}

fn mismatch(what: String) -> Rejection {
    Rejection::new(codes::HEADER_MISMATCH, format!("Header mismatch: {what}"))
}

fn check_headers(req: &Request, h: &Headers<'_>, version: Option<&Value>) -> Result<(), Rejection> {
    match (h.protocol_version, version.and_then(Value::as_str)) {
        (None, _) => return Err(mismatch("MCP-Protocol-Version header is missing".into())),
        (Some(hv), Some(bv)) if hv == bv => {}
        (Some(hv), _) => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header {:?} does not match the body's protocol version",
                truncate(hv)
            )));
        }
    }
    match h.method {
        None => return Err(mismatch("Mcp-Method header is missing".into())),
        Some(m) if m == req.method => {}
        Some(m) => {
            return Err(mismatch(format!(
                "Mcp-Method header {:?} does not match body method {:?}",
                truncate(m),
                truncate(&req.method)
            )));
        }
    }
    let Some(key) = name_param(&req.method) else {
        return Ok(());
    };
    let body = req.params.as_ref().and_then(|p| p.get(key));
    let body = match body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        // A non-string name is malformed; let dispatch report it against the body.
        Some(_) => return Ok(()),
    };
    match (h.name, body) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(mismatch("Mcp-Name header is missing".into())),
        (Some(raw), body) => {
            let Some(decoded) = decode_header_value(raw) else {
                return Err(mismatch("Mcp-Name header is not valid =?base64?…?=".into()));
            };
            if Some(decoded.as_str()) == body {
                Ok(())
            } else {
                Err(mismatch(format!(
                    "Mcp-Name header {:?} does not match body {key} {:?}",
                    truncate(&decoded),
                    truncate(body.unwrap_or(""))
                )))
            }
        }
    }
}

/// The `x-mcp-header` annotations of a tool's `inputSchema`: (argument path, header token), for
/// properties reachable from the root through `properties` keys only (transports spec).
fn param_headers(schema: &Value) -> Vec<(Vec<String>, String)> {
    fn walk(s: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        let Some(props) = s.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (k, p) in props {
            path.push(k.clone());
            if let Some(token) = p.get("x-mcp-header").and_then(Value::as_str) {
                out.push((path.clone(), token.to_string()));
            }
            if path.len() < 16 {
                walk(p, path, out);
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// Checks the `Mcp-Param-{token}` headers of a `tools/call` against its arguments: an annotated
/// argument that is present (not null) needs its header with the same value (after base64
/// decoding; integers compare numerically), an absent one must have no header. `header` looks a
/// header up by lower-cased name.
pub fn check_param_headers<'h>(
    input_schema: &Value,
    arguments: Option<&Map<String, Value>>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<(), Rejection> {
    for (path, token) in param_headers(input_schema) {
        let name = format!("mcp-param-{}", token.to_ascii_lowercase());
        let mut value = arguments.map(|a| Value::Object(a.clone()));
        for k in &path {
            value = value.and_then(|v| v.get(k).cloned());
        }
        let value = value.filter(|v| !v.is_null());
        let sent = header(&name);
        let ok = match (&value, sent) {
            (None, None) => true,
            (None, Some(_)) | (Some(_), None) => false,
            (Some(v), Some(raw)) => match decode_header_value(raw) {
                None => false,
                Some(h) => match v {
                    Value::String(s) => &h == s,
                    Value::Bool(b) => h == b.to_string(),
                    Value::Number(n) => match (n.as_i64(), h.parse::<f64>()) {
                        (Some(i), Ok(f)) => f.fract() == 0.0 && f == i as f64,
                        _ => false,
                    },
                    _ => false,
                },
            },
        };
        if !ok {
            return Err(mismatch(format!(
                "Mcp-Param-{token} header does not match argument {:?}",
                path.join(".")
            )));
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Removes what only the modern client↔gateway hop understands (reserved `_meta` keys, MRTR
/// params) before a request is forwarded to a sessionful backend.
pub fn strip_for_backend(req: &mut Request) {
    if let Some(p) = req.params.as_mut() {
        p.remove(INPUT_RESPONSES);
        p.remove(REQUEST_STATE);
        let empty = match p.get_mut("_meta") {
            Some(Value::Object(m)) => {
                m.retain(|k, _| !k.starts_with(META_RESERVED_PREFIX));
                m.is_empty()
            }
            _ => false,
        };
        if empty {
            p.remove("_meta");
        }
    }
}

/// Parses raw JSON into a boxed raw value (for building responses around it).
pub fn raw(bytes: &[u8]) -> Option<Box<RawValue>> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests;
