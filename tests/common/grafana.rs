//! The SRE stack's files as tests see them: Grafana dashboards and their PromQL, the provisioning
//! files, and the metrics contract of docs/telemetry.md (names, kinds, labels).
//!
//! Include with `#[path = "common/grafana.rs"] mod grafana;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub(crate) fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

/// Every `grafana/dashboards/*.json`, as (file name, parsed JSON), sorted by name.
pub(crate) fn dashboards() -> Vec<(String, Value)> {
    let dir = root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = file_name(p);
            let text = std::fs::read_to_string(p).expect("read dashboard");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("grafana/dashboards/{name} is not JSON: {e}"));
            (name, json)
        })
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
        .to_string()
}

/// Every panel of a dashboard, rows' nested (collapsed) panels included.
pub(crate) fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// One PromQL query a dashboard runs: a panel target or a template variable's query.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) dashboard: String,
    pub(crate) panel: String,
    pub(crate) ref_id: String,
    pub(crate) expr: String,
    pub(crate) legend: String,
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {:?} [{}]: {}",
            self.dashboard,
            self.panel,
            self.ref_id,
            self.expr.replace('\n', " ")
        )
    }
}

/// Every query of every dashboard: panel targets, then template variables (`label_values(m, l)`
/// becomes `group by (l) (m)`, what Grafana asks Prometheus for in effect).
pub(crate) fn queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        let dashboard = d["title"].as_str().unwrap_or(&file).to_string();
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    dashboard: dashboard.clone(),
                    panel: p["title"].as_str().unwrap_or("?").to_string(),
                    ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                    legend: t["legendFormat"].as_str().unwrap_or("").to_string(),
                });
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let q = v["query"]["query"].as_str().or(v["query"].as_str());
            if let Some(expr) = q.and_then(label_values_as_promql) {
                out.push(Query {
                    dashboard: dashboard.clone(),
                    panel: format!("${}", v["name"].as_str().unwrap_or("?")),
                    ref_id: "variable".into(),
                    expr,
                    legend: String::new(),
                });
            }
        }
    }
    out
}

/// `label_values(metric{sel}, label)` → `group by (label) (metric{sel})`.
pub(crate) fn label_values_as_promql(q: &str) -> Option<String> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (metric, label) = inner.rsplit_once(',')?;
    Some(format!("group by ({}) ({})", label.trim(), metric.trim()))
}

/// Grafana's variables as a test evaluates them: every backend, one window for every range.
pub(crate) fn substitute(expr: &str, window: &str) -> String {
    expr.replace("$__rate_interval", window)
        .replace("$__interval", window)
        .replace("$__range", window)
        .replace("${backend}", ".*")
        .replace("$backend", ".*")
}

/// A metric of the contract.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    /// `histogram`, `counter`, `up-down counter` or `gauge`.
    pub(crate) kind: String,
    pub(crate) labels: BTreeSet<String>,
}

impl Metric {
    pub(crate) fn is_histogram(&self) -> bool {
        self.kind == "histogram"
    }
}

/// The Prometheus metrics of docs/telemetry.md's table, by Prometheus name.
pub(crate) fn contract() -> BTreeMap<String, Metric> {
    let doc = read("docs/telemetry.md");
    let section = doc
        .split("## Metrics")
        .nth(1)
        .expect("docs/telemetry.md has a Metrics section");
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", instrument (kind), prometheus name, labels, ""]
        let kind = between(cols[1], '(', ')')
            .expect("instrument kind")
            .to_string();
        let name = between(cols[2], '`', '`')
            .expect("prometheus name")
            .to_string();
        let labels = ticked(&without_parentheses(cols[3]));
        out.insert(name, Metric { kind, labels });
    }
    assert!(
        out.len() >= 10,
        "docs/telemetry.md's metrics table not found: {out:?}"
    );
    out
}

fn between(s: &str, open: char, close: char) -> Option<&str> {
    let start = s.find(open)? + open.len_utf8();
    let end = start + s[start..].find(close)?;
    Some(&s[start..end])
}

fn without_parentheses(s: &str) -> String {
    let mut depth = 0;
    s.chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => return depth == 0,
            }
            false
        })
        .collect()
}

fn ticked(s: &str) -> BTreeSet<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// What a PromQL expression names: series (metric) names and label names.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) metrics: BTreeSet<String>,
    pub(crate) labels: BTreeSet<String>,
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    // aggregation operators, which may be followed by `by (…)` instead of `(`
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// A small PromQL scanner: enough to list the series and label names our dashboards use
/// (selectors, `by`/`on` lists), skipping strings, durations, numbers and function names.
pub(crate) fn names(expr: &str) -> Names {
    let b = expr.as_bytes();
    let mut out = Names::default();
    let (mut i, mut braces, mut grouping) = (0, 0usize, false);
    let mut last_ident = String::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'[' => i += expr[i..].find(']').map_or(b.len(), |n| n + 1),
            b'{' => {
                braces += 1;
                i += 1;
            }
            b'}' => {
                braces = braces.saturating_sub(1);
                i += 1;
            }
            b')' => {
                grouping = false;
                i += 1;
            }
            b'(' => {
                grouping = [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&last_ident.as_str());
                last_ident.clear();
                i += 1;
            }
            c if c.is_ascii_digit() || c == b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let ident = &expr[start..i];
                let next = expr[i..].trim_start().bytes().next();
                if braces > 0 || grouping {
                    out.labels.insert(ident.to_string());
                } else if next != Some(b'(') && !KEYWORDS.contains(&ident) {
                    out.metrics.insert(ident.to_string());
                }
                last_ident = ident.to_string();
            }
            _ => i += 1,
        }
    }
    out
}

/// The contract metric a series name belongs to (`X_bucket`/`_sum`/`_count` → histogram `X`).
pub(crate) fn contract_metric<'a>(
    contract: &'a BTreeMap<String, Metric>,
    series: &str,
) -> Option<(&'a str, &'a Metric)> {
    if let Some((name, m)) = contract.get_key_value(series) {
        return (!m.is_histogram()).then_some((name.as_str(), m));
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = series.strip_suffix(suffix)?;
        let (name, m) = contract.get_key_value(base)?;
        m.is_histogram().then_some((name.as_str(), m))
    })
}

/// `{{label}}` references of a legend format.
pub(crate) fn legend_labels(legend: &str) -> BTreeSet<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}").map(|(l, _)| l.trim().to_string()))
        .collect()
}
