//! Lifecycle of the gateway and its backend sessions, end to end with real processes: graceful
//! SIGTERM shutdown of the real binary (no orphans), transparent re-initialize after a backend
//! restart, per-backend request timeouts, idle session expiry, and a WebSocket backend.

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/ws_stdio_bridge.rs"]
mod ws_stdio_bridge;

use std::time::{Duration, Instant};

use gateway::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use ws_stdio_bridge::start_ws_stdio_bridge;

/// A backend entry with extra indented YAML lines appended (e.g. `timeouts:` or `env:`).
fn with(backend: String, extra: &str) -> String {
    format!("{backend}    {extra}\n")
}

fn error_message(resp: &Value) -> String {
    resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error response: {resp}"))
        .to_string()
}

/// The real binary, started with a config file; stderr lines arrive on `logs`.
/// Tries to open a new session on a fresh connection: `Err` when refused or answered with an error.
async fn try_new_session(url: &str) -> Result<(), String> {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"late","version":"1"}}});
    let resp = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(5))
        .body(init.to_string())
        .send()
        .await
        .map_err(|e| format!("connection failed: {e}"))?;
    match resp.status().as_u16() {
        200 => Ok(()),
        s => Err(format!("HTTP {s}")),
    }
}

#[tokio::test]
async fn sigterm_finishes_the_in_flight_call_refuses_newcomers_and_leaves_no_orphans() {
    let grace = Duration::from_secs(5);
    // notes runs behind a shell that leaves a background grandchild holding the stdout pipe, as
    // launchers like `npx` do: it must not outlive the gateway either.
    let notes = format!(
        "  - name: notes\n    transport: stdio\n    command: /bin/sh\n    args: [-c, \"sleep 300 & exec '{}' demo-backend notes\"]\n",
        switchboard_bin().display()
    );
    let yaml = format!(
        "listeners: [{{name: test, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\nshutdown_grace: 5s\nbackends:\n{notes}{}",
        fixture_stdio("lab", "lab"),
    );
    let (mut gw, _dir) = GatewayProcess::start(&yaml).await;
    let c = RawClient::connect(&gw.url).await;
    let note = c
        .tool(1, "add_note", json!({"title": "shutdown", "body": "soon"}))
        .await;
    assert!(text(&note).contains("shutdown"), "{note}");
    assert_eq!(text(&c.tool(2, "echo", json!({"text": "hi"})).await), "hi");

    // Discovery connections plus this session's own backend processes, one per backend.
    let family = descendants(gw.pid);
    assert!(
        family.len() >= 6,
        "expected ≥ 6 processes (2 discovery + 2 per-session backends, 2 grandchildren), saw {family:?}"
    );

    let slow = c.start_sleep(3, "sleep", 1500).await;
    let signalled = Instant::now();
    kill(Pid::from_raw(gw.pid), Signal::SIGTERM).expect("send SIGTERM");
    gw.wait_log("Shutting down").await;

    // From now on a newcomer is turned away (accepting may race the signal for a moment).
    let deadline = Instant::now() + Duration::from_secs(2);
    let refusal = loop {
        match try_new_session(&gw.url).await {
            Err(why) => break why,
            Ok(()) => {
                assert!(Instant::now() < deadline, "new sessions still accepted");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        !slow.is_finished(),
        "the refusal ({refusal}) must happen while the old call is still in flight"
    );

    let done = tokio::time::timeout(EVENT_WAIT, slow)
        .await
        .expect("in-flight call answered")
        .expect("call task");
    assert_eq!(
        text(&done),
        "slept",
        "the in-flight call completes during shutdown: {done}"
    );

    let status = tokio::time::timeout(grace + Duration::from_secs(5), gw.child.wait())
        .await
        .expect("gateway exits within the grace period plus margin")
        .expect("wait");
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < grace + Duration::from_secs(3),
        "took {:?}",
        signalled.elapsed()
    );
    let orphans_gone = eventually(EVENT_WAIT, || family.iter().all(|&p| is_gone(p))).await;
    let alive: Vec<i32> = family.iter().copied().filter(|&p| !is_gone(p)).collect();
    assert!(
        orphans_gone,
        "backend processes outlived the gateway: {alive:?}"
    );
}

#[tokio::test]
async fn sigterm_cuts_a_call_that_outlives_the_grace_period_ends_open_streams_and_exits_cleanly() {
    let grace = Duration::from_secs(2);
    let yaml = format!(
        "listeners: [{{name: test, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\nshutdown_grace: 2s\nbackends:\n{}",
        fixture_stdio("lab", "lab"),
    );
    let (mut gw, _dir) = GatewayProcess::start(&yaml).await;
    let c = RawClient::connect(&gw.url).await;
    // A client listening for notifications on the standalone GET stream.
    let mut listening = c.open_get_stream().await;
    let slow = c.start_sleep(1, "sleep", 60_000).await;
    let family = descendants(gw.pid);
    assert!(
        family.len() >= 2,
        "discovery + session backends: {family:?}"
    );

    let signalled = Instant::now();
    kill(Pid::from_raw(gw.pid), Signal::SIGTERM).expect("send SIGTERM");

    // The call that would outlive the grace period is ended with an answer, not left hanging.
    let cut = tokio::time::timeout(grace + Duration::from_secs(3), slow)
        .await
        .expect("the over-long call is answered soon after the grace period")
        .expect("call task");
    assert_eq!(cut["error"]["code"], -32004, "{cut}");
    assert!(
        signalled.elapsed() >= grace,
        "in-flight calls get the whole grace period, cut after {:?}",
        signalled.elapsed()
    );
    // The notification stream ends instead of keeping the gateway up.
    let ended = tokio::time::timeout(EVENT_WAIT, async {
        while let Ok(Some(_)) = listening.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the GET stream ended");

    let status = tokio::time::timeout(grace + Duration::from_secs(5), gw.child.wait())
        .await
        .expect("gateway exits within the grace period plus margin")
        .expect("wait");
    assert!(status.success(), "exit status {status}");
    let took = signalled.elapsed();
    assert!(took < grace + Duration::from_secs(4), "took {took:?}");
    let orphans_gone = eventually(EVENT_WAIT, || family.iter().all(|&p| is_gone(p))).await;
    let alive: Vec<i32> = family.iter().copied().filter(|&p| !is_gone(p)).collect();
    assert!(
        orphans_gone,
        "backend processes outlived the gateway: {alive:?}"
    );
}

/// Replaces the lab fixture on `addr` with a fresh process (which knows no sessions).
async fn lab_again_restarted(addr: &str, lab: &mut HttpFixture) {
    lab.kill().await;
    *lab = HttpFixture::start_on("lab", addr).await;
}

fn backend_session(whoami: &Value) -> String {
    let who: Value = serde_json::from_str(&text(whoami)).expect("whoami JSON");
    who["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no backend session id in {who}"))
        .to_string()
}

#[tokio::test]
async fn a_restarted_http_backend_is_re_initialized_without_the_client_noticing() {
    let mut lab = HttpFixture::start("lab").await;
    let addr = format!("127.0.0.1:{}", lab.port());
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], "").await;
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(
        text(&c.tool(1, "echo", json!({"text": "before"})).await),
        "before"
    );
    let first = backend_session(&c.tool(2, "whoami", json!({})).await);

    lab.kill().await;
    let asked = Instant::now();
    let down = c.tool(3, "echo", json!({"text": "down"})).await;
    assert_eq!(down["error"]["code"], -32001, "{down}");
    assert!(
        error_message(&down).contains("'lab'"),
        "names the backend: {down}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a dead backend fails fast, took {:?}",
        asked.elapsed()
    );

    // A new process on the same port knows nothing of the old backend session: its 404 makes
    // the gateway re-initialize and resend, and the client sees only a normal answer.
    let mut lab = HttpFixture::start_on("lab", &addr).await;
    let after = c.tool(4, "echo", json!({"text": "after"})).await;
    assert_eq!(text(&after), "after", "{after}");
    let second = backend_session(&c.tool(5, "whoami", json!({})).await);
    assert_ne!(first, second, "a fresh backend session was opened");

    // Again, with several calls racing into the forgotten session at once: each is resent
    // after the one re-initialize and answered.
    lab_again_restarted(&addr, &mut lab).await;
    let calls = (0..4).map(|i| {
        let c = c.clone();
        tokio::spawn(async move {
            c.tool(10 + i, "echo", json!({"text": format!("p{i}")}))
                .await
        })
    });
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        let r = r.expect("call task");
        assert_eq!(text(&r), format!("p{i}"), "{r}");
    }
    let third = backend_session(&c.tool(20, "whoami", json!({})).await);
    assert_ne!(second, third);
    gw.stop().await;
}

#[tokio::test]
async fn a_backend_down_when_a_session_first_needs_it_fails_fast_and_the_session_recovers() {
    let mut lab = HttpFixture::start("lab").await;
    let addr = format!("127.0.0.1:{}", lab.port());
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], "").await;
    lab.kill().await;

    // The session's backend session does not exist yet: opening it fails.
    let c = RawClient::connect(&gw.url).await;
    let asked = Instant::now();
    let down = c.tool(1, "echo", json!({"text": "down"})).await;
    assert_eq!(down["error"]["code"], -32001, "{down}");
    assert!(error_message(&down).contains("'lab'"), "{down}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );

    let _lab = HttpFixture::start_on("lab", &addr).await;
    // Once the backend is back, the very next call succeeds (the gateway may be backing off
    // between reconnects, which delays the answer but must not fail it).
    let back = tokio::time::timeout(
        Duration::from_secs(15),
        c.tool(2, "echo", json!({"text": "back"})),
    )
    .await
    .expect("answered within the reconnect backoff");
    assert_eq!(text(&back), "back", "{back}");
    gw.stop().await;
}

#[tokio::test]
async fn a_backend_that_stays_down_fails_every_call_fast_and_the_first_call_after_it_returns_succeeds()
 {
    let mut lab = HttpFixture::start("lab").await;
    let addr = format!("127.0.0.1:{}", lab.port());
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], "").await;
    let c = RawClient::connect(&gw.url).await;
    lab.kill().await;

    // Enough calls to outlast the gateway's own restart attempts (5, backing off 0.1 s … 1.6 s):
    // a call may wait for a restart already under way, but never for a longer backoff of its own.
    let bound = Duration::from_millis(2500);
    for i in 0..8 {
        let asked = Instant::now();
        let down = c.tool(i, "echo", json!({"text": "down"})).await;
        let took = asked.elapsed();
        assert_eq!(down["error"]["code"], -32001, "call {i}: {down}");
        assert!(error_message(&down).contains("'lab'"), "{down}");
        assert!(took < bound, "call {i} took {took:?} to fail");
    }

    let _lab = HttpFixture::start_on("lab", &addr).await;
    let asked = Instant::now();
    let back = c.tool(10, "echo", json!({"text": "back"})).await;
    assert_eq!(text(&back), "back", "{back}");
    assert!(
        asked.elapsed() < bound,
        "the first call after recovery took {:?}",
        asked.elapsed()
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_in_flight_call_fails_soon_after_its_http_backend_dies_and_the_session_recovers() {
    let mut lab = HttpFixture::start("lab").await;
    let addr = format!("127.0.0.1:{}", lab.port());
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], "").await;
    let c = RawClient::connect(&gw.url).await;
    let slow = c.start_sleep(1, "sleep", 60_000).await;

    let died = Instant::now();
    lab.kill().await;
    let cut = tokio::time::timeout(EVENT_WAIT, slow)
        .await
        .expect("the in-flight call is answered")
        .expect("call task");
    let took = died.elapsed();
    assert_eq!(cut["error"]["code"], -32001, "{cut}");
    assert!(error_message(&cut).contains("'lab'"), "{cut}");
    // One attempt to resume the broken response stream is fair; retrying a backend that
    // refuses connections for many seconds is a hang as far as the developer can tell.
    assert!(took < Duration::from_secs(5), "failed only after {took:?}");

    let _lab = HttpFixture::start_on("lab", &addr).await;
    let back = c.tool(2, "echo", json!({"text": "back"})).await;
    assert_eq!(text(&back), "back", "{back}");
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_backend_call_times_out_with_32005_and_the_session_stays_usable() {
    // Real time on purpose: the backend is a real process, so paused time would auto-advance
    // while the gateway waits on its pipes. The deadline itself is deterministic.
    let gw = TestGateway::start(
        &[with(fixture_stdio("lab", "lab"), "timeouts: {request: 1s}")],
        "sessions: {max_in_flight: 1}",
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(
        text(&c.tool(1, "echo", json!({"text": "warm"})).await),
        "warm"
    );

    let asked = Instant::now();
    let r = c.tool(2, "sleep", json!({"ms": 10_000})).await;
    let took = asked.elapsed();
    assert_eq!(r["error"]["code"], -32005, "{r}");
    let msg = error_message(&r);
    assert!(
        msg.contains("'lab'") && msg.contains("1s"),
        "names backend and timeout: {msg}"
    );
    assert_eq!(r["error"]["data"]["backend"], "lab", "{r}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );

    // The session and its backend session carry on, and the timed-out call no longer holds the
    // session's only in-flight slot.
    assert_eq!(
        text(&c.tool(3, "echo", json!({"text": "alive"})).await),
        "alive"
    );
    assert_eq!(text(&c.tool(4, "sleep", json!({"ms": 50})).await), "slept");
    gw.stop().await;
}

#[tokio::test]
async fn an_idle_session_expires_with_its_backend_process_while_an_active_one_survives() {
    // Expiry is driven through the registry's clock seam rather than paused tokio time: the
    // backends are real processes, and paused time would auto-advance while the gateway waits
    // on their pipes, firing unrelated deadlines.
    let tag = format!("idle-{}", std::process::id());
    let env_entry = format!("SB_LAB_TAG={tag}");
    let ttl = Duration::from_secs(3600);
    let gw = TestGateway::start(
        &[with(
            fixture_stdio("lab", "lab"),
            &format!("env: {{SB_LAB_TAG: '{tag}'}}"),
        )],
        "sessions: {idle_ttl: 1h}",
    )
    .await;
    let new_process = |before: &std::collections::BTreeSet<i32>| -> i32 {
        let now = pids_with_env(&env_entry);
        let fresh: Vec<i32> = now.difference(before).copied().collect();
        assert_eq!(fresh.len(), 1, "one new backend process: {fresh:?}");
        fresh[0]
    };

    let before = pids_with_env(&env_entry);
    let idle = RawClient::connect(&gw.url).await;
    assert_eq!(text(&idle.tool(1, "echo", json!({"text": "a"})).await), "a");
    let idle_pid = new_process(&before);

    // The idle client keeps its notification stream open. Listening alone is not activity (only
    // opening the stream is); on expiry the stream ends, so the client learns the session is gone.
    let mut listening = idle.open_get_stream().await;

    let before = pids_with_env(&env_entry);
    let active = RawClient::connect(&gw.url).await;
    assert_eq!(
        text(&active.tool(1, "echo", json!({"text": "b"})).await),
        "b"
    );
    let active_pid = new_process(&before);

    let registry = gw.gateway().registry();
    let seen = |c: &RawClient| {
        registry
            .get(c.session.as_deref().expect("session id"))
            .expect("live session")
            .last_activity()
    };
    let (idle_seen, active_seen) = (seen(&idle), seen(&active));
    assert!(
        active_seen > idle_seen,
        "the active session was used later ({active_seen} vs {idle_seen} ms)"
    );
    let ttl_ms = u64::try_from(ttl.as_millis()).expect("ttl fits");
    // The moment the idle session has been idle one millisecond past its TTL.
    let expired = registry.expire_idle_as_of(idle_seen + ttl_ms + 1);
    assert_eq!(expired, 1, "exactly the idle session expires");

    let r = idle
        .post(json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
        .await;
    assert_eq!(r.status, 404, "an expired session is gone: {}", r.body);
    let ended = tokio::time::timeout(EVENT_WAIT, async {
        while let Ok(Some(_)) = listening.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the expired session's GET stream ends");
    assert!(
        eventually(EVENT_WAIT, || is_gone(idle_pid)).await,
        "the expired session's backend process {idle_pid} exits"
    );

    assert_eq!(
        text(&active.tool(2, "echo", json!({"text": "still"})).await),
        "still"
    );
    assert!(
        !is_gone(active_pid) && pids_with_env(&env_entry).contains(&active_pid),
        "the active session keeps its own backend process"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_session_with_a_call_in_flight_is_not_idle() {
    let ttl = Duration::from_secs(3600);
    let gw = TestGateway::start(&[fixture_stdio("lab", "lab")], "sessions: {idle_ttl: 1h}").await;
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(text(&c.tool(1, "echo", json!({"text": "a"})).await), "a");
    let slow = c.start_sleep(2, "sleep", 1500).await;

    let registry = gw.gateway().registry();
    let id = c.session.clone().expect("session id");
    let seen = registry.get(&id).expect("live session").last_activity();
    let ttl_ms = u64::try_from(ttl.as_millis()).expect("ttl fits");
    // Its last request arrived more than a TTL ago, but it is still waiting for the answer.
    let expired = registry.expire_idle_as_of(seen + ttl_ms + 1);
    assert_eq!(expired, 0, "a session waiting on a call is not idle");

    let done = slow.await.expect("call task");
    assert_eq!(text(&done), "slept", "the call was not cut off: {done}");
    assert_eq!(c.call(3, "ping", json!({})).await["result"], json!({}));
    gw.stop().await;
}

#[tokio::test]
async fn a_websocket_backend_is_listed_and_callable_through_the_gateway() {
    let bridge = start_ws_stdio_bridge(
        switchboard_bin(),
        vec!["demo-backend".into(), "notes".into()],
    )
    .await;
    let gw = TestGateway::start(
        &[format!(
            "  - name: notes\n    transport: websocket\n    url: '{}'\n",
            bridge.url
        )],
        "",
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    let list = c.call(1, "tools/list", json!({})).await;
    let tools: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for t in ["add_note", "get_note", "search", "delete_note"] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    let added = c
        .tool(
            2,
            "add_note",
            json!({"title": "over ws", "body": "bridged frames"}),
        )
        .await;
    assert!(text(&added).contains("over ws"), "{added}");
    let found = text(&c.tool(3, "search", json!({"query": "bridged"})).await);
    assert!(
        found.contains("over ws"),
        "the note lives in the session's WS backend: {found}"
    );
    assert!(
        bridge.accepted() >= 2,
        "discovery and the session each opened a WebSocket ({} accepted)",
        bridge.accepted()
    );
    // Ending the session closes its WebSocket (and so its server process); discovery's stays.
    let before = bridge.open();
    assert_eq!(c.send(c.request(reqwest::Method::DELETE)).await.status, 200);
    assert!(
        eventually(EVENT_WAIT, || bridge.open() == before - 1).await,
        "the session's WebSocket closed ({} of {before} still open)",
        bridge.open()
    );
    gw.stop().await;
}
