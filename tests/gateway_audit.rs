//! The audit log as the gateway writes it: one hash-chained record per routed call or refusal,
//! nothing of the arguments, and in `fsync` mode every answered call survives a SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use gateway::*;
use serde_json::{Value, json};

fn records(path: &std::path::Path) -> Vec<Value> {
    let files = switchboard::telemetry::audit::log_files(path).unwrap();
    let report = switchboard::telemetry::audit::verify(&files).expect("the chain verifies");
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str::<Value>(line).unwrap());
        }
    }
    assert_eq!(report.records, out.len() as u64);
    out
}

#[tokio::test]
async fn every_call_and_refusal_is_recorded_with_its_outcome_and_without_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let lab = HttpFixture::start("lab").await;
    let extra = format!("audit: {{path: '{}', durability: fsync}}", log.display());
    let gw = TestGateway::start(
        &[
            http_backend("lab", &lab.url),
            fixture_stdio("notes", "notes"),
        ],
        &extra,
    )
    .await;
    let c = RawClient::connect(&gw.url).await;
    assert_eq!(
        text(&c.tool(1, "echo", json!({"text": "s3cr3t-argument"})).await),
        "s3cr3t-argument"
    );
    let too_big = c.tool(2, "big", json!({"bytes": 999_999_999_999u64})).await;
    assert_eq!(too_big["result"]["isError"], true, "{too_big}");
    assert_eq!(
        c.tool(3, "no_such_tool", json!({})).await["error"]["code"],
        -32602
    );
    c.tool(4, "add_note", json!({"title": "t", "body": "b"}))
        .await;
    c.call(5, "tools/list", json!({})).await; // answered locally: not a call to audit
    let sid = c.session.clone().unwrap();
    gw.stop().await;

    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(
        !raw.contains("s3cr3t-argument"),
        "arguments and results never reach the audit log"
    );
    let recs = records(&log);
    let calls: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "call").collect();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    let by_target = |t: &str| {
        *calls
            .iter()
            .find(|r| r["target"] == t)
            .unwrap_or_else(|| panic!("no record for {t}: {calls:#?}"))
    };
    let echo = by_target("echo");
    assert_eq!(
        (
            echo["outcome"].as_str(),
            echo["backend"].as_str(),
            echo["original_name"].as_str()
        ),
        (Some("ok"), Some("lab"), Some("echo"))
    );
    assert_eq!(echo["decision"], "allow");
    assert_eq!(echo["session"], sid.as_str());
    assert_eq!(echo["method"], "tools/call");
    assert_eq!(by_target("big")["outcome"], "tool_error");
    let unknown = by_target("no_such_tool");
    assert_eq!(unknown["outcome"], "-32602");
    assert!(
        unknown.get("backend").is_none(),
        "refused before routing: {unknown}"
    );
    assert_eq!(by_target("add_note")["backend"], "notes");
}

#[tokio::test]
async fn in_fsync_mode_every_answered_call_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let lab = HttpFixture::start("lab").await;
    let yaml = format!(
        "listeners: [{{bind: '127.0.0.1:0', auth: {{mode: none}}}}]\naudit: {{path: '{}', durability: fsync}}\nbackends:\n{}",
        log.display(),
        http_backend("lab", &lab.url)
    );
    let (mut gw, _cfg_dir) = GatewayProcess::start(&yaml).await;
    let url = gw.url.clone();
    let c = RawClient::connect(&url).await;
    // Answered calls, then a burst still in flight when the process is killed.
    let mut answered = 0;
    for i in 0..40 {
        if c.tool(i, "echo", json!({"text": "x"}))
            .await
            .get("result")
            .is_some()
        {
            answered += 1;
        }
    }
    let burst: Vec<_> = (100..120)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.tool(i, "echo", json!({"text": "y"})).await })
        })
        .collect();
    tokio::task::yield_now().await;
    gw.child.start_kill().unwrap();
    gw.child.wait().await.unwrap();
    for b in burst {
        if let Ok(r) = b.await
            && r.get("result").is_some()
        {
            answered += 1;
        }
    }
    let files = switchboard::telemetry::audit::log_files(&log).unwrap();
    let report = switchboard::telemetry::audit::verify(&files);
    // A line cut by the kill is the only damage allowed; every complete record verifies.
    let ok_records = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == "call" && r["outcome"] == "ok")
        .count();
    if let Err(e) = &report {
        assert!(
            e.to_string().contains("truncated"),
            "only a cut last line is allowed: {e}"
        );
    }
    assert!(answered >= 40, "{answered}");
    assert!(
        ok_records >= answered,
        "{ok_records} records for {answered} answered calls (verify: {report:?})"
    );
}

/// In `fsync` mode a refusal — by the policy pipeline or for an unknown tool — is answered only
/// once its record is on disk, exactly like an answered call: read right after each answer, the
/// log already holds it, with the stage and rule that refused.
#[tokio::test]
async fn in_fsync_mode_refusals_are_answered_only_once_their_record_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let extra = format!(
        "audit: {{path: '{}', durability: fsync}}\npolicy:\n  - stage: access-list\n    rules: [{{effect: deny, backend: notes, tool: delete_note}}]\n",
        log.display()
    );
    let gw = TestGateway::start(&[fixture_stdio("notes", "notes")], &extra).await;
    let c = RawClient::connect(&gw.url).await;
    let on_disk = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["kind"] == "call")
            .collect::<Vec<_>>()
    };
    for i in 0..10 {
        let (name, code) = if i % 2 == 0 {
            ("delete_note", -32006)
        } else {
            ("no_such_tool", -32602)
        };
        let r = c.tool(i, name, json!({"id": 1})).await;
        assert_eq!(r["error"]["code"], code, "{r}");
        let recs = on_disk();
        assert_eq!(
            recs.len(),
            i as usize + 1,
            "refusal {i} answered before its record was durable"
        );
        let last = recs.last().unwrap();
        assert!(
            last["outcome"].to_string().contains(&code.to_string()),
            "{last}"
        );
        if code == -32006 {
            assert_eq!(last["decision"], "deny", "{last}");
            assert_eq!(last["deny_rule"], "access-list:rules[0]", "{last}");
        }
    }
    gw.stop().await;
}
