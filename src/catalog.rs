//! The shared catalog: each backend's discovered tools, prompts and resources, and the merged views
//! that answer list requests without a backend round trip.

mod discovery;
mod naming;
mod routing;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};

pub use discovery::spawn_discovery;
pub use naming::{Exposed, PREFIX_SEPARATOR, View};
pub use routing::{ResourceRoute, Route};

use crate::config::{BackendConfig, NamingPolicy};
use crate::integrity::Checker;
use crate::policy::Facts;
use crate::upstream::handshake::BackendInfo;

/// One backend's lists as last discovered.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub info: BackendInfo,
    pub tools: Vec<Map<String, Value>>,
    pub prompts: Vec<Map<String, Value>>,
    pub resources: Vec<Map<String, Value>>,
    pub templates: Vec<Map<String, Value>>,
    /// Per definition (by the backend's own name or URI template): hash and integrity verdict,
    /// filled when the snapshot is published. A definition missing here gets plain facts.
    pub facts: DefinitionFacts,
}

/// The facts of a snapshot's tools, prompts and templates, by the backend's own name.
#[derive(Debug, Default)]
pub struct DefinitionFacts {
    pub tools: HashMap<String, Arc<Facts>>,
    pub prompts: HashMap<String, Arc<Facts>>,
    pub templates: HashMap<String, Arc<Facts>>,
}

/// The names of the quarantined definitions among `facts`, in order.
fn hidden(facts: &HashMap<String, Arc<Facts>>) -> Vec<&str> {
    let mut v: Vec<&str> = facts
        .iter()
        .filter(|(_, f)| f.quarantine().is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    v.sort_unstable();
    v
}

impl Snapshot {
    /// The same lists and backend facts, to be judged again.
    pub fn relisted(&self) -> Snapshot {
        Snapshot {
            info: self.info.clone(),
            tools: self.tools.clone(),
            prompts: self.prompts.clone(),
            resources: self.resources.clone(),
            templates: self.templates.clone(),
            facts: DefinitionFacts::default(),
        }
    }
}

/// Which lists changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl Changed {
    pub const ALL: Changed = Changed {
        tools: true,
        prompts: true,
        resources: true,
    };

    pub fn any(self) -> bool {
        self.tools || self.prompts || self.resources
    }
}

/// Every view the listeners need, rebuilt together whenever a snapshot changes.
#[derive(Debug, Default)]
pub struct Views {
    pub prefix: Arc<View>,
    pub on_collision: Arc<View>,
    /// One un-prefixed view per backend, for `/servers/{backend}/mcp`.
    pub per_backend: Vec<Arc<View>>,
}

impl Views {
    pub fn merged(&self, policy: NamingPolicy) -> &Arc<View> {
        match policy {
            NamingPolicy::Prefix => &self.prefix,
            NamingPolicy::OnCollision => &self.on_collision,
        }
    }
}

/// The catalog shared by every session.
#[derive(Debug)]
pub struct Catalog {
    backends: Vec<BackendConfig>,
    snapshots: Vec<ArcSwapOption<Snapshot>>,
    views: ArcSwap<Views>,
    changes: broadcast::Sender<(usize, Changed)>,
    attempted: AtomicUsize,
    /// Per backend: its discovery connection is up (the `switchboard.backend.up` gauge).
    up: Vec<std::sync::atomic::AtomicBool>,
    ready: watch::Sender<bool>,
    /// One wake-up per backend: a session saw `list_changed` on its own backend session.
    refresh: Vec<tokio::sync::Notify>,
    /// Serializes publish + rebuild so views never regress to an older snapshot.
    publish_lock: std::sync::Mutex<()>,
    /// Pinning and the poisoning scan, run on every published snapshot (`None`: every
    /// definition is trusted as listed).
    integrity: Option<Arc<Checker>>,
}

impl Catalog {
    pub fn new(backends: Vec<BackendConfig>) -> Arc<Self> {
        Self::with_integrity(backends, None)
    }

    /// A catalog whose snapshots go through the integrity check before they are shown.
    pub fn with_integrity(
        backends: Vec<BackendConfig>,
        integrity: Option<Arc<Checker>>,
    ) -> Arc<Self> {
        let n = backends.len();
        let snapshots = backends.iter().map(|_| ArcSwapOption::empty()).collect();
        let (changes, _) = broadcast::channel(64);
        let (ready, _) = watch::channel(backends.is_empty());
        let cat = Catalog {
            backends,
            snapshots,
            views: ArcSwap::default(),
            changes,
            attempted: AtomicUsize::new(0),
            up: (0..n)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            ready,
            refresh: (0..n).map(|_| tokio::sync::Notify::new()).collect(),
            publish_lock: std::sync::Mutex::new(()),
            integrity,
        };
        cat.rebuild();
        Arc::new(cat)
    }

    pub fn backends(&self) -> &[BackendConfig] {
        &self.backends
    }

    pub fn backend_index(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }

    /// The current views (a cheap atomic load).
    pub fn views(&self) -> arc_swap::Guard<Arc<Views>> {
        self.views.load()
    }

    pub fn snapshot(&self, backend: usize) -> Option<Arc<Snapshot>> {
        self.snapshots.get(backend)?.load_full()
    }

    /// Subscribes to list changes: `(backend index, what changed)`.
    pub fn subscribe(&self) -> broadcast::Receiver<(usize, Changed)> {
        self.changes.subscribe()
    }

    /// True once every backend has had its first discovery attempt (successful or not).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    pub fn ready_watch(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Whether the backend's discovery connection is up.
    pub fn is_up(&self, backend: usize) -> bool {
        self.up
            .get(backend)
            .is_some_and(|u| u.load(Ordering::Relaxed))
    }

    pub(crate) fn set_up(&self, backend: usize, up: bool) {
        if let Some(u) = self.up.get(backend) {
            u.store(up, Ordering::Relaxed);
        }
    }

    /// Number of backends whose lists are currently known.
    pub fn discovered(&self) -> usize {
        self.snapshots.iter().filter(|s| s.load().is_some()).count()
    }

    pub fn integrity(&self) -> Option<&Arc<Checker>> {
        self.integrity.as_ref()
    }

    /// Installs a backend's new lists (judged by the integrity check first) and rebuilds the
    /// views. A definition that is quarantined or released counts as a list change.
    pub(crate) fn publish(&self, backend: usize, mut snap: Snapshot) {
        let _guard = self.publish_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(checker) = &self.integrity {
            let others: Vec<Arc<Snapshot>> = (0..self.snapshots.len())
                .filter(|&i| i != backend)
                .filter_map(|i| self.snapshots[i].load_full())
                .collect();
            let other_names: Vec<&str> = (0..self.snapshots.len())
                .filter(|&i| i != backend)
                .filter(|&i| self.snapshots[i].load().is_some())
                .map(|i| self.backends[i].name.as_str())
                .collect();
            let names: Vec<(&str, &str)> = others
                .iter()
                .zip(&other_names)
                .flat_map(|(s, b)| {
                    s.tools
                        .iter()
                        .filter_map(|t| t.get("name").and_then(Value::as_str))
                        .map(move |n| (*b, n))
                })
                .collect();
            snap.facts = checker.assess(&self.backends[backend].name, &snap, &names);
        }
        let changed = match self.snapshots[backend].load_full() {
            None => Changed::ALL,
            Some(old) => Changed {
                tools: old.tools != snap.tools
                    || hidden(&old.facts.tools) != hidden(&snap.facts.tools),
                prompts: old.prompts != snap.prompts
                    || hidden(&old.facts.prompts) != hidden(&snap.facts.prompts),
                resources: old.resources != snap.resources
                    || old.templates != snap.templates
                    || hidden(&old.facts.templates) != hidden(&snap.facts.templates),
            },
        };
        self.snapshots[backend].store(Some(Arc::new(snap)));
        self.rebuild();
        if changed.any() {
            let _ = self.changes.send((backend, changed));
        }
    }

    /// Judges a backend's current lists again (an approval, a re-read manifest) without asking
    /// the backend; clients hear `list_changed` if what they may see changed.
    pub fn reassess(&self, backend: usize) {
        if let Some(old) = self.snapshot(backend) {
            self.publish(backend, old.relisted());
        }
    }

    /// `reassess` for every discovered backend.
    pub fn reassess_all(&self) {
        for i in 0..self.backends.len() {
            self.reassess(i);
        }
    }

    /// Asks the backend's discovery task to list again (a session's backend said `list_changed`).
    pub fn request_refresh(&self, backend: usize) {
        if let Some(n) = self.refresh.get(backend) {
            n.notify_one();
        }
    }

    pub(crate) fn refreshed(&self, backend: usize) -> Option<&tokio::sync::Notify> {
        self.refresh.get(backend)
    }

    /// Records that a backend's first discovery attempt finished.
    pub(crate) fn mark_attempted(&self) {
        let n = self.attempted.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.backends.len() {
            self.ready.send_replace(true);
        }
    }

    fn rebuild(&self) {
        let snaps: Vec<Option<Arc<Snapshot>>> =
            self.snapshots.iter().map(|s| s.load_full()).collect();
        let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        let views = Views {
            prefix: Arc::new(View::merged(&names, &snaps, NamingPolicy::Prefix)),
            on_collision: Arc::new(View::merged(&names, &snaps, NamingPolicy::OnCollision)),
            per_backend: (0..snaps.len())
                .map(|i| Arc::new(View::single(&names, &snaps, i)))
                .collect(),
        };
        self.views.store(Arc::new(views));
    }
}
