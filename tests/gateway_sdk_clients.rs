//! Real SDK clients (the official Python SDK `mcp` and the TypeScript SDK) talking to the gateway,
//! which fronts a mixed fleet: `server-everything` and `server-memory` over stdio, our lab fixture
//! over Streamable HTTP and our notes fixture over stdio.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use std::time::Duration;

use gateway::*;
use peers::Sdk;
use serde_json::Value;

struct Fleet {
    gw: TestGateway,
    _lab: HttpFixture,
    _dir: tempfile::TempDir,
}

async fn fleet() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let lab = HttpFixture::start("lab").await;
    let gw = TestGateway::start(
        &[
            peers::server_everything_stdio_command().stdio_backend("everything"),
            peers::server_memory_stdio_command(&dir.path().join("memory.jsonl"))
                .stdio_backend("memory"),
            http_backend("lab", &lab.url),
            fixture_stdio("notes", "notes"),
        ],
        "sessions: {idle_ttl: 10m}",
    )
    .await;
    Fleet {
        gw,
        _lab: lab,
        _dir: dir,
    }
}

async fn drive(sdk: Sdk, url: &str, args: &[&str]) -> Value {
    peers::run_driver(sdk, url, args, peers::DRIVER_TIMEOUT).await
}

async fn sdk_client_uses_the_merged_fleet(sdk: Sdk) {
    let f = fleet().await;
    let url = f.gw.url.clone();

    let list = drive(sdk, &url, &["list"]).await;
    let tools = strings(&list["tools"]);
    for t in [
        "everything__echo",
        "lab__echo",
        "read_graph",
        "add_note",
        "trigger-sampling-request",
    ] {
        assert!(
            tools.contains(&t.to_string()),
            "{sdk:?}: {t} missing from {tools:?}"
        );
    }
    assert_eq!(list["serverInfo"]["name"], "switchboard");

    let echo = drive(
        sdk,
        &url,
        &["call", "everything__echo", r#"{"message":"hi from sdk"}"#],
    )
    .await;
    assert_eq!(result_text(&echo), "Echo: hi from sdk", "{echo}");
    let lab = drive(sdk, &url, &["call", "lab__echo", r#"{"text":"lab"}"#]).await;
    assert_eq!(result_text(&lab), "lab");
    let mem = drive(
        sdk,
        &url,
        &[
            "call",
            "create_entities",
            r#"{"entities":[{"name":"gw","entityType":"thing","observations":["routes"]}]}"#,
        ],
    )
    .await;
    assert!(result_text(&mem).contains("gw"), "{mem}");
    let graph = drive(sdk, &url, &["call", "read_graph", "{}"]).await;
    assert!(
        result_text(&graph).contains("routes"),
        "memory kept state across sessions: {graph}"
    );

    // Sampling requested by a real backend, answered by the SDK's callback, relayed back.
    let s = drive(
        sdk,
        &url,
        &[
            "call",
            "trigger-sampling-request",
            r#"{"prompt":"ping?","maxTokens":5}"#,
        ],
    )
    .await;
    let st = result_text(&s);
    assert!(
        st.contains("sampled: ") && st.contains("ping?") && st.contains("driver-model"),
        "{sdk:?} sampling: {s}"
    );

    let methods: Vec<&str> = s["serverRequests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert!(methods.contains(&"sampling/createMessage"), "{s}");

    // Elicitation with the content the client provides.
    let e = drive(
        sdk,
        &url,
        &[
            "--elicit",
            r#"{"confirm":true,"who":"sdk"}"#,
            "call",
            "ask_elicitation",
            r#"{"message":"proceed?"}"#,
        ],
    )
    .await;
    let et = result_text(&e);
    assert!(
        et.contains("accept") && et.contains("sdk"),
        "{sdk:?} elicitation: {e}"
    );

    // Progress notifications reach the client's own progress token.
    let p = drive(
        sdk,
        &url,
        &[
            "call",
            "trigger-long-running-operation",
            r#"{"duration":1,"steps":3}"#,
            "--progress",
        ],
    )
    .await;
    let prog: Vec<f64> = p["progress"]
        .as_array()
        .unwrap_or_else(|| panic!("{p}"))
        .iter()
        .map(|x| x["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(prog.len(), 3, "{sdk:?} progress: {p}");
    assert!(prog.windows(2).all(|w| w[0] < w[1]), "monotonic: {prog:?}");

    // Cancelling a slow call leaves the session usable.
    let c = drive(sdk, &url, &["cancel", "sleep", r#"{"ms":20000}"#, "300"]).await;
    assert_eq!(c["cancelled"], true, "{c}");
    assert_eq!(c["pingOk"], true, "{c}");

    // A backend's list change reaches the client as tools/list_changed.
    let name = format!("added_by_{sdk:?}").to_lowercase();
    let w = drive(
        sdk,
        &url,
        &[
            "watch-list-changed",
            "add_tool",
            &format!(r#"{{"name":"{name}"}}"#),
        ],
    )
    .await;
    assert_eq!(w["listChanged"], true, "{sdk:?}: {w}");
    assert!(strings(&w["tools"]).contains(&name), "{w}");
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_uses_the_merged_fleet() {
    sdk_client_uses_the_merged_fleet(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_uses_the_merged_fleet() {
    sdk_client_uses_the_merged_fleet(Sdk::TypeScript).await;
}

/// An expired session answers 404; the client starts a new session and carries on.
async fn expired_session_gets_404_and_a_new_session_works(sdk: Sdk) {
    let f = fleet().await;
    let mut d = peers::spawn_driver(
        sdk,
        &f.gw.url,
        &[
            "reconnect-after-expiry",
            "lab__echo",
            r#"{"text":"again"}"#,
            "3000",
        ],
    )
    .await;
    d.wait_for_stderr_line("READY-FOR-EXPIRY", Duration::from_secs(60))
        .await;
    let reg = f.gw.gateway().registry();
    let before = reg.len();
    let later = f.gw.gateway().shared().now_ms() + 11 * 60 * 1000;
    assert_eq!(
        reg.expire_idle_as_of(later),
        before,
        "every session is past its 10m TTL"
    );
    let out = d.finish(Duration::from_secs(60)).await;
    assert!(
        out["afterExpiry"]["error"].is_object(),
        "{sdk:?}: the old session must be gone: {out}"
    );
    assert_eq!(out["reinitialized"], true, "{out}");
    assert_eq!(result_text(&out["retry"]), "again", "{out}");
    f.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_recovers_from_an_expired_session() {
    expired_session_gets_404_and_a_new_session_works(Sdk::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_recovers_from_an_expired_session() {
    expired_session_gets_404_and_a_new_session_works(Sdk::TypeScript).await;
}

/// The Python SDK in 2026-07-28 mode against the same mixed fleet: third-party stdio backends
/// (server-everything, server-memory) bridged to a stateless client — lists, calls, sampling via
/// MRTR, progress on the call's SSE stream, cancellation by closing the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_in_2026_mode_uses_the_mixed_fleet() {
    let f = fleet().await;
    let url = f.gw.url.clone();
    let modern = |args: &[&str]| {
        let mut a = vec!["--era", "2026"];
        a.extend_from_slice(args);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            drive(Sdk::Python, &url, &a).await
        }
    };

    let list = run(modern(&["list"])).await;
    let tools = strings(&list["tools"]);
    for t in ["everything__echo", "lab__echo", "read_graph", "add_note"] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }
    let echo = run(modern(&[
        "call",
        "everything__echo",
        r#"{"message":"modern"}"#,
    ]))
    .await;
    assert_eq!(result_text(&echo), "Echo: modern", "{echo}");

    let s = run(modern(&[
        "call",
        "trigger-sampling-request",
        r#"{"prompt":"ping?","maxTokens":5}"#,
    ]))
    .await;
    let st = result_text(&s);
    assert!(st.contains("sampled: ") && st.contains("ping?"), "{s}");
    assert_eq!(
        s["serverRequests"][0]["method"], "sampling/createMessage",
        "{s}"
    );

    let p = run(modern(&[
        "call",
        "trigger-long-running-operation",
        r#"{"duration":1,"steps":3}"#,
        "--progress",
    ]))
    .await;
    let steps = p["progress"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(steps, 3, "progress on the call's stream: {p}");

    let c = run(modern(&["cancel", "sleep", r#"{"ms":20000}"#, "300"])).await;
    assert_eq!(c["cancelled"], true, "{c}");
    assert_eq!(c["pingOk"], true, "{c}");
    // Closing the stream cancelled the call at the backend (lab counts aborted requests).
    let mut cancelled = 0;
    for _ in 0..50 {
        let stats = run(modern(&["call", "stats", "{}"])).await;
        let v: Value = serde_json::from_str(&result_text(&stats)).unwrap();
        cancelled = v["cancelled"].as_u64().unwrap_or(0);
        if cancelled > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cancelled > 0, "the backend never saw the cancellation");
    f.gw.stop().await;
}
