//! Every PromQL query of every Grafana dashboard, evaluated by a real Prometheus that scraped a
//! real gateway carrying real MCP traffic: each must answer data (at least one finite sample),
//! so no panel of grafana/dashboards shows "No data" for a gateway that exports
//! docs/telemetry.md's metrics. A second test runs the same queries against a synthetic exporter
//! built from the contract's table, which checks the harness and the PromQL on their own.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`); skips without it unless `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/grafana.rs"]
mod grafana;
#[path = "common/prometheus.rs"]
mod prometheus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gateway::*;
use prometheus::{Prometheus, unix_now};
use serde_json::json;

/// What `$__rate_interval`, `$__interval` and `$__range` become: longer than the whole test, so
/// every rate sees all of its traffic.
const WINDOW: &str = "5m";

/// Evaluates every dashboard query; returns one line per query without data.
async fn evaluate_dashboards(prom: &Prometheus) -> Vec<String> {
    let mut failures = Vec::new();
    let queries = grafana::queries();
    assert!(
        queries.len() > 20,
        "dashboards hold {} queries",
        queries.len()
    );
    for q in queries {
        let expr = grafana::substitute(&q.expr, WINDOW);
        match prom.query(&expr).await {
            Err(e) => failures.push(format!("{q}\n    → Prometheus refused it: {e}")),
            Ok(s) if s.is_empty() => failures.push(format!("{q}\n    → no data")),
            Ok(s) if !s.iter().any(|x| x.value.is_finite()) => failures.push(format!(
                "{q}\n    → only NaN/Inf (no increase inside the window?): {s:?}"
            )),
            Ok(_) => {}
        }
    }
    failures
}

/// The gateway's contract series Prometheus has, by name, to explain a failure.
async fn exported(prom: &Prometheus, job: &str) -> String {
    let names = prom
        .query(&format!(
            "count by (__name__) ({{job=\"{job}\", __name__=~\"mcp_.*|switchboard_.*\"}})"
        ))
        .await
        .unwrap_or_default();
    let mut names: Vec<String> = names
        .iter()
        .filter_map(|s| s.labels.get("__name__")?.as_str().map(str::to_string))
        .collect();
    names.sort();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Real MCP traffic touching every panel: calls that succeed, fail in the tool, name no tool,
/// kill the backend mid-call (a backend failure and a restart); refusals (Origin, unknown session,
/// oversized body, malformed JSON, unsupported protocol version); a session that ends.
async fn drive_traffic(url: &str) {
    let c = RawClient::connect(url).await;
    c.call(1, "tools/list", json!({})).await;
    assert_eq!(text(&c.tool(2, "echo", json!({"text": "hi"})).await), "hi");
    let tool_error = c.tool(3, "echo", json!({})).await;
    assert_eq!(tool_error["result"]["isError"], true, "{tool_error}");
    let unknown = c.tool(5, "no_such_tool", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    c.tool(6, "add_note", json!({"title": "t", "body": "b"}))
        .await;
    let exited = c.tool(7, "exit", json!({"code": 1})).await;
    assert!(exited.get("error").is_some(), "{exited}");

    let origin = c
        .send(
            c.request(reqwest::Method::POST)
                .header("origin", "http://evil.example")
                .body(json!({"jsonrpc":"2.0","id":8,"method":"ping"}).to_string()),
        )
        .await;
    assert_eq!(origin.status, 403, "{}", origin.body);
    let mut stranger = RawClient::new(url);
    stranger.session = Some("0123456789abcdef0123456789abcdef".into());
    let unknown_session = stranger
        .post(json!({"jsonrpc":"2.0","id":9,"method":"ping"}))
        .await;
    assert_eq!(unknown_session.status, 404, "{}", unknown_session.body);
    assert_eq!(c.post_oversized(10).await, 413);
    assert_eq!(c.post_raw("{not json").await.status, 400);
    let version = c
        .send(
            c.bare_post()
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-protocol-version", "1999-01-01")
                .body(json!({"jsonrpc":"2.0","id":11,"method":"ping"}).to_string()),
        )
        .await;
    assert_eq!(version.status, 400, "{}", version.body);

    let ended = c.send(c.request(reqwest::Method::DELETE)).await;
    assert!(
        ended.status < 300,
        "DELETE: {} {}",
        ended.status,
        ended.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_has_data_from_a_real_gateway() {
    let Some(bin) = prometheus::binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listeners: [{{name: test, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\n\
         audit: {{path: '{}', durability: fsync}}\n\
         backends:\n{}{}",
        dir.path().join("audit.jsonl").display(),
        fixture_stdio("lab", "lab"),
        fixture_stdio("notes", "notes"),
    );
    let (gw, _config_dir) = GatewayProcess::start(&yaml).await;
    let target = gw
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let prom = Prometheus::start(&bin, &[("switchboard", target)]).await;
    // The harness first: Prometheus scrapes and answers queries (its own target).
    prom.wait_up("prometheus").await;
    // Then the gateway's /metrics (fails here, naming the scrape error, without the metrics).
    prom.wait_up("switchboard").await;

    // A session that stays open: the active-session gauges have something to show.
    let open = RawClient::connect(&gw.url).await;
    open.tool(100, "echo", json!({"text": "stay"})).await;
    // Twice, each followed by two scrapes: every counter's series exists before the second
    // round, so every rate and quantile over the window sees an increase.
    for _round in 0..2 {
        drive_traffic(&gw.url).await;
        prom.wait_scrapes_after("switchboard", unix_now()).await;
    }

    let failures = evaluate_dashboards(&prom).await;
    assert!(
        failures.is_empty(),
        "{} dashboard queries without data (gateway {}, window {WINDOW}):\n{}\n\
         contract series the gateway exported: {}",
        failures.len(),
        gw.url,
        failures.join("\n"),
        exported(&prom, "switchboard").await,
    );
    drop(open);
}

/// A Prometheus exposition of every metric of docs/telemetry.md with plausible labels; counters
/// and histograms grow by one observation per scrape.
fn synthetic_exposition(contract: &BTreeMap<String, grafana::Metric>, n: u64) -> String {
    let value_of = |label: &str| match label {
        "mcp_method_name" => Some("tools/call"),
        "gen_ai_tool_name" => Some("echo"),
        "mcp_protocol_version" => Some("2025-11-25"),
        "network_transport" => Some("pipe"),
        "network_protocol_name" => Some("http"),
        "switchboard_backend" => Some("lab"),
        "switchboard_decision" => Some("allow"),
        "switchboard_outcome" => Some("ok"),
        "switchboard_reason" => Some("origin"),
        "switchboard_signal" => Some("spans"),
        _ => None, // gen_ai_prompt_name, error_type: absent on the first series
    };
    let buckets = [
        "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "30", "60", "120", "300",
        "+Inf",
    ];
    let mut out = String::new();
    for (name, m) in contract {
        let base: Vec<String> = m
            .labels
            .iter()
            .filter_map(|l| value_of(l).map(|v| format!("{l}=\"{v}\"")))
            .collect();
        let mut series = vec![base.clone()];
        if m.labels.contains("error_type") {
            let mut failed = base;
            failed.push("error_type=\"tool_error\"".into());
            series.push(failed);
        }
        let kind = match m.kind.as_str() {
            "histogram" => "histogram",
            "counter" => "counter",
            _ => "gauge",
        };
        out.push_str(&format!("# TYPE {name} {kind}\n"));
        for labels in series {
            let l = labels.join(",");
            match kind {
                "histogram" => {
                    for le in buckets {
                        let count = if matches!(le, "0.01" | "0.02") { 0 } else { n };
                        let sep = if l.is_empty() { "" } else { "," };
                        out.push_str(&format!("{name}_bucket{{{l}{sep}le=\"{le}\"}} {count}\n"));
                    }
                    out.push_str(&format!("{name}_sum{{{l}}} {}\n", n as f64 * 0.03));
                    out.push_str(&format!("{name}_count{{{l}}} {n}\n"));
                }
                "counter" => out.push_str(&format!("{name}{{{l}}} {n}\n")),
                _ => out.push_str(&format!("{name}{{{l}}} 1\n")),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_against_a_synthetic_exporter() {
    let Some(bin) = prometheus::binary() else {
        return;
    };
    let contract = Arc::new(grafana::contract());
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get({
            let (contract, scrapes) = (contract.clone(), scrapes.clone());
            move || async move {
                let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
                synthetic_exposition(&contract, n)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let prom = Prometheus::start(&bin, &[("switchboard", addr.to_string())]).await;
    prom.wait_up("prometheus").await;
    prom.wait_up("switchboard").await;
    // Three scrapes at least: every rate has two increasing samples.
    prom.wait_for(
        "three scrapes of the synthetic exporter",
        "count_over_time(up{job=\"switchboard\"}[5m])",
        Duration::from_secs(20),
        |s| s.iter().any(|x| x.value >= 3.0),
    )
    .await;

    let failures = evaluate_dashboards(&prom).await;
    server.abort();
    assert!(
        failures.is_empty(),
        "{} dashboard queries without data against docs/telemetry.md's own metrics:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
