//! Merging backends' lists into one namespace: bare names, or `<backend>__<name>` by policy.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::Snapshot;
use crate::config::NamingPolicy;
use crate::policy::Facts;

/// Separator between backend and name in prefixed names. `_` is inside every client's tool-name
/// character set (MCP allows `A-Za-z0-9_-.`; several LLM APIs allow only `A-Za-z0-9_-`), and backend
/// names may not contain `__`, so `notes__search` is unambiguous. Routing never parses it anyway:
/// it looks the exposed name up in the view's index.
pub const PREFIX_SEPARATOR: &str = "__";

/// One tool, prompt, resource or template as a client sees it.
#[derive(Debug)]
pub struct Exposed {
    /// Name (tools, prompts) or URI (resources) or URI template (templates) shown to clients.
    pub name: String,
    pub backend: usize,
    /// The backend's own name or URI.
    pub original: String,
    /// The definition with the exposed name, serialized once.
    pub json: Box<RawValue>,
    /// What policy knows about it: read-only or not (a tool annotated `readOnlyHint: true`;
    /// every prompt, resource and template), annotations, output schema, hash, integrity.
    pub facts: Arc<Facts>,
}

/// A merged (or single-backend) view of the catalog.
#[derive(Debug, Default)]
pub struct View {
    pub tools: Vec<Exposed>,
    pub prompts: Vec<Exposed>,
    pub resources: Vec<Exposed>,
    pub templates: Vec<Exposed>,
    tool_index: HashMap<String, usize>,
    prompt_index: HashMap<String, usize>,
    resource_index: HashMap<String, usize>,
    /// Backends in this view (indices into the config's backend list).
    pub members: Vec<usize>,
    /// Merged capabilities advertised in `initialize`.
    pub capabilities: Map<String, Value>,
    pub instructions: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Tool,
    Prompt,
    Resource,
    Template,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Tool | Kind::Prompt => "name",
            Kind::Resource => "uri",
            Kind::Template => "uriTemplate",
        }
    }

    fn list(self, s: &Snapshot) -> &[Map<String, Value>] {
        match self {
            Kind::Tool => &s.tools,
            Kind::Prompt => &s.prompts,
            Kind::Resource => &s.resources,
            Kind::Template => &s.templates,
        }
    }
}

impl View {
    /// The view of all backends under a naming policy.
    pub fn merged(names: &[&str], snaps: &[Option<Arc<Snapshot>>], policy: NamingPolicy) -> View {
        let members: Vec<usize> = (0..snaps.len()).collect();
        Self::build(names, snaps, members, Some(policy))
    }

    /// The un-prefixed view of one backend.
    pub fn single(names: &[&str], snaps: &[Option<Arc<Snapshot>>], backend: usize) -> View {
        Self::build(names, snaps, vec![backend], None)
    }

    fn build(
        names: &[&str],
        snaps: &[Option<Arc<Snapshot>>],
        members: Vec<usize>,
        policy: Option<NamingPolicy>,
    ) -> View {
        let present: Vec<(usize, &Snapshot)> = members
            .iter()
            .filter_map(|&i| snaps.get(i)?.as_deref().map(|s| (i, s)))
            .collect();
        let tools = expose(names, &present, Kind::Tool, policy);
        let prompts = expose(names, &present, Kind::Prompt, policy);
        let resources = expose(names, &present, Kind::Resource, policy);
        let templates = expose(names, &present, Kind::Template, policy);
        let index = |v: &[Exposed]| {
            v.iter()
                .enumerate()
                .map(|(i, e)| (e.name.clone(), i))
                .collect()
        };
        View {
            tool_index: index(&tools),
            prompt_index: index(&prompts),
            resource_index: index(&resources),
            tools,
            prompts,
            resources,
            templates,
            capabilities: merge_capabilities(&present),
            instructions: merge_instructions(names, &present, policy.is_some()),
            members,
        }
    }

    pub fn tool(&self, name: &str) -> Option<&Exposed> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    pub fn prompt(&self, name: &str) -> Option<&Exposed> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    pub fn resource(&self, uri: &str) -> Option<&Exposed> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    pub fn template(&self, uri_template: &str) -> Option<&Exposed> {
        self.templates.iter().find(|t| t.name == uri_template)
    }
}

fn expose(
    names: &[&str],
    present: &[(usize, &Snapshot)],
    kind: Kind,
    policy: Option<NamingPolicy>,
) -> Vec<Exposed> {
    let key = kind.key();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, s) in present {
        for item in kind.list(s) {
            if let Some(n) = item.get(key).and_then(Value::as_str) {
                *count.entry(n).or_default() += 1;
            }
        }
    }
    let mut out = Vec::new();
    for &(b, s) in present {
        for item in kind.list(s) {
            let Some(original) = item.get(key).and_then(Value::as_str) else {
                continue;
            };
            let collides = count.get(original).copied().unwrap_or(0) > 1;
            let prefixed = match policy {
                None => false,
                Some(NamingPolicy::Prefix) => matches!(kind, Kind::Tool | Kind::Prompt) || collides,
                Some(NamingPolicy::OnCollision) => collides,
            };
            let name = if !prefixed {
                original.to_string()
            } else {
                match kind {
                    Kind::Tool | Kind::Prompt => {
                        format!("{}{PREFIX_SEPARATOR}{original}", names[b])
                    }
                    Kind::Resource | Kind::Template => collided_uri(names[b], original),
                }
            };
            let mut def = item.clone();
            def.insert(key.into(), Value::String(name.clone()));
            let Ok(json) = serde_json::value::to_raw_value(&def) else {
                continue;
            };
            let facts = match kind {
                Kind::Tool => s.facts.tools.get(original),
                Kind::Prompt => s.facts.prompts.get(original),
                Kind::Template => s.facts.templates.get(original),
                Kind::Resource => None,
            };
            let facts = facts.cloned().unwrap_or_else(|| {
                Arc::new(match kind {
                    Kind::Tool => Facts::of_tool(item),
                    Kind::Prompt | Kind::Resource | Kind::Template => Facts::read().clone(),
                })
            });
            out.push(Exposed {
                name,
                backend: b,
                original: original.to_string(),
                json,
                facts,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.backend.cmp(&b.backend)));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// A resource URI that two backends both expose is shown as `switchboard://<backend>/<uri>`.
pub(crate) fn collided_uri(backend: &str, uri: &str) -> String {
    format!("switchboard://{backend}/{uri}")
}

fn merge_capabilities(present: &[(usize, &Snapshot)]) -> Map<String, Value> {
    let has = |c: &str| present.iter().any(|(_, s)| s.info.has_capability(c));
    let subscribe = present.iter().any(|(_, s)| {
        s.info
            .capabilities
            .get("resources")
            .and_then(|r| r.get("subscribe"))
            .and_then(Value::as_bool)
            == Some(true)
    });
    let mut caps = Map::new();
    // listChanged is always offered: the catalog itself changes as backends come and go.
    caps.insert("tools".into(), json!({"listChanged": true}));
    caps.insert("prompts".into(), json!({"listChanged": true}));
    caps.insert(
        "resources".into(),
        json!({"listChanged": true, "subscribe": subscribe}),
    );
    if has("logging") {
        caps.insert("logging".into(), json!({}));
    }
    if has("completions") {
        caps.insert("completions".into(), json!({}));
    }
    caps
}

fn merge_instructions(
    names: &[&str],
    present: &[(usize, &Snapshot)],
    label: bool,
) -> Option<String> {
    let parts: Vec<String> = present
        .iter()
        .filter_map(|&(b, s)| {
            let text = s.info.instructions.as_deref()?.trim();
            (!text.is_empty()).then(|| {
                if label {
                    format!("[{}] {text}", names[b])
                } else {
                    text.to_string()
                }
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

#[cfg(test)]
mod tests;
