//! The `switchboard` binary as a user runs it: the embedded demo default and `check-config`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use std::process::Stdio;
use std::time::Duration;

use gateway::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_embedded_default_serves_the_demo_backends_merged() {
    let mut child = tokio::process::Command::new(switchboard_bin())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("SWITCHBOARD_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), out.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut told = false;
    while let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_secs(10), err.next_line()).await
    {
        if l.contains("Connect an MCP client to") {
            told = true;
            break;
        }
    }
    assert!(told, "prints how to connect");
    let base = url.trim_end_matches("/mcp").to_string();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready within 10 s");
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
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
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
