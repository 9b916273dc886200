//! The `switchboard` binary as a user runs it: the embedded demo default and `check-config`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use std::time::Duration;

use gateway::*;
use serde_json::json;

#[tokio::test]
async fn the_embedded_default_serves_the_demo_backends_merged() {
    let mut gw =
        GatewayProcess::start_args(&["serve".as_ref(), "--bind".as_ref(), "127.0.0.1:0".as_ref()])
            .await;
    let url = gw.url.clone();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    gw.wait_log("Connect an MCP client to").await;
    let c = RawClient::connect(&url).await;
    let list = c.call(1, "tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "add_note",
        "create_ticket",
        "notes__search",
        "tickets__search",
    ] {
        assert!(names.contains(&t), "{t} in {names:?}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), gw.child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_bad_fields() {
    let ok = std::process::Command::new(switchboard_bin())
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/switchboard.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("backend notes via stdio") && out.contains("backend tickets via stdio"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "backends:\n  - name: web\n    transport: streamable-http\n    url: ftp://nope\n    headers: {Authorization: 'Bearer ${env:SB_TEST_UNSET_TOKEN}'}\n").unwrap();
    let r = std::process::Command::new(switchboard_bin())
        .arg("check-config")
        .arg(&bad)
        .env_remove("SB_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("backends.web.url"), "{err}");
    assert!(
        err.contains("backends.web.headers.Authorization")
            && err.contains("SB_TEST_UNSET_TOKEN is not set"),
        "{err}"
    );

    std::fs::write(
        &bad,
        "backends: []\nlisteners: [{bind: 127.0.0.1:1, colour: blue}]\n",
    )
    .unwrap();
    let r = std::process::Command::new(switchboard_bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("colour"),
        "unknown fields are named"
    );
}
