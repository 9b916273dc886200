//! The integrity check at discovery: every definition of a backend's new snapshot is hashed,
//! held to its pin (the manifest, or what was first seen), and scanned; the verdicts become the
//! definitions' `Facts`, and every change of standing becomes one `IntegrityEvent`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::diff::{self, Change};
use super::hash::DefKind;
use super::manifest::{BackendPins, Manifest, ManifestError, Pin};
use super::scan::{Finding, ScanConfig, Scanner, Severity};
use crate::catalog::{DefinitionFacts, Snapshot};
use crate::config::{FindingAction, FindingActions, IntegrityConfig, PinMode};
use crate::policy::{Facts, Integrity, Quarantine};

/// A definition, as the admin API and the audit log name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DefKey {
    pub backend: String,
    #[serde(serialize_with = "kind_str")]
    pub kind: DefKind,
    pub name: String,
}

fn kind_str<S: serde::Serializer>(k: &DefKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// One quarantined definition: why, what changed, what the scanner found.
#[derive(Clone, Debug, Serialize)]
pub struct QuarantineEntry {
    #[serde(flatten)]
    pub key: DefKey,
    /// `changed`, `unpinned` or `poisoned`.
    pub reason: &'static str,
    pub detail: String,
    /// The approved hash (manifest or first seen), when there is one.
    pub pinned_hash: Option<String>,
    /// The hash of the definition the backend serves now.
    pub hash: String,
    /// Pinned → current, by JSON pointer (empty when nothing was pinned).
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
    #[serde(with = "humantime_serde")]
    pub since: SystemTime,
    /// An administrator looked at it and kept it blocked (`None`: not reviewed yet).
    pub blocked_by: Option<String>,
    /// The current definition's pin (what approving it writes).
    #[serde(skip)]
    pub current: Pin,
}

/// A change of a definition's standing, for the log, the metric, the audit log and a span.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrityEvent {
    /// `quarantined`, `released`, `warned`, `approved`, `blocked`.
    pub event: &'static str,
    pub key: DefKey,
    /// `changed`, `unpinned`, `poisoned`, or why it was released.
    pub reason: String,
    pub previous_hash: Option<String>,
    pub hash: Option<String>,
    /// Number of changed places (JSON pointers) between the pinned and the current definition.
    pub changes: usize,
    /// Scanner rule ids.
    pub findings: Vec<String>,
    /// Who approved or blocked it (an administrator's subject).
    pub by: Option<String>,
}

/// Why an approval or a block was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no quarantined {} '{}' on backend '{}'", .0.kind.as_str(), .0.name, .0.backend)]
    NotQuarantined(DefKey),
    #[error("the definition changed again (now {current}); review it again before approving")]
    HashMismatch { current: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

#[derive(Default)]
struct State {
    manifest: Manifest,
    /// `tofu`: what each backend served when first seen (or was approved since).
    first_seen: HashMap<String, BackendPins>,
    quarantined: BTreeMap<DefKey, QuarantineEntry>,
    /// (definition, hash) already reported as `warned`: reported once, not per re-discovery.
    warned: HashSet<(DefKey, String)>,
}

/// The integrity check the catalog runs on every published snapshot.
pub struct Checker {
    modes: HashMap<String, Option<PinMode>>,
    manifest_path: Option<PathBuf>,
    refresh_interval: std::time::Duration,
    on_finding: FindingActions,
    scanner: Scanner,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<IntegrityEvent>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("manifest_path", &self.manifest_path)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// The check for these backends; the manifest is read now (a missing file is empty). The
    /// receiver gets every `IntegrityEvent`.
    pub fn new(
        cfg: &IntegrityConfig,
        scan: &ScanConfig,
        backends: &[crate::config::BackendConfig],
    ) -> Result<(Checker, mpsc::UnboundedReceiver<IntegrityEvent>), String> {
        let manifest = match &cfg.manifest {
            Some(p) => Manifest::load(p).map_err(|e| e.to_string())?,
            None => Manifest::new(),
        };
        let scanner = Scanner::new(scan)?;
        let (events, rx) = mpsc::unbounded_channel();
        let checker = Checker {
            modes: backends
                .iter()
                .map(|b| (b.name.clone(), b.pinning))
                .collect(),
            manifest_path: cfg.manifest.clone(),
            refresh_interval: cfg.refresh_interval,
            on_finding: cfg.on_finding,
            scanner,
            state: Mutex::new(State {
                manifest,
                ..State::default()
            }),
            events,
        };
        Ok((checker, rx))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mode in force for a backend: as configured, else `enforce` when the manifest pins
    /// anything of it, else `tofu`.
    pub fn mode(&self, backend: &str) -> PinMode {
        self.mode_in(&self.state(), backend)
    }

    fn mode_in(&self, st: &State, backend: &str) -> PinMode {
        match self.modes.get(backend).copied().flatten() {
            Some(m) => m,
            None if st.manifest.backend(backend).is_some_and(|b| !b.is_empty()) => PinMode::Enforce,
            None => PinMode::Tofu,
        }
    }

    /// How often every backend is re-listed besides `list_changed` (zero: never).
    pub fn refresh_interval(&self) -> std::time::Duration {
        self.refresh_interval
    }

    pub fn manifest_path(&self) -> Option<&std::path::Path> {
        self.manifest_path.as_deref()
    }

    /// The manifest in force (a copy).
    pub fn manifest(&self) -> Manifest {
        self.state().manifest.clone()
    }

    /// Re-reads the manifest file (admin reload, SIGHUP). The caller re-assesses the catalog.
    pub fn reload_manifest(&self) -> Result<bool, ManifestError> {
        let Some(p) = &self.manifest_path else {
            return Ok(false);
        };
        let m = Manifest::load(p)?;
        let mut st = self.state();
        let changed = st.manifest != m;
        st.manifest = m;
        Ok(changed)
    }

    /// Every quarantined definition.
    pub fn quarantined(&self) -> Vec<QuarantineEntry> {
        self.state().quarantined.values().cloned().collect()
    }

    /// The facts of every definition of `backend`'s snapshot. `others` are the other backends'
    /// tool names (for the confusable-name rule).
    pub fn assess(
        &self,
        backend: &str,
        snap: &Snapshot,
        others: &[(&str, &str)],
    ) -> DefinitionFacts {
        let mut names: Vec<(&str, &str)> = others.to_vec();
        let own_from = names.len();
        names.extend(
            snap.tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .map(|n| (backend, n)),
        );
        let mut confusable: HashMap<&str, Vec<Finding>> = HashMap::new();
        for (i, f) in self.scanner.confusables(&names) {
            if i >= own_from {
                confusable.entry(names[i].1).or_default().push(f);
            }
        }
        let mut st = self.state();
        let mode = self.mode_in(&st, backend);
        let mut out = DefinitionFacts::default();
        let mut seen: HashSet<DefKey> = HashSet::new();
        for kind in DefKind::ALL {
            let list = match kind {
                DefKind::Tool => &snap.tools,
                DefKind::Prompt => &snap.prompts,
                DefKind::ResourceTemplate => &snap.templates,
            };
            for def in list {
                let Some(name) = def.get(kind.key()).and_then(Value::as_str) else {
                    continue;
                };
                let key = DefKey {
                    backend: backend.to_string(),
                    kind,
                    name: name.to_string(),
                };
                let mut findings = self.scanner.scan(kind, def);
                if kind == DefKind::Tool
                    && let Some(c) = confusable.get(name)
                {
                    findings.extend(c.iter().cloned());
                }
                let facts = self.judge(&mut st, mode, &key, def, findings);
                seen.insert(key);
                let facts = Arc::new(facts);
                let map = match kind {
                    DefKind::Tool => &mut out.tools,
                    DefKind::Prompt => &mut out.prompts,
                    DefKind::ResourceTemplate => &mut out.templates,
                };
                map.insert(name.to_string(), facts);
            }
        }
        // What this backend no longer serves is no longer quarantined.
        let gone: Vec<DefKey> = st
            .quarantined
            .keys()
            .filter(|k| k.backend == backend && !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(e) = st.quarantined.remove(&key) {
                self.emit(release(e, "the backend no longer serves it"));
            }
        }
        out
    }

    fn judge(
        &self,
        st: &mut State,
        mode: PinMode,
        key: &DefKey,
        def: &Map<String, Value>,
        findings: Vec<Finding>,
    ) -> Facts {
        let current = Pin::of(key.kind, def);
        let manifest_pin = st.manifest.pin(&key.backend, key.kind, &key.name).cloned();
        let accepted: &[String] = manifest_pin
            .as_ref()
            .filter(|p| p.hash == current.hash)
            .map_or(&[], |p| &p.accepted_findings);
        let accepted_first = st
            .first_seen
            .get(&key.backend)
            .and_then(|b| b.of_kind(key.kind).get(&key.name))
            .filter(|p| p.hash == current.hash)
            .map_or(&[][..], |p| &p.accepted_findings);
        let open: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                !accepted.iter().any(|a| a == f.rule) && !accepted_first.iter().any(|a| a == f.rule)
            })
            .collect();
        // The pin check.
        let baseline = match mode {
            PinMode::Off => None,
            PinMode::Enforce | PinMode::Warn => Some(manifest_pin.clone()),
            PinMode::Tofu => {
                let first = manifest_pin.clone().or_else(|| {
                    st.first_seen
                        .get(&key.backend)
                        .and_then(|b| b.of_kind(key.kind).get(&key.name))
                        .cloned()
                });
                if first.is_none() {
                    st.first_seen
                        .entry(key.backend.clone())
                        .or_default()
                        .of_kind_mut(key.kind)
                        .insert(key.name.clone(), current.clone());
                }
                Some(first.or_else(|| Some(current.clone())))
            }
        };
        let pin_problem: Option<(&'static str, Option<Pin>)> = match baseline {
            None => None,
            Some(None) => Some(("unpinned", None)),
            Some(Some(p)) if p.hash != current.hash => Some(("changed", Some(p))),
            Some(Some(_)) => None,
        };
        let pin_quarantines = pin_problem.is_some() && mode != PinMode::Warn;
        let worst = open.iter().map(|f| self.action(f.severity)).max();
        let finding_quarantines = worst == Some(FindingAction::Quarantine);

        let facts_base = match key.kind {
            DefKind::Tool => Facts::of_tool(def),
            DefKind::Prompt | DefKind::ResourceTemplate => Facts::read().clone(),
        };
        let integrity = if pin_quarantines || finding_quarantines {
            let (reason, pinned) = match &pin_problem {
                Some((r, p)) if pin_quarantines => (*r, p.clone()),
                _ => ("poisoned", manifest_pin.clone()),
            };
            let changes = pinned
                .as_ref()
                .map(|p| diff::diff(&p.definition, &current.definition))
                .unwrap_or_default();
            let detail = detail(reason, pinned.as_ref(), &current, &changes, &open);
            let q = Integrity::Quarantined(Arc::new(Quarantine {
                reason,
                detail: detail.clone(),
            }));
            let fresh = st
                .quarantined
                .get(key)
                .is_none_or(|e| e.hash != current.hash);
            if fresh {
                let entry = QuarantineEntry {
                    key: key.clone(),
                    reason,
                    detail,
                    pinned_hash: pinned.as_ref().map(|p| p.hash.clone()),
                    hash: current.hash.clone(),
                    changes,
                    findings: findings.clone(),
                    since: SystemTime::now(),
                    blocked_by: None,
                    current: current.clone(),
                };
                self.emit(IntegrityEvent {
                    event: "quarantined",
                    key: key.clone(),
                    reason: reason.to_string(),
                    previous_hash: entry.pinned_hash.clone(),
                    hash: Some(entry.hash.clone()),
                    changes: entry.changes.len(),
                    findings: open.iter().map(|f| f.rule.to_string()).collect(),
                    by: None,
                });
                st.quarantined.insert(key.clone(), entry);
            }
            q
        } else {
            if let Some(e) = st.quarantined.remove(key) {
                self.emit(release(e, "its definition is approved again"));
            }
            let warn_reason = match (&pin_problem, worst) {
                (Some((r, _)), _) => Some(format!("{r} (pinning: warn)")),
                (None, Some(FindingAction::Warn)) => Some("scanner finding".to_string()),
                _ => None,
            };
            match warn_reason {
                Some(reason) => {
                    if st.warned.insert((key.clone(), current.hash.clone())) {
                        self.emit(IntegrityEvent {
                            event: "warned",
                            key: key.clone(),
                            reason: reason.clone(),
                            previous_hash: pin_problem
                                .as_ref()
                                .and_then(|(_, p)| p.as_ref().map(|p| p.hash.clone())),
                            hash: Some(current.hash.clone()),
                            changes: 0,
                            findings: open.iter().map(|f| f.rule.to_string()).collect(),
                            by: None,
                        });
                    }
                    Integrity::Warned(reason.into())
                }
                None => Integrity::Trusted,
            }
        };
        Facts {
            hash: Some(current.hash.into()),
            integrity,
            ..facts_base
        }
    }

    fn action(&self, s: Severity) -> FindingAction {
        match s {
            Severity::High => self.on_finding.high,
            Severity::Medium => self.on_finding.medium,
            Severity::Low => self.on_finding.low,
        }
    }

    fn emit(&self, e: IntegrityEvent) {
        let _ = self.events.send(e);
    }

    /// Approves a quarantined definition as it is now (`hash` must still be its hash): it is
    /// pinned — in the manifest file for a backend held to it, in memory for a `tofu` one —
    /// with its scanner findings accepted. The caller re-assesses the backend.
    pub fn approve(&self, key: &DefKey, hash: &str, by: &str) -> Result<(), ReviewError> {
        let mut st = self.state();
        let entry = st
            .quarantined
            .get(key)
            .ok_or_else(|| ReviewError::NotQuarantined(key.clone()))?;
        if entry.hash != hash {
            return Err(ReviewError::HashMismatch {
                current: entry.hash.clone(),
            });
        }
        let mut pin = entry.current.clone();
        pin.accepted_findings = entry.findings.iter().map(|f| f.rule.to_string()).collect();
        pin.accepted_findings.sort();
        pin.accepted_findings.dedup();
        let previous = entry.pinned_hash.clone();
        let changes = entry.changes.len();
        let mode = self.mode_in(&st, &key.backend);
        match (mode, &self.manifest_path) {
            (PinMode::Tofu, _) | (_, None) => {
                st.first_seen
                    .entry(key.backend.clone())
                    .or_default()
                    .of_kind_mut(key.kind)
                    .insert(key.name.clone(), pin.clone());
                if mode != PinMode::Tofu {
                    st.manifest.set(&key.backend, key.kind, &key.name, pin);
                }
            }
            (_, Some(path)) => {
                let mut m = st.manifest.clone();
                m.set(&key.backend, key.kind, &key.name, pin);
                m.save(path)?;
                st.manifest = m;
            }
        }
        st.quarantined.remove(key);
        self.emit(IntegrityEvent {
            event: "approved",
            key: key.clone(),
            reason: "approved by an administrator".into(),
            previous_hash: previous,
            hash: Some(hash.to_string()),
            changes,
            findings: Vec::new(),
            by: Some(by.to_string()),
        });
        Ok(())
    }

    /// Records that an administrator reviewed a quarantined definition and keeps it blocked.
    pub fn block(&self, key: &DefKey, by: &str) -> Result<(), ReviewError> {
        let mut st = self.state();
        let entry = st
            .quarantined
            .get_mut(key)
            .ok_or_else(|| ReviewError::NotQuarantined(key.clone()))?;
        entry.blocked_by = Some(by.to_string());
        let e = IntegrityEvent {
            event: "blocked",
            key: key.clone(),
            reason: "kept blocked by an administrator".into(),
            previous_hash: entry.pinned_hash.clone(),
            hash: Some(entry.hash.clone()),
            changes: entry.changes.len(),
            findings: Vec::new(),
            by: Some(by.to_string()),
        };
        self.emit(e);
        Ok(())
    }
}

fn release(e: QuarantineEntry, why: &str) -> IntegrityEvent {
    IntegrityEvent {
        event: "released",
        key: e.key,
        reason: why.to_string(),
        previous_hash: e.pinned_hash,
        hash: Some(e.hash),
        changes: 0,
        findings: Vec::new(),
        by: None,
    }
}

/// The sentence a client is told (no finding excerpts: they may carry what the backend hid).
fn detail(
    reason: &str,
    pinned: Option<&Pin>,
    current: &Pin,
    changes: &[Change],
    findings: &[&Finding],
) -> String {
    match reason {
        "changed" => format!(
            "its definition changed since it was approved ({} → {}, {} change{} at {}).",
            short_hash(pinned.map_or("", |p| p.hash.as_str())),
            short_hash(&current.hash),
            changes.len(),
            if changes.len() == 1 { "" } else { "s" },
            changes
                .iter()
                .take(3)
                .map(Change::pointer)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "unpinned" => format!(
            "it is not in the pinned manifest ({}).",
            short_hash(&current.hash)
        ),
        _ => {
            let rules: Vec<String> = findings
                .iter()
                .map(|f| format!("{} at {}", f.rule, f.pointer))
                .collect();
            format!("the poisoning scanner flagged it ({}).", rules.join(", "))
        }
    }
}

fn short_hash(h: &str) -> &str {
    h.get(..19).unwrap_or(h)
}

#[cfg(test)]
mod tests;
