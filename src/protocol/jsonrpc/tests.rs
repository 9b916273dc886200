use super::*;

fn parse(s: &str) -> Result<Message, ParseError> {
    Message::parse(s.as_bytes())
}

#[test]
fn classifies_request_notification_response() {
    let m =
        parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#).unwrap();
    let Message::Request(r) = m else {
        panic!("not a request")
    };
    assert_eq!(r.id, RequestId::Num(1));
    assert_eq!(r.param_str("name"), Some("x"));

    let m = parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert!(matches!(m, Message::Notification(n) if n.method == "notifications/initialized"));

    let m = parse(r#"{"jsonrpc":"2.0","id":"a","result":{"big":[1,2,3]}}"#).unwrap();
    let Message::Response(r) = m else {
        panic!("not a response")
    };
    assert_eq!(r.id, RequestId::Str("a".into()));
    assert_eq!(r.outcome.unwrap().get(), r#"{"big":[1,2,3]}"#);
}

#[test]
fn raw_result_is_forwarded_byte_for_byte() {
    let body = r#"{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"hé \u00e9"}],"z":1.50}}"#;
    let m = parse(body).unwrap();
    assert_eq!(std::str::from_utf8(&m.to_bytes()).unwrap(), body);
}

#[test]
fn malformed_json_is_a_parse_error() {
    let e = parse(r#"{"jsonrpc":"2.0","id":1,"method":"#).unwrap_err();
    assert_eq!(e.code(), codes::PARSE_ERROR);
    assert_eq!(parse("").unwrap_err().code(), codes::PARSE_ERROR);
}

#[test]
fn batches_and_non_objects_are_invalid_requests_with_a_reason() {
    let e = parse(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
    assert_eq!(e, ParseError::Batch);
    assert_eq!(e.code(), codes::INVALID_REQUEST);
    assert!(e.to_string().contains("batch"));
    assert_eq!(parse("42").unwrap_err().code(), codes::INVALID_REQUEST);
    // A batch that is not even JSON is a parse error, not a batch.
    assert_eq!(parse("[1,").unwrap_err().code(), codes::PARSE_ERROR);
}

#[test]
fn envelope_violations_are_invalid_requests() {
    for bad in [
        r#"{"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0"}"#,
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.code(), codes::INVALID_REQUEST, "{bad} gave {e}");
    }
}

#[test]
fn error_responses_round_trip() {
    let m = parse(
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"nope","data":{"m":"x"}}}"#,
    )
    .unwrap();
    let Message::Response(Response {
        outcome: Err(e), ..
    }) = &m
    else {
        panic!()
    };
    assert_eq!(e.code, codes::METHOD_NOT_FOUND);
    assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
}

#[test]
fn meta_mut_creates_and_repairs_meta() {
    let Message::Request(mut r) =
        parse(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":3}}"#).unwrap()
    else {
        panic!()
    };
    r.meta_mut().insert("progressToken".into(), Value::from(9));
    assert_eq!(r.progress_token(), Some(&Value::from(9)));
}
