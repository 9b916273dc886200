use serde_json::json;

use super::*;
use crate::protocol::{Message, RequestId};

fn req(v: serde_json::Value) -> Request {
    match Message::parse(v.to_string().as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn call(version: &str, name: &str) -> Request {
    req(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": name, "arguments": {},
            "_meta": {META_PROTOCOL_VERSION: version, META_CLIENT_CAPABILITIES: {"elicitation": {}}}
        }}),
    )
}

fn headers<'a>(v: &'a str, m: &'a str, n: Option<&'a str>) -> Headers<'a> {
    Headers {
        protocol_version: Some(v),
        method: Some(m),
        name: n,
    }
}

#[test]
fn a_consistent_request_is_accepted() {
    let e = classify(
        &call("2026-07-28", "echo"),
        &headers("2026-07-28", "tools/call", Some("echo")),
    )
    .unwrap();
    assert_eq!(e.version, ProtocolVersion::V2026_07_28);
    assert!(e.declares("elicitation") && !e.declares("sampling"));
}

#[test]
fn header_body_disagreements_are_header_mismatch() {
    let r = call("2026-07-28", "echo");
    for h in [
        headers("2026-07-28", "tools/list", Some("echo")),
        headers("2026-07-28", "tools/call", Some("rm_rf")),
        headers("2026-07-28", "tools/call", None),
        headers("2025-11-25", "tools/call", Some("echo")),
        Headers {
            protocol_version: None,
            method: Some("tools/call"),
            name: Some("echo"),
        },
    ] {
        let e = classify(&r, &h).unwrap_err();
        assert_eq!((e.error.code, e.status), (-32020, 400), "{h:?}");
    }
}

#[test]
fn base64_names_are_decoded_before_comparing() {
    let r = call("2026-07-28", "héllo");
    let h = headers("2026-07-28", "tools/call", Some("=?base64?aMOpbGxv?="));
    assert!(classify(&r, &h).is_ok());
    assert_eq!(decode_header_value("=?base64?!!?="), None);
}

#[test]
fn missing_envelope_keys_are_invalid_params() {
    let r = req(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}}));
    let e = classify(&r, &headers("2026-07-28", "tools/list", None)).unwrap_err();
    assert_eq!((e.error.code, e.status), (-32602, 400));
    assert!(e.error.message.contains(META_CLIENT_CAPABILITIES));
}

#[test]
fn unknown_versions_list_what_is_served() {
    let r = call("1900-01-01", "echo");
    let e = classify(&r, &headers("1900-01-01", "tools/call", Some("echo"))).unwrap_err();
    assert_eq!((e.error.code, e.status), (-32022, 400));
    let data = e.error.data.unwrap();
    assert_eq!(data["requested"], "1900-01-01");
    assert_eq!(data["supported"][0], "2026-07-28");
    assert!(
        data["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-03-26"))
    );
}

#[test]
fn modern_detection() {
    assert!(is_modern(None, Some("2026-07-28")));
    assert!(is_modern(None, Some("1900-01-01")));
    assert!(!is_modern(None, Some("2025-06-18")));
    assert!(!is_modern(None, None));
}

#[test]
fn results_get_the_envelope_and_keep_their_fields() {
    let info = json!({"name": "switchboard"});
    let b = complete(
        r#"{"tools":[],"ttlMs":5}"#,
        &info,
        Some(Cache {
            ttl_ms: 9,
            public: false,
        }),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["resultType"], "complete");
    assert_eq!(v["ttlMs"], 5);
    assert_eq!(v["cacheScope"], "private");
    assert_eq!(v["_meta"][META_SERVER_INFO]["name"], "switchboard");
    let b = input_required(
        json!({"r1": {"method": "elicitation/create"}})
            .as_object()
            .unwrap(),
        "tok",
        &info,
    );
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["resultType"], "input_required");
    assert_eq!(v["requestState"], "tok");
}

#[test]
fn stripping_removes_only_the_modern_hop() {
    let mut r = req(
        json!({"jsonrpc": "2.0", "id": RequestId::Num(3), "method": "tools/call", "params": {
        "name": "x", "inputResponses": {}, "requestState": "s",
        "_meta": {META_PROTOCOL_VERSION: "2026-07-28", "progressToken": 7}}}),
    );
    strip_for_backend(&mut r);
    let p = r.params.unwrap();
    assert_eq!(
        json!(p),
        json!({"name": "x", "_meta": {"progressToken": 7}})
    );
}

#[test]
fn mcp_param_headers_must_mirror_annotated_arguments() {
    let schema = json!({"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "limits": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}},
        "query": {"type": "string"}
    }});
    let args = json!({"region": "us-west1", "limits": {"n": 42}, "query": "q"});
    let args = args.as_object();
    let with = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    };
    assert!(
        check_param_headers(
            &schema,
            args,
            with(&[("mcp-param-region", "us-west1"), ("mcp-param-n", "42.0")])
        )
        .is_ok()
    );
    assert!(
        check_param_headers(
            &schema,
            args,
            with(&[
                ("mcp-param-region", "=?base64?dXMtd2VzdDE=?="),
                ("mcp-param-n", "42")
            ])
        )
        .is_ok()
    );
    for bad in [
        &[("mcp-param-region", "eu-west1"), ("mcp-param-n", "42")][..],
        &[("mcp-param-n", "42")][..],
        &[("mcp-param-region", "us-west1"), ("mcp-param-n", "43")][..],
    ] {
        let e = check_param_headers(&schema, args, with(bad)).unwrap_err();
        assert_eq!(e.error.code, -32020, "{bad:?}");
    }
    // An absent argument must not come with a header.
    let none = json!({"query": "q"});
    assert!(check_param_headers(&schema, none.as_object(), with(&[])).is_ok());
    assert!(
        check_param_headers(
            &schema,
            none.as_object(),
            with(&[("mcp-param-region", "x")])
        )
        .is_err()
    );
}
