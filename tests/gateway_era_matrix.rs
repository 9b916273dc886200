//! The era matrix with real peers: {2025 client, 2026 client} (the official Python SDK driver,
//! `--era legacy` / `--era 2026`) × {2025 backend (our lab fixture), 2026 backend (the Python
//! SDK reference server, which the gateway probes with `server/discover` and then speaks to
//! statelessly)} × {plain call, call with progress, call that elicits input, list change}.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/peers.rs"]
mod peers;

use gateway::*;
use serde_json::Value;

/// The tools and arguments of one backend, per cell.
struct Backend {
    era: &'static str,
    /// (tool, args, expected text)
    plain: (&'static str, &'static str, &'static str),
    /// (tool, args with steps = 3)
    progress: (&'static str, &'static str),
    /// (tool, args, --elicit content, expected text)
    elicit: (&'static str, &'static str, &'static str, &'static str),
}

const LAB: Backend = Backend {
    era: "2025 backend (lab fixture)",
    plain: ("echo", r#"{"text":"matrix"}"#, "matrix"),
    progress: ("progress", r#"{"steps":3}"#),
    elicit: (
        "ask_elicitation",
        r#"{"message":"what is the answer?"}"#,
        r#"{"answer":"forty-two"}"#,
        "forty-two",
    ),
};

const PY: Backend = Backend {
    era: "2026 backend (Python SDK, stateless)",
    plain: ("echo", r#"{"message":"matrix"}"#, "Echo: matrix"),
    progress: ("slow", r#"{"steps":3,"delay_ms":20}"#),
    elicit: ("ask_name", "{}", r#"{"name":"Ada"}"#, "Hello, Ada"),
};

const CLIENT_ERAS: [(&str, &str); 2] = [("2025 client", "legacy"), ("2026 client", "2026")];

async fn run_cells(url: &str, b: &Backend) {
    for (client, era) in CLIENT_ERAS {
        let cell = format!("{client} × {}", b.era);

        let (tool, args, want) = b.plain;
        let out = peers::py_client(url, &["--era", era, "call", tool, args]).await;
        assert!(result_text(&out).contains(want), "{cell} plain: {out}");
        assert!(out["result"].get("ttlMs").is_none(), "{cell} plain: {out}");
        if era == "legacy" {
            assert!(
                out["result"].get("resultType").is_none(),
                "{cell}: a 2025 client must not see resultType: {out}"
            );
        }

        let (tool, args) = b.progress;
        let out = peers::py_client(url, &["--era", era, "call", tool, args, "--progress"]).await;
        assert!(out.get("result").is_some(), "{cell} progress: {out}");
        let progress = out["progress"].as_array().cloned().unwrap_or_default();
        assert!(
            progress.len() >= 3,
            "{cell} progress: expected 3 notifications: {out}"
        );
        let last: &Value = progress.last().unwrap();
        assert_eq!(
            last["progress"].as_f64(),
            Some(3.0),
            "{cell} progress: {out}"
        );

        let (tool, args, content, want) = b.elicit;
        let out = peers::py_client(
            url,
            &["--era", era, "--elicit", content, "call", tool, args],
        )
        .await;
        assert!(result_text(&out).contains(want), "{cell} elicit: {out}");
        let asked = &out["serverRequests"][0];
        assert_eq!(
            asked["method"], "elicitation/create",
            "{cell} elicit: {out}"
        );

        let fresh = format!("fresh_{era}");
        let args = format!(r#"{{"name":"{fresh}"}}"#);
        let out = peers::py_client(
            url,
            &["--era", era, "watch-list-changed", "add_tool", &args],
        )
        .await;
        assert_eq!(out["listChanged"], true, "{cell} list change: {out}");
        assert!(
            strings(&out["tools"]).contains(&fresh),
            "{cell} list change: {fresh} missing: {out}"
        );
    }
}

fn backend_info(gw: &TestGateway) -> switchboard::upstream::handshake::BackendInfo {
    let snap = gw
        .gateway()
        .shared()
        .catalog
        .snapshot(0)
        .expect("discovered");
    snap.info().clone()
}

#[tokio::test]
async fn era_matrix_with_a_2025_backend() {
    let lab = HttpFixture::start("lab").await;
    let gw = TestGateway::start(&[http_backend("lab", &lab.url)], "").await;
    assert!(
        !backend_info(&gw).stateless,
        "the lab fixture is a 2025 server"
    );
    run_cells(&gw.url, &LAB).await;
}

#[tokio::test]
async fn era_matrix_with_a_2026_backend() {
    let py = peers::PySdkServer::http().await;
    let gw = TestGateway::start(&[http_backend("py", &py.url)], "").await;
    // The gateway probed with server/discover; the backend's identity comes from the stamp.
    let info = backend_info(&gw);
    assert!(info.stateless, "server/discover was answered: {info:?}");
    assert_eq!(info.protocol_version, "2026-07-28");
    assert_eq!(info.server_info["name"], "switchboard-py-peer", "{info:?}");
    let list = peers::py_client(&gw.url, &["--era", "legacy", "list"]).await;
    assert!(
        strings(&list["tools"]).contains(&"ask_name".to_string()),
        "{list}"
    );
    run_cells(&gw.url, &PY).await;

    for (client, era) in CLIENT_ERAS {
        // Sampling through an MRTR round, too.
        let out = peers::py_client(
            &gw.url,
            &["--era", era, "call", "sample_text", r#"{"prompt":"hi"}"#],
        )
        .await;
        assert_eq!(
            result_text(&out),
            "sampled: hi (driver-model)",
            "{client}: {out}"
        );
        assert_eq!(out["serverRequests"][0]["method"], "sampling/createMessage");

        // Cancelling closes the call's POST stream at the backend; the client goes on.
        let out = peers::py_client(
            &gw.url,
            &[
                "--era",
                era,
                "cancel",
                "slow",
                r#"{"steps":50,"delay_ms":100}"#,
                "300",
            ],
        )
        .await;
        assert_eq!(out["cancelled"], true, "{client}: {out}");
        assert_eq!(out["pingOk"], true, "{client}: {out}");
    }
}
