//! The 2026 result envelope (`resultType`, `ttlMs`, `cacheScope`, the serverInfo stamp) spliced
//! into a result's raw JSON text, and a borrowed first look at the messages of a call's stream:
//! the result's contents are scanned once and copied once, never built into a `Value` tree.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{META_SERVER_INFO, REQUEST_STATE};
use crate::protocol::jsonrpc::codes;
use crate::protocol::{ErrorObject, RequestId};

/// How a list or discover result may be cached by the client.
#[derive(Clone, Copy, Debug)]
pub struct Cache {
    pub ttl_ms: u64,
    /// `false` → `"private"`: the answer may depend on who asks (policy-filtered lists).
    pub public: bool,
}

/// Turns a result object into a 2026 `complete` result: `resultType`, the serverInfo stamp, and
/// for cacheable results `ttlMs`/`cacheScope`. Fields the result already has are kept.
pub fn complete(
    raw: &str,
    server_info: &Value,
    cache: Option<Cache>,
) -> Result<Bytes, ErrorObject> {
    let mut out = Vec::with_capacity(raw.len() + 96);
    write_complete(&mut out, raw, server_info, cache)?;
    Ok(Bytes::from(out))
}

/// The whole response `{"jsonrpc":"2.0","id":…,"result":…}` around [`complete`]'s result, written
/// in one buffer.
pub fn encode_complete(
    id: &RequestId,
    raw: &str,
    server_info: &Value,
    cache: Option<Cache>,
) -> Result<Bytes, ErrorObject> {
    let mut out = Vec::with_capacity(raw.len() + 160);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    // Serializing an integer or a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, id);
    out.extend_from_slice(b",\"result\":");
    write_complete(&mut out, raw, server_info, cache)?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

fn not_an_object() -> ErrorObject {
    ErrorObject::new(
        codes::INTERNAL_ERROR,
        "the backend's result is not a JSON object",
    )
}

/// Writes `raw` with the envelope members it lacks inserted after its opening brace, and the
/// stamp inserted after the opening brace of its `_meta` when that lacks it.
fn write_complete(
    out: &mut Vec<u8>,
    raw: &str,
    server_info: &Value,
    cache: Option<Cache>,
) -> Result<(), ErrorObject> {
    let raw = raw.trim();
    let m: Members<'_> = serde_json::from_str(raw).map_err(|_| not_an_object())?;
    // `raw` is an object, so it starts with `{` (and, trimmed, ends with `}`).
    let body = raw.get(1..).ok_or_else(not_an_object)?;
    let mut added = 0;
    let mut member = |out: &mut Vec<u8>| {
        out.push(if added == 0 { b'{' } else { b',' });
        added += 1;
    };
    if !m.result_type {
        member(out);
        out.extend_from_slice(br#""resultType":"complete""#);
    }
    if let Some(c) = cache {
        if !m.ttl_ms {
            member(out);
            out.extend_from_slice(b"\"ttlMs\":");
            out.extend_from_slice(c.ttl_ms.to_string().as_bytes());
        }
        if !m.cache_scope {
            member(out);
            out.extend_from_slice(if c.public {
                br#""cacheScope":"public""#
            } else {
                br#""cacheScope":"private""#
            });
        }
    }
    // Where the stamp goes inside an existing `_meta` object (an offset into `body`).
    let mut stamp_at = None;
    match m.meta {
        None => {
            member(out);
            out.extend_from_slice(b"\"_meta\":{");
            write_stamp(out, server_info);
            out.push(b'}');
        }
        Some(meta) if meta.get().starts_with('{') => {
            let has: HasServerInfo =
                serde_json::from_str(meta.get()).map_err(|_| not_an_object())?;
            if !has.0 {
                // `meta` borrows from `raw`: its offset is where its text starts in `raw`.
                let at = (meta.get().as_ptr() as usize)
                    .checked_sub(raw.as_ptr() as usize)
                    .filter(|at| raw.get(*at..).is_some_and(|s| s.starts_with('{')))
                    .ok_or_else(not_an_object)?;
                let empty = meta.get()[1..].trim_start().starts_with('}');
                stamp_at = Some((at, empty));
            }
        }
        // A `_meta` that is not an object is left alone (no place for a stamp).
        Some(_) => {}
    }
    if added == 0 {
        out.push(b'{');
    } else if !body.trim_start().starts_with('}') {
        out.push(b',');
    }
    match stamp_at {
        None => out.extend_from_slice(body.as_bytes()),
        Some((at, empty)) => {
            // `at` indexes `raw`; `body` is `raw` without its first byte.
            let (before, after) = raw.split_at(at + 1);
            out.extend_from_slice(&before.as_bytes()[1..]);
            write_stamp(out, server_info);
            if !empty {
                out.push(b',');
            }
            out.extend_from_slice(after.as_bytes());
        }
    }
    Ok(())
}

fn write_stamp(out: &mut Vec<u8>, server_info: &Value) {
    out.push(b'"');
    out.extend_from_slice(META_SERVER_INFO.as_bytes());
    out.extend_from_slice(b"\":");
    // Serializing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, server_info);
}

/// An `input_required` result.
pub fn input_required(
    input_requests: &Map<String, Value>,
    state: &str,
    server_info: &Value,
) -> Bytes {
    let mut m = Map::new();
    m.insert("resultType".into(), json!("input_required"));
    m.insert(
        "inputRequests".into(),
        Value::Object(input_requests.clone()),
    );
    m.insert(REQUEST_STATE.into(), json!(state));
    let mut meta = Map::new();
    meta.insert(META_SERVER_INFO.into(), server_info.clone());
    m.insert("_meta".into(), Value::Object(meta));
    // Serializing a JSON map cannot fail.
    Bytes::from(serde_json::to_vec(&m).unwrap_or_default())
}

/// The top-level members of a result that the envelope rules look at.
#[derive(Default)]
struct Members<'a> {
    result_type: bool,
    ttl_ms: bool,
    cache_scope: bool,
    meta: Option<&'a RawValue>,
}

enum Key {
    ResultType,
    TtlMs,
    CacheScope,
    Meta,
    ServerInfo,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "resultType" => Key::ResultType,
                    "ttlMs" => Key::TtlMs,
                    "cacheScope" => Key::CacheScope,
                    "_meta" => Key::Meta,
                    META_SERVER_INFO => Key::ServerInfo,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut m = Members::default();
                while let Some(k) = map.next_key::<Key>()? {
                    match k {
                        Key::ResultType => m.result_type = true,
                        Key::TtlMs => m.ttl_ms = true,
                        Key::CacheScope => m.cache_scope = true,
                        // Duplicate keys: the last one counts, as in a parsed `Map`.
                        Key::Meta => {
                            m.meta = Some(map.next_value()?);
                            continue;
                        }
                        Key::ServerInfo | Key::Other => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether a `_meta` object already carries the serverInfo stamp.
struct HasServerInfo(bool);

impl<'de> Deserialize<'de> for HasServerInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HasServerInfo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a _meta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HasServerInfo, A::Error> {
                let mut found = false;
                while let Some(k) = map.next_key::<Key>()? {
                    found |= matches!(k, Key::ServerInfo);
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(HasServerInfo(found))
            }
        }
        d.deserialize_map(V)
    }
}

/// A message on a call's stream, read only as far as routing it needs.
#[derive(Debug)]
pub enum Peeked<'a> {
    /// The call's result, still raw text.
    Result(&'a RawValue),
    /// The call's error.
    Error(ErrorObject),
    /// A notification, by method.
    Notification(Cow<'a, str>),
    /// A server→client request: parse it in full to relay it.
    Request,
    /// Not a JSON-RPC message this side understands.
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// Reads a message the gateway itself serialized (so its JSON-RPC framing is trusted) without
/// building its params or result into `Value`s.
pub fn peek(bytes: &[u8]) -> Peeked<'_> {
    let Ok(env) = serde_json::from_slice::<Envelope<'_>>(bytes) else {
        return Peeked::Other;
    };
    match (env.method, env.id, env.result, env.error) {
        (Some(_), Some(_), None, None) => Peeked::Request,
        (Some(m), None, None, None) => Peeked::Notification(m),
        (None, Some(_), Some(r), None) => Peeked::Result(r),
        (None, Some(_), None, Some(e)) => Peeked::Error(e),
        _ => Peeked::Other,
    }
}

#[cfg(test)]
mod tests;
