//! The Grafana side of the SRE stack, checked without Grafana: dashboards are JSON Grafana can
//! load (title, unique uid, schemaVersion, panels with unique ids, types, grid positions, data
//! sources that are provisioned, targets with refId and expr), their PromQL names only the
//! metrics and labels of docs/telemetry.md, their trace links open a provisioned data source, and
//! the provisioning files point where otel/compose.yaml mounts them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/grafana.rs"]
mod grafana;

use std::collections::BTreeSet;

use grafana::*;
use serde_json::Value;

/// Provisioned data sources as uid → type.
fn datasources() -> std::collections::BTreeMap<String, String> {
    let y = yaml("grafana/provisioning/datasources/datasources.yaml");
    assert_eq!(y["apiVersion"], 1, "datasources.yaml apiVersion");
    y["datasources"]
        .as_array()
        .expect("datasources list")
        .iter()
        .map(|d| {
            let uid = d["uid"].as_str().expect("every data source has a uid");
            let kind = d["type"].as_str().expect("every data source has a type");
            assert!(d["url"].as_str().is_some(), "data source {uid} has no url");
            (uid.to_string(), kind.to_string())
        })
        .collect()
}

#[test]
fn datasources_are_prometheus_and_jaeger_and_link_exemplars_to_traces() {
    let ds = datasources();
    assert_eq!(ds.get("prometheus").map(String::as_str), Some("prometheus"));
    assert_eq!(ds.get("jaeger").map(String::as_str), Some("jaeger"));
    let y = yaml("grafana/provisioning/datasources/datasources.yaml");
    let prom = y["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["uid"] == "prometheus")
        .unwrap();
    let dest = &prom["jsonData"]["exemplarTraceIdDestinations"][0];
    assert_eq!(dest["datasourceUid"], "jaeger", "{prom:?}");
}

/// `(host path, container path)` of the grafana service's volumes in otel/compose.yaml.
fn grafana_mounts() -> Vec<(String, String)> {
    let compose = yaml("otel/compose.yaml");
    compose["services"]["grafana"]["volumes"]
        .as_array()
        .expect("grafana volumes")
        .iter()
        .map(|v| {
            let mut parts = v.as_str().expect("short volume syntax").split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().expect("container path").to_string(),
            )
        })
        .collect()
}

#[test]
fn provisioning_points_at_the_mounted_dashboards_folder() {
    let mounts = grafana_mounts();
    let mounted = |host: &str| {
        mounts
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("otel/compose.yaml does not mount {host}: {mounts:?}"))
    };
    assert_eq!(
        mounted("../grafana/provisioning"),
        "/etc/grafana/provisioning"
    );
    let dashboards_dir = mounted("../grafana/dashboards");
    for (host, _) in &mounts {
        let path = root().join("otel").join(host);
        assert!(path.is_dir(), "mounted {host} does not exist");
    }

    let y = yaml("grafana/provisioning/dashboards/dashboards.yaml");
    assert_eq!(y["apiVersion"], 1);
    let providers = y["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 1, "{providers:?}");
    let p = &providers[0];
    assert_eq!(p["type"], "file");
    assert_eq!(p["options"]["path"].as_str(), Some(dashboards_dir.as_str()));
    assert!(p["folder"].as_str().is_some_and(|f| !f.is_empty()));

    // The other files compose mounts exist too.
    let compose = yaml("otel/compose.yaml");
    for svc in ["otel-collector", "prometheus"] {
        for v in compose["services"][svc]["volumes"].as_array().unwrap() {
            let host = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                root().join("otel").join(host).is_file(),
                "{svc} mounts missing {host}"
            );
        }
    }
}

#[test]
fn collector_and_prometheus_configs_parse_and_wire_the_pipelines() {
    let c = yaml("otel/collector.yaml");
    let otlp = &c["receivers"]["otlp"]["protocols"];
    assert_eq!(otlp["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(otlp["http"]["endpoint"], "0.0.0.0:4318");
    for (name, pipeline) in c["service"]["pipelines"].as_object().expect("pipelines") {
        assert_eq!(
            pipeline["processors"][0], "memory_limiter",
            "{name}: memory_limiter first"
        );
        for kind in ["receivers", "processors", "exporters"] {
            for component in pipeline[kind].as_array().unwrap() {
                let component = component.as_str().unwrap();
                assert!(
                    c[kind].get(component).is_some(),
                    "pipeline {name} uses undefined {kind} {component}"
                );
            }
        }
    }
    let p = yaml("otel/prometheus.yml");
    let jobs: Vec<&str> = p["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert!(
        jobs.contains(&"switchboard") && jobs.contains(&"otel-collector"),
        "{jobs:?}"
    );
}

fn check_dashboard(file: &str, d: &Value, ds: &BTreeSet<String>, errors: &mut Vec<String>) {
    let mut err = |m: String| errors.push(format!("{file}: {m}"));
    if d["title"].as_str().is_none_or(str::is_empty) {
        err("no title".into());
    }
    if d["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        err(format!("schemaVersion {} (want ≥ 36)", d["schemaVersion"]));
    }
    let panels = panels(d);
    if panels.is_empty() {
        err("no panels".into());
    }
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("<untitled>");
        let mut err = |m: String| errors.push(format!("{file} / {title:?}: {m}"));
        match p["id"].as_u64() {
            Some(id) if !ids.insert(id) => err(format!("duplicate panel id {id}")),
            None => err("no numeric id".into()),
            _ => {}
        }
        let kind = p["type"].as_str().unwrap_or("");
        if kind.is_empty() {
            err("no type".into());
        }
        let g = &p["gridPos"];
        let dims: Vec<Option<u64>> = ["h", "w", "x", "y"].iter().map(|k| g[k].as_u64()).collect();
        match dims[..] {
            [Some(h), Some(w), Some(x), Some(_)] if h > 0 && w > 0 && x + w <= 24 => {}
            _ => err(format!("bad gridPos {g}")),
        }
        if kind == "row" {
            continue;
        }
        let uid = p["datasource"]["uid"].as_str().unwrap_or("");
        if !ds.contains(uid) {
            err(format!("datasource uid {uid:?} is not provisioned"));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            err("no targets".into());
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            let r = t["refId"].as_str().unwrap_or("");
            if r.is_empty() || !refs.insert(r) {
                err(format!("missing or duplicate refId {r:?}"));
            }
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                err(format!("target {r} has no expr"));
            }
            if let Some(u) = t["datasource"]["uid"].as_str()
                && !ds.contains(u)
            {
                err(format!(
                    "target {r}: datasource uid {u:?} is not provisioned"
                ));
            }
        }
        check_trace_links(p, ds, &mut err);
    }
}

/// Every query panel links to traces: an Explore link whose panes use a provisioned data source.
fn check_trace_links(p: &Value, ds: &BTreeSet<String>, err: &mut impl FnMut(String)) {
    let links = p["fieldConfig"]["defaults"]["links"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let explore: Vec<&str> = links
        .iter()
        .filter_map(|l| l["url"].as_str())
        .filter(|u| u.starts_with("/explore?"))
        .collect();
    if explore.is_empty() {
        err("no trace link (data link to /explore)".into());
    }
    for url in explore {
        let Some(panes) = url.split("panes=").nth(1) else {
            err(format!("explore link without panes: {url}"));
            continue;
        };
        let panes = panes.split('&').next().unwrap();
        let decoded = percent_encoding::percent_decode_str(panes).decode_utf8_lossy();
        let Ok(json) = serde_json::from_str::<Value>(&decoded) else {
            err(format!("explore panes are not JSON: {decoded}"));
            continue;
        };
        for pane in json.as_object().into_iter().flat_map(|o| o.values()) {
            let uid = pane["datasource"].as_str().unwrap_or("");
            let query_uid = pane["queries"][0]["datasource"]["uid"]
                .as_str()
                .unwrap_or("");
            if uid != "jaeger" || query_uid != "jaeger" || !ds.contains(uid) {
                err(format!(
                    "trace link does not open the jaeger data source: {pane}"
                ));
            }
        }
    }
}

#[test]
fn dashboards_are_valid_grafana_json() {
    let ds: BTreeSet<String> = datasources().into_keys().collect();
    let all = dashboards();
    assert!(
        ["backends.json", "overview.json", "sessions.json"]
            .iter()
            .all(|f| all.iter().any(|(n, _)| n == f)),
        "expected overview, sessions and backends dashboards: {:?}",
        all.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let mut errors = Vec::new();
    let mut uids = BTreeSet::new();
    for (file, d) in &all {
        match d["uid"].as_str() {
            Some(u) if !u.is_empty() && u.len() <= 40 => {
                if !uids.insert(u.to_string()) {
                    errors.push(format!("{file}: uid {u} used by another dashboard"));
                }
            }
            _ => errors.push(format!("{file}: uid missing or longer than 40 characters")),
        }
        check_dashboard(file, d, &ds, &mut errors);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn promql_uses_only_the_metrics_and_labels_of_docs_telemetry_md() {
    let contract = contract();
    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    for q in queries() {
        let n = names(&q.expr);
        if n.metrics.is_empty() {
            errors.push(format!("{q}: names no metric"));
        }
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        for series in &n.metrics {
            match contract_metric(&contract, series) {
                Some((name, m)) => {
                    used.insert(name.to_string());
                    allowed.extend(m.labels.iter().cloned());
                    if series.ends_with("_bucket") {
                        allowed.insert("le".into());
                    }
                }
                None => errors.push(format!(
                    "{q}: series {series} is not in docs/telemetry.md (histograms: _bucket/_sum/_count)"
                )),
            }
        }
        for label in n.labels.iter().chain(&legend_labels(&q.legend)) {
            if !allowed.contains(label) {
                errors.push(format!(
                    "{q}: label {label} is not a label of {:?} in docs/telemetry.md",
                    n.metrics
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let unused: Vec<&String> = contract.keys().filter(|m| !used.contains(*m)).collect();
    assert!(
        unused.is_empty(),
        "contract metrics no dashboard shows: {unused:?}"
    );
}

#[test]
fn the_promql_scanner_finds_series_and_labels() {
    let n = names(
        r#"histogram_quantile(0.95, sum by (le, switchboard_backend) (rate(mcp_client_operation_duration_seconds_bucket{error_type!="", x=~"a{b}"}[5m]))) or on() vector(0)"#,
    );
    assert_eq!(
        n.metrics.into_iter().collect::<Vec<_>>(),
        ["mcp_client_operation_duration_seconds_bucket"]
    );
    assert_eq!(
        n.labels.into_iter().collect::<Vec<_>>(),
        ["error_type", "le", "switchboard_backend", "x"]
    );
    assert_eq!(
        label_values_as_promql("label_values(switchboard_backend_up, switchboard_backend)")
            .as_deref(),
        Some("group by (switchboard_backend) (switchboard_backend_up)")
    );
}
