//! `integrity:` of the config (the pinned manifest, periodic re-discovery, what a scanner finding
//! does) and a backend's `pinning:` mode.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::integrity::scan::ScanConfig;

/// How a backend's definitions are held to the manifest (`pinning:` of a backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinMode {
    /// Unpinned or changed definitions are hidden and calls to them refused. The default for a
    /// backend that has entries in the manifest.
    Enforce,
    /// Unpinned or changed definitions stay usable; each is logged, counted and audited once.
    Warn,
    /// No pin check (the poisoning scan still runs).
    Off,
    /// Trust on first use: what the backend serves when first discovered is pinned in memory,
    /// and a later change to it is quarantined (a rug pull) until approved. The default for a
    /// backend without manifest entries.
    Tofu,
}

impl PinMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Enforce => "enforce",
            PinMode::Warn => "warn",
            PinMode::Off => "off",
            PinMode::Tofu => "tofu",
        }
    }
}

/// What a poisoning-scanner finding of some severity does to its definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingAction {
    /// Logged at discovery; the definition stays usable.
    Log,
    /// Logged, counted and audited; the definition stays usable.
    Warn,
    /// Hidden and refused until an administrator accepts the finding.
    Quarantine,
}

/// `on_finding:` — the action per severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingActions {
    #[serde(default = "quarantine")]
    pub high: FindingAction,
    #[serde(default = "warn")]
    pub medium: FindingAction,
    #[serde(default = "log")]
    pub low: FindingAction,
}

fn quarantine() -> FindingAction {
    FindingAction::Quarantine
}
fn warn() -> FindingAction {
    FindingAction::Warn
}
fn log() -> FindingAction {
    FindingAction::Log
}

impl Default for FindingActions {
    fn default() -> Self {
        FindingActions {
            high: FindingAction::Quarantine,
            medium: FindingAction::Warn,
            low: FindingAction::Log,
        }
    }
}

/// `integrity:` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegrity {
    pub(super) manifest: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub(super) refresh_interval: Option<Duration>,
    #[serde(default)]
    pub(super) on_finding: Option<FindingActions>,
    #[serde(default)]
    pub(super) scan: ScanConfig,
}

/// The validated `integrity:` section.
#[derive(Clone, Debug)]
pub struct IntegrityConfig {
    /// The pinned manifest. A relative path is beside the config file; absent: the config's
    /// name with `.pins.yaml` (`switchboard.yaml` → `switchboard.pins.yaml`), or none for a
    /// config that is not a file (the embedded default).
    pub manifest: Option<PathBuf>,
    /// Every backend is re-listed this often besides `list_changed` (a backend that mutates a
    /// definition without saying so is caught within one interval); zero turns it off.
    pub refresh_interval: Duration,
    pub on_finding: FindingActions,
    /// The poisoning scanner's rules and settings.
    pub scan: ScanConfig,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            manifest: None,
            refresh_interval: Duration::from_secs(300),
            on_finding: FindingActions::default(),
            scan: ScanConfig::default(),
        }
    }
}

impl RawIntegrity {
    pub(super) fn validate(self) -> IntegrityConfig {
        let d = IntegrityConfig::default();
        IntegrityConfig {
            manifest: self.manifest,
            refresh_interval: self.refresh_interval.unwrap_or(d.refresh_interval),
            on_finding: self.on_finding.unwrap_or_default(),
            scan: self.scan,
        }
    }
}

impl IntegrityConfig {
    /// Resolves the manifest path against the config file it came from.
    pub(super) fn resolve(&mut self, config_path: &std::path::Path) {
        let dir = config_path
            .parent()
            .unwrap_or_else(|| std::path::Path::new(""));
        self.manifest = Some(match self.manifest.take() {
            Some(p) if p.is_relative() => dir.join(p),
            Some(p) => p,
            None => {
                let stem = config_path.file_stem().map_or_else(
                    || "switchboard".into(),
                    |s| s.to_string_lossy().into_owned(),
                );
                dir.join(format!("{stem}.pins.yaml"))
            }
        });
    }
}
