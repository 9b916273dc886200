//! Request admission checks for Streamable HTTP: DNS-rebinding (Host/Origin), Accept,
//! Content-Type and `MCP-Protocol-Version`.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN};

use crate::core::SUPPORTED_VERSIONS;

/// Hosts a loopback-only demo server answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Strips an optional `:port` from an authority (`host`, `host:port`, `[v6]:port`).
fn host_only(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_loopback(authority: &str) -> bool {
    let host = host_only(authority);
    LOOPBACK_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// DNS-rebinding protection: `Host` (when present) and `Origin` (when present) must be loopback.
pub(crate) fn host_and_origin_ok(headers: &HeaderMap) -> bool {
    let host_ok = headers
        .get(HOST)
        .is_none_or(|h| h.to_str().is_ok_and(is_loopback));
    let origin_ok = headers.get(ORIGIN).is_none_or(|o| {
        o.to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, rest)| is_loopback(rest.split('/').next().unwrap_or("")))
    });
    host_ok && origin_ok
}

/// True when `Accept` lists every media type in `needed` (or `*/*`).
pub(crate) fn accepts(headers: &HeaderMap, needed: &[&str]) -> bool {
    let listed = || {
        headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.split(';').next().unwrap_or("").trim())
    };
    listed().any(|t| t == "*/*")
        || needed
            .iter()
            .all(|n| listed().any(|t| t.eq_ignore_ascii_case(n)))
}

/// True when the body is declared as JSON.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// `MCP-Protocol-Version`, when present, must be one we speak.
pub(crate) fn version_ok(headers: &HeaderMap) -> bool {
    headers
        .get("mcp-protocol-version")
        .is_none_or(|v| v.to_str().is_ok_and(|v| SUPPORTED_VERSIONS.contains(&v)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rebinding_rules() {
        assert!(host_and_origin_ok(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(host_and_origin_ok(&headers(&[
            ("host", "[::1]:1"),
            ("origin", "http://localhost:3000")
        ])));
        assert!(!host_and_origin_ok(&headers(&[(
            "host",
            "evil.example.com"
        )])));
        assert!(!host_and_origin_ok(&headers(&[
            ("host", "localhost"),
            ("origin", "http://evil.example.com")
        ])));
        assert!(!host_and_origin_ok(&headers(&[("origin", "null")])));
    }

    #[test]
    fn accept_and_version_rules() {
        assert!(accepts(
            &headers(&[("accept", "application/json, text/event-stream")]),
            &["application/json", "text/event-stream"]
        ));
        assert!(!accepts(
            &headers(&[("accept", "application/json")]),
            &["application/json", "text/event-stream"]
        ));
        assert!(accepts(
            &headers(&[("accept", "*/*")]),
            &["text/event-stream"]
        ));
        assert!(version_ok(&headers(&[])));
        assert!(version_ok(&headers(&[(
            "mcp-protocol-version",
            "2025-06-18"
        )])));
        assert!(!version_ok(&headers(&[(
            "mcp-protocol-version",
            "1999-01-01"
        )])));
    }
}
