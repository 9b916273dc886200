//! Proves the test peers work, without the gateway: both real-SDK drivers (Python `mcp`
//! 2.3.0, TypeScript `@modelcontextprotocol/sdk` 1.32.2) drive the reference
//! `server-everything` directly, the stdio peers answer `initialize`, and the conformance
//! suite's results are parsed. If these fail, gateway tests built on the same helpers
//! cannot be trusted; run `./scripts/test` to (re)install the peers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/peers.rs"]
mod peers;

use std::time::Duration;

use peers::{
    HttpPeer, PeerCommand, PySdkServer, Sdk, ServerEverything, conformance, run_driver,
    spawn_driver,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const LIMIT: Duration = peers::DRIVER_TIMEOUT;

async fn drive(sdk: Sdk, server: &HttpPeer, args: &[&str]) -> Value {
    run_driver(sdk, &server.url, args, LIMIT).await
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {s}"))
        })
        .collect()
}

/// The text of every text block of a CallToolResult, joined.
fn result_text(out: &Value) -> String {
    assert!(out.get("error").is_none(), "tool call failed: {out}");
    out["result"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {out}"))
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn methods(out: &Value, key: &str) -> Vec<String> {
    strings_of(&out[key], "method")
}

fn strings_of(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .filter_map(|e| e[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn list_shows_the_reference_catalog_and_the_declared_capabilities() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(sdk, &server, &["list"]).await;
        let tools = strings(&out["tools"]);
        // Registered only because the driver declared sampling, elicitation and roots.
        for tool in [
            "echo",
            "trigger-long-running-operation",
            "trigger-sampling-request",
            "trigger-elicitation-request",
            "get-roots-list",
        ] {
            assert!(
                tools.contains(&tool),
                "{sdk:?}: {tool} missing from {tools:?}"
            );
        }
        assert!(
            strings(&out["prompts"]).contains(&"simple-prompt"),
            "{sdk:?}: {out}"
        );
        assert!(
            strings(&out["resources"])
                .iter()
                .any(|u| u.starts_with("demo://resource/static/")),
            "{sdk:?}: {out}"
        );
        assert!(
            strings(&out["resourceTemplates"])
                .contains(&"demo://resource/dynamic/text/{resourceId}"),
            "{sdk:?}: {out}"
        );
        assert_eq!(
            out["serverInfo"]["name"], "mcp-servers/everything",
            "{sdk:?}"
        );
        assert_eq!(out["protocolVersion"], "2025-11-25", "{sdk:?}");
        assert_eq!(out["capabilities"]["tools"]["listChanged"], true, "{sdk:?}");
    }
}

#[tokio::test]
async fn echo_returns_the_text_sent() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let text = format!("hello from {sdk:?} ✓");
        let args = json!({ "message": text }).to_string();
        let out = drive(sdk, &server, &["call", "echo", &args]).await;
        assert_eq!(result_text(&out), format!("Echo: {text}"), "{sdk:?}: {out}");
    }
}

#[tokio::test]
async fn unknown_tool_is_reported_as_an_error_or_error_result_not_a_crash() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(sdk, &server, &["call", "no-such-tool", "{}"]).await;
        // The TS server SDK answers an unknown tool with isError (or -32602 in newer versions).
        let is_error_result = out["result"]["isError"] == true;
        let is_rpc_error = out["error"]["code"].is_i64();
        assert!(is_error_result || is_rpc_error, "{sdk:?}: {out}");
    }
}

#[tokio::test]
async fn progress_arrives_through_the_progress_token_in_order() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(
            sdk,
            &server,
            &[
                "call",
                "trigger-long-running-operation",
                r#"{"duration": 0.4, "steps": 4}"#,
                "--progress",
            ],
        )
        .await;
        assert!(result_text(&out).contains("Steps: 4"), "{sdk:?}: {out}");
        let progress: Vec<f64> = out["progress"]
            .as_array()
            .unwrap_or_else(|| panic!("{sdk:?}: no progress in {out}"))
            .iter()
            .map(|p| p["progress"].as_f64().unwrap_or(f64::NAN))
            .collect();
        assert_eq!(progress, [1.0, 2.0, 3.0, 4.0], "{sdk:?}: {out}");
        assert!(
            out["progress"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|p| p["total"] == 4.0),
            "{sdk:?}: {out}"
        );
    }
}

#[tokio::test]
async fn sampling_request_is_answered_deterministically() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(
            sdk,
            &server,
            &["call", "trigger-sampling-request", r#"{"prompt": "hello"}"#],
        )
        .await;
        let text = result_text(&out);
        assert!(
            text.contains("sampled: Resource trigger-sampling-request context: hello"),
            "{sdk:?}: {text}"
        );
        assert!(text.contains("driver-model"), "{sdk:?}: {text}");
        let sampling: Vec<&Value> = out["serverRequests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["method"] == "sampling/createMessage")
            .collect();
        assert_eq!(sampling.len(), 1, "{sdk:?}: {out}");
        assert_eq!(sampling[0]["params"]["maxTokens"], 100, "{sdk:?}");
    }
}

#[tokio::test]
async fn elicitation_is_accepted_with_the_given_content_and_roots_are_listed() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(
            sdk,
            &server,
            &[
                "--elicit",
                r#"{"name": "Ada Lovelace"}"#,
                "call",
                "trigger-elicitation-request",
                "{}",
            ],
        )
        .await;
        let text = result_text(&out);
        assert!(text.contains("Name: Ada Lovelace"), "{sdk:?}: {text}");
        assert!(
            methods(&out, "serverRequests").contains(&"elicitation/create".to_owned()),
            "{sdk:?}"
        );

        let out = drive(sdk, &server, &["call", "get-roots-list", "{}"]).await;
        let text = result_text(&out);
        assert!(
            text.contains("URI: file:///tmp/driver-root"),
            "{sdk:?}: {text}"
        );
        assert!(text.contains("driver-root"), "{sdk:?}: {text}");
        assert!(
            methods(&out, "serverRequests").contains(&"roots/list".to_owned()),
            "{sdk:?}"
        );
    }
}

#[tokio::test]
async fn cancel_abandons_the_call_and_the_session_stays_alive() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let out = drive(
            sdk,
            &server,
            &[
                "cancel",
                "trigger-long-running-operation",
                r#"{"duration": 20, "steps": 4}"#,
                "300",
            ],
        )
        .await;
        assert_eq!(out["cancelled"], true, "{sdk:?}: {out}");
        assert_eq!(out["pingOk"], true, "{sdk:?}: {out}");
    }
}

#[tokio::test]
async fn list_changed_notification_is_seen_and_the_new_listing_fetched() {
    let server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        // gzip-file-as-resource registers a session resource → resources/list_changed.
        // A data: URI keeps it off the network.
        let name = format!("smoke-{sdk:?}.gz").to_lowercase();
        let args = json!({ "name": name, "data": "data:text/plain,hello" }).to_string();
        let out = drive(
            sdk,
            &server,
            &[
                "--kind",
                "resources",
                "watch-list-changed",
                "gzip-file-as-resource",
                &args,
            ],
        )
        .await;
        assert_eq!(out["listChanged"], true, "{sdk:?}: {out}");
        let uri = format!("demo://resource/session/{name}");
        assert!(
            strings(&out["resources"]).contains(&uri.as_str()),
            "{sdk:?}: {out}"
        );
        assert!(
            methods(&out, "notifications")
                .contains(&"notifications/resources/list_changed".to_owned()),
            "{sdk:?}: {out}"
        );
    }
}

#[tokio::test]
async fn lost_session_is_an_error_and_a_new_client_recovers() {
    let mut server = ServerEverything::http().await;
    for sdk in Sdk::ALL {
        let url = server.url.clone();
        let mut driver = spawn_driver(
            sdk,
            &url,
            &[
                "reconnect-after-expiry",
                "echo",
                r#"{"message": "again"}"#,
                "1500",
            ],
        )
        .await;
        driver.wait_for_stderr_line("READY-FOR-EXPIRY", LIMIT).await;
        // Restart the server on the same port: every session it knew is gone.
        server = server.restart().await;
        let out = driver.finish(LIMIT).await;
        assert_eq!(result_text(&out["first"]), "Echo: again", "{sdk:?}: {out}");
        // server-everything answers an unknown session id with 400 (the spec says 404);
        // either way neither SDK re-initializes by itself.
        assert!(out["afterExpiry"]["error"].is_object(), "{sdk:?}: {out}");
        assert_eq!(out["sdkRecovered"], false, "{sdk:?}: {out}");
        assert_eq!(out["reinitialized"], true, "{sdk:?}: {out}");
        assert_eq!(result_text(&out["retry"]), "Echo: again", "{sdk:?}: {out}");
    }
}

#[tokio::test]
async fn http_reference_server_listens_on_loopback_only() {
    let server = ServerEverything::http().await;
    // /proc/net/tcp lists listening sockets (state 0A) as hex IP:port; 0100007F is 127.0.0.1.
    let table = std::fs::read_to_string("/proc/net/tcp").expect("reading /proc/net/tcp");
    let port = format!(":{:04X}", server.port);
    let listening: Vec<&str> = table
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() > 3 && cols[1].ends_with(&port) && cols[3] == "0A").then_some(cols[1])
        })
        .collect();
    assert_eq!(listening, [format!("0100007F{port}")], "{table}");
    let table6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    assert!(
        !table6.lines().any(|l| l
            .split_whitespace()
            .nth(1)
            .is_some_and(|a| a.ends_with(&port))),
        "server-everything also listens on IPv6: {table6}"
    );
}

/// Send `initialize` over a stdio peer's stdin and read its answer (bounded).
async fn stdio_initialize(peer: &PeerCommand) -> Value {
    let mut child = tokio::process::Command::from(peer.std_command())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {peer:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let request = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "peers-smoke", "version": "0"}}
    });
    stdin
        .write_all(format!("{request}\n").as_bytes())
        .await
        .expect("writing initialize");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{peer:?} did not answer initialize within 20 s"))
        .expect("reading stdout")
        .unwrap_or_else(|| panic!("{peer:?} closed stdout without answering"));
    serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{peer:?} answered non-JSON {line:?}: {e}"))
}

#[tokio::test]
async fn stdio_reference_servers_answer_initialize() {
    let everything = stdio_initialize(&peers::server_everything_stdio_command()).await;
    assert_eq!(everything["id"], 1);
    assert_eq!(
        everything["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let memory_file = dir.path().join("memory.jsonl");
    let memory = stdio_initialize(&peers::server_memory_stdio_command(&memory_file)).await;
    assert_eq!(memory["id"], 1);
    assert!(
        memory["result"]["capabilities"]["tools"].is_object(),
        "{memory}"
    );
}

#[tokio::test]
async fn conformance_results_are_parsed_per_scenario() {
    let server = ServerEverything::http().await;
    let pass = conformance(&server.url, Some("tools-call-simple-text"), None).await;
    assert!(pass.exit_ok, "{}", pass.stdout);
    pass.assert_passed("tools-call-simple-text");
    assert_eq!(pass.passed(), ["tools-call-simple-text"]);

    // server-everything lacks the suite's fixture tools, so this scenario fails.
    let fail = conformance(&server.url, Some("tools-call-image"), None).await;
    assert!(!fail.exit_ok, "{}", fail.stdout);
    assert_eq!(fail.failed(), ["tools-call-image"]);
    assert!(!fail.scenarios["tools-call-image"].problems.is_empty());

    // …and a baseline that expects the failure turns the run green.
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.yml");
    std::fs::write(&baseline, "server:\n  - tools-call-image\n").expect("writing baseline");
    let based = conformance(&server.url, Some("tools-call-image"), Some(&baseline)).await;
    assert!(based.exit_ok, "{}", based.stdout);
    assert!(
        based.unexpected_failures.is_empty(),
        "{:?}",
        based.unexpected_failures
    );
}

#[tokio::test]
async fn python_driver_speaks_2026_against_the_python_sdk_server() {
    let server = PySdkServer::http().await;
    let py = |args: &'static [&'static str]| drive(Sdk::Python, &server, args);

    let out = py(&["--era", "2026", "list"]).await;
    assert_eq!(out["protocolVersion"], "2026-07-28", "{out}");
    let tools = strings(&out["tools"]);
    for tool in ["echo", "slow", "ask_name", "sample_text", "client_roots"] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }

    let out = py(&["--era", "2026", "call", "echo", r#"{"message": "modern"}"#]).await;
    assert_eq!(result_text(&out), "Echo: modern", "{out}");
    // A 2026 result carries resultType on the wire.
    assert_eq!(out["result"]["resultType"], "complete", "{out}");

    let out = py(&[
        "--era",
        "2026",
        "call",
        "slow",
        r#"{"steps": 3, "delay_ms": 20}"#,
        "--progress",
    ])
    .await;
    assert_eq!(result_text(&out), "done 3", "{out}");
    let messages = strings_of(&out["progress"], "message");
    assert_eq!(messages, ["step 1", "step 2", "step 3"], "{out}");

    let out = py(&[
        "--era",
        "2026",
        "cancel",
        "slow",
        r#"{"steps": 100, "delay_ms": 100}"#,
        "300",
    ])
    .await;
    assert_eq!(out["cancelled"], true, "{out}");
    assert_eq!(out["pingOk"], true, "{out}");
}

/// Elicitation, sampling and roots against the Python SDK server: legacy = server→client
/// JSON-RPC requests; 2026 = `input_required` (MRTR) rounds answered by the same handlers.
async fn server_to_client_round_trips(sdk: Sdk, era: &str) {
    let server = PySdkServer::http().await;
    let ctx = format!("{sdk:?} --era {era}");
    let out = drive(
        sdk,
        &server,
        &[
            "--era",
            era,
            "--elicit",
            r#"{"name": "Ada"}"#,
            "call",
            "ask_name",
            "{}",
        ],
    )
    .await;
    assert_eq!(result_text(&out), "Hello, Ada", "{ctx}: {out}");
    assert_eq!(
        methods(&out, "serverRequests"),
        ["elicitation/create"],
        "{ctx}"
    );

    let out = drive(
        sdk,
        &server,
        &[
            "--era",
            era,
            "call",
            "sample_text",
            r#"{"prompt": "hi there"}"#,
        ],
    )
    .await;
    assert_eq!(
        result_text(&out),
        "sampled: hi there (driver-model)",
        "{ctx}: {out}"
    );

    let out = drive(sdk, &server, &["--era", era, "call", "client_roots", "{}"]).await;
    assert_eq!(
        result_text(&out),
        "file:///tmp/driver-root driver-root",
        "{ctx}: {out}"
    );
}

#[tokio::test]
async fn python_2026_answers_input_required_rounds() {
    server_to_client_round_trips(Sdk::Python, "2026").await;
}

#[tokio::test]
async fn python_legacy_answers_server_requests_from_the_python_sdk_server() {
    server_to_client_round_trips(Sdk::Python, "legacy").await;
}

#[tokio::test]
async fn typescript_legacy_answers_server_requests_from_the_python_sdk_server() {
    server_to_client_round_trips(Sdk::TypeScript, "legacy").await;
}

#[tokio::test]
async fn auto_era_picks_2026_when_discover_works_and_falls_back_otherwise() {
    let modern = PySdkServer::http().await;
    let out = drive(Sdk::Python, &modern, &["--era", "auto", "list"]).await;
    assert_eq!(out["protocolVersion"], "2026-07-28", "{out}");

    let legacy = ServerEverything::http().await;
    let out = drive(Sdk::Python, &legacy, &["--era", "auto", "list"]).await;
    assert_eq!(out["protocolVersion"], "2025-11-25", "{out}");
}
