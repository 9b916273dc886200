//! Reloading policy sources while the gateway runs: when asked (SIGHUP, the admin endpoint) and
//! when the sources change (polled every 2 s). Each outcome is logged and counted once
//! (`switchboard.policy.reloads`); a refused policy leaves the one in force.
//!
//! Why polling and not inotify (`notify`): the sources are a few small files, so hashing them
//! every 2 s costs microseconds, and polling sees every way a file changes — an editor's
//! save-by-rename, a Kubernetes ConfigMap's symlink swap, a file added to the directory, a
//! network filesystem — where an inotify watch on the file itself goes stale after the first
//! rename and must be re-armed. No extra dependency or thread; SIGHUP reloads at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::{Pipeline, Reloaded, StageReload};
use crate::telemetry::Metrics;

/// How often the sources are compared with the revision in force.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The admin endpoint's reload (`POST /admin/reload`, and SIGHUP, which does the same).
    Admin,
    /// The sources changed on disk.
    Watch,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Watch => "watch",
        }
    }
}

/// Reloads every stage with sources and reports each outcome (log line and metric); the
/// caller shows the results (the admin endpoint answers with them). Blocking (reads files,
/// compiles): call it where blocking is fine, or through `spawn_blocking`.
pub fn reload(pipeline: &Pipeline, metrics: &Metrics, trigger: Trigger) -> Vec<StageReload> {
    let results = pipeline.reload();
    for r in &results {
        report(r, metrics, trigger);
    }
    results
}

/// One reload's log line and metric.
fn report(r: &StageReload, metrics: &Metrics, trigger: Trigger) {
    let (stage, index, trigger_name) = (r.stage, r.index, trigger.as_str());
    match &r.result {
        Ok(Reloaded::Unchanged { revision }) => {
            info!(stage, index, %revision, trigger = trigger_name, "Policy unchanged");
            metrics.policy_reloaded(stage, "unchanged");
        }
        Ok(Reloaded::Loaded { previous, revision }) => {
            info!(stage, index, %revision, %previous, trigger = trigger_name, "Policy reloaded");
            metrics.policy_reloaded(stage, "loaded");
        }
        Err(e) => {
            error!(
                stage,
                index,
                rejected = e.rejected.as_deref().unwrap_or("unreadable"),
                kept = %e.kept,
                error = %e.error,
                trigger = trigger_name,
                "Policy refused; the previous revision stays in force"
            );
            metrics.policy_reloaded(stage, "rejected");
        }
    }
}

/// Polls the pipeline's policy sources every `every` until `shutdown`, reloading what changed.
/// Unchanged sources are silent; refused sources are reported once per revision (not every
/// poll). Spawn it only when `pipeline.reloadable()`.
pub fn spawn_watch(
    pipeline: Pipeline,
    metrics: Metrics,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pipeline = Arc::new(pipeline);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // Per stage: the refused revision last reported (`None`: the sources were unreadable).
        let mut reported: HashMap<usize, Option<Arc<str>>> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let p = pipeline.clone();
            let Ok(results) = tokio::task::spawn_blocking(move || p.reload()).await else {
                continue;
            };
            for r in &results {
                match &r.result {
                    Ok(Reloaded::Unchanged { .. }) => {
                        reported.remove(&r.index);
                    }
                    Ok(Reloaded::Loaded { .. }) => {
                        reported.remove(&r.index);
                        report(r, &metrics, Trigger::Watch);
                    }
                    Err(e) => {
                        if reported.get(&r.index) != Some(&e.rejected) {
                            reported.insert(r.index, e.rejected.clone());
                            report(r, &metrics, Trigger::Watch);
                        }
                    }
                }
            }
        }
    })
}
