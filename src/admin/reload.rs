//! A reload (`POST /admin/reload`, SIGHUP): the config file read again and validated; if valid,
//! each listener's credentials (issuers, API keys, scopes) swapped in and every policy stage's
//! files read again; what only a restart applies (backends, listeners, the stage list) is named.
//! Anything invalid changes nothing, loudly.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::{AuthConfig, Config};
use crate::identity::Authenticator;
use crate::listener::ListenerState;
use crate::session::Shared;

/// What a reload did.
#[derive(Debug, Default)]
pub struct Report {
    /// Why the new config was rejected (nothing was applied).
    pub rejected: Option<String>,
    /// Listeners whose credentials were swapped in.
    pub listeners: Vec<String>,
    /// (stage, error) for stages whose files failed to load (they keep their old policy).
    pub stage_errors: Vec<(String, String)>,
    pub stages_reloaded: Vec<String>,
    /// Sections that changed but apply only at restart.
    pub needs_restart: Vec<&'static str>,
    /// The pinned manifest: `reloaded`, `unchanged`, or why it was refused (the old one stays).
    pub manifest: Option<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.rejected.is_none()
            && self.stage_errors.is_empty()
            && self
                .manifest
                .as_deref()
                .is_none_or(|m| m == "reloaded" || m == "unchanged")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "rejected": self.rejected,
            "listeners": self.listeners,
            "stagesReloaded": self.stages_reloaded,
            "stageErrors": self.stage_errors.iter().map(|(s, e)| json!({"stage": s, "error": e})).collect::<Vec<_>>(),
            "needsRestart": self.needs_restart,
            "manifest": self.manifest,
        })
    }
}

/// Reloads from `source` (the file the gateway was started with; without one, only the policy
/// stages reload).
pub async fn run(
    listeners: &[Arc<ListenerState>],
    shared: &Shared,
    source: Option<&Path>,
    running: &Config,
) -> Report {
    let mut report = Report::default();
    if let Some(path) = source {
        let new = match tokio::task::spawn_blocking({
            let path = path.to_path_buf();
            move || Config::load(&path)
        })
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Reload rejected: the config is invalid; keeping the running one");
                report.rejected = Some(e.to_string());
                return report;
            }
            Err(e) => {
                report.rejected = Some(format!("reading the config failed: {e}"));
                return report;
            }
        };
        let backends = shared.backend_names();
        for st in listeners {
            let Some(l) = new.listeners.iter().find(|l| l.name == st.cfg.name) else {
                report.needs_restart.push("listeners");
                continue;
            };
            let mut auth = l.auth.clone();
            if let (AuthConfig::OAuth(o), Some(local)) = (&mut auth, st.local.get())
                && o.resource == format!("http://{}/mcp", l.bind)
                && let Ok(ip) = local.ip.parse::<std::net::IpAddr>()
            {
                // As at start: the default resource names the address actually bound.
                o.resource = format!("http://{}/mcp", std::net::SocketAddr::new(ip, local.port));
            }
            let next = Arc::new(Authenticator::new(&auth, &backends));
            next.prefetch().await;
            st.auth.store(next);
            report.listeners.push(st.cfg.name.clone());
        }
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let binds = |c: &Config| -> Vec<String> {
            c.listeners
                .iter()
                .map(|l| {
                    format!(
                        "{} {} {:?} {:?} {:?} {}",
                        l.name,
                        l.bind,
                        l.naming,
                        l.allowed_origins,
                        l.allowed_hosts,
                        l.max_body_bytes
                    )
                })
                .collect()
        };
        if differs(&binds(&new), &binds(running)) {
            report.needs_restart.push("listeners");
        }
        // By value, secrets included (their Debug is redacted): a rotated credential counts.
        if new.backends != running.backends {
            report.needs_restart.push("backends");
        }
        if differs(&new.policy, &running.policy) {
            report.needs_restart.push("policy");
        }
        if differs(&new.sessions, &running.sessions) {
            report.needs_restart.push("sessions");
        }
        if differs(&new.audit, &running.audit) || differs(&new.telemetry, &running.telemetry) {
            report.needs_restart.push("audit/telemetry");
        }
        if differs(&new.integrity, &running.integrity) {
            report.needs_restart.push("integrity");
        }
        report.needs_restart.dedup();
    }
    // Each outcome is logged and counted there (`switchboard.policy.reloads`).
    let reloads = crate::policy::reload::reload(
        &shared.policy,
        &shared.telemetry.metrics,
        crate::policy::reload::Trigger::Admin,
    );
    for r in reloads {
        match r.result {
            Ok(_) => report.stages_reloaded.push(r.stage.to_string()),
            Err(e) => report
                .stage_errors
                .push((r.stage.to_string(), e.to_string())),
        }
    }
    // The pinned manifest (`switchboard pin` rewrote it, or a reviewed pull request landed):
    // every backend is judged again against it.
    if let Some(checker) = shared.catalog.integrity() {
        report.manifest = Some(match checker.reload_manifest() {
            Ok(changed) => {
                shared.catalog.reassess_all();
                if changed { "reloaded" } else { "unchanged" }.to_string()
            }
            Err(e) => {
                tracing::error!(error = %e, "The pinned manifest was not reloaded; the old one stays");
                e.to_string()
            }
        });
    }
    tracing::info!(ok = report.ok(), listeners = ?report.listeners, needs_restart = ?report.needs_restart, "Reloaded");
    report
}
