//! W3C trace context at the gateway's edges: `traceparent`/`tracestate`/`baggage` read from a
//! client's HTTP headers or `params._meta`, and written into what goes to a backend.

use http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use serde_json::{Map, Value};

/// Longest `tracestate`/`baggage` accepted from a client (W3C limits are 512 / 8192 bytes).
const MAX_TRACESTATE: usize = 512;
const MAX_BAGGAGE: usize = 8192;

/// A remote parent: what a client (or its HTTP request) said the current trace is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remote {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    /// Passed on as received (bounded).
    pub tracestate: Option<Box<str>>,
    pub baggage: Option<Box<str>>,
}

impl Remote {
    /// Reads the context from HTTP headers; `None` when `traceparent` is absent or malformed.
    pub fn from_headers(h: &HeaderMap) -> Option<Remote> {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        Remote::parse(get("traceparent")?, get("tracestate"), get("baggage"))
    }

    /// Reads the context from a request's `params._meta`.
    pub fn from_meta(params: Option<&Map<String, Value>>) -> Option<Remote> {
        let meta = params?.get("_meta")?.as_object()?;
        let get = |n: &str| meta.get(n).and_then(Value::as_str);
        Remote::parse(get("traceparent")?, get("tracestate"), get("baggage"))
    }

    /// Parses `traceparent` (version 00 layout; later versions are read by their first four
    /// fields, as the W3C spec asks).
    pub fn parse(tp: &str, tracestate: Option<&str>, baggage: Option<&str>) -> Option<Remote> {
        let tp = tp.trim();
        let mut parts = tp.split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flag = [0u8; 1];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        hex::decode_to_slice(flags, &mut flag).ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] || !is_lower_hex(tp) {
            return None;
        }
        let bounded = |s: Option<&str>, max: usize| {
            s.map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= max && s.is_ascii())
                .map(Box::from)
        };
        Some(Remote {
            trace_id,
            span_id,
            sampled: flag[0] & 1 == 1,
            tracestate: bounded(tracestate, MAX_TRACESTATE),
            baggage: bounded(baggage, MAX_BAGGAGE),
        })
    }

    pub fn span_context(&self) -> SpanContext {
        let state = self
            .tracestate
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            state,
        )
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `00-<trace>-<span>-<flags>`.
pub fn traceparent(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> String {
    let mut s = String::with_capacity(55);
    s.push_str("00-");
    push_hex(&mut s, &trace_id);
    s.push('-');
    push_hex(&mut s, &span_id);
    s.push_str(if sampled { "-01" } else { "-00" });
    s
}

/// Lower-case hex, written in place (no intermediate strings).
fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// The context a backend continues: what goes into a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    pub traceparent: String,
    pub tracestate: Option<Box<str>>,
    pub baggage: Option<Box<str>>,
}

/// Writes the context a backend should continue into a forwarded request's `params._meta`,
/// replacing whatever the client put there.
pub fn inject_meta(params: &mut Map<String, Value>, c: Carried) {
    let (traceparent, tracestate, baggage) = (c.traceparent, c.tracestate, c.baggage);
    let (tracestate, baggage) = (tracestate.as_deref(), baggage.as_deref());
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(m) = meta {
        m.insert("traceparent".into(), Value::String(traceparent));
        for (k, v) in [("tracestate", tracestate), ("baggage", baggage)] {
            match v {
                Some(v) => m.insert(k.into(), Value::String(v.into())),
                None => m.remove(k),
            };
        }
    }
}

/// The trace headers an HTTP backend receives for a message: copied from its `params._meta`,
/// where the session wrote them (one source of truth for both carriers).
pub fn headers_from_meta(params: Option<&Map<String, Value>>) -> Vec<(&'static str, String)> {
    let Some(meta) = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    ["traceparent", "tracestate", "baggage"]
        .into_iter()
        .filter_map(|k| {
            meta.get(k)
                .and_then(Value::as_str)
                .filter(|v| v.len() <= MAX_BAGGAGE && !v.contains(['\r', '\n']))
                .map(|v| (k, v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let r = Remote::parse(TP, Some("rojo=00f067aa0ba902b7"), None).unwrap();
        assert!(r.sampled);
        assert_eq!(traceparent(r.trace_id, r.span_id, r.sampled), TP);
        assert_eq!(r.tracestate.as_deref(), Some("rojo=00f067aa0ba902b7"));
        let sc = r.span_context();
        assert!(sc.is_remote() && sc.is_sampled() && sc.is_valid());
    }

    #[test]
    fn malformed_or_hostile_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(Remote::parse(bad, None, None), None, "{bad:?}");
        }
        let long = "k=".repeat(400);
        assert_eq!(
            Remote::parse(TP, Some(&long), None).unwrap().tracestate,
            None
        );
    }

    #[test]
    fn meta_is_read_and_overwritten_and_copied_to_headers() {
        let mut p = json!({"name": "x", "_meta": {"traceparent": TP, "progressToken": 7}})
            .as_object()
            .cloned()
            .unwrap();
        assert!(Remote::from_meta(Some(&p)).is_some());
        let mine = traceparent([1; 16], [2; 8], true);
        inject_meta(
            &mut p,
            Carried {
                traceparent: mine.clone(),
                tracestate: None,
                baggage: Some("a=b".into()),
            },
        );
        assert_eq!(p["_meta"]["traceparent"], json!(mine));
        assert_eq!(p["_meta"]["progressToken"], json!(7));
        let h = headers_from_meta(Some(&p));
        assert_eq!(h, vec![("traceparent", mine), ("baggage", "a=b".into())]);
    }
}
