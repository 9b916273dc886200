//! Reports every change of a definition's standing: one log line, one metric point, one audit
//! record and one span (`integrity.<event>`, exported with the gateway's own spans).

use tokio::sync::mpsc;
use tracing::{info, info_span, warn};

use super::IntegrityEvent;
use crate::telemetry::Metrics;
use crate::telemetry::audit::{AuditHandle, AuditRecord};

/// Drains the checker's events until it is dropped.
pub fn spawn(
    mut events: mpsc::UnboundedReceiver<IntegrityEvent>,
    metrics: Metrics,
    audit: Option<AuditHandle>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            report(&e, &metrics, audit.as_ref());
        }
    });
}

fn report(e: &IntegrityEvent, metrics: &Metrics, audit: Option<&AuditHandle>) {
    let k = &e.key;
    let span = info_span!(
        "integrity.event",
        otel.name = %format!("integrity.{}", e.event),
        switchboard.backend = %k.backend,
        switchboard.integrity.kind = k.kind.as_str(),
        switchboard.integrity.name = %k.name,
        switchboard.integrity.reason = %e.reason,
        switchboard.tool.hash = e.hash.as_deref().unwrap_or(""),
        switchboard.integrity.previous_hash = e.previous_hash.as_deref().unwrap_or(""),
        switchboard.integrity.changes = e.changes,
    );
    let _enter = span.enter();
    let findings = e.findings.join(",");
    match e.event {
        "quarantined" | "warned" | "blocked" => warn!(
            event = e.event,
            backend = %k.backend,
            kind = k.kind.as_str(),
            name = %k.name,
            reason = %e.reason,
            previous_hash = e.previous_hash.as_deref().unwrap_or("-"),
            hash = e.hash.as_deref().unwrap_or("-"),
            changes = e.changes,
            findings = %findings,
            by = e.by.as_deref().unwrap_or("-"),
            "Definition {}", e.event
        ),
        _ => info!(
            event = e.event,
            backend = %k.backend,
            kind = k.kind.as_str(),
            name = %k.name,
            reason = %e.reason,
            hash = e.hash.as_deref().unwrap_or("-"),
            by = e.by.as_deref().unwrap_or("-"),
            "Definition {}", e.event
        ),
    }
    let reason = e.reason.split(' ').next().unwrap_or_default();
    metrics.integrity_event(e.event, &k.backend, reason);
    if let Some(a) = audit {
        let note = if findings.is_empty() {
            e.reason.clone()
        } else {
            format!("{} (findings: {findings})", e.reason)
        };
        a.record(AuditRecord::integrity(
            e.event,
            &k.backend,
            k.kind.as_str(),
            &k.name,
            e.previous_hash.as_deref(),
            e.hash.as_deref(),
            e.changes,
            note,
            e.by.as_deref(),
        ));
    }
}
