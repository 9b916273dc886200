use serde_json::{Value, json};

use super::*;

fn info() -> Value {
    json!({"name": "switchboard", "version": "1.2.3"})
}

/// The envelope as the gateway wrote it before splicing (a parsed tree, fields kept): the
/// splice must give a client the same JSON.
fn reference(raw: &str, cache: Option<Cache>) -> Value {
    let mut m: Map<String, Value> = serde_json::from_str(raw).unwrap();
    m.entry("resultType").or_insert(json!("complete"));
    if let Some(c) = cache {
        m.entry("ttlMs").or_insert(json!(c.ttl_ms));
        m.entry("cacheScope")
            .or_insert(json!(if c.public { "public" } else { "private" }));
    }
    if let Value::Object(meta) = m.entry("_meta").or_insert(json!({})) {
        meta.entry(META_SERVER_INFO).or_insert(info());
    }
    Value::Object(m)
}

fn spliced(raw: &str, cache: Option<Cache>) -> Value {
    let b = complete(raw, &info(), cache).unwrap();
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)))
}

#[test]
fn results_read_by_a_client_are_the_same_as_with_a_parsed_tree() {
    let cache = Some(Cache {
        ttl_ms: 9,
        public: true,
    });
    let cases = [
        "{}",
        " { } ",
        r#"{"content":[{"type":"text","text":"a \"quoted\" }{ brace"}],"isError":false}"#,
        r#"{"resultType":"input_required","content":[]}"#,
        r#"{"_meta":{}}"#,
        r#"{"_meta":{ }, "x": 1}"#,
        r#"{"x":{"_meta":{"deep":1}},"_meta":{"progressToken":"t","k":[1,{"a":"}"}]}}"#,
        r#"{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"backend"}}}"#,
        r#"{"_meta":null,"n":123456789}"#,
        r#"{"_meta":"text"}"#,
        r#"{"ttlMs":5,"tools":[]}"#,
        r#"{"cacheScope":"public","ttlMs":0}"#,
        r#"{"result\u0054ype":"complete","\u005fmeta":{"a":1}}"#,
        "{\n  \"é\": \"ü\",\n  \"_meta\": {\n    \"b\": true\n  }\n}\n",
    ];
    for raw in cases {
        assert_eq!(spliced(raw, None), reference(raw, None), "{raw}");
        assert_eq!(spliced(raw, cache), reference(raw, cache), "{raw}");
    }
}

#[test]
fn a_result_that_is_not_an_object_is_an_internal_error() {
    for raw in ["[]", "\"text\"", "null", "{", "{\"a\":}", ""] {
        let e = complete(raw, &info(), None).unwrap_err();
        assert_eq!(e.code, codes::INTERNAL_ERROR, "{raw}");
    }
}

#[test]
fn the_backend_text_is_kept_as_it_came() {
    // Numbers beyond f64 precision and escapes reach the client untouched.
    let raw = r#"{"n":123456789012345678901234567890,"s":"\u00e9"}"#;
    let b = complete(raw, &info(), None).unwrap();
    let s = std::str::from_utf8(&b).unwrap();
    assert!(
        s.contains(r#""n":123456789012345678901234567890,"s":"\u00e9""#),
        "{s}"
    );
}

#[test]
fn the_whole_response_carries_the_clients_id() {
    let id = RequestId::Str("c-1".into());
    let b = encode_complete(&id, r#"{"content":[]}"#, &info(), None).unwrap();
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        json!({"jsonrpc": "2.0", "id": "c-1", "result": {"content": [], "resultType": "complete",
            "_meta": {META_SERVER_INFO: info()}}})
    );
}

#[test]
fn stream_messages_are_told_apart_without_parsing_their_contents() {
    let r = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
    assert!(matches!(peek(r), Peeked::Result(raw) if raw.get() == r#"{"content":[]}"#));
    let e = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32002,"message":"gone"}}"#;
    assert!(matches!(peek(e), Peeked::Error(e) if e.code == -32002 && e.message == "gone"));
    let n = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#;
    assert!(matches!(peek(n), Peeked::Notification(m) if m == "notifications/progress"));
    let q = br#"{"jsonrpc":"2.0","id":9,"method":"elicitation/create","params":{}}"#;
    assert!(matches!(peek(q), Peeked::Request));
    for other in [
        &b"not json"[..],
        b"[]",
        br#"{"jsonrpc":"2.0","id":1,"result":null}"#,
    ] {
        assert!(matches!(peek(other), Peeked::Other));
    }
}
