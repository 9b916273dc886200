//! A real Prometheus server for tests: started on a free loopback port with a generated config
//! (1 s scrapes) and a TSDB in a temp dir, killed on drop; queried over its HTTP API.
//!
//! Include with `#[path = "common/prometheus.rs"] mod prometheus;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

/// The prometheus binary: `$SWITCHBOARD_PROMETHEUS`, else `prometheus` on PATH. `None` (the test
/// skips) only outside CI; with `CI` set a missing binary fails the test.
pub(crate) fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("SWITCHBOARD_PROMETHEUS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("prometheus"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus binary not found (Debian package `prometheus`; ./scripts/test installs it) \
             and CI is set: this test must run in CI"
        );
        eprintln!(
            "SKIPPED: prometheus binary not found (apt-get install prometheus, or set \
             SWITCHBOARD_PROMETHEUS); runs in CI"
        );
    }
    found
}

/// A Prometheus process (killed on drop) and its HTTP API.
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// One sample of an instant query: its labels and value (NaN and ±Inf as Prometheus spells them).
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) labels: serde_json::Map<String, Value>,
    pub(crate) value: f64,
}

impl Prometheus {
    /// Starts `bin` scraping each `(job, host:port)` target's `/metrics` every second, plus
    /// itself as job `prometheus`, and waits until it answers `/-/ready`.
    pub(crate) async fn start(bin: &std::path::Path, targets: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Reserve a free port; Prometheus binds it right after (a lost race fails loudly below).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = String::from(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n\
             scrape_configs:\n",
        );
        let own = ("prometheus", addr.clone());
        for (job, target) in targets.iter().map(|(j, t)| (*j, t.clone())).chain([own]) {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs: [{{targets: ['{target}']}}]\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, &config).expect("write prometheus.yml");
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/-/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                panic!("prometheus exited ({status}) before ready:\n{err}\nconfig:\n{config}");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30s on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Keep draining stderr so Prometheus never blocks on a full pipe.
        if let Some(mut e) = child.stderr.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut e, &mut tokio::io::sink()).await;
            });
        }
        Prometheus {
            child,
            base,
            http,
            _dir: dir,
        }
    }

    /// An instant query; `Err` carries Prometheus' error (bad PromQL) or the transport failure.
    pub(crate) async fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let r = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("query failed: {e}"))?;
        let text = r.text().await.map_err(|e| format!("read answer: {e}"))?;
        let body: Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        if body["status"] != "success" {
            return Err(format!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("?")
            ));
        }
        let data = &body["data"];
        let value = |v: &Value| -> f64 {
            v[1].as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        Ok(match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Sample {
                    labels: s["metric"].as_object().cloned().unwrap_or_default(),
                    value: value(&s["value"]),
                })
                .collect(),
            Some("scalar") => vec![Sample {
                labels: serde_json::Map::new(),
                value: value(&data["result"]),
            }],
            other => return Err(format!("unexpected result type {other:?}")),
        })
    }

    /// Polls `expr` until `done` holds for its samples; panics with `what` and the last answer
    /// after `within`. Prometheus has no push notification for "scraped": polling its API is the
    /// event source here.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        expr: &str,
        within: Duration,
        mut done: impl FnMut(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + within;
        loop {
            let last = self.query(expr).await;
            if let Ok(s) = &last
                && done(s)
            {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{expr}` not satisfied within {within:?}; last answer: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The scrape target of `job`: its health and last error, from `/api/v1/targets`.
    pub(crate) async fn target_state(&self, job: &str) -> String {
        let body: Value = match self
            .http
            .get(format!("{}/api/v1/targets", self.base))
            .send()
            .await
        {
            Ok(r) => serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default(),
            Err(e) => return format!("targets API failed: {e}"),
        };
        body["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["labels"]["job"] == job)
            .map(|t| {
                format!(
                    "{} health={} lastError={:?}",
                    t["scrapeUrl"].as_str().unwrap_or("?"),
                    t["health"].as_str().unwrap_or("?"),
                    t["lastError"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Waits until `job` has been scraped successfully (`up == 1`); the failure names the
    /// target's last scrape error.
    pub(crate) async fn wait_up(&self, job: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let expr = format!("up{{job=\"{job}\"}}");
        loop {
            let up = self.query(&expr).await.unwrap_or_default();
            if up.iter().any(|s| s.value == 1.0) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Prometheus cannot scrape job {job:?}: {expr} = {:?}; target: {}",
                    up.iter().map(|s| s.value).collect::<Vec<_>>(),
                    self.target_state(job).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `job` was scraped at least twice after `since` (unix seconds): the latest
    /// scrape's timestamp is more than one interval past it.
    pub(crate) async fn wait_scrapes_after(&self, job: &str, since: f64) {
        let expr = format!("timestamp(up{{job=\"{job}\"}})");
        self.wait_for(
            &format!("two scrapes of {job} after the traffic"),
            &expr,
            Duration::from_secs(20),
            |s| s.iter().any(|x| x.value > since + 1.5),
        )
        .await;
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Now, in unix seconds (the clock Prometheus stamps samples with, on this machine).
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}
