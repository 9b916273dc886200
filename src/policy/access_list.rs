//! Static allow/deny rules per backend and tool, prompt or resource, from config: the first rule
//! that matches decides, else the default. Listing and calling ask the same rules.

use serde::Deserialize;
use serde_json::json;
use wildmatch::WildMatch;

use super::stage::{Deny, Stage};
use super::{Action, Kind, Principal};

/// `stage: access-list` in `policy:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What happens when no rule matches (default `allow`).
    #[serde(default)]
    pub default: Effect,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// One rule: `backend` (a name or a `*` pattern, default every backend) and at most one target
/// pattern per kind. With no target, the rule covers everything of that backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub effect: Effect,
    #[serde(default = "every")]
    pub backend: String,
    pub tool: Option<String>,
    pub prompt: Option<String>,
    pub resource: Option<String>,
}

fn every() -> String {
    "*".into()
}

#[derive(Debug)]
struct Rule {
    effect: Effect,
    backend: WildMatch,
    tool: Option<WildMatch>,
    prompt: Option<WildMatch>,
    resource: Option<WildMatch>,
}

impl Rule {
    fn matches(&self, a: &Action<'_>) -> bool {
        if !self.backend.matches(a.backend) {
            return false;
        }
        let targets = [
            (Kind::Tool, &self.tool),
            (Kind::Prompt, &self.prompt),
            (Kind::Resource, &self.resource),
        ];
        if targets.iter().all(|(_, p)| p.is_none()) {
            return true;
        }
        targets
            .iter()
            .any(|(k, p)| *k == a.kind && p.as_ref().is_some_and(|p| p.matches(a.name)))
    }
}

/// The stage.
#[derive(Debug)]
pub(super) struct AccessList {
    default: Effect,
    rules: Vec<Rule>,
}

impl AccessList {
    pub(super) fn new(c: &Config) -> Self {
        let pat = |p: &Option<String>| p.as_deref().map(WildMatch::new);
        AccessList {
            default: c.default,
            rules: c
                .rules
                .iter()
                .map(|r| Rule {
                    effect: r.effect,
                    backend: WildMatch::new(&r.backend),
                    tool: pat(&r.tool),
                    prompt: pat(&r.prompt),
                    resource: pat(&r.resource),
                })
                .collect(),
        }
    }
}

impl Config {
    /// Problems with the rules, as (field under this stage, problem).
    pub fn problems(&self, backends: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let wild = r.backend.contains(['*', '?']);
            if !wild && !backends.contains(&r.backend.as_str()) {
                out.push((
                    format!("rules[{i}].backend"),
                    format!("no backend is named {:?}", r.backend),
                ));
            }
            for (k, p) in [
                ("tool", &r.tool),
                ("prompt", &r.prompt),
                ("resource", &r.resource),
            ] {
                if p.as_deref() == Some("") {
                    out.push((format!("rules[{i}].{k}"), "must not be empty".into()));
                }
            }
        }
        out
    }
}

impl Stage for AccessList {
    fn name(&self) -> &'static str {
        "access-list"
    }

    fn permits(&self, _principal: &Principal, a: &Action<'_>) -> Result<(), Deny> {
        let (effect, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(a))
            .map_or((self.default, "default".to_string()), |(i, r)| {
                (r.effect, format!("rules[{i}]"))
            });
        match effect {
            Effect::Allow => Ok(()),
            Effect::Deny => {
                let what = match a.kind {
                    Kind::Other => format!("{} on backend '{}'", a.method, a.backend),
                    k => format!("{} '{}' of backend '{}'", k.as_str(), a.name, a.backend),
                };
                Err(
                    Deny::forbidden(rule.clone(), format!("{what} is not allowed")).with_data(
                        json!({ "rule": format!("access-list:{rule}"), "backend": a.backend }),
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::methods;

    fn list(yaml: &str) -> AccessList {
        AccessList::new(&serde_norway::from_str::<Config>(yaml).expect("config"))
    }

    fn allowed(s: &AccessList, method: &str, backend: &str, name: &str) -> bool {
        s.permits(&Principal::default(), &Action::new(method, backend, name))
            .is_ok()
    }

    #[test]
    fn the_first_matching_rule_decides_for_listing_and_calling_alike() {
        let s = list(
            "rules:\n\
             - {effect: deny, backend: tickets, tool: 'close_*'}\n\
             - {effect: allow, backend: tickets}\n\
             - {effect: deny, prompt: '*'}\n",
        );
        for m in [methods::TOOLS_CALL, methods::TOOLS_LIST] {
            assert!(!allowed(&s, m, "tickets", "close_ticket"));
            assert!(allowed(&s, m, "tickets", "open_ticket"));
        }
        assert!(
            allowed(&s, methods::PROMPTS_GET, "tickets", "p"),
            "rule 1 allows all of tickets"
        );
        assert!(!allowed(&s, methods::PROMPTS_GET, "notes", "p"));
        assert!(
            allowed(&s, methods::TOOLS_CALL, "notes", "close_ticket"),
            "other backend"
        );
        let d = s
            .permits(
                &Principal::default(),
                &Action::new(methods::TOOLS_CALL, "tickets", "close_x"),
            )
            .expect_err("denied");
        assert_eq!(d.rule, "rules[0]");
        assert!(
            d.message.contains("tool 'close_x' of backend 'tickets'"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_default_deny_list_allows_only_what_a_rule_names() {
        let s = list("default: deny\nrules: [{effect: allow, backend: notes, tool: search}]\n");
        assert!(allowed(&s, methods::TOOLS_CALL, "notes", "search"));
        assert!(!allowed(&s, methods::TOOLS_CALL, "notes", "delete"));
        assert!(!allowed(&s, methods::RESOURCES_READ, "notes", "note://1"));
        let d = s
            .permits(
                &Principal::default(),
                &Action::new("completion/complete", "notes", "completion/complete"),
            )
            .expect_err("default deny");
        assert_eq!(d.rule, "default");
    }

    #[test]
    fn rules_naming_unknown_backends_or_fields_are_rejected() {
        let c: Config =
            serde_norway::from_str("rules: [{effect: deny, backend: nots}]").expect("parses");
        assert_eq!(c.problems(&["notes"])[0].0, "rules[0].backend");
        assert!(serde_norway::from_str::<Config>("rules: [{effect: deny, tools: x}]").is_err());
        assert!(serde_norway::from_str::<Config>("rules: [{effect: maybe}]").is_err());
    }
}
