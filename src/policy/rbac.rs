//! Role-based access from config: roles grant backends' tools, prompts and resources by name or
//! glob, for reading or writing; a principal's roles are its token's (or API key's) plus those
//! its subject is mapped to. One decision answers listing and calling, cached per (role set,
//! target) so a repeated call costs a hash lookup.

use std::collections::BTreeMap;
use std::sync::RwLock;

use hashbrown::{Equivalent, HashMap};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Deserialize;
use serde_json::json;
use wildmatch::WildMatch;

use super::stage::{Deny, Stage};
use super::{Action, Kind, Principal};

/// At most this many roles (a role set is a fixed-size bit set).
const MAX_ROLES: usize = 256;
/// Decisions kept before the cache starts over (resource URIs are open-ended).
const CACHE_CAPACITY: usize = 16_384;

/// `stage: rbac` in `policy:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whether a target no role mentions at all is open (`allow`) or closed (`deny`, the
    /// default: a principal with no granting role sees and calls nothing).
    #[serde(default)]
    pub default: DefaultEffect,
    /// Role name → its grants.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<GrantConfig>>,
    /// Subject (a token's subject, `apikey:<name>`) → roles it holds besides its token's.
    #[serde(default)]
    pub subjects: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultEffect {
    Allow,
    #[default]
    Deny,
}

/// One grant of a role: these backends' targets (globs on the backend's own names; none of
/// `tools`, `prompts`, `resources` given: everything of those backends) for `access`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    #[serde(default = "every")]
    pub backends: Vec<String>,
    pub tools: Option<Vec<String>>,
    pub prompts: Option<Vec<String>>,
    /// Resource URI (or URI template) globs.
    pub resources: Option<Vec<String>>,
    #[serde(default)]
    pub access: Access,
}

/// `read`: read-only tools (annotated `readOnlyHint: true`), prompts and resources. `write`:
/// every tool as well (ordered: `write` implies `read`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Read,
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

fn every() -> Vec<String> {
    vec!["*".into()]
}

impl Config {
    /// Problems with the roles and subjects, as (field under this stage, problem).
    pub fn problems(&self, backends: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.roles.len() > MAX_ROLES {
            out.push(("roles".into(), format!("at most {MAX_ROLES} roles")));
        }
        for (role, grants) in &self.roles {
            for (i, g) in grants.iter().enumerate() {
                let at = format!("roles.{role}[{i}]");
                if g.backends.is_empty() {
                    out.push((
                        format!("{at}.backends"),
                        "must name at least one backend".into(),
                    ));
                }
                for (j, b) in g.backends.iter().enumerate() {
                    let wild = b.contains(['*', '?']);
                    if !wild && !backends.contains(&b.as_str()) {
                        out.push((
                            format!("{at}.backends[{j}]"),
                            format!("no backend is named {b:?}"),
                        ));
                    }
                }
                for (k, list) in [
                    ("backends", Some(&g.backends)),
                    ("tools", g.tools.as_ref()),
                    ("prompts", g.prompts.as_ref()),
                    ("resources", g.resources.as_ref()),
                ] {
                    for (j, p) in list.into_iter().flatten().enumerate() {
                        if p.is_empty() {
                            out.push((format!("{at}.{k}[{j}]"), "must not be empty".into()));
                        }
                    }
                }
            }
        }
        for (subject, roles) in &self.subjects {
            for (j, r) in roles.iter().enumerate() {
                if !self.roles.contains_key(r) {
                    out.push((
                        format!("subjects.{subject}[{j}]"),
                        format!("no role is named {r:?}"),
                    ));
                }
            }
        }
        out
    }
}

/// A set of configured roles, by index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct RoleSet([u64; MAX_ROLES / 64]);

impl RoleSet {
    fn insert(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

#[derive(Debug)]
struct Grant {
    backends: Vec<WildMatch>,
    /// `None`: every target of these backends.
    targets: Option<Targets>,
    access: Access,
}

#[derive(Debug)]
struct Targets {
    tools: Vec<WildMatch>,
    prompts: Vec<WildMatch>,
    resources: Vec<WildMatch>,
}

impl Grant {
    /// Whether this grant covers the target, whatever access it needs.
    fn covers(&self, a: &Action<'_>) -> bool {
        if !self.backends.iter().any(|b| b.matches(a.backend)) {
            return false;
        }
        let Some(t) = &self.targets else {
            return true;
        };
        let any = |pats: &[WildMatch]| pats.iter().any(|p| p.matches(a.name));
        match a.kind {
            Kind::Tool => any(&t.tools),
            Kind::Prompt => any(&t.prompts),
            Kind::Resource => any(&t.resources),
            // Routed with only its backend known: any grant on that backend will do.
            Kind::Other => true,
        }
    }
}

/// A cached decision's key, owned.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    roles: RoleSet,
    kind: Kind,
    access: Access,
    backend: Box<str>,
    name: Box<str>,
}

/// The same key, borrowed from the action (no allocation to look a decision up). Hashes
/// exactly as `Key` does: same fields, same order, `&str` hashing as `Box<str>`.
#[derive(Hash)]
struct KeyRef<'a> {
    roles: RoleSet,
    kind: Kind,
    access: Access,
    backend: &'a str,
    name: &'a str,
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        self.roles == k.roles
            && self.kind == k.kind
            && self.access == k.access
            && self.backend == &*k.backend
            && self.name == &*k.name
    }
}

/// The stage.
#[derive(Debug)]
pub(super) struct Rbac {
    default: DefaultEffect,
    /// Grants per role, by role index.
    roles: Vec<Vec<Grant>>,
    index: FxHashMap<String, usize>,
    subjects: FxHashMap<String, RoleSet>,
    decisions: RwLock<HashMap<Key, bool, FxBuildHasher>>,
}

impl Rbac {
    pub(super) fn new(c: &Config) -> Self {
        let pats = |v: &[String]| v.iter().map(|p| WildMatch::new(p)).collect::<Vec<_>>();
        let index: FxHashMap<String, usize> = c
            .roles
            .keys()
            .take(MAX_ROLES)
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        let roles = c
            .roles
            .values()
            .take(MAX_ROLES)
            .map(|grants| {
                grants
                    .iter()
                    .map(|g| Grant {
                        backends: pats(&g.backends),
                        targets: (g.tools.is_some()
                            || g.prompts.is_some()
                            || g.resources.is_some())
                        .then(|| Targets {
                            tools: pats(g.tools.as_deref().unwrap_or_default()),
                            prompts: pats(g.prompts.as_deref().unwrap_or_default()),
                            resources: pats(g.resources.as_deref().unwrap_or_default()),
                        }),
                        access: g.access,
                    })
                    .collect()
            })
            .collect();
        let subjects = c
            .subjects
            .iter()
            .map(|(subject, names)| {
                let mut set = RoleSet::default();
                for i in names.iter().filter_map(|n| index.get(n)) {
                    set.insert(*i);
                }
                (subject.clone(), set)
            })
            .collect();
        Rbac {
            default: c.default,
            roles,
            index,
            subjects,
            decisions: RwLock::new(HashMap::with_hasher(FxBuildHasher)),
        }
    }

    /// The configured roles this principal holds: its own plus its subject's mapping.
    fn role_set(&self, p: &Principal) -> RoleSet {
        let mut set = p
            .subject
            .as_deref()
            .and_then(|s| self.subjects.get(s))
            .copied()
            .unwrap_or_default();
        for i in p.roles.iter().filter_map(|r| self.index.get(&**r)) {
            set.insert(*i);
        }
        set
    }

    /// The uncached decision.
    fn decide(&self, roles: &RoleSet, access: Access, a: &Action<'_>) -> bool {
        let granted = self.roles.iter().enumerate().any(|(i, grants)| {
            roles.contains(i) && grants.iter().any(|g| g.access >= access && g.covers(a))
        });
        granted
            || (self.default == DefaultEffect::Allow
                && !self.roles.iter().flatten().any(|g| g.covers(a)))
    }

    fn permitted(&self, p: &Principal, a: &Action<'_>, access: Access) -> bool {
        let roles = self.role_set(p);
        let key = KeyRef {
            roles,
            kind: a.kind,
            access,
            backend: a.backend,
            name: a.name,
        };
        if let Some(&d) = self
            .decisions
            .read()
            .ok()
            .and_then(|m| m.get(&key).copied())
            .as_ref()
        {
            return d;
        }
        let d = self.decide(&roles, access, a);
        if let Ok(mut m) = self.decisions.write() {
            if m.len() >= CACHE_CAPACITY {
                m.clear();
            }
            m.insert(
                Key {
                    roles,
                    kind: a.kind,
                    access,
                    backend: a.backend.into(),
                    name: a.name.into(),
                },
                d,
            );
        }
        d
    }
}

impl Stage for Rbac {
    fn name(&self) -> &'static str {
        "rbac"
    }

    fn permits(&self, principal: &Principal, a: &Action<'_>) -> Result<(), Deny> {
        let access = match (a.kind, a.read_only()) {
            (Kind::Tool, false) => Access::Write,
            _ => Access::Read,
        };
        if self.permitted(principal, a, access) {
            return Ok(());
        }
        // What was denied, and by which rule — never what any role would have granted.
        let what = match a.kind {
            Kind::Other => format!("{} on backend {:?}", a.method, a.backend),
            k => format!("{} {:?} of backend {:?}", k.as_str(), a.name, a.backend),
        };
        Err(Deny::forbidden(
            "no-grant",
            format!("role set has no grant for {what} ({})", access.as_str()),
        )
        .with_data(json!({
            "backend": a.backend,
            "kind": a.kind.as_str(),
            "name": a.name,
            "access": access.as_str(),
        })))
    }
}

#[cfg(test)]
mod tests;
