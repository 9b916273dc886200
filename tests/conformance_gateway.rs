//! The official MCP conformance suite (server mode, Node 22) run THROUGH the gateway, in front of
//! our conformance fixture backend: on the virtual server `/servers/conformance/mcp` and on the
//! merged `/mcp` (next to another backend). Every scenario in `tests/conformance/pass-list.txt`
//! must pass with no failed check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;

fn pass_list() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/pass-list.txt"
    ))
    .unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Scenarios of the installed suite that its default ("active") run leaves out.
const NOT_IN_ACTIVE_SUITE: [&str; 2] = ["json-schema-2020-12", "server-sse-polling"];

async fn run_all(url: &str) {
    let expected = pass_list();
    let mut results = peers::conformance(url, None, None).await.scenarios;
    for s in NOT_IN_ACTIVE_SUITE {
        results.extend(peers::conformance(url, Some(s), None).await.scenarios);
    }
    let mut regressions = Vec::new();
    for s in &expected {
        match results.get(s) {
            Some(r) if r.failed == 0 => {}
            Some(r) => regressions.push(format!("{s}: {:?}", r.problems)),
            None => regressions.push(format!("{s}: did not run")),
        }
    }
    assert!(
        regressions.is_empty(),
        "conformance regressions through {url}:\n{}",
        regressions.join("\n")
    );
    let unlisted: Vec<&String> = results
        .iter()
        .filter(|(k, r)| r.failed == 0 && !expected.contains(k))
        .map(|(k, _)| k)
        .collect();
    assert!(
        unlisted.is_empty(),
        "newly passing scenarios, add them to the pass list: {unlisted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_through_the_gateway() {
    let backend = HttpFixture::start("conformance").await;
    let gw = TestGateway::start(
        &[
            http_backend("conformance", &backend.url),
            fixture_stdio("notes", "notes"),
        ],
        "",
    )
    .await;
    run_all(&format!("{}/servers/conformance/mcp", gw.base)).await;
    run_all(&gw.url).await;
    gw.stop().await;
}
