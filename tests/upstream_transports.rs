//! Backend transports against real MCP peers: server-everything over Streamable HTTP, stdio, and WebSocket (through a test bridge).
#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "common/upstream_peers.rs"]
mod upstream_peers;
#[path = "common/upstream_ws_bridge.rs"]
mod upstream_ws_bridge;

use serde_json::{Value, json};
use switchboard::config::BackendConfig;
use switchboard::protocol::{Message, RequestId};
use switchboard::upstream::{
    EVENT_CHANNEL_CAPACITY, Upstream, UpstreamError, UpstreamEvent, UpstreamPool,
};
use tokio::sync::mpsc;

use upstream_peers::*;
use upstream_ws_bridge::{Ended, start_ws_bridge};

async fn connect(cfg: &BackendConfig) -> (Upstream, mpsc::Receiver<UpstreamEvent>) {
    let pool = UpstreamPool::new(std::slice::from_ref(cfg)).unwrap();
    connect_with(cfg, &pool).await
}

async fn connect_with(
    cfg: &BackendConfig,
    pool: &UpstreamPool,
) -> (Upstream, mpsc::Receiver<UpstreamEvent>) {
    init_tracing();
    let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let up = Upstream::connect(cfg, pool, tx).await.unwrap();
    (up, rx)
}

fn num(id: i64) -> Option<RequestId> {
    Some(RequestId::Num(id))
}

/// Makes the server send a `roots/list` request (a server→client message for the GET
/// stream) until one arrives: the GET stream opens asynchronously after `initialized`, and
/// the server drops messages for a session with no stream open. Bounded by `WAIT`.
async fn roots_request_via_get_stream(
    up: &Upstream,
    rx: &mut mpsc::Receiver<UpstreamEvent>,
) -> (RequestId, Option<RequestId>) {
    let poll = std::time::Duration::from_millis(300);
    let found = tokio::time::timeout(WAIT, async {
        loop {
            up.send(notification("notifications/roots/list_changed"))
                .await
                .unwrap();
            if let Ok(found) = tokio::time::timeout(poll, next_roots_request(rx)).await {
                return found;
            }
        }
    })
    .await;
    found.expect("no roots/list request arrived on the GET stream")
}

async fn next_roots_request(
    rx: &mut mpsc::Receiver<UpstreamEvent>,
) -> (RequestId, Option<RequestId>) {
    loop {
        match rx.recv().await.expect("event channel closed") {
            UpstreamEvent::Message {
                msg: Message::Request(r),
                related,
            } if r.method == "roots/list" => return (r.id, related),
            UpstreamEvent::Message { .. } => {}
            other => panic!("unexpected event: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- Streamable HTTP

#[tokio::test]
async fn http_everything_handshake_list_echo_with_related_ids_and_shared_pool() {
    let peer = everything_http().await;
    let cfg = http_backend(&peer.url(), &[("Authorization", "Bearer test-token")]);
    let pool = UpstreamPool::new(std::slice::from_ref(&cfg)).unwrap();
    let (up, mut rx) = connect_with(&cfg, &pool).await;
    assert_eq!(up.transport_name(), "streamable-http");

    let init = handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    // server-everything answers 400 to any non-initialize POST without a known
    // Mcp-Session-Id, so these answers prove the session id is reused.
    let (tools, related) = tool_names(&up, &mut rx, 2).await;
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    assert_eq!(related, num(2), "SSE answers carry the request id");
    let (text, related) = echo(&up, &mut rx, 3, "hello").await;
    assert_eq!(text, "Echo: hello");
    assert_eq!(related, num(3));

    // A second connection through the same pool gets its own backend session.
    let (up2, mut rx2) = connect_with(&cfg, &pool).await;
    handshake(&up2, &mut rx2, 1, json!({})).await;
    assert_eq!(echo(&up2, &mut rx2, 2, "two").await.0, "Echo: two");
    up2.close().await;
    up.close().await;
}

#[tokio::test]
async fn http_slow_request_does_not_block_others_and_progress_is_related() {
    let peer = everything_http().await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;

    let params = json!({
        "name": "trigger-long-running-operation",
        "arguments": {"duration": 2, "steps": 2},
        "_meta": {"progressToken": "p-1"},
    });
    up.send(request(10, "tools/call", params)).await.unwrap();
    up.send(request(11, "tools/call", echo_params("fast")))
        .await
        .unwrap();
    // The echo answer must overtake the 2-second operation.
    let first = wait_for(&mut rx, "a response", |ev| match ev {
        UpstreamEvent::Message {
            msg: Message::Response(r),
            ..
        } => Some(r.id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(first, RequestId::Num(11));
    let related = wait_for(&mut rx, "a progress notification", |ev| match ev {
        UpstreamEvent::Message { msg, related }
            if msg.method() == Some("notifications/progress") =>
        {
            Some(related.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        related,
        num(10),
        "progress arrives on the request's SSE stream"
    );
    let (result, related) = result_of(&mut rx, 10).await;
    assert!(tool_text(&result).starts_with("Long running operation completed"));
    assert_eq!(related, num(10));
    up.close().await;
}

#[tokio::test]
async fn http_get_stream_carries_server_requests_unrelated() {
    let peer = everything_http().await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({"roots": {"listChanged": true}})).await;
    let (id, related) = roots_request_via_get_stream(&up, &mut rx).await;
    assert_eq!(related, None, "GET stream messages belong to no request");
    // Answer it (a POSTed response), and the server logs what it received on the GET stream.
    up.send(response(id, json!({"roots": []}))).await.unwrap();
    let data = wait_for(&mut rx, "the server's log about roots", |ev| match ev {
        UpstreamEvent::Message {
            msg: Message::Notification(n),
            related: None,
        } if n.method == "notifications/message" => n.param("data").cloned(),
        _ => None,
    })
    .await;
    assert!(data.to_string().contains("root"), "{data}");
    up.close().await;
}

#[tokio::test]
async fn http_get_stream_reconnects_after_the_server_closes_it() {
    let peer = strict_http(false).await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({"roots": {"listChanged": true}})).await;
    // One server request through the GET stream gives the client an event id to resume from.
    let (id, _) = roots_request_via_get_stream(&up, &mut rx).await;
    up.send(response(id, json!({"roots": []}))).await.unwrap();
    let broke = reqwest::Client::new()
        .post(format!("{}/test/break-get-streams", peer.base()))
        .send()
        .await
        .unwrap();
    assert!(broke.status().is_success());
    // Sent while the stream is down (the client waits ~1 s before reconnecting): the server
    // stores it, and the reconnect with Last-Event-ID replays it.
    up.send(notification("notifications/roots/list_changed"))
        .await
        .unwrap();
    let (_, related) = tokio::time::timeout(WAIT, next_roots_request(&mut rx))
        .await
        .expect("roots/list after reconnect");
    assert_eq!(related, None);
    up.close().await;
}

#[tokio::test]
async fn http_forgotten_session_yields_session_expired_and_reinitialize_recovers() {
    let peer = strict_http(false).await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(echo(&up, &mut rx, 2, "before").await.0, "Echo: before");

    let forget = reqwest::Client::new()
        .post(format!("{}/test/forget-sessions", peer.base()))
        .send()
        .await
        .unwrap();
    assert!(forget.status().is_success());

    up.send(request(3, "tools/call", echo_params("after")))
        .await
        .unwrap();
    let unsent = wait_for(&mut rx, "SessionExpired", |ev| match ev {
        UpstreamEvent::SessionExpired { unsent } => Some(unsent.clone()),
        _ => None,
    })
    .await;
    assert_eq!(unsent, request(3, "tools/call", echo_params("after")));

    // What the owner does: re-initialize through the same connection and resend.
    handshake(&up, &mut rx, 4, json!({})).await;
    up.send(unsent).await.unwrap();
    let (result, related) = result_of(&mut rx, 3).await;
    assert_eq!(tool_text(&result), "Echo: after");
    assert_eq!(related, num(3));
    up.close().await;
}

#[tokio::test]
async fn http_json_responses_are_related_and_close_deletes_the_session() {
    let peer = strict_http(true).await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    let (text, related) = echo(&up, &mut rx, 2, "json").await;
    assert_eq!(text, "Echo: json");
    assert_eq!(related, num(2));

    assert_eq!(peer.live_sessions().await, 1);
    up.close().await;
    assert_eq!(
        peer.live_sessions().await,
        0,
        "close() DELETEs the backend session"
    );
}

#[tokio::test]
async fn http_broken_response_stream_is_resumed_with_last_event_id() {
    let peer = strict_http(false).await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    let params = json!({"name": "echo-after-stream-break", "arguments": {"message": "resumed"}});
    up.send(request(2, "tools/call", params)).await.unwrap();
    let (result, related) = result_of(&mut rx, 2).await;
    assert_eq!(tool_text(&result), "Echo: resumed");
    assert_eq!(related, num(2));
    up.close().await;
}

#[tokio::test]
async fn http_unreachable_backend_fails_the_request_without_leaking_credentials() {
    let url = format!("http://127.0.0.1:{}/mcp?token=url-secret", free_port());
    let cfg = http_backend(&url, &[("Authorization", "Bearer header-secret")]);
    let (up, mut rx) = connect(&cfg).await;
    up.send(request(1, "tools/list", json!({}))).await.unwrap();
    let error = wait_for(&mut rx, "SendFailed", |ev| match ev {
        UpstreamEvent::SendFailed { msg, error } => {
            assert_eq!(msg, &request(1, "tools/list", json!({})));
            Some(error.clone())
        }
        _ => None,
    })
    .await;
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    let text = format!("{error} {error:?} {up:?}");
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn http_dropping_the_upstream_ends_its_background_tasks() {
    let peer = everything_http().await;
    let (up, mut rx) = connect(&http_backend(&peer.url(), &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    // A round trip after `initialized`, so the GET stream task is running.
    assert_eq!(echo(&up, &mut rx, 2, "x").await.0, "Echo: x");
    drop(up);
    expect_channel_closed(&mut rx).await;
}

/// Every task holding the event sender is gone once the channel reports closed.
async fn expect_channel_closed(rx: &mut mpsc::Receiver<UpstreamEvent>) {
    let drained = tokio::time::timeout(WAIT, async { while rx.recv().await.is_some() {} }).await;
    assert!(drained.is_ok(), "background tasks outlived the upstream");
}

// ---------------------------------------------------------------- stdio

#[tokio::test]
async fn stdio_everything_handshake_list_and_echo() {
    let (up, mut rx) = connect(&everything_stdio_backend(&[])).await;
    assert_eq!(up.transport_name(), "stdio");
    let init = handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    let (tools, related) = tool_names(&up, &mut rx, 2).await;
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    assert_eq!(related, None);
    assert_eq!(echo(&up, &mut rx, 3, "stdio").await.0, "Echo: stdio");
    up.close().await;
}

/// `set_var` is unsafe (and unsafe code is forbidden), so the test re-runs itself with
/// `SB_TEST_SECRET` in its environment: the gateway's environment then holds a secret.
#[tokio::test]
async fn stdio_backend_sees_only_allowed_and_configured_env() {
    const NAME: &str = "stdio_backend_sees_only_allowed_and_configured_env";
    if std::env::var_os("SB_TEST_SECRET").is_none() {
        let out = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("SB_TEST_SECRET", "gateway-only-secret")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains("1 passed"),
            "the re-run must run the test: {stdout}"
        );
        return;
    }
    let cfg = everything_stdio_backend(&[("SB_CONFIGURED", "configured-value")]);
    let (up, mut rx) = connect(&cfg).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    let params = json!({"name": "get-env", "arguments": {}});
    up.send(request(2, "tools/call", params)).await.unwrap();
    let (result, _) = result_of(&mut rx, 2).await;
    let env: serde_json::Map<String, Value> = serde_json::from_str(&tool_text(&result)).unwrap();
    assert!(!env.contains_key("SB_TEST_SECRET"), "{env:?}");
    assert_eq!(env["SB_CONFIGURED"], "configured-value");
    let allowed = ["PATH", "HOME", "LANG", "TMPDIR", "SB_CONFIGURED"];
    for key in env.keys() {
        assert!(allowed.contains(&key.as_str()), "unexpected variable {key}");
    }
    up.close().await;
}

#[tokio::test]
async fn stdio_malformed_line_is_skipped_and_exit_is_reported() {
    let script = r#"echo 'this is not json'; echo '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"after garbage"}}'; exit 3"#;
    let (_up, mut rx) = connect(&stdio_backend("/bin/sh", &["-c", script], &[])).await;
    let data = wait_for(&mut rx, "the line after the malformed one", |ev| match ev {
        UpstreamEvent::Message {
            msg: Message::Notification(n),
            related: None,
        } => n.param("data").cloned(),
        _ => None,
    })
    .await;
    assert_eq!(data, "after garbage");
    let error = wait_for(&mut rx, "Closed", |ev| match ev {
        UpstreamEvent::Closed { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(error.to_string().contains("status 3"), "{error}");
}

#[tokio::test]
async fn stdio_close_leaves_no_process_of_the_group_alive() {
    // A launcher-style backend: a grandchild (sleep) shares stdout and outlives nothing.
    let script = format!("sleep 300 & exec {NODE} {} stdio", everything());
    let (up, mut rx) = connect(&stdio_backend("/bin/sh", &["-c", &script], &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(echo(&up, &mut rx, 2, "group").await.0, "Echo: group");
    let Upstream::Stdio(stdio) = &up else {
        panic!("not stdio")
    };
    let pgid = stdio.pid();
    assert!(
        live_group_members(pgid).len() >= 2,
        "node and sleep run in the backend's group"
    );
    up.close().await;
    assert_eq!(live_group_members(pgid), Vec::<u32>::new());
}

#[tokio::test]
async fn stdio_dropping_the_upstream_kills_the_group_and_ends_its_tasks() {
    let script = format!("sleep 300 & exec {NODE} {} stdio", everything());
    let (up, mut rx) = connect(&stdio_backend("/bin/sh", &["-c", &script], &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    let Upstream::Stdio(stdio) = &up else {
        panic!("not stdio")
    };
    let pgid = stdio.pid();
    drop(up);
    expect_channel_closed(&mut rx).await;
    // SIGKILL was sent synchronously in Drop; the kernel needs a moment to tear down.
    let gone = tokio::time::timeout(WAIT, async {
        while !live_group_members(pgid).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "group members left: {:?}",
        live_group_members(pgid)
    );
}

#[tokio::test]
async fn stdio_close_escalates_to_sigkill_for_a_backend_ignoring_sigterm() {
    let script = "trap '' TERM; while :; do sleep 1; done";
    let (up, mut rx) = connect(&stdio_backend("/bin/sh", &["-c", script], &[])).await;
    let Upstream::Stdio(stdio) = &up else {
        panic!("not stdio")
    };
    let pgid = stdio.pid();
    up.close().await;
    assert_eq!(live_group_members(pgid), Vec::<u32>::new());
    let error = wait_for(&mut rx, "Closed", |ev| match ev {
        UpstreamEvent::Closed { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(error.to_string().contains("signal 9"), "{error}");
}

#[tokio::test]
async fn stdio_missing_binary_is_a_connect_error() {
    let cfg = stdio_backend("/nonexistent/mcp-server", &[], &[]);
    let (tx, _rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let pool = UpstreamPool::new(&[]).unwrap();
    let err = Upstream::connect(&cfg, &pool, tx).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/mcp-server"), "{err}");
}

// ---------------------------------------------------------------- WebSocket

#[tokio::test]
async fn websocket_bridge_handshake_list_echo_and_close_frame() {
    let mut bridge = start_ws_bridge().await;
    let cfg = ws_backend(&bridge.url, &[("Authorization", "Bearer ws-token")]);
    let (up, mut rx) = connect(&cfg).await;
    assert_eq!(up.transport_name(), "websocket");
    let headers = (&mut bridge.upgrade_headers).await.unwrap();
    assert_eq!(headers["authorization"], "Bearer ws-token");
    assert_eq!(headers["sec-websocket-protocol"], "mcp");

    let init = handshake(&up, &mut rx, 1, json!({})).await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    let (tools, related) = tool_names(&up, &mut rx, 2).await;
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    assert_eq!(related, None);
    assert_eq!(echo(&up, &mut rx, 3, "ws").await.0, "Echo: ws");

    up.close().await;
    let ended = tokio::time::timeout(WAIT, &mut bridge.ended).await.unwrap();
    assert_eq!(ended.unwrap(), Ended::ClientCloseFrame);
}

#[tokio::test]
async fn websocket_socket_end_emits_closed() {
    let mut bridge = start_ws_bridge().await;
    let (up, mut rx) = connect(&ws_backend(&bridge.url, &[])).await;
    handshake(&up, &mut rx, 1, json!({})).await;
    bridge.hang_up();
    let error = wait_for(&mut rx, "Closed", |ev| match ev {
        UpstreamEvent::Closed { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, UpstreamError::Closed(_)), "{error:?}");
}

/// Accepts one connection, reads a request head and its body, answers `response`; returns the head.
async fn one_raw_exchange(listener: tokio::net::TcpListener, response: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a request head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    sock.write_all(response.as_bytes()).await.unwrap();
    head
}

#[tokio::test]
async fn http_url_user_info_becomes_basic_auth_and_stays_off_the_request_line() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let server = tokio::spawn(one_raw_exchange(listener, response));
    let url = format!("http://user:p%40ss@127.0.0.1:{port}/mcp?x=1#frag");
    let (up, mut rx) = connect(&http_backend(&url, &[])).await;
    up.send(request(1, "tools/list", json!({}))).await.unwrap();
    let related = wait_for(&mut rx, "the JSON answer", |ev| match ev {
        UpstreamEvent::Message { related, .. } => Some(related.clone()),
        _ => None,
    })
    .await;
    assert_eq!(related, num(1));
    let head = server.await.unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("POST /mcp?x=1 HTTP/1.1\r\n"), "{head}");
    // base64("user:p@ss")
    assert!(
        lower.contains("authorization: basic dxnlcjpwqhnz\r\n"),
        "{head}"
    );
    assert!(
        lower.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(lower.contains("user-agent: switchboard/"), "{head}");
    assert!(
        lower.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert!(
        lower.contains("accept: application/json, text/event-stream\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn https_backend_speaks_tls_and_a_failed_handshake_leaks_no_credentials() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Reads the first bytes (a TLS ClientHello is a handshake record: 0x16 0x03 …), then hangs up.
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 2];
        sock.read_exact(&mut first).await.unwrap();
        first
    });
    let url = format!("https://127.0.0.1:{port}/mcp?token=url-secret");
    let cfg = http_backend(&url, &[("Authorization", "Bearer header-secret")]);
    let (up, mut rx) = connect(&cfg).await;
    up.send(request(1, "tools/list", json!({}))).await.unwrap();
    let error = wait_for(&mut rx, "SendFailed", |ev| match ev {
        UpstreamEvent::SendFailed { error, .. } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert_eq!(server.await.unwrap(), [0x16, 0x03], "not a TLS handshake");
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    let text = format!("{error} {error:?} {up:?}");
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn https_backend_stalling_the_tls_handshake_hits_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts the TCP connection, then never answers the ClientHello.
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(WAIT).await;
        drop(sock);
    });
    let mut cfg = http_backend(&format!("https://127.0.0.1:{port}/mcp"), &[]);
    cfg.timeouts.connect = std::time::Duration::from_millis(300);
    let (up, mut rx) = connect(&cfg).await;
    up.send(request(1, "tools/list", json!({}))).await.unwrap();
    let error = wait_for(&mut rx, "SendFailed", |ev| match ev {
        UpstreamEvent::SendFailed { error, .. } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, UpstreamError::Timeout(_)), "{error:?}");
    server.abort();
}
