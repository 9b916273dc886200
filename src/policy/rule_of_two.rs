//! The Rule of Two: a session may hold at most two of [A] processing untrusted input, [B] touching
//! sensitive systems or private data, [C] changing state or communicating externally. Each tool
//! carries labels (from its annotations, overridden by config); the session remembers the labels
//! of the tools it has called, and a call that would give it all three is refused — naming the
//! two it already holds — unless the caller has an exempt role.

use serde::Deserialize;
use serde_json::{Value, json};
use wildmatch::WildMatch;

use super::stage::{CallRequest, Deny, SessionSlot, Stage, Step};
use super::{Action, Kind, Principal};
use crate::protocol::jsonrpc::codes;

/// One capability a tool may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Label {
    /// [A] it processes input an attacker may control (web pages, e-mail, issues, …).
    UntrustedInput,
    /// [B] it touches sensitive systems or private data.
    PrivateData,
    /// [C] it changes state or communicates externally.
    StateChange,
}

impl Label {
    const ALL: [Label; 3] = [
        Label::UntrustedInput,
        Label::PrivateData,
        Label::StateChange,
    ];

    fn bit(self) -> u8 {
        match self {
            Label::UntrustedInput => 1,
            Label::PrivateData => 2,
            Label::StateChange => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::UntrustedInput => "untrusted-input",
            Label::PrivateData => "private-data",
            Label::StateChange => "state-change",
        }
    }
}

/// A set of labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Labels(u8);

impl Labels {
    const FULL: Labels = Labels(7);

    fn with(self, l: Label) -> Labels {
        Labels(self.0 | l.bit())
    }

    fn union(self, o: Labels) -> Labels {
        Labels(self.0 | o.0)
    }

    fn iter(self) -> impl Iterator<Item = Label> {
        Label::ALL
            .into_iter()
            .filter(move |l| self.0 & l.bit() != 0)
    }

    fn names(self) -> Vec<&'static str> {
        self.iter().map(Label::as_str).collect()
    }
}

/// `stage: rule-of-two` in `policy:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Label rules in order (later rules win over earlier ones and over the annotations).
    #[serde(default)]
    pub labels: Vec<LabelRule>,
    /// Roles that may combine all three (a break-glass role); every call is still recorded.
    #[serde(default)]
    pub allow_roles: Vec<String>,
    /// Label a tool [A] when its `openWorldHint` is absent too (the MCP default is `true`);
    /// by default only an explicit `openWorldHint: true` does.
    #[serde(default)]
    pub assume_open_world: bool,
}

/// `backend` and `tools` globs (on the backend's own tool names), and the labels to add or remove.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    #[serde(default = "every")]
    pub backend: String,
    #[serde(default = "every_tool")]
    pub tools: Vec<String>,
    #[serde(default)]
    pub add: Vec<Label>,
    #[serde(default)]
    pub remove: Vec<Label>,
}

fn every() -> String {
    "*".into()
}

fn every_tool() -> Vec<String> {
    vec!["*".into()]
}

impl Config {
    pub fn problems(&self) -> Vec<(String, String)> {
        self.labels
            .iter()
            .enumerate()
            .filter(|(_, r)| r.add.is_empty() && r.remove.is_empty())
            .map(|(i, _)| {
                (
                    format!("labels[{i}]"),
                    "adds or removes no label (give add: or remove:)".into(),
                )
            })
            .collect()
    }
}

#[derive(Debug)]
struct Rule {
    backend: WildMatch,
    tools: Vec<WildMatch>,
    add: Labels,
    remove: Labels,
}

/// The stage.
#[derive(Debug)]
pub(super) struct RuleOfTwo {
    rules: Vec<Rule>,
    allow_roles: Vec<String>,
    assume_open_world: bool,
}

/// What a session has used: the union of the labels of the tools it called.
#[derive(Debug, Default)]
struct Held(Labels);

impl RuleOfTwo {
    pub(super) fn new(c: &Config) -> Self {
        let set = |ls: &[Label]| ls.iter().fold(Labels::default(), |s, l| s.with(*l));
        RuleOfTwo {
            rules: c
                .labels
                .iter()
                .map(|r| Rule {
                    backend: WildMatch::new(&r.backend),
                    tools: r.tools.iter().map(|t| WildMatch::new(t)).collect(),
                    add: set(&r.add),
                    remove: set(&r.remove),
                })
                .collect(),
            allow_roles: c.allow_roles.clone(),
            assume_open_world: c.assume_open_world,
        }
    }

    /// A tool's labels: [A] from `openWorldHint`, [C] unless `readOnlyHint: true`, then the
    /// config's rules in order.
    fn labels(&self, a: &Action<'_>) -> Labels {
        if a.kind != Kind::Tool {
            return Labels::default();
        }
        let mut l = Labels::default();
        let open_world = a.facts.open_world_hint;
        if open_world == Some(true) || (open_world.is_none() && self.assume_open_world) {
            l = l.with(Label::UntrustedInput);
        }
        if !a.read_only() {
            l = l.with(Label::StateChange);
        }
        for r in &self.rules {
            if r.backend.matches(a.backend) && r.tools.iter().any(|t| t.matches(a.name)) {
                l = Labels((l.0 | r.add.0) & !r.remove.0);
            }
        }
        l
    }

    fn exempt(&self, p: &Principal) -> bool {
        self.allow_roles.iter().any(|r| p.has_role(r))
    }
}

fn held(slot: Option<&SessionSlot>) -> Labels {
    slot.and_then(|s| s.downcast_ref::<Held>())
        .map_or(Labels::default(), |h| h.0)
}

impl Stage for RuleOfTwo {
    fn name(&self) -> &'static str {
        "rule-of-two"
    }

    fn new_session(&self) -> Option<SessionSlot> {
        Some(Box::new(Held::default()))
    }

    fn on_request(&self, call: &mut CallRequest<'_>, slot: Option<&mut SessionSlot>) -> Step {
        let Some(held) = slot.and_then(|s| s.downcast_mut::<Held>()) else {
            return Step::Continue;
        };
        let labels = self.labels(&call.action);
        let after = held.0.union(labels);
        if after == Labels::FULL && held.0 != Labels::FULL && !self.exempt(call.principal) {
            let missing: Vec<&str> = labels
                .iter()
                .filter(|l| held.0.0 & l.bit() == 0)
                .map(Label::as_str)
                .collect();
            let message = format!(
                "Denied by policy: the Rule of Two: this session already used tools that {}; \
                 '{}' would add {}, giving one session all three of untrusted input, private \
                 data and state change. Start a new session for this task.",
                describe(held.0),
                call.action.name,
                missing.join(" and ")
            );
            return Step::Deny(Deny {
                rule: "trifecta".into(),
                code: codes::FORBIDDEN,
                message,
                data: Some(json!({"held": held.0.names(), "tool": labels.names()})),
                http_status: None,
            });
        }
        held.0 = after;
        Step::Continue
    }

    fn marks_listings(&self) -> bool {
        true
    }

    fn mark(
        &self,
        principal: &Principal,
        action: &Action<'_>,
        slot: Option<&SessionSlot>,
    ) -> Option<Value> {
        let h = held(slot);
        let labels = self.labels(action);
        let would_deny =
            h != Labels::FULL && h.union(labels) == Labels::FULL && !self.exempt(principal);
        would_deny.then(|| json!({"wouldDeny": true, "held": h.names(), "labels": labels.names()}))
    }
}

fn describe(l: Labels) -> String {
    let parts: Vec<&str> = l
        .iter()
        .map(|x| match x {
            Label::UntrustedInput => "process untrusted input",
            Label::PrivateData => "touch private data",
            Label::StateChange => "change state or communicate externally",
        })
        .collect();
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use super::*;
    use crate::policy::Facts;
    use crate::protocol::methods;

    fn stage() -> RuleOfTwo {
        let c: Config = serde_norway::from_str(
            "labels:\n\
             \x20 - {backend: crm, tools: ['*'], add: [private-data]}\n\
             \x20 - {backend: web, tools: [fetch], add: [untrusted-input]}\n\
             allow_roles: [break-glass]\n",
        )
        .unwrap();
        assert!(c.problems().is_empty());
        RuleOfTwo::new(&c)
    }

    fn tool(read_only: bool, open_world: Option<bool>) -> Facts {
        Facts {
            open_world_hint: open_world,
            ..Facts::plain(read_only)
        }
    }

    fn call(
        s: &RuleOfTwo,
        p: &Principal,
        slot: &mut SessionSlot,
        backend: &str,
        name: &str,
        f: &Facts,
    ) -> Result<(), Deny> {
        let mut c = CallRequest {
            principal: p,
            session_id: "s",
            action: Action::new(methods::TOOLS_CALL, backend, name).with_facts(f),
            arguments: None,
            policy_revision: None,
        };
        match s.on_request(&mut c, Some(slot)) {
            Step::Continue => Ok(()),
            Step::Deny(d) => Err(d),
            Step::Wait(_) => panic!("never waits"),
        }
    }

    #[test]
    fn the_third_capability_is_refused_naming_the_two_already_held() {
        let s = stage();
        let p = Principal::default();
        let mut slot = s.new_session().unwrap();
        let (read, write) = (tool(true, None), tool(false, None));
        // [A] reading the web, [B] reading the CRM: two, allowed.
        call(&s, &p, &mut slot, "web", "fetch", &read).unwrap();
        call(&s, &p, &mut slot, "crm", "lookup", &read).unwrap();
        call(&s, &p, &mut slot, "crm", "lookup", &read).unwrap();
        // [C] sending anything now would complete the trifecta.
        let d = call(&s, &p, &mut slot, "mail", "send", &write).unwrap_err();
        assert_eq!(d.rule, "trifecta");
        assert!(
            d.message
                .contains("already used tools that process untrusted input and touch private data"),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("'send' would add state-change"),
            "{}",
            d.message
        );
        assert_eq!(
            d.data.unwrap()["held"],
            json!(["untrusted-input", "private-data"])
        );
        // A read-only tool with no new capability is still fine.
        call(&s, &p, &mut slot, "crm", "lookup", &read).unwrap();
        // Another session starts clean.
        let mut fresh = s.new_session().unwrap();
        call(&s, &p, &mut fresh, "mail", "send", &write).unwrap();
    }

    #[test]
    fn labels_come_from_annotations_and_config_and_an_exempt_role_may_combine_them() {
        let s = stage();
        let a = |b, n, f: &Facts| {
            s.labels(&Action::new(methods::TOOLS_CALL, b, n).with_facts(f))
                .names()
        };
        assert_eq!(
            a("x", "t", &tool(false, None)),
            ["state-change"],
            "no readOnlyHint: a write"
        );
        assert!(a("x", "t", &tool(true, None)).is_empty());
        assert_eq!(a("x", "t", &tool(true, Some(true))), ["untrusted-input"]);
        assert_eq!(a("crm", "t", &tool(true, Some(false))), ["private-data"]);
        let breakglass = Principal {
            roles: vec![Arc::from("break-glass")],
            ..Principal::default()
        };
        let mut slot = s.new_session().unwrap();
        call(
            &s,
            &breakglass,
            &mut slot,
            "web",
            "fetch",
            &tool(false, None),
        )
        .unwrap();
        call(&s, &breakglass, &mut slot, "crm", "dump", &tool(true, None)).unwrap();
    }

    #[test]
    fn a_listing_marks_the_tools_that_would_be_refused_now() {
        let s = stage();
        let p = Principal::default();
        let mut slot = s.new_session().unwrap();
        let (read, write) = (tool(true, None), tool(false, None));
        let list = |slot: &SessionSlot, b, n, f: &Facts| {
            s.mark(
                &p,
                &Action::new(methods::TOOLS_LIST, b, n).with_facts(f),
                Some(slot),
            )
        };
        assert_eq!(list(&slot, "mail", "send", &write), None);
        call(&s, &p, &mut slot, "web", "fetch", &read).unwrap();
        call(&s, &p, &mut slot, "crm", "lookup", &read).unwrap();
        let m = list(&slot, "mail", "send", &write).expect("marked");
        assert_eq!(m["wouldDeny"], true);
        assert_eq!(list(&slot, "crm", "lookup", &read), None);
    }
}
