//! A stateless backend's answer in the 2025 shape the session layer speaks: results lose the
//! 2026 envelope (read from their top-level members only; every other member is copied as the
//! backend wrote it), errors get their 2025 codes, `input_required` is told apart.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::protocol::ErrorObject;
use crate::protocol::era2026::META_SERVER_INFO;
use crate::protocol::jsonrpc::codes;

/// A stateless backend's result, as the session layer (2025) takes it.
#[derive(Debug)]
pub(super) enum Answer {
    /// Complete, in the 2025 shape.
    Complete(Box<RawValue>),
    /// `input_required`: parsed, its requests become server→client requests.
    InputRequired(Map<String, Value>),
    /// Not a JSON object: handed on untouched.
    Opaque,
}

/// A top-level member name, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, k: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(k)))
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(k.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A result object's members in order, their values still raw text.
struct Members<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry()? {
                    v.push(entry);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A 2026 result in the 2025 shape the session layer speaks: no `resultType`, `ttlMs`,
/// `cacheScope` or serverInfo stamp (the 2026 client path adds its own). The stamp of
/// `server/discover` is the server's identity: it becomes the result's `serverInfo`. Only the
/// top-level members and `_meta` are read; every other member is copied as the backend wrote it.
pub(super) fn read_result(method: &str, raw: &str) -> Answer {
    let Ok(Members(members)) = serde_json::from_str::<Members<'_>>(raw) else {
        return Answer::Opaque;
    };
    // Duplicate names: the last one counts (as when parsed into a map).
    let last = |i: usize, k: &str| !members[i + 1..].iter().any(|(o, _)| o.0 == k);
    let input_required = members
        .iter()
        .rev()
        .find(|(k, _)| k.0 == "resultType")
        .is_some_and(|(_, v)| {
            serde_json::from_str::<Cow<'_, str>>(v.get()).is_ok_and(|t| t == "input_required")
        });
    if input_required {
        return match serde_json::from_str(raw) {
            Ok(m) => Answer::InputRequired(m),
            Err(_) => Answer::Opaque,
        };
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut stamp = None;
    let mut has_server_info = false;
    for (i, (k, v)) in members.iter().enumerate() {
        let k = &*k.0;
        if !last(i, k) || matches!(k, "resultType" | "ttlMs" | "cacheScope") {
            continue;
        }
        has_server_info |= k == "serverInfo";
        let mark = out.len();
        out.push(if out.is_empty() { b'{' } else { b',' });
        // Serializing a string or a map into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        if k == "_meta"
            && let Ok(mut meta) = serde_json::from_str::<Map<String, Value>>(v.get())
        {
            stamp = meta.remove(META_SERVER_INFO);
            if meta.is_empty() {
                // Take the member back out: nothing but the stamp was in it.
                out.truncate(mark);
            } else {
                let _ = serde_json::to_writer(&mut out, &meta);
            }
            continue;
        }
        out.extend_from_slice(v.get().as_bytes());
    }
    if method == "server/discover"
        && !has_server_info
        && let Some(info) = stamp
    {
        out.push(if out.is_empty() { b'{' } else { b',' });
        out.extend_from_slice(b"\"serverInfo\":");
        let _ = serde_json::to_writer(&mut out, &info);
    }
    if out.is_empty() {
        out.push(b'{');
    }
    out.push(b'}');
    match String::from_utf8(out).map(RawValue::from_string) {
        Ok(Ok(legacy)) => Answer::Complete(legacy),
        _ => Answer::Opaque,
    }
}

/// A 2026 error as the session layer (2025) understands it: a missing resource is `-32602`
/// in 2026 and `-32002` in 2025.
pub(super) fn legacy_error(method: &str, mut e: ErrorObject) -> ErrorObject {
    if method == "resources/read"
        && e.code == codes::INVALID_PARAMS
        && e.message.to_ascii_lowercase().contains("not found")
    {
        e.code = codes::RESOURCE_NOT_FOUND;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legacy(method: &str, raw: &str) -> Value {
        match read_result(method, raw) {
            Answer::Complete(r) => serde_json::from_str(r.get()).unwrap(),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn results_lose_the_2026_envelope() {
        let raw = r#"{"resultType":"complete","ttlMs":0,"cacheScope":"private","tools":[],
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"x"}}}"#;
        assert_eq!(legacy("tools/list", raw), json!({"tools": []}));
        let raw = r#"{"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{},
            "progressToken":1},"content":[{"type":"text","text":"a\"b"}],"isError":false}"#;
        assert_eq!(
            legacy("tools/call", raw),
            json!({"_meta": {"progressToken": 1}, "content": [{"type": "text", "text": "a\"b"}],
                "isError": false})
        );
        assert_eq!(
            legacy("tools/call", r#"{"resultType":"complete"}"#),
            json!({})
        );
        assert_eq!(
            legacy("tools/call", r#"{"a":1,"a":2,"_meta":null}"#),
            json!({"a": 2, "_meta": null})
        );
    }

    #[test]
    fn discover_keeps_the_servers_identity() {
        let raw = r#"{"resultType":"complete","supportedVersions":["2026-07-28"],
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"lab","version":"1"}}}"#;
        assert_eq!(
            legacy("server/discover", raw),
            json!({"supportedVersions": ["2026-07-28"], "serverInfo": {"name": "lab", "version": "1"}})
        );
    }

    #[test]
    fn questions_and_non_objects_are_told_apart() {
        let raw = r#"{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list"}},
            "requestState":"s"}"#;
        match read_result("tools/call", raw) {
            Answer::InputRequired(m) => assert_eq!(m["requestState"], "s"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_result("tools/call", "[1]"), Answer::Opaque));
        assert!(matches!(read_result("tools/call", "\"x\""), Answer::Opaque));
    }

    #[test]
    fn missing_resources_keep_their_meaning() {
        let e = ErrorObject::new(codes::INVALID_PARAMS, "Resource not found: x");
        assert_eq!(
            legacy_error("resources/read", e.clone()).code,
            codes::RESOURCE_NOT_FOUND
        );
        assert_eq!(legacy_error("tools/call", e).code, codes::INVALID_PARAMS);
    }
}
