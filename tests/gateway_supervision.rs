//! The session tree under faults: a backend session child that is stopped, fails or is killed is
//! restarted by its SessionActor, and every way it ends closes its backend session (the backend
//! receives the DELETE) and leaves the backend-sessions gauge where it was.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/upstream_peers.rs"]
mod upstream_peers;

use std::time::Duration;

use gateway::*;
use serde_json::json;

/// Polls `probe` until it returns `want` or `within` passes; returns the last value seen.
async fn settle<F, Fut>(within: Duration, want: u64, mut probe: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = probe().await;
        if v == want || tokio::time::Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn gauge(base: &str, backend: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = format!("switchboard_backend_sessions_active{{switchboard_backend=\"{backend}\"");
    text.lines()
        .find(|l| l.starts_with(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

#[tokio::test]
async fn an_http_backend_session_ended_any_way_is_deleted_and_counted_once() {
    let peer = upstream_peers::strict_http(true).await;
    let gw = TestGateway::start(&[http_backend("strict", &peer.url())], "").await;
    let client = RawClient::connect(&gw.url).await;
    let echo = |id: i64| {
        let c = client.clone();
        async move {
            let r = c
                .call(
                    id,
                    "tools/call",
                    json!({"name": "echo", "arguments": {"message": format!("m{id}")}}),
                )
                .await;
            assert_eq!(result_text(&r), format!("Echo: m{id}"), "{r}");
        }
    };
    echo(1).await;
    // Discovery's connection and this session's.
    let sessions_before = peer.live_sessions().await;
    assert_eq!(sessions_before, 2);
    let gauge_before = gauge(&gw.base, "strict").await;
    assert_eq!(gauge_before, 1);

    let handle = gw
        .gateway()
        .registry()
        .get(client.session.as_deref().unwrap())
        .expect("live session");
    let session = handle.actor_cell();
    const ROUNDS: i64 = 6;
    for round in 0..ROUNDS {
        let children = session.get_children();
        assert_eq!(children.len(), 1, "round {round}: one backend child");
        // Alternate a graceful stop (post_stop) and a kill (no post_stop: the state is dropped).
        if round % 2 == 0 {
            children[0].stop(Some("test stop".into()));
        } else {
            children[0].kill();
        }
        // The child is restarted and serves calls again; the old backend session is gone.
        echo(10 + round).await;
        assert_eq!(
            settle(Duration::from_secs(10), sessions_before, || {
                peer.live_sessions()
            })
            .await,
            sessions_before,
            "round {round}: the ended backend session was not DELETEd"
        );
    }
    assert_eq!(
        settle(Duration::from_secs(10), gauge_before, || gauge(
            &gw.base, "strict"
        ))
        .await,
        gauge_before,
        "the backend-sessions gauge must come back to where it was"
    );
    let text = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let restarts = text
        .lines()
        .find(|l| l.starts_with("switchboard_backend_restarts_total{"))
        .unwrap_or_default()
        .to_string();
    assert!(
        restarts.ends_with(&format!(" {ROUNDS}")),
        "every end is one restart: {restarts}"
    );

    // The session's end closes the last one too.
    let del = client
        .request(reqwest::Method::DELETE)
        .send()
        .await
        .unwrap();
    assert!(del.status().is_success());
    assert_eq!(
        settle(Duration::from_secs(10), 1, || peer.live_sessions()).await,
        1
    );
    assert_eq!(
        settle(Duration::from_secs(10), 0, || gauge(&gw.base, "strict")).await,
        0
    );
    gw.stop().await;
}
